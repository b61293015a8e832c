/**
 * Turns an `Authorization: Bearer …` header into a Principal: a session JWT we issued (HS256), an API
 * token (`sc_…`), or — when OIDC is configured — a JWT of the external issuer checked against its JWKS.
 */
import {
  createRemoteJWKSet,
  decodeJwt,
  type JWTPayload,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
} from 'jose';
import { AppError } from '../../kernel/errors.ts';
import type { AccessService } from './access-service.ts';
import { type Principal, ROLES, type Role, type User } from './access-types.ts';
import { LoginThrottle, type LoginThrottleOptions } from './login-throttle.ts';

export interface OidcOptions {
  issuer: string;
  jwksUrl: string;
  audience?: string | undefined;
  /** The claim naming the organisation (default `org`). */
  orgClaim?: string | undefined;
  /** The claim holding the roles: an array or a space-separated string (default `roles`). */
  rolesClaim?: string | undefined;
  /** The claim giving the username of accounts created on first sight (default `preferred_username`). */
  usernameClaim?: string | undefined;
}

export interface AuthenticatorOptions {
  service: AccessService;
  /** The HS256 secret (SAFECITY_JWT_SECRET); unset: generated once and kept in the store. */
  jwtSecret?: string | undefined;
  /** Session token lifetime in seconds (default 3600). */
  tokenTtlSeconds?: number | undefined;
  oidc?: OidcOptions | undefined;
  /** Failed-login limits per username (default 10 per 15 minutes). */
  loginThrottle?: LoginThrottleOptions | undefined;
}

export interface LoginResult {
  token: string;
  tokenType: 'Bearer';
  expiresAt: string;
  principal: Principal;
}

export interface AuthenticateOptions {
  /**
   * Read the account from the store, not from the short cache of sessions: a live session re-checked because
   * an instance announced a change to its account must not be judged on what this instance cached before.
   */
  fresh?: boolean | undefined;
}

export interface Authenticator {
  authenticate(authorization: string | undefined, opts?: AuthenticateOptions): Promise<Principal>;
  /** Opens a session; `newPassword` replaces the password first (required after an administrator's reset). */
  login(username: string, password: string, newPassword?: string): Promise<LoginResult>;
  /** A session token for an account (tests, the CLI). */
  issueToken(user: Pick<User, 'id' | 'orgId' | 'roles' | 'username'>, ttlSeconds?: number): Promise<string>;
}

const ISSUER = 'safecity-hub';
const AUDIENCE = 'safecity-hub';

