/**
 * Live sessions: connections that outlive the request that authenticated them (SSE streams, MQTT
 * connections). Their credential was checked once, when they opened; this keeps checking it while they last,
 * so that disabling an account, changing or resetting its password, or revoking a token ends them within
 * seconds on every instance:
 *
 * - `access.token.revoked` ends the sessions of that token at once (a revocation is final: nothing to read);
 * - `access.user.changed` re-checks the account's sessions at once against the store, bypassing the caches
 *   (another instance's cache may not have heard of the change yet): a disabled account, or a session token
 *   issued before a password change, fails the check and the session ends; a session opened with the new
 *   password's token holds;
 * - every `recheckMs` each session is checked again through the ordinary (cached) path: the fallback when an
 *   event was lost, and what ends a session whose token expired or refreshes read keys that changed.
 */
import { AppError } from '../../kernel/errors.ts';
import type { EventBus, Subscription } from '../../ports/event-bus.ts';
import type { Principal } from './access-types.ts';

export const ACCOUNT_CHANGED = 'access.user.changed';
export const TOKEN_REVOKED = 'access.token.revoked';

/** Why a session ended: an error code of docs/errors.md and a sentence for the client. */
export interface SessionEnd {
  code: string;
  message: string;
}

/**
 * Checks an `Authorization` header as it is now. `fresh` reads the account from the store rather than from
 * the short cache of sessions (what an announced change needs).
 */
export type SessionAuthenticate = (authorization: string, opts?: { fresh?: boolean }) => Promise<Principal>;

export interface OpenSession {
  /** The header the connection authenticated with: re-checked as it is. */
  authorization: string;
  principal: Principal;
  /** The principal as a re-check found it (its read keys may have changed). */
  refreshed?: ((principal: Principal) => void) | undefined;
  /** The session is over: end the connection now. Called at most once. */
  ended(reason: SessionEnd): void;
}

export interface LiveSession {
  /** The principal as the last successful check found it. */
  readonly principal: Principal;
  readonly active: boolean;
  /**
   * True while the credential holds. Waits for a check in flight, so what arrives on the connection between
   * an announced change and its verdict (an MQTT publish) is decided by the verdict.
   */
  valid(): Promise<boolean>;
  /** The connection closed on its own: stop watching it. */
  close(): void;
}

export interface LiveSessionsOptions {
  authenticate: SessionAuthenticate;
  /** How often each session is checked again without an event (default 10 s). */
  recheckMs?: number | undefined;
}

class Session implements LiveSession {
  principal: Principal;
  active = true;
  readonly #input: OpenSession;
  readonly #authenticate: SessionAuthenticate;
  readonly #forget: (s: Session) => void;
  readonly #inflight = new Set<Promise<void>>();
  readonly #timer: NodeJS.Timeout;

  constructor(
    input: OpenSession,
    authenticate: SessionAuthenticate,
    forget: (s: Session) => void,
    recheckMs: number,
  ) {
    this.#input = input;
    this.#authenticate = authenticate;
    this.#forget = forget;
    this.principal = input.principal;
    this.#timer = setInterval(() => void this.check(false), recheckMs);
    this.#timer.unref();
  }

  valid(): Promise<boolean> {
    if (!this.active) return Promise.resolve(false);
    if (this.#inflight.size === 0) return Promise.resolve(true);
    return Promise.all([...this.#inflight]).then(() => this.active);
  }

  /** Checks the credential again; a failure ends the session, a success refreshes its principal. */
  check(fresh: boolean): Promise<void> {
    if (!this.active) return Promise.resolve();
    const run = this.#authenticate(this.#input.authorization, { fresh }).then(
      (p) => {
        if (!this.active) return;
        this.principal = p;
        this.#input.refreshed?.(p);
      },
      (e: unknown) => this.end(endOf(e)),
    );
    const tracked = run.finally(() => this.#inflight.delete(tracked));
    this.#inflight.add(tracked);
    return tracked;
  }

  end(reason: SessionEnd): void {
    if (!this.active) return;
    this.close();
    try {
      this.#input.ended(reason);
    } catch {
      // The connection is already gone: nothing left to end.
    }
  }

  close(): void {
    this.active = false;
    clearInterval(this.#timer);
    this.#forget(this);
  }
}

export class LiveSessions {
  readonly #authenticate: SessionAuthenticate;
  readonly #recheckMs: number;
  readonly #sessions = new Set<Session>();

  constructor(opts: LiveSessionsOptions) {
    this.#authenticate = opts.authenticate;
    this.#recheckMs = opts.recheckMs ?? 10_000;
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** Starts watching a connection that just authenticated. */
  open(input: OpenSession): LiveSession {
    const session = new Session(input, this.#authenticate, (s) => this.#sessions.delete(s), this.#recheckMs);
    this.#sessions.add(session);
    return session;
  }

  /** Ends at once every session opened with this API token. */
  tokenRevoked(tokenId: string): void {
    for (const s of [...this.#sessions]) {
      if (s.principal.tokenId === tokenId) {
        s.end({ code: 'AUTH_TOKEN_REVOKED', message: 'this API token was revoked' });
      }
    }
  }

  /** Checks at once, against the store, every session of this account; those that no longer hold end. */
  async accountChanged(userId: string): Promise<void> {
    await Promise.all(
      [...this.#sessions].filter((s) => s.principal.userId === userId).map((s) => s.check(true)),
    );
  }

  /** Follows the announcements of every instance (broadcast: each instance watches its own connections). */
  listen(bus: EventBus): Promise<Subscription> {
    return bus.subscribe({ types: [ACCOUNT_CHANGED, TOKEN_REVOKED], mode: 'broadcast' }, async (event) => {
      const d = (event.data ?? {}) as { id?: unknown };
      if (typeof d.id !== 'string') return;
      if (event.type === TOKEN_REVOKED) this.tokenRevoked(d.id);
      else await this.accountChanged(d.id);
    });
  }

  /** Stops watching every session (shutdown: the connections are being closed anyway). */
  close(): void {
    for (const s of [...this.#sessions]) s.close();
  }
}

function endOf(e: unknown): SessionEnd {
  if (e instanceof AppError) return { code: e.code, message: e.message };
  // A credential that cannot be checked is not trusted: the client reconnects and is checked anew.
  return { code: 'AUTH_TOKEN_INVALID', message: 'the credential could not be checked again' };
}
