/**
 * The @contexts the broker hosts for clients (NGSI-LD @context API, clause 5.13), a kind of marked object of
 * the sharing gate (`jsonld-context`): created by writers, owned by their organisation, deleted only by its
 * writers (the gate decides and audits both). A hosted context is public — TLP:CLEAR, always: JSON-LD
 * processors dereference contexts without credentials, and a client cannot resolve the terms of another
 * organisation's shared entities without it. It holds term definitions, never data. The resolver loads
 * them from here when a client names one.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../../kernel/clock.ts';
import { AppError } from '../../kernel/errors.ts';
import { newTimeOrderedId } from '../../kernel/ids.ts';
import type { Store } from '../../ports/store.ts';
import type { GatePrincipal, Marking, SharingGate } from '../sharing/index.ts';
import { CORE_CONTEXT_URL, CORE_CONTEXT_URLS } from './core-context.ts';
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

/** Ids of ImplicitlyCreated contexts begin so (the others are Hosted: added with POST /jsonldContexts). */
export const IMPLICIT_PREFIX = 'implicit-';

/** The @context API's kind of a context the broker holds in its table. */
export function hostedKind(id: string): 'Hosted' | 'ImplicitlyCreated' {
  return id.startsWith(IMPLICIT_PREFIX) ? 'ImplicitlyCreated' : 'Hosted';
}

/** What the @context API tells of a hosted context (ContextInfo, clause 5.2.38). */
export interface HostedContextInfo {
  id: string;
  kind: 'Hosted' | 'ImplicitlyCreated';
  createdAt: string;
  /** Uses by requests on this instance since it started. */
  numberOfHits: number;
  lastUsage?: string;
}

/** What the @context API tells of a cached remote context (kind `Cached`), with its document. */
export interface CachedContextInfo {
  url: string;
  document: unknown;
  createdAt: string;
  numberOfHits: number;
  lastUsage?: string;
}

function lastUsage(u: { lastUsage: string } | undefined): { lastUsage?: string } {
  return u ? { lastUsage: u.lastUsage } : {};
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

  /**
   * An ImplicitlyCreated context (clause 5.13): the broker's copy of a @context a request gave inline or as
   * several URLs, so that it can be named by one URL. One per organisation and context (its id is derived
   * from both): created the first time, reused after; public and deletable like a hosted context.
   */
  async implicit(p: GatePrincipal, context: LdContext): Promise<string> {
    this.#gate.checkCreate(p, JSONLD_CONTEXT_KIND);
    await this.#resolver.resolve(context);
    const hash = createHash('sha256')
      .update(`${p.orgId}\u0000${JSON.stringify(context)}`)
      .digest('hex');
    const id = `${IMPLICIT_PREFIX}${hash.slice(0, 32)}`;
    if (await getHostedContext(this.#store.db, id)) return id;
    try {
      await this.#store.transaction(async (trx) => {
        await this.#gate.create(trx, p, { kind: JSONLD_CONTEXT_KIND, id, marking: hostedMarking() });
        await insertHostedContext(trx, {
          id,
          body: { '@context': context },
          ownerOrg: p.orgId,
          createdBy: p.userId,
        });
      });
    } catch (e) {
      // Created meanwhile by the same organisation's other request: the same context, the same id.
      if (!(await getHostedContext(this.#store.db, id))) throw e;
    }
    return id;
  }

  async get(id: string): Promise<HostedContextRow> {
    const row = await getHostedContext(this.#store.db, id);
    if (!row) throw new AppError('CONTEXT_LDCONTEXT_NOT_FOUND', `no hosted @context ${id}`);
    return row;
  }

  /** Hosted contexts, and the remote ones this instance holds in its cache (the core context first). */
  async list(): Promise<{ hosted: HostedContextInfo[]; cached: CachedContextInfo[] }> {
    const hosted = (await listHostedContexts(this.#store.db)).map((h) => this.#hostedInfo(h));
    const cached: CachedContextInfo[] = [];
    for (const url of [CORE_CONTEXT_URL, ...this.#resolver.cachedUrls()]) {
      const info = await this.cachedInfo(url);
      if (info) cached.push(info);
    }
    return { hosted, cached };
  }

  /** A hosted context's ContextInfo (clause 5.2.38), or undefined. */
  async info(id: string): Promise<HostedContextInfo | undefined> {
    const row = await getHostedContext(this.#store.db, id);
    return row ? this.#hostedInfo(row) : undefined;
  }

  #hostedInfo(h: Omit<HostedContextRow, 'body'>): HostedContextInfo {
    const usage = this.#resolver.usageOfHosted(h.id);
    return {
      id: h.id,
      kind: hostedKind(h.id),
      createdAt: h.createdAt,
      numberOfHits: usage?.numberOfHits ?? 0,
      ...lastUsage(usage),
    };
  }

  /** A cached remote context (or the core context): its document and ContextInfo, or undefined. */
  async cachedInfo(url: string): Promise<CachedContextInfo | undefined> {
    const c = await this.#resolver.cached(url);
    if (!c) return undefined;
    const usage = this.#resolver.usageOf(url);
    return {
      url,
      document: c.document,
      createdAt: c.createdAt,
      numberOfHits: usage?.numberOfHits ?? 0,
      ...lastUsage(usage),
    };
  }

  /**
   * DELETE /jsonldContexts/{id} of a cached context (clause 5.13.5): drops it from this instance's cache,
   * or with `reload` fetches it again (LdContextNotAvailable when it cannot be had: the cached one stays).
   * The core context is built in: it cannot be dropped, and reloading it changes nothing.
   */
  async removeCached(caller: Caller, url: string, reload: boolean): Promise<void> {
    this.#gate.checkCreate(gatePrincipal(caller), JSONLD_CONTEXT_KIND);
    const isCore = CORE_CONTEXT_URLS.includes(url);
    if (!isCore && !(await this.#resolver.cached(url))) {
      throw new AppError('CONTEXT_LDCONTEXT_NOT_FOUND', `no @context ${url} is held here`);
    }
    if (reload) {
      await this.#resolver.reload(url);
      return;
    }
    if (isCore) throw new AppError('CONTEXT_INVALID_REQUEST', 'the core @context cannot be deleted');
    this.#resolver.evict(url);
  }

  /** DELETE /jsonldContexts/{id}: only writers of the organisation that added it (the gate decides). */
  async remove(caller: Caller, id: string, opts: { reload?: boolean } = {}): Promise<void> {
    if (opts.reload) {
      // Only a cached context is fetched again; a hosted one has no origin to reload from.
      if (await getHostedContext(this.#store.db, id)) {
        throw new AppError('CONTEXT_INVALID_REQUEST', 'reload applies to cached @contexts only');
      }
    }
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
