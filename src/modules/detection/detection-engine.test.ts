import { describe, expect, it } from 'vitest';
import type { Marking } from '../sharing/index.ts';
import {
  type AlertSignal,
  DetectionEngine,
  type DetectionEngineOptions,
  type DetectionResult,
  fruinLevel,
  type Observation,
  type Rule,
  validateRule,
} from './index.ts';
import { SQUARE, VALID_RULES } from './testing.ts';

const GREEN: Marking = { tlp: 'GREEN', audience: { orgs: [], communities: [], users: [] } };
const AMBER_POLICE: Marking = { tlp: 'AMBER', audience: { orgs: ['police'], communities: [], users: [] } };
const T0 = Date.parse('2026-11-30T00:00:00Z');
const S = 1000;

/** Visibility as the gate would decide it, reduced: GREEN to all, AMBER to the owner and audience orgs. */
const canSee: DetectionEngineOptions['canSee'] = (org, v) =>
  v.marking.tlp === 'GREEN' || v.ownerOrg === org || v.marking.audience.orgs.includes(org);

function rule(doc: unknown): Rule {
  const r = validateRule(doc);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.rule;
}

function engineWith(doc: unknown, opts: Partial<DetectionEngineOptions> & { owner?: string } = {}) {
  const engine = new DetectionEngine({ canSee, ...opts });
  engine.upsertRule({ id: 'r1', version: 1, ownerOrg: opts.owner ?? 'police', rule: rule(doc) });
  return engine;
}

function obs(
  p: Partial<Observation> & { entityId: string; value: unknown; observedAt: number },
): Observation {
  return {
    tenant: '',
    entityTypes: ['T'],
    attribute: 'a',
    ownerOrg: 'metro',
    readKeys: [],
    marking: GREEN,
    ...p,
  };
}

const signals = (rs: DetectionResult[]) => rs.filter((r): r is AlertSignal => r.type !== 'suspended');
const types = (rs: DetectionResult[]) => rs.map((r) => r.type);

/** Feeds values one second apart from T0 + startS; answers every result. */
function feed(
  engine: DetectionEngine,
  values: number[],
  p: Partial<Observation> = {},
  startS = 0,
): DetectionResult[] {
  const out: DetectionResult[] = [];
  values.forEach((value, i) => {
    out.push(...engine.observe(obs({ entityId: 'e1', value, observedAt: T0 + (startS + i) * S, ...p })));
  });
  return out;
}

const base = { name: 'r', severity: 'high', category: 'security' } as const;

describe('threshold', () => {
  const doc = {
    ...base,
    kind: 'threshold',
    match: { types: ['T'], attribute: 'a' },
    above: 30,
    hysteresis: 2,
  };

  it('fires above the limit, once, and clears only past the hysteresis band (no flapping)', () => {
    const e = engineWith(doc);
    const rs = feed(e, [29, 31, 30.5, 29, 31, 28.5, 27.9, 31]);
    expect(types(rs)).toEqual(['raise', 'clear', 'update']);
    const [raise, clear, again] = signals(rs);
    expect(raise).toMatchObject({
      ruleId: 'r1',
      ruleVersion: 1,
      severity: 'high',
      category: 'security',
      tenant: '',
    });
    expect(raise?.evidence.map((x) => x.value)).toEqual([31]);
    expect(raise?.reason).toBe('a 31 above 30');
    expect(clear?.at).toBe(T0 + 6 * S);
    // Raised again within the suppression window: the same alert, updated.
    expect(again?.alertKey).toBe(raise?.alertKey);
  });

  it('waits for the minimum duration, on observations and on ticks', () => {
    const e = engineWith({ ...doc, forSeconds: 10 });
    expect(feed(e, [31, 32, 29, 31, 33])).toEqual([]); // dipped at 29: the clock restarts at the 4th
    expect(types(e.tick(T0 + 12 * S))).toEqual([]);
    const rs = e.tick(T0 + 13 * S);
    expect(types(rs)).toEqual(['raise']);
    expect(signals(rs)[0]?.evidence.map((x) => x.value)).toEqual([31, 33]);
    expect(signals(rs)[0]?.reason).toContain('for 10 s');
  });

  it('a range fires outside [below, above]', () => {
    const e = engineWith({ ...doc, below: 10 });
    expect(types(feed(e, [20, 5, 15]))).toEqual(['raise', 'clear']);
  });

  it('a new alert after the suppression window', () => {
    const e = engineWith({ ...doc, dedup: { seconds: 5 } });
    const a = signals(feed(e, [31, 20]));
    const b = signals(feed(e, [31], {}, 100));
    expect(b[0]?.type).toBe('raise');
    expect(b[0]?.alertKey).not.toBe(a[0]?.alertKey);
  });
});

