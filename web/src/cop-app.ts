/**
 * The common operational picture after sign-in: the map, the layer toggles, the alert and report lists,
 * the map tools (select, new report, route, closure) and live refresh.
 */
import { type ApiClient, ApiError, isNotConfigured } from './api-client.ts';
import { DispatchPanel } from './dispatch-panel.ts';
import { $, h, propertyList, timeAgo } from './dom.ts';
import { toFeatures } from './entity-features.ts';
import type { LonLat } from './geo.ts';
import { startLive } from './live-updates.ts';
import { createMapView, LAYER_GROUPS, type MapView } from './map-view.ts';
import { papBadge, tlpBadge, tlpColour } from './marking-badge.ts';
import { PasswordDialog } from './password-dialog.ts';
import type { Feature, Me, Report } from './platform-types.ts';
import { listOf } from './platform-types.ts';
import { ReportDialog } from './report-dialog.ts';
import { RoutingPanel } from './routing-panel.ts';

export const ENTITY_TYPES = [
  'Alert',
  'CrowdFlowObserved',
  'TrafficFlowObserved',
  'Vehicle',
  'Device',
] as const;

/** Where the map opens before the platform says where its city is (Porto, the sample road network). */
const DEFAULT_CENTER: LonLat = [-8.611, 41.149];

type Mode = 'select' | 'report' | 'route' | 'closure' | 'dispatch';

const HINTS: Record<Mode, string> = {
  select: '',
  report: 'Click the map where the report is located (Esc to cancel)',
  route: 'Click the start of the route',
  closure: 'Click the centre of the road closure (radius from the panel)',
  dispatch: 'Click the incident: the units are ranked by arrival time',
};

export interface CopOptions {
  api: ApiClient;
  me: Me;
  pollMs: number;
  onLogout: () => void;
  /** A new session token replaced this tab's (after the operator changed its password). */
  onToken: (token: string) => void;
}

