/**
 * `q` on the attribute value index (attribute-values.ts, decision record 0007): the part of a query the
 * value table answers, as a condition on `e` that its B-tree indexes serve, and whether that part is the
 * whole query.
 *
 * - exact: the condition selects exactly the entities `matchesQuery` accepts, so the store answers the page
 *   and the count without evaluating any entity in memory;
 * - otherwise a superset (parts the index cannot answer were left out of an `and`): the candidates it
 *   selects are evaluated by `matchesQuery` as before.
 *
 * Indexed: comparisons `==`, `>`, `>=`, `<`, `<=` of a top-level attribute with a number, a date-time or a
 * boolean, `==` with a string (of at most MAX_INDEXED_STRING characters), ranges and lists of those, and
 * `id==`; `and` and `or` of indexed terms. Not indexed (the evaluation in memory decides): `!=`, `~=`,
 * `!~=`, existence, order and ranges of strings (JavaScript compares UTF-16 units, PostgreSQL bytes or a
 * collation), sub-attribute and value-key paths, `type` and `scope`.
 */
import { type RawBuilder, sql } from 'kysely';
import { MAX_INDEXED_STRING } from './attribute-values.ts';
import type { QueryNode, QueryValue } from './query-language.ts';

type Cond = RawBuilder<unknown>;

export interface IndexedQuery {
  /** A condition on `e` (context_entity) served by the value table's indexes. */
  condition: Cond;
  /** The same as a select of the (visible, typed) entity ids, possibly repeated. */
  ids: Cond;
  /** True when the condition is the whole query. */
  exact: boolean;
}

/** What every value row must also satisfy: the tenant, the caller's visibility, the types asked for. */
export interface IndexScope {
  tenant: string;
  readKeys: string[];
  /** OR of AND-groups of expanded types. */
  typeGroups?: string[][] | undefined;
}

/** A set of entity ids (a select of one column), and whether it is exactly the term's matches. */
interface IdSet {
  select: Cond;
  exact: boolean;
}

export function indexQuery(ast: QueryNode, scope: IndexScope): IndexedQuery | undefined {
  // The row filter goes into every set: the read keys beside the value index, as beside the types index
  // (entity-repository.ts, whereClause): an invisible entity the index finds costs one test of its keys.
  const filter = (t: 'v' | 'x') => {
    const types = scope.typeGroups?.length
      ? sql` and (${sql.join(
          scope.typeGroups.map((g) => sql`${sql.ref(`${t}.types`)} @> ${sql.val(g)}::text[]`),
          sql` or `,
        )})`
      : sql``;
    return sql`${sql.ref(`${t}.read_keys`)} && ${sql.val(scope.readKeys)}::text[]${types}`;
  };
  const rows: RowScope = { tenant: scope.tenant, filter };
  const whole = idSet(ast, rows);
  if (!whole) return undefined;
  // The terms of a top-level `and` are separate semi-joins: the planner starts from the most selective.
  if (ast.kind === 'and') {
    const known = ast.terms.map((t) => idSet(t, rows)).filter((s): s is IdSet => s !== undefined);
    return {
      condition: sql`(${sql.join(
        known.map((s) => sql`e.id in (${s.select})`),
        sql` and `,
      )})`,
      ids: whole.select,
      exact: whole.exact,
    };
  }
  return { condition: sql`e.id in (${whole.select})`, ids: whole.select, exact: whole.exact };
}

interface RowScope {
  tenant: string;
  /** The row filter on value rows (`v`) or entity rows (`x`). */
  filter: (table: 'v' | 'x') => Cond;
}

