/**
 * Organisations, communities, users, service accounts and their tokens, and the facts the policy needs
 * about a principal. Every change is audited in the transaction of the write and announced on the bus
 * (`access.*.changed`), so every instance drops its cached facts at once.
 */
import { sql } from 'kysely';
import { type Clock, systemClock } from '../../kernel/clock.ts';
import { AppError } from '../../kernel/errors.ts';
import { newId, newTimeOrderedId } from '../../kernel/ids.ts';
import type { EventBus, Subscription } from '../../ports/event-bus.ts';
import type { AnyDb, Store } from '../../ports/store.ts';
import { type AuditEntry, type AuditRecord, appendAudit, listAudit } from '../audit/index.ts';
import type { AccessTables } from './access-tables.ts';
import type { User } from './access-types.ts';
import {
  type AccountKind,
  type Actor,
  type ApiTokenInfo,
  type Community,
  ORG_KINDS,
  type Org,
  type OrgKind,
  type Principal,
  ROLES,
  type Role,
} from './access-types.ts';
import {
  burnPasswordCheck,
  checkPasswordPolicy,
  hashApiToken,
  hashPassword,
  isApiTokenSecret,
  newApiTokenSecret,
  newJwtSecret,
  verifyPassword,
} from './credentials.ts';
import { explainVisibility, type VisibilityVerdict } from './explain-visibility.ts';
import {
  COMMUNITY_ALL,
  type Marking,
  type PrincipalFacts,
  parseMarking,
  principalReadKeys,
} from './marking.ts';
import { requireAdmin } from './policy.ts';
import { getSharedObject, type SharedObject } from './shared-object-registry.ts';

const SLUG_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
const USERNAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$/;
// Accounts are found by id or username; a username shaped like an id could shadow another account.
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DEFAULT_ORG_MARKING: Marking = { tlp: 'AMBER', audience: { orgs: [], communities: [], users: [] } };

export interface AccessServiceOptions {
  store: Store;
  bus?: EventBus | undefined;
  clock?: Clock | undefined;
  /** How long an organisation's communities and patrons are cached (default 5 s). */
  factsTtlMs?: number | undefined;
  /** The name events are published under (default `access`). */
  source?: string | undefined;
}

export interface CreateOrgInput {
  id: string;
  name: string;
  kind: OrgKind;
  defaultMarking?: Marking | undefined;
  clients?: string[] | undefined;
}

export interface UpdateOrgInput {
  name?: string | undefined;
  kind?: OrgKind | undefined;
  defaultMarking?: Marking | undefined;
  clients?: string[] | undefined;
}

export interface CreateUserInput {
  username: string;
  orgId: string;
  roles: Role[];
  password?: string | undefined;
  displayName?: string | undefined;
  kind?: AccountKind | undefined;
  externalSubject?: string | undefined;
}

export interface UpdateUserInput {
  roles?: Role[] | undefined;
  disabled?: boolean | undefined;
  password?: string | undefined;
  displayName?: string | null | undefined;
}

export interface CreateTokenInput {
  orgId: string;
  /** The service account's username; created on first use. */
  name: string;
  roles?: Role[] | undefined;
  /** A label for this token (default: the account name). */
  label?: string | undefined;
  expiresAt?: Date | undefined;
}

export interface CreatedToken {
  /** Shown once; only its sha256 is kept. */
  secret: string;
  token: ApiTokenInfo;
  serviceAccount: User;
}

type UserRow = AccessTables['access_user'];
type OrgFacts = { communities: string[]; patronOrgs: string[]; defaultMarking: Marking; at: number };
type ObjectLoader = (id: string) => Promise<unknown>;

export class AccessService {
  readonly store: Store;
  readonly clock: Clock;
  readonly #bus: EventBus | undefined;
  readonly #ttl: number;
  readonly #source: string;
  readonly #facts = new Map<string, OrgFacts>();
  readonly #users = new Map<string, { user: User; at: number }>();
  readonly #loaders = new Map<string, ObjectLoader>();
  #jwtSecret: Promise<string> | undefined;

  constructor(opts: AccessServiceOptions) {
    this.store = opts.store;
    this.clock = opts.clock ?? systemClock;
    this.#bus = opts.bus;
    this.#ttl = opts.factsTtlMs ?? 5000;
    this.#source = opts.source ?? 'access';
  }

