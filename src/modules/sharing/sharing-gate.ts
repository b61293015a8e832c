/**
 * The sharing gate: the one place that decides who sees and who changes a marked object, of every kind
 * (reports, NGSI-LD entities, subscriptions, closures, hosted @contexts, and every kind added later).
 *
 * - Reading: `visibleWhere` (a SQL residual over a `read_keys` column) for lists and queries, `canSee` for
 *   memory (streams, notifications). Both are the read-key intersection of decision record 0001.
 * - Writing: `create`, `update`, `remove` (and their batch forms for the NGSI-LD broker) decide — role,
 *   owner organisation, readable, audience exists, marking change allowed — and record: the registry row and
 *   the audit record are written in the caller's transaction, so neither exists without the write.
 * - Explaining and break-glass work for every kind through the registry (`shared_object`).
 *
 * Domain modules receive the gate; none computes read keys or checks a role itself.
 */
import { type RawBuilder, sql } from 'kysely';
import { type Clock, systemClock } from '../../kernel/clock.ts';
import { AppError } from '../../kernel/errors.ts';
import type { AnyDb, Store } from '../../ports/store.ts';
import {
  type AuditEntry,
  type AuditQuery,
  type AuditRecord,
  appendAudit,
  listAudit,
} from '../audit/index.ts';
import { explainVisibility, type VisibilityVerdict } from './explain-visibility.ts';
import {
  combineMarkings,
  type MarkedObject,
  type Marking,
  objectReadKeys,
  type PrincipalFacts,
  parseMarking,
  principalReadKeys,
  TLP_RANK,
  type Tlp,
} from './marking.ts';
import { hasRole, isOrgAdmin, isPlatformAdmin, type Role, requireAnyAdmin, WRITER_ROLES } from './roles.ts';
import {
  deleteSharedObjects,
  type FullRef,
  findSharedObjects,
  getSharedObject,
  insertSharedObjects,
  type SharedObject,
  setSharedObjectMarking,
} from './shared-object-registry.ts';

/** Who acts: what the authentication hook puts on a request (or a service account's principal). */
export interface GatePrincipal {
  userId: string;
  username?: string | undefined;
  orgId: string;
  roles: readonly string[];
  readKeys: readonly string[];
  /** The marking objects get when the request names none (the organisation's default). */
  defaultMarking?: Marking | undefined;
}

/** What the gate needs from the directory of organisations, communities and accounts (the access module). */
export interface Directory {
  /**
   * Checks that a marking names only organisations, communities and users that exist (404 codes otherwise)
   * and returns it with users named by id.
   */
  resolveMarking(db: AnyDb, marking: Marking): Promise<Marking>;
  principalFacts(who: { userId: string; orgId: string }): Promise<PrincipalFacts>;
  /** An account by id or username (ACCESS_USER_NOT_FOUND otherwise). */
  account(ref: string): Promise<{ id: string; username: string; orgId: string; disabled: boolean }>;
}

/** How a kind of object behaves at the gate. */
export interface KindSpec {
  /** How messages name it: "report", "NGSI-LD entity", "subscription", "closure". */
  label: string;
  /** Roles that create objects of this kind (default: the writer roles). */
  createRoles?: readonly Role[];
  /** Roles that change and delete them, in the owner organisation (default: the writer roles). */
  writeRoles?: readonly Role[];
  /** The object's content, for break-glass reads. */
  load?: (ref: FullRef) => Promise<unknown>;
}

/** The facts of an existing object that a write is decided on (loaded by the module under its row lock). */
export interface CurrentObject extends MarkedObject {
  id: string;
  scope?: string | undefined;
}

/** An object derived by the platform from others (a closure from an Alert): owned by the sources' owner. */
export interface DerivedObject extends MarkedObject {
  kind: string;
  scope?: string | undefined;
  id: string;
}

/** What a module stores beside its object after the gate registered it. */
export interface Registered {
  id: string;
  marking: Marking;
  ownerOrg: string;
  createdBy: string;
  readKeys: string[];
  incarnation: string;
}

export interface SharingGateOptions {
  store: Store;
  directory: Directory;
  clock?: Clock | undefined;
}

/** Labels whose reads from outside the owner organisation are recorded as disclosures. */
const DISCLOSED: readonly Tlp[] = ['AMBER', 'AMBER+STRICT', 'RED'];
/**
 * A user's repeated reads of one object under one label are one disclosure: recorded at the first read, then
 * again only after this window, so a control-room screen refreshing every few seconds records it once.
 */
