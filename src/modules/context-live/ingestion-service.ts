/**
 * IoT ingestion: messages from MQTT (embedded broker or external) and HTTP are mapped to entity
 * fragments and written in batches through the entity writer (the NGSI-LD core), which publishes the
 * change events that feed notifications and history.
 *
 * A message resolves `accepted` once its fragments are durable, or `rejected` once it is recorded as a
 * dead letter with the reason. Transient write failures are retried; a message that still cannot be
 * written is dead-lettered with its payload, so nothing valid is silently dropped.
 */
import type { Clock } from '../../kernel/clock.ts';
import type { ErrorCode } from '../../kernel/error-codes.ts';
import { isAppError } from '../../kernel/errors.ts';
import type { DeadLetterStore } from './dead-letter-store.ts';
import {
  type IngestTarget,
  mapEntities,
  mapMeasurements,
  parsePayload,
  parseTopic,
} from './ingest-mapping.ts';
import { MicroBatcher } from './micro-batcher.ts';
import type { EntityFragment, EntityWriterPort, IngestPrincipal, JsonLdContext } from './ports.ts';

export interface IngestMessage {
  source: 'mqtt' | 'http';
  /** The MQTT topic, or the path below /ingest for HTTP (same scheme). */
  topic: string;
  payload: Buffer | string;
  /** The authenticated service account; null is refused. */
  principal: IngestPrincipal | null;
}

export type IngestOutcome =
  | { status: 'accepted'; fragments: number }
  | { status: 'rejected'; reason: string; deadLetterId?: string; code?: ErrorCode };

interface Job {
  tenant: string;
  principal: IngestPrincipal;
  context: JsonLdContext | undefined;
  fragment: EntityFragment;
  /** Set when this fragment was refused. */
  error?: string;
}

export interface IngestionServiceDeps {
  writer: EntityWriterPort;
  deadLetters: DeadLetterStore;
  clock: Clock;
  maxBatch?: number;
  /** Most fragments in one call of the writer (the core's batch limit, default 1000). */
  writerBatch?: number;
  /** Attempts at writing a batch before its messages are dead-lettered (transient failures). */
  writeAttempts?: number;
  /**
   * Under load, how long a batch may wait for as many messages as the last one (default 10 ms): a write's
   * fixed cost is then paid once for them all (see MicroBatcher).
   */
  lingerMs?: number;
}

export class IngestionService {
  readonly #d: IngestionServiceDeps;
  readonly #batchers = new Map<string, MicroBatcher<Job>>();
  #accepted = 0;
  #rejected = 0;
  #writes = 0;
  #written = 0;

  constructor(deps: IngestionServiceDeps) {
    this.#d = deps;
  }

  /** Messages accepted and rejected, and the writer calls and fragments they took (for metrics). */
  get counters(): { accepted: number; rejected: number; writes: number; fragments: number } {
    return {
      accepted: this.#accepted,
      rejected: this.#rejected,
      writes: this.#writes,
      fragments: this.#written,
    };
  }

