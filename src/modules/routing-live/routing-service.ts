/**
 * First-responder routing as a platform service: the road network loaded in the background, and live
 * changes (closures, slow-downs) kept in the store and spread over the bus, so that every instance and
 * every restart applies the same ones. A change is applied on the instance that accepted it before the
 * call returns: the very next query there sees it; other instances apply it when the event arrives.
 *
 * Closures and slow-downs are marked objects of the sharing gate (kinds `closure` and `slowdown`). An
 * operator's or a responder's change is created, lifted and audited by the gate like any object; a change
 * derived from a context entity carries its source's owner, creator and marking and follows the source
 * (`followSource`). The engine applies every active change to everyone's routes — a fire engine must not be
 * sent into a closed road — but lists, single reads and counts answer only what the caller may see
 * (docs/routing.md, "Who sees a closure").
 */
import type { Kysely } from 'kysely';
import { type Clock, systemClock } from '../../kernel/clock.ts';
import { AppError, isAppError } from '../../kernel/errors.ts';
import { newTimeOrderedId } from '../../kernel/ids.ts';
import type { EventBus, Subscription } from '../../ports/event-bus.ts';
import type { EventOutbox } from '../../ports/event-outbox.ts';
import type { AnyDb, Store } from '../../ports/store.ts';
import { canonicalJson } from '../audit/index.ts';
import {
  type ImportProgress,
  type LoadResult,
  loadOrBuildRoadNetwork,
  ROAD_DATA_ATTRIBUTION,
  type RoutingEngine,
} from '../routing/index.ts';
import {
  type CurrentObject,
  currentIncarnations,
  type GatePrincipal,
  type Marking,
  type Role,
  type SharingGate,
  type Tlp,
} from '../sharing/index.ts';
import type { RoutingLiveTables } from './migrations.ts';

export const ROUTING_CHANGE_ADDED = 'routing.change.added';
/** The change's marking changed (it follows its source's); its effect on the roads did not. */
export const ROUTING_CHANGE_UPDATED = 'routing.change.updated';
export const ROUTING_CHANGE_LIFTED = 'routing.change.lifted';

export type LiveChangeKind = 'closure' | 'slowdown';

/** The gate's kinds are the change kinds: `closure` and `slowdown`. */
export const CLOSURE_KIND: LiveChangeKind = 'closure';
export const SLOWDOWN_KIND: LiveChangeKind = 'slowdown';

/**
 * Who creates and lifts closures and slow-downs: the writers, and responders — field units report and lift
 * closures. Lifting also needs the owner organisation and seeing the change (the gate decides).
 */
export const ROAD_CHANGE_ROLES: readonly Role[] = ['admin', 'operator', 'analyst', 'responder'];

/** What a change does to the roads. */
export interface LiveChangeInput {
  kind: LiveChangeKind;
  /** GeoJSON geometry (Point with radius, LineString, Polygon, Multi*, GeometryCollection) or Feature. */
  geometry: unknown;
  /** Speed factor for slow-downs (0 < factor < 1 slows, e.g. 0.5 = half speed). */
  factor?: number;
  radiusMeters?: number;
  expiresAt?: Date;
  reason?: string;
}

/** A change drawn by a person: its marking is the request's or the organisation's default. */
export interface ManualChangeInput extends LiveChangeInput {
  marking?: unknown;
}

/** A change the platform derives from another object (a context entity), owned and marked like it. */
export interface DerivedChangeInput extends LiveChangeInput {
  /** The source's owner organisation, creator and marking. */
  ownerOrg: string;
  createdBy: string;
  marking: Marking;
}

/** The object a derived change comes from, as one event saw it. */
export interface ChangeSource {
  /** How the change names it: `entity:<tenant>:<id>`. */
  name: string;
  /** The object at the sharing gate (its kind, scope and id), whose registry tells its live incarnation. */
  ref: { kind: string; scope: string; id: string };
  /** The incarnation the event is about: a source deleted and created again is another source. */
  incarnation: string;
}

