/**
 * Passwords (argon2id) and API tokens (random secrets, stored as sha256: they carry 256 bits of
 * entropy, so a fast hash is enough and lookups stay one indexed query).
 */
import { createHash, randomBytes } from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';
import { AppError } from '../../kernel/errors.ts';

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 256;

// OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane. Algorithm 2 is Argon2id (a const enum upstream).
const ARGON2 = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function checkPasswordPolicy(password: string, username?: string): void {
  if (typeof password !== 'string' || password.length < PASSWORD_MIN_LENGTH) {
    throw new AppError('ACCESS_WEAK_PASSWORD', `a password needs at least ${PASSWORD_MIN_LENGTH} characters`);
  }
  if (password.length > PASSWORD_MAX_LENGTH) {
    throw new AppError('ACCESS_WEAK_PASSWORD', `a password has at most ${PASSWORD_MAX_LENGTH} characters`);
  }
  if (username && password.toLowerCase().includes(username.toLowerCase())) {
    throw new AppError('ACCESS_WEAK_PASSWORD', 'a password must not contain the username');
  }
  if (new Set(password).size < 4) {
    throw new AppError('ACCESS_WEAK_PASSWORD', 'a password needs at least 4 different characters');
  }
}

export function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2);
}

export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  try {
    return await verify(stored, password);
  } catch {
    return false;
  }
}

let dummyHash: Promise<string> | undefined;
/** Spends the time of one verification when the user does not exist, so timing does not reveal usernames. */
export async function burnPasswordCheck(password: string): Promise<void> {
  dummyHash ??= hashPassword('not-a-real-password-just-timing');
  await verifyPassword(await dummyHash, password);
}

/** A new password for accounts created without one (the first admin): 24 characters of base64url. */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}

/** `sc_` + 43 characters of base64url (256 bits): the prefix lets secret scanners find leaked tokens. */
export function newApiTokenSecret(): string {
  return `sc_${randomBytes(32).toString('base64url')}`;
}

export function isApiTokenSecret(s: string): boolean {
  return /^sc_[A-Za-z0-9_-]{43}$/.test(s);
}

export function hashApiToken(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** 32 random bytes for HS256, base64url. */
export function newJwtSecret(): string {
  return randomBytes(32).toString('base64url');
}