const DISCLOSURE_WINDOW_MS = 15 * 60_000;
const DISCLOSURE_MEMORY = 100_000;
/** Object ids listed in one aggregated audit record of a batch. */
const AUDIT_IDS_PER_RECORD = 1000;
/** Audit records about the platform's administration, which the platform administrator reads. */
export const ADMINISTRATION_KINDS = ['org', 'community', 'user', 'service_account', 'api_token', 'settings'];

export class SharingGate {
  readonly store: Store;
  readonly clock: Clock;
  readonly #directory: Directory;
  readonly #kinds = new Map<string, KindSpec>();
  readonly #recentDisclosures = new Map<string, number>();

  constructor(opts: SharingGateOptions) {
    this.store = opts.store;
    this.#directory = opts.directory;
    this.clock = opts.clock ?? systemClock;
  }

  /** Declares a kind of marked object; every module does it once for each kind it owns. */
  defineKind(kind: string, spec: KindSpec): void {
    this.#kinds.set(kind, spec);
  }

  kinds(): string[] {
    return [...this.#kinds.keys()].sort();
  }

  #spec(kind: string): KindSpec {
    const spec = this.#kinds.get(kind);
    if (!spec) throw new AppError('PLATFORM_INTERNAL', `kind ${kind} is not defined at the sharing gate`);
    return spec;
  }

  // ------------------------------------------------------------------------------------------ reading

  /** The SQL condition "the principal may see this row", over the row's read-keys column. */
  visibleWhere(p: Pick<GatePrincipal, 'readKeys'> | null, column = 'read_keys'): RawBuilder<boolean> {
    const keys = p ? [...p.readKeys] : principalReadKeys(null);
    return sql<boolean>`${sql.ref(column)} && ${sql.val(keys)}::text[]`;
  }

  /** The read keys of a principal, for SQL filters that cannot take `visibleWhere` (joins, arrays). */
  readKeysOf(p: Pick<GatePrincipal, 'readKeys'> | null): string[] {
    return p ? [...p.readKeys] : principalReadKeys(null);
  }

  /** The same decision in memory: live streams, notifications, caches. */
  canSee(
    p: Pick<GatePrincipal, 'readKeys'> | readonly string[] | null,
    o: MarkedObject | { readKeys: readonly string[] },
  ): boolean {
    const mine = new Set(
      p === null ? principalReadKeys(null) : Array.isArray(p) ? p : (p as GatePrincipal).readKeys,
    );
    const keys = 'readKeys' in o ? o.readKeys : objectReadKeys(o);
    return keys.some((k) => mine.has(k));
  }

  /** The read keys an object's row stores (for modules that keep a copy beside their own rows). */
  keysOf(o: MarkedObject): string[] {
    return objectReadKeys(o);
  }

