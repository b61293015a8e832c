/**
 * The NGSI-LD query language (ETSI GS CIM 009 v1.8, clause 4.9): `q` and `scopeQ`.
 *
 * `parseQuery` turns the text into an AST (throws CONTEXT_INVALID_QUERY saying what is wrong);
 * `matchesQuery` evaluates the AST against one entity in the platform's internal form (expanded
 * normalized: attribute names are full IRIs, see entity-model.ts). Attribute names in the AST are
 * expanded by the `expand` function given to parseQuery (identity when omitted), so subscriptions
 * can parse once with their own @context and evaluate many times.
 */
import { AppError } from '../../kernel/errors.ts';
import type { ExpandedAttribute, ExpandedEntity } from './entity-model.ts';
import { compileUserPattern, MatchWork, type UserPattern } from './user-pattern.ts';

export type CompareOp = '==' | '!=' | '>' | '>=' | '<' | '<=' | '~=' | '!~=';

export type QueryValue =
  | { kind: 'number'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'boolean'; value: boolean }
  | { kind: 'datetime'; value: string; time: number }
  | { kind: 'range'; from: QueryValue; to: QueryValue }
  | { kind: 'list'; values: QueryValue[] }
  | { kind: 'regex'; source: string; pattern: UserPattern };

/** A path into an entity: the attribute, then sub-attributes (`.`), then keys into the value (`[k]`). */
export interface AttributePath {
  attribute: string;
  subAttributes: string[];
  valueKeys: string[];
  /** The path as written, for error messages. */
  text: string;
}

export type QueryNode =
  | { kind: 'and'; terms: QueryNode[] }
  | { kind: 'or'; terms: QueryNode[] }
  | { kind: 'exists'; path: AttributePath }
  /** `!attr` (clause 4.9): the path designates nothing in the entity. */
  | { kind: 'notExists'; path: AttributePath }
  | { kind: 'compare'; path: AttributePath; op: CompareOp; value: QueryValue };

/** NGSI-LD members of an attribute that are never expanded (core @context keywords). */
export const CORE_ATTRIBUTE_MEMBERS = new Set([
  'type',
  'value',
  'object',
  'languageMap',
  'observedAt',
  'unitCode',
  'datasetId',
  'createdAt',
  'modifiedAt',
  'deletedAt',
  'instanceId',
  'lang',
  'json',
  'vocab',
  'valueList',
  'objectList',
  'objectType',
]);

export const MAX_QUERY_LENGTH = 4096;

function shortQuery(q: string): string {
  return q.length > 200 ? `${q.slice(0, 200)}…` : q;
}

function invalid(q: string, why: string): never {
  throw new AppError('CONTEXT_INVALID_QUERY', `invalid q "${shortQuery(q)}": ${why}`);
}

const DATETIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/;
const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
const NUMBER_RE = /^-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const ATTR_CHAR_RE = /[A-Za-z0-9_:/#@\-.%]/;

/**
 * Parses `q`. `expand` maps a term (as written) to the name stored in entities (an expanded IRI).
 * It is applied to the attribute and to every sub-attribute name that is not a core member.
 */
export function parseQuery(q: string, expand: (term: string) => string = (t) => t): QueryNode {
  if (typeof q !== 'string' || q.trim() === '') invalid(String(q), 'empty query');
  if (q.length > MAX_QUERY_LENGTH) invalid(q, `longer than ${MAX_QUERY_LENGTH} characters`);
  const p = new QueryParser(q, expand);
  const node = p.parseExpression();
  p.skipSpaces();
  if (p.pos < q.length) invalid(q, `unexpected "${q[p.pos]}" at position ${p.pos}`);
  return node;
}

class QueryParser {
  pos = 0;
  depth = 0;
  constructor(
    readonly q: string,
    readonly expand: (term: string) => string,
  ) {}

  skipSpaces(): void {
    while (this.q[this.pos] === ' ') this.pos++;
  }

  parseExpression(): QueryNode {
    // A sequence of terms joined by ';' (and) and '|' (or). As in every NGSI-LD broker, ';' binds
    // tighter than '|' (a;b|c means (a;b)|c); parentheses group.
    const orTerms: QueryNode[] = [];
    let andTerms: QueryNode[] = [this.parseTerm()];
    for (;;) {
      this.skipSpaces();
      const c = this.q[this.pos];
      if (c === ';') {
        this.pos++;
        andTerms.push(this.parseTerm());
      } else if (c === '|') {
        this.pos++;
        orTerms.push(andTerms.length === 1 ? andTerms[0]! : { kind: 'and', terms: andTerms });
        andTerms = [this.parseTerm()];
      } else break;
    }
    const last = andTerms.length === 1 ? andTerms[0]! : { kind: 'and' as const, terms: andTerms };
    if (orTerms.length === 0) return last;
    orTerms.push(last);
    return { kind: 'or', terms: orTerms };
  }

  parseTerm(): QueryNode {
    this.skipSpaces();
    if (this.q[this.pos] === '(') {
      if (++this.depth > 32) invalid(this.q, 'parentheses nested too deeply');
      this.pos++;
      const inner = this.parseExpression();
      this.skipSpaces();
      if (this.q[this.pos] !== ')') invalid(this.q, `missing ")" at position ${this.pos}`);
      this.pos++;
      this.depth--;
      return inner;
    }
    if (this.q[this.pos] === '!') {
      // `!attr`: the attribute (or the path) does not exist; no comparison may follow.
      this.pos++;
      const path = this.parsePath();
      this.skipSpaces();
      const at = this.pos;
      if (this.parseOperator())
        invalid(this.q, `"!" negates existence: no comparison after it (position ${at})`);
      return { kind: 'notExists', path };
    }
    const path = this.parsePath();
    this.skipSpaces();
    const op = this.parseOperator();
    if (!op) return { kind: 'exists', path };
    this.skipSpaces();
    const value = this.parseValue(op);
    return { kind: 'compare', path, op, value };
  }

  parsePath(): AttributePath {
    const start = this.pos;
    let name = '';
    // Attribute names may be full IRIs (with ':' and '/'); a '.' separates sub-attributes unless the
    // name is an IRI with a scheme, where dots belong to the host.
    while (this.pos < this.q.length && ATTR_CHAR_RE.test(this.q[this.pos]!)) {
      name += this.q[this.pos];
      this.pos++;
    }
    if (name === '') invalid(this.q, `expected an attribute name at position ${start}`);
    const valueKeys: string[] = [];
    while (this.q[this.pos] === '[') {
      const close = this.q.indexOf(']', this.pos);
      if (close < 0) invalid(this.q, `missing "]" after position ${this.pos}`);
      const key = this.q.slice(this.pos + 1, close);
      if (key === '') invalid(this.q, `empty [] at position ${this.pos}`);
      valueKeys.push(key);
      this.pos = close + 1;
    }
    const text = this.q.slice(start, this.pos);
    let parts: string[];
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(name)) parts = [name];
    else parts = name.split('.');
    if (parts.some((s) => s === '')) invalid(this.q, `bad attribute path "${text}"`);
    const [attr, ...subs] = parts as [string, ...string[]];
    return {
      attribute: this.expandAttr(attr),
      subAttributes: subs.map((s) => (CORE_ATTRIBUTE_MEMBERS.has(s) ? s : this.expandAttr(s))),
      valueKeys,
      text,
    };
  }

  expandAttr(term: string): string {
    if (term === 'id' || term === 'type' || term === 'scope') return term;
    return this.expand(term);
  }

  parseOperator(): CompareOp | undefined {
    for (const op of ['==', '!=', '>=', '<=', '!~=', '~=', '>', '<'] as const) {
      if (this.q.startsWith(op, this.pos)) {
        this.pos += op.length;
        return op;
      }
    }
    return undefined;
  }

  parseValue(op: CompareOp): QueryValue {
    if (op === '~=' || op === '!~=') {
      const raw = this.readRaw();
      const source = raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2 ? raw.slice(1, -1) : raw;
      if (source === '') invalid(this.q, 'empty pattern');
      const pattern = compileUserPattern(
        source,
        (why) => new AppError('CONTEXT_INVALID_QUERY', `invalid q "${shortQuery(this.q)}": ${why}`),
      );
      return { kind: 'regex', source, pattern };
    }
    const first = this.parseScalar();
    if (this.q.startsWith('..', this.pos)) {
      if (op !== '==' && op !== '!=') invalid(this.q, 'a range needs == or !=');
      this.pos += 2;
      const to = this.parseScalar();
      if (first.kind !== to.kind) invalid(this.q, 'the two ends of a range must be of the same type');
      return { kind: 'range', from: first, to };
    }
    if (this.q[this.pos] === ',') {
      if (op !== '==' && op !== '!=') invalid(this.q, 'a list needs == or !=');
      const values = [first];
      while (this.q[this.pos] === ',') {
        this.pos++;
        values.push(this.parseScalar());
      }
      return { kind: 'list', values };
    }
    if ((op === '>' || op === '<' || op === '>=' || op === '<=') && first.kind === 'boolean') {
      invalid(this.q, `${op} does not apply to booleans`);
    }
    return first;
  }

  /** Reads up to the next unquoted ';', '|', ')' or end (patterns may hold any other character). */
  readRaw(): string {
    const start = this.pos;
    if (this.q[this.pos] === '"') {
      const end = this.findQuoteEnd(this.pos);
      this.pos = end + 1;
      return this.q.slice(start, this.pos);
    }
    let parens = 0;
    while (this.pos < this.q.length) {
      const c = this.q[this.pos]!;
      if (c === '\\') {
        this.pos += 2;
        continue;
      }
      if (c === '(') parens++;
      else if (c === ')') {
        if (parens === 0) break;
        parens--;
      } else if ((c === ';' || c === '|') && parens === 0) break;
      this.pos++;
    }
    return this.q.slice(start, this.pos);
  }

  findQuoteEnd(open: number): number {
    let i = open + 1;
    while (i < this.q.length) {
      if (this.q[i] === '\\') i += 2;
      else if (this.q[i] === '"') return i;
      else i++;
    }
    return invalid(this.q, `unterminated string starting at position ${open}`);
  }

  parseScalar(): QueryValue {
    if (this.q[this.pos] === '"') {
      const end = this.findQuoteEnd(this.pos);
      const raw = this.q.slice(this.pos + 1, end).replace(/\\(.)/g, '$1');
      this.pos = end + 1;
      return stringOrDate(raw);
    }
    const start = this.pos;
    while (this.pos < this.q.length) {
      const c = this.q[this.pos]!;
      if (c === ';' || c === '|' || c === ')' || c === ',' || c === '(' || c === ' ') break;
      if (c === '.' && this.q[this.pos + 1] === '.') break;
      this.pos++;
    }
    const raw = this.q.slice(start, this.pos);
    if (raw === '') invalid(this.q, `expected a value at position ${start}`);
    // `value>>>`, `a===1`: an operator where a value belongs is a malformed query, not a string to look for.
    if (/^[<>=!~]/.test(raw)) invalid(this.q, `expected a value at position ${start}, not "${raw}"`);
    if (raw === 'true' || raw === 'false') return { kind: 'boolean', value: raw === 'true' };
    if (NUMBER_RE.test(raw)) return { kind: 'number', value: Number(raw) };
    // Unquoted: a date-time, or a URI (relationship targets); anything else is taken as a string.
    return stringOrDate(raw);
  }
}

