import { describe, expect, it } from 'vitest';
import { mapEntities, mapMeasurements, parsePayload, parseTopic } from './ingest-mapping.ts';

describe('ingestion topic scheme', () => {
  it('parses measurement and entity topics', () => {
    expect(parseTopic('safecity/v1/default/measurements/AirQualityObserved/sensor-7')).toEqual({
      kind: 'measurements',
      tenant: '',
      entityType: 'AirQualityObserved',
      deviceId: 'sensor-7',
    });
    expect(parseTopic('safecity/v1/metro/entities')).toEqual({ kind: 'entities', tenant: 'metro' });
  });

  it.each([
    ['other/v1/default/entities', /not under safecity\/v1/],
    ['safecity/v1/bad tenant/entities', /tenant/],
    ['safecity/v1/default/measurements/1Type/x', /entity type/],
    ['safecity/v1/default/measurements/T/ bad', /device id/],
    ['safecity/v1/default/measurements/T', /neither/],
    ['safecity/v1/default/whatever', /neither/],
  ])('rejects %s', (topic, reason) => {
    expect(() => parseTopic(topic)).toThrow(reason);
  });
});

describe('payload mapping', () => {
  it('maps plain measurements to Properties, GeoProperties and ref Relationships with observedAt', () => {
    const [f] = mapMeasurements('TrafficFlowObserved', 'loop-1', {
      intensity: 120,
      congested: false,
      location: { type: 'Point', coordinates: [-8.61, 41.15] },
      refRoadSegment: 'urn:ngsi-ld:RoadSegment:a1',
      averageSpeed: { value: 43.5, unitCode: 'KMH' },
      ts: 1795824000,
    });
    expect(f).toEqual({
      id: 'urn:ngsi-ld:TrafficFlowObserved:loop-1',
      type: 'TrafficFlowObserved',
      intensity: { type: 'Property', value: 120, observedAt: '2026-11-28T00:00:00.000Z' },
      congested: { type: 'Property', value: false, observedAt: '2026-11-28T00:00:00.000Z' },
      location: {
        type: 'GeoProperty',
        value: { type: 'Point', coordinates: [-8.61, 41.15] },
        observedAt: '2026-11-28T00:00:00.000Z',
      },
      refRoadSegment: {
        type: 'Relationship',
        object: 'urn:ngsi-ld:RoadSegment:a1',
        observedAt: '2026-11-28T00:00:00.000Z',
      },
      averageSpeed: {
        type: 'Property',
        value: 43.5,
        unitCode: 'KMH',
        observedAt: '2026-11-28T00:00:00.000Z',
      },
    });
  });

  it('maps a batch of measurements in order and keeps a urn device id', () => {
    const fs = mapMeasurements('Device', 'urn:ngsi-ld:Device:d1', [
      { battery: 0.9, observedAt: '2026-11-27T10:00:00Z' },
      { battery: 0.8, observedAt: '2026-11-27T10:01:00Z' },
    ]);
    expect(fs.map((f) => [f.id, (f.battery as { value: number }).value])).toEqual([
      ['urn:ngsi-ld:Device:d1', 0.9],
      ['urn:ngsi-ld:Device:d1', 0.8],
    ]);
  });

  it.each([
    [[], /no measurement/],
    [[1], /not a JSON object/],
    [{ ts: 5 }, /no attribute/],
    [{ observedAt: 'noon', a: 1 }, /DateTime/],
    [{ 'bad name': 1 }, /not a valid attribute name/],
    [{ a: null }, /no value/],
  ])('rejects measurements %j', (payload, reason) => {
    expect(() => mapMeasurements('T', 'd', payload)).toThrow(reason);
  });

  it('takes NGSI-LD fragments with their @context and rejects malformed ones', () => {
    const { fragments, context } = mapEntities([
      {
        id: 'urn:ngsi-ld:T:1',
        type: 'T',
        a: { type: 'Property', value: 1 },
        '@context': 'https://x/ctx.jsonld',
      },
    ]);
    expect(fragments).toEqual([{ id: 'urn:ngsi-ld:T:1', type: 'T', a: { type: 'Property', value: 1 } }]);
    expect(context).toBe('https://x/ctx.jsonld');
    expect(() => mapEntities({ type: 'T', a: 1 })).toThrow(/URI id/);
    expect(() => mapEntities({ id: 'urn:x:1', a: 1 })).toThrow(/no type/);
    expect(() => mapEntities({ id: 'urn:x:1', type: 'T' })).toThrow(/no attribute/);
    expect(() =>
      mapEntities([
        { id: 'urn:x:1', type: 'T', a: 1, '@context': 'https://a' },
        { id: 'urn:x:2', type: 'T', a: 1, '@context': 'https://b' },
      ]),
    ).toThrow(/one @context/);
  });

  it('rejects payloads that are empty, too large or not JSON', () => {
    expect(() => parsePayload('')).toThrow(/empty/);
    expect(() => parsePayload('{')).toThrow(/not JSON/);
    expect(() => parsePayload(Buffer.alloc(300 * 1024, 32))).toThrow(/larger/);
  });

  it('rejects payloads that are not UTF-8 JSON within bounds (a UTF-16 message was stored with its NUL bytes)', () => {
    const json = '{"speed":42}';
    expect(parsePayload(Buffer.from(json))).toEqual({ speed: 42 });
    expect(() =>
      parsePayload(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(json, 'utf16le')])),
    ).toThrow(/not UTF-8/);
    expect(() => parsePayload(Buffer.from(json, 'utf16le'))).toThrow(/not JSON/);
    expect(() => parsePayload('{"status":"a\\u0000b"}')).toThrow(/NUL character/);
    expect(() => parsePayload('{"status":"\\ud800"}')).toThrow(/lone UTF-16 surrogate/);
    expect(() => parsePayload(`${'['.repeat(5000)}${']'.repeat(5000)}`)).toThrow(/deeper than 64/);
    expect(() => parsePayload('{"speed":1e999}')).toThrow(/out of range/);
    expect(() => parsePayload('{"__proto__":{"speed":1}}')).toThrow(/__proto__/);
  });
});