  /**
   * The keys a user reads with as the directory stands now (its organisation's communities and patrons, cached
   * for a few seconds and dropped at once on a change): for connections that outlive the request that opened
   * them (live streams), which must follow a new client or community member as every request does.
   */
  async readKeysFor(who: { userId: string; orgId: string }): Promise<string[]> {
    return principalReadKeys(await this.#directory.principalFacts(who));
  }

  /**
   * The keys of an organisation's systems (a notification endpoint, a subscription): what any user of the
   * organisation reads, without the `user:` keys of TLP:RED (a system is nobody's named user).
   */
  async orgReadKeys(orgId: string): Promise<string[]> {
    const facts = await this.#directory.principalFacts({ userId: `org:${orgId}`, orgId });
    return principalReadKeys(facts).filter((k) => !k.startsWith('user:'));
  }

  /**
   * The marking of something derived from several sources: the most restrictive label and the intersection
   * of the audiences (MARKINGS.md: markings only tighten on the way out).
   */
  deriveMarking(sources: Marking[]): Marking {
    return combineMarkings(sources);
  }

  // ------------------------------------------------------------------------------------------ deciding

  /** The marking a new object gets: the request's (validated, audience resolved) or the default. */
  async resolveMarking(db: AnyDb, p: GatePrincipal, raw: unknown): Promise<Marking> {
    if (raw === undefined) {
      if (!p.defaultMarking) throw new AppError('ACCESS_INVALID_MARKING', 'a marking is required');
      return this.#directory.resolveMarking(db, p.defaultMarking);
    }
    return this.#directory.resolveMarking(db, parseMarking(raw));
  }

  /** May this principal create an object of this kind? (Throws AUTH_ROLE_REQUIRED.) */
  checkCreate(p: GatePrincipal, kind: string): void {
    const spec = this.#spec(kind);
    const roles = spec.createRoles ?? WRITER_ROLES;
    if (!hasRole(p, ...roles)) {
      throw new AppError(
        'AUTH_ROLE_REQUIRED',
        `creating a ${spec.label} needs one of the roles ${roles.join(', ')}`,
      );
    }
  }

  /**
   * May this principal change (or delete) this object, and set this next marking? In order: an object it
   * cannot see is absent (ACCESS_OBJECT_NOT_FOUND, exactly like a missing one); then the role, the owner
   * organisation, and the marking rule: a TLP:RED object's marking is changed only by its creator (named
   * users may not pass it on).
   */
  checkChange(p: GatePrincipal, kind: string, current: CurrentObject, next?: Marking): void {
    const spec = this.#spec(kind);
    if (!this.canSee(p, current)) throw this.notFound(kind, current.id);
    const roles = spec.writeRoles ?? WRITER_ROLES;
    if (!hasRole(p, ...roles)) {
      throw new AppError(
        'AUTH_ROLE_REQUIRED',
        `changing a ${spec.label} needs one of the roles ${roles.join(', ')}`,
      );
    }
    if (p.orgId !== current.ownerOrg) {
      throw new AppError(
        'ACCESS_DENIED',
        `only writers of the owner organisation ${current.ownerOrg} change this ${spec.label}`,
      );
    }
    if (next && !sameMarking(next, current.marking)) {
      if (current.marking.tlp === 'RED' && p.userId !== current.createdBy) {
        throw new AppError(
          'ACCESS_DENIED',
          `only the creator changes the marking of a TLP:RED ${spec.label}: named users may not pass it on`,
        );
      }
    }
  }

  notFound(kind: string, id: string): AppError {
    const spec = this.#kinds.get(kind);
    return new AppError('ACCESS_OBJECT_NOT_FOUND', `no ${spec?.label ?? kind} ${id}`);
  }

  // ------------------------------------------------------------------------------------------ recording

  /**
   * Creates one object: role, marking (validated), registry row and audit record, in the caller's
   * transaction. The module writes its own row with the returned read keys and incarnation.
   */
  async create(
    trx: AnyDb,
    p: GatePrincipal,
    input: { kind: string; scope?: string; id: string; marking?: unknown; details?: Record<string, unknown> },
  ): Promise<Registered> {
    this.checkCreate(p, input.kind);
    const marking = await this.resolveMarking(trx, p, input.marking);
    const [r] = await this.recordCreated(trx, p, input.kind, [
      { scope: input.scope, id: input.id, marking, details: input.details },
    ]);
    return r as Registered;
  }

  /**
   * Records objects created by `p` (already checked with checkCreate and resolveMarking): registry rows and
   * one audit record per object, or one per batch when there are many (ids listed in the record).
   */
  async recordCreated(
    trx: AnyDb,
    p: GatePrincipal,
    kind: string,
    items: {
      scope?: string | undefined;
      id: string;
      marking: Marking;
      details?: Record<string, unknown> | undefined;
    }[],
  ): Promise<Registered[]> {
    const now = this.clock.now();
    const rows = await insertSharedObjects(
      trx,
      items.map((i) => ({
        kind,
        scope: i.scope ?? '',
        id: i.id,
        ownerOrg: p.orgId,
        createdBy: p.userId,
        marking: i.marking,
      })),
      now,
    );
    await this.#auditObjects(
      trx,
      p,
      'create',
      kind,
      items.map((i, n) => ({
        scope: i.scope ?? '',
        id: i.id,
        ownerOrg: p.orgId,
        details: { ...(i.details ?? {}), marking: i.marking },
        tlp: rows[n]?.marking.tlp,
      })),
    );
    return rows.map((r) => ({
      id: r.id,
      marking: r.marking,
      ownerOrg: r.ownerOrg,
      createdBy: r.createdBy,
      readKeys: r.readKeys,
      incarnation: r.incarnation,
    }));
  }

