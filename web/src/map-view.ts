/**
 * The city map: MapLibre GL on a plain dark style with no tiles from the internet; everything drawn comes
 * from the platform (entities, reports, closures, routes). Without WebGL the app keeps working without the
 * map: lists and tools take typed coordinates instead of clicks.
 */
import type { GeoJSONSource, MapGeoJSONFeature, Map as MapLibreMap, StyleSpecification } from 'maplibre-gl';
import type { LonLat } from './geo.ts';
import type { FeatureCollection } from './platform-types.ts';

export type SourceId =
  | 'roads'
  | 'area'
  | 'entities'
  | 'reports'
  | 'closures'
  | 'route'
  | 'dispatch'
  | 'reach'
  | 'picks';

export interface LayerGroup {
  id: string;
  label: string;
  colour: string;
  layers: string[];
}

/** The toggles in the side panel: each shows or hides a few map layers. */
export const LAYER_GROUPS: LayerGroup[] = [
  { id: 'alerts', label: 'Alerts', colour: '#ff7b00', layers: ['alerts-point'] },
  { id: 'reports', label: 'Reports', colour: '#ffffff', layers: ['reports-point'] },
  { id: 'crowds', label: 'Crowds', colour: '#c678dd', layers: ['crowds-fill', 'crowds-point'] },
  { id: 'traffic', label: 'Traffic', colour: '#56b6c2', layers: ['traffic-line', 'traffic-point'] },
  { id: 'vehicles', label: 'Units', colour: '#61afef', layers: ['vehicles-point'] },
  { id: 'devices', label: 'Devices', colour: '#7d8590', layers: ['devices-point'] },
  { id: 'closures', label: 'Closures', colour: '#ff2b2b', layers: ['closures-fill', 'closures-line'] },
  {
    id: 'route',
    label: 'Routes',
    colour: '#00b3ff',
    layers: ['route-casing', 'route-line', 'dispatch-line', 'dispatch-incident', 'picks-point'],
  },
  { id: 'reach', label: 'Reachable area', colour: '#2ee6d6', layers: ['reach-fill', 'reach-line'] },
  { id: 'area', label: 'Road network area', colour: '#8b949e', layers: ['area-line'] },
  { id: 'roads', label: 'Streets', colour: '#4b5563', layers: ['roads-line'] },
];

export interface MapClick {
  lonLat: LonLat;
  /** The topmost platform feature under the click, if any. */
  feature?: { layer: string; properties: Record<string, unknown>; geometry: unknown };
}

export interface MapView {
  readonly available: boolean;
  setData(source: SourceId, data: FeatureCollection): void;
  setGroupVisible(groupId: string, visible: boolean): void;
  onClick(handler: (click: MapClick) => void): void;
  flyTo(p: LonLat): void;
  /** Shows the box; `padding` in pixels (default 24); never closer than zoom 17. */
  fitBbox(bbox: [number, number, number, number], padding?: number): void;
  setAttribution(text: string): void;
  /** Calls `handler` with the visible [west, south, east, north] after every pan or zoom. */
  onViewChange(handler: (bbox: [number, number, number, number]) => void): void;
  showPopup(p: LonLat, content: HTMLElement): void;
  setCrosshair(on: boolean): void;
}

const EMPTY: FeatureCollection = { type: 'FeatureCollection', features: [] };

const DARK_STYLE: StyleSpecification = {
  version: 8,
  name: 'SafeCity dark (offline)',
  sources: {},
  layers: [{ id: 'background', type: 'background', paint: { 'background-color': '#0b0e13' } }],
};

function isPoint(): ['==', ['geometry-type'], 'Point'] {
  return ['==', ['geometry-type'], 'Point'];
}

function entityType(t: string): ['==', ['get', 'type'], string] {
  return ['==', ['get', 'type'], t];
}

export function webglAvailable(): boolean {
  try {
    const c = document.createElement('canvas');
    return Boolean(c.getContext('webgl2') ?? c.getContext('webgl'));
  } catch {
    return false;
  }
}

