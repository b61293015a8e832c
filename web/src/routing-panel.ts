/**
 * First-responder routing in the side panel: pick "from" and "to" (map clicks or typed lon,lat), draw
 * the fastest route with its duration; close roads around a point; the route is recomputed at once so
 * the operator sees it avoid the closure.
 */
import { type ApiClient, ApiError, isNotConfigured } from './api-client.ts';
import { $, $input, h, propertyList } from './dom.ts';
import {
  circlePolygon,
  formatDistance,
  formatDuration,
  formatLonLat,
  type LonLat,
  parseLonLat,
} from './geo.ts';
import type { MapView } from './map-view.ts';
import { papBadge, tlpBadge } from './marking-badge.ts';
import type { Closure, Feature, FeatureCollection, NetworkInfo, RouteProperties } from './platform-types.ts';
import { listOf } from './platform-types.ts';

export const OSM_ATTRIBUTION = '© OpenStreetMap contributors, ODbL';

interface Ui {
  toast: (text: string, isError?: boolean) => void;
  setHint: (text: string) => void;
  done: () => void;
}

export class RoutingPanel {
  private from: LonLat | null = null;
  private to: LonLat | null = null;
  private picking: 'from' | 'to' = 'from';
  private lastDuration: number | null = null;
  private closures: Closure[] = [];
  private configured = true;
  private closuresShown = false;
  private retry: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly api: ApiClient,
    private readonly map: MapView,
    private readonly ui: Ui,
  ) {
    $('route-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const from = parseLonLat($input('route-from').value);
      const to = parseLonLat($input('route-to').value);
      if (!from || !to) {
        this.showResult(h('p', { class: 'error' }, 'Give both ends as lon,lat, or pick them on the map.'));
        return;
      }
      if (String(from) !== String(this.from) || String(to) !== String(this.to)) this.lastDuration = null;
      this.from = from;
      this.to = to;
      void this.route();
    });
    $('route-clear').addEventListener('click', () => this.clear());
    $('closure-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const at = parseLonLat($input('closure-center').value);
      if (!at) {
        this.ui.toast('Give the closure centre as lon,lat, or use the Closure tool on the map.', true);
        return;
      }
      void this.closeAt(at);
    });
  }

  /**
   * Reads the road network's state, extent and attribution. Routing is off when the platform has no road
   * network; while the network loads, it asks again every few seconds.
   */
  async init(): Promise<void> {
    let info: NetworkInfo;
    try {
      info = await this.api.get<NetworkInfo>('/api/routing/network');
    } catch (err) {
      if (isNotConfigured(err)) this.notConfigured();
      else $('network-info').textContent = `Road network unknown: ${(err as Error).message}`;
      return;
    }
    const attribution = typeof info.attribution === 'string' ? info.attribution : OSM_ATTRIBUTION;
    const state = info.status?.state ?? 'ready';
    if (state === 'off') return this.notConfigured();
    if (state === 'loading') {
      const pct = info.status?.progress ? ` (${Math.round(info.status.progress.fraction * 100)} %)` : '';
      $('network-info').textContent = `The road network is loading${pct}; routing starts when it is ready.`;
      this.retry = setTimeout(() => void this.init(), 3000);
      return;
    }
    if (state === 'failed') {
      this.configured = false;
      $('network-info').textContent =
        `Routing is unavailable: ${info.status?.error ?? 'the road network failed to load'}`;
      return;
    }
    this.configured = true;
    this.map.setAttribution(attribution);
    // The streets are the base map (no internet tiles): drawn from the platform's own road network.
    this.map.onViewChange((view) => void this.loadRoads(view));
    const bbox = info.bbox;
    if (Array.isArray(bbox) && bbox.length === 4) {
      this.map.fitBbox(bbox);
      void this.loadRoads(bbox);
      const [w, s, e, n] = bbox;
      this.map.setData('area', {
        type: 'FeatureCollection',
        features: [
          {
            type: 'Feature',
            geometry: {
              type: 'Polygon',
              coordinates: [
                [
                  [w, s],
                  [e, s],
                  [e, n],
                  [w, n],
                  [w, s],
                ],
              ],
            },
            properties: {},
          },
        ],
      });
    }
    const facts = [info.name, counts(info)].filter(Boolean).join(' · ');
    $('network-info').textContent = `Road network${facts ? `: ${facts}` : ''}. ${attribution}`;
  }

  stop(): void {
    clearTimeout(this.retry);
  }

  #roadsRequest = 0;

  /** Draws the streets in view (at most 20,000 segments; a whole large city is drawn when zoomed in). */
  async loadRoads(view: readonly number[]): Promise<void> {
    const request = ++this.#roadsRequest;
    const bbox = view.map((v) => v.toFixed(5)).join(',');
    try {
      const roads = await this.api.get<FeatureCollection>(`/api/routing/roads?bbox=${bbox}&limit=20000`);
      if (request === this.#roadsRequest) this.map.setData('roads', roads);
    } catch {
      // The base map is a convenience: routing works without it.
    }
  }

  hint(): string {
    return this.picking === 'from' ? 'Click the start of the route' : 'Click the destination';
  }

  startPicking(): void {
    this.picking = 'from';
  }

  pick(at: LonLat): void {
    if (this.picking === 'from') {
      this.from = at;
      this.to = null;
      this.lastDuration = null;
      $input('route-from').value = formatLonLat(at);
      $input('route-to').value = '';
      this.picking = 'to';
      this.drawPicks();
      this.ui.setHint(this.hint());
      return;
    }
    this.to = at;
    $input('route-to').value = formatLonLat(at);
    this.picking = 'from';
    this.ui.done();
    void this.route();
  }

  clear(): void {
    this.from = null;
    this.to = null;
    this.lastDuration = null;
    this.picking = 'from';
    $input('route-from').value = '';
    $input('route-to').value = '';
    this.showResult();
    this.map.setData('route', { type: 'FeatureCollection', features: [] });
    this.drawPicks();
  }

  async route(): Promise<void> {
    if (!this.from || !this.to) return;
    if (!this.configured) return this.notConfigured();
    this.drawPicks();
    const q = `from=${formatLonLat(this.from)}&to=${formatLonLat(this.to)}`;
    this.showResult(h('p', { class: 'muted' }, 'Finding the fastest route…'));
    try {
      const started = performance.now();
      const f = await this.api.get<Feature<Feature['geometry'], RouteProperties>>(`/api/routing/route?${q}`);
      const ms = Math.round(performance.now() - started);
      const p = f.properties;
      const before = this.lastDuration;
      if (p.reachable === false || !f.geometry) {
        this.map.setData('route', { type: 'FeatureCollection', features: [] });
        this.lastDuration = null;
        this.showResult(
          h(
            'p',
            { class: 'error', role: 'alert', id: 'route-summary' },
            `No route: ${p.reason ?? 'unreachable'}`,
          ),
        );
        return;
      }
      this.map.setData('route', { type: 'FeatureCollection', features: [f as unknown as Feature] });
      // A new journey is brought into view; a recomputation (after a closure) leaves the view alone.
      if (before === null) this.map.fitBbox(lineBbox(f.geometry.coordinates as LonLat[]), 80);
      this.lastDuration = p.duration_s;
      const change =
        before !== null && Math.round(before) !== Math.round(p.duration_s)
          ? ` (was ${formatDuration(before)})`
          : '';
      this.showResult(
        h(
          'p',
          { class: 'route-summary', id: 'route-summary' },
          `${formatDuration(p.duration_s)} · ${formatDistance(p.distance_m)}${change}`,
        ),
        h('p', { class: 'muted small' }, `computed in ${ms} ms, avoiding ${this.closures.length} closure(s)`),
        stepsList(p.steps),
      );
    } catch (err) {
      if (isNotConfigured(err) && !(err instanceof ApiError && err.status === 503))
        return this.notConfigured();
      this.map.setData('route', { type: 'FeatureCollection', features: [] });
      this.lastDuration = null;
      this.showResult(h('p', { class: 'error', role: 'alert' }, `No route: ${(err as Error).message}`));
    }
  }

  async closeAt(at: LonLat): Promise<void> {
    if (!this.configured) return this.notConfigured();
    const radius = Number($input('closure-radius').value) || 150;
    const minutes = Number($input('closure-minutes').value);
    $input('closure-center').value = formatLonLat(at);
    const body = {
      geometry: { type: 'Point', coordinates: at },
      radius_m: radius,
      reason: 'closed from the operational picture',
      ...(minutes > 0 ? { expiresAt: new Date(Date.now() + minutes * 60_000).toISOString() } : {}),
    };
    try {
      await this.api.post<{ id: string }>('/api/routing/closures', body);
      this.ui.toast(`Roads closed within ${radius} m of ${formatLonLat(at)}`);
      await this.refreshClosures();
      if (this.from && this.to) await this.route();
    } catch (err) {
      if (isNotConfigured(err)) return this.notConfigured();
      this.ui.toast(`Closure not added: ${(err as Error).message}`, true);
    }
  }

  async refreshClosures(): Promise<void> {
    if (!this.configured) return;
    let fresh: Closure[];
    try {
      fresh = closuresOf(await this.api.get<unknown>('/api/routing/closures'));
    } catch (err) {
      if (isNotConfigured(err)) return this.notConfigured();
      if (err instanceof ApiError && err.status === 401) throw err;
      return;
    }
    if (JSON.stringify(fresh) === JSON.stringify(this.closures) && this.closuresShown) return;
    this.closures = fresh;
    this.closuresShown = true;
    this.map.setData('closures', {
      type: 'FeatureCollection',
      features: this.closures.map((c) => ({
        type: 'Feature',
        geometry: closureShape(c),
        properties: {
          id: c.id,
          ...(c.marking
            ? { marking: `TLP:${c.marking.tlp}${c.marking.pap ? ` PAP:${c.marking.pap}` : ''}` }
            : {}),
          ...(c.ownerOrg ? { owner: c.ownerOrg } : {}),
          reason: c.reason ?? '',
          ...(c.radiusMeters ? { radius_m: c.radiusMeters } : {}),
          ...(c.segments !== undefined && c.segments !== null ? { roadSegments: c.segments } : {}),
          expiresAt: c.expiresAt ?? 'until removed',
        },
      })),
    });
    const list = $('closure-list');
    list.replaceChildren(
      ...this.closures.map((c) => {
        const remove = h('button', { type: 'button', class: 'link' }, 'Remove');
        remove.setAttribute('aria-label', `Remove closure ${c.id}`);
        remove.addEventListener('click', () => void this.removeClosure(c.id));
        const until = c.expiresAt
          ? `until ${new Date(c.expiresAt).toLocaleTimeString([], { hour12: false })}`
          : 'until removed';
        return h(
          'li',
          { class: 'item', 'data-id': c.id },
          h(
            'div',
            { class: 'head' },
            tlpBadge(c.marking?.tlp),
            papBadge(c.marking?.pap),
            h(
              'span',
              { class: 'title' },
              `Closure ${c.id.slice(0, 8)}${c.ownerOrg ? ` · ${c.ownerOrg}` : ''}`,
            ),
            remove,
          ),
          h(
            'div',
            { class: 'meta' },
            [
              c.radiusMeters ? `${c.geometry.type} + ${c.radiusMeters} m` : c.geometry.type,
              typeof c.segments === 'number' ? `${c.segments} road segments` : '',
              until,
            ]
              .filter(Boolean)
              .join(' · '),
          ),
        );
      }),
    );
  }

  showClosure(at: LonLat, props: Record<string, unknown>): void {
    const id = String(props.id ?? '');
    const remove = h('button', { type: 'button' }, 'Remove closure');
    remove.addEventListener('click', () => void this.removeClosure(id));
    this.map.showPopup(
      at,
      h('div', { class: 'popup' }, h('h4', {}, 'Road closure'), propertyList(props), remove),
    );
  }

  private async removeClosure(id: string): Promise<void> {
    try {
      await this.api.delete(`/api/routing/closures/${encodeURIComponent(id)}`);
      this.ui.toast('Closure removed');
      await this.refreshClosures();
      if (this.from && this.to) await this.route();
    } catch (err) {
      this.ui.toast(`Closure not removed: ${(err as Error).message}`, true);
    }
  }

  private drawPicks(): void {
    const features: Feature[] = [];
    if (this.from) features.push(point(this.from, 'from'));
    if (this.to) features.push(point(this.to, 'to'));
    this.map.setData('picks', { type: 'FeatureCollection', features });
  }

  private showResult(...children: (Node | null)[]): void {
    $('route-result').replaceChildren(...children.filter((c): c is Node => c !== null));
  }

  private notConfigured(): void {
    this.configured = false;
    this.ui.done();
    $('network-info').textContent = 'Routing is not configured on this platform (no road network loaded).';
    this.showResult(h('p', { class: 'muted' }, 'Routing is not configured on this platform.'));
  }
}

