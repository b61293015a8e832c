import { describe, expect, it } from 'vitest';
import type { EntityChangeEvent } from '../context/index.ts';
import { liveChangeFor } from './context-inputs.ts';

const SDM = 'https://smartdatamodels.org/dataModel.Transportation/';
const point = { type: 'GeoProperty', value: { type: 'Point', coordinates: [7.42, 43.73] } };
function event(
  type: string,
  attrs: Record<string, unknown>,
  tlp: 'CLEAR' | 'GREEN' | 'AMBER' | 'RED' = 'GREEN',
): EntityChangeEvent {
  return {
    tenant: '',
    entityId: `urn:ngsi-ld:${type}:1`,
    incarnation: `inc-${type}`,
    entityType: [`${SDM}${type}`],
    entity: {
      id: `urn:ngsi-ld:${type}:1`,
      type: [`${SDM}${type}`],
      'https://uri.etsi.org/ngsi-ld/location': point,
      ...attrs,
    },
    changedAttributes: [],
    createdAttributes: [],
    deletedAttributes: [],
    ownerOrg: 'traffic',
    createdBy: 'u1',
    marking: { tlp, audience: { orgs: [], communities: [], users: [] } },
    readKeys: [],
  };
}
const prop = (value: unknown) => ({ type: 'Property', value });

describe('live road changes from context entities', () => {
  it('closes roads for a roadClosed alert, until validTo', () => {
    const validTo = new Date(Date.now() + 60_000).toISOString();
    const c = liveChangeFor(
      event('Alert', { [`${SDM}subCategory`]: prop('roadClosed'), [`${SDM}validTo`]: prop(validTo) }),
    );
    expect(c).toMatchObject({
      kind: 'closure',
      radiusMeters: 50,
      geometry: point.value,
      expiresAt: new Date(validTo),
    });
  });

  it('slows traffic for a traffic jam and reads congestion and speed of traffic flow', () => {
    expect(liveChangeFor(event('Alert', { [`${SDM}subCategory`]: prop('trafficJam') }))).toMatchObject({
      kind: 'slowdown',
      factor: 0.3,
    });
    expect(
      liveChangeFor(event('TrafficFlowObserved', { [`${SDM}averageVehicleSpeed`]: prop(10) })),
    ).toMatchObject({
      kind: 'slowdown',
      factor: 0.2,
    });
    expect(liveChangeFor(event('TrafficFlowObserved', { [`${SDM}congested`]: prop(true) }))).toMatchObject({
      kind: 'slowdown',
      factor: 0.3,
    });
    expect(liveChangeFor(event('TrafficFlowObserved', { [`${SDM}averageVehicleSpeed`]: prop(52.6) }))).toBe(
      'lift',
    );
  });

  it('closes around an ongoing road accident and reopens when solved', () => {
    expect(liveChangeFor(event('RoadAccident', { [`${SDM}status`]: prop('onGoing') }))).toMatchObject({
      kind: 'closure',
      radiusMeters: 30,
    });
    expect(liveChangeFor(event('RoadAccident', { [`${SDM}status`]: prop('solved') }))).toBe('lift');
  });

  it('lifts on delete, on expiry, and for markings that forbid an observable action; ignores other types', () => {
    expect(liveChangeFor({ ...event('Alert', {}), entity: null })).toBe('lift');
    expect(
      liveChangeFor(
        event('Alert', {
          [`${SDM}subCategory`]: prop('roadClosed'),
          [`${SDM}validTo`]: prop('2000-01-01T00:00:00Z'),
        }),
      ),
    ).toBe('lift');
    const closed = { [`${SDM}subCategory`]: prop('roadClosed') };
    for (const tlp of ['CLEAR', 'GREEN', 'AMBER'] as const) {
      expect(liveChangeFor(event('Alert', closed, tlp))).toMatchObject({ kind: 'closure' });
    }
    expect(liveChangeFor(event('Alert', closed, 'RED'))).toBe('lift');
    for (const pap of ['AMBER', 'RED'] as const) {
      const e = event('Alert', closed);
      expect(liveChangeFor({ ...e, marking: { ...e.marking, pap } })).toBe('lift');
    }
    const e = event('Alert', closed, 'AMBER');
    expect(liveChangeFor({ ...e, marking: { ...e.marking, pap: 'GREEN' } })).toMatchObject({
      kind: 'closure',
    });
    expect(liveChangeFor(event('WeatherObserved', {}))).toBeNull();
  });
});