describe('rate and anomaly', () => {
  it('rate: a rise within the window fires, slow drift does not', () => {
    const e = engineWith({
      ...base,
      kind: 'rate',
      match: { types: ['T'], attribute: 'a' },
      window: { seconds: 10 },
      riseBy: 5,
    });
    // +1 every 3 s: 3.3 per 10 s, never more than 5.
    const slow = Array.from({ length: 10 }, (_, i) => i);
    expect(
      slow.flatMap((v, i) => e.observe(obs({ entityId: 'e1', value: v, observedAt: T0 + i * 3 * S }))),
    ).toEqual([]);
    const rs = feed(e, [10, 13, 17], {}, 100);
    expect(types(rs)).toEqual(['raise']);
    expect(signals(rs)[0]?.details).toEqual({ change: 7, windowSeconds: 10 });
    expect(types(feed(e, [17, 17], {}, 120))).toEqual(['clear']);
  });

  it('anomaly (robust z): nothing during warm-up, a spike fires, the next normal value clears', () => {
    const e = engineWith(VALID_RULES.anomaly, {});
    const noisy = (i: number) => 20 + ((i * 7) % 5) * 0.1;
    expect(feed(e, [100, ...Array.from({ length: 28 }, (_, i) => noisy(i))])).toEqual([]); // 100 is in warm-up
    const warm = feed(
      e,
      Array.from({ length: 30 }, (_, i) => noisy(i)),
      {},
      29,
    );
    expect(warm).toEqual([]);
    const rs = feed(e, [45, 20.2, 20.1], {}, 59);
    expect(types(rs)).toEqual(['raise', 'clear']);
    expect(signals(rs)[0]?.details?.method).toBe('robustZ');
  });

  it('anomaly (EWMA) with hour-of-day seasonality: high at night is anomalous, by day it is not', () => {
    const e = engineWith({
      ...VALID_RULES.anomaly,
      method: 'ewma',
      window: { samples: 20 },
      warmup: 10,
      threshold: 4,
      seasonality: 'hourOfDay',
    });
    const out: DetectionResult[] = [];
    // Ten days: 100 ± 1 at noon, 10 ± 1 at 3 o'clock.
    for (let d = 0; d < 10; d++) {
      for (const [h, v] of [
        [12, 100],
        [3, 10],
      ] as const) {
        for (let m = 0; m < 3; m++) {
          const at = T0 + d * 86_400 * S + h * 3_600 * S + m * 60 * S;
          out.push(...e.observe(obs({ entityId: 'e1', value: v + (m - 1), observedAt: at })));
        }
      }
    }
    expect(types(out)).toEqual([]);
    const day = T0 + 10 * 86_400 * S;
    expect(e.observe(obs({ entityId: 'e1', value: 100, observedAt: day + 12 * 3_600 * S }))).toEqual([]);
    const night = e.observe(obs({ entityId: 'e1', value: 100, observedAt: day + 3 * 3_600 * S }));
    expect(types(night)).toEqual(['raise']);
    expect(signals(night)[0]?.details?.seasonal).toBe(true);
  });
});

describe('silence', () => {
  it('fires after the expected interval without a report, clears when it reports again', () => {
    const e = engineWith({
      ...VALID_RULES.silence,
      match: { types: ['Camera'] },
      expectedIntervalSeconds: 60,
    });
    const cam = (id: string, t: number) =>
      obs({ entityId: id, entityTypes: ['Camera'], attribute: 'status', value: 'ok', observedAt: t });
    e.observe(cam('c1', T0));
    e.observe(cam('c2', T0 + 30 * S));
    expect(e.tick(T0 + 60 * S)).toEqual([]);
    const rs = e.tick(T0 + 61 * S);
    expect(signals(rs).map((s) => [s.type, s.cause])).toEqual([['raise', 'c1']]);
    expect(signals(rs)[0]?.reason).toContain('has not reported for 61 s');
    expect(e.tick(T0 + 62 * S)).toEqual([]); // once
    expect(signals(e.observe(cam('c1', T0 + 70 * S))).map((s) => [s.type, s.cause])).toEqual([
      ['clear', 'c1'],
    ]);
    expect(signals(e.tick(T0 + 91 * S)).map((s) => s.cause)).toEqual(['c2']);
  });

  it('a deleted entity is no longer watched', () => {
    const e = engineWith(VALID_RULES.silence);
    e.observe(obs({ entityId: 'c1', entityTypes: ['Camera'], value: 1, observedAt: T0 }));
    e.observe(
      obs({ entityId: 'c1', entityTypes: ['Camera'], value: null, observedAt: T0 + S, deleted: true }),
    );
    expect(e.tick(T0 + 3_600 * S)).toEqual([]);
  });
});

