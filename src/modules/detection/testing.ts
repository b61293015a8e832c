/** Fixtures for the tests of detection and of the modules that use it. */

export const RULE_BASE = { name: 'r', severity: 'high', category: 'security' };
export const SQUARE = {
  type: 'Polygon',
  coordinates: [
    [
      [2.0, 48.0],
      [2.1, 48.0],
      [2.1, 48.1],
      [2.0, 48.1],
      [2.0, 48.0],
    ],
  ],
};

/** One valid document per kind (docs/detection.md has the same with explanations). */
export const VALID_RULES = {
  threshold: {
    ...RULE_BASE,
    kind: 'threshold',
    match: { types: ['WaterQualityObserved'], attribute: 'temperature' },
    above: 30,
    hysteresis: 1,
    forSeconds: 60,
  },
  rate: {
    ...RULE_BASE,
    kind: 'rate',
    match: { types: ['T'], attribute: 'a' },
    window: { seconds: 60 },
    riseBy: 10,
  },
  anomaly: {
    ...RULE_BASE,
    kind: 'anomaly',
    match: { types: ['T'], attribute: 'a' },
    method: 'robustZ',
    window: { samples: 100 },
    threshold: 3.5,
    seasonality: 'hourOfDay',
  },
  silence: { ...RULE_BASE, kind: 'silence', match: { types: ['Camera'] }, expectedIntervalSeconds: 60 },
  geofence: {
    ...RULE_BASE,
    kind: 'geofence',
    match: { types: ['Vehicle'] },
    area: { polygon: SQUARE },
    trigger: 'enter',
  },
  crowdDensity: {
    ...RULE_BASE,
    kind: 'crowdDensity',
    match: { types: ['CrowdFlowObserved'], attribute: 'peopleCount' },
    measure: 'count',
    areaSquareMetres: 1000,
    capacity: 1500,
    raiseAt: { level: 'E', capacityRatio: 0.9 },
  },
  flowImbalance: {
    ...RULE_BASE,
    kind: 'flowImbalance',
    match: { types: ['CrowdFlowObserved'] },
    inAttribute: 'peopleCountTowards',
    outAttribute: 'peopleCountAway',
    window: { seconds: 600 },
    ratio: 3,
    minIn: 100,
  },
  sequence: {
    ...RULE_BASE,
    kind: 'sequence',
    steps: [
      { match: { types: ['PLC'], attribute: 'loginResult' }, where: { equals: 'failed' }, count: 3 },
      { match: { types: ['PLC'], attribute: 'configVersion' } },
    ],
    window: { seconds: 600 },
  },
  count: {
    ...RULE_BASE,
    kind: 'count',
    match: { types: ['Report'], attribute: 'reportType' },
    where: { equals: 'suspiciousPackage' },
    count: 5,
    window: { seconds: 600 },
    radiusMetres: 300,
  },
  correlation: {
    ...RULE_BASE,
    kind: 'correlation',
    signals: [
      { domain: 'cyber', match: { types: ['IntrusionAlert'], attribute: 'severity' } },
      {
        domain: 'physical',
        match: { types: ['Substation'], attribute: 'status' },
        where: { equals: 'tripped' },
      },
    ],
    window: { seconds: 900 },
    near: { radiusMetres: 500, relationships: ['isPoweredBy', 'dependsOn'], maxHops: 3 },
  },
} as const;
