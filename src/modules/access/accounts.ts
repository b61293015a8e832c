/**
 * Accounts and their credentials: users (password, argon2id), service accounts (API tokens, sha256),
 * external OIDC identities, password login, the session key. Every change is audited in the transaction of
 * the write, under the account's organisation (whose administrators read it), and announced in that
 * transaction (`access.user.changed`, `access.token.revoked`, through the outbox) so every instance ends the
 * account's sessions at once.
 */
import { sql } from 'kysely';
import { AppError } from '../../kernel/errors.ts';
import { newId, newTimeOrderedId } from '../../kernel/ids.ts';
import { checkRoles, isPlatformAdmin, type Role } from '../sharing/roles.ts';
import type { AccessTables } from './access-tables.ts';
import type { AccountKind, ApiTokenInfo, Principal, User } from './access-types.ts';
import {
  type AccessContext,
  type Administrator,
  auditAdministration,
  requireAccountReader,
  requireOrgAdmin,
} from './administration.ts';
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
import { ACCOUNT_CHANGED, TOKEN_REVOKED } from './live-sessions.ts';
import type { OrgDirectory } from './org-directory.ts';

const USERNAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$/;
// Accounts are found by id or username; a username shaped like an id could shadow another account.
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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

export class Accounts {
  readonly #c: AccessContext;
  readonly #orgs: OrgDirectory;
  readonly #ttl: number;
  readonly #sessions = new Map<string, { user: User; at: number }>();
  #jwtSecret: Promise<string> | undefined;

  constructor(context: AccessContext, orgs: OrgDirectory, sessionTtlMs: number) {
    this.#c = context;
    this.#orgs = orgs;
    this.#ttl = sessionTtlMs;
  }