  #batcher(
    tenant: string,
    principal: IngestPrincipal,
    context: JsonLdContext | undefined,
  ): MicroBatcher<Job> {
    const key = `${tenant}\u0000${principal.userId}\u0000${principal.orgId}\u0000${JSON.stringify(context ?? null)}`;
    let b = this.#batchers.get(key);
    if (!b) {
      b = new MicroBatcher<Job>(
        (jobs) => this.#write(tenant, principal, context, jobs),
        this.#d.maxBatch ?? 5000,
        { lingerMs: this.#d.lingerMs ?? 10 },
      );
      this.#batchers.set(key, b);
    }
    return b;
  }

  /**
   * Writes jobs in rounds: a round holds each entity at most once (the k-th fragment of every entity is in
   * round k), so that every observation of an entity becomes its own change event and its own history
   * instance, in order; a round holds at most `writerBatch` fragments.
   */
  async #write(
    tenant: string,
    principal: IngestPrincipal,
    context: JsonLdContext | undefined,
    jobs: Job[],
  ): Promise<void> {
    const rounds: Job[][] = [];
    const seen = new Map<string, number>();
    for (const j of jobs) {
      const k = seen.get(j.fragment.id) ?? 0;
      seen.set(j.fragment.id, k + 1);
      const round = rounds[k] ?? [];
      round.push(j);
      rounds[k] = round;
    }
    const max = this.#d.writerBatch ?? 1000;
    for (const round of rounds) {
      for (let i = 0; i < round.length; i += max) {
        await this.#writeRound(tenant, principal, context, round.slice(i, i + max));
      }
    }
  }

  async #writeRound(
    tenant: string,
    principal: IngestPrincipal,
    context: JsonLdContext | undefined,
    jobs: Job[],
  ): Promise<void> {
    const attempts = this.#d.writeAttempts ?? 3;
    for (let a = 1; ; a++) {
      try {
        this.#writes++;
        this.#written += jobs.length;
        const results = await this.#d.writer.upsertFragments(
          tenant,
          principal,
          jobs.map((j) => j.fragment),
          context,
        );
        jobs.forEach((j, i) => {
          const r = results[i];
          if (r !== undefined) j.error = r;
        });
        return;
      } catch (e) {
        // A refusal of the whole batch (kind invalid/forbidden...) is not worth retrying.
        const transient = !isAppError(e) || e.kind === 'unavailable' || e.kind === 'internal';
        if (!transient || a >= attempts) {
          const reason = isAppError(e) ? `${e.code}: ${e.message}` : `write failed: ${(e as Error).message}`;
          for (const j of jobs) j.error = reason;
          return;
        }
        await new Promise((r) => setTimeout(r, 100 * 2 ** a));
      }
    }
  }

  /** Ingests one message; never throws for a bad message (it becomes a dead letter). */
  async ingest(msg: IngestMessage): Promise<IngestOutcome> {
    let target: IngestTarget | undefined;
    try {
      if (!msg.principal) throw new Error('not authenticated as a service account');
      this.#d.writer.checkWriter?.(msg.principal);
      target = parseTopic(msg.topic);
      const payload = parsePayload(msg.payload);
      let fragments: EntityFragment[];
      let context: JsonLdContext | undefined;
      if (target.kind === 'measurements') {
        fragments = mapMeasurements(target.entityType, target.deviceId, payload);
      } else {
        ({ fragments, context } = mapEntities(payload));
      }
      const principal = msg.principal;
      const batcher = this.#batcher(target.tenant, principal, context);
      const jobs: Job[] = fragments.map((fragment) => ({
        tenant: target!.tenant,
        principal,
        context,
        fragment,
      }));
      await batcher.addMany(jobs);
      const errors = jobs.filter((j) => j.error !== undefined);
      if (errors.length > 0) {
        const reason =
          errors.length === jobs.length
            ? errors[0]!.error!
            : `${errors.length} of ${jobs.length} fragments refused: ${errors[0]!.error}`;
        return this.#reject(msg, target, reason);
      }
      this.#accepted += 1;
      return { status: 'accepted', fragments: jobs.length };
    } catch (e) {
      const reason = isAppError(e) || e instanceof Error ? e.message : String(e);
      return this.#reject(
        msg,
        target,
        reason,
        isAppError(e) && e.code === 'AUTH_ROLE_REQUIRED' ? e.code : undefined,
      );
    }
  }

  async #reject(
    msg: IngestMessage,
    target: IngestTarget | undefined,
    reason: string,
    code?: ErrorCode,
  ): Promise<IngestOutcome> {
    this.#rejected += 1;
    await this.#d.deadLetters.add([
      {
        receivedAt: this.#d.clock.now(),
        source: msg.source,
        topic: msg.topic,
        tenant: target?.tenant ?? null,
        orgId: msg.principal?.orgId ?? null,
        principal: msg.principal?.userId ?? null,
        reason,
        payload: typeof msg.payload === 'string' ? msg.payload : msg.payload.toString('utf8'),
      },
    ]);
    return code ? { status: 'rejected', reason, code } : { status: 'rejected', reason };
  }

  /** Resolves when every message handed in so far is written. */
  async drain(): Promise<void> {
    await Promise.all([...this.#batchers.values()].map((b) => b.drain()));
  }
}