  /**
   * Registers objects the platform derives from others (a closure from an Alert entity): owned by the
   * source's owner and creator, with the source's marking (or a tighter one), audited as the platform's act
   * with the creator named in the record.
   */
  async recordDerived(
    trx: AnyDb,
    objects: DerivedObject[],
    details: Record<string, unknown> = {},
  ): Promise<Registered[]> {
    const now = this.clock.now();
    const rows = await insertSharedObjects(
      trx,
      objects.map((o) => ({
        kind: o.kind,
        scope: o.scope ?? '',
        id: o.id,
        ownerOrg: o.ownerOrg,
        createdBy: o.createdBy,
        marking: o.marking,
      })),
      now,
    );
    await appendAudit(
      trx,
      objects.map((o) => ({
        actorId: null,
        actorOrg: null,
        action: 'create' as const,
        objectKind: o.kind,
        objectId: o.id,
        ownerOrg: o.ownerOrg,
        // The platform acted, on behalf of the source's creator: the record names both.
        details: {
          ...details,
          ...(o.scope ? { scope: o.scope } : {}),
          marking: o.marking,
          createdBy: o.createdBy,
          derived: true,
        },
      })),
      this.clock,
    );
    return rows.map((r) => ({
      id: r.id,
      marking: r.marking,
      ownerOrg: r.ownerOrg,
      createdBy: r.createdBy,
      readKeys: r.readKeys,
      incarnation: r.incarnation,
    }));
  }

