/**
 * The @contexts the broker hosts for clients (NGSI-LD @context API, clause 5.13): added by a client,
 * served to anyone who dereferences them (JSON-LD processors fetch contexts without credentials), deleted by
 * the organisation that added them. The resolver loads them from here when a client names one.
 */
import type { Clock } from '../../kernel/clock.ts';
import { AppError } from '../../kernel/errors.ts';
import { newTimeOrderedId } from '../../kernel/ids.ts';
import type { Store } from '../../ports/store.ts';
import {
  deleteHostedContext,
  getHostedContext,
  type HostedContextRow,
  insertHostedContext,
  listHostedContexts,
} from './entity-repository.ts';
import { type Caller, isPlainObject } from './entity-view.ts';
import type { ContextResolver, LdContext } from './json-ld-context.ts';

export class HostedContexts {
  readonly #store: Store;
  readonly #resolver: ContextResolver;
  readonly #clock: Clock;

  constructor(opts: { store: Store; resolver: ContextResolver; clock: Clock }) {
    this.#store = opts.store;
    this.#resolver = opts.resolver;
    this.#clock = opts.clock;
    opts.resolver.setHostedLoader(async (id) => (await getHostedContext(opts.store.db, id))?.body);
  }

  /** POST /jsonldContexts: hosts a context document `{"@context": …}`; returns its id. */
  async add(caller: Caller, body: unknown): Promise<string> {
    if (!isPlainObject(body) || !('@context' in body)) {
      throw new AppError(
        'CONTEXT_INVALID_JSONLD',
        'a hosted context is a JSON object with an @context member',
      );
    }
    // It must be a context the broker can use: processed now, failing like any client context would.
    await this.#resolver.resolve(body['@context'] as LdContext);
    const id = newTimeOrderedId(this.#clock.now().getTime());
    await insertHostedContext(this.#store.db, {
      id,
      body: { '@context': body['@context'] },
      ownerOrg: caller.principal.orgId,
      createdBy: caller.principal.userId,
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

  /** DELETE /jsonldContexts/{id}: only users of the organisation that added it. */
  async remove(caller: Caller, id: string): Promise<void> {
    const row = await this.get(id);
    if (row.ownerOrg !== caller.principal.orgId) {
      throw new AppError(
        'CONTEXT_NOT_OWNER',
        `only users of the organisation that added @context ${id} may delete it`,
      );
    }
    await deleteHostedContext(this.#store.db, id);
    this.#resolver.forgetHosted(id);
  }
}
