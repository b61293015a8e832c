/**
 * Detection as a platform service: entity changes from the bus go through the running rules, and what the
 * rules say becomes Alert entities (alert-service.ts).
 *
 * **Each rule's state lives in one place.** Rules are split into `partitions` by their id. An instance
 * evaluates a partition only while it holds the partition's lease (`detection_partition_lease`, renewed
 * every third of its length, times from the database's clock), and consumes the partition's own durable
 * consumer group (`detection-p<k>`) — so with several instances on NATS each event is evaluated once per
 * partition, by the instance that holds that partition's state. Instances announce themselves
 * (`detection_member`) and take at most their fair share (partitions ÷ live instances), giving back what they
 * hold beyond it (state checkpointed first). An instance that dies stops renewing: its partitions' leases
 * lapse and another instance takes them over, restores the partition's last checkpoint and consumes the events
 * its group kept meanwhile (unacknowledged ones are delivered again).
 *
 * **What a rule sees.** A rule is fed an observation only when its owner organisation may read the entity
 * (`gate.canSee` with the organisation's keys, as its systems read: no user's TLP:RED keys).
 *
 * **No alert doubled.** An alert's entity id is derived from the rule and the cause's deduplication key, so
 * a signal given twice (a redelivery, a state restored from an older checkpoint) updates the same alert. A
 * signal that could not be written is retried on the next tick, not dropped.
 */
import { sql } from 'kysely';
import { type Clock, systemClock } from '../../kernel/clock.ts';
import type { EventBus, PlatformEvent, Subscription } from '../../ports/event-bus.ts';
import type { Store } from '../../ports/store.ts';
import { ENTITY_CREATED, ENTITY_DELETED, ENTITY_UPDATED, type EntityChangeEvent } from '../context/index.ts';
import type { Marking, SharingGate } from '../sharing/index.ts';
import type { AlertService, Evidence } from './alert-service.ts';
import type { EngineFactory, EngineSignal, Observation, RuleEngine } from './engine-port.ts';
import type { DetectionLiveTables } from './migrations.ts';
import {
  RULE_CREATED,
  RULE_DELETED,
  RULE_UPDATED,
  type RuleChangeEvent,
  type RuleRecord,
  type RuleService,
} from './rule-service.ts';

export const DETECTION_ENTITY_EVENTS = [ENTITY_CREATED, ENTITY_UPDATED, ENTITY_DELETED];

export interface DetectionServiceOptions {
  store: Store;
  bus: EventBus;
  gate: Pick<SharingGate, 'orgReadKeys' | 'canSee'>;
  rules: RuleService;
  alerts: AlertService;
  engine: EngineFactory;
  /** This instance's name (leases are held under it). */
  instanceId: string;
  clock?: Clock;
  /** How many partitions rules are split into (default 8; every instance must use the same). */
  partitions?: number;
  /** How long a partition lease lasts without renewal (default 10 s). */
  leaseMs?: number;
  /** How often held partitions are checkpointed (default 5 s; also on stop and when one is given back). */
  checkpointMs?: number;
  /** How often time moves the engine (silence rules) and failed signals are retried (default 1 s). */
  tickMs?: number;
  onError?: (message: string, err: unknown) => void;
}

interface Partition {
  k: number;
  engine: RuleEngine;
  rules: Map<string, RuleRecord>;
  /** Owner and marking of the entities seen (by id, oldest first), for the evidence of signals. */
  sources: Map<string, { ownerOrg: string; marking: Marking; type: string | undefined }>;
  subscription: Subscription | undefined;
}

const MAX_SOURCES = 200_000;
const MAX_PENDING = 10_000;