  #db() {
    return this.store.db.withTables<AccessTables>();
  }

  // ---------------------------------------------------------------- organisations

  async createOrg(actor: Actor | null, input: CreateOrgInput): Promise<Org> {
    checkSlug(input.id, 'organisation id');
    checkName(input.name);
    checkOrgKind(input.kind);
    const parsed = input.defaultMarking ? parseMarking(input.defaultMarking) : DEFAULT_ORG_MARKING;
    const clients = unique(input.clients ?? []);
    const now = this.clock.now();
    await this.store.transaction(async (trx) => {
      const t = trx.withTables<AccessTables>();
      const marking = await this.#checkMarkingRefs(trx, parsed, input.id);
      const inserted = await t
        .insertInto('access_org')
        .values({
          id: input.id,
          name: input.name,
          kind: input.kind,
          default_marking: JSON.stringify(marking),
          created_at: now,
          updated_at: now,
        })
        .onConflict((oc) => oc.column('id').doNothing())
        .returning('id')
        .executeTakeFirst();
      if (!inserted) throw new AppError('ACCESS_ORG_EXISTS', `organisation ${input.id} already exists`);
      await this.#setClients(trx, input.id, clients);
      await this.#audit(trx, actor, 'create', 'org', input.id, input.id, {
        name: input.name,
        kind: input.kind,
        defaultMarking: marking,
        clients,
      });
    });
    await this.#changed('org', input.id);
    return this.getOrg(input.id);
  }

  async updateOrg(actor: Actor | null, id: string, patch: UpdateOrgInput): Promise<Org> {
    if (patch.name !== undefined) checkName(patch.name);
    if (patch.kind !== undefined) checkOrgKind(patch.kind);
    const marking = patch.defaultMarking ? parseMarking(patch.defaultMarking) : undefined;
    await this.store.transaction(async (trx) => {
      const t = trx.withTables<AccessTables>();
      const before = await t
        .selectFrom('access_org')
        .selectAll()
        .where('id', '=', id)
        .forUpdate()
        .executeTakeFirst();
      if (!before) throw new AppError('ACCESS_ORG_NOT_FOUND', `no organisation ${id}`);
      const set: Partial<AccessTables['access_org']> = { updated_at: this.clock.now() };
      if (patch.name !== undefined) set.name = patch.name;
      if (patch.kind !== undefined) set.kind = patch.kind;
      const resolved = marking ? await this.#checkMarkingRefs(trx, marking, id) : undefined;
      if (resolved) set.default_marking = JSON.stringify(resolved);
      await t.updateTable('access_org').set(set).where('id', '=', id).execute();
      const details: Record<string, unknown> = {};
      if (patch.name !== undefined) details.name = { from: before.name, to: patch.name };
      if (patch.kind !== undefined) details.kind = { from: before.kind, to: patch.kind };
      if (resolved) details.defaultMarking = { from: before.default_marking, to: resolved };
      if (patch.clients !== undefined) {
        const old = await this.#clientsOf(trx, id);
        const next = unique(patch.clients);
        await this.#setClients(trx, id, next);
        details.clients = { from: old, to: next };
      }
      await this.#audit(trx, actor, patch.clients !== undefined ? 'share' : 'update', 'org', id, id, details);
    });
    await this.#changed('org', id);
    return this.getOrg(id);
  }

  async getOrg(id: string): Promise<Org> {
    const row = await this.#db().selectFrom('access_org').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new AppError('ACCESS_ORG_NOT_FOUND', `no organisation ${id}`);
    return orgFromRow(row, await this.#clientsOf(this.store.db, id));
  }

  async listOrgs(): Promise<Org[]> {
    const rows = await this.#db().selectFrom('access_org').selectAll().orderBy('id').execute();
    const clients = await this.#db()
      .selectFrom('access_org_client')
      .selectAll()
      .orderBy('client_id')
      .execute();
    return rows.map((r) =>
      orgFromRow(
        r,
        clients.filter((c) => c.org_id === r.id).map((c) => c.client_id),
      ),
    );
  }

  async #clientsOf(db: AnyDb, id: string): Promise<string[]> {
    const rows = await db
      .withTables<AccessTables>()
      .selectFrom('access_org_client')
      .select('client_id')
      .where('org_id', '=', id)
      .orderBy('client_id')
      .execute();
    return rows.map((r) => r.client_id);
  }

  async #setClients(trx: AnyDb, id: string, clients: string[]): Promise<void> {
    if (clients.includes(id))
      throw new AppError('ACCESS_INVALID_INPUT', 'an organisation cannot be its own client');
    await this.#requireOrgs(trx, clients);
    const t = trx.withTables<AccessTables>();
    await t.deleteFrom('access_org_client').where('org_id', '=', id).execute();
    if (clients.length > 0) {
      await t
        .insertInto('access_org_client')
        .values(clients.map((c) => ({ org_id: id, client_id: c })))
        .execute();
    }
  }

  async #requireOrgs(db: AnyDb, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const found = await db
      .withTables<AccessTables>()
      .selectFrom('access_org')
      .select('id')
      .where('id', 'in', ids)
      .execute();
    const known = new Set(found.map((r) => r.id));
    const missing = ids.filter((i) => !known.has(i));
    if (missing.length > 0) {
      throw new AppError(
        'ACCESS_ORG_NOT_FOUND',
        `unknown organisation${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`,
        {
          missing,
        },
      );
    }
  }

  /**
   * Checks that a marking names only organisations, communities and users that exist (audience ids are
   * what the read keys are made of: a typo would silently share with nobody, or with a future namesake).
   * Named users may be given by id or username; the marking returned names them by id.
   */
  validateMarking(marking: Marking, db: AnyDb = this.store.db): Promise<Marking> {
    return this.#checkMarkingRefs(db, marking);
  }

  async #checkMarkingRefs(db: AnyDb, marking: Marking, selfOrg?: string): Promise<Marking> {
    const t = db.withTables<AccessTables>();
    await this.#requireOrgs(
      db,
      marking.audience.orgs.filter((o) => o !== selfOrg),
    );
    const communities = marking.audience.communities.filter((c) => c !== COMMUNITY_ALL);
    if (communities.length > 0) {
      const found = await t
        .selectFrom('access_community')
        .select('id')
        .where('id', 'in', communities)
        .execute();
      const known = new Set(found.map((r) => r.id));
      const missing = communities.filter((c) => !known.has(c));
      if (missing.length > 0) {
        throw new AppError(
          'ACCESS_COMMUNITY_NOT_FOUND',
          `unknown communit${missing.length > 1 ? 'ies' : 'y'} ${missing.join(', ')}`,
          {
            missing,
          },
        );
      }
    }
    const refs = marking.audience.users;
    if (refs.length === 0) return marking;
    const found = await t
      .selectFrom('access_user')
      .select(['id', 'username'])
      .where((eb) => eb.or([eb('id', 'in', refs), eb('username', 'in', refs)]))
      .execute();
    const ids = new Map<string, string>();
    for (const r of found) ids.set(r.username, r.id);
    for (const r of found) ids.set(r.id, r.id);
    const missing = refs.filter((u) => !ids.has(u));
    if (missing.length > 0) {
      throw new AppError(
        'ACCESS_USER_NOT_FOUND',
        `unknown user${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`,
        {
          missing,
        },
      );
    }
    const users = [...new Set(refs.map((u) => ids.get(u) as string))];
    return { ...marking, audience: { ...marking.audience, users } };
  }

  // ---------------------------------------------------------------- communities

  async createCommunity(
    actor: Actor | null,
    input: { id: string; name: string; description?: string | undefined; members?: string[] | undefined },
  ): Promise<Community> {
    checkSlug(input.id, 'community id');
    checkName(input.name);
    if (input.id === COMMUNITY_ALL) {
      throw new AppError(
        'ACCESS_COMMUNITY_EXISTS',
        'the community "all" is built in: it holds every organisation',
      );
    }
    const members = unique(input.members ?? []);
    await this.store.transaction(async (trx) => {
      const t = trx.withTables<AccessTables>();
      const inserted = await t
        .insertInto('access_community')
        .values({
          id: input.id,
          name: input.name,
          description: input.description ?? '',
          created_at: this.clock.now(),
        })
        .onConflict((oc) => oc.column('id').doNothing())
        .returning('id')
        .executeTakeFirst();
      if (!inserted) throw new AppError('ACCESS_COMMUNITY_EXISTS', `community ${input.id} already exists`);
      await this.#requireOrgs(trx, members);
      if (members.length > 0) {
        await t
          .insertInto('access_community_member')
          .values(members.map((m) => ({ community_id: input.id, org_id: m })))
          .execute();
      }
      await this.#audit(trx, actor, 'create', 'community', input.id, null, { name: input.name, members });
    });
    await this.#changed('community', input.id);
    return this.getCommunity(input.id);
  }

  async setCommunityMember(
    actor: Actor | null,
    communityId: string,
    orgId: string,
    member: boolean,
  ): Promise<Community> {
    if (communityId === COMMUNITY_ALL) {
      throw new AppError('ACCESS_INVALID_INPUT', 'the community "all" always holds every organisation');
    }
    await this.store.transaction(async (trx) => {
      const t = trx.withTables<AccessTables>();
      const c = await t
        .selectFrom('access_community')
        .select('id')
        .where('id', '=', communityId)
        .executeTakeFirst();
      if (!c) throw new AppError('ACCESS_COMMUNITY_NOT_FOUND', `no community ${communityId}`);
      await this.#requireOrgs(trx, [orgId]);
      if (member) {
        await t
          .insertInto('access_community_member')
          .values({ community_id: communityId, org_id: orgId })
          .onConflict((oc) => oc.columns(['community_id', 'org_id']).doNothing())
          .execute();
      } else {
        await t
          .deleteFrom('access_community_member')
          .where('community_id', '=', communityId)
          .where('org_id', '=', orgId)
          .execute();
      }
      await this.#audit(trx, actor, 'share', 'community', communityId, null, {
        [member ? 'added' : 'removed']: orgId,
      });
    });
    await this.#changed('community', communityId);
    return this.getCommunity(communityId);
  }

  async getCommunity(id: string): Promise<Community> {
    if (id === COMMUNITY_ALL) return this.#allCommunity();
    const row = await this.#db()
      .selectFrom('access_community')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw new AppError('ACCESS_COMMUNITY_NOT_FOUND', `no community ${id}`);
    const members = await this.#db()
      .selectFrom('access_community_member')
      .select('org_id')
      .where('community_id', '=', id)
      .orderBy('org_id')
      .execute();
    return {
      id: row.id,
      name: row.name,
      description: row.description,
      members: members.map((m) => m.org_id),
      builtIn: false,
    };
  }

  async listCommunities(): Promise<Community[]> {
    const rows = await this.#db().selectFrom('access_community').selectAll().orderBy('id').execute();
    const members = await this.#db()
      .selectFrom('access_community_member')
      .selectAll()
      .orderBy('org_id')
      .execute();
    return [
      await this.#allCommunity(),
      ...rows.map((r) => ({
        id: r.id,
        name: r.name,
        description: r.description,
        members: members.filter((m) => m.community_id === r.id).map((m) => m.org_id),
        builtIn: false,
      })),
    ];
  }

  async #allCommunity(): Promise<Community> {
    const orgs = await this.#db().selectFrom('access_org').select('id').orderBy('id').execute();
    return {
      id: COMMUNITY_ALL,
      name: 'All organisations',
      description: 'Built in: every organisation of the platform',
      members: orgs.map((o) => o.id),
      builtIn: true,
    };
  }

  // ---------------------------------------------------------------- users

  async createUser(actor: Actor | null, input: CreateUserInput): Promise<User> {
    if (!USERNAME_RE.test(input.username) || UUID_RE.test(input.username)) {
      throw new AppError(
        'ACCESS_INVALID_INPUT',
        'a username has 1–100 letters, digits and . _ @ + -, starting with a letter or digit',
      );
    }
    const roles = checkRoles(input.roles);
    const kind = input.kind ?? 'user';
    let passwordHash: string | null = null;
    if (input.password !== undefined) {
      if (kind === 'service')
        throw new AppError('ACCESS_INVALID_INPUT', 'service accounts use API tokens, not passwords');
      checkPasswordPolicy(input.password, input.username);
      passwordHash = await hashPassword(input.password);
    }
    const id = newId();
    const now = this.clock.now();
    await this.store.transaction(async (trx) => {
      await this.#requireOrgs(trx, [input.orgId]);
      const inserted = await trx
        .withTables<AccessTables>()
        .insertInto('access_user')
        .values({
          id,
          username: input.username,
          display_name: input.displayName ?? null,
          org_id: input.orgId,
          roles,
          kind,
          password_hash: passwordHash,
          disabled: false,
          external_subject: input.externalSubject ?? null,
          created_at: now,
          updated_at: now,
        })
        .onConflict((oc) => oc.doNothing())
        .returning('id')
        .executeTakeFirst();
      if (!inserted) throw new AppError('ACCESS_USER_EXISTS', `user ${input.username} already exists`);
      await this.#audit(
        trx,
        actor,
        'create',
        kind === 'service' ? 'service_account' : 'user',
        id,
        input.orgId,
        {
          username: input.username,
          roles,
          kind,
          ...(input.externalSubject ? { externalSubject: input.externalSubject } : {}),
        },
      );
    });
    return this.getUser(id);
  }

  async updateUser(actor: Actor | null, id: string, patch: UpdateUserInput): Promise<User> {
    const roles = patch.roles !== undefined ? checkRoles(patch.roles) : undefined;
    await this.store.transaction(async (trx) => {
      const t = trx.withTables<AccessTables>();
      const before = await t
        .selectFrom('access_user')
        .selectAll()
        .where('id', '=', id)
        .forUpdate()
        .executeTakeFirst();
      if (!before) throw new AppError('ACCESS_USER_NOT_FOUND', `no user ${id}`);
      const set: Partial<UserRow> = { updated_at: this.clock.now() };
      const details: Record<string, unknown> = { username: before.username };
      if (roles) {
        set.roles = roles;
        details.roles = { from: before.roles, to: roles };
      }
      if (patch.displayName !== undefined) set.display_name = patch.displayName;
      if (patch.disabled !== undefined) {
        set.disabled = patch.disabled;
        details.disabled = patch.disabled;
      }
      if (patch.password !== undefined) {
        if (before.kind === 'service')
          throw new AppError('ACCESS_INVALID_INPUT', 'service accounts use API tokens, not passwords');
        checkPasswordPolicy(patch.password, before.username);
        set.password_hash = await hashPassword(patch.password);
        details.passwordChanged = true;
      }
      await t.updateTable('access_user').set(set).where('id', '=', id).execute();
      const action = patch.disabled === true ? 'disable' : patch.disabled === false ? 'enable' : 'update';
      await this.#audit(
        trx,
        actor,
        action,
        before.kind === 'service' ? 'service_account' : 'user',
        id,
        before.org_id,
        details,
      );
    });
    this.#users.delete(id);
    await this.publish('access.user.changed', { id });
    return this.getUser(id);
  }

  /**
   * The account behind a session token, from a short cache (facts TTL): every authenticated request needs
   * it. A change on this instance drops the entry at once; a change on another arrives as an
   * `access.*` event, which drops the whole cache (listenForChanges).
   */
  async getUserForSession(id: string): Promise<User> {
    const now = this.clock.now().getTime();
    const hit = this.#users.get(id);
    if (hit && now - hit.at < this.#ttl) return hit.user;
    const user = await this.getUserById(id);
    if (this.#users.size > 10_000) this.#users.clear();
    this.#users.set(id, { user, at: now });
    return user;
  }

  async changeOwnPassword(
    principal: Pick<Principal, 'userId' | 'orgId'>,
    current: string,
    next: string,
  ): Promise<void> {
    const row = await this.#db()
      .selectFrom('access_user')
      .selectAll()
      .where('id', '=', principal.userId)
      .executeTakeFirst();
    if (!row?.password_hash || !(await verifyPassword(row.password_hash, current))) {
      throw new AppError('AUTH_INVALID_CREDENTIALS', 'the current password is wrong');
    }
    await this.updateUser(principal, principal.userId, { password: next });
  }

  /** A user by id or by username (an id wins: usernames can never look like ids). */
  async getUser(ref: string): Promise<User> {
    const row = await this.#userRow(ref);
    if (!row) throw new AppError('ACCESS_USER_NOT_FOUND', `no user ${ref}`);
    return userFromRow(row);
  }

  /** A user by id only: what tokens name. */
  async getUserById(id: string): Promise<User> {
    const row = await this.#db()
      .selectFrom('access_user')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw new AppError('ACCESS_USER_NOT_FOUND', `no user ${id}`);
    return userFromRow(row);
  }

  async #userRow(ref: string): Promise<UserRow | undefined> {
    const byId = await this.#db()
      .selectFrom('access_user')
      .selectAll()
      .where('id', '=', ref)
      .executeTakeFirst();
    return byId ?? this.#userByName(ref);
  }

  #userByName(username: string): Promise<UserRow | undefined> {
    return this.#db()
      .selectFrom('access_user')
      .selectAll()
      .where('username', '=', username)
      .executeTakeFirst();
  }

  async listUsers(
    filter: { orgId?: string | undefined; kind?: AccountKind | undefined } = {},
  ): Promise<User[]> {
    let q = this.#db().selectFrom('access_user').selectAll();
    if (filter.orgId) q = q.where('org_id', '=', filter.orgId);
    if (filter.kind) q = q.where('kind', '=', filter.kind);
    return (await q.orderBy('username').execute()).map(userFromRow);
  }

  /** Checks a username and password; the same error for an unknown user and a wrong password. */
  async verifyLogin(username: string, password: string): Promise<User> {
    const row = await this.#db()
      .selectFrom('access_user')
      .selectAll()
      .where('username', '=', username)
      .executeTakeFirst();
    if (!row?.password_hash) {
      await burnPasswordCheck(password);
      throw new AppError('AUTH_INVALID_CREDENTIALS');
    }
    if (!(await verifyPassword(row.password_hash, password))) throw new AppError('AUTH_INVALID_CREDENTIALS');
    if (row.disabled) throw new AppError('AUTH_ACCOUNT_DISABLED', `account ${username} is disabled`);
    return userFromRow(row);
  }

  /** A session opened with a password: audited, so the log says who was active when. */
  async recordLogin(user: User): Promise<void> {
    await this.store.transaction((trx) =>
      this.#audit(trx, { userId: user.id, orgId: user.orgId }, 'login', 'user', user.id, user.orgId, {
        username: user.username,
      }),
    );
  }

  /**
   * The local account of an external (OIDC) identity: found by issuer and subject, created on first sight
   * in the organisation the token names (which must exist), its roles and organisation kept in step with
   * the identity provider's.
   */
  async externalUser(input: {
    issuer: string;
    subject: string;
    username: string;
    orgId: string;
    roles: Role[];
  }): Promise<User> {
    const externalSubject = `${input.issuer}|${input.subject}`;
    const org = await this.#db()
      .selectFrom('access_org')
      .select('id')
      .where('id', '=', input.orgId)
      .executeTakeFirst();
    if (!org)
      throw new AppError('AUTH_TOKEN_INVALID', `the token's organisation ${input.orgId} is not known here`);
    const roles = input.roles.length > 0 ? input.roles : (['viewer'] as Role[]);
    const row = await this.#db()
      .selectFrom('access_user')
      .selectAll()
      .where('external_subject', '=', externalSubject)
      .executeTakeFirst();
    if (row) {
      if (row.disabled) throw new AppError('AUTH_ACCOUNT_DISABLED', `account ${row.username} is disabled`);
      const sameRoles = row.roles.length === roles.length && roles.every((r) => row.roles.includes(r));
      if (row.org_id !== input.orgId || !sameRoles) {
        await this.store.transaction(async (trx) => {
          await trx
            .withTables<AccessTables>()
            .updateTable('access_user')
            .set({ org_id: input.orgId, roles, updated_at: this.clock.now() })
            .where('id', '=', row.id)
            .execute();
          await this.#audit(trx, null, 'update', 'user', row.id, input.orgId, {
            username: row.username,
            from: { org: row.org_id, roles: row.roles },
            to: { org: input.orgId, roles },
            by: 'oidc',
          });
        });
        return this.getUser(row.id);
      }
      return userFromRow(row);
    }
    let username =
      USERNAME_RE.test(input.username) && !UUID_RE.test(input.username)
        ? input.username
        : `oidc-${newId().slice(0, 8)}`;
    if (await this.#userByName(username)) username = `${username}-${newId().slice(0, 6)}`;
    try {
      return await this.createUser(null, { username, orgId: input.orgId, roles, externalSubject });
    } catch (e) {
      // Two first requests of the same identity at once: the other one created it.
      const again = await this.#db()
        .selectFrom('access_user')
        .selectAll()
        .where('external_subject', '=', externalSubject)
        .executeTakeFirst();
      if (again) return userFromRow(again);
      throw e;
    }
  }

  // ---------------------------------------------------------------- service accounts and API tokens

  async createServiceAccountToken(actor: Actor | null, input: CreateTokenInput): Promise<CreatedToken> {
    let account = await this.#userByName(input.name);
    if (account && (account.kind !== 'service' || account.org_id !== input.orgId)) {
      throw new AppError(
        'ACCESS_USER_EXISTS',
        `${input.name} is already a ${account.kind} account of ${account.org_id}`,
      );
    }
    if (!account) {
      try {
        await this.createUser(actor, {
          username: input.name,
          orgId: input.orgId,
          roles: input.roles ?? ['operator'],
          kind: 'service',
        });
      } catch (e) {
        if (!(e instanceof AppError && e.code === 'ACCESS_USER_EXISTS')) throw e;
      }
      account = await this.#userByName(input.name);
      if (account?.kind !== 'service') throw new AppError('ACCESS_USER_EXISTS', `${input.name} exists`);
    }
    if (input.expiresAt && input.expiresAt.getTime() <= this.clock.now().getTime()) {
      throw new AppError('ACCESS_INVALID_INPUT', 'expiresAt must be in the future');
    }
    const secret = newApiTokenSecret();
    const id = newTimeOrderedId(this.clock.now().getTime());
    const now = this.clock.now();
    const userId = account.id;
    const orgId = account.org_id;
    const name = input.label ?? input.name;
    await this.store.transaction(async (trx) => {
      await trx
        .withTables<AccessTables>()
        .insertInto('access_api_token')
        .values({
          id,
          user_id: userId,
          name,
          prefix: secret.slice(0, 9),
          token_hash: hashApiToken(secret),
          created_at: now,
          expires_at: input.expiresAt ?? null,
          revoked_at: null,
          last_used_at: null,
        })
        .execute();
      await this.#audit(trx, actor, 'create', 'api_token', id, orgId, {
        serviceAccount: account.username,
        name,
        expiresAt: input.expiresAt?.toISOString() ?? null,
      });
    });
    const token = (await this.listTokens({ id }))[0];
    if (!token) throw new AppError('PLATFORM_INTERNAL', 'token vanished');
    return { secret, token, serviceAccount: userFromRow(account) };
  }

  async listTokens(
    filter: { orgId?: string | undefined; id?: string | undefined } = {},
  ): Promise<ApiTokenInfo[]> {
    let q = this.store.db
      .withTables<AccessTables>()
      .selectFrom('access_api_token as t')
      .innerJoin('access_user as u', 'u.id', 't.user_id')
      .select([
        't.id',
        't.user_id',
        'u.username',
        'u.org_id',
        't.name',
        't.prefix',
        't.created_at',
        't.expires_at',
        't.revoked_at',
        't.last_used_at',
      ]);
    if (filter.orgId) q = q.where('u.org_id', '=', filter.orgId);
    if (filter.id) q = q.where('t.id', '=', filter.id);
    const rows = await q.orderBy('t.id').execute();
    return rows.map((r) => ({
      id: r.id,
      userId: r.user_id,
      username: r.username,
      orgId: r.org_id,
      name: r.name,
      prefix: r.prefix,
      createdAt: r.created_at.toISOString(),
      expiresAt: r.expires_at?.toISOString() ?? null,
      revokedAt: r.revoked_at?.toISOString() ?? null,
      lastUsedAt: r.last_used_at?.toISOString() ?? null,
    }));
  }

  async revokeToken(actor: Actor | null, id: string): Promise<ApiTokenInfo> {
    await this.store.transaction(async (trx) => {
      const t = trx.withTables<AccessTables>();
      const row = await t
        .selectFrom('access_api_token as t')
        .innerJoin('access_user as u', 'u.id', 't.user_id')
        .select(['t.id', 't.revoked_at', 'u.org_id', 'u.username'])
        .where('t.id', '=', id)
        .executeTakeFirst();
      if (!row) throw new AppError('ACCESS_TOKEN_NOT_FOUND', `no API token ${id}`);
      if (row.revoked_at) return;
      await t
        .updateTable('access_api_token')
        .set({ revoked_at: this.clock.now() })
        .where('id', '=', id)
        .execute();
      await this.#audit(trx, actor, 'revoke', 'api_token', id, row.org_id, { serviceAccount: row.username });
    });
    const token = (await this.listTokens({ id }))[0];
    if (!token) throw new AppError('ACCESS_TOKEN_NOT_FOUND', `no API token ${id}`);
    return token;
  }

  /** The account an API token belongs to, or AUTH_* errors (unknown, revoked, expired, disabled). */
  async resolveApiToken(secret: string): Promise<User> {
    if (!isApiTokenSecret(secret)) throw new AppError('AUTH_TOKEN_INVALID', 'not a valid API token');
    const row = await this.store.db
      .withTables<AccessTables>()
      .selectFrom('access_api_token as t')
      .innerJoin('access_user as u', 'u.id', 't.user_id')
      .selectAll('u')
      .select(['t.id as token_id', 't.revoked_at', 't.expires_at', 't.last_used_at'])
      .where('t.token_hash', '=', hashApiToken(secret))
      .executeTakeFirst();
    if (!row) throw new AppError('AUTH_TOKEN_INVALID', 'unknown API token');
    if (row.revoked_at) throw new AppError('AUTH_TOKEN_REVOKED', 'this API token was revoked');
    const now = this.clock.now();
    if (row.expires_at && row.expires_at.getTime() <= now.getTime()) {
      throw new AppError('AUTH_TOKEN_EXPIRED', 'this API token has expired');
    }
    if (row.disabled) throw new AppError('AUTH_ACCOUNT_DISABLED', `account ${row.username} is disabled`);
    // Last use is kept to the minute: one write per token per minute, not one per request.
    if (!row.last_used_at || now.getTime() - row.last_used_at.getTime() > 60_000) {
      await this.#db()
        .updateTable('access_api_token')
        .set({ last_used_at: now })
        .where('id', '=', row.token_id)
        .execute();
    }
    return userFromRow(row);
  }

  // ---------------------------------------------------------------- principals and their facts

  /**
   * The communities and patron organisations of a principal's organisation, cached per organisation for
   * a few seconds and dropped on every access change (on this instance at once, on others via the bus).
   */
  async principalFacts(user: { userId: string; orgId: string }): Promise<PrincipalFacts> {
    const f = await this.#orgFacts(user.orgId);
    return { userId: user.userId, orgId: user.orgId, communities: f.communities, patronOrgs: f.patronOrgs };
  }

  async #orgFacts(orgId: string): Promise<OrgFacts> {
    const cached = this.#facts.get(orgId);
    const now = Date.now();
    if (cached && now - cached.at < this.#ttl) return cached;
    const db = this.#db();
    const [org, communities, patrons] = await Promise.all([
      db.selectFrom('access_org').select('default_marking').where('id', '=', orgId).executeTakeFirst(),
      db
        .selectFrom('access_community_member')
        .select('community_id')
        .where('org_id', '=', orgId)
        .orderBy('community_id')
        .execute(),
      db
        .selectFrom('access_org_client')
        .select('org_id')
        .where('client_id', '=', orgId)
        .orderBy('org_id')
        .execute(),
    ]);
    if (!org) throw new AppError('ACCESS_ORG_NOT_FOUND', `no organisation ${orgId}`);
    const facts: OrgFacts = {
      communities: communities.map((c) => c.community_id),
      patronOrgs: patrons.map((p) => p.org_id),
      defaultMarking: org.default_marking as Marking,
      at: now,
    };
    this.#facts.set(orgId, facts);
    return facts;
  }

  /** The principal of an account: its read keys and its organisation's default marking. */
  async principalFor(user: User): Promise<Principal> {
    if (user.disabled) throw new AppError('AUTH_ACCOUNT_DISABLED', `account ${user.username} is disabled`);
    const f = await this.#orgFacts(user.orgId);
    return {
      userId: user.id,
      username: user.username,
      orgId: user.orgId,
      roles: user.roles,
      kind: user.kind,
      readKeys: principalReadKeys({
        userId: user.id,
        orgId: user.orgId,
        communities: f.communities,
        patronOrgs: f.patronOrgs,
      }),
      defaultMarking: structuredClone(f.defaultMarking),
    };
  }

  /** Forgets cached facts (all organisations when no id is given). */
  invalidateFacts(orgId?: string): void {
    if (orgId) this.#facts.delete(orgId);
    else {
      this.#facts.clear();
      this.#users.clear();
    }
  }

  /** Drops cached facts whenever any instance announces an access change. */
  listenForChanges(bus: EventBus = this.#required()): Promise<Subscription> {
    return bus.subscribe({ types: ['access.>'], mode: 'broadcast' }, async () => {
      this.invalidateFacts();
    });
  }

  #required(): EventBus {
    if (!this.#bus)
      throw new AppError('BUS_UNAVAILABLE', 'the access service was built without an event bus');
    return this.#bus;
  }

  /** Announces a fact on the bus after its transaction committed (no-op without a bus). */
  async publish(type: string, data: unknown): Promise<void> {
    if (!this.#bus) return;
    await this.#bus.publish({
      id: newTimeOrderedId(),
      type,
      time: this.clock.now().toISOString(),
      source: this.#source,
      data,
    });
  }

  async #changed(kind: 'org' | 'community', id: string): Promise<void> {
    // Client and membership changes touch other organisations' facts too: drop them all.
    this.invalidateFacts();
    if (!this.#bus) return;
    await this.#bus.publish({
      id: newTimeOrderedId(),
      type: `access.${kind}.changed`,
      time: this.clock.now().toISOString(),
      source: this.#source,
      data: { id },
    });
  }

  // ---------------------------------------------------------------- explain, break-glass

  /** Why `userRef` (id or username) can or cannot see object `objectId`. */
  async explain(
    objectId: string,
    userRef: string,
  ): Promise<
    VisibilityVerdict & {
      object: { id: string; kind: string; ownerOrg: string; createdBy: string; marking: Marking };
      user: { id: string; username: string; orgId: string };
    }
  > {
    const object = await getSharedObject(this.store.db, objectId);
    if (!object) throw new AppError('ACCESS_OBJECT_NOT_FOUND', `no object ${objectId}`);
    const user = await this.getUser(userRef);
    const facts = await this.principalFacts({ userId: user.id, orgId: user.orgId });
    const verdict = explainVisibility({ username: user.username, disabled: user.disabled, facts }, object);
    return {
      ...verdict,
      object: {
        id: object.id,
        kind: object.kind,
        ownerOrg: object.ownerOrg,
        createdBy: object.createdBy,
        marking: object.marking,
      },
      user: { id: user.id, username: user.username, orgId: user.orgId },
    };
  }

  /** Lets a module serve its objects' content to break-glass reads (`report` → the report). */
  registerObjectLoader(kind: string, loader: ObjectLoader): void {
    this.#loaders.set(kind, loader);
  }

  /**
   * An administrator reads one object they cannot otherwise see, stating why. The read is audited with
   * the reason, under the owner organisation, which sees it in its break-glass list.
   */
  async breakGlass(
    principal: Principal,
    objectId: string,
    reason: string,
  ): Promise<{ object: SharedObject; content: unknown; auditId: string }> {
    requireAdmin(principal);
    const why = (reason ?? '').trim();
    if (why.length < 10) {
      throw new AppError(
        'ACCESS_BREAK_GLASS_REASON_REQUIRED',
        'state the reason for reading this object (at least 10 characters)',
      );
    }
    const object = await getSharedObject(this.store.db, objectId);
    if (!object) throw new AppError('ACCESS_OBJECT_NOT_FOUND', `no object ${objectId}`);
    const loader = this.#loaders.get(object.kind);
    const content = loader ? await loader(object.id) : null;
    const [record] = await this.store.transaction((trx) =>
      appendAudit(
        trx,
        {
          actorId: principal.userId,
          actorOrg: principal.orgId,
          action: 'break_glass',
          objectKind: object.kind,
          objectId: object.id,
          ownerOrg: object.ownerOrg,
          details: { reason: why, tlp: object.marking.tlp, username: principal.username },
        },
        this.clock,
      ),
    );
    return { object, content, auditId: record?.id ?? '' };
  }

  /** The break-glass reads of the objects an organisation owns. */
  breakGlassRecords(orgId: string, limit = 100): Promise<AuditRecord[]> {
    return listAudit(this.store.db, { ownerOrg: orgId, action: 'break_glass', newestFirst: true, limit });
  }

  // ---------------------------------------------------------------- secrets

  /** The HS256 key for session tokens: generated once and kept in the store, so every instance shares it. */
  jwtSecret(): Promise<string> {
    this.#jwtSecret ??= (async () => {
      const t = this.#db();
      await t
        .insertInto('access_secret')
        .values({ name: 'jwt-hs256', value: newJwtSecret(), created_at: this.clock.now() })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
      const row = await t
        .selectFrom('access_secret')
        .select('value')
        .where('name', '=', 'jwt-hs256')
        .executeTakeFirstOrThrow();
      return row.value;
    })();
    this.#jwtSecret.catch(() => {
      this.#jwtSecret = undefined;
    });
    return this.#jwtSecret;
  }

  async hasAnyAdmin(): Promise<boolean> {
    const row = await this.#db()
      .selectFrom('access_user')
      .select('id')
      .where(sql<boolean>`'admin' = any(roles)`)
      .where('disabled', '=', false)
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Appends audit records inside the caller's transaction (for modules building on this service). */
  audit(trx: AnyDb, entries: AuditEntry | AuditEntry[]): Promise<AuditRecord[]> {
    return appendAudit(trx, entries, this.clock);
  }

  async #audit(
    trx: AnyDb,
    actor: Actor | null,
    action: AuditEntry['action'],
    objectKind: string,
    objectId: string,
    ownerOrg: string | null,
    details: Record<string, unknown>,
  ): Promise<void> {
    await appendAudit(
      trx,
      {
        actorId: actor?.userId ?? null,
        actorOrg: actor?.orgId ?? null,
        action,
        objectKind,
        objectId,
        ownerOrg: ownerOrg ?? undefined,
        details,
      },
      this.clock,
    );
  }
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

