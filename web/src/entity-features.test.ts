import { describe, expect, it } from 'vitest';
import { toFeatures } from './entity-features.ts';

describe('toFeatures', () => {
  it('keeps GeoJSON features with a geometry and stamps the queried type and id on them', () => {
    const out = toFeatures(
      {
        type: 'FeatureCollection',
        features: [
          {
            type: 'Feature',
            id: 'urn:ngsi-ld:Alert:1',
            geometry: { type: 'Point', coordinates: [1, 2] },
            properties: { severity: 'high' },
          },
          { type: 'Feature', id: 'urn:ngsi-ld:Alert:2', geometry: null, properties: {} },
        ],
      },
      'Alert',
    );
    expect(out).toEqual([
      {
        type: 'Feature',
        id: 'urn:ngsi-ld:Alert:1',
        geometry: { type: 'Point', coordinates: [1, 2] },
        properties: { severity: 'high', id: 'urn:ngsi-ld:Alert:1', type: 'Alert' },
      },
    ]);
  });

  it('turns key-value and normalized entities (a broker that ignored Accept) into features', () => {
    const out = toFeatures(
      [
        { id: 'urn:a', type: 'Device', location: { type: 'Point', coordinates: [3, 4] }, batteryLevel: 0.5 },
        {
          id: 'urn:b',
          type: 'Device',
          location: { type: 'GeoProperty', value: { type: 'Point', coordinates: [5, 6] } },
        },
        { id: 'urn:c', type: 'Device' },
      ],
      'Device',
    );
    expect(out.map((f) => [f.properties.id, f.geometry?.coordinates])).toEqual([
      ['urn:a', [3, 4]],
      ['urn:b', [5, 6]],
    ]);
    expect(out[0]!.properties).toEqual({ id: 'urn:a', type: 'Device', batteryLevel: 0.5 });
  });

  it('answers nothing for bodies that are neither', () => {
    expect(toFeatures({ title: 'x' }, 'Alert')).toEqual([]);
    expect(toFeatures(null, 'Alert')).toEqual([]);
  });
});
