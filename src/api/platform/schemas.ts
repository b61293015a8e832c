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
  examples: [{ orgs: ['police'], communities: [], users: [] }],
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
    pap: { type: 'string', minLength: 1, maxLength: 20, examples: ['PAP:GREEN'] },
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

export const password = {
  type: 'string',
  minLength: 1,
  maxLength: 256,
  examples: ['correct-horse-battery-staple'],
} as const;
export const username = { type: 'string', minLength: 1, maxLength: 100 } as const;
export const name = { type: 'string', minLength: 1, maxLength: 200 } as const;
export const limit = { type: 'integer', minimum: 1, maximum: 1000 } as const;

// ---- responses (documented in OpenAPI; Fastify serialises with them) ----

const str = { type: 'string' } as const;
const strOrNull = { type: ['string', 'null'] } as const;
const strings = { type: 'array', items: str } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;

export const markingOut = {
  type: 'object',
  required: ['tlp', 'audience'],
  properties: {
    tlp: str,
    pap: str,
    audience: {
      type: 'object',
      required: ['orgs', 'communities', 'users'],
      properties: { orgs: strings, communities: strings, users: strings },
    },
  },
} as const;

export const orgOut = {
  type: 'object',
  required: ['id', 'name', 'kind', 'defaultMarking', 'clients', 'createdAt', 'updatedAt'],
  properties: {
    id: str,
    name: str,
    kind: str,
    defaultMarking: markingOut,
    clients: strings,
    createdAt: dateTime,
    updatedAt: dateTime,
  },
} as const;

export const communityOut = {
  type: 'object',
  required: ['id', 'name', 'description', 'members', 'builtIn'],
  properties: { id: str, name: str, description: str, members: strings, builtIn: { type: 'boolean' } },
} as const;

export const userOut = {
  type: 'object',
  required: ['id', 'username', 'orgId', 'roles', 'kind', 'disabled', 'createdAt'],
  properties: {
    id: str,
    username: str,
    displayName: strOrNull,
    orgId: str,
    roles: strings,
    kind: { type: 'string', enum: ['user', 'service'] },
    disabled: { type: 'boolean' },
    mustChangePassword: { type: 'boolean' },
    externalSubject: strOrNull,
    createdAt: dateTime,
  },
} as const;

export const principalOut = {
  type: 'object',
  required: ['userId', 'username', 'orgId', 'roles', 'kind', 'readKeys', 'defaultMarking'],
  properties: {
    userId: str,
    username: str,
    displayName: strOrNull,
    orgId: str,
    roles: strings,
    kind: str,
    readKeys: strings,
    defaultMarking: markingOut,
  },
} as const;

export const tokenOut = {
  type: 'object',
  required: ['id', 'userId', 'username', 'orgId', 'name', 'prefix', 'createdAt'],
  properties: {
    id: str,
    userId: str,
    username: str,
    orgId: str,
    name: str,
    prefix: { type: 'string', description: 'The first characters of the secret' },
    createdAt: dateTime,
    expiresAt: strOrNull,
    revokedAt: strOrNull,
    lastUsedAt: strOrNull,
  },
} as const;

export const reportOut = {
  type: 'object',
  required: [
    'id',
    'title',
    'body',
    'category',
    'location',
    'marking',
    'ownerOrg',
    'createdBy',
    'createdAt',
    'updatedAt',
  ],
  properties: {
    id: str,
    title: str,
    body: str,
    category: str,
    location: {
      type: ['object', 'null'],
      properties: { type: str, coordinates: { type: 'array', items: { type: 'number' } } },
    },
    marking: markingOut,
    ownerOrg: str,
    createdBy: str,
    createdAt: dateTime,
    updatedAt: dateTime,
  },
} as const;

export const auditRecordOut = {
  type: 'object',
  required: ['seq', 'id', 'at', 'action', 'prevHash', 'hash'],
  properties: {
    seq: { type: 'integer' },
    id: str,
    at: dateTime,
    actorId: strOrNull,
    actorOrg: strOrNull,
    action: str,
    objectKind: strOrNull,
    objectId: strOrNull,
    ownerOrg: strOrNull,
    details: { type: 'object', additionalProperties: true },
    prevHash: str,
    hash: str,
  },
} as const;

export const sharedObjectOut = {
  type: 'object',
  required: ['id', 'kind', 'ownerOrg', 'createdBy', 'marking'],
  properties: {
    id: str,
    kind: str,
    scope: str,
    ownerOrg: str,
    createdBy: str,
    marking: markingOut,
    createdAt: dateTime,
    updatedAt: dateTime,
  },
} as const;

export function itemsOf<T extends object>(item: T) {
  return {
    type: 'object',
    required: ['items'],
    properties: { items: { type: 'array', items: item } },
  } as const;
}