  /**
   * Changes one object: decides (checkChange) and records — the registry's marking when it changes (audited
   * as `share`) and an `update` record naming the changed fields (never their values). Returns the marking
   * and read keys the module stores.
   */
  async update(
    trx: AnyDb,
    p: GatePrincipal,
    input: {
      kind: string;
      current: CurrentObject;
      marking?: unknown;
      /** Names of the fields that changed (not their values: the audit log holds no content). */
      fields?: string[];
    },
  ): Promise<{ marking: Marking; readKeys: string[]; markingChanged: boolean }> {
    // Visibility, role and owner first: an unknown audience named for an object the caller cannot see must
    // answer like a missing object, or its error would tell that the object exists.
    this.checkChange(p, input.kind, input.current);
    const next =
      input.marking === undefined
        ? undefined
        : await this.#directory.resolveMarking(trx, parseMarking(input.marking));
    if (next) this.checkChange(p, input.kind, input.current, next);
    const changed = next !== undefined && !sameMarking(next, input.current.marking);
    const fields = input.fields ?? [];
    if (fields.length > 0) {
      await this.#auditObjects(trx, p, 'update', input.kind, [
        {
          scope: input.current.scope ?? '',
          id: input.current.id,
          ownerOrg: input.current.ownerOrg,
          details: { fields },
        },
      ]);
    }
    if (changed && next) {
      const readKeys = await this.recordMarkingChange(trx, p, input.kind, input.current, next);
      return { marking: next, readKeys, markingChanged: true };
    }
    return { marking: input.current.marking, readKeys: objectReadKeys(input.current), markingChanged: false };
  }

  /** Validates a marking a client asked for (parse + audience), without deciding anything else. */
  async validateMarking(db: AnyDb, raw: unknown): Promise<Marking> {
    return this.#directory.resolveMarking(db, parseMarking(raw));
  }

  /**
   * Records an allowed marking change (checkChange passed): the registry row's marking and read keys, and a
   * `share` record with the labels and audiences before and after. Returns the new read keys.
   */
  async recordMarkingChange(
    trx: AnyDb,
    p: GatePrincipal | null,
    kind: string,
    current: CurrentObject,
    next: Marking,
  ): Promise<string[]> {
    const readKeys = objectReadKeys({
      ownerOrg: current.ownerOrg,
      createdBy: current.createdBy,
      marking: next,
    });
    await setSharedObjectMarking(
      trx,
      { kind, scope: current.scope ?? '', id: current.id },
      next,
      readKeys,
      this.clock.now(),
    );
    await appendAudit(
      trx,
      {
        actorId: p?.userId ?? null,
        actorOrg: p?.orgId ?? null,
        action: 'share',
        objectKind: kind,
        objectId: current.id,
        ownerOrg: current.ownerOrg,
        details: {
          ...(current.scope ? { scope: current.scope } : {}),
          from: current.marking,
          to: next,
          widened: isWider(next, current.marking),
        },
      },
      this.clock,
    );
    return readKeys;
  }

  /**
   * Records changes of objects' content (checkChange passed for each, or the platform's own, p null): one audit
   * record, or one per batch.
   */
  async recordUpdated(
    trx: AnyDb,
    p: GatePrincipal | null,
    kind: string,
    items: { scope?: string | undefined; id: string; ownerOrg: string; fields: string[] }[],
  ): Promise<void> {
    await this.#auditObjects(
      trx,
      p,
      'update',
      kind,
      items.map((i) => ({
        scope: i.scope ?? '',
        id: i.id,
        ownerOrg: i.ownerOrg,
        details: { fields: i.fields },
      })),
    );
  }

  /** Deletes one object: decides and records (registry row removed, `delete` audited). */
  async remove(trx: AnyDb, p: GatePrincipal, input: { kind: string; current: CurrentObject }): Promise<void> {
    this.checkChange(p, input.kind, input.current);
    await this.recordDeleted(trx, p, input.kind, [input.current]);
  }

  /** Records deletions (checkChange passed for each, or the platform's own, p null). */
  async recordDeleted(
    trx: AnyDb,
    p: GatePrincipal | null,
    kind: string,
    items: CurrentObject[],
  ): Promise<void> {
    const byScope = new Map<string, string[]>();
    for (const i of items) {
      const s = i.scope ?? '';
      byScope.set(s, [...(byScope.get(s) ?? []), i.id]);
    }
    for (const [scope, ids] of byScope) await deleteSharedObjects(trx, kind, scope, ids);
    await this.#auditObjects(
      trx,
      p,
      'delete',
      kind,
      items.map((i) => ({
        scope: i.scope ?? '',
        id: i.id,
        ownerOrg: i.ownerOrg,
        details: { marking: i.marking },
      })),
    );
  }

  /**
   * One audit record per object, or — for batches (IoT ingestion writes thousands of entities a second) —
   * one record per owner organisation listing the objects' ids, so the audit chain grows per write, not per
   * object. Details hold names and markings, never content.
   */
  async #auditObjects(
    trx: AnyDb,
    p: GatePrincipal | null,
    action: 'create' | 'update' | 'delete',
    kind: string,
    items: {
      scope: string;
      id: string;
      ownerOrg: string;
      details: Record<string, unknown>;
      tlp?: Tlp | undefined;
    }[],
  ): Promise<void> {
    if (items.length === 0) return;
    const actor = { actorId: p?.userId ?? null, actorOrg: p?.orgId ?? null };
    const entries: AuditEntry[] = [];
    if (items.length <= 3) {
      for (const i of items) {
        entries.push({
          ...actor,
          action,
          objectKind: kind,
          objectId: i.id,
          ownerOrg: i.ownerOrg,
          details: { ...(i.scope ? { scope: i.scope } : {}), ...i.details },
        });
      }
    } else {
      const groups = new Map<string, typeof items>();
      for (const i of items)
        groups.set(`${i.ownerOrg}\u0000${i.scope}`, [
          ...(groups.get(`${i.ownerOrg}\u0000${i.scope}`) ?? []),
          i,
        ]);
      for (const group of groups.values()) {
        for (let n = 0; n < group.length; n += AUDIT_IDS_PER_RECORD) {
          const part = group.slice(n, n + AUDIT_IDS_PER_RECORD);
          const first = part[0] as (typeof items)[number];
          const fields = [
            ...new Set(part.flatMap((i) => (i.details.fields as string[] | undefined) ?? [])),
          ].sort();
          entries.push({
            ...actor,
            action,
            objectKind: kind,
            ownerOrg: first.ownerOrg,
            details: {
              ...(first.scope ? { scope: first.scope } : {}),
              batch: true,
              count: part.length,
              ids: part.map((i) => i.id),
              ...(fields.length > 0 ? { fields } : {}),
            },
          });
        }
      }
    }
    await appendAudit(trx, entries, this.clock);
  }

  /**
   * Records that objects were read by someone outside their owner organisation (AMBER, AMBER+STRICT, RED),
   * once per user, object and label per 15 minutes on this instance.
   */
  async recordDisclosures(
    p: GatePrincipal,
    kind: string,
    objects: { scope?: string | undefined; id: string; ownerOrg: string; marking: Marking }[],
  ): Promise<void> {
    const now = this.clock.now().getTime();
    const disclosed = objects.filter((o) => {
      if (o.ownerOrg === p.orgId || !DISCLOSED.includes(o.marking.tlp)) return false;
      const key = `${p.userId}|${kind}|${o.scope ?? ''}|${o.id}|${o.marking.tlp}`;
      const last = this.#recentDisclosures.get(key);
      if (last !== undefined && now - last < DISCLOSURE_WINDOW_MS) return false;
      this.#recentDisclosures.delete(key);
      this.#recentDisclosures.set(key, now);
      return true;
    });
    if (this.#recentDisclosures.size > DISCLOSURE_MEMORY) {
      // Oldest first (insertion order): forget the older half.
      let drop = this.#recentDisclosures.size / 2;
      for (const key of this.#recentDisclosures.keys()) {
        if (drop-- <= 0) break;
        this.#recentDisclosures.delete(key);
      }
    }
    if (disclosed.length === 0) return;
    const actor = { actorId: p.userId, actorOrg: p.orgId };
    const username = p.username ?? p.userId;
    const entries: AuditEntry[] = [];
    if (disclosed.length <= 3) {
      for (const o of disclosed) {
        entries.push({
          ...actor,
          action: 'disclose',
          objectKind: kind,
          objectId: o.id,
          ownerOrg: o.ownerOrg,
          details: { ...(o.scope ? { scope: o.scope } : {}), tlp: o.marking.tlp, username },
        });
      }
    } else {
      // A page of a query is one record per owner organisation (and scope), its objects' ids listed.
      const groups = new Map<string, typeof disclosed>();
      for (const o of disclosed) {
        const key = `${o.ownerOrg}\u0000${o.scope ?? ''}`;
        groups.set(key, [...(groups.get(key) ?? []), o]);
      }
      for (const group of groups.values()) {
        for (let n = 0; n < group.length; n += AUDIT_IDS_PER_RECORD) {
          const part = group.slice(n, n + AUDIT_IDS_PER_RECORD);
          const first = part[0] as (typeof disclosed)[number];
          entries.push({
            ...actor,
            action: 'disclose',
            objectKind: kind,
            ownerOrg: first.ownerOrg,
            details: {
              ...(first.scope ? { scope: first.scope } : {}),
              batch: true,
              count: part.length,
              ids: part.map((o) => o.id),
              tlps: [...new Set(part.map((o) => o.marking.tlp))].sort(),
              username,
            },
          });
        }
      }
    }
    await this.store.transaction((trx) => appendAudit(trx, entries, this.clock));
  }

  // ------------------------------------------------------------------------------------------ explaining

  /**
   * Finds the one object a reference names for an administrator: the kind may be left out when the id names
   * one object. Objects the caller could not otherwise know of (not its organisation's, not visible to it)
   * are absent, unless `anyOwner` (break-glass).
   */
  async #find(
    caller: GatePrincipal,
    ref: { kind?: string | undefined; scope?: string | undefined; id: string },
    anyOwner: boolean,
  ): Promise<SharedObject> {
    const known = (o: SharedObject) => anyOwner || o.ownerOrg === caller.orgId || this.canSee(caller, o);
    const candidates = ref.kind
      ? [await getSharedObject(this.store.db, { kind: ref.kind, scope: ref.scope ?? '', id: ref.id })].filter(
          (o): o is SharedObject => o !== undefined,
        )
      : await findSharedObjects(this.store.db, ref.id, ref.scope ?? '');
    const found = candidates.filter(known);
    if (found.length === 0) throw new AppError('ACCESS_OBJECT_NOT_FOUND', `no object ${ref.id}`);
    if (found.length > 1) {
      throw new AppError(
        'ACCESS_INVALID_INPUT',
        `several objects have the id ${ref.id} (kinds ${found.map((o) => o.kind).join(', ')}): name the kind`,
      );
    }
    return found[0] as SharedObject;
  }

  /**
   * Why `userRef` (id or username) can or cannot see an object. Asked by an administrator about an object
   * its organisation owns or that it can see itself; an organisation's administrator asks about any user,
   * so "why does the police not see my report?" has an answer.
   */
  async explain(
    caller: GatePrincipal,
    ref: { kind?: string | undefined; scope?: string | undefined; id: string },
    userRef: string,
  ): Promise<
    VisibilityVerdict & {
      object: {
        kind: string;
        scope: string;
        id: string;
        ownerOrg: string;
        createdBy: string;
        marking: Marking;
      };
      user: { id: string; username: string; orgId: string };
    }
  > {
    requireAnyAdmin(caller, 'explain');
    const object = await this.#find(caller, ref, false);
    const user = await this.#directory.account(userRef);
    const facts = await this.#directory.principalFacts({ userId: user.id, orgId: user.orgId });
    const verdict = explainVisibility({ username: user.username, disabled: user.disabled, facts }, object);
    return {
      ...verdict,
      object: {
        kind: object.kind,
        scope: object.scope,
        id: object.id,
        ownerOrg: object.ownerOrg,
        createdBy: object.createdBy,
        marking: object.marking,
      },
      user: { id: user.id, username: user.username, orgId: user.orgId },
    };
  }

  /**
   * An administrator reads one object it cannot otherwise see, stating why. The read is audited with the
   * reason under the owner organisation, whose every user sees it (`breakGlassRecords`).
   */
  async breakGlass(
    caller: GatePrincipal,
    ref: { kind?: string | undefined; scope?: string | undefined; id: string },
    reason: string,
  ): Promise<{ object: SharedObject; content: unknown; auditId: string }> {
    requireAnyAdmin(caller, 'break-glass');
    const why = (reason ?? '').trim();
    if (why.length < 10) {
      throw new AppError(
        'ACCESS_BREAK_GLASS_REASON_REQUIRED',
        'state the reason for reading this object (at least 10 characters)',
      );
    }
    const object = await this.#find(caller, ref, true);
    const load = this.#kinds.get(object.kind)?.load;
    const content = load ? await load({ kind: object.kind, scope: object.scope, id: object.id }) : null;
    const [record] = await this.store.transaction((trx) =>
      appendAudit(
        trx,
        {
          actorId: caller.userId,
          actorOrg: caller.orgId,
          action: 'break_glass',
          objectKind: object.kind,
          objectId: object.id,
          ownerOrg: object.ownerOrg,
          details: {
            ...(object.scope ? { scope: object.scope } : {}),
            reason: why,
            tlp: object.marking.tlp,
            username: caller.username ?? caller.userId,
          },
        },
        this.clock,
      ),
    );
    return { object, content, auditId: record?.id ?? '' };
  }

  /** The break-glass reads of the objects an organisation owns: every user of it may see them. */
  breakGlassRecords(p: GatePrincipal, limit = 100): Promise<AuditRecord[]> {
    return listAudit(this.store.db, { ownerOrg: p.orgId, action: 'break_glass', newestFirst: true, limit });
  }

  /**
   * The audit log as an administrator may read it: an organisation's administrator reads the records about
   * its organisation's objects and accounts and the acts of its users; the platform administrator also reads
   * the platform's administration (organisations, communities, accounts, tokens). Nobody reads another
   * organisation's records by being an administrator; records never hold objects' content.
   */
  listAudit(caller: GatePrincipal, q: Omit<AuditQuery, 'visibleTo'>): Promise<AuditRecord[]> {
    requireAnyAdmin(caller, 'reading the audit log');
    const orgs = isOrgAdmin(caller) || isPlatformAdmin(caller) ? [caller.orgId] : [];
    const kinds = isPlatformAdmin(caller) ? ADMINISTRATION_KINDS : [];
    return listAudit(this.store.db, { ...q, visibleTo: { orgs, kinds } });
  }
}

function sameMarking(a: Marking, b: Marking): boolean {
  const norm = (m: Marking) =>
    JSON.stringify({
      tlp: m.tlp,
      pap: m.pap ?? null,
      orgs: [...m.audience.orgs].sort(),
      communities: [...m.audience.communities].sort(),
      users: [...m.audience.users].sort(),
    });
  return norm(a) === norm(b);
}

/** True when the next marking could reach someone the current one does not: a looser label or a larger audience. */
export function isWider(next: Marking, current: Marking): boolean {
  if (TLP_RANK[next.tlp] < TLP_RANK[current.tlp]) return true;
  if (TLP_RANK[next.tlp] > TLP_RANK[current.tlp]) return false;
  const grows = (a: string[], b: string[]) => a.some((x) => !b.includes(x));
  return (
    grows(next.audience.orgs, current.audience.orgs) ||
    grows(next.audience.communities, current.audience.communities) ||
    grows(next.audience.users, current.audience.users) ||
    (current.tlp === 'GREEN' &&
      current.audience.communities.length > 0 &&
      next.audience.communities.length === 0)
  );
}
