/** JSON schemas of the detection API (/api/rules, /api/alerts), published in the OpenAPI document. */
import { ALERT_CATEGORIES, ALERT_SEVERITIES, ALERT_STATUSES } from '../../modules/detection-live/index.ts';
import { id, markingOut } from '../platform/schemas.ts';

const str = { type: 'string' } as const;
const strOrNull = { type: ['string', 'null'] } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;

/** A rule document: validated by the rule language, not by this schema (its errors name the field at fault). */
export const ruleDocument = {
  type: 'object',
  description:
    'A rule document of the detection rule language (docs/detection.md); validated on write: 400 DETECTION_RULE_INVALID lists every problem as {path, reason}',
  additionalProperties: true,
} as const;

export const ruleOut = {
  type: 'object',
  required: [
    'id',
    'name',
    'version',
    'enabled',
    'rule',
    'ownerOrg',
    'createdBy',
    'marking',
    'suspendedReason',
    'createdAt',
    'updatedAt',
  ],
  properties: {
    id: str,
    name: str,
    version: { type: 'integer' },
    enabled: { type: 'boolean' },
    rule: { type: 'object', additionalProperties: true },
    ownerOrg: str,
    createdBy: str,
    marking: markingOut,
    suspendedReason: strOrNull,
    createdAt: dateTime,
    updatedAt: dateTime,
  },
} as const;

export const versionOut = {
  type: 'object',
  required: ['ruleId', 'version', 'rule', 'author', 'at', 'change', 'restoredFrom'],
  properties: {
    ruleId: str,
    version: { type: 'integer' },
    rule: { type: 'object', additionalProperties: true },
    author: str,
    at: dateTime,
    change: { type: 'string', enum: ['created', 'updated', 'restored'] },
    restoredFrom: { type: ['integer', 'null'] },
  },
} as const;

export const ruleIdParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id },
} as const;

export const versionParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'version'],
  properties: { id, version: { type: 'integer', minimum: 1, maximum: 1_000_000 } },
} as const;

export const severity = { type: 'string', enum: [...ALERT_SEVERITIES] } as const;
export const category = { type: 'string', enum: [...ALERT_CATEGORIES] } as const;
export const status = { type: 'string', enum: [...ALERT_STATUSES] } as const;

export const alertOut = {
  type: 'object',
  required: ['id', 'status', 'evidence', 'organisation', 'ownerOrg', 'marking'],
  properties: {
    id: str,
    category: strOrNull,
    subCategory: strOrNull,
    severity: strOrNull,
    alertSource: strOrNull,
    dateIssued: strOrNull,
    validTo: strOrNull,
    location: { type: ['object', 'null'], additionalProperties: true },
    description: strOrNull,
    status: str,
    dismissReason: strOrNull,
    sourceRule: strOrNull,
    ruleVersion: { type: ['integer', 'null'] },
    evidence: { type: 'array', items: { type: 'object', additionalProperties: true } },
    organisation: str,
    statusChangedBy: strOrNull,
    statusChangedAt: strOrNull,
    promotionNote: strOrNull,
    ownerOrg: str,
    marking: markingOut,
  },
} as const;

export const alertIdParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 1024 } },
} as const;

const instant = { type: 'string', format: 'date-time', maxLength: 40 } as const;

/** A dry-run's window. */
export const window = { from: instant, to: instant } as const;

export const firingOut = {
  type: 'object',
  required: ['kind', 'at', 'key', 'evidence'],
  properties: {
    kind: str,
    at: dateTime,
    key: str,
    severity: strOrNull,
    category: strOrNull,
    reason: strOrNull,
    evidence: { type: 'array', items: { type: 'object', additionalProperties: true } },
  },
} as const;

export const dryRunOut = {
  type: 'object',
  required: ['from', 'to', 'observations', 'firings', 'truncated'],
  properties: {
    from: dateTime,
    to: dateTime,
    observations: { type: 'integer' },
    entities: { type: 'integer' },
    elapsedMs: { type: 'number' },
    firings: { type: 'array', items: firingOut },
    truncated: { type: 'boolean' },
  },
} as const;