function stringOrDate(raw: string): QueryValue {
  if (DATETIME_RE.test(raw) || DATE_RE.test(raw)) {
    const time = Date.parse(raw);
    if (!Number.isNaN(time)) return { kind: 'datetime', value: raw, time };
  }
  return { kind: 'string', value: raw };
}

/**
 * `expandValues` (clause 4.9, V1.8.1): the string values the query compares the listed attributes with are
 * terms of the @context, expanded as attribute names are (`q=category==shop&expandValues=category` looks
 * for the IRI `shop` stands for, as a VocabProperty stores it). `attributes` are expanded names; only
 * comparisons of the attribute's own value (no sub-attribute or key path) are changed.
 */
export function expandQueryValues(
  node: QueryNode,
  attributes: ReadonlySet<string>,
  expand: (term: string) => string,
): QueryNode {
  const value = (v: QueryValue): QueryValue => {
    switch (v.kind) {
      case 'string':
        return { kind: 'string', value: expand(v.value) };
      case 'list':
        return { kind: 'list', values: v.values.map(value) };
      case 'range':
        return { kind: 'range', from: value(v.from), to: value(v.to) };
      default:
        return v;
    }
  };
  switch (node.kind) {
    case 'and':
    case 'or':
      return { kind: node.kind, terms: node.terms.map((t) => expandQueryValues(t, attributes, expand)) };
    case 'compare': {
      const { path } = node;
      if (!attributes.has(path.attribute) || path.subAttributes.length > 0 || path.valueKeys.length > 0)
        return node;
      return { ...node, value: value(node.value) };
    }
    default:
      return node;
  }
}

/**
 * True when the entity (expanded normalized form) satisfies the query. The patterns of the query share one
 * bound of work on the entity (user-pattern.ts): past it, CONTEXT_QUERY_TOO_COMPLEX.
 */
export function matchesQuery(entity: ExpandedEntity, ast: QueryNode, work = new MatchWork()): boolean {
  switch (ast.kind) {
    case 'and':
      return ast.terms.every((t) => matchesQuery(entity, t, work));
    case 'or':
      return ast.terms.some((t) => matchesQuery(entity, t, work));
    case 'exists':
      return targetValues(entity, ast.path).length > 0;
    case 'notExists':
      return targetValues(entity, ast.path).length === 0;
    case 'compare': {
      const targets = targetValues(entity, ast.path);
      if (targets.length === 0) return false;
      return targets.some((t) => compareTarget(t, ast.op, ast.value, work));
    }
  }
}