function idSet(node: QueryNode, rows: RowScope): IdSet | undefined {
  switch (node.kind) {
    case 'and': {
      const sets = node.terms.map((t) => idSet(t, rows));
      const known = sets.filter((s): s is IdSet => s !== undefined);
      if (known.length === 0) return undefined;
      return {
        select: setOperation(known, sql`intersect`),
        exact: known.length === sets.length && known.every((s) => s.exact),
      };
    }
    case 'or': {
      const sets = node.terms.map((t) => idSet(t, rows));
      if (sets.some((s) => s === undefined)) return undefined;
      const known = sets as IdSet[];
      return { select: setOperation(known, sql`union all`), exact: known.every((s) => s.exact) };
    }
    case 'exists':
    case 'notExists':
      return undefined;
    case 'compare': {
      const { path, op, value } = node;
      if (path.subAttributes.length > 0 || path.valueKeys.length > 0) return undefined;
      if (path.attribute === 'type' || path.attribute === 'scope') return undefined;
      if (path.attribute === 'id') {
        // == with a string is plain equality (a date-time value compares by time: left to the evaluation).
        if (op !== '==' || value.kind !== 'string') return undefined;
        return {
          select: sql`select x.id from context_entity x where x.tenant = ${rows.tenant} and x.id = ${value.value} and ${rows.filter('x')}`,
          exact: true,
        };
      }
      const test = leafTest(op, value);
      if (!test) return undefined;
      return {
        select: sql`select v.entity_id from context_entity_value v where v.tenant = ${rows.tenant} and v.attr = ${path.attribute} and ${test} and ${rows.filter('v')}`,
        exact: true,
      };
    }
  }
}

function setOperation(sets: IdSet[], op: Cond): Cond {
  if (sets.length === 1) return sets[0]!.select;
  return sql.join(
    sets.map((s) => sql`(${s.select})`),
    sql` ${op} `,
  );
}

const ORDER_OPS = { '==': sql`=`, '>': sql`>`, '>=': sql`>=`, '<': sql`<`, '<=': sql`<=` } as const;

/** The test on one value row that is exactly `compareTarget(leaf, op, value)` for ops other than != and ~=. */
function leafTest(op: string, qv: QueryValue): Cond | undefined {
  if (!(op in ORDER_OPS)) return undefined;
  const cmp = ORDER_OPS[op as keyof typeof ORDER_OPS];
  switch (qv.kind) {
    case 'number':
      return sql`v.kind = 'n' and v.num ${cmp} ${qv.value}::float8`;
    case 'datetime':
      // order(): the same text is equal, else Date.parse of the text against the value's time; the same
      // text parses to the same time, so the stored Date.parse decides both.
      return sql`v.kind = 's' and v.num ${cmp} ${qv.time}::float8`;
    case 'boolean':
      return op === '==' ? sql`v.kind = 'b' and v.num = ${qv.value ? 1 : 0}::float8` : undefined;
    case 'string':
      return op === '==' && qv.value.length <= MAX_INDEXED_STRING
        ? sql`v.kind = 's' and v.str = ${qv.value}`
        : undefined;
    case 'range': {
      if (op !== '==') return undefined;
      const range = numericRange(qv.from, qv.to);
      return range
        ? sql`v.kind = ${sql.lit(range.kind)} and v.num between ${range.from}::float8 and ${range.to}::float8`
        : undefined;
    }
    case 'list': {
      if (op !== '==') return undefined;
      const tests = qv.values.map((v) => leafTest('==', v));
      if (tests.some((t) => t === undefined)) return undefined;
      return sql`(${sql.join(
        (tests as Cond[]).map((t) => sql`(${t})`),
        sql` or `,
      )})`;
    }
    default:
      return undefined;
  }
}

function numericRange(
  from: QueryValue,
  to: QueryValue,
): { kind: 'n' | 's' | 'b'; from: number; to: number } | undefined {
  if (from.kind === 'number' && to.kind === 'number') return { kind: 'n', from: from.value, to: to.value };
  if (from.kind === 'datetime' && to.kind === 'datetime') return { kind: 's', from: from.time, to: to.time };
  if (from.kind === 'boolean' && to.kind === 'boolean') {
    return { kind: 'b', from: from.value ? 1 : 0, to: to.value ? 1 : 0 };
  }
  return undefined;
}
