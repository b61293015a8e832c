/**
 * The subscription use cases of the NGSI-LD API (clause 5.8): create, list, retrieve, update, delete.
 * A subscription belongs to the organisation of the principal that created it: only that organisation's
 * users see or change it, and its notifications carry only what that organisation may read.
 */
import type { Clock } from '../../kernel/clock.ts';
import { AppError } from '../../kernel/errors.ts';
import { newId } from '../../kernel/ids.ts';
import type { AnyDb } from '../../ports/store.ts';
import type { DeliveryEngine } from './delivery-engine.ts';
import type { EntityReaderPort, JsonLdContext, LdContextPort, QueryPort } from './ports.ts';
import {
  parseSubscription,
  patchSubscription,
  type SubscriptionRecord,
  type SubscriptionSpec,
  subscriptionView,
} from './subscription.ts';
import type { SubscriptionStore } from './subscription-store.ts';

/** Who calls: the fields of the HTTP principal this module needs. */
export interface LivePrincipal {
  userId: string;
  orgId: string;
  readKeys: string[];
}

export interface SubscriptionServiceDeps {
  subscriptions: SubscriptionStore;
  engine: DeliveryEngine;
  ld: LdContextPort;
  query?: QueryPort | undefined;
  entityReader?: EntityReaderPort | undefined;
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
  }

  #check(spec: SubscriptionSpec): void {
    if (spec.timeInterval !== undefined && !this.#d.entityReader) {
      throw new AppError(
        'CONTEXT_LIVE_UNSUPPORTED',
        'periodic notifications (timeInterval) are not available',
      );
    }
  }

  async create(
    tenant: string,
    principal: LivePrincipal,
    body: unknown,
    context: JsonLdContext | undefined,
  ): Promise<SubscriptionRecord> {
    const now = this.#d.clock.now();
    const spec = await parseSubscription(body, context, {
      ld: this.#d.ld,
      query: this.#d.query,
      now,
      newId,
    });
    this.#check(spec);
    await this.#d.engine.checkEndpoint(spec.notification.endpoint.uri, principal.orgId);
    const rec: SubscriptionRecord = {
      tenant,
      spec,
      ownerOrg: principal.orgId,
      createdBy: principal.userId,
      readKeys: principal.readKeys,
      delivery: { timesSent: 0, timesFailed: 0 },
      createdAt: now.toISOString(),
      modifiedAt: now.toISOString(),
    };
    await this.#d.subscriptions.transaction(async (trx) => {
      await this.#d.subscriptions.insert(rec, trx);
      await this.#d.announce?.(trx, tenant, spec.id);
    });
    await this.#d.engine.put(rec);
    return rec;
  }

  async get(tenant: string, principal: LivePrincipal, id: string): Promise<SubscriptionRecord> {
    await this.#d.engine.flushStatus();
    const rec = await this.#d.subscriptions.get(tenant, id);
    // Another organisation's subscription is as good as absent: no hint that it exists.
    if (!rec || rec.ownerOrg !== principal.orgId) {
      throw new AppError('CONTEXT_LIVE_SUBSCRIPTION_NOT_FOUND', `subscription ${id} not found`);
    }
    return rec;
  }

  async list(
    tenant: string,
    principal: LivePrincipal,
    page: { limit: number; offset: number },
  ): Promise<{ items: SubscriptionRecord[]; total: number }> {
    await this.#d.engine.flushStatus();
    return this.#d.subscriptions.list(tenant, principal.orgId, page.limit, page.offset);
  }

  async update(
    tenant: string,
    principal: LivePrincipal,
    id: string,
    fragment: unknown,
    context: JsonLdContext | undefined,
  ): Promise<SubscriptionRecord> {
    const rec = await this.get(tenant, principal, id);
    const now = this.#d.clock.now();
    const spec = await patchSubscription(rec.spec, fragment, context, {
      ld: this.#d.ld,
      query: this.#d.query,
      now,
    });
    this.#check(spec);
    if (spec.notification.endpoint.uri !== rec.spec.notification.endpoint.uri) {
      await this.#d.engine.checkEndpoint(spec.notification.endpoint.uri, rec.ownerOrg);
    }
    await this.#d.subscriptions.transaction(async (trx) => {
      await this.#d.subscriptions.update(tenant, spec, now, trx);
      await this.#d.announce?.(trx, tenant, id);
    });
    const next: SubscriptionRecord = { ...rec, spec, modifiedAt: now.toISOString() };
    await this.#d.engine.put(next);
    return next;
  }

  async delete(tenant: string, principal: LivePrincipal, id: string): Promise<void> {
    await this.get(tenant, principal, id);
    await this.#d.subscriptions.transaction(async (trx) => {
      await this.#d.subscriptions.delete(tenant, id, trx);
      await this.#d.announce?.(trx, tenant, id);
    });
    this.#d.engine.remove(tenant, id);
  }

  /** The API view (clause 5.2.12), compacted with the request's @context. */
  view(
    rec: SubscriptionRecord,
    context: JsonLdContext | undefined,
    opts: { includeContext?: boolean } = {},
  ): Promise<Record<string, unknown>> {
    return subscriptionView(rec, context, this.#d.ld, this.#d.clock.now(), opts);
  }

  /** Reloads one subscription after another instance changed it. */
  async refresh(tenant: string, id: string): Promise<void> {
    const rec = await this.#d.subscriptions.get(tenant, id);
    if (rec) await this.#d.engine.put(rec);
    else this.#d.engine.remove(tenant, id);
  }
}