/** The values a path designates in one entity (several for multi-attributes and arrays). */
function targetValues(entity: ExpandedEntity, path: AttributePath): unknown[] {
  if (path.attribute === 'id') return [entity.id];
  if (path.attribute === 'type') return entity.type;
  if (path.attribute === 'scope') return entity.scope ?? [];
  const raw = entity[path.attribute] as ExpandedAttribute | ExpandedAttribute[] | undefined;
  if (raw === undefined || raw === null || typeof raw !== 'object') return [];
  let attrs: unknown[] = Array.isArray(raw) ? raw : [raw];
  for (const sub of path.subAttributes) {
    const next: unknown[] = [];
    for (const a of attrs) {
      if (a === null || typeof a !== 'object') continue;
      const v = (a as Record<string, unknown>)[sub];
      if (v === undefined) continue;
      if (CORE_ATTRIBUTE_MEMBERS.has(sub)) next.push({ __direct: v });
      else if (Array.isArray(v)) next.push(...v);
      else next.push(v);
    }
    attrs = next;
  }
  const out: unknown[] = [];
  for (const a of attrs) {
    let v: unknown;
    if (a !== null && typeof a === 'object' && '__direct' in a) v = (a as { __direct: unknown }).__direct;
    else v = attributeValue(a as ExpandedAttribute);
    if (v === undefined) continue;
    for (const key of path.valueKeys) {
      // Keys come from the query: only the value's own members, never Object.prototype's.
      if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.hasOwn(v, key))
        v = (v as Record<string, unknown>)[key];
      else v = undefined;
      if (v === undefined) break;
    }
    if (v === undefined) continue;
    out.push(v);
  }
  return out;
}

/** The comparable value of an attribute: value, object, the languageMap's strings, json, vocab or lists. */
export function attributeValue(a: ExpandedAttribute): unknown {
  if (a === null || typeof a !== 'object') return undefined;
  switch (a.type) {
    case 'Relationship':
      return a.object;
    case 'LanguageProperty':
      return a.languageMap && typeof a.languageMap === 'object'
        ? Object.values(a.languageMap as Record<string, unknown>).flat()
        : undefined;
    case 'JsonProperty':
      return a.json;
    case 'VocabProperty':
      return a.vocab;
    case 'ListProperty':
      return a.valueList;
    case 'ListRelationship':
      return a.objectList;
    default:
      return a.value;
  }
}

function compareTarget(target: unknown, op: CompareOp, qv: QueryValue, work: MatchWork): boolean {
  if (Array.isArray(target)) {
    // An array value matches when one of its elements does; != means none of them equals.
    if (op === '!=') return target.length > 0 && target.every((t) => compareTarget(t, op, qv, work));
    return target.some((t) => compareTarget(t, op, qv, work));
  }
  const scalar = unwrapTyped(target);
  switch (op) {
    case '==':
      return equalsQuery(scalar, qv);
    case '!=':
      return !equalsQuery(scalar, qv) && comparableKind(scalar, qv);
    case '~=':
    case '!~=': {
      if (typeof scalar !== 'string' || qv.kind !== 'regex') return false;
      const m = qv.pattern.test(scalar, work);
      return op === '~=' ? m : !m;
    }
    default: {
      const c = order(scalar, qv);
      if (c === undefined) return false;
      if (op === '>') return c > 0;
      if (op === '>=') return c >= 0;
      if (op === '<') return c < 0;
      return c <= 0;
    }
  }
}

/** `{"@type": "DateTime", "@value": "..."}` compares as its @value. */
export function unwrapTyped(v: unknown): unknown {
  if (v !== null && typeof v === 'object' && '@value' in (v as Record<string, unknown>)) {
    return (v as Record<string, unknown>)['@value'];
  }
  return v;
}

function comparableKind(target: unknown, qv: QueryValue): boolean {
  if (qv.kind === 'list') return qv.values.some((v) => comparableKind(target, v));
  if (qv.kind === 'range') return comparableKind(target, qv.from);
  if (qv.kind === 'number') return typeof target === 'number';
  if (qv.kind === 'boolean') return typeof target === 'boolean';
  return typeof target === 'string';
}

