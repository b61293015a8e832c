/**
 * Geofences for moving entities: enter (fires on entering, clears on leaving), leave (the reverse) and
 * dwell (fires after `dwellSeconds` inside, clears on leaving), against the rule's polygon or an entity's
 * (which the rule's owner must be able to see). The first position of an entity sets where it is without
 * firing: a crossing needs a position on each side.
 */
import type { Evidence } from './detection-result.ts';
import { type Evaluator, evidenceOf, type RuleContext } from './evaluator.ts';
import { insideArea, type PreparedArea, prepareArea } from './geo.ts';
import type { Observation } from './observation.ts';
import type { GeofenceRule } from './rule-language.ts';

interface Where {
  inside: boolean;
  since: number;
  e: Evidence;
  tenant: string;
  raised: boolean;
}

function pointOf(o: Observation): number[] | undefined {
  const v = o.value as { type?: unknown; coordinates?: unknown } | null;
  if (v && typeof v === 'object' && v.type === 'Point' && Array.isArray(v.coordinates)) {
    const c = v.coordinates as unknown[];
    if (typeof c[0] === 'number' && typeof c[1] === 'number') return c as number[];
  }
  return undefined;
}

export class GeofenceEvaluator implements Evaluator {
  readonly #where = new Map<string, Where>();
  readonly #dwelling = new Set<string>();
  readonly #fixed: PreparedArea | undefined;

  constructor(private readonly r: GeofenceRule) {
    this.#fixed = 'polygon' in r.area ? prepareArea(r.area.polygon) : undefined;
  }

  #area(o: Observation, ctx: RuleContext): PreparedArea | undefined {
    if (this.#fixed) return this.#fixed;
    return 'entityId' in this.r.area
      ? ctx.areaOf(o.tenant, this.r.area.entityId, this.r.area.attribute ?? 'location')
      : undefined;
  }

  observe(o: Observation, ctx: RuleContext): void {
    const p = pointOf(o);
    if (!p) return;
    const area = this.#area(o, ctx);
    if (!area) return;
    const inside = insideArea(p, area);
    const e = evidenceOf(o);
    const was = this.#where.get(o.entityId);
    const now: Where = {
      inside,
      since: was && was.inside === inside ? was.since : o.observedAt,
      e,
      tenant: o.tenant,
      raised: was !== undefined && was.inside === inside && was.raised,
    };
    this.#where.set(o.entityId, now);
    const at = o.observedAt;
    const { trigger } = this.r;
    const name = 'entityId' in this.r.area ? this.r.area.entityId : "the rule's area";
    if (!was || was.inside === inside) {
      if (trigger === 'dwell' && inside && !now.raised) this.#dwell(o.entityId, now, at, ctx);
      return;
    }
    // A crossing.
    if (trigger === 'enter' || trigger === 'leave') {
      const fires = (trigger === 'enter') === inside;
      if (fires) {
        now.raised = true;
        ctx.fire(o.entityId, [was.e, e], at, {
          tenant: o.tenant,
          location: { type: 'Point', coordinates: p },
          reason: `${o.entityId} ${inside ? 'entered' : 'left'} ${name}`,
          details: { inside },
        });
      } else {
        ctx.resolve(o.entityId, at, `${o.entityId} ${inside ? 'is back in' : 'left'} ${name}`, o.tenant);
      }
      return;
    }
    if (inside) this.#dwell(o.entityId, now, at, ctx);
    else {
      this.#dwelling.delete(o.entityId);
      ctx.resolve(o.entityId, at, `${o.entityId} left ${name}`, o.tenant);
    }
  }

  #dwell(id: string, w: Where, at: number, ctx: RuleContext): void {
    const need = (this.r.dwellSeconds ?? 0) * 1000;
    if (at - w.since < need) {
      this.#dwelling.add(id);
      return;
    }
    this.#dwelling.delete(id);
    w.raised = true;
    const name = 'entityId' in this.r.area ? this.r.area.entityId : "the rule's area";
    ctx.fire(id, [w.e], at, {
      tenant: w.tenant,
      location: w.e.location ?? (w.e.value as Evidence['location']),
      reason: `${id} has stayed in ${name} for ${Math.round((at - w.since) / 1000)} s (at least ${this.r.dwellSeconds} s)`,
      details: { dwellSeconds: Math.round((at - w.since) / 1000) },
    });
  }

  tick(now: number, ctx: RuleContext): void {
    for (const id of this.#dwelling) {
      const w = this.#where.get(id);
      if (!w?.inside || w.raised) {
        this.#dwelling.delete(id);
        continue;
      }
      if (now - w.since >= (this.r.dwellSeconds ?? 0) * 1000) this.#dwell(id, w, now, ctx);
    }
  }

  forget(entityId: string): void {
    this.#where.delete(entityId);
    this.#dwelling.delete(entityId);
  }

  entries(): number {
    return this.#where.size;
  }

  bytes(): number {
    return this.#where.size * 400;
  }

  save(): unknown {
    return [...this.#where];
  }

  load(state: unknown): void {
    this.#where.clear();
    this.#dwelling.clear();
    for (const [id, w] of state as [string, Where][]) {
      this.#where.set(id, w);
      if (w.inside && !w.raised && this.r.trigger === 'dwell') this.#dwelling.add(id);
    }
  }
}
