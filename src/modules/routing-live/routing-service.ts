/**
 * First-responder routing as a platform service: the road network loaded in the background, and live
 * changes (closures, slow-downs) kept in the store and spread over the bus, so that every instance and
 * every restart applies the same ones. A change is applied on the instance that accepted it before the
 * call returns: the very next query there sees it; other instances apply it when the event arrives.
 */
import { type Clock, systemClock } from '../../kernel/clock.ts';
import { AppError } from '../../kernel/errors.ts';
import { newTimeOrderedId } from '../../kernel/ids.ts';
import type { EventBus, Subscription } from '../../ports/event-bus.ts';
import type { Store } from '../../ports/store.ts';
import { appendAudit } from '../audit/index.ts';
import {
  type ImportProgress,
  type LoadResult,
  loadOrBuildRoadNetwork,
  ROAD_DATA_ATTRIBUTION,
  type RoutingEngine,
} from '../routing/index.ts';
import type { RoutingLiveTables } from './migrations.ts';

export const ROUTING_CHANGE_ADDED = 'routing.change.added';
export const ROUTING_CHANGE_LIFTED = 'routing.change.lifted';

export type LiveChangeKind = 'closure' | 'slowdown';

export interface LiveChangeInput {
  kind: LiveChangeKind;
  /** GeoJSON geometry (Point with radius, LineString, Polygon, Multi*, GeometryCollection) or Feature. */
  geometry: unknown;
  /** Speed factor for slow-downs (0 < factor < 1 slows, e.g. 0.5 = half speed). */
  factor?: number;
  radiusMeters?: number;
  expiresAt?: Date;
  reason?: string;
  /** Who asked: 'api' for operators; `entity:<id>` for changes derived from context entities. */
  source?: string;
}

export interface LiveChangeRecord {
  id: string;
  kind: LiveChangeKind;
  geometry: unknown;
  factor: number;
  radiusMeters: number | null;
  reason: string;
  source: string;
  createdBy: string | null;
  ownerOrg: string | null;
  createdAt: string;
  expiresAt: string | null;
  /** Road segments the change covers on this instance's network (null while the network loads). */
  segments: number | null;
}

export type RoutingStatus =
  | { state: 'off' }
  | { state: 'loading'; progress: ImportProgress | null; source: string }
  | { state: 'ready'; source: string; fromCache: boolean; loadMs: number }
  | { state: 'failed'; source: string; error: string };

export interface RoutingServiceOptions {
  store: Store;
  bus: EventBus;
  clock?: Clock;
  /** Road network source (.osm.pbf path, extract name or URL); unset: routing is off. */
  source?: string | undefined;
  dataDir: string;
  onProgress?: (p: ImportProgress) => void;
  onError?: (e: unknown) => void;
  /** Instance name used in events. */
  instance?: string;
}

type Actor = { userId: string; orgId: string } | null;
type Row = RoutingLiveTables['routing_live_change'];

export class RoutingService {
  readonly #o: RoutingServiceOptions;
  readonly #clock: Clock;
  #engine: RoutingEngine | undefined;
  #status: RoutingStatus;
  /** Our change id → the engine's id for it, on this instance. */
  readonly #applied = new Map<string, string>();
  #subscription: Subscription | undefined;
  #loading: Promise<void> | undefined;

  constructor(opts: RoutingServiceOptions) {
    this.#o = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#status = opts.source ? { state: 'loading', progress: null, source: opts.source } : { state: 'off' };
  }