function lineBbox(coords: LonLat[]): [number, number, number, number] {
  const b: [number, number, number, number] = [180, 90, -180, -90];
  for (const [x, y] of coords) {
    b[0] = Math.min(b[0], x);
    b[1] = Math.min(b[1], y);
    b[2] = Math.max(b[2], x);
    b[3] = Math.max(b[3], y);
  }
  return b;
}

/** What the map draws for a closure: a point with a radius becomes the circle it closes. */
function closureShape(c: Closure): Feature['geometry'] {
  if (c.geometry.type === 'Point' && c.radiusMeters) {
    return circlePolygon(c.geometry.coordinates as LonLat, c.radiusMeters) as Feature['geometry'];
  }
  return c.geometry;
}

function point(at: LonLat, role: string): Feature {
  return { type: 'Feature', geometry: { type: 'Point', coordinates: at }, properties: { role } };
}

function closuresOf(body: unknown): Closure[] {
  const fc = body as { type?: string; features?: Feature[] };
  if (fc?.type === 'FeatureCollection' && Array.isArray(fc.features)) {
    return fc.features
      .filter((f) => f.geometry)
      .map((f) => ({
        id: String(f.id ?? f.properties.id ?? ''),
        geometry: f.geometry!,
        expiresAt: (f.properties.expiresAt as string | undefined) ?? null,
      }));
  }
  return listOf<Closure>(body, 'closures').filter((c) => c.geometry);
}

