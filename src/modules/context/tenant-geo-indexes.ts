/**
 * The in-memory geo indexes of the tenants, one per tenant (geo-index.ts): loaded from the store on first
 * use, kept in step with this instance's writes (after their commit) and with every instance's entity
 * events on the bus, and rebuilt in the background once older than the refresh period.
 */
import type { EventBus, PlatformEvent, Subscription } from '../../ports/event-bus.ts';
import type { Store } from '../../ports/store.ts';
import {
  ENTITY_CREATED,
  ENTITY_DELETED,
  ENTITY_UPDATED,
  type EntityChangeEvent,
} from './entity-change-event.ts';
import type { EntityRecord } from './entity-repository.ts';
import { loadGeoRows } from './entity-repository.ts';
import { GeoIndexHolder, type TenantGeoIndex } from './geo-index.ts';

/** A committed change as the index needs it: the record after it, or its id once deleted. */
export interface IndexedChange {
  kind: 'created' | 'updated' | 'deleted';
  record: EntityRecord;
}

export class TenantGeoIndexes {
  readonly #store: Store;
  readonly #bus: EventBus;
  readonly #refreshMs: number;
  readonly #geo = new Map<string, Promise<GeoIndexHolder>>();
  #sync: Promise<Subscription> | undefined;

  constructor(opts: { store: Store; bus: EventBus; refreshMs?: number | undefined }) {
    this.#store = opts.store;
    this.#bus = opts.bus;
    this.#refreshMs = opts.refreshMs ?? 600_000;
  }

  /** The tenant's index, loaded on first use and refreshed in the background when stale. */
  async indexFor(tenant: string): Promise<TenantGeoIndex> {
    let p = this.#geo.get(tenant);
    if (!p) {
      p = (async () => {
        this.#sync ??= this.#bus.subscribe({ types: ['context.entity.>'], mode: 'broadcast' }, (e) =>
          this.#applyEvent(e),
        );
        await this.#sync;
        const holder = new GeoIndexHolder();
        await holder.rebuild(() => loadGeoRows(this.#store.db, tenant));
        return holder;
      })();
      this.#geo.set(tenant, p);
      p.catch(() => this.#geo.delete(tenant));
    }
    const holder = await p;
    if (this.#refreshMs > 0 && Date.now() - holder.loadedAt > this.#refreshMs && !holder.rebuilding) {
      holder.rebuild(() => loadGeoRows(this.#store.db, tenant)).catch(() => undefined);
    }
    return holder.current;
  }

  /** Applies this instance's committed changes at once (the bus brings them again, idempotently). */
  async apply(tenant: string, changes: readonly IndexedChange[], now: string): Promise<void> {
    const p = this.#geo.get(tenant);
    if (!p || changes.length === 0) return;
    const index = await p;
    for (const c of changes) {
      if (c.kind === 'deleted') index.delete(c.record.id, now);
      else index.upsert(c.record.entity, c.record.readKeys, c.record.entity.modifiedAt ?? now);
    }
  }

  /** Applies an entity change (ours after commit, or another instance's event) to a loaded index. */
  async #applyEvent(event: PlatformEvent): Promise<void> {
    if (event.type !== ENTITY_CREATED && event.type !== ENTITY_UPDATED && event.type !== ENTITY_DELETED)
      return;
    const data = event.data as EntityChangeEvent;
    const p = this.#geo.get(data.tenant);
    if (!p) return;
    const index = await p;
    if (data.entity) index.upsert(data.entity, data.readKeys, data.entity.modifiedAt ?? event.time);
    else index.delete(data.entityId, event.time);
  }

  /** Stops following other instances' writes and forgets the indexes. */
  async close(): Promise<void> {
    const sub = this.#sync;
    this.#sync = undefined;
    if (sub) await (await sub).unsubscribe();
    this.#geo.clear();
  }
}