export interface LiveChangeRecord {
  id: string;
  kind: LiveChangeKind;
  geometry: unknown;
  factor: number;
  radiusMeters: number | null;
  reason: string;
  /** 'api' for a person's change; `entity:<tenant>:<id>` for one derived from a context entity. */
  source: string;
  ownerOrg: string;
  createdBy: string;
  marking: Marking;
  createdAt: string;
  expiresAt: string | null;
  /** Road segments the change covers on this instance's network (null while the network loads). */
  segments: number | null;
}

/**
 * The data of `routing.change.added|updated|lifted`: enough for a live stream to decide, with the one policy,
 * who is told (the same fields as every marked object's change event) — nothing of the change's content.
 * Other instances apply an added change from the store and drop a lifted one.
 */
export interface RoutingChangeEvent {
  kind: LiveChangeKind;
  id: string;
  ownerOrg: string;
  /** Who may see the change now ([] once lifted). */
  readKeys: string[];
  /** Who could see it before ([] when added). */
  previousReadKeys: string[];
  /** The marking after the change (before it, once lifted). */
  marking: Marking;
  /**
   * The marking before the change (absent when added): a reader who loses sight of the change is told of it
   * under the label it saw, never under the new one.
   */
  previousMarking?: Marking;
}

/** The events this module emits (its part of the platform's event map), each about one change. */
export type RoutingLiveEvents = {
  [ROUTING_CHANGE_ADDED]: RoutingChangeEvent;
  [ROUTING_CHANGE_UPDATED]: RoutingChangeEvent;
  [ROUTING_CHANGE_LIFTED]: RoutingChangeEvent;
};
type RoutingEventType = keyof RoutingLiveEvents;

export type RoutingStatus =
  | { state: 'off' }
  | { state: 'loading'; progress: ImportProgress | null; source: string }
  | { state: 'ready'; source: string; fromCache: boolean; loadMs: number }
  | { state: 'failed'; source: string; error: string };

export interface RoutingServiceOptions {
  store: Store;
  /** Other instances' changes, applied here (broadcast). */
  bus: EventBus;
  /** Where changes are announced, in the transaction that stores them. */
  events: EventOutbox<RoutingLiveEvents>;
  gate: SharingGate;
  clock?: Clock;
  /** Road network source (.osm.pbf path, extract name or URL); unset: routing is off. */
  source?: string | undefined;
  dataDir: string;
  onProgress?: (p: ImportProgress) => void;
  onError?: (e: unknown) => void;
  /** How often expired changes are lifted at the gate (default 60 s; 0: never, for tests that do it). */
  expirySweepMs?: number;
}

type Row = RoutingLiveTables['routing_live_change'];
type Db = Kysely<RoutingLiveTables>;