function equalsQuery(target: unknown, qv: QueryValue): boolean {
  switch (qv.kind) {
    case 'list':
      return qv.values.some((v) => equalsQuery(target, v));
    case 'range': {
      const lo = order(target, qv.from);
      const hi = order(target, qv.to);
      return lo !== undefined && hi !== undefined && lo >= 0 && hi <= 0;
    }
    default:
      return order(target, qv) === 0;
  }
}

/** Compares a target with a scalar query value: <0, 0, >0, or undefined when not comparable. */
function order(target: unknown, qv: QueryValue): number | undefined {
  switch (qv.kind) {
    case 'number':
      return typeof target === 'number' ? Math.sign(target - qv.value) : undefined;
    case 'boolean':
      return typeof target === 'boolean' ? (target === qv.value ? 0 : target ? 1 : -1) : undefined;
    case 'datetime': {
      if (typeof target !== 'string') return undefined;
      if (target === qv.value) return 0;
      const t = Date.parse(target);
      return Number.isNaN(t) ? undefined : Math.sign(t - qv.time);
    }
    case 'string':
      return typeof target === 'string' ? (target < qv.value ? -1 : target > qv.value ? 1 : 0) : undefined;
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// scopeQ (clause 4.19): scopes are hierarchical paths like /Madrid/Gardens; `+` matches one level,
// `#` any number of levels; `;` (and), `|` and `,` (or: the ABNF's orOp is either) combine, parentheses group.

export type ScopeNode =
  | { kind: 'and'; terms: ScopeNode[] }
  | { kind: 'or'; terms: ScopeNode[] }
  | { kind: 'scope'; pattern: string; regex: RegExp };

const SCOPE_RE = /^\/(?:[^/;|,()#+\s]+|\+)(?:\/(?:[^/;|,()#+\s]+|\+))*(?:\/#)?$|^\/#$/;

export function parseScopeQuery(q: string): ScopeNode {
  if (typeof q !== 'string' || q.trim() === '') {
    throw new AppError('CONTEXT_INVALID_QUERY', 'invalid scopeQ: empty');
  }
  let pos = 0;
  const fail = (why: string): never => {
    throw new AppError('CONTEXT_INVALID_QUERY', `invalid scopeQ "${q}": ${why}`);
  };
  const term = (): ScopeNode => {
    if (q[pos] === '(') {
      pos++;
      const e = expr();
      if (q[pos] !== ')') fail(`missing ")" at position ${pos}`);
      pos++;
      return e;
    }
    const start = pos;
    while (pos < q.length && !';|,()'.includes(q[pos]!)) pos++;
    const pattern = q.slice(start, pos);
    if (!SCOPE_RE.test(pattern))
      fail(`"${pattern}" is not a scope (like /Madrid/Gardens, /Madrid/+ or /Madrid/#)`);
    return { kind: 'scope', pattern, regex: scopeRegex(pattern) };
  };
  const expr = (): ScopeNode => {
    const ors: ScopeNode[] = [];
    let ands: ScopeNode[] = [term()];
    while (q[pos] === ';' || q[pos] === '|' || q[pos] === ',') {
      const c = q[pos++];
      if (c === ';') ands.push(term());
      else {
        ors.push(ands.length === 1 ? ands[0]! : { kind: 'and', terms: ands });
        ands = [term()];
      }
    }
    const last: ScopeNode = ands.length === 1 ? ands[0]! : { kind: 'and', terms: ands };
    return ors.length === 0 ? last : { kind: 'or', terms: [...ors, last] };
  };
  const node = expr();
  if (pos < q.length) fail(`unexpected "${q[pos]}" at position ${pos}`);
  return node;
}

/**
 * A JavaScript RegExp is safe here, unlike for `~=`: the expression is ours, built from escaped literal
 * levels and `[^/]+` between slashes, which cannot match in more than one way, so it never backtracks
 * more than linearly.
 */
function scopeRegex(pattern: string): RegExp {
  if (pattern === '/#') return /^\/.*$/;
  const parts = pattern.split('/').slice(1);
  let re = '^';
  for (const part of parts) {
    if (part === '#') re += '(?:/[^/]+)*';
    else if (part === '+') re += '/[^/]+';
    else re += `/${part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`;
  }
  return new RegExp(`${re}$`);
}

export function matchesScopeQuery(entity: Pick<ExpandedEntity, 'scope'>, node: ScopeNode): boolean {
  switch (node.kind) {
    case 'and':
      return node.terms.every((t) => matchesScopeQuery(entity, t));
    case 'or':
      return node.terms.some((t) => matchesScopeQuery(entity, t));
    case 'scope':
      return (entity.scope ?? []).some((s) => node.regex.test(s));
  }
}
