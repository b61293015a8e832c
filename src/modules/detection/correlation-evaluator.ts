/**
 * Correlation: signals of different domains (cyber, physical, social) within the window that are near
 * the newest one — within the radius, or linked to it through the named Relationships in at most N hops
 * (the engine's relationship graph, only the edges the owner may see). One cause, one alert: a firing
 * that shares an entity (or, by radius, a place) with an alert of the rule still open updates it.
 */
import type { Evidence } from './detection-result.ts';
import { conditionHolds, type Evaluator, evidenceOf, Fifo, type RuleContext } from './evaluator.ts';
import { distanceMetres } from './geo.ts';
import type { Observation } from './observation.ts';
import type { CorrelationRule, Domain } from './rule-language.ts';

interface Sig {
  t: number;
  seq: number;
  domain: Domain;
  e: Evidence;
}

export class CorrelationEvaluator implements Evaluator {
  readonly #buffer = new Fifo<Sig>();
  readonly #windowMs: number;

  constructor(private readonly r: CorrelationRule) {
    this.#windowMs = r.window.seconds * 1000;
  }

  #expire(now: number): void {
    const from = now - this.#windowMs;
    while (this.#buffer.length > 0 && this.#buffer.peek()!.t < from) this.#buffer.shift();
  }

  observe(o: Observation, ctx: RuleContext): void {
    let domain: Domain | undefined;
    for (const s of this.r.signals) {
      if (o.domain !== undefined && o.domain !== s.domain) continue;
      if (ctx.matches(s.match, o) && conditionHolds(s.where, o.value)) {
        domain = s.domain;
        break;
      }
    }
    if (!domain) return;
    this.#expire(o.observedAt);
    const e = evidenceOf(o);
    if (!e.domain) e.domain = domain;
    const sig: Sig = { t: o.observedAt, seq: ctx.seq, domain, e };
    const { radiusMetres, relationships, maxHops } = this.r.near;
    let otherDomain = false;
    for (const s of this.#buffer) if (s.domain !== domain) otherDomain = true;
    this.#buffer.push(sig);
    if (!otherDomain) return;
    let linked: Set<string> | undefined;
    if (relationships && maxHops) linked = ctx.linked(o.tenant, o.entityId, relationships, maxHops);
    const here = o.location?.coordinates;
    const near: Sig[] = [];
    for (const s of this.#buffer) {
      if (s === sig) continue;
      const byPlace =
        radiusMetres !== undefined &&
        here &&
        s.e.location &&
        distanceMetres(here, s.e.location.coordinates) <= radiusMetres;
      if (byPlace || linked?.has(s.e.entityId)) near.push(s);
    }
    const domains = new Set<Domain>([domain, ...near.map((s) => s.domain)]);
    if (domains.size < (this.r.minDomains ?? 2)) return;
    const evidence = [...near.slice(-(ctx.limits.maxEvidence - 1)).map((s) => s.e), e];
    const ids = new Set(evidence.map((x) => x.entityId));
    const open = ctx.findAlert(
      o.observedAt,
      (a) =>
        a.entities.some((id) => ids.has(id)) ||
        (radiusMetres !== undefined &&
          !!here &&
          !!a.location &&
          distanceMetres(here, a.location.coordinates) <= radiusMetres),
    );
    const how = [
      radiusMetres !== undefined ? `within ${radiusMetres} m` : '',
      linked ? `linked through ${relationships!.join(', ')} (≤ ${maxHops} hops)` : '',
    ]
      .filter(Boolean)
      .join(' or ');
    ctx.fire(open ? open.cause : `${o.entityId}@${o.observedAt}`, evidence, o.observedAt, {
      tenant: o.tenant,
      location: o.location ?? evidence.find((x) => x.location)?.location,
      reason: `${[...domains].sort().join(' + ')} signals ${how} within ${this.r.window.seconds} s`,
      details: { domains: [...domains].sort().join(','), signals: evidence.length },
    });
  }

  tick(now: number): void {
    this.#expire(now);
  }

  entries(): number {
    return this.#buffer.length;
  }

  bytes(): number {
    return this.#buffer.length * 350;
  }

  save(): unknown {
    return this.#buffer.toArray();
  }

  load(state: unknown): void {
    const xs = state as Sig[];
    while (this.#buffer.length > 0) this.#buffer.shift();
    for (const x of xs) this.#buffer.push(x);
  }
}