  #db() {
    return this.#c.store.db.withTables<AccessTables>();
  }

  #requireOrgAdmin(actor: Administrator, orgId: string, what: string): Promise<void> {
    return requireOrgAdmin(actor, orgId, what, (o) => this.#orgs.hasEnabledAdmin(o));
  }

  /** Only the platform administrator appoints platform administrators. */
  #checkGrant(actor: Administrator, roles: readonly Role[] | undefined): void {
    if (actor === null || !roles?.includes('platform-admin') || isPlatformAdmin(actor)) return;
    throw new AppError('ACCESS_DENIED', 'only a platform administrator grants the platform-admin role');
  }

  // ---------------------------------------------------------------- users

  async createUser(actor: Administrator, input: CreateUserInput): Promise<User> {
    await this.#requireOrgAdmin(actor, input.orgId, 'creating an account');
    if (!USERNAME_RE.test(input.username) || UUID_RE.test(input.username)) {
      throw new AppError(
        'ACCESS_INVALID_INPUT',
        'a username has 1–100 letters, digits and . _ @ + -, starting with a letter or digit',
      );
    }
    const roles = checkRoles(input.roles);
    this.#checkGrant(actor, roles);
    const kind = input.kind ?? 'user';
    let passwordHash: string | null = null;
    if (input.password !== undefined) {
      if (kind === 'service')
        throw new AppError('ACCESS_INVALID_INPUT', 'service accounts use API tokens, not passwords');
      checkPasswordPolicy(input.password, input.username);
      passwordHash = await hashPassword(input.password);
    }
    const id = newId();
    const now = this.#c.clock.now();
    await this.#c.store.transaction(async (trx) => {
      await this.#orgs.requireOrgs(trx, [input.orgId]);
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
          must_change_password: false,
          sessions_since: null,
          disabled: false,
          external_subject: input.externalSubject ?? null,
          created_at: now,
          updated_at: now,
        })
        .onConflict((oc) => oc.doNothing())
        .returning('id')
        .executeTakeFirst();
      if (!inserted) throw new AppError('ACCESS_USER_EXISTS', `user ${input.username} already exists`);
      await auditAdministration(
        trx,
        this.#c.clock,
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

  /**
   * Changes an account (its organisation's administrator, or the account itself for its own password). A
   * password set by someone else is a reset: audited as such under the account's organisation, and the
   * account must set its own password at its next login.
   */
  async updateUser(actor: Administrator, id: string, patch: UpdateUserInput): Promise<User> {
    const roles = patch.roles !== undefined ? checkRoles(patch.roles) : undefined;
    const target = await this.getUserById(id);
    const self = actor !== null && actor.userId === id;
    const onlyOwnPassword =
      self && patch.roles === undefined && patch.disabled === undefined && patch.displayName === undefined;
    if (!onlyOwnPassword) await this.#requireOrgAdmin(actor, target.orgId, 'changing an account');
    const dropsOwnAdmin =
      self &&
      (patch.disabled === true ||
        (roles !== undefined &&
          target.roles.some((r) => (r === 'admin' || r === 'platform-admin') && !roles.includes(r))));
    if (dropsOwnAdmin) {
      throw new AppError(
        'ACCESS_INVALID_INPUT',
        'an administrator cannot disable or demote their own account',
      );
    }
    this.#checkGrant(actor, roles);
    let ended = false;
    await this.#c.store.transaction(async (trx) => {
      const t = trx.withTables<AccessTables>();
      const before = await t
        .selectFrom('access_user')
        .selectAll()
        .where('id', '=', id)
        .forUpdate()
        .executeTakeFirst();
      if (!before) throw new AppError('ACCESS_USER_NOT_FOUND', `no user ${id}`);
      const set: Partial<UserRow> = { updated_at: this.#c.clock.now() };
      const details: Record<string, unknown> = { username: before.username };
      if (roles) {
        set.roles = roles;
        details.roles = { from: before.roles, to: roles };
      }
      if (patch.displayName !== undefined) set.display_name = patch.displayName;
      if (patch.disabled !== undefined) {
        set.disabled = patch.disabled;
        details.disabled = patch.disabled;
        ended = patch.disabled && !before.disabled;
      }
      if (patch.password !== undefined) {
        if (before.kind === 'service')
          throw new AppError('ACCESS_INVALID_INPUT', 'service accounts use API tokens, not passwords');
        checkPasswordPolicy(patch.password, before.username);
        set.password_hash = await hashPassword(patch.password);
        set.must_change_password = !self;
        set.sessions_since = this.#c.clock.now();
        details[self ? 'passwordChanged' : 'passwordReset'] = true;
        // Sessions opened with the old password end: whoever knew it is out.
        ended = true;
      }
      await t.updateTable('access_user').set(set).where('id', '=', id).execute();
      const action = patch.disabled === true ? 'disable' : patch.disabled === false ? 'enable' : 'update';
      await auditAdministration(
        trx,
        this.#c.clock,
        actor,
        action,
        before.kind === 'service' ? 'service_account' : 'user',
        id,
        before.org_id,
        details,
      );
      await this.#c.announce(trx, ACCOUNT_CHANGED, { id, orgId: target.orgId, sessionsEnded: ended });
    });
    this.#sessions.delete(id);
    return this.getUser(id);
  }

  /**
   * The account behind a session token, from a short cache: every authenticated request needs it. A change
   * on this instance drops the entry at once; a change on another arrives as an `access.*` event, which
   * drops the whole cache.
   */
  async getUserForSession(id: string): Promise<User> {
    const now = this.#c.clock.now().getTime();
    const hit = this.#sessions.get(id);
    if (hit && now - hit.at < this.#ttl) return hit.user;
    const user = await this.getUserById(id);
    if (this.#sessions.size > 10_000) this.#sessions.clear();
    this.#sessions.set(id, { user, at: now });
    return user;
  }

  forgetSessions(): void {
    this.#sessions.clear();
  }

  async changeOwnPassword(
    principal: Pick<Principal, 'userId' | 'orgId' | 'roles'>,
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
    if (current === next) {
      throw new AppError('ACCESS_WEAK_PASSWORD', 'the new password must differ from the current one');
    }
    await this.updateUser(principal, principal.userId, { password: next });
  }

  /** A user by id or by username (an id wins: usernames can never look like ids). */
  async getUser(ref: string): Promise<User> {
    const row = await this.#userRow(ref);
    if (!row) throw new AppError('ACCESS_USER_NOT_FOUND', `no user ${ref}`);
    return userFromRow(row);
  }

  /** An account as an administrator or the account itself may read it. */
  async readUser(actor: Administrator, ref: string): Promise<User> {
    const user = await this.getUser(ref);
    if (actor === null || actor.userId === user.id) return user;
    try {
      requireAccountReader(actor, user.orgId, 'reading an account');
    } catch (e) {
      // Another organisation's account is as good as absent to someone who may not read it.
      if (e instanceof AppError && e.code === 'ACCESS_DENIED')
        throw new AppError('ACCESS_USER_NOT_FOUND', `no user ${ref}`);
      throw e;
    }
    return user;
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

  /**
   * Accounts as an administrator may list them: the platform administrator every organisation's, an
   * organisation's administrator its own (the organisation filter defaults to it).
   */
  async listUsers(
    actor: Administrator,
    filter: { orgId?: string | undefined; kind?: AccountKind | undefined } = {},
  ): Promise<User[]> {
    const orgId = filter.orgId ?? (actor && !isPlatformAdmin(actor) ? actor.orgId : undefined);
    if (actor !== null) requireAccountReader(actor, orgId ?? '*', 'listing accounts');
    let q = this.#db().selectFrom('access_user').selectAll();
    if (orgId) q = q.where('org_id', '=', orgId);
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

  /**
   * A session opened with a password: audited under the account's organisation, so the log says who was
   * active when (`afterReset` marks the login that set a new password after an administrator's reset).
   */
  async recordLogin(user: User, details: { afterReset?: boolean } = {}): Promise<void> {
    await this.#c.store.transaction((trx) =>
      auditAdministration(
        trx,
        this.#c.clock,
        { userId: user.id, orgId: user.orgId, roles: user.roles },
        'login',
        'user',
        user.id,
        user.orgId,
        { username: user.username, ...details },
      ),
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
        await this.#c.store.transaction(async (trx) => {
          await trx
            .withTables<AccessTables>()
            .updateTable('access_user')
            .set({ org_id: input.orgId, roles, updated_at: this.#c.clock.now() })
            .where('id', '=', row.id)
            .execute();
          await auditAdministration(trx, this.#c.clock, null, 'update', 'user', row.id, input.orgId, {
            username: row.username,
            from: { org: row.org_id, roles: row.roles },
            to: { org: input.orgId, roles },
            by: 'oidc',
          });
          await this.#c.announce(trx, ACCOUNT_CHANGED, {
            id: row.id,
            orgId: input.orgId,
            sessionsEnded: false,
          });
        });
        this.#sessions.delete(row.id);
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

  async createServiceAccountToken(actor: Administrator, input: CreateTokenInput): Promise<CreatedToken> {
    await this.#requireOrgAdmin(actor, input.orgId, 'creating an API token');
    this.#checkGrant(actor, input.roles);
    let account = await this.#userByName(input.name);
    if (account && (account.kind !== 'service' || account.org_id !== input.orgId)) {
      // An account of another organisation is as good as absent: say only that the name is taken.
      throw new AppError('ACCESS_USER_EXISTS', `the name ${input.name} is already taken`);
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
      if (account?.kind !== 'service' || account.org_id !== input.orgId)
        throw new AppError('ACCESS_USER_EXISTS', `the name ${input.name} is already taken`);
    }
    if (input.expiresAt && input.expiresAt.getTime() <= this.#c.clock.now().getTime()) {
      throw new AppError('ACCESS_INVALID_INPUT', 'expiresAt must be in the future');
    }
    const secret = newApiTokenSecret();
    const id = newTimeOrderedId(this.#c.clock.now().getTime());
    const now = this.#c.clock.now();
    const userId = account.id;
    const orgId = account.org_id;
    const username = account.username;
    const name = input.label ?? input.name;
    await this.#c.store.transaction(async (trx) => {
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
      await auditAdministration(trx, this.#c.clock, actor, 'create', 'api_token', id, orgId, {
        serviceAccount: username,
        name,
        expiresAt: input.expiresAt?.toISOString() ?? null,
      });
    });
    const token = (await this.#tokens({ id }))[0];
    if (!token) throw new AppError('PLATFORM_INTERNAL', 'token vanished');
    return { secret, token, serviceAccount: userFromRow(account) };
  }

  /** Tokens as an administrator may list them (the platform administrator all, others their organisation's). */
  listTokens(actor: Administrator, filter: { orgId?: string | undefined } = {}): Promise<ApiTokenInfo[]> {
    const orgId = filter.orgId ?? (actor && !isPlatformAdmin(actor) ? actor.orgId : undefined);
    if (actor !== null) requireAccountReader(actor, orgId ?? '*', 'listing API tokens');
    return this.#tokens({ orgId });
  }

  async #tokens(filter: { orgId?: string | undefined; id?: string | undefined }): Promise<ApiTokenInfo[]> {
    let q = this.#c.store.db
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

  /**
   * Revokes a token: its organisation's administrator, or the platform administrator (revoking a leaked
   * token protects; it grants nothing). Effective at once: the bus tells every instance to end its sessions.
   */
  async revokeToken(actor: Administrator, id: string): Promise<ApiTokenInfo> {
    const [found] = await this.#tokens({ id });
    if (!found) throw new AppError('ACCESS_TOKEN_NOT_FOUND', `no API token ${id}`);
    if (actor !== null && !isPlatformAdmin(actor)) {
      try {
        await this.#requireOrgAdmin(actor, found.orgId, 'revoking an API token');
      } catch (e) {
        if (e instanceof AppError && e.code === 'ACCESS_DENIED')
          throw new AppError('ACCESS_TOKEN_NOT_FOUND', `no API token ${id}`);
        throw e;
      }
    }
    await this.#c.store.transaction(async (trx) => {
      const t = trx.withTables<AccessTables>();
      const row = await t
        .selectFrom('access_api_token')
        .select(['id', 'revoked_at'])
        .where('id', '=', id)
        .forUpdate()
        .executeTakeFirst();
      // Announced even when it was revoked already: every instance ends its sessions, whatever it missed.
      await this.#c.announce(trx, TOKEN_REVOKED, { id, userId: found.userId, orgId: found.orgId });
      if (!row || row.revoked_at) return;
      await t
        .updateTable('access_api_token')
        .set({ revoked_at: this.#c.clock.now() })
        .where('id', '=', id)
        .execute();
      await auditAdministration(trx, this.#c.clock, actor, 'revoke', 'api_token', id, found.orgId, {
        serviceAccount: found.username,
      });
    });
    const [token] = await this.#tokens({ id });
    if (!token) throw new AppError('ACCESS_TOKEN_NOT_FOUND', `no API token ${id}`);
    return token;
  }

  /** The account an API token belongs to, or AUTH_* errors (unknown, revoked, expired, disabled). */
  async resolveApiToken(secret: string): Promise<User & { tokenId: string }> {
    if (!isApiTokenSecret(secret)) throw new AppError('AUTH_TOKEN_INVALID', 'not a valid API token');
    const row = await this.#c.store.db
      .withTables<AccessTables>()
      .selectFrom('access_api_token as t')
      .innerJoin('access_user as u', 'u.id', 't.user_id')
      .selectAll('u')
      .select(['t.id as token_id', 't.revoked_at', 't.expires_at', 't.last_used_at'])
      .where('t.token_hash', '=', hashApiToken(secret))
      .executeTakeFirst();
    if (!row) throw new AppError('AUTH_TOKEN_INVALID', 'unknown API token');
    if (row.revoked_at) throw new AppError('AUTH_TOKEN_REVOKED', 'this API token was revoked');
    const now = this.#c.clock.now();
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
    return { ...userFromRow(row), tokenId: row.token_id };
  }

  // ---------------------------------------------------------------- secrets

  /** The HS256 key for session tokens: generated once and kept in the store, so every instance shares it. */
  jwtSecret(): Promise<string> {
    this.#jwtSecret ??= (async () => {
      const t = this.#db();
      await t
        .insertInto('access_secret')
        .values({ name: 'jwt-hs256', value: newJwtSecret(), created_at: this.#c.clock.now() })
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

  /** True when some enabled account administers the platform (bootstrap creates the first one otherwise). */
  async hasPlatformAdmin(): Promise<boolean> {
    const row = await this.#db()
      .selectFrom('access_user')
      .select('id')
      .where(sql<boolean>`'platform-admin' = any(roles)`)
      .where('disabled', '=', false)
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }
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
    mustChangePassword: row.must_change_password,
    sessionsSince: row.sessions_since?.toISOString() ?? null,
    externalSubject: row.external_subject,
    createdAt: row.created_at.toISOString(),
  };
}
