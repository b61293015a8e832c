/**
 * "Which unit arrives first": the operator clicks the incident (or types it); the platform ranks the
 * units the operator may see (Vehicle entities) by driving time on the live road network, closures
 * included; the routes of the first three are drawn.
 */
import { type ApiClient, ApiError, isNotConfigured } from './api-client.ts';
import { $, $input, h } from './dom.ts';
import { formatDistance, formatDuration, formatLonLat, type LonLat, parseLonLat } from './geo.ts';
import type { MapView } from './map-view.ts';
import type { Feature } from './platform-types.ts';

interface DispatchAnswer {
  ranked: {
    id: string;
    rank: number;
    duration_s: number;
    route?: Feature<Feature['geometry'], { duration_s: number; distance_m: number }>;
  }[];
  unreachable: { id: string; reason: string }[];
  excluded: { id: string; reason: string }[];
}

export class DispatchPanel {
  constructor(
    private readonly api: ApiClient,
    private readonly map: MapView,
    /** A readable name for a unit id (the Vehicle entity's name or licence plate), if known. */
    private readonly unitName: (id: string) => string | undefined,
  ) {
    $('dispatch-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const at = parseLonLat($input('dispatch-at').value);
      if (!at) {
        this.show(
          h('p', { class: 'error' }, 'Give the incident position as lon,lat, or use the Dispatch tool.'),
        );
        return;
      }
      void this.rank(at);
    });
    $('reach-show').addEventListener('click', () => void this.reach());
  }

  /** The area reachable from the incident position within the minutes given (coverage). */
  async reach(): Promise<void> {
    const out = $('reach-result');
    const at = parseLonLat($input('dispatch-at').value);
    const minutes = Number($input('reach-minutes').value);
    if (!at || !(minutes > 0 && minutes <= 120)) {
      out.textContent = 'Give the position as lon,lat (or click an incident) and 1–120 minutes.';
      return;
    }
    out.textContent = 'Computing the reachable area…';
    try {
      const f = await this.api.get<Feature<Feature['geometry'], { reachableNodes?: number }>>(
        `/api/routing/isochrone?from=${formatLonLat(at)}&minutes=${minutes}`,
      );
      this.map.setData('reach', { type: 'FeatureCollection', features: [f as unknown as Feature] });
      const n = f.properties.reachableNodes;
      out.textContent = `Reachable within ${minutes} min of ${formatLonLat(at)}${
        typeof n === 'number' ? `: ${n.toLocaleString('en')} road junctions` : ''
      }.`;
    } catch (err) {
      this.map.setData('reach', { type: 'FeatureCollection', features: [] });
      out.textContent = `No reachable area: ${(err as Error).message}`;
    }
  }

  async rank(at: LonLat): Promise<void> {
    $input('dispatch-at').value = formatLonLat(at);
    const incident: Feature = {
      type: 'Feature',
      geometry: { type: 'Point', coordinates: at },
      properties: {},
    };
    this.map.setData('dispatch', { type: 'FeatureCollection', features: [incident] });
    this.show(h('p', { class: 'muted' }, 'Ranking units by arrival time…'));
    let answer: DispatchAnswer;
    try {
      answer = await this.api.post<DispatchAnswer>('/api/routing/dispatch', { incident: at, k: 3 });
    } catch (err) {
      this.show(
        h(
          'p',
          { class: 'error', role: 'alert' },
          isNotConfigured(err) && err instanceof ApiError && err.status === 404
            ? 'Routing is not configured on this platform.'
            : `No ranking: ${(err as Error).message}`,
        ),
      );
      return;
    }
    const routes: Feature[] = [incident];
    const ol = h('ol', { class: 'units', id: 'dispatch-ranking', 'aria-label': 'Units by arrival time' });
    for (const r of answer.ranked) {
      if (r.route?.geometry) {
        routes.push({ ...(r.route as unknown as Feature), properties: { rank: r.rank } });
      }
      const name = this.unitName(r.id) ?? r.id;
      const dist = r.route ? ` · ${formatDistance(r.route.properties.distance_m)}` : '';
      ol.append(
        h('li', { 'data-id': r.id }, h('strong', {}, formatDuration(r.duration_s)), ` ${name}${dist}`),
      );
    }
    this.map.setData('dispatch', { type: 'FeatureCollection', features: routes });
    const notes: string[] = [];
    if (answer.unreachable.length > 0) notes.push(`${answer.unreachable.length} cannot reach it`);
    if (answer.excluded.length > 0) notes.push(`${answer.excluded.length} not available`);
    this.show(
      answer.ranked.length > 0 ? ol : h('p', { class: 'muted' }, 'No available unit can reach this place.'),
      notes.length > 0 ? h('p', { class: 'muted small' }, notes.join(' · ')) : null,
    );
  }

  clear(): void {
    this.map.setData('dispatch', { type: 'FeatureCollection', features: [] });
    this.show();
  }

  private show(...children: (Node | null)[]): void {
    $('dispatch-result').replaceChildren(...children.filter((c): c is Node => c !== null));
  }
}
