/**
 * The subscription use cases of the NGSI-LD API (clause 5.8): create, list, retrieve, update, delete.
 *
 * A subscription is a marked object at the sharing gate (kind `subscription`, scope = the tenant): creating
 * one is a share — the organisation's data leaves for the endpoint it names — so it needs a writing role
 * and is registered and audited by the gate in the transaction of the subscription's row. Its marking is
 * TLP:AMBER+STRICT without audience: only the owner organisation's users see it (others are answered as if
 * it did not exist), only its writers change or delete it. Its notifications carry only what the owner
 * organisation may read, decided again at every delivery.
 */
import type { Clock } from '../../kernel/clock.ts';
import { AppError } from '../../kernel/errors.ts';
import { newId } from '../../kernel/ids.ts';
import type { AnyDb } from '../../ports/store.ts';
import type { CurrentObject, GatePrincipal, Marking } from '../sharing/index.ts';
import type { DeliveryEngine } from './delivery-engine.ts';
import type {
  AccountStatusPort,
  EntityReaderPort,
  ImplicitContextPort,
  JsonLdContext,
  LdContextPort,
  LiveGate,
  QueryPort,
} from './ports.ts';
import {
  OWNER_DISABLED,
  parseSubscription,
  patchSubscription,
  type SubscriptionRecord,
  type SubscriptionSpec,
  subscriptionView,
} from './subscription.ts';
import { SUBSCRIPTION_KIND, type SubscriptionStore } from './subscription-store.ts';

/** Who calls: the principal of the request (the authentication hook's), as the sharing gate takes it. */
export type LivePrincipal = GatePrincipal;

/** Every subscription's marking: its owner organisation's users, never anyone else. */
export const SUBSCRIPTION_MARKING: Marking = {
  tlp: 'AMBER+STRICT',
  audience: { orgs: [], communities: [], users: [] },
};

export interface SubscriptionServiceDeps {
  subscriptions: SubscriptionStore;
  engine: DeliveryEngine;
  gate: LiveGate;
  ld: LdContextPort;
  query?: QueryPort | undefined;
  entityReader?: EntityReaderPort | undefined;
  /** Whether a subscription's creator may still act; without it subscriptions are never paused for it. */
  accounts?: AccountStatusPort | undefined;
  /** Hosts a subscription's @context when it is not one URL (ImplicitlyCreated, clause 5.13). */
  implicitContexts?: ImplicitContextPort | undefined;
  clock: Clock;
  /**
   * Tells every instance that a subscription changed, in the transaction of the change (through the
   * outbox); optional for one instance.
   */
  announce?: ((trx: AnyDb, tenant: string, id: string) => Promise<void>) | undefined;
}

export class SubscriptionService {
  readonly #d: SubscriptionServiceDeps;

  constructor(deps: SubscriptionServiceDeps) {
    this.#d = deps;
    deps.gate.defineKind(SUBSCRIPTION_KIND, {
      label: 'subscription',
      // Break-glass shows the subscription as stored, endpoint and delivery status included.
      load: async (ref) => (await deps.subscriptions.get(ref.scope, ref.id)) ?? null,
    });
  }

