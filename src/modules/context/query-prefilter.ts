/**
 * A SQL prefilter for `q`: a condition that every entity matching the query satisfies (a superset), so
 * the store sends fewer rows to the exact evaluation in query-language.ts. It narrows on what jsonb can
 * test cheaply and safely — attribute existence, and numbers, strings and booleans of single-instance
 * Properties (and Relationship objects for string equality) — and lets everything else through.
 */
import { type RawBuilder, sql } from 'kysely';
import type { QueryNode, QueryValue } from './query-language.ts';

type Cond = RawBuilder<unknown>;

export function qPrefilter(node: QueryNode): Cond | undefined {
  switch (node.kind) {
    case 'and': {
      const parts = node.terms.map(qPrefilter).filter((c): c is Cond => c !== undefined);
      return parts.length === 0 ? undefined : sql`(${sql.join(parts, sql` and `)})`;
    }
    case 'or': {
      const parts = node.terms.map(qPrefilter);
      if (parts.some((c) => c === undefined)) return undefined;
      return sql`(${sql.join(parts as Cond[], sql` or `)})`;
    }
    case 'exists':
      return exists(node.path.attribute);
    case 'notExists': {
      // A top-level attribute exists exactly when its key does (every stored attribute holds its value
      // member: entity-model.ts refuses those without). A path into it may designate nothing while the
      // key is there: the evaluation decides, the prefilter lets those through.
      const { attribute, subAttributes, valueKeys } = node.path;
      if (subAttributes.length > 0 || valueKeys.length > 0) return undefined;
      if (attribute === 'id' || attribute === 'type') return sql`false`;
      if (attribute === 'scope') return sql`(e.scopes is null or cardinality(e.scopes) = 0)`;
      return sql`not (e.entity ? ${attribute})`;
    }
    case 'compare': {
      const a = node.path.attribute;
      if (a === 'id') {
        if (node.op === '==' && node.value.kind === 'string') return sql`e.id = ${node.value.value}`;
        return undefined;
      }
      const base = exists(a);
      if (!base) return undefined;
      if (node.path.subAttributes.length > 0 || node.path.valueKeys.length > 0) return base;
      const value = valueCondition(a, node.op, node.value);
      return value ? sql`(${base} and ${value})` : base;
    }
  }
}

function exists(attribute: string): Cond | undefined {
  if (attribute === 'type') return undefined;
  if (attribute === 'scope') return sql`e.scopes is not null`;
  return sql`e.entity ? ${attribute}`;
}

const ORDER_OPS = { '==': sql`=`, '>': sql`>`, '>=': sql`>=`, '<': sql`<`, '<=': sql`<=` } as const;

/**
 * For a single-instance Property whose value has the query value's JSON type, the comparison itself;
 * true for every other shape (multi-attributes, arrays, typed literals, other attribute types).
 */
function valueCondition(a: string, op: string, qv: QueryValue): Cond | undefined {
  const attr = sql`e.entity -> ${a}`;
  const isProperty = sql`jsonb_typeof(${attr}) = 'object' and ${attr} ->> 'type' = 'Property'`;
  const guarded = (jsonType: string, test: Cond) =>
    sql`case when ${isProperty} and jsonb_typeof(${attr} -> 'value') = ${jsonType} then ${test} else true end`;
  const num = sql`(${attr} ->> 'value')::numeric`;
  if (qv.kind === 'number' && op in ORDER_OPS) {
    return guarded('number', sql`${num} ${ORDER_OPS[op as keyof typeof ORDER_OPS]} ${qv.value}`);
  }
  if (op !== '==') return undefined;
  if (qv.kind === 'range' && qv.from.kind === 'number' && qv.to.kind === 'number') {
    return guarded('number', sql`${num} between ${qv.from.value} and ${qv.to.value}`);
  }
  if (qv.kind === 'list' && qv.values.every((v) => v.kind === 'number')) {
    const nums = qv.values.map((v) => (v as { value: number }).value);
    return guarded('number', sql`${num} = any(${sql.val(nums)}::numeric[])`);
  }
  if (qv.kind === 'string') {
    const isRelationship = sql`jsonb_typeof(${attr}) = 'object' and ${attr} ->> 'type' = 'Relationship' and jsonb_typeof(${attr} -> 'object') = 'string'`;
    return sql`case when ${isProperty} and jsonb_typeof(${attr} -> 'value') = 'string' then ${attr} ->> 'value' = ${qv.value}
      when ${isRelationship} then ${attr} ->> 'object' = ${qv.value} else true end`;
  }
  if (qv.kind === 'boolean') {
    return guarded(
      'boolean',
      sql`(${attr} -> 'value') = ${qv.value ? sql`'true'::jsonb` : sql`'false'::jsonb`}`,
    );
  }
  return undefined;
}
