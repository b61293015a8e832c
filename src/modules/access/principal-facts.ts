/**
 * The facts the policy needs about a principal — its organisation's communities and patrons (organisations
 * that declared it a client) and default marking — cached per organisation for a few seconds and dropped on
 * every access change (on this instance at once, on the others through the bus).
 */
import { AppError } from '../../kernel/errors.ts';
import type { Store } from '../../ports/store.ts';
import { type Marking, type PrincipalFacts, principalReadKeys } from '../sharing/marking.ts';
import type { AccessTables } from './access-tables.ts';
import type { Principal, User } from './access-types.ts';

type OrgFacts = { communities: string[]; patronOrgs: string[]; defaultMarking: Marking; at: number };

export class PrincipalFactsCache {
  readonly #store: Store;
  readonly #ttl: number;
  readonly #facts = new Map<string, OrgFacts>();

  constructor(store: Store, ttlMs: number) {
    this.#store = store;
    this.#ttl = ttlMs;
  }

  async principalFacts(user: { userId: string; orgId: string }): Promise<PrincipalFacts> {
    const f = await this.#orgFacts(user.orgId);
    return { userId: user.userId, orgId: user.orgId, communities: f.communities, patronOrgs: f.patronOrgs };
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

  invalidate(orgId?: string): void {
    if (orgId) this.#facts.delete(orgId);
    else this.#facts.clear();
  }

  async #orgFacts(orgId: string): Promise<OrgFacts> {
    const cached = this.#facts.get(orgId);
    const now = Date.now();
    if (cached && now - cached.at < this.#ttl) return cached;
    const db = this.#store.db.withTables<AccessTables>();
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
}