function counts(info: NetworkInfo): string {
  const v = info.stats?.roadSegments;
  return typeof v === 'number' ? `${v.toLocaleString('en')} road segments` : '';
}

function stepsList(steps: unknown[] | undefined): HTMLElement | null {
  if (!Array.isArray(steps) || steps.length === 0) return null;
  const ol = h('ol', { class: 'steps', 'aria-label': 'Route steps' });
  for (const s of steps.slice(0, 60)) {
    const o = (s ?? {}) as Record<string, unknown>;
    const name = typeof s === 'string' ? s : String(o.instruction ?? o.name ?? '') || 'unnamed road';
    const m = (o.maneuver ?? {}) as { type?: string; modifier?: string };
    const verb =
      m.type === 'depart'
        ? 'Start on'
        : m.type === 'arrive'
          ? 'Arrive at'
          : m.type === 'roundabout'
            ? 'Roundabout onto'
            : m.type === 'turn' && m.modifier
              ? `Turn ${m.modifier} onto`
              : m.type
                ? 'Continue on'
                : '';
    const d =
      typeof o.distanceM === 'number' ? o.distanceM : typeof o.distance_m === 'number' ? o.distance_m : null;
    ol.append(
      h(
        'li',
        {},
        `${verb ? `${verb} ` : ''}${name}${d !== null && m.type !== 'arrive' ? ` — ${formatDistance(d)}` : ''}`,
      ),
    );
  }
  return ol;
}
