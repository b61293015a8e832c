/**
 * Dry-runs: stored history replayed through a rule — a stored one or a draft — in a fresh engine of its
 * own: what would have fired, when, with which evidence. Nothing is raised, nothing is written.
 *
 * What is replayed is what the rule's owner organisation may read (its systems' keys, as the live service
 * evaluates) **and** what the caller may read: a user of another organisation who can see a rule does not
 * learn, through its evidence, of observations hidden from that user. Each observation is an attribute
 * instance of the history (context-live's temporal store), in observation order; time moves the engine on
 * (silence) as the replay goes and up to the window's end.
 */
import { AppError } from '../../kernel/errors.ts';
import type { ReplayObservation } from '../context-live/index.ts';
import type { GatePrincipal, SharingGate } from '../sharing/index.ts';
import type { EngineFactory, EngineRule, EngineSignal, Observation } from './engine-port.ts';
import { RULE_KIND, type RuleService } from './rule-service.ts';

/** The history port: context-live's TemporalService.replay (what every reader given may see). */
export interface HistoryReplay {
  replay(
    tenant: string,
    readers: ReadonlyArray<Pick<GatePrincipal, 'readKeys'>>,
    q: { from: Date; to: Date; types?: string[]; attrs?: string[]; limit: number },
  ): AsyncGenerator<ReplayObservation[]>;
}

export interface DryRunFiring {
  kind: EngineSignal['kind'];
  at: string;
  key: string;
  severity: string | null;
  category: string | null;
  reason: string | null;
  evidence: EngineSignal['evidence'];
}

export interface DryRunAnswer {
  from: string;
  to: string;
  /** Observations replayed. */
  observations: number;
  /** Distinct entities among them. */
  entities: number;
  elapsedMs: number;
  firings: DryRunFiring[];
  /** The observation budget or the firing list's length was reached: the answer covers the start only. */
  truncated: boolean;
}

export interface DryRunServiceOptions {
  rules: RuleService;
  history: HistoryReplay;
  gate: Pick<SharingGate, 'orgReadKeys' | 'checkCreate'>;
  engine: EngineFactory;
  /** Most observations one dry-run replays (default 10,000,000: a day of 100 sensors each second). */
  maxObservations?: number;
  /** Longest window (default 31 days). */
  maxWindowMs?: number;
  /** Most firings answered (default 10,000). */
  maxFirings?: number;
}

const DAY = 86_400_000;

export class DryRunService {
  readonly #o: DryRunServiceOptions;

  constructor(o: DryRunServiceOptions) {
    this.#o = o;
  }

  /** A stored rule the caller may see, over its owner's (and the caller's) view of the history. */
  async stored(p: GatePrincipal, id: string, window: { from: string; to: string }): Promise<DryRunAnswer> {
    const rule = await this.#o.rules.get(p, id);
    return this.#run(
      p,
      rule.ownerOrg,
      { id: rule.id, version: rule.version, ownerOrg: rule.ownerOrg, rule: rule.rule },
      window,
    );
  }

  /** A draft rule (validated first: 400 with every problem), over the caller's organisation's view. */
  async draft(p: GatePrincipal, doc: unknown, window: { from: string; to: string }): Promise<DryRunAnswer> {
    // Drafts are for those who may write rules.
    this.#o.gate.checkCreate(p, RULE_KIND);
    const rule = this.#o.rules.check(doc);
    return this.#run(p, p.orgId, { id: 'draft', version: 0, ownerOrg: p.orgId, rule }, window);
  }

  async #run(
    p: GatePrincipal,
    ownerOrg: string,
    rule: EngineRule,
    window: { from: string; to: string },
  ): Promise<DryRunAnswer> {
    const from = new Date(window.from);
    const to = new Date(window.to);
    if (!(from.getTime() < to.getTime())) {
      throw new AppError(
        'DETECTION_INVALID_INPUT',
        'the dry-run window must end after it starts (from < to)',
      );
    }
    if (to.getTime() - from.getTime() > (this.#o.maxWindowMs ?? 31 * DAY)) {
      throw new AppError('DETECTION_DRY_RUN_TOO_LARGE', 'a dry-run window is at most 31 days: narrow it');
    }
    const started = performance.now();
    // The history read is what the gate let through for the owner and the caller: every rule may see it.
    const engine = this.#o.engine(() => true);
    const firings: DryRunFiring[] = [];
    const maxFirings = this.#o.maxFirings ?? 10_000;
    let truncated = false;
    const keep = (signals: EngineSignal[]) => {
      for (const s of signals) {
        if (firings.length >= maxFirings) {
          truncated = true;
          return;
        }
        firings.push({
          kind: s.kind,
          at: s.at,
          key: s.key,
          severity: s.severity ?? null,
          category: s.category ?? null,
          reason: s.reason ?? null,
          evidence: s.evidence,
        });
      }
    };
    keep(engine.load(rule));
    const ownerKeys = await this.#o.gate.orgReadKeys(ownerOrg);
    const reads = engine.reads?.(rule) ?? {};
    const limit = this.#o.maxObservations ?? 10_000_000;
    let observations = 0;
    const entities = new Set<string>();
    // Each entity's last position and Relationships seen in the replay: history holds attributes one by one,
    // while a live change carries the whole entity (rules read positions and links with every observation).
    const context = new Map<string, Record<string, unknown>>();
    let lastTick = from.getTime();
    replay: for await (const page of this.#o.history.replay('', [{ readKeys: ownerKeys }, p], {
      from,
      to,
      ...(reads.types ? { types: reads.types } : {}),
      ...(reads.attrs ? { attrs: reads.attrs } : {}),
      limit,
    })) {
      for (const r of page) {
        if (observations >= limit) {
          truncated = true;
          break replay;
        }
        observations++;
        entities.add(r.entityId);
        const at = Date.parse(r.observedAt);
        if (at - lastTick >= 1000) {
          keep(engine.tick(new Date(at)));
          lastTick = at;
        }
        keep(engine.observe(observationOf(r, context)));
        if (truncated) break replay;
      }
    }
    if (!truncated) keep(engine.tick(to));
    return {
      from: from.toISOString(),
      to: to.toISOString(),
      observations,
      entities: entities.size,
      elapsedMs: Math.round(performance.now() - started),
      firings,
      truncated,
    };
  }
}

const LOCATION = 'https://uri.etsi.org/ngsi-ld/location';

function observationOf(r: ReplayObservation, context: Map<string, Record<string, unknown>>): Observation {
  let known = context.get(r.entityId);
  const linked = r.instance.type === 'Relationship' || r.instance.type === 'ListRelationship';
  if (r.attr === LOCATION || linked) {
    if (!known) {
      known = Object.create(null) as Record<string, unknown>;
      context.set(r.entityId, known);
    }
    known[r.attr] = r.instance;
  }
  return {
    tenant: '',
    entityId: r.entityId,
    entityTypes: r.entityTypes,
    entity: { ...(known ?? {}), id: r.entityId, type: r.entityTypes, [r.attr]: r.instance },
    changed: [r.attr],
    at: r.observedAt,
    ownerOrg: r.ownerOrg,
    marking: r.marking,
    readKeys: [],
  };
}