/** Creates the map in `container`, or a map-less stand-in that says why when WebGL is missing. */
export async function createMapView(
  container: HTMLElement,
  notice: HTMLElement,
  center: LonLat,
): Promise<MapView> {
  if (!webglAvailable()) return unavailable(notice, 'this browser has no WebGL');
  let maplibre: typeof import('maplibre-gl');
  try {
    maplibre = await import('maplibre-gl');
  } catch {
    return unavailable(notice, 'the map library could not be loaded');
  }
  let map: MapLibreMap;
  try {
    map = new maplibre.Map({
      container,
      style: DARK_STYLE,
      center,
      zoom: 12.5,
      attributionControl: false,
      maxPitch: 0,
      dragRotate: false,
    });
  } catch (err) {
    return unavailable(notice, (err as Error).message);
  }
  map.addControl(new maplibre.NavigationControl({ showCompass: false }), 'top-left');
  map.addControl(new maplibre.ScaleControl({ unit: 'metric' }), 'bottom-left');
  map.touchZoomRotate.disableRotation();
  await new Promise<void>((resolve) => (map.loaded() ? resolve() : map.once('load', () => resolve())));

  // The visible extent (west,south,east,north) on the element, for scripts and tests, and the position
  // under the pointer for the operator to read out.
  const showBounds = () => {
    container.dataset.bounds = map
      .getBounds()
      .toArray()
      .flat()
      .map((v) => v.toFixed(6))
      .join(',');
  };
  showBounds();
  map.on('moveend', showBounds);
  const readout = document.createElement('div');
  readout.className = 'coords';
  readout.setAttribute('aria-hidden', 'true');
  container.append(readout);
  map.on('mousemove', (e) => {
    readout.textContent = `${e.lngLat.lng.toFixed(5)}, ${e.lngLat.lat.toFixed(5)}`;
  });
  map.on('mouseout', () => {
    readout.textContent = '';
  });

  for (const s of [
    'roads',
    'area',
    'reach',
    'entities',
    'reports',
    'closures',
    'route',
    'dispatch',
    'picks',
  ] as SourceId[]) {
    map.addSource(s, { type: 'geojson', data: EMPTY as never });
  }
  map.addLayer({
    id: 'roads-line',
    type: 'line',
    source: 'roads',
    layout: { 'line-cap': 'round', 'line-join': 'round' },
    paint: {
      'line-color': '#3d4450',
      'line-width': ['interpolate', ['linear'], ['zoom'], 12, 0.6, 15, 2, 18, 6],
    },
  });
  map.addLayer({
    id: 'area-line',
    type: 'line',
    source: 'area',
    paint: { 'line-color': '#8b949e', 'line-width': 1, 'line-dasharray': [4, 3] },
  });
  map.addLayer({
    id: 'reach-fill',
    type: 'fill',
    source: 'reach',
    paint: { 'fill-color': '#2ee6d6', 'fill-opacity': 0.12 },
  });
  map.addLayer({
    id: 'reach-line',
    type: 'line',
    source: 'reach',
    paint: { 'line-color': '#2ee6d6', 'line-width': 1.5 },
  });
  map.addLayer({
    id: 'crowds-fill',
    type: 'fill',
    source: 'entities',
    filter: ['all', entityType('CrowdFlowObserved'), ['==', ['geometry-type'], 'Polygon']],
    paint: { 'fill-color': '#c678dd', 'fill-opacity': 0.25, 'fill-outline-color': '#c678dd' },
  });
  map.addLayer({
    id: 'traffic-line',
    type: 'line',
    source: 'entities',
    filter: ['all', entityType('TrafficFlowObserved'), ['==', ['geometry-type'], 'LineString']],
    paint: {
      'line-color': ['case', ['==', ['get', 'congested'], true], '#ff5c5c', '#56b6c2'],
      'line-width': 4,
    },
  });
  map.addLayer({
    id: 'closures-fill',
    type: 'fill',
    source: 'closures',
    paint: { 'fill-color': '#ff2b2b', 'fill-opacity': 0.22 },
  });
  map.addLayer({
    id: 'closures-line',
    type: 'line',
    source: 'closures',
    paint: { 'line-color': '#ff2b2b', 'line-width': 2 },
  });
  map.addLayer({
    id: 'route-casing',
    type: 'line',
    source: 'route',
    layout: { 'line-cap': 'round', 'line-join': 'round' },
    paint: { 'line-color': '#00101a', 'line-width': 9 },
  });
  map.addLayer({
    id: 'route-line',
    type: 'line',
    source: 'route',
    layout: { 'line-cap': 'round', 'line-join': 'round' },
    paint: { 'line-color': '#00b3ff', 'line-width': 5 },
  });
  map.addLayer({
    id: 'dispatch-line',
    type: 'line',
    source: 'dispatch',
    filter: ['==', ['geometry-type'], 'LineString'],
    layout: { 'line-cap': 'round', 'line-join': 'round' },
    paint: {
      'line-color': '#ffd33d',
      'line-width': ['match', ['get', 'rank'], 1, 5, 3],
      'line-opacity': ['match', ['get', 'rank'], 1, 1, 0.6],
      'line-dasharray': [2, 1.5],
    },
  });
  const circle = (id: string, type: string, colour: unknown, radius: number, stroke = '#000000') =>
    map.addLayer({
      id,
      type: 'circle',
      source: 'entities',
      filter: ['all', entityType(type), isPoint()],
      paint: {
        'circle-color': colour as string,
        'circle-radius': radius,
        'circle-stroke-color': stroke,
        'circle-stroke-width': 1.5,
      },
    });
  circle('devices-point', 'Device', '#7d8590', 4);
  circle(
    'crowds-point',
    'CrowdFlowObserved',
    ['case', ['==', ['get', 'congested'], true], '#ff5c5c', '#c678dd'],
    8,
  );
  circle(
    'traffic-point',
    'TrafficFlowObserved',
    ['case', ['==', ['get', 'congested'], true], '#ff5c5c', '#56b6c2'],
    6,
  );
  circle('vehicles-point', 'Vehicle', '#61afef', 7, '#ffffff');
  circle('alerts-point', 'Alert', '#ff7b00', 9, '#ffffff');
  map.addLayer({
    id: 'reports-point',
    type: 'circle',
    source: 'reports',
    paint: {
      'circle-color': '#000000',
      'circle-radius': 8,
      'circle-stroke-color': ['coalesce', ['get', 'colour'], '#9aa4b2'],
      'circle-stroke-width': 3,
    },
  });
  map.addLayer({
    id: 'dispatch-incident',
    type: 'circle',
    source: 'dispatch',
    filter: ['==', ['geometry-type'], 'Point'],
    paint: {
      'circle-color': '#ffd33d',
      'circle-radius': 9,
      'circle-stroke-color': '#000000',
      'circle-stroke-width': 3,
    },
  });
  map.addLayer({
    id: 'picks-point',
    type: 'circle',
    source: 'picks',
    paint: {
      'circle-color': ['match', ['get', 'role'], 'from', '#3fb950', 'to', '#ff7ad9', '#ffd33d'],
      'circle-radius': 7,
      'circle-stroke-color': '#000000',
      'circle-stroke-width': 2,
    },
  });

  const interactive = [
    'alerts-point',
    'reports-point',
    'vehicles-point',
    'crowds-point',
    'traffic-point',
    'devices-point',
    'crowds-fill',
    'traffic-line',
    'closures-fill',
  ];
  let attribution: InstanceType<typeof maplibre.AttributionControl> | null = null;
  let popup: InstanceType<typeof maplibre.Popup> | null = null;

  return {
    available: true,
    setData(source, data) {
      (map.getSource(source) as GeoJSONSource | undefined)?.setData(data as never);
    },
    setGroupVisible(groupId, visible) {
      const group = LAYER_GROUPS.find((g) => g.id === groupId);
      for (const layer of group?.layers ?? []) {
        map.setLayoutProperty(layer, 'visibility', visible ? 'visible' : 'none');
      }
    },
    onClick(handler) {
      map.on('click', (e) => {
        const hits: MapGeoJSONFeature[] = map.queryRenderedFeatures(e.point, {
          layers: interactive.filter((l) => map.getLayoutProperty(l, 'visibility') !== 'none'),
        });
        const top = hits[0];
        handler({
          lonLat: [e.lngLat.lng, e.lngLat.lat],
          ...(top
            ? { feature: { layer: top.layer.id, properties: top.properties ?? {}, geometry: top.geometry } }
            : {}),
        });
      });
    },
    flyTo(p) {
      map.flyTo({ center: p, zoom: Math.max(map.getZoom(), 15), speed: 1.6 });
    },
    fitBbox(bbox, padding = 24) {
      map.fitBounds(
        [
          [bbox[0], bbox[1]],
          [bbox[2], bbox[3]],
        ],
        { padding, duration: 0, maxZoom: 17 },
      );
    },
    onViewChange(handler) {
      map.on('moveend', () => {
        const b = map.getBounds();
        handler([b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]);
      });
    },
    setAttribution(text) {
      if (attribution) map.removeControl(attribution);
      attribution = new maplibre.AttributionControl({ compact: false, customAttribution: text });
      map.addControl(attribution, 'bottom-right');
    },
    showPopup(p, content) {
      popup?.remove();
      popup = new maplibre.Popup({ maxWidth: '320px', focusAfterOpen: false })
        .setLngLat(p)
        .setDOMContent(content)
        .addTo(map);
    },
    setCrosshair(on) {
      map.getCanvas().style.cursor = on ? 'crosshair' : '';
    },
  };
}

function unavailable(notice: HTMLElement, why: string): MapView {
  notice.hidden = false;
  notice.textContent = `Map display unavailable (${why}). Lists, reports and routing still work: type positions as lon,lat.`;
  return {
    available: false,
    setData() {},
    setGroupVisible() {},
    onClick() {},
    flyTo() {},
    fitBbox() {},
    setAttribution() {},
    onViewChange() {},
    showPopup() {},
    setCrosshair() {},
  };
}