describe('geofence', () => {
  const inside = { type: 'Point', coordinates: [2.05, 48.05] };
  const outside = { type: 'Point', coordinates: [2.5, 48.05] };
  const move = (e: DetectionEngine, p: unknown, t: number) =>
    e.observe(
      obs({
        entityId: 'v1',
        entityTypes: ['Vehicle'],
        attribute: 'location',
        value: p,
        observedAt: T0 + t * S,
      }),
    );

  it('enter fires on crossing in (not on a first position inside), clears on leaving', () => {
    const e = engineWith(VALID_RULES.geofence);
    expect(move(e, inside, 0)).toEqual([]);
    expect(types(move(e, outside, 1))).toEqual([]);
    expect(types(move(e, inside, 2))).toEqual(['raise']);
    expect(types(move(e, inside, 3))).toEqual([]);
    expect(types(move(e, outside, 4))).toEqual(['clear']);
  });

  it('leave fires on crossing out', () => {
    const e = engineWith({ ...VALID_RULES.geofence, trigger: 'leave' });
    move(e, inside, 0);
    expect(types(move(e, outside, 1))).toEqual(['raise']);
  });

  it('dwell fires after the dwell time inside (tick or observation), not before', () => {
    const e = engineWith({ ...VALID_RULES.geofence, trigger: 'dwell', dwellSeconds: 300 });
    move(e, outside, 0);
    move(e, inside, 10);
    expect(e.tick(T0 + 309 * S)).toEqual([]);
    expect(types(e.tick(T0 + 310 * S))).toEqual(['raise']);
    expect(types(move(e, inside, 400))).toEqual([]);
    expect(types(move(e, outside, 401))).toEqual(['clear']);
    move(e, inside, 402);
    move(e, outside, 500); // left before 300 s
    expect(e.tick(T0 + 1000 * S)).toEqual([]);
  });

  it('an area from an entity the owner may see; not from one it may not', () => {
    const doc = { ...VALID_RULES.geofence, area: { entityId: 'urn:zone:1' } };
    for (const [marking, fires] of [
      [GREEN, true],
      [{ tlp: 'AMBER', audience: { orgs: [], communities: [], users: [] } } as Marking, false],
    ] as const) {
      const e = engineWith(doc);
      e.observe(
        obs({
          entityId: 'urn:zone:1',
          entityTypes: ['Zone'],
          attribute: 'location',
          value: SQUARE,
          observedAt: T0,
          marking,
        }),
      );
      move(e, outside, 1);
      expect(types(move(e, inside, 2)), marking.tlp).toEqual(fires ? ['raise'] : []);
    }
  });
});

describe('crowd density and flow', () => {
  it('Fruin levels of service (walkway and queueing)', () => {
    expect(['A', 'B', 'C', 'D', 'E', 'F']).toEqual([0.2, 0.35, 0.6, 0.9, 1.5, 2.5].map((d) => fruinLevel(d)));
    expect(fruinLevel(0)).toBe('A');
    expect(fruinLevel(4, 'queueing')).toBe('E');
    expect(fruinLevel(6, 'queueing')).toBe('F');
  });

  it('fires at the Fruin level or the share of capacity, whichever comes first; clears 10 % below', () => {
    const e = engineWith({ ...VALID_RULES.crowdDensity, raiseAt: { level: 'E' } }); // 1,000 m²
    const people = (n: number, t: number) =>
      e.observe(
        obs({
          entityId: 'hall',
          entityTypes: ['CrowdFlowObserved'],
          attribute: 'peopleCount',
          value: n,
          observedAt: T0 + t * S,
        }),
      );
    expect(people(1000, 0)).toEqual([]); // 1.0 /m²: D
    const rs = people(1100, 1); // 1.1 /m²: E
    expect(types(rs)).toEqual(['raise']);
    expect(signals(rs)[0]?.details).toEqual({ density: 1.1, level: 'E', capacityRatio: 0.733 });
    expect(people(1050, 2)).toEqual([]); // within 10 %
    expect(types(people(900, 3))).toEqual(['clear']);
    const cap = engineWith(VALID_RULES.crowdDensity); // E or 90 % of 1,500 (1.35 /m² > E's 1.075)
    expect(
      types(
        cap.observe(
          obs({
            entityId: 'h',
            entityTypes: ['CrowdFlowObserved'],
            attribute: 'peopleCount',
            value: 1080,
            observedAt: T0,
          }),
        ),
      ),
    ).toEqual(['raise']);
  });

  it('flow imbalance: in ≫ out over the gates of one venue within the window', () => {
    const e = engineWith({ ...VALID_RULES.flowImbalance, groupBy: { relationship: 'refVenue' } });
    const gate = (id: string, venue: string, attribute: string, value: number, t: number) =>
      e.observe(
        obs({
          entityId: id,
          entityTypes: ['CrowdFlowObserved'],
          attribute,
          value,
          observedAt: T0 + t * S,
          relationships: { refVenue: [venue] },
        }),
      );
    expect(gate('g1', 'stadium', 'peopleCountTowards', 60, 0)).toEqual([]);
    expect(gate('g2', 'stadium', 'peopleCountAway', 40, 1)).toEqual([]);
    expect(gate('g3', 'arena', 'peopleCountTowards', 80, 2)).toEqual([]); // another venue
    const rs = gate('g2', 'stadium', 'peopleCountTowards', 50, 3); // 110 in, 40 out: not 3 ×
    expect(rs).toEqual([]);
    const fire = gate('g1', 'stadium', 'peopleCountTowards', 100, 4); // 210 in ≥ 3 × 40
    expect(signals(fire).map((s) => [s.type, s.cause])).toEqual([['raise', 'stadium']]);
    expect(signals(fire)[0]?.evidence.map((x) => x.entityId)).toEqual(['g1', 'g2', 'g2', 'g1']);
    // The window passes: in and out fall to nothing, the alert clears.
    expect(types(e.tick(T0 + 700 * S))).toEqual(['clear']);
  });
});