function checkSlug(id: string, what: string): void {
  if (typeof id !== 'string' || !SLUG_RE.test(id)) {
    throw new AppError(
      'ACCESS_INVALID_INPUT',
      `${what} "${id}" must be a slug: 1–63 lowercase letters, digits and -`,
    );
  }
}

function checkName(name: string): void {
  if (typeof name !== 'string' || name.trim().length === 0 || name.length > 200) {
    throw new AppError('ACCESS_INVALID_INPUT', 'a name has 1–200 characters');
  }
}

function checkOrgKind(kind: string): void {
  if (!(ORG_KINDS as readonly string[]).includes(kind)) {
    throw new AppError(
      'ACCESS_INVALID_INPUT',
      `organisation kind "${kind}" is not one of ${ORG_KINDS.join(', ')}`,
    );
  }
}

function checkRoles(roles: string[]): Role[] {
  if (!Array.isArray(roles) || roles.length === 0)
    throw new AppError('ACCESS_INVALID_INPUT', 'an account needs at least one role');
  const bad = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (bad.length > 0)
    throw new AppError('ACCESS_INVALID_INPUT', `unknown role ${bad.join(', ')} (roles: ${ROLES.join(', ')})`);
  return unique(roles) as Role[];
}

function orgFromRow(row: AccessTables['access_org'], clients: string[]): Org {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind as OrgKind,
    defaultMarking: row.default_marking as Marking,
    clients,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

export function userFromRow(row: UserRow): User {
  return {
    id: row.id,
    username: row.username,
    displayName: row.display_name,
    orgId: row.org_id,
    roles: row.roles as Role[],
    kind: row.kind as AccountKind,
    disabled: row.disabled,
    externalSubject: row.external_subject,
    createdAt: row.created_at.toISOString(),
  };
}
