import { describe, expect, it } from 'vitest';
import { AppError } from '../kernel/errors.ts';
import { loadConfig, redactUrl } from './config.ts';

describe('configuration', () => {
  it('has embedded defaults: port 8080, ./data, no PostgreSQL, no NATS', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.dataDir.endsWith('/data')).toBe(true);
    expect(c.databaseUrl).toBeUndefined();
    expect(c.natsUrl).toBeUndefined();
    expect(c.bodyLimit).toBe(1_048_576);
  });

  it('reads PORT, SAFECITY_DATA_DIR, DATABASE_URL and NATS_URL', () => {
    const c = loadConfig({
      PORT: '9090',
      SAFECITY_DATA_DIR: '/tmp/x',
      DATABASE_URL: 'postgres://u@h:5432/db',
      NATS_URL: 'nats://127.0.0.1:4222',
    });
    expect([c.port, c.dataDir, c.databaseUrl, c.natsUrl]).toEqual([
      9090,
      '/tmp/x',
      'postgres://u@h:5432/db',
      'nats://127.0.0.1:4222',
    ]);
  });

  it('lists every problem at once, naming the variable and what to fix', () => {
    try {
      loadConfig({
        PORT: 'eighty',
        DATABASE_URL: 'mysql://x',
        SAFECITY_JWT_SECRET: 'short',
        LOG_LEVEL: 'loud',
      });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(AppError);
      const msg = (e as AppError).message;
      expect(msg).toMatch(/PORT: "eighty" must be a whole number/);
      expect(msg).toMatch(/DATABASE_URL: .* must be a URL starting with postgres:/);
      expect(msg).toMatch(/SAFECITY_JWT_SECRET: must be at least 32 characters/);
      expect(msg).toMatch(/LOG_LEVEL/);
    }
  });

  it('never repeats a password from a bad URL in its message', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://u:hunter2@h/db' })).toThrow(/\*\*\*/);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://u:hunter2@h/db' })).not.toThrow(/hunter2/);
    expect(redactUrl('postgres://u:pw@h/db')).toBe('postgres://u:***@h/db');
  });

  it('reads the history retention in days, and refuses nonsense', () => {
    expect(loadConfig({}).historyRetentionDays).toBeUndefined();
    expect(loadConfig({ SAFECITY_HISTORY_RETENTION_DAYS: '30' }).historyRetentionDays).toBe(30);
    expect(() => loadConfig({ SAFECITY_HISTORY_RETENTION_DAYS: 'forever' })).toThrow(
      /SAFECITY_HISTORY_RETENTION_DAYS/,
    );
  });

  it('requires OIDC issuer and JWKS URL together', () => {
    expect(() => loadConfig({ SAFECITY_OIDC_ISSUER: 'https://idp' })).toThrow(/must be set together/);
    const c = loadConfig({ SAFECITY_OIDC_ISSUER: 'https://idp', SAFECITY_OIDC_JWKS_URL: 'https://idp/jwks' });
    expect(c.oidc).toEqual({
      issuer: 'https://idp',
      jwksUrl: 'https://idp/jwks',
      orgClaim: 'org',
      rolesClaim: 'roles',
    });
  });
});
