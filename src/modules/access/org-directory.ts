/**
 * The directory of organisations and communities: who exists, which communities an organisation is in,
 * which organisations it declared as clients, its default marking — and the check that a marking names only
 * organisations, communities and users that exist (the sharing gate asks it before every write).
 */
import { sql } from 'kysely';
import { AppError } from '../../kernel/errors.ts';
import type { AnyDb } from '../../ports/store.ts';
import { COMMUNITY_ALL, type Marking, parseMarking } from '../sharing/marking.ts';
import { COMMUNITY_CHANGED, ORG_CHANGED } from './access-events.ts';
import type { AccessTables } from './access-tables.ts';
import { type Community, ORG_KINDS, type Org, type OrgKind } from './access-types.ts';
import {
  type AccessContext,
  type Administrator,
  auditAdministration,
  requireOrgAdmin,
  requirePlatformAdmin,
} from './administration.ts';

const SLUG_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
const DEFAULT_ORG_MARKING: Marking = { tlp: 'AMBER', audience: { orgs: [], communities: [], users: [] } };

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

export class OrgDirectory {
  readonly #c: AccessContext;

  constructor(context: AccessContext) {
    this.#c = context;
  }

  #db() {
    return this.#c.store.db.withTables<AccessTables>();
  }

  // ---------------------------------------------------------------- organisations

  async createOrg(actor: Administrator, input: CreateOrgInput): Promise<Org> {
    requirePlatformAdmin(actor, 'creating an organisation');
    checkSlug(input.id, 'organisation id');
    checkName(input.name);
    checkOrgKind(input.kind);
    const parsed = input.defaultMarking ? parseMarking(input.defaultMarking) : DEFAULT_ORG_MARKING;
    const clients = unique(input.clients ?? []);
    const now = this.#c.clock.now();
    await this.#c.store.transaction(async (trx) => {
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
      await auditAdministration(trx, this.#c.clock, actor, 'create', 'org', input.id, input.id, {
        name: input.name,
        kind: input.kind,
        defaultMarking: marking,
        clients,
      });
      await this.#changed(trx, 'org', input.id);
    });
    return this.getOrg(input.id);
  }

  /**
   * Name and kind are the platform administrator's; the default marking and the declared clients are the
   * organisation's own (its administrator's): they decide what its objects reach.
   */
  async updateOrg(actor: Administrator, id: string, patch: UpdateOrgInput): Promise<Org> {
    if (patch.name !== undefined || patch.kind !== undefined) {
      requirePlatformAdmin(actor, "changing an organisation's name or kind");
    }
    if (patch.defaultMarking !== undefined || patch.clients !== undefined) {
      await requireOrgAdmin(actor, id, "changing an organisation's default marking or clients", (o) =>
        this.hasEnabledAdmin(o),
      );
    }
    if (patch.name !== undefined) checkName(patch.name);
    if (patch.kind !== undefined) checkOrgKind(patch.kind);
    const marking = patch.defaultMarking ? parseMarking(patch.defaultMarking) : undefined;
    await this.#c.store.transaction(async (trx) => {
      const t = trx.withTables<AccessTables>();
      const before = await t
        .selectFrom('access_org')
        .selectAll()
        .where('id', '=', id)
        .forUpdate()
        .executeTakeFirst();
      if (!before) throw new AppError('ACCESS_ORG_NOT_FOUND', `no organisation ${id}`);
      const set: Partial<AccessTables['access_org']> = { updated_at: this.#c.clock.now() };
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
      await auditAdministration(
        trx,
        this.#c.clock,
        actor,
        patch.clients !== undefined ? 'share' : 'update',
        'org',
        id,
        id,
        details,
      );
      await this.#changed(trx, 'org', id);
    });
    return this.getOrg(id);
  }

  async getOrg(id: string): Promise<Org> {
    const row = await this.#db().selectFrom('access_org').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new AppError('ACCESS_ORG_NOT_FOUND', `no organisation ${id}`);
    return orgFromRow(row, await this.#clientsOf(this.#c.store.db, id));
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

  /** True when the organisation has an enabled account with the admin role. */
  async hasEnabledAdmin(orgId: string, db: AnyDb = this.#c.store.db): Promise<boolean> {
    const row = await db
      .withTables<AccessTables>()
      .selectFrom('access_user')
      .select('id')
      .where('org_id', '=', orgId)
      .where(sql<boolean>`'admin' = any(roles)`)
      .where('disabled', '=', false)
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
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
    await this.requireOrgs(trx, clients);
    const t = trx.withTables<AccessTables>();
    await t.deleteFrom('access_org_client').where('org_id', '=', id).execute();
    if (clients.length > 0) {
      await t
        .insertInto('access_org_client')
        .values(clients.map((c) => ({ org_id: id, client_id: c })))
        .execute();
    }
  }

  async requireOrgs(db: AnyDb, ids: string[]): Promise<void> {
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
        { missing },
      );
    }
  }

  /**
   * Checks that a marking names only organisations, communities and users that exist (audience ids are what
   * the read keys are made of: a typo would silently share with nobody, or with a future namesake). Named
   * users may be given by id or username; the marking returned names them by id.
   */
  resolveMarking(db: AnyDb, marking: Marking): Promise<Marking> {
    return this.#checkMarkingRefs(db, marking);
  }

  async #checkMarkingRefs(db: AnyDb, marking: Marking, selfOrg?: string): Promise<Marking> {
    const t = db.withTables<AccessTables>();
    await this.requireOrgs(
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
          { missing },
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
        { missing },
      );
    }
    const users = [...new Set(refs.map((u) => ids.get(u) as string))];
    return { ...marking, audience: { ...marking.audience, users } };
  }

  // ---------------------------------------------------------------- communities

  async createCommunity(
    actor: Administrator,
    input: { id: string; name: string; description?: string | undefined; members?: string[] | undefined },
  ): Promise<Community> {
    requirePlatformAdmin(actor, 'creating a community');
    checkSlug(input.id, 'community id');
    checkName(input.name);
    if (input.id === COMMUNITY_ALL) {
      throw new AppError(
        'ACCESS_COMMUNITY_EXISTS',
        'the community "all" is built in: it holds every organisation',
      );
    }
    const members = unique(input.members ?? []);
    await this.#c.store.transaction(async (trx) => {
      const t = trx.withTables<AccessTables>();
      const inserted = await t
        .insertInto('access_community')
        .values({
          id: input.id,
          name: input.name,
          description: input.description ?? '',
          created_at: this.#c.clock.now(),
        })
        .onConflict((oc) => oc.column('id').doNothing())
        .returning('id')
        .executeTakeFirst();
      if (!inserted) throw new AppError('ACCESS_COMMUNITY_EXISTS', `community ${input.id} already exists`);
      await this.requireOrgs(trx, members);
      if (members.length > 0) {
        await t
          .insertInto('access_community_member')
          .values(members.map((m) => ({ community_id: input.id, org_id: m })))
          .execute();
      }
      await auditAdministration(trx, this.#c.clock, actor, 'create', 'community', input.id, null, {
        name: input.name,
        members,
      });
      await this.#changed(trx, 'community', input.id);
    });
    return this.getCommunity(input.id);
  }

  async setCommunityMember(
    actor: Administrator,
    communityId: string,
    orgId: string,
    member: boolean,
  ): Promise<Community> {
    requirePlatformAdmin(actor, "changing a community's members");
    if (communityId === COMMUNITY_ALL) {
      throw new AppError('ACCESS_INVALID_INPUT', 'the community "all" always holds every organisation');
    }
    await this.#c.store.transaction(async (trx) => {
      const t = trx.withTables<AccessTables>();
      const c = await t
        .selectFrom('access_community')
        .select('id')
        .where('id', '=', communityId)
        .executeTakeFirst();
      if (!c) throw new AppError('ACCESS_COMMUNITY_NOT_FOUND', `no community ${communityId}`);
      await this.requireOrgs(trx, [orgId]);
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
      await auditAdministration(trx, this.#c.clock, actor, 'share', 'community', communityId, null, {
        [member ? 'added' : 'removed']: orgId,
      });
      await this.#changed(trx, 'community', communityId);
    });
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

  async #changed(trx: AnyDb, kind: 'org' | 'community', id: string): Promise<void> {
    // Client and membership changes touch other organisations' facts too: drop them all, once committed.
    this.#c.store.afterCommit(trx, async () => this.#c.invalidate());
    await this.#c.announce(trx, kind === 'org' ? ORG_CHANGED : COMMUNITY_CHANGED, { id });
  }
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

export function checkSlug(id: string, what: string): void {
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