  #check(spec: SubscriptionSpec): void {
    if (spec.timeInterval !== undefined && !this.#d.entityReader) {
      throw new AppError(
        'CONTEXT_LIVE_UNSUPPORTED',
        'periodic notifications (timeInterval) are not available',
      );
    }
  }

  /**
   * `contextBase` is where this broker's @contexts are served (`…/ngsi-ld/v1/jsonldContexts`): a
   * subscription whose @context is not one URL and that names no `jsonldContext` gets its @context hosted
   * there (ImplicitlyCreated) and named as its `jsonldContext`, which notifications name in `Link`.
   */
  async create(
    tenant: string,
    principal: LivePrincipal,
    body: unknown,
    context: JsonLdContext | undefined,
    opts: { contextBase?: string | undefined } = {},
  ): Promise<SubscriptionRecord> {
    // The role first: a viewer learns nothing from validation errors either.
    this.#d.gate.checkCreate(principal, SUBSCRIPTION_KIND);
    const now = this.#d.clock.now();
    const spec = await parseSubscription(body, context, {
      ld: this.#d.ld,
      query: this.#d.query,
      now,
      newId,
    });
    this.#check(spec);
    await this.#d.engine.checkEndpoint(spec.notification.endpoint.uri, principal.orgId);
    const own = spec.jsonldContext;
    const oneUrl =
      typeof own === 'string' || (Array.isArray(own) && own.length === 1 && typeof own[0] === 'string');
    if (own !== undefined && !oneUrl && spec.notificationContext === undefined && opts.contextBase) {
      const implicit = this.#d.implicitContexts;
      if (implicit) {
        const id = await implicit.implicitContext(principal, own);
        spec.notificationContext = `${opts.contextBase}/${encodeURIComponent(id)}`;
      }
    }
    const rec: SubscriptionRecord = {
      tenant,
      spec,
      ownerOrg: principal.orgId,
      createdBy: principal.userId,
      delivery: { timesSent: 0, timesFailed: 0 },
      createdAt: now.toISOString(),
      modifiedAt: now.toISOString(),
    };
    await this.#d.subscriptions.transaction(async (trx) => {
      await this.#d.gate.create(trx, principal, {
        kind: SUBSCRIPTION_KIND,
        scope: tenant,
        id: spec.id,
        marking: SUBSCRIPTION_MARKING,
        details: { endpoint: endpointOrigin(spec.notification.endpoint.uri) },
      });
      await this.#d.subscriptions.insert(rec, trx);
      await this.#d.announce?.(trx, tenant, spec.id);
    });
    await this.#d.engine.put(rec);
    return rec;
  }

  async get(tenant: string, principal: LivePrincipal, id: string): Promise<SubscriptionRecord> {
    await this.#d.engine.flushStatus();
    const rec = await this.#d.subscriptions.getVisible(
      tenant,
      id,
      this.#d.gate.visibleWhere(principal, 's.read_keys'),
    );
    // Another organisation's subscription is as good as absent: no hint that it exists.
    if (!rec) throw this.#d.gate.notFound(SUBSCRIPTION_KIND, id);
    return rec;
  }

  async list(
    tenant: string,
    principal: LivePrincipal,
    page: { limit: number; offset: number },
  ): Promise<{ items: SubscriptionRecord[]; total: number }> {
    await this.#d.engine.flushStatus();
    return this.#d.subscriptions.list(
      tenant,
      this.#d.gate.visibleWhere(principal, 's.read_keys'),
      page.limit,
      page.offset,
    );
  }

  async update(
    tenant: string,
    principal: LivePrincipal,
    id: string,
    fragment: unknown,
    context: JsonLdContext | undefined,
  ): Promise<SubscriptionRecord> {
    // Decided before the fragment is read: a stranger gets 404 and a viewer 403 whatever it sent.
    const before = await this.#d.subscriptions.marked(tenant, id);
    this.#d.gate.checkChange(principal, SUBSCRIPTION_KIND, before?.object ?? absent(tenant, id));
    const now = this.#d.clock.now();
    const rec = (before as NonNullable<typeof before>).rec;
    const spec = await patchSubscription(rec.spec, fragment, context, {
      ld: this.#d.ld,
      query: this.#d.query,
      now,
    });
    this.#check(spec);
    if (spec.notification.endpoint.uri !== rec.spec.notification.endpoint.uri) {
      await this.#d.engine.checkEndpoint(spec.notification.endpoint.uri, rec.ownerOrg);
    }
    let next: SubscriptionRecord | undefined;
    await this.#d.subscriptions.transaction(async (trx) => {
      const current = await this.#d.subscriptions.locked(trx, tenant, id);
      await this.#d.gate.update(trx, principal, {
        kind: SUBSCRIPTION_KIND,
        current: current?.object ?? absent(tenant, id),
        fields: changedMembers(fragment),
      });
      await this.#d.subscriptions.update(tenant, spec, now, trx);
      await this.#d.announce?.(trx, tenant, id);
      next = { ...(current as NonNullable<typeof current>).rec, spec, modifiedAt: now.toISOString() };
    });
    const updated = next as SubscriptionRecord;
    await this.#d.engine.put(updated);
    return updated;
  }

  async delete(tenant: string, principal: LivePrincipal, id: string): Promise<void> {
    await this.#d.subscriptions.transaction(async (trx) => {
      const current = await this.#d.subscriptions.locked(trx, tenant, id);
      await this.#d.gate.remove(trx, principal, {
        kind: SUBSCRIPTION_KIND,
        current: current?.object ?? absent(tenant, id),
      });
      await this.#d.subscriptions.delete(tenant, id, trx);
      await this.#d.announce?.(trx, tenant, id);
    });
    this.#d.engine.remove(tenant, id);
  }

  /** The API view (clause 5.2.12), compacted with the request's @context. */
  view(
    rec: SubscriptionRecord,
    context: JsonLdContext | undefined,
    opts: { includeContext?: boolean; sysAttrs?: boolean } = {},
  ): Promise<Record<string, unknown>> {
    return subscriptionView(rec, context, this.#d.ld, this.#d.clock.now(), opts);
  }

  /** Reloads one subscription after another instance changed it. */
  async refresh(tenant: string, id: string): Promise<void> {
    const rec = await this.#d.subscriptions.get(tenant, id);
    if (rec) await this.#d.engine.put(rec);
    else this.#d.engine.remove(tenant, id);
  }

  /**
   * An account changed (disabled, enabled, token revoked): its subscriptions pause while it is disabled and
   * resume when it is enabled again. Every instance runs this for the same event; the store's update is
   * idempotent and each instance applies it to the subscriptions it holds in memory.
   */
  async recheckAccount(userId: string): Promise<void> {
    const accounts = this.#d.accounts;
    if (!accounts) return;
    const reason = (await accounts.isActive(userId)) ? null : OWNER_DISABLED;
    await this.#d.subscriptions.setPausedReason(userId, reason);
    this.#d.engine.pauseCreatedBy(userId, reason ?? undefined);
  }

  /** At start: every creator's account as it is now (changes may have happened while no instance ran). */
  async recheckAccounts(): Promise<void> {
    if (!this.#d.accounts) return;
    for (const userId of await this.#d.subscriptions.creators()) await this.recheckAccount(userId);
  }

  /**
   * Subscriptions created before they were marked objects get their registry row, as the platform's act:
   * owned by their organisation and creator, with the marking of every subscription.
   */
  async registerUnregistered(): Promise<number> {
    const legacy = await this.#d.subscriptions.unregistered();
    if (legacy.length === 0) return 0;
    await this.#d.subscriptions.transaction((trx) =>
      this.#d.gate.recordDerived(
        trx,
        legacy.map((r) => ({
          kind: SUBSCRIPTION_KIND,
          scope: r.tenant,
          id: r.spec.id,
          ownerOrg: r.ownerOrg,
          createdBy: r.createdBy,
          marking: SUBSCRIPTION_MARKING,
        })),
        { registered: 'existing subscription' },
      ),
    );
    return legacy.length;
  }
}

/** A missing subscription, to the gate: invisible to everyone, so it answers exactly as for an invisible one. */
function absent(tenant: string, id: string): CurrentObject & { readKeys: string[] } {
  return { id, scope: tenant, ownerOrg: '', createdBy: '', marking: SUBSCRIPTION_MARKING, readKeys: [] };
}

/** The members a PATCH names (the audit records which, never their values). */
function changedMembers(fragment: unknown): string[] {
  if (typeof fragment !== 'object' || fragment === null) return [];
  return Object.keys(fragment).filter((k) => k !== '@context' && k !== 'id' && k !== 'type');
}

/** Where notifications go, for the audit record: scheme, host and port, without credentials or path. */
function endpointOrigin(uri: string): string {
  try {
    const u = new URL(uri);
    return `${u.protocol}//${u.host}`;
  } catch {
    return '';
  }
}
