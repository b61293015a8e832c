/**
 * JSON-LD @context handling for NGSI-LD, with the `jsonld` processor behind caches so it is never the
 * bottleneck:
 * - the core context is built in (core-context.ts) and never fetched, under every published URL;
 * - other contexts come from contexts hosted by this broker, or a preloaded URL-to-file map, or — only
 *   when an allow-list names their host — the network, through the egress policy (every address
 *   checked, the connection pinned, each redirect checked again) with a timeout and a size limit; they are
 *   cached, and one that cannot be retrieved fails fast with CONTEXT_LDCONTEXT_NOT_AVAILABLE;
 * - each distinct user context is processed once by jsonld into an active context; term expansion and
 *   IRI compaction are then memoised per active context (the fast path used on every request).
 *
 * NGSI-LD always appends the core context last, so its terms cannot be redefined by user contexts.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import jsonld from 'jsonld';
import jsonldCompact from 'jsonld/lib/compact.js';
import jsonldContext from 'jsonld/lib/context.js';
import { AppError } from '../../kernel/errors.ts';
import { type EgressPolicy, egressGet } from '../egress/index.ts';
import { CORE_CONTEXT_DOCUMENT, CORE_CONTEXT_URL, CORE_CONTEXT_URLS } from './core-context.ts';

/** What a context may be: a URL, an inline object, or an array of both. */
export type LdContext = string | Record<string, unknown> | (string | Record<string, unknown>)[];

export interface ActiveContext {
  /** The user context as given (without the core), or null for the core context alone. */
  readonly userContext: LdContext | null;
  /** The context to echo in answers: the user context (URL or inline), or the core context URL. */
  readonly echo: LdContext;
  /** Expands an attribute name or type name (vocabulary-relative) to a full IRI. */
  expandTerm(term: string): string;
  /** Compacts a full IRI to the shortest term of this context (or returns it unchanged). */
  compactIri(iri: string): string;
}

export interface ContextResolverOptions {
  /** A URL-to-file map (lines: `URL  relative/path ...`), as in CONTEXT-URLS.txt; `<X>` is a wildcard. */
  contextMapFile?: string;
  /** How long to wait for a remote @context, in ms (default 3000). */
  timeoutMs?: number;
  /**
   * Fetching contexts that are neither built in, hosted nor mapped: off when absent. The policy's
   * allow-list names the hosts (SAFECITY_CONTEXT_ALLOW); its deny-list and the always-refused addresses
   * apply as to every egress.
   */
  remote?: EgressPolicy | undefined;
  /** Largest remote context accepted, in bytes (default 1 MiB). */
  maxContextBytes?: number;
}

/** What to tell a client whose remote @context is refused, so that an operator can allow it. */
const HOW_TO_ALLOW =
  'name its host in SAFECITY_CONTEXT_ALLOW, map the URL to a file in SAFECITY_CONTEXT_MAP, or host the context here (POST /ngsi-ld/v1/jsonldContexts)';

interface JsonLdActiveContext {
  mappings: Map<string, unknown>;
}

interface JsonLdProcessor {
  processContext(active: unknown, local: unknown, options: unknown): Promise<unknown>;
}

type RemoteDocument = { contextUrl: null; documentUrl: string; document: unknown };

interface MapEntry {
  pattern: RegExp;
  file: string;
}

/** Reads a URL-to-file map: each line `URL<space>path`; `<X>` in both stands for the same name. */
export function readContextMap(file: string): MapEntry[] {
  const base = dirname(file);
  const out: MapEntry[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(https?:\/\/\S+)\s+(\S+)/.exec(line.trim());
    if (!m) continue;
    const [, url, path] = m as unknown as [string, string, string];
    const escaped = url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace('<X>', '([A-Za-z0-9_.-]+)');
    out.push({ pattern: new RegExp(`^${escaped}$`), file: resolve(base, path) });
  }
  return out;
}

/** How often this instance used a @context, and when last (NGSI-LD ContextInfo, clause 5.2.38). */
export interface ContextUsage {
  numberOfHits: number;
  lastUsage: string;
}