export async function startCop(opts: CopOptions): Promise<void> {
  const { api, me } = opts;
  $('app-view').hidden = false;
  $('whoami').textContent = `${me.displayName || me.username} · ${me.orgId}`;
  $('logout').addEventListener('click', opts.onLogout);

  const map: MapView = await createMapView($('map'), $('map-notice'), DEFAULT_CENTER);
  const toast = (text: string, isError = false) => {
    const t = $('toast');
    t.textContent = text;
    t.classList.toggle('error', isError);
  };

  // Writers of the owner organisation may delete its reports (the server decides; this only hides the button).
  const canWrite = me.roles.some((r) => r === 'admin' || r === 'operator' || r === 'analyst');
  let reports: Report[] = [];
  let entities: Feature[] = [];
  let contextOff = false;

  // Layer toggles.
  const toggles = $('layer-toggles');
  for (const g of LAYER_GROUPS) {
    const box = h('input', { type: 'checkbox', id: `layer-${g.id}`, checked: '' });
    box.addEventListener('change', () => map.setGroupVisible(g.id, box.checked));
    const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' });
    swatch.style.background = g.colour;
    toggles.append(h('label', { for: `layer-${g.id}` }, box, swatch, g.label));
  }

  // Modes.
  let mode: Mode = 'select';
  const setMode = (m: Mode, hint?: string) => {
    mode = m;
    for (const b of document.querySelectorAll<HTMLButtonElement>('.tools button')) {
      b.setAttribute('aria-pressed', String(b.dataset.mode === m));
    }
    $('mode-hint').textContent = hint ?? HINTS[m];
    map.setCrosshair(m !== 'select');
  };
  for (const b of document.querySelectorAll<HTMLButtonElement>('.tools button')) {
    b.addEventListener('click', () => {
      const m = b.dataset.mode as Mode;
      if (m === 'route') routing.startPicking();
      setMode(m, m === 'route' ? routing.hint() : undefined);
      if (!map.available && m !== 'select') {
        $('mode-hint').textContent = 'No map here: type positions as lon,lat in the panel';
        if (m === 'report') dialog.open();
      }
    });
  }
  document.addEventListener('keydown', (e) => {
    const target = e.target as HTMLElement;
    if (target.closest('input, textarea, select, dialog') || e.ctrlKey || e.metaKey || e.altKey) return;
    const key = e.key.toLowerCase();
    if (e.key === 'Escape') setMode('select');
    else if (key === 'r') setMode('report');
    else if (key === 't') {
      routing.startPicking();
      setMode('route', routing.hint());
    } else if (key === 'c') setMode('closure');
    else if (key === 'd') setMode('dispatch');
  });

  // Lists are rebuilt only when their content changed, so that a poll never steals the keyboard focus.
  let shown = { reports: '', alerts: '' };
  const refreshData = async () => {
    const [r] = await Promise.all([loadReports(), loadEntities()]);
    reports = r;
    const now = { reports: JSON.stringify(reports), alerts: JSON.stringify(entities) };
    if (now.reports !== shown.reports) renderReports();
    if (now.alerts !== shown.alerts) renderAlerts();
    shown = now;
    for (const t of document.querySelectorAll<HTMLTimeElement>('time.ago'))
      t.textContent = timeAgo(t.dateTime);
    await routing.refreshClosures();
  };
  const live = startLive({
    refresh: refreshData,
    token: () => api.token,
    pollMs: opts.pollMs,
    onStatus: (s) => {
      const el = $('live-status');
      el.classList.toggle('ok', s.ok);
      el.classList.toggle('stale', !s.ok);
      const at = s.at.toLocaleTimeString([], { hour12: false });
      el.textContent = s.ok ? `Live · ${at}` : `Not updating · ${at}`;
      el.title = s.ok ? `updated by ${s.via === 'stream' ? 'event stream' : 'polling'}` : (s.error ?? '');
    },
  });
  $('logout').addEventListener('click', () => live.stop());

  const dialog = new ReportDialog(api, me, async (saved, created) => {
    toast(
      created
        ? `Report “${saved.title}” shared as TLP:${saved.marking.tlp}`
        : `Report “${saved.title}” saved: TLP:${saved.marking.tlp} applies at once`,
    );
    await live.now();
  });
  $('new-report-here').addEventListener('click', () => dialog.open());

  // Changing one's password ends the account's other sessions; this tab carries on with the new token, and
  // the live stream reconnects with it.
  const passwords = new PasswordDialog(api, opts.onToken, () =>
    toast('Password changed: your other sessions have ended'),
  );
  $('change-password').hidden = me.kind === 'service';
  $('change-password').addEventListener('click', () => passwords.open());

  const routing = new RoutingPanel(api, map, {
    toast,
    setHint: (text) => setMode(mode, text),
    done: () => setMode('select'),
  });
  await routing.init();
  const dispatch = new DispatchPanel(api, map, (id) => {
    const p = entities.find((f) => f.properties.id === id)?.properties;
    const name = p?.name ?? p?.vehiclePlateIdentifier ?? p?.license_plate;
    return typeof name === 'string' ? name : undefined;
  });

  map.onClick((click) => {
    switch (mode) {
      case 'report':
        setMode('select');
        dialog.open(click.lonLat);
        break;
      case 'route':
        routing.pick(click.lonLat);
        break;
      case 'closure':
        setMode('select');
        void routing.closeAt(click.lonLat);
        break;
      case 'dispatch':
        setMode('select');
        void dispatch.rank(click.lonLat);
        break;
      default:
        if (click.feature) showFeature(click.lonLat, click.feature.layer, click.feature.properties);
    }
  });

  async function loadReports(): Promise<Report[]> {
    try {
      const list = listOf<Report>(await api.get('/api/reports'), 'reports');
      return list.sort((a, b) => (b.createdAt ?? '').localeCompare(a.createdAt ?? ''));
    } catch (err) {
      if (isNotConfigured(err)) return [];
      throw err;
    }
  }

  async function loadEntities(): Promise<void> {
    if (contextOff) return;
    const all: Feature[] = [];
    const results = await Promise.allSettled(
      ENTITY_TYPES.map((t) =>
        // options=marking (a platform extension) adds each entity's marking to its keyValues representation.
        api
          .get<unknown>(
            `/ngsi-ld/v1/entities?type=${encodeURIComponent(t)}&options=keyValues,marking&limit=1000`,
          )
          .then((body) => ({ t, body })),
      ),
    );
    for (const r of results) {
      if (r.status === 'rejected') {
        if (isNotConfigured(r.reason)) {
          contextOff = true;
          toast('The context broker (NGSI-LD) is not configured on this platform');
          return;
        }
        if (r.reason instanceof ApiError && r.reason.status === 401) throw r.reason;
        continue;
      }
      all.push(...toFeatures(r.value.body, r.value.t));
    }
    entities = all;
    map.setData('entities', { type: 'FeatureCollection', features: entities });
  }

  function renderReports() {
    const list = $('report-list');
    $('report-count').textContent = `(${reports.length})`;
    const withPlace: Feature[] = [];
    list.replaceChildren(
      ...reports.map((r) => {
        const at = r.location?.coordinates;
        if (at) {
          withPlace.push({
            type: 'Feature',
            geometry: r.location as Feature['geometry'],
            properties: { kind: 'report', id: r.id, colour: tlpColour(r.marking?.tlp) },
          });
        }
        const title = h('button', { type: 'button', class: 'title' }, r.title);
        title.title = at ? 'Show on the map' : 'No position';
        title.addEventListener('click', () => {
          if (at) {
            map.flyTo(at);
            showReport(r);
          }
        });
        const item = h(
          'li',
          { class: 'item', 'data-id': r.id },
          h('div', { class: 'head' }, tlpBadge(r.marking?.tlp), papBadge(r.marking?.pap), title),
          h('div', { class: 'meta' }, `${r.category} · ${r.ownerOrg} · `, ago(r.createdAt)),
          r.body
            ? h('p', { class: 'body' }, r.body.length > 240 ? `${r.body.slice(0, 237)}…` : r.body)
            : null,
        );
        if (r.ownerOrg === me.orgId && canWrite) {
          const del = h('button', { type: 'button', class: 'link' }, 'Delete');
          del.setAttribute('aria-label', `Delete report ${r.title}`);
          del.addEventListener('click', async () => {
            if (!confirm(`Delete the report “${r.title}”?`)) return;
            try {
              await api.delete(`/api/reports/${encodeURIComponent(r.id)}`);
              toast('Report deleted');
              await live.now();
            } catch (err) {
              toast((err as Error).message, true);
            }
          });
          const edit = h('button', { type: 'button', class: 'link' }, 'Change');
          edit.setAttribute('aria-label', `Change report ${r.title}`);
          edit.addEventListener('click', () => void dialog.edit(r));
          item.querySelector('.meta')?.append(' · ', edit, del);
        }
        return item;
      }),
    );
    if (reports.length === 0) list.append(h('li', { class: 'muted' }, 'No reports visible to you.'));
    map.setData('reports', { type: 'FeatureCollection', features: withPlace });
  }

  function renderAlerts() {
    const alerts = entities
      .filter((f) => f.properties.type === 'Alert')
      .sort((a, b) => alertTime(b).localeCompare(alertTime(a)));
    $('alert-count').textContent = `(${alerts.length})`;
    const list = $('alert-list');
    list.replaceChildren(
      ...alerts.map((a) => {
        const p = a.properties;
        const marking = (p.marking ?? {}) as { tlp?: string; pap?: string };
        const tlp = marking.tlp ?? (typeof p.tlp === 'string' ? p.tlp : undefined);
        const at = a.geometry?.type === 'Point' ? (a.geometry.coordinates as LonLat) : null;
        const title = h('button', { type: 'button', class: 'title' }, alertTitle(p));
        title.addEventListener('click', () => {
          if (at) {
            map.flyTo(at);
            showFeature(at, 'alerts-point', p);
          }
        });
        const severity = typeof p.severity === 'string' ? h('span', { class: 'badge' }, p.severity) : null;
        const when = alertTime(a);
        return h(
          'li',
          { class: 'item', 'data-id': String(p.id ?? '') },
          h('div', { class: 'head' }, tlpBadge(tlp), papBadge(marking.pap), severity, title),
          h(
            'div',
            { class: 'meta' },
            [p.category, p.subCategory].filter(Boolean).join(' · '),
            when ? (p.category || p.subCategory ? ' · ' : '') : '',
            when ? ago(when) : null,
          ),
        );
      }),
    );
    if (alerts.length === 0) list.append(h('li', { class: 'muted' }, 'No alerts visible to you.'));
  }

  function showReport(r: Report) {
    const at = r.location?.coordinates;
    if (!at) return;
    const box = h(
      'div',
      { class: 'popup' },
      h('div', { class: 'head' }, tlpBadge(r.marking?.tlp), ' ', papBadge(r.marking?.pap)),
      h('h4', {}, r.title),
      r.body ? h('p', { class: 'body' }, r.body) : null,
      propertyList({ category: r.category, owner: r.ownerOrg, created: r.createdAt, id: r.id }),
    );
    map.showPopup(at, box);
  }

  function showFeature(at: LonLat, layer: string, props: Record<string, unknown>) {
    if (layer === 'reports-point') {
      const r = reports.find((x) => x.id === props.id);
      if (r) showReport(r);
      return;
    }
    if (layer === 'closures-fill') {
      routing.showClosure(at, props);
      return;
    }
    const marking = parseMaybeJson(props.marking) as { tlp?: string; pap?: string } | undefined;
    const box = h(
      'div',
      { class: 'popup' },
      marking?.tlp ? h('div', { class: 'head' }, tlpBadge(marking.tlp), ' ', papBadge(marking.pap)) : null,
      h('h4', {}, `${props.type ?? 'Entity'}: ${alertTitle(props)}`),
      propertyList(props, ['type', 'marking', 'location', '@context']),
    );
    map.showPopup(at, box);
  }

  window.addEventListener('pagehide', () => live.stop());
  // Lets scripts and tests tell when the picture is up (map placed on the city, first data in).
  $('app-view').dataset.ready = map.available ? 'map' : 'no-map';
}

/** A relative time that the refresh loop keeps current. */
function ago(iso: string): HTMLTimeElement {
  const t = h('time', { class: 'ago', datetime: iso, title: iso }, timeAgo(iso));
  return t;
}

function alertTitle(p: Record<string, unknown>): string {
  for (const k of ['name', 'description', 'subCategory', 'category', 'id']) {
    const v = p[k];
    if (typeof v === 'string' && v) return v.length > 80 ? `${v.slice(0, 77)}…` : v;
  }
  return 'unnamed';
}

function alertTime(f: Feature): string {
  const p = f.properties;
  for (const k of ['dateIssued', 'dateObserved', 'observedAt', 'modifiedAt', 'createdAt']) {
    if (typeof p[k] === 'string') return p[k] as string;
  }
  return '';
}

function parseMaybeJson(v: unknown): unknown {
  // queryRenderedFeatures hands nested properties back as JSON strings.
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch {
    return undefined;
  }
}