describe('sequence and count', () => {
  const plc = (attribute: string, value: unknown, t: number, entityId = 'plc1') =>
    obs({ entityId, entityTypes: ['PLC'], attribute, value, observedAt: T0 + t * S });

  it('3 failed logins then a config change, in order, within the window', () => {
    const e = engineWith(VALID_RULES.sequence);
    const run = (xs: Observation[]) => xs.flatMap((x) => e.observe(x));
    // A config change before the failures does not count; a success is not a failure.
    expect(
      run([
        plc('configVersion', 1, 0),
        plc('loginResult', 'failed', 1),
        plc('loginResult', 'ok', 2),
        plc('loginResult', 'failed', 3),
        plc('loginResult', 'failed', 4, 'plc2'),
      ]),
    ).toEqual([]);
    const rs = run([plc('loginResult', 'failed', 5), plc('configVersion', 2, 6)]);
    expect(types(rs)).toEqual(['raise']);
    expect(signals(rs)[0]?.evidence.map((x) => [x.attribute, x.value])).toEqual([
      ['loginResult', 'failed'],
      ['loginResult', 'failed'],
      ['loginResult', 'failed'],
      ['configVersion', 2],
    ]);
  });

  it('the window expires: failures older than the window do not complete the sequence', () => {
    const e = engineWith(VALID_RULES.sequence);
    for (const t of [0, 1, 2]) e.observe(plc('loginResult', 'failed', t));
    expect(e.observe(plc('configVersion', 2, 601))).toEqual([]);
    for (const t of [700, 701]) e.observe(plc('loginResult', 'failed', t));
    expect(e.observe(plc('configVersion', 3, 702))).toEqual([]); // two after expiry are not three
  });

  it('5 reports of one type within 300 m in 10 minutes: one alert, updated by more reports', () => {
    const e = engineWith(VALID_RULES.count);
    const report = (id: string, lon: number, t: number, type = 'suspiciousPackage') =>
      e.observeReport({
        id,
        reportType: type,
        domain: 'social',
        observedAt: T0 + t * S,
        location: { type: 'Point', coordinates: [lon, 48.85] },
        ownerOrg: 'city',
        readKeys: [],
        marking: GREEN,
      });
    // 0.001° of longitude at 48.85° N is about 73 m.
    const out = [
      report('a', 2.35, 0),
      report('b', 2.351, 10),
      report('c', 2.352, 20),
      report('far', 2.4, 30),
      report('other-type', 2.35, 35, 'fire'),
      report('d', 2.353, 40),
    ].flat();
    expect(out).toEqual([]);
    const rs = report('e', 2.3535, 50);
    expect(signals(rs).map((s) => [s.type, s.evidence.map((x) => x.entityId)])).toEqual([
      ['raise', ['a', 'b', 'c', 'd', 'e']],
    ]);
    const more = report('f', 2.351, 60);
    expect(types(more)).toEqual(['update']);
    expect(signals(more)[0]?.alertKey).toBe(signals(rs)[0]?.alertKey);
    expect(report('late', 2.351, 1000)).toEqual([]); // the first five left the window
  });

  it('count per entity', () => {
    const e = engineWith({
      ...VALID_RULES.count,
      radiusMetres: undefined,
      by: 'entity',
      count: 3,
      where: { equals: 'failed' },
      match: { types: ['PLC'], attribute: 'loginResult' },
    });
    const rs = [0, 1, 2].flatMap((t) =>
      e.observe(plc('loginResult', 'failed', t, t === 1 ? 'plc2' : 'plc1')),
    );
    expect(rs).toEqual([]);
    expect(signals(e.observe(plc('loginResult', 'failed', 3))).map((s) => s.cause)).toEqual(['plc1']);
  });
});