export class ContextResolver {
  readonly #documents = new Map<string, Promise<RemoteDocument>>();
  /** When each remote context entered the cache (ISO date). */
  readonly #cachedAt = new Map<string, string>();
  /** Uses by requests on this instance, by URL (hosted contexts by `hosted:<id>`, whatever host named them). */
  readonly #usage = new Map<string, ContextUsage>();
  readonly #startedAt = new Date().toISOString();
  readonly #active = new Map<string, Promise<ActiveContext>>();
  readonly #map: MapEntry[];
  readonly #timeoutMs: number;
  readonly #remote: EgressPolicy | undefined;
  readonly #maxBytes: number;
  readonly #core: Promise<ActiveContext>;

  constructor(options: ContextResolverOptions = {}) {
    this.#map = options.contextMapFile ? readContextMap(options.contextMapFile) : [];
    this.#timeoutMs = options.timeoutMs ?? 3000;
    this.#remote = options.remote;
    this.#maxBytes = options.maxContextBytes ?? 1024 * 1024;
    for (const url of CORE_CONTEXT_URLS) {
      this.#documents.set(
        url,
        Promise.resolve({ contextUrl: null, documentUrl: url, document: CORE_CONTEXT_DOCUMENT }),
      );
    }
    this.#core = this.#build(null);
    this.#core.catch(() => undefined);
  }

  /** The active context for a request: the user context (Link header or body @context) plus the core. */
  resolve(userContext: LdContext | null | undefined): Promise<ActiveContext> {
    if (userContext === null || userContext === undefined) return this.#core;
    this.#countUse(userContext);
    if (typeof userContext === 'string' && CORE_CONTEXT_URLS.includes(userContext)) return this.#core;
    const key = JSON.stringify(userContext);
    let p = this.#active.get(key);
    if (!p) {
      p = this.#build(userContext);
      this.#active.set(key, p);
      // Failures are not cached: a context that was unreachable may come back.
      p.catch(() => this.#active.delete(key));
      if (this.#active.size > 1000) {
        const oldest = this.#active.keys().next().value;
        if (oldest !== undefined) this.#active.delete(oldest);
      }
    }
    return p;
  }

  /** The core context alone. */
  core(): Promise<ActiveContext> {
    return this.#core;
  }

  async #build(userContext: LdContext | null): Promise<ActiveContext> {
    validateContextShape(userContext);
    const list: (string | Record<string, unknown>)[] =
      userContext === null ? [] : Array.isArray(userContext) ? [...userContext] : [userContext];
    list.push(CORE_CONTEXT_URL);
    let processed: JsonLdActiveContext;
    try {
      const initial = jsonldContext.getInitialContext({});
      processed = (await (jsonld as unknown as JsonLdProcessor).processContext(
        initial,
        list as never,
        {
          documentLoader: (url: string) => this.loadDocument(url),
        } as never,
      )) as unknown as JsonLdActiveContext;
    } catch (e) {
      throw toContextError(e);
    }
    const expanded = new Map<string, string>();
    const compacted = new Map<string, string>();
    return {
      userContext,
      echo: userContext ?? CORE_CONTEXT_URL,
      expandTerm(term: string): string {
        let iri = expanded.get(term);
        if (iri === undefined) {
          const v = jsonldContext.expandIri(processed, term, { vocab: true }, {});
          iri = typeof v === 'string' ? v : term;
          if (expanded.size < 100_000) expanded.set(term, iri);
        }
        return iri;
      },
      compactIri(iri: string): string {
        let term = compacted.get(iri);
        if (term === undefined) {
          const v = jsonldCompact.compactIri({ activeCtx: processed, iri, relativeTo: { vocab: true } });
          term = typeof v === 'string' ? v : iri;
          if (compacted.size < 100_000) compacted.set(iri, term);
        }
        return term;
      },
    };
  }

  #hosted: ((id: string) => Promise<unknown | undefined>) | undefined;

  /**
   * Where @contexts hosted by this broker come from (POST /jsonldContexts): URLs ending in
   * `/ngsi-ld/v1/jsonldContexts/{id}`, on whatever host, are read through it and never fetched.
   */
  setHostedLoader(load: (id: string) => Promise<unknown | undefined>): void {
    this.#hosted = load;
  }

  /** Forgets a hosted context (deleted), and every active context built with it. */
  forgetHosted(id: string): void {
    for (const url of [...this.#documents.keys()]) if (hostedIdOf(url) === id) this.#documents.delete(url);
    this.#active.clear();
  }

  #countUse(userContext: LdContext): void {
    const now = new Date().toISOString();
    for (const c of Array.isArray(userContext) ? userContext : [userContext]) {
      if (typeof c !== 'string') continue;
      const key = usageKey(c);
      const u = this.#usage.get(key);
      if (u) {
        u.numberOfHits++;
        u.lastUsage = now;
      } else if (this.#usage.size < 10_000) {
        this.#usage.set(key, { numberOfHits: 1, lastUsage: now });
      }
    }
  }

  /** How often requests on this instance named a context URL (a hosted one by any host), if ever. */
  usageOf(url: string): ContextUsage | undefined {
    const u = this.#usage.get(usageKey(url));
    return u ? { ...u } : undefined;
  }

  /** How often requests on this instance named a hosted context, if ever. */
  usageOfHosted(id: string): ContextUsage | undefined {
    const u = this.#usage.get(`hosted:${id}`);
    return u ? { ...u } : undefined;
  }

  /** A remote context held in the cache (the core context is always there): its document and since when. */
  async cached(url: string): Promise<{ document: unknown; createdAt: string } | undefined> {
    if (CORE_CONTEXT_URLS.includes(url)) {
      return { document: CORE_CONTEXT_DOCUMENT, createdAt: this.#startedAt };
    }
    const p = hostedIdOf(url) === undefined ? this.#documents.get(url) : undefined;
    if (!p) return undefined;
    try {
      const doc = await p;
      return { document: doc.document, createdAt: this.#cachedAt.get(url) ?? this.#startedAt };
    } catch {
      return undefined;
    }
  }

  /** Drops a remote context from the cache (it is fetched again when next used). */
  evict(url: string): boolean {
    if (CORE_CONTEXT_URLS.includes(url) || !this.#documents.has(url)) return false;
    this.#documents.delete(url);
    this.#cachedAt.delete(url);
    this.#active.clear();
    return true;
  }

  /**
   * Fetches a cached remote context again (clause 5.13.5, `reload`): the new document replaces the cached
   * one; when it cannot be had the cached one stays and LdContextNotAvailable is thrown.
   */
  async reload(url: string): Promise<void> {
    if (CORE_CONTEXT_URLS.includes(url)) return;
    const doc = await this.#fetchDocument(url);
    this.#documents.set(url, Promise.resolve(doc));
    this.#cachedAt.set(url, new Date().toISOString());
    this.#active.clear();
  }

  /** The remote contexts held in the cache (URL and whether it came from the offline map). */
  cachedUrls(): string[] {
    return [...this.#documents.keys()].filter(
      (u) => !CORE_CONTEXT_URLS.includes(u) && hostedIdOf(u) === undefined,
    );
  }

  /** The document loader given to jsonld: built-in core, then the map, then the network (cached). */
  loadDocument(url: string): Promise<RemoteDocument> {
    let p = this.#documents.get(url);
    if (!p) {
      p = this.#fetchDocument(url);
      this.#documents.set(url, p);
      p.then(
        () => this.#cachedAt.set(url, new Date().toISOString()),
        () => this.#documents.delete(url),
      );
    }
    return p;
  }

  async #fetchDocument(url: string): Promise<RemoteDocument> {
    const hostedId = hostedIdOf(url);
    if (hostedId !== undefined && this.#hosted) {
      const document = await this.#hosted(hostedId);
      if (document === undefined) {
        throw new AppError('CONTEXT_LDCONTEXT_NOT_AVAILABLE', `@context ${url}: no such hosted context`, {
          url,
        });
      }
      return { contextUrl: null, documentUrl: url, document };
    }
    for (const entry of this.#map) {
      const m = entry.pattern.exec(url);
      if (!m) continue;
      const file = m[1] ? entry.file.replace('<X>', m[1]) : entry.file;
      try {
        return { contextUrl: null, documentUrl: url, document: JSON.parse(readFileSync(file, 'utf8')) };
      } catch (e) {
        throw new AppError(
          'CONTEXT_LDCONTEXT_NOT_AVAILABLE',
          `@context ${url}: mapped file is unreadable`,
          {
            url,
          },
          { cause: e },
        );
      }
    }
    if (!/^https?:\/\//.test(url)) {
      throw new AppError('CONTEXT_LDCONTEXT_NOT_AVAILABLE', `@context "${url}" is not an http(s) URL`, {
        url,
      });
    }
    if (!this.#remote) {
      throw new AppError(
        'CONTEXT_LDCONTEXT_NOT_AVAILABLE',
        `@context ${url} is not built in, not hosted here and not in the offline map, and remote @context fetching is off: to use it, ${HOW_TO_ALLOW}`,
        { url },
      );
    }
    let text: string;
    try {
      text = await egressGet(this.#remote, url, {
        timeoutMs: this.#timeoutMs,
        maxBytes: this.#maxBytes,
        accept: 'application/ld+json, application/json;q=0.9',
      });
    } catch (e) {
      if (e instanceof AppError && e.code === 'EGRESS_DESTINATION_REFUSED') {
        throw new AppError(
          'CONTEXT_LDCONTEXT_NOT_AVAILABLE',
          `@context ${url} is not fetched: ${e.details?.reason ?? e.message}; to use it, ${HOW_TO_ALLOW}`,
          { url },
          { cause: e },
        );
      }
      const why = String(e instanceof Error ? e.message : e);
      throw new AppError(
        'CONTEXT_LDCONTEXT_NOT_AVAILABLE',
        `@context ${url} cannot be retrieved: ${why}`,
        { url },
        {
          cause: e,
        },
      );
    }
    if (text.length > this.#maxBytes) {
      throw new AppError(
        'CONTEXT_LDCONTEXT_NOT_AVAILABLE',
        `@context ${url} is larger than ${this.#maxBytes} bytes`,
        {
          url,
        },
      );
    }
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch {
      throw new AppError('CONTEXT_LDCONTEXT_NOT_AVAILABLE', `@context ${url} is not JSON`, { url });
    }
    if (document === null || typeof document !== 'object' || !('@context' in document)) {
      throw new AppError('CONTEXT_LDCONTEXT_NOT_AVAILABLE', `${url} is not a JSON-LD context document`, {
        url,
      });
    }
    return { contextUrl: null, documentUrl: url, document };
  }
}

const HOSTED_RE = /\/ngsi-ld\/v1\/jsonldContexts\/([A-Za-z0-9._~:-]+)$/;

function usageKey(url: string): string {
  const hosted = hostedIdOf(url);
  return hosted === undefined ? url : `hosted:${hosted}`;
}

/** The id of a context hosted by this broker, from its URL (any host), or undefined. */
export function hostedIdOf(url: string): string | undefined {
  const m = HOSTED_RE.exec(url);
  return m ? decodeURIComponent(m[1]!) : undefined;
}

function validateContextShape(ctx: LdContext | null): void {
  if (ctx === null) return;
  const items = Array.isArray(ctx) ? ctx : [ctx];
  for (const c of items) {
    if (typeof c === 'string') {
      if (!/^[a-z][a-z0-9+.-]*:/i.test(c)) {
        throw new AppError('CONTEXT_INVALID_JSONLD', `@context entry "${c}" is not an absolute URL`);
      }
    } else if (c === null || typeof c !== 'object' || Array.isArray(c)) {
      throw new AppError('CONTEXT_INVALID_JSONLD', '@context must be a URL, an object or an array of them');
    }
  }
}

function toContextError(e: unknown): AppError {
  if (e instanceof AppError) return e;
  // jsonld wraps loader errors; find ours in the cause chain.
  let cur: unknown = e;
  for (let i = 0; i < 6 && cur; i++) {
    if (cur instanceof AppError) return cur;
    const c = cur as { cause?: unknown; details?: { cause?: unknown } };
    cur = c.details?.cause ?? c.cause;
  }
  const name = (e as { name?: string; message?: string })?.name;
  const message = (e as { message?: string })?.message ?? String(e);
  const code = (e as { details?: { code?: string } })?.details?.code;
  if (code === 'loading remote context failed' || code === 'loading document failed') {
    return new AppError('CONTEXT_LDCONTEXT_NOT_AVAILABLE', `@context cannot be retrieved: ${message}`);
  }
  return new AppError('CONTEXT_INVALID_JSONLD', `invalid @context: ${code ?? name ?? 'error'}: ${message}`);
}
