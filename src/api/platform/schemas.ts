/**
 * JSON schemas of the platform API: every body closes its properties (unknown fields are a 400), every
 * string has a length. @fastify/swagger publishes them in the OpenAPI document.
 */
import { ORG_KINDS, ROLES } from '../../modules/access/index.ts';

export const id = { type: 'string', minLength: 1, maxLength: 200 } as const;
export const slug = { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' } as const;
const idList = { type: 'array', maxItems: 1000, uniqueItems: true, items: id } as const;

export const audience = {
  type: 'object',
  additionalProperties: false,
  description: 'Organisations, communities (GREEN) and named users (RED) the object is shared with',
  properties: { orgs: idList, communities: idList, users: idList },
} as const;

export const marking = {
  type: 'object',
  additionalProperties: false,
  required: ['tlp'],
  description:
    'TLP 2.0 label (CLEAR, GREEN, AMBER, AMBER+STRICT, RED; TLP: prefix optional), optional PAP, audience',
  properties: {
    tlp: { type: 'string', minLength: 1, maxLength: 20, examples: ['TLP:AMBER'] },
    pap: { type: 'string', minLength: 1, maxLength: 20 },
    audience,
  },
} as const;

export const orgKind = { type: 'string', enum: [...ORG_KINDS] } as const;
export const roles = {
  type: 'array',
  minItems: 1,
  maxItems: ROLES.length,
  uniqueItems: true,
  items: { type: 'string', enum: [...ROLES] },
} as const;

export const point = {
  type: ['object', 'null'],
  additionalProperties: false,
  required: ['type', 'coordinates'],
  description: 'GeoJSON Point, [longitude, latitude] in WGS 84',
  properties: {
    type: { type: 'string', const: 'Point' },
    coordinates: { type: 'array', minItems: 2, maxItems: 3, items: { type: 'number' } },
  },
} as const;

export const idParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id },
} as const;

export const password = { type: 'string', minLength: 1, maxLength: 256 } as const;
export const username = { type: 'string', minLength: 1, maxLength: 100 } as const;
export const name = { type: 'string', minLength: 1, maxLength: 200 } as const;
export const limit = { type: 'integer', minimum: 1, maximum: 1000 } as const;
