/**
 * The access module assembled: the directory of organisations and communities (`orgs`), accounts and their
 * credentials (`accounts`), and the facts the policy needs about a principal (`facts`), sharing one store,
 * clock and bus. It is also the sharing gate's Directory: the gate asks it whether an audience exists and
 * what a principal's organisation is part of.
 */
import { type Clock, systemClock } from '../../kernel/clock.ts';
import type { EventBus, Subscription } from '../../ports/event-bus.ts';
import type { EventOutbox } from '../../ports/event-outbox.ts';
import type { AnyDb, Store } from '../../ports/store.ts';
import type { Marking, PrincipalFacts } from '../sharing/marking.ts';
import type { Directory } from '../sharing/sharing-gate.ts';
import type { AccessEvents } from './access-events.ts';
import type { Principal, User } from './access-types.ts';
import { Accounts } from './accounts.ts';
import type { AccessContext } from './administration.ts';
import { OrgDirectory } from './org-directory.ts';
import { PrincipalFactsCache } from './principal-facts.ts';

export interface AccessServiceOptions {
  store: Store;
  /** Where access changes are written in the transaction of the change, to reach every instance. */
  events?: EventOutbox<AccessEvents> | undefined;
  clock?: Clock | undefined;
  /** How long an organisation's communities and patrons, and a session's account, are cached (default 5 s). */
  factsTtlMs?: number | undefined;
}

export class AccessService implements Directory {
  readonly store: Store;
  readonly clock: Clock;
  readonly orgs: OrgDirectory;
  readonly accounts: Accounts;
  readonly facts: PrincipalFactsCache;
  readonly #events: EventOutbox<AccessEvents> | undefined;

  constructor(opts: AccessServiceOptions) {
    this.store = opts.store;
    this.clock = opts.clock ?? systemClock;
    this.#events = opts.events;
    const ttl = opts.factsTtlMs ?? 5000;
    this.facts = new PrincipalFactsCache(opts.store, ttl);
    const context: AccessContext = {
      store: opts.store,
      clock: this.clock,
      announce: async (trx, type, data) => {
        await this.#events?.emit(trx, type, data);
      },
      invalidate: (orgId) => this.invalidateFacts(orgId),
    };
    this.orgs = new OrgDirectory(context);
    this.accounts = new Accounts(context, this.orgs, ttl);
  }

  // ---------------------------------------------------------------- the sharing gate's directory

  resolveMarking(db: AnyDb, marking: Marking): Promise<Marking> {
    return this.orgs.resolveMarking(db, marking);
  }

  principalFacts(who: { userId: string; orgId: string }): Promise<PrincipalFacts> {
    return this.facts.principalFacts(who);
  }

  account(ref: string): Promise<User> {
    return this.accounts.getUser(ref);
  }

  principalFor(user: User): Promise<Principal> {
    return this.facts.principalFor(user);
  }

  // ---------------------------------------------------------------- changes across instances

  /** Forgets cached facts (all organisations, and every cached session account, when no id is given). */
  invalidateFacts(orgId?: string): void {
    this.facts.invalidate(orgId);
    if (!orgId) this.accounts.forgetSessions();
  }

  /** Drops cached facts whenever any instance announces an access change. */
  listenForChanges(bus: EventBus): Promise<Subscription> {
    return bus.subscribe({ types: ['access.>'], mode: 'broadcast' }, async () => {
      this.invalidateFacts();
    });
  }
}