describe('correlation', () => {
  const cyber = { domain: 'cyber', match: { types: ['IntrusionAlert'], attribute: 'severity' } };
  const physical = {
    domain: 'physical',
    match: { types: ['Substation'], attribute: 'status' },
    where: { equals: 'tripped' },
  };
  const social = { domain: 'social', match: { types: ['Report'], attribute: 'reportType' } };

  it('signals of two domains within the radius and the window merge into one alert', () => {
    const e = engineWith({
      ...base,
      kind: 'correlation',
      signals: [cyber, physical, social],
      window: { seconds: 900 },
      near: { radiusMetres: 500 },
    });
    const at = (lon: number) => ({ type: 'Point' as const, coordinates: [lon, 48.85] });
    expect(
      e.observe(
        obs({
          entityId: 'ids1',
          entityTypes: ['IntrusionAlert'],
          attribute: 'severity',
          value: 'high',
          observedAt: T0,
          location: at(2.35),
        }),
      ),
    ).toEqual([]);
    // Same domain again: not a correlation.
    expect(
      e.observe(
        obs({
          entityId: 'ids2',
          entityTypes: ['IntrusionAlert'],
          attribute: 'severity',
          value: 'high',
          observedAt: T0 + S,
          location: at(2.35),
        }),
      ),
    ).toEqual([]);
    // Too far (≈ 3.7 km).
    expect(
      e.observe(
        obs({
          entityId: 'sub9',
          entityTypes: ['Substation'],
          attribute: 'status',
          value: 'tripped',
          observedAt: T0 + 2 * S,
          location: at(2.4),
        }),
      ),
    ).toEqual([]);
    const rs = e.observe(
      obs({
        entityId: 'sub1',
        entityTypes: ['Substation'],
        attribute: 'status',
        value: 'tripped',
        observedAt: T0 + 60 * S,
        location: at(2.352),
      }),
    );
    expect(signals(rs).map((s) => [s.type, s.evidence.map((x) => `${x.domain}:${x.entityId}`)])).toEqual([
      ['raise', ['cyber:ids1', 'cyber:ids2', 'physical:sub1']],
    ]);
    const report = e.observeReport({
      id: 'rep1',
      reportType: 'smoke',
      domain: 'social',
      observedAt: T0 + 120 * S,
      location: at(2.351),
      ownerOrg: 'city',
      readKeys: [],
      marking: GREEN,
    });
    expect(types(report)).toEqual(['update']);
    expect(signals(report)[0]?.details?.domains).toBe('cyber,physical,social');
    // Outside the window: nothing.
    expect(
      e.observe(
        obs({
          entityId: 'sub1',
          entityTypes: ['Substation'],
          attribute: 'status',
          value: 'tripped',
          observedAt: T0 + 5_000 * S,
          location: at(2.352),
        }),
      ),
    ).toEqual([]);
  });

  it('linked through named Relationships up to N hops (either direction), not beyond, not through what the owner cannot see', () => {
    const doc = {
      ...base,
      kind: 'correlation',
      signals: [cyber, physical],
      window: { seconds: 900 },
      near: { relationships: ['isPoweredBy', 'dependsOn'], maxHops: 2 },
    };
    const run = (hidden: boolean, hopsAway: 2 | 3) => {
      const e = engineWith(doc);
      // signalling --isPoweredBy--> feeder --dependsOn--> substation (--dependsOn--> grid)
      const link = (id: string, rel: string, target: string, marking = GREEN) =>
        e.observe(
          obs({
            entityId: id,
            entityTypes: ['Asset'],
            attribute: 'name',
            value: id,
            observedAt: T0,
            relationships: { [rel]: [target] },
            marking,
          }),
        );
      link('signalling', 'isPoweredBy', 'feeder');
      link(
        'feeder',
        'dependsOn',
        'substation',
        hidden ? { tlp: 'AMBER', audience: { orgs: [], communities: [], users: [] } } : GREEN,
      );
      link('substation', 'dependsOn', 'grid');
      e.observe(
        obs({
          entityId: 'signalling',
          entityTypes: ['IntrusionAlert'],
          attribute: 'severity',
          value: 'high',
          observedAt: T0 + S,
        }),
      );
      const target = hopsAway === 2 ? 'substation' : 'grid';
      return e.observe(
        obs({
          entityId: target,
          entityTypes: ['Substation'],
          attribute: 'status',
          value: 'tripped',
          observedAt: T0 + 2 * S,
        }),
      );
    };
    expect(types(run(false, 2))).toEqual(['raise']);
    expect(signals(run(false, 2))[0]?.reason).toContain('linked through isPoweredBy, dependsOn');
    expect(run(false, 3)).toEqual([]);
    expect(run(true, 2)).toEqual([]);
  });

  it('a relationship stops linking once its entity is marked so that the owner cannot see it', () => {
    const e = engineWith({
      ...base,
      kind: 'correlation',
      signals: [cyber, physical],
      window: { seconds: 900 },
      near: { relationships: ['isPoweredBy'], maxHops: 1 },
    });
    e.observe(
      obs({
        entityId: 'signalling',
        entityTypes: ['Asset'],
        attribute: 'name',
        value: 's',
        observedAt: T0,
        relationships: { isPoweredBy: ['sub'] },
      }),
    );
    e.visibilityChanged('', 'signalling', {
      ownerOrg: 'metro',
      readKeys: [],
      marking: { tlp: 'AMBER', audience: { orgs: [], communities: [], users: [] } },
    });
    e.observe(
      obs({
        entityId: 'sub',
        entityTypes: ['Substation'],
        attribute: 'status',
        value: 'tripped',
        observedAt: T0 + S,
      }),
    );
    expect(
      e.observe(
        obs({
          entityId: 'signalling',
          entityTypes: ['IntrusionAlert'],
          attribute: 'severity',
          value: 'high',
          observedAt: T0 + 2 * S,
          marking: AMBER_POLICE,
        }),
      ),
    ).toEqual([]);
    e.visibilityChanged('', 'signalling', { ownerOrg: 'metro', readKeys: [], marking: GREEN });
    expect(
      types(
        e.observe(
          obs({
            entityId: 'signalling',
            entityTypes: ['IntrusionAlert'],
            attribute: 'severity',
            value: 'high',
            observedAt: T0 + 3 * S,
          }),
        ),
      ),
    ).toEqual(['raise']);
  });

  it('a replay of the same stream gives the same signals and alert keys (dry-run = live)', () => {
    const stream = [40, 20, 41, 19, 42].map((value, i) =>
      obs({ entityId: 'e1', value, observedAt: T0 + i * 700 * S }),
    );
    const run = () => {
      const e = engineWith({
        ...base,
        kind: 'threshold',
        match: { types: ['T'], attribute: 'a' },
        above: 30,
      });
      return stream.flatMap((o) => e.observe(o));
    };
    const a = run();
    expect(run()).toEqual(a);
    expect(types(a)).toEqual(['raise', 'clear', 'raise', 'clear', 'raise']); // 700 s apart: past the 600 s window
  });

  it('a graph past the hop-visit limit suspends the rule with its reason', () => {
    const e = engineWith(
      {
        ...base,
        kind: 'correlation',
        signals: [cyber, physical],
        window: { seconds: 900 },
        near: { relationships: ['dependsOn'], maxHops: 2 },
      },
      { limits: { maxHopVisits: 10 } },
    );
    for (let i = 0; i < 20; i++) {
      e.observe(
        obs({
          entityId: `leaf${i}`,
          entityTypes: ['Asset'],
          attribute: 'x',
          value: 1,
          observedAt: T0,
          relationships: { dependsOn: ['hub'] },
        }),
      );
    }
    e.observe(
      obs({
        entityId: 'sub',
        entityTypes: ['Substation'],
        attribute: 'status',
        value: 'tripped',
        observedAt: T0 + S,
      }),
    );
    const rs = e.observe(
      obs({
        entityId: 'hub',
        entityTypes: ['IntrusionAlert'],
        attribute: 'severity',
        value: 'high',
        observedAt: T0 + 2 * S,
      }),
    );
    expect(rs).toEqual([
      expect.objectContaining({
        type: 'suspended',
        ruleId: 'r1',
        reason: expect.stringContaining('maxHopVisits'),
      }),
    ]);
    expect(e.rules()[0]).toMatchObject({ status: 'suspended' });
  });
});

