import { describe, expect, it } from 'vitest';
import type { Marking } from '../sharing/index.ts';
import { observationFromReport, observationsFromChange } from './index.ts';

const marking: Marking = { tlp: 'GREEN', audience: { orgs: [], communities: [], users: [] } };
const V = 'https://uri.etsi.org/ngsi-ld/default-context/';

const change = {
  tenant: '',
  entityId: 'urn:ngsi-ld:Camera:1',
  entityType: [`${V}Camera`],
  entity: {
    id: 'urn:ngsi-ld:Camera:1',
    type: [`${V}Camera`],
    modifiedAt: '2026-11-30T10:00:05Z',
    [`${V}status`]: { type: 'Property', value: 'offline', observedAt: '2026-11-30T10:00:00Z' },
    [`${V}temperature`]: [
      { type: 'Property', value: 40, datasetId: 'urn:x:sensor2' },
      { type: 'Property', value: 38 },
    ],
    'https://uri.etsi.org/ngsi-ld/location': {
      type: 'GeoProperty',
      value: { type: 'Point', coordinates: [2.35, 48.85] },
    },
    [`${V}isPoweredBy`]: { type: 'Relationship', object: 'urn:ngsi-ld:Substation:7' },
    'https://example.org/vocab#refZone': { type: 'Relationship', object: ['urn:z:1', 'urn:z:2'] },
  },
  changedAttributes: [`${V}status`, `${V}temperature`, `${V}gone`],
  ownerOrg: 'metro',
  createdBy: 'u1',
  marking,
  readKeys: ['community:all', 'org:metro'],
};

describe('observationsFromChange', () => {
  it('one observation per changed attribute still there, default instance, short names, location, relationships', () => {
    const [status, temperature, ...rest] = observationsFromChange(change);
    expect(rest).toEqual([]);
    expect(status).toEqual({
      tenant: '',
      entityId: 'urn:ngsi-ld:Camera:1',
      entityTypes: ['Camera'],
      attribute: 'status',
      value: 'offline',
      observedAt: Date.parse('2026-11-30T10:00:00Z'),
      location: { type: 'Point', coordinates: [2.35, 48.85] },
      relationships: {
        isPoweredBy: ['urn:ngsi-ld:Substation:7'],
        'https://example.org/vocab#refZone': ['urn:z:1', 'urn:z:2'],
      },
      ownerOrg: 'metro',
      createdBy: 'u1',
      readKeys: ['community:all', 'org:metro'],
      marking,
    });
    // No observedAt on the attribute: the entity's modifiedAt.
    expect(temperature).toMatchObject({
      attribute: 'temperature',
      value: 38,
      observedAt: Date.parse('2026-11-30T10:00:05Z'),
    });
  });

  it('a deletion is one observation marked deleted; names can be mapped by the caller', () => {
    expect(observationsFromChange({ ...change, entity: null }, { receivedAt: 5 })).toEqual([
      expect.objectContaining({ entityId: 'urn:ngsi-ld:Camera:1', deleted: true, observedAt: 5 }),
    ]);
    const [o] = observationsFromChange(change, { term: (iri) => iri.toUpperCase() });
    expect(o?.attribute).toBe(`${V}STATUS`.toUpperCase());
  });
});

describe('observationFromReport', () => {
  it('a report is an observation of type Report, attribute reportType, with its domain', () => {
    expect(
      observationFromReport({
        id: 'rep1',
        reportType: 'smoke',
        domain: 'social',
        observedAt: 1,
        ownerOrg: 'city',
        readKeys: [],
        marking,
        relatedEntities: ['urn:x'],
      }),
    ).toEqual({
      tenant: '',
      entityId: 'rep1',
      entityTypes: ['Report'],
      attribute: 'reportType',
      value: 'smoke',
      observedAt: 1,
      domain: 'social',
      ownerOrg: 'city',
      readKeys: [],
      marking,
      relationships: { relatedTo: ['urn:x'] },
    });
  });
});