/** The partition a rule belongs to (FNV-1a of its id). */
export function partitionOf(ruleId: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < ruleId.length; i++) {
    h ^= ruleId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

export class DetectionService {
  readonly #o: DetectionServiceOptions;
  readonly #clock: Clock;
  readonly #n: number;
  readonly #leaseMs: number;
  readonly #held = new Map<number, Partition>();
  readonly #pending: { signal: EngineSignal; partition: number }[] = [];
  readonly #orgKeys = new Map<string, { keys: string[]; at: number }>();
  #ruleEvents: Subscription | undefined;
  #timers: ReturnType<typeof setInterval>[] = [];
  #balancing: Promise<void> | undefined;
  #stopped = false;
  /** Serialises work on the partitions (bus handlers, ticks, leases): the engine is not re-entrant. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(o: DetectionServiceOptions) {
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
    this.#n = Math.max(1, o.partitions ?? 8);
    this.#leaseMs = o.leaseMs ?? 10_000;
  }

  #db() {
    return this.#o.store.db.withTables<DetectionLiveTables>();
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  #error(message: string, err: unknown): void {
    this.#o.onError?.(message, err);
  }

  /** The partitions this instance evaluates now. */
  heldPartitions(): number[] {
    return [...this.#held.keys()].sort((a, b) => a - b);
  }

  async start(): Promise<void> {
    this.#ruleEvents = await this.#o.bus.subscribe(
      { types: [RULE_CREATED, RULE_UPDATED, RULE_DELETED], mode: 'broadcast' },
      async (event) => {
        const d = event.data as RuleChangeEvent;
        await this.#serial(() => this.#reloadRule(d.id));
      },
    );
    await this.balance();
    const every = (ms: number, fn: () => Promise<unknown>) => {
      const t = setInterval(() => {
        if (!this.#stopped) fn().catch((e) => this.#error('detection', e));
      }, ms);
      t.unref();
      this.#timers.push(t);
    };
    every(Math.max(200, Math.floor(this.#leaseMs / 3)), () => this.balance());
    every(this.#o.checkpointMs ?? 5000, () => this.#serial(() => this.checkpoint()));
    every(this.#o.tickMs ?? 1000, () => this.tick());
  }

  /** Renews this instance's leases, takes free partitions up to its fair share, gives back the rest. */
  balance(): Promise<void> {
    this.#balancing ??= this.#serial(() => this.#balance()).finally(() => {
      this.#balancing = undefined;
    });
    return this.#balancing;
  }

  async #balance(): Promise<void> {
    if (this.#stopped) return;
    const me = this.#o.instanceId;
    const until = sql<Date>`now() + ${`${this.#leaseMs} milliseconds`}::interval`;
    await this.#db()
      .insertInto('detection_member')
      .values({ holder: me, expires_at: until })
      .onConflict((oc) => oc.column('holder').doUpdateSet({ expires_at: until }))
      .execute();
    // Renew what we hold; a lease that was taken from us (we were too slow) is dropped here.
    const renewed = await this.#db()
      .updateTable('detection_partition_lease')
      .set({ expires_at: until })
      .where('holder', '=', me)
      .returning('partition')
      .execute();
    const still = new Set(renewed.map((r) => r.partition));
    for (const k of [...this.#held.keys()]) if (!still.has(k)) await this.#drop(k, false);
    const members = await sql<{ n: number }>`select count(*)::int as n from detection_member
      where expires_at > now()`.execute(this.#o.store.db);
    const live = Math.max(1, members.rows[0]?.n ?? 1);
    const share = Math.ceil(this.#n / live);
    // Give back beyond the fair share (another instance joined): state checkpointed first.
    for (const k of [...this.#held.keys()].sort((a, b) => b - a)) {
      if (this.#held.size <= share) break;
      await this.#drop(k, true);
    }
    for (let k = 0; k < this.#n && this.#held.size < share; k++) {
      if (this.#held.has(k)) continue;
      const got = await sql<{
        partition: number;
      }>`insert into detection_partition_lease (partition, holder, expires_at)
        values (${k}, ${me}, ${until})
        on conflict (partition) do update set holder = excluded.holder, expires_at = excluded.expires_at
          where detection_partition_lease.expires_at < now() or detection_partition_lease.holder = excluded.holder
        returning partition`.execute(this.#o.store.db);
      if (got.rows.length > 0) await this.#take(k);
    }
  }

  async #take(k: number): Promise<void> {
    const p: Partition = {
      k,
      engine: this.#o.engine((org, readKeys) => {
        const keys = this.#orgKeys.get(org)?.keys;
        return keys !== undefined && this.#o.gate.canSee(keys, { readKeys });
      }),
      rules: new Map(),
      sources: new Map(),
      subscription: undefined,
    };
    this.#held.set(k, p);
    const rules = (await this.#o.rules.running()).filter((r) => partitionOf(r.id, this.#n) === k);
    for (const rule of rules) await this.#load(p, rule);
    const saved = await this.#db()
      .selectFrom('detection_checkpoint')
      .selectAll()
      .where('partition', '=', k)
      .executeTakeFirst();
    if (saved && saved.partitions === this.#n) {
      try {
        p.engine.restore(typeof saved.state === 'string' ? JSON.parse(saved.state) : saved.state);
      } catch (e) {
        this.#error(
          `detection: partition ${k}'s checkpoint could not be restored; its rules start afresh`,
          e,
        );
      }
    }
    p.subscription = await this.#o.bus.subscribe(
      { types: DETECTION_ENTITY_EVENTS, mode: 'group', group: `detection-p${k}` },
      (event) => this.#serial(() => this.#onEntityEvent(p, event)),
    );
  }

  /** Stops evaluating a partition: its handler drained, state checkpointed, the lease given back (if ours). */
  async #drop(k: number, giveBack: boolean): Promise<void> {
    const p = this.#held.get(k);
    if (!p) return;
    this.#held.delete(k);
    // The handler may be waiting behind us in the queue: unsubscribing must not wait for it here.
    const unsubscribed = p.subscription?.unsubscribe();
    if (giveBack) {
      await this.#checkpointPartition(p);
      await this.#db()
        .deleteFrom('detection_partition_lease')
        .where('partition', '=', k)
        .where('holder', '=', this.#o.instanceId)
        .execute();
    }
    void unsubscribed?.catch((e) => this.#error('detection: leaving a partition', e));
  }

  async #load(p: Partition, rule: RuleRecord): Promise<void> {
    p.rules.set(rule.id, rule);
    await this.#ownerKeys(rule.ownerOrg);
    let signals: EngineSignal[];
    try {
      signals = p.engine.load({
        id: rule.id,
        version: rule.version,
        ownerOrg: rule.ownerOrg,
        rule: rule.rule,
      });
    } catch (e) {
      signals = [
        suspendedSignal(rule.id, `the rule could not be loaded: ${(e as Error).message}`, this.#clock),
      ];
    }
    await this.#apply(p, signals);
  }

  /** A rule changed somewhere: load its new version, or unload it (disabled, suspended, deleted). */
  async #reloadRule(id: string): Promise<void> {
    const p = this.#held.get(partitionOf(id, this.#n));
    if (!p) return;
    const rule = await this.#o.rules.load(id);
    const running = rule?.enabled && rule.suspendedReason === null ? rule : undefined;
    const had = p.rules.get(id);
    if (!running) {
      if (had) {
        p.engine.unload(id);
        p.rules.delete(id);
      }
      return;
    }
    if (had && had.version === running.version) {
      p.rules.set(id, running); // marking or owner facts may have changed
      return;
    }
    if (had) p.engine.unload(id);
    await this.#load(p, running);
  }

  async #ownerKeys(org: string): Promise<string[]> {
    const now = Date.now();
    const hit = this.#orgKeys.get(org);
    if (hit && now - hit.at < 5000) return hit.keys;
    const keys = await this.#o.gate.orgReadKeys(org);
    this.#orgKeys.set(org, { keys, at: now });
    return keys;
  }

  async #onEntityEvent(p: Partition, event: PlatformEvent): Promise<void> {
    // Given back meanwhile: refused, so that the bus delivers it again to the partition's next holder.
    if (!this.#held.has(p.k)) throw new Error(`detection partition ${p.k} is no longer held here`);
    if (p.rules.size === 0) return;
    const d = event.data as EntityChangeEvent;
    const deleted = event.type === ENTITY_DELETED;
    const entity = (d.entity ?? d.previous ?? {}) as Record<string, unknown>;
    const o: Observation = {
      tenant: d.tenant,
      entityId: d.entityId,
      entityTypes: d.entityType,
      entity,
      changed: d.changedAttributes,
      at: d.observedAt ?? event.time,
      ownerOrg: d.ownerOrg,
      createdBy: d.createdBy,
      marking: d.marking,
      readKeys: d.readKeys,
      deletedAttributes: d.deletedAttributes,
      ...(deleted ? { deleted: true } : {}),
    };
    const source = d.entityId;
    p.sources.delete(source);
    p.sources.set(source, { ownerOrg: d.ownerOrg, marking: d.marking, type: d.entityType[0] });
    if (p.sources.size > MAX_SOURCES) {
      const oldest = p.sources.keys().next().value;
      if (oldest !== undefined) p.sources.delete(oldest);
    }
    // The owners' keys are fresh (the engine's canSee reads them from memory).
    for (const org of new Set([...p.rules.values()].map((r) => r.ownerOrg))) await this.#ownerKeys(org);
    let signals: EngineSignal[];
    try {
      signals = p.engine.observe(o);
    } catch (e) {
      // The engine suspends a failing rule itself; an engine that throws is a bug: the event is not retried.
      this.#error('detection: the engine failed on an observation', e);
      return;
    }
    await this.#apply(p, signals);
  }

  /** Time passes for every held partition; signals that could not be written before are tried again. */
  tick(): Promise<void> {
    return this.#serial(async () => {
      const now = this.#clock.now();
      const retry = this.#pending.splice(0);
      for (const { signal, partition } of retry) {
        const p = this.#held.get(partition);
        if (p) await this.#apply(p, [signal]);
      }
      for (const p of this.#held.values()) {
        let signals: EngineSignal[];
        try {
          signals = p.engine.tick(now);
        } catch (e) {
          this.#error('detection: the engine failed on a tick', e);
          continue;
        }
        await this.#apply(p, signals);
      }
    });
  }

  async #apply(p: Partition, signals: EngineSignal[]): Promise<void> {
    for (const s of signals) {
      const rule = p.rules.get(s.ruleId);
      if (!rule) continue;
      try {
        if (s.kind === 'suspended') {
          p.engine.unload(rule.id);
          p.rules.delete(rule.id);
          await this.#o.rules.suspend(rule.id, rule.version, s.reason ?? 'suspended by the engine');
          continue;
        }
        const evidence: Evidence[] = [];
        for (const e of s.evidence) {
          const known = e.ownerOrg !== undefined && e.marking !== undefined;
          const src = known ? undefined : p.sources.get(e.entityId);
          // Evidence whose marking is not known is left out rather than guessed.
          if (!known && !src) continue;
          evidence.push({
            ...e,
            entityType: e.entityType ?? src?.type,
            ownerOrg: (e.ownerOrg ?? src?.ownerOrg) as string,
            marking: (e.marking ?? src?.marking) as Marking,
          });
        }
        await this.#o.alerts.apply({
          kind: s.kind,
          rule,
          key: s.key,
          cause: s.cause ?? s.key,
          at: s.at,
          severity: s.severity ?? 'medium',
          category: s.category ?? 'security',
          subCategory: s.subCategory,
          description: s.description,
          location: s.location,
          evidence,
          ...(s.sources ? { sources: s.sources } : {}),
        });
      } catch (e) {
        this.#error(`detection: the signal of rule ${s.ruleId} could not be applied; retried`, e);
        if (this.#pending.length < MAX_PENDING) this.#pending.push({ signal: s, partition: p.k });
      }
    }
  }

  /** Writes every held rule's state (checkpoint); also on stop and when a partition is given back. */
  async checkpoint(): Promise<void> {
    for (const p of this.#held.values()) await this.#checkpointPartition(p);
  }

  async #checkpointPartition(p: Partition): Promise<void> {
    let state: unknown;
    try {
      state = p.engine.checkpoint();
    } catch (e) {
      this.#error(`detection: checkpointing partition ${p.k} failed`, e);
      return;
    }
    const json = JSON.stringify(state ?? null);
    const now = this.#clock.now();
    await this.#db()
      .insertInto('detection_checkpoint')
      .values({ partition: p.k, partitions: this.#n, state: json, updated_at: now })
      .onConflict((oc) =>
        oc.column('partition').doUpdateSet({ partitions: this.#n, state: json, updated_at: now }),
      )
      .execute();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    for (const t of this.#timers.splice(0)) clearInterval(t);
    await this.#ruleEvents?.unsubscribe();
    await this.#balancing?.catch(() => {});
    this.#stopped = true;
    await this.#serial(async () => {
      for (const k of [...this.#held.keys()]) await this.#drop(k, true);
    });
    await this.#db().deleteFrom('detection_member').where('holder', '=', this.#o.instanceId).execute();
  }
}

function suspendedSignal(ruleId: string, reason: string, clock: Clock): EngineSignal {
  return { kind: 'suspended', ruleId, key: '', at: clock.now().toISOString(), evidence: [], reason };
}
