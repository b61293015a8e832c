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

  it('reads the egress lists, with the default allow-list and remote @contexts off when unset', () => {
    const d = loadConfig({});
    expect([
      d.egressAllow.name,
      d.egressAllow.entries.map((e) => e.text),
      d.egressDeny.entries,
      d.contextAllow,
    ]).toEqual(['SAFECITY_EGRESS_ALLOW (unset: public, private)', ['public', 'private'], [], undefined]);
    const c = loadConfig({
      SAFECITY_EGRESS_ALLOW: 'https:, *.city.example, 10.20.0.0/16, loopback',
      SAFECITY_EGRESS_DENY: 'http:, 10.20.99.0/24',
      SAFECITY_CONTEXT_ALLOW: 'smart-data-models.github.io, *.city.example',
    });
    expect(
      [c.egressAllow, c.egressDeny, c.contextAllow].map((l) => [l?.name, l?.entries.map((e) => e.kind)]),
    ).toEqual([
      ['SAFECITY_EGRESS_ALLOW', ['scheme', 'host', 'range', 'class']],
      ['SAFECITY_EGRESS_DENY', ['scheme', 'range']],
      ['SAFECITY_CONTEXT_ALLOW', ['host', 'host']],
    ]);
  });

  it('stops the start on a bad egress entry, naming the variable, the entry and the rule', () => {
    try {
      loadConfig({
        SAFECITY_EGRESS_ALLOW: 'https:, file:, 169.254.169.254',
        SAFECITY_EGRESS_DENY: '10.0.0.0/40',
        SAFECITY_CONTEXT_ALLOW: 'https:',
      });
      expect.unreachable();
    } catch (e) {
      expect((e as AppError).details?.problems).toEqual([
        'SAFECITY_EGRESS_ALLOW: entry "file:" is not a scheme the platform connects with (http:, https:, mqtt:, mqtts:); file:, data: and other schemes are always refused',
        'SAFECITY_EGRESS_ALLOW: entry "169.254.169.254" is cloud metadata and always refused, whatever the allow-list says',
        'SAFECITY_EGRESS_DENY: entry "10.0.0.0/40" is not an IPv4 or IPv6 address or CIDR range (e.g. 10.20.0.0/16, 2001:db8::/32)',
        'SAFECITY_CONTEXT_ALLOW: entry "https:" is a scheme; this list names hosts only',
      ]);
    }
  });
});
