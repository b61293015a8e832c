/**
 * The @contexts the broker hosts for clients (NGSI-LD @context API, clause 5.13), a kind of marked object of
 * the sharing gate (`jsonld-context`): created by writers, owned by their organisation, deleted only by its
 * writers (the gate decides and audits both). A hosted context is public — TLP:CLEAR, always: JSON-LD
 * processors dereference contexts without credentials, and a client cannot resolve the terms of another
 * organisation's shared entities without it. It holds term definitions, never data. The resolver loads
 * them from here when a client names one.
 */
import type { Clock } from '../../kernel/clock.ts';
import { AppError } from '../../kernel/errors.ts';
import { newTimeOrderedId } from '../../kernel/ids.ts';
import type { Store } from '../../ports/store.ts';
import type { Marking, SharingGate } from '../sharing/index.ts';
import {
  deleteHostedContext,
  getHostedContext,
  type HostedContextRow,
  insertHostedContext,
  listHostedContexts,
} from './entity-repository.ts';
import { type Caller, gatePrincipal, isPlainObject } from './entity-view.ts';
import type { ContextResolver, LdContext } from './json-ld-context.ts';

/** The sharing gate's kind of hosted @contexts. */
export const JSONLD_CONTEXT_KIND = 'jsonld-context';

/** Every hosted @context is public (see above). */
function hostedMarking(): Marking {
  return { tlp: 'CLEAR', audience: { orgs: [], communities: [], users: [] } };
}

export class HostedContexts {
  readonly #store: Store;
  readonly #gate: SharingGate;
  readonly #resolver: ContextResolver;
  readonly #clock: Clock;

  constructor(opts: { store: Store; gate: SharingGate; resolver: ContextResolver; clock: Clock }) {
    this.#store = opts.store;
    this.#gate = opts.gate;
    opts.gate.defineKind(JSONLD_CONTEXT_KIND, {
      label: 'hosted @context',
      load: async (ref) => (await getHostedContext(opts.store.db, ref.id))?.body ?? null,
    });
    this.#resolver = opts.resolver;
    this.#clock = opts.clock;
    opts.resolver.setHostedLoader(async (id) => (await getHostedContext(opts.store.db, id))?.body);
  }

  /** POST /jsonldContexts: hosts a context document `{"@context": …}`; returns its id. */
  async add(caller: Caller, body: unknown): Promise<string> {
    const p = gatePrincipal(caller);
    this.#gate.checkCreate(p, JSONLD_CONTEXT_KIND);
    if (!isPlainObject(body) || !('@context' in body)) {
      throw new AppError(
        'CONTEXT_INVALID_JSONLD',
        'a hosted context is a JSON object with an @context member',
      );
    }
    // It must be a context the broker can use: processed now, failing like any client context would.
    await this.#resolver.resolve(body['@context'] as LdContext);
    const id = newTimeOrderedId(this.#clock.now().getTime());
    await this.#store.transaction(async (trx) => {
      await this.#gate.create(trx, p, { kind: JSONLD_CONTEXT_KIND, id, marking: hostedMarking() });
      await insertHostedContext(trx, {
        id,
        body: { '@context': body['@context'] },
        ownerOrg: caller.principal.orgId,
        createdBy: caller.principal.userId,
      });
    });
    return id;
  }

  async get(id: string): Promise<HostedContextRow> {
    const row = await getHostedContext(this.#store.db, id);
    if (!row) throw new AppError('CONTEXT_LDCONTEXT_NOT_FOUND', `no hosted @context ${id}`);
    return row;
  }

  /** Hosted contexts, and the remote ones this instance holds in its cache. */
  async list(): Promise<{ hosted: Omit<HostedContextRow, 'body'>[]; cached: string[] }> {
    return { hosted: await listHostedContexts(this.#store.db), cached: this.#resolver.cachedUrls() };
  }

  /** DELETE /jsonldContexts/{id}: only writers of the organisation that added it (the gate decides). */
  async remove(caller: Caller, id: string): Promise<void> {
    await this.#store.transaction(async (trx) => {
      const row = await getHostedContext(trx, id, { forUpdate: true });
      if (!row) throw new AppError('CONTEXT_LDCONTEXT_NOT_FOUND', `no hosted @context ${id}`);
      await this.#gate.remove(trx, gatePrincipal(caller), {
        kind: JSONLD_CONTEXT_KIND,
        current: {
          id,
          ownerOrg: row.ownerOrg,
          createdBy: row.createdBy,
          marking: hostedMarking(),
        },
      });
      await deleteHostedContext(trx, id);
    });
    this.#resolver.forgetHosted(id);
  }
}