export class RoutingService {
  readonly #o: RoutingServiceOptions;
  readonly #clock: Clock;
  readonly #gate: SharingGate;
  #engine: RoutingEngine | undefined;
  #status: RoutingStatus;
  /** Our change id → the engine's id for it, on this instance. */
  readonly #applied = new Map<string, string>();
  #subscription: Subscription | undefined;
  #loading: Promise<void> | undefined;
  #sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(opts: RoutingServiceOptions) {
    this.#o = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#gate = opts.gate;
    this.#status = opts.source ? { state: 'loading', progress: null, source: opts.source } : { state: 'off' };
    for (const kind of [CLOSURE_KIND, SLOWDOWN_KIND]) {
      this.#gate.defineKind(kind, {
        label: kind === CLOSURE_KIND ? 'closure' : 'slow-down',
        createRoles: ROAD_CHANGE_ROLES,
        writeRoles: ROAD_CHANGE_ROLES,
        load: async (ref) => {
          const row = await this.#db()
            .selectFrom('routing_live_change')
            .selectAll()
            .where('id', '=', ref.id)
            .where('kind', '=', kind)
            .executeTakeFirst();
          return row ? this.#record(row) : null;
        },
      });
    }
  }

  #db(db: AnyDb = this.#o.store.db): Db {
    return db.withTables<RoutingLiveTables>();
  }

  get status(): RoutingStatus {
    return this.#status;
  }

  get attribution(): string {
    return ROAD_DATA_ATTRIBUTION;
  }

  /** Listens for other instances' changes and starts loading the network (does not wait for it). */
  async start(): Promise<void> {
    this.#subscription = await this.#o.bus.subscribe(
      { types: [ROUTING_CHANGE_ADDED, ROUTING_CHANGE_LIFTED], mode: 'broadcast' },
      async (event) => {
        const { id } = event.data as RoutingChangeEvent;
        if (event.type === ROUTING_CHANGE_ADDED) await this.#applyFromStore(id);
        else this.#unapply(id);
      },
    );
    const every = this.#o.expirySweepMs ?? 60_000;
    if (every > 0) {
      this.#sweeper = setInterval(() => {
        this.sweepExpired().catch((e) => this.#o.onError?.(e));
      }, every);
      this.#sweeper.unref();
    }
    if (this.#o.source) this.#loading = this.#load(this.#o.source);
  }

  /** Resolves when the network is loaded (or failed); for tests and the CLI. */
  async whenLoaded(): Promise<void> {
    await this.#loading;
  }

  async #load(source: string): Promise<void> {
    try {
      const result: LoadResult = await loadOrBuildRoadNetwork({
        source,
        dataDir: this.#o.dataDir,
        clock: this.#clock,
        onProgress: (p) => {
          this.#status = { state: 'loading', progress: p, source };
          this.#o.onProgress?.(p);
        },
      });
      this.#engine = result.engine;
      for (const row of await this.#activeRows(this.#db()).execute()) this.#apply(row);
      this.#status = {
        state: 'ready',
        source,
        fromCache: result.fromCache,
        loadMs: Math.round(result.loadMs),
      };
    } catch (e) {
      this.#status = { state: 'failed', source, error: (e as Error).message };
      this.#o.onError?.(e);
    }
  }

  /** The engine, or ROUTING_NOT_READY while it loads / when routing is off. */
  engine(): RoutingEngine {
    if (this.#engine) return this.#engine;
    const s = this.#status;
    const why =
      s.state === 'off'
        ? 'routing is off: start the platform with SAFECITY_ROADS set to an .osm.pbf file or URL'
        : s.state === 'loading'
          ? `the road network is loading (${s.progress ? `${Math.round(s.progress.fraction * 100)} %: ${s.progress.message}` : 'starting'})`
          : s.state === 'failed'
            ? `the road network failed to load: ${s.error}`
            : 'the road network is not ready';
    throw new AppError('ROUTING_NOT_READY', why);
  }

  /** Active changes: not lifted, not expired. */
  #activeRows(db: Db) {
    const now = this.#clock.now();
    return db
      .selectFrom('routing_live_change')
      .selectAll()
      .where('lifted_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .orderBy('created_at');
  }

  #apply(row: Row): void {
    if (!this.#engine || this.#applied.has(row.id)) return;
    const options = {
      ...(row.expires_at ? { expiresAt: row.expires_at } : {}),
      ...(row.radius_m !== null ? { radiusMeters: row.radius_m } : {}),
    };
    const engineId =
      row.kind === 'closure'
        ? this.#engine.addClosure(row.geometry, options)
        : this.#engine.addSlowdown(row.geometry, row.factor, options);
    this.#applied.set(row.id, engineId);
  }

  #unapply(id: string): void {
    const engineId = this.#applied.get(id);
    if (!engineId || !this.#engine) return;
    this.#applied.delete(id);
    const live = this.#engine.liveChanges().find((c) => c.id === engineId);
    if (!live) return; // already expired
    if (live.kind === 'closure') this.#engine.liftClosure(engineId);
    else this.#engine.liftSlowdown(engineId);
  }

  async #applyFromStore(id: string): Promise<void> {
    if (this.#applied.has(id) || !this.#engine) return;
    const row = await this.#db()
      .selectFrom('routing_live_change')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (row && row.lifted_at === null) this.#apply(row);
  }

  #record(row: Row): LiveChangeRecord {
    const engineId = this.#applied.get(row.id);
    const live =
      engineId && this.#engine ? this.#engine.liveChanges().find((c) => c.id === engineId) : undefined;
    return {
      id: row.id,
      kind: row.kind,
      geometry: row.geometry,
      factor: row.factor,
      radiusMeters: row.radius_m,
      reason: row.reason,
      source: row.source,
      ownerOrg: row.owner_org,
      createdBy: row.created_by,
      marking: markingOf(row),
      createdAt: row.created_at.toISOString(),
      expiresAt: row.expires_at ? row.expires_at.toISOString() : null,
      segments: live ? live.edges : null,
    };
  }

  /** A new change's row, checked (factor, radius, expiry); owner and marking are filled in by the gate. */
  #newRow(input: LiveChangeInput, source: string): Row {
    const factor = input.kind === 'closure' ? 0 : (input.factor ?? 0.5);
    if (input.kind === 'slowdown' && !(factor > 0 && factor < 1)) {
      throw new AppError(
        'ROUTING_INVALID_ARGUMENT',
        'a slow-down factor must be between 0 and 1 (0.5 = half speed)',
      );
    }
    if (input.radiusMeters !== undefined && !(input.radiusMeters > 0 && input.radiusMeters <= 50_000)) {
      throw new AppError('ROUTING_INVALID_ARGUMENT', 'radius must be between 0 and 50,000 m');
    }
    const now = this.#clock.now();
    if (input.expiresAt && input.expiresAt.getTime() <= now.getTime()) {
      throw new AppError('ROUTING_INVALID_ARGUMENT', 'expiresAt must be in the future');
    }
    return {
      id: newTimeOrderedId(now.getTime()),
      kind: input.kind,
      geometry: input.geometry,
      factor,
      radius_m: input.radiusMeters ?? null,
      reason: (input.reason ?? '').slice(0, 500),
      source,
      source_incarnation: null,
      created_by: '',
      owner_org: '',
      tlp: 'RED',
      pap: null,
      audience: null,
      read_keys: [],
      incarnation: '',
      created_at: now,
      expires_at: input.expiresAt ?? null,
      lifted_at: null,
    };
  }

  async #insert(trx: AnyDb, row: Row): Promise<void> {
    await this.#db(trx)
      .insertInto('routing_live_change')
      .values({ ...row, geometry: JSON.stringify(row.geometry), audience: JSON.stringify(row.audience) })
      .execute();
  }

  /**
   * Adds a closure or slow-down drawn by a person: the gate decides (role) and records (registry row, audit
   * record) in the transaction that stores it, marked as the request says or with the organisation's
   * default; applied here at once, announced to the other instances.
   */
  async addChange(p: GatePrincipal, input: ManualChangeInput): Promise<LiveChangeRecord> {
    // The role first: someone who may not close roads learns nothing about the geometry's validity.
    this.#gate.checkCreate(p, input.kind);
    const row = this.#newRow(input, 'api');
    // Applying first validates the geometry on the real network (invalid geometry → 400, nothing stored).
    if (this.#engine) this.#apply(row);
    try {
      await this.#o.store.transaction(async (trx) => {
        const r = await this.#gate.create(trx, p, {
          kind: row.kind,
          id: row.id,
          marking: input.marking,
          details: { source: row.source },
        });
        Object.assign(row, registered(r));
        await this.#insert(trx, row);
        await this.#announce(trx, [[ROUTING_CHANGE_ADDED, changeEvent(row, undefined)]]);
      });
    } catch (e) {
      this.#unapply(row.id);
      throw e;
    }
    return this.#record(row);
  }

  /**
   * Lifts a change: only writers (responders included) of its owner organisation who can see it. A change
   * the caller cannot see answers exactly as a missing one.
   */
  async liftChange(p: GatePrincipal, id: string, kind: LiveChangeKind): Promise<void> {
    let lifted: Row | undefined;
    await this.#o.store.transaction(async (trx) => {
      const current = await this.#activeRows(this.#db(trx))
        .where('id', '=', id)
        .where('kind', '=', kind)
        .forUpdate()
        .executeTakeFirst();
      try {
        await this.#gate.remove(trx, p, { kind, current: current ? currentObject(current) : absent(id) });
      } catch (e) {
        if (isAppError(e) && e.code === 'ACCESS_OBJECT_NOT_FOUND') throw notFound(kind, id);
        throw e;
      }
      lifted = current;
      await this.#markLifted(trx, [id]);
      if (current) await this.#announce(trx, [[ROUTING_CHANGE_LIFTED, changeEvent(undefined, current)]]);
    });
    if (!lifted) return;
    this.#unapply(id);
  }

  /**
   * Makes the change derived from a source what the source now asks for, as the platform's act: `next` null
   * lifts it; a change of another incarnation of the source, or with another effect on the roads, is lifted
   * and replaced; the same effect of the same incarnation keeps its id and follows the source's marking
   * (audited as a `share` by the platform). An event about an incarnation the registry no longer holds (a
   * late or repeated delivery) only lifts a change of a gone incarnation: it never touches the live one's.
   */
  async followSource(source: ChangeSource, next: DerivedChangeInput | null): Promise<void> {
    const row = next ? this.#newRow(next, source.name) : undefined;
    const events: [RoutingEventType, RoutingChangeEvent][] = [];
    let added: Row | undefined;
    let removed: Row | undefined;
    try {
      await this.#o.store.transaction(async (trx) => {
        // What the source asks for is decided first; its events are written with it, whatever the path.
        await (async () => {
          const current = await this.#db(trx)
            .selectFrom('routing_live_change')
            .selectAll()
            .where('source', '=', source.name)
            .where('lifted_at', 'is', null)
            .forUpdate()
            .executeTakeFirst();
          const { kind, scope, id } = source.ref;
          const live = (await currentIncarnations(trx, kind, scope, [id])).get(id);
          const lift = async (r: Row) => {
            await this.#gate.recordDeleted(trx, null, r.kind, [currentObject(r)]);
            await this.#markLifted(trx, [r.id]);
            removed = r;
            events.push([ROUTING_CHANGE_LIFTED, changeEvent(undefined, r)]);
          };
          if (source.incarnation !== live) {
            if (current && current.source_incarnation !== live) await lift(current);
            return;
          }
          if (current && next && row && sameSource(current, source, next) && sameEffect(current, row)) {
            if (!sameMarking(markingOf(current), next.marking)) {
              const readKeys = await this.#gate.recordMarkingChange(
                trx,
                null,
                current.kind,
                currentObject(current),
                next.marking,
              );
              const after: Row = { ...current, ...markingColumns(next.marking), read_keys: readKeys };
              await this.#db(trx)
                .updateTable('routing_live_change')
                .set({
                  ...markingColumns(next.marking),
                  audience: JSON.stringify(next.marking.audience),
                  read_keys: readKeys,
                })
                .where('id', '=', current.id)
                .execute();
              events.push([ROUTING_CHANGE_UPDATED, changeEvent(after, current)]);
            }
            return;
          }
          if (current) await lift(current);
          if (next && row) {
            const [r] = await this.#gate.recordDerived(
              trx,
              [
                {
                  kind: row.kind,
                  id: row.id,
                  ownerOrg: next.ownerOrg,
                  createdBy: next.createdBy,
                  marking: next.marking,
                },
              ],
              { source: source.name },
            );
            Object.assign(row, registered(r as NonNullable<typeof r>), {
              source_incarnation: source.incarnation,
            });
            // Applying validates the geometry on the real network before anything is stored.
            if (this.#engine) this.#apply(row);
            added = row;
            await this.#insert(trx, row);
            events.push([ROUTING_CHANGE_ADDED, changeEvent(row, undefined)]);
          }
        })();
        await this.#announce(trx, events);
      });
    } catch (e) {
      if (added) this.#unapply(added.id);
      throw e;
    }
    if (removed) this.#unapply(removed.id);
  }

  /**
   * Lifts, at the gate, the changes whose expiry time has passed (the engine stopped applying them at that
   * time already): registry rows removed, `delete` audited as the platform's act. Safe on every instance at
   * once: each row is lifted by one of them.
   */
  async sweepExpired(): Promise<number> {
    const now = this.#clock.now();
    const expired = await this.#o.store.transaction(async (trx) => {
      const rows = await this.#db(trx)
        .updateTable('routing_live_change')
        .set({ lifted_at: now })
        .where('lifted_at', 'is', null)
        .where('expires_at', '<=', now)
        .returningAll()
        .execute();
      for (const kind of [CLOSURE_KIND, SLOWDOWN_KIND]) {
        const of = rows.filter((r) => r.kind === kind);
        if (of.length > 0) await this.#gate.recordDeleted(trx, null, kind, of.map(currentObject));
      }
      await this.#announce(
        trx,
        rows.map((row) => [ROUTING_CHANGE_LIFTED, changeEvent(undefined, row)]),
      );
      return rows;
    });
    for (const row of expired) this.#unapply(row.id);
    return expired.length;
  }

  async #markLifted(trx: AnyDb, ids: string[]): Promise<void> {
    await this.#db(trx)
      .updateTable('routing_live_change')
      .set({ lifted_at: this.#clock.now() })
      .where('id', 'in', ids)
      .execute();
  }

  /** The active changes the principal may see (reads from outside the owner organisation are disclosures). */
  async listChanges(p: GatePrincipal, kind?: LiveChangeKind): Promise<LiveChangeRecord[]> {
    let q = this.#activeRows(this.#db()).where(this.#gate.visibleWhere(p, 'read_keys'));
    if (kind) q = q.where('kind', '=', kind);
    const records = (await q.execute()).map((r) => this.#record(r));
    for (const k of [CLOSURE_KIND, SLOWDOWN_KIND]) {
      const of = records.filter((r) => r.kind === k);
      if (of.length > 0) await this.#gate.recordDisclosures(p, k, of);
    }
    return records;
  }

  /** One active change, or ROUTING_CLOSURE/SLOWDOWN_NOT_FOUND when it is missing or the principal may not see it. */
  async getChange(p: GatePrincipal, id: string, kind: LiveChangeKind): Promise<LiveChangeRecord> {
    const row = await this.#activeRows(this.#db())
      .where(this.#gate.visibleWhere(p, 'read_keys'))
      .where('id', '=', id)
      .where('kind', '=', kind)
      .executeTakeFirst();
    if (!row) throw notFound(kind, id);
    const record = this.#record(row);
    await this.#gate.recordDisclosures(p, kind, [record]);
    return record;
  }

  /** How many active closures and slow-downs the principal may see (the network's summary). */
  async countChanges(p: GatePrincipal): Promise<{ closures: number; slowdowns: number }> {
    const rows = await this.#activeRows(this.#db())
      .clearSelect()
      .clearOrderBy()
      .select(['kind', (eb) => eb.fn.countAll<string>().as('n')])
      .where(this.#gate.visibleWhere(p, 'read_keys'))
      .groupBy('kind')
      .execute();
    const n = (k: LiveChangeKind) => Number(rows.find((r) => r.kind === k)?.n ?? 0);
    return { closures: n(CLOSURE_KIND), slowdowns: n(SLOWDOWN_KIND) };
  }

  /** Announces changes to every instance, in the transaction that makes them (outbox). */
  async #announce(trx: AnyDb, events: [RoutingEventType, RoutingChangeEvent][]): Promise<void> {
    await this.#o.events.emitAll(
      trx,
      events.map(([type, data]) => ({ type, data })),
    );
  }

  async stop(): Promise<void> {
    if (this.#sweeper) clearInterval(this.#sweeper);
    await this.#subscription?.unsubscribe();
    await this.#loading?.catch(() => {});
  }
}

function markingOf(row: Pick<Row, 'tlp' | 'pap' | 'audience'>): Marking {
  const m: Marking = { tlp: row.tlp as Tlp, audience: row.audience as Marking['audience'] };
  if (row.pap) m.pap = row.pap as NonNullable<Marking['pap']>;
  return m;
}

function markingColumns(m: Marking): Pick<Row, 'tlp' | 'pap' | 'audience'> {
  return { tlp: m.tlp, pap: m.pap ?? null, audience: m.audience };
}

/** The columns a row takes from its registry entry. */
function registered(r: {
  ownerOrg: string;
  createdBy: string;
  marking: Marking;
  readKeys: string[];
  incarnation: string;
}): Partial<Row> {
  return {
    owner_org: r.ownerOrg,
    created_by: r.createdBy,
    ...markingColumns(r.marking),
    read_keys: r.readKeys,
    incarnation: r.incarnation,
  };
}

function currentObject(row: Row): CurrentObject {
  return { id: row.id, ownerOrg: row.owner_org, createdBy: row.created_by, marking: markingOf(row) };
}

/** A missing change, to the gate: invisible to everyone, so a lift answers exactly as for an invisible one. */
function absent(id: string): CurrentObject {
  return {
    id,
    ownerOrg: '',
    createdBy: '',
    marking: { tlp: 'RED', audience: { orgs: [], communities: [], users: [] } },
  };
}

function notFound(kind: LiveChangeKind, id: string): AppError {
  return kind === 'slowdown'
    ? new AppError('ROUTING_SLOWDOWN_NOT_FOUND', `no active slow-down ${id}`)
    : new AppError('ROUTING_CLOSURE_NOT_FOUND', `no active closure ${id}`);
}

function changeEvent(now: Row | undefined, before: Row | undefined): RoutingChangeEvent {
  const r = (now ?? before) as Row;
  return {
    kind: r.kind,
    id: r.id,
    ownerOrg: r.owner_org,
    readKeys: now ? [...now.read_keys] : [],
    previousReadKeys: before ? [...before.read_keys] : [],
    marking: markingOf(r),
    ...(before ? { previousMarking: markingOf(before) } : {}),
  };
}

/** The same incarnation of the same source, owned by the same organisation and creator. */
function sameSource(row: Row, source: ChangeSource, next: DerivedChangeInput): boolean {
  return (
    row.source_incarnation === source.incarnation &&
    row.owner_org === next.ownerOrg &&
    row.created_by === next.createdBy
  );
}

/** The same effect on the roads: kind, geometry, factor, radius, expiry and reason. */
function sameEffect(row: Row, next: Row): boolean {
  return (
    row.kind === next.kind &&
    row.factor === next.factor &&
    row.radius_m === next.radius_m &&
    row.reason === next.reason &&
    (row.expires_at?.getTime() ?? null) === (next.expires_at?.getTime() ?? null) &&
    // The stored geometry comes back from jsonb with its keys reordered.
    canonicalJson(row.geometry) === canonicalJson(next.geometry)
  );
}

function sameMarking(a: Marking, b: Marking): boolean {
  const norm = (m: Marking) =>
    JSON.stringify([
      m.tlp,
      m.pap ?? null,
      [...m.audience.orgs].sort(),
      [...m.audience.communities].sort(),
      [...m.audience.users].sort(),
    ]);
  return norm(a) === norm(b);
}