  #db() {
    return this.#o.store.db.withTables<RoutingLiveTables>();
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
        const { id } = event.data as { id: string };
        if (event.type === ROUTING_CHANGE_ADDED) await this.#applyFromStore(id);
        else this.#unapply(id);
      },
    );
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
      for (const row of await this.#activeRows()) this.#apply(row);
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

  async #activeRows(): Promise<Row[]> {
    const now = this.#clock.now();
    return this.#db()
      .selectFrom('routing_live_change')
      .selectAll()
      .where('lifted_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .orderBy('created_at')
      .execute();
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
      createdBy: row.created_by,
      ownerOrg: row.owner_org,
      createdAt: row.created_at.toISOString(),
      expiresAt: row.expires_at ? row.expires_at.toISOString() : null,
      segments: live ? live.edges : null,
    };
  }

  /**
   * Adds a closure or slow-down: validated against the network (when loaded), stored and audited in one
   * transaction, applied here at once, announced to the other instances.
   */
  async addChange(actor: Actor, input: LiveChangeInput): Promise<LiveChangeRecord> {
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
    const row: Row = {
      id: newTimeOrderedId(now.getTime()),
      kind: input.kind,
      geometry: input.geometry,
      factor,
      radius_m: input.radiusMeters ?? null,
      reason: (input.reason ?? '').slice(0, 500),
      source: input.source ?? 'api',
      created_by: actor?.userId ?? null,
      owner_org: actor?.orgId ?? null,
      created_at: now,
      expires_at: input.expiresAt ?? null,
      lifted_at: null,
    };
    // Applying first validates the geometry on the real network (invalid geometry → 400, nothing stored).
    if (this.#engine) this.#apply(row);
    try {
      await this.#o.store.transaction(async (trx) => {
        await trx
          .withTables<RoutingLiveTables>()
          .insertInto('routing_live_change')
          .values({ ...row, geometry: JSON.stringify(row.geometry) })
          .execute();
        await appendAudit(
          trx,
          {
            actorId: actor?.userId ?? null,
            actorOrg: actor?.orgId ?? null,
            action: 'create',
            objectKind: `routing.${row.kind}`,
            objectId: row.id,
            ownerOrg: actor?.orgId,
            details: {
              reason: row.reason,
              source: row.source,
              expiresAt: row.expires_at?.toISOString() ?? null,
            },
          },
          this.#clock,
        );
      });
    } catch (e) {
      this.#unapply(row.id);
      throw e;
    }
    await this.#announce(ROUTING_CHANGE_ADDED, row.id);
    return this.#record(row);
  }

  async liftChange(actor: Actor, id: string, kind?: LiveChangeKind): Promise<void> {
    const now = this.#clock.now();
    const lifted = await this.#o.store.transaction(async (trx) => {
      const db = trx.withTables<RoutingLiveTables>();
      let q = db
        .updateTable('routing_live_change')
        .set({ lifted_at: now })
        .where('id', '=', id)
        .where('lifted_at', 'is', null);
      if (kind) q = q.where('kind', '=', kind);
      const row = await q.returning(['id', 'kind']).executeTakeFirst();
      if (!row) return undefined;
      await appendAudit(
        trx,
        {
          actorId: actor?.userId ?? null,
          actorOrg: actor?.orgId ?? null,
          action: 'delete',
          objectKind: `routing.${row.kind}`,
          objectId: id,
          ownerOrg: actor?.orgId,
        },
        this.#clock,
      );
      return row;
    });
    if (!lifted) {
      throw new AppError(
        kind === 'slowdown' ? 'ROUTING_SLOWDOWN_NOT_FOUND' : 'ROUTING_CLOSURE_NOT_FOUND',
        `no active ${kind ?? 'change'} ${id}`,
      );
    }
    this.#unapply(id);
    await this.#announce(ROUTING_CHANGE_LIFTED, id);
  }

  /** Lifts the active change derived from a source (e.g. `entity:urn:…`), if any. */
  async liftBySource(actor: Actor, source: string): Promise<boolean> {
    const row = await this.#db()
      .selectFrom('routing_live_change')
      .select('id')
      .where('source', '=', source)
      .where('lifted_at', 'is', null)
      .executeTakeFirst();
    if (!row) return false;
    await this.liftChange(actor, row.id);
    return true;
  }

  async listChanges(kind?: LiveChangeKind): Promise<LiveChangeRecord[]> {
    const rows = await this.#activeRows();
    return rows.filter((r) => !kind || r.kind === kind).map((r) => this.#record(r));
  }

  async #announce(type: string, id: string): Promise<void> {
    await this.#o.bus.publish({
      id: newTimeOrderedId(),
      type,
      time: this.#clock.now().toISOString(),
      source: this.#o.instance ?? 'routing',
      data: { id },
    });
  }

  async stop(): Promise<void> {
    await this.#subscription?.unsubscribe();
    await this.#loading?.catch(() => {});
  }
}