describe('the engine', () => {
  const doc = { ...base, kind: 'threshold', match: { types: ['T'], attribute: 'a' }, above: 30 };

  it('evaluates a rule only on what its owner organisation may see, and carries the markings of its evidence', () => {
    const e = new DetectionEngine({ canSee });
    e.upsertRule({ id: 'police-rule', version: 1, ownerOrg: 'police', rule: rule(doc) });
    e.upsertRule({ id: 'fire-rule', version: 1, ownerOrg: 'fire', rule: rule(doc) });
    const rs = signals(
      e.observe(obs({ entityId: 'e1', value: 40, observedAt: T0, ownerOrg: 'metro', marking: AMBER_POLICE })),
    );
    expect(rs.map((s) => s.ruleId)).toEqual(['police-rule']);
    expect(rs[0]?.markings).toEqual([AMBER_POLICE]);
    expect(rs[0]?.evidence[0]).toMatchObject({ ownerOrg: 'metro', marking: AMBER_POLICE });
    const both = signals(e.observe(obs({ entityId: 'e2', value: 40, observedAt: T0 })));
    expect(both.map((s) => s.ruleId).sort()).toEqual(['fire-rule', 'police-rule']);
  });

  it('suspends a rule past its state limit, with a reason, and goes on with the others', () => {
    const e = new DetectionEngine({ canSee, limits: { maxStateEntries: 5 } });
    e.upsertRule({ id: 'big', version: 1, ownerOrg: 'police', rule: rule(VALID_RULES.silence) });
    e.upsertRule({
      id: 'small',
      version: 1,
      ownerOrg: 'police',
      rule: rule({ ...doc, match: { types: ['Camera'], attribute: 'a' } }),
    });
    const out: DetectionResult[] = [];
    for (let i = 0; i < 10; i++)
      out.push(
        ...e.observe(obs({ entityId: `c${i}`, entityTypes: ['Camera'], value: 1, observedAt: T0 + i })),
      );
    expect(out).toEqual([
      {
        type: 'suspended',
        ruleId: 'big',
        ruleVersion: 1,
        ownerOrg: 'police',
        reason: 'state holds 6 entries (limit 5)',
        at: T0 + 5,
      },
    ]);
    expect(
      types(e.observe(obs({ entityId: 'c0', entityTypes: ['Camera'], value: 99, observedAt: T0 + 20 }))),
    ).toEqual(['raise']);
    expect(e.rules().map((r) => [r.id, r.status])).toEqual([
      ['big', 'suspended'],
      ['small', 'active'],
    ]);
    expect(e.resumeRule('big')).toBe(true);
    expect(e.rules()[0]?.status).toBe('active');
  });

  it('an evaluation that throws suspends its rule, not the engine', () => {
    const e = engineWith(VALID_RULES.silence);
    const bad = obs({ entityId: 'c1', entityTypes: ['Camera'], value: 1, observedAt: T0 });
    Object.defineProperty(bad, 'location', {
      get() {
        throw new Error('boom');
      },
      enumerable: true,
    });
    expect(e.observe(bad)).toEqual([
      expect.objectContaining({ type: 'suspended', reason: 'evaluation failed: boom' }),
    ]);
  });

  it('a rule that runs past the time limit three times is suspended (once may be the machine)', () => {
    const counting = {
      ...base,
      kind: 'count',
      match: { types: ['T'], attribute: 'a' },
      count: 100,
      window: { seconds: 60 },
    };
    const e = engineWith(counting, { limits: { maxEvaluationMs: 1 } });
    const slow = (t: number) => {
      const o = obs({ entityId: 'e1', value: 0, observedAt: T0 + t });
      Object.defineProperty(o, 'value', {
        get() {
          const until = performance.now() + 3;
          while (performance.now() < until) {
            // busy: a rule that costs too much
          }
          return 1;
        },
        enumerable: true,
      });
      return e.observe(o);
    };
    expect(slow(1)).toEqual([]);
    expect(slow(2)).toEqual([]);
    expect(slow(3)).toEqual([
      expect.objectContaining({
        type: 'suspended',
        reason: expect.stringContaining('three evaluations took longer than 1 ms'),
      }),
    ]);
  });

  it('refuses an invalid rule with its errors', () => {
    const e = new DetectionEngine({ canSee });
    expect(() =>
      e.upsertRule({
        id: 'x',
        version: 1,
        ownerOrg: 'o',
        rule: { ...doc, above: 'high' } as unknown as Rule,
      }),
    ).toThrow(/rule x is invalid/);
  });

  it('matches types, tenant and id pattern; a disabled rule sees nothing', () => {
    const e = engineWith({
      ...doc,
      match: { types: ['T'], attribute: 'a', idPattern: '^urn:x:', tenant: 'city' },
    });
    expect(e.observe(obs({ entityId: 'urn:x:1', value: 40, observedAt: T0 }))).toEqual([]); // default tenant
    expect(e.observe(obs({ entityId: 'urn:y:1', tenant: 'city', value: 40, observedAt: T0 }))).toEqual([]);
    expect(types(e.observe(obs({ entityId: 'urn:x:1', tenant: 'city', value: 40, observedAt: T0 })))).toEqual(
      ['raise'],
    );
    e.upsertRule({ id: 'r1', version: 1, ownerOrg: 'police', rule: rule({ ...doc, enabled: false }) });
    expect(e.observe(obs({ entityId: 'e9', value: 40, observedAt: T0 }))).toEqual([]);
  });

  it('checkpoints and restores: the restored engine goes on exactly as the first', () => {
    const docs = [
      VALID_RULES.sequence,
      { ...doc, forSeconds: 5 },
      VALID_RULES.silence,
      { ...VALID_RULES.anomaly, window: { samples: 10 }, warmup: 5 },
    ];
    const make = () => {
      const e = new DetectionEngine({ canSee });
      for (const [i, d] of docs.entries())
        e.upsertRule({ id: `r${i}`, version: 1, ownerOrg: 'police', rule: rule(d) });
      return e;
    };
    const stream: Observation[] = [];
    for (let i = 0; i < 40; i++) {
      stream.push(
        obs({
          entityId: 'plc1',
          entityTypes: ['PLC', 'Camera', 'T'],
          attribute: i % 10 === 9 ? 'configVersion' : 'loginResult',
          value: 'failed',
          observedAt: T0 + i * S,
        }),
      );
      stream.push(obs({ entityId: 'e1', value: i === 35 ? 500 : 20 + (i % 3), observedAt: T0 + i * S }));
    }
    const a = make();
    const resultsA = stream.flatMap((o) => a.observe(o));
    // The first half, a checkpoint through JSON, a fresh engine restored from it, the second half.
    const first = make();
    const firstResults = stream.slice(0, 40).flatMap((o) => first.observe(o));
    const restored = make();
    restored.restore(JSON.parse(JSON.stringify(first.checkpoint())));
    const secondResults = stream.slice(40).flatMap((o) => restored.observe(o));
    const tick = restored.tick(T0 + 200 * S);
    expect([...firstResults, ...secondResults, ...tick]).toEqual([...resultsA, ...a.tick(T0 + 200 * S)]);
    expect(types(resultsA)).toContain('raise');
  });

  it('a new version starts afresh; its cause raised again within the window updates the same alert', () => {
    const e = engineWith(doc);
    const first = signals(feed(e, [40]));
    e.upsertRule({ id: 'r1', version: 2, ownerOrg: 'police', rule: rule({ ...doc, above: 35 }) });
    const again = signals(feed(e, [40], {}, 10));
    expect(again.map((s) => [s.type, s.ruleVersion, s.alertKey])).toEqual([
      ['update', 2, first[0]?.alertKey],
    ]);
  });

  it('the index changes nothing but speed: indexed and naive engines answer the same on a random stream', () => {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
    const TYPES = ['A', 'B', 'C'];
    const ATTRS = ['x', 'y', 'location'];
    const docs: unknown[] = [];
    for (let i = 0; i < 40; i++) {
      const match = {
        types: [pick(TYPES), ...(i % 3 === 0 ? [pick(TYPES)] : [])],
        attribute: pick(['x', 'y']),
      };
      const kinds: unknown[] = [
        { ...base, kind: 'threshold', match, above: 5, hysteresis: 1, forSeconds: i % 2 ? 3 : 0 },
        { ...base, kind: 'rate', match, window: { seconds: 10 }, riseBy: 4 },
        {
          ...base,
          kind: 'anomaly',
          match,
          method: i % 2 ? 'ewma' : 'robustZ',
          window: { samples: 10 },
          threshold: 3,
        },
        { ...base, kind: 'silence', match: { types: [pick(TYPES)] }, expectedIntervalSeconds: 20 },
        {
          ...base,
          kind: 'count',
          match,
          where: { above: 6 },
          count: 3,
          window: { seconds: 30 },
          by: 'entity',
        },
        {
          ...base,
          kind: 'sequence',
          steps: [
            { match, where: { above: 7 } },
            { match: { types: [pick(TYPES)], attribute: pick(['x', 'y']) }, where: { below: 2 } },
          ],
          window: { seconds: 60 },
        },
        {
          ...base,
          kind: 'geofence',
          match: { types: [pick(TYPES)] },
          area: { polygon: SQUARE },
          trigger: 'enter',
        },
        {
          ...base,
          kind: 'correlation',
          signals: [
            { domain: 'cyber', match: { types: ['A'], attribute: 'x' }, where: { above: 8 } },
            { domain: 'physical', match: { types: ['B'], attribute: 'y' }, where: { above: 8 } },
          ],
          window: { seconds: 60 },
          near: { relationships: ['dependsOn'], maxHops: 2 },
        },
      ];
      docs.push(kinds[i % kinds.length]);
    }
    const make = (indexed: boolean) => {
      const e = new DetectionEngine({ canSee, indexed });
      for (const [i, d] of docs.entries())
        e.upsertRule({ id: `r${i}`, version: 1, ownerOrg: i % 4 ? 'police' : 'fire', rule: rule(d) });
      return e;
    };
    const stream: Observation[] = [];
    for (let k = 0; k < 3_000; k++) {
      const attribute = pick(ATTRS);
      const id = Math.floor(rnd() * 30);
      stream.push(
        obs({
          entityId: `e${id}`,
          entityTypes: [TYPES[id % 3]!, ...(id % 5 === 0 ? ['C'] : [])],
          attribute,
          value:
            attribute === 'location'
              ? { type: 'Point', coordinates: [2 + rnd() * 0.2, 48.05] }
              : Math.floor(rnd() * 10),
          observedAt: T0 + k * 500,
          marking: rnd() < 0.2 ? AMBER_POLICE : GREEN,
          relationships: { dependsOn: [`e${(id + 1) % 30}`] },
        }),
      );
    }
    const run = (e: DetectionEngine) =>
      stream.flatMap((o, k) => [...e.observe(o), ...(k % 20 === 0 ? e.tick(o.observedAt) : [])]);
    const indexed = run(make(true));
    expect(indexed.length).toBeGreaterThan(50);
    expect(new Set(indexed.map((r) => r.type))).toEqual(new Set(['raise', 'update', 'clear']));
    // The order of rules met by one observation may differ: compare as sets per observation.
    const key = (r: DetectionResult) => JSON.stringify(r);
    expect(indexed.map(key).sort()).toEqual(run(make(false)).map(key).sort());
  });
});