export function createAuthenticator(opts: AuthenticatorOptions): Authenticator {
  const { service } = opts;
  const ttl = opts.tokenTtlSeconds ?? 3600;
  let key: Promise<Uint8Array> | undefined;
  const hsKey = () => {
    key ??= (async () => new TextEncoder().encode(opts.jwtSecret ?? (await service.accounts.jwtSecret())))();
    return key;
  };
  const oidc = opts.oidc;
  const throttle = new LoginThrottle(opts.loginThrottle);
  const jwks = oidc ? createRemoteJWKSet(new URL(oidc.jwksUrl), { cooldownDuration: 30_000 }) : undefined;

  async function issueToken(
    user: Pick<User, 'id' | 'orgId' | 'roles' | 'username'>,
    ttlSeconds = ttl,
  ): Promise<string> {
    const now = Math.floor(service.clock.now().getTime() / 1000);
    // `iat` has whole seconds; `iat_ms` tells a session opened just after a password change from one just before.
    return new SignJWT({
      org: user.orgId,
      roles: user.roles,
      name: user.username,
      iat_ms: service.clock.now().getTime(),
    })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(user.id)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + ttlSeconds)
      .sign(await hsKey());
  }

  async function verifyLocal(token: string, fresh: boolean): Promise<Principal> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, await hsKey(), {
        algorithms: ['HS256'],
        issuer: ISSUER,
        audience: AUDIENCE,
        currentDate: service.clock.now(),
      }));
    } catch (e) {
      throw joseToAppError(e);
    }
    if (typeof payload.sub !== 'string')
      throw new AppError('AUTH_TOKEN_INVALID', 'the token names no subject');
    let user: User;
    try {
      user = fresh
        ? await service.accounts.getUserById(payload.sub)
        : await service.accounts.getUserForSession(payload.sub);
    } catch {
      throw new AppError('AUTH_TOKEN_INVALID', 'the token names an account that does not exist');
    }
    // Sessions opened before a password change or reset are over: whoever knew the old password is out.
    const issuedMs = typeof payload.iat_ms === 'number' ? payload.iat_ms : (payload.iat ?? 0) * 1000;
    if (user.sessionsSince && issuedMs < Date.parse(user.sessionsSince)) {
      throw new AppError('AUTH_TOKEN_EXPIRED', 'this session ended when the password changed; log in again');
    }
    // The account as it is now, not as it was at login: a disabled account or a removed role acts at once.
    return service.principalFor(user);
  }

  async function verifyExternal(token: string, o: OidcOptions): Promise<Principal> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks as ReturnType<typeof createRemoteJWKSet>, {
        issuer: o.issuer,
        ...(o.audience ? { audience: o.audience } : {}),
        currentDate: service.clock.now(),
      }));
    } catch (e) {
      throw joseToAppError(e);
    }
    if (typeof payload.sub !== 'string' || payload.sub.length === 0) {
      throw new AppError('AUTH_TOKEN_INVALID', 'the external token names no subject');
    }
    const orgId = claim(payload, o.orgClaim ?? 'org');
    if (typeof orgId !== 'string' || orgId.length === 0) {
      throw new AppError(
        'AUTH_TOKEN_INVALID',
        `the external token has no "${o.orgClaim ?? 'org'}" claim naming the organisation`,
      );
    }
    const rawRoles = claim(payload, o.rolesClaim ?? 'roles');
    const list = Array.isArray(rawRoles)
      ? rawRoles
      : typeof rawRoles === 'string'
        ? rawRoles.split(/[\s,]+/)
        : [];
    const roles = list.filter(
      (r): r is Role => typeof r === 'string' && (ROLES as readonly string[]).includes(r),
    );
    const name = claim(payload, o.usernameClaim ?? 'preferred_username');
    const user = await service.accounts.externalUser({
      issuer: o.issuer,
      subject: payload.sub,
      username: typeof name === 'string' ? name : payload.sub,
      orgId,
      roles,
    });
    return service.principalFor(user);
  }

  return {
    issueToken,
    async authenticate(authorization, opts = {}) {
      if (!authorization) throw new AppError('AUTH_TOKEN_MISSING', 'send Authorization: Bearer <token>');
      const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (!m?.[1])
        throw new AppError('AUTH_TOKEN_INVALID', 'the Authorization header must be "Bearer <token>"');
      const token = m[1];
      if (token.startsWith('sc_')) {
        const account = await service.accounts.resolveApiToken(token);
        return { ...(await service.principalFor(account)), tokenId: account.tokenId };
      }
      let iss: string | undefined;
      try {
        iss = decodeJwt(token).iss;
      } catch {
        throw new AppError('AUTH_TOKEN_INVALID', 'the token is neither a JWT nor an API token');
      }
      if (oidc && iss === oidc.issuer) return verifyExternal(token, oidc);
      return verifyLocal(token, opts.fresh === true);
    },
    async login(username, password, newPassword) {
      const now = service.clock.now().getTime();
      throttle.check(username, now);
      let user: User;
      try {
        user = await service.accounts.verifyLogin(username, password);
      } catch (e) {
        if (e instanceof AppError && e.code === 'AUTH_INVALID_CREDENTIALS') throttle.failed(username, now);
        throw e;
      }
      throttle.succeeded(username);
      // The first login after an administrator's reset is marked in the audit log: if the account's owner did
      // not make it, its organisation sees who could have (the reset names the administrator).
      const afterReset = user.mustChangePassword;
      if (newPassword !== undefined) {
        await service.accounts.changeOwnPassword(
          { userId: user.id, orgId: user.orgId, roles: user.roles },
          password,
          newPassword,
        );
        user = await service.accounts.getUserById(user.id);
      } else if (user.mustChangePassword) {
        throw new AppError(
          'AUTH_PASSWORD_CHANGE_REQUIRED',
          'an administrator reset this password: log in again with newPassword set to a password of your own',
        );
      }
      const principal = await service.principalFor(user);
      await service.accounts.recordLogin(user, afterReset ? { afterReset: true } : {});
      const token = await issueToken(user);
      const expiresAt = new Date(service.clock.now().getTime() + ttl * 1000).toISOString();
      return { token, tokenType: 'Bearer', expiresAt, principal };
    },
  };
}

function claim(payload: JWTPayload, path: string): unknown {
  // Nested claims by dots (Keycloak: `realm_access.roles`).
  let cur: unknown = payload;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function joseToAppError(e: unknown): AppError {
  if (e instanceof AppError) return e;
  if (e instanceof joseErrors.JWTExpired)
    return new AppError('AUTH_TOKEN_EXPIRED', 'the token has expired; log in again');
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new AppError(
      'AUTH_TOKEN_INVALID',
      'the token signature does not verify (forged or signed with another key)',
    );
  }
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    return new AppError(
      'AUTH_TOKEN_INVALID',
      `the token's "${e.claim}" claim is not acceptable: ${e.reason}`,
    );
  }
  if (e instanceof joseErrors.JWKSNoMatchingKey)
    return new AppError('AUTH_TOKEN_INVALID', 'no key of the issuer matches the token');
  if (e instanceof joseErrors.JOSEError)
    return new AppError('AUTH_TOKEN_INVALID', `invalid token (${e.code})`);
  return new AppError('AUTH_TOKEN_INVALID', 'invalid token', undefined, { cause: e });
}
