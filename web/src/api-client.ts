/**
 * The platform's HTTP APIs as the app uses them: a bearer token on every call, RFC 9457 problem+json
 * errors turned into ApiError with the server's `detail`, and 404s on whole features reported as "not
 * configured" by the callers.
 */

export class ApiError extends Error {
  readonly status: number;
  readonly code: string | undefined;
  constructor(status: number, message: string, code?: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export interface ApiClientOptions {
  baseUrl?: string;
  /** Called when the server says the token is no longer good (401). */
  onUnauthorized?: () => void;
  fetchImpl?: typeof fetch;
}

export class ApiClient {
  token: string | null = null;
  /** A call that replaces the token (a password change) while it runs. */
  private replacing: Promise<unknown> | undefined;
  private readonly baseUrl: string;
  private readonly onUnauthorized: (() => void) | undefined;
  private readonly fetchImpl: typeof fetch;

  constructor(opts: ApiClientOptions = {}) {
    this.baseUrl = opts.baseUrl ?? '';
    this.onUnauthorized = opts.onUnauthorized;
    this.fetchImpl = opts.fetchImpl ?? globalThis.fetch.bind(globalThis);
  }

  async request<T>(
    method: string,
    path: string,
    opts: { body?: unknown; accept?: string; signal?: AbortSignal } = {},
  ): Promise<T> {
    const headers: Record<string, string> = { accept: opts.accept ?? 'application/json' };
    const sent = this.token;
    if (sent) headers.authorization = `Bearer ${sent}`;
    let body: string | undefined;
    if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    let res: Response;
    try {
      res = await this.fetchImpl(this.baseUrl + path, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw new ApiError(0, 'the platform cannot be reached; check the network');
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const p = (parsed ?? {}) as { detail?: unknown; title?: unknown; code?: unknown };
      const message =
        typeof p.detail === 'string' && p.detail
          ? p.detail
          : typeof p.title === 'string'
            ? p.title
            : `${res.status} ${res.statusText}`;
      if (res.status === 401 && sent && this.onUnauthorized) {
        // A call made with a token that a password change is replacing: the session goes on with the new one.
        if (this.replacing) await this.replacing.catch(() => {});
        if (this.token === sent) this.onUnauthorized();
      }
      throw new ApiError(res.status, message, typeof p.code === 'string' ? p.code : undefined);
    }
    return parsed as T;
  }

  /**
   * Runs a call that replaces the token (a password change ends the sessions of the old one): a 401 that a
   * call made with the old token meets meanwhile is not the end of this session, once `fn` set the new token.
   */
  async replacingToken<T>(fn: () => Promise<T>): Promise<T> {
    const running = fn();
    this.replacing = running;
    try {
      return await running;
    } finally {
      if (this.replacing === running) this.replacing = undefined;
    }
  }

  get<T>(path: string, accept?: string): Promise<T> {
    return this.request<T>('GET', path, accept ? { accept } : {});
  }
  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, { body });
  }
  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { body });
  }
  delete(path: string): Promise<void> {
    return this.request<void>('DELETE', path);
  }
}

/**
 * True when the error means the feature is not there on this platform: no such HTTP route (the surface
 * is not mounted, e.g. routing without a road network) or the service says it is unavailable.
 */
export function isNotConfigured(err: unknown): boolean {
  if (!(err instanceof ApiError)) return false;
  if (err.status === 404) return err.code === undefined || err.code === 'PLATFORM_ROUTE_NOT_FOUND';
  return err.status === 501 || err.status === 503;
}
