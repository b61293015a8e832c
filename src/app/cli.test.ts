import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, describe, expect, it } from 'vitest';
import { buildCli } from './cli.ts';

const ROOT = resolve(import.meta.dirname, '../..');

/** Runs the CLI in this process (PGlite opens in ~2 s; a child process would pay tsx start-up too). */
async function run(
  args: string[],
  env: Record<string, string>,
): Promise<{ out: string[]; exitCode: number }> {
  const out: string[] = [];
  const saved = { ...process.env };
  Object.assign(process.env, env);
  process.exitCode = 0;
  try {
    const program = buildCli((s) => out.push(s));
    program.exitOverride();
    program.configureOutput({ writeOut: (s) => out.push(s), writeErr: (s) => out.push(s) });
    await program.parseAsync(['node', 'safecity', ...args]);
    return { out, exitCode: Number(process.exitCode ?? 0) };
  } finally {
    process.env = saved;
    const code = process.exitCode;
    process.exitCode = 0;
    void code;
  }
}

describe('safecity CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'safecity-cli-'));
  // The embedded preset, whatever the environment says (CI sets DATABASE_URL and NATS_URL).
  const env = { SAFECITY_DATA_DIR: dir, LOG_LEVEL: 'silent', DATABASE_URL: '', NATS_URL: '' };
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs as `npx safecity` and explains every command with --help', () => {
    const top = spawnSync(process.execPath, [join(ROOT, 'bin/safecity.js'), '--help'], { encoding: 'utf8' });
    expect(top.status).toBe(0);
    for (const cmd of ['serve', 'migrate', 'org', 'user', 'token', 'audit', 'roads'])
      expect(top.stdout).toContain(cmd);
    expect(top.stdout).toContain('DATABASE_URL');
    for (const sub of [
      ['org', 'add'],
      ['user', 'add'],
      ['token', 'create'],
      ['audit', 'verify'],
      ['roads', 'import'],
      ['serve'],
      ['migrate'],
    ]) {
      const r = spawnSync(process.execPath, [join(ROOT, 'bin/safecity.js'), ...sub, '--help'], {
        encoding: 'utf8',
      });
      expect(r.status, sub.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/Usage: safecity/);
    }
  });

  it('rejects bad arguments with a message and a non-zero exit', () => {
    const r = spawnSync(
      process.execPath,
      [join(ROOT, 'bin/safecity.js'), 'org', 'add', 'Bad Id!', '--name', 'x', '--kind', 'police'],
      {
        encoding: 'utf8',
      },
    );
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/lowercase letters, digits and dashes/);
    const kind = spawnSync(
      process.execPath,
      [join(ROOT, 'bin/safecity.js'), 'org', 'add', 'x1', '--name', 'x', '--kind', 'pirates'],
      {
        encoding: 'utf8',
      },
    );
    expect(kind.status).not.toBe(0);
    expect(kind.stderr).toMatch(/Allowed choices are police, fire/);
  });

  it('migrates, adds an organisation, a user and a token, and verifies the audit log', async () => {
    expect((await run(['migrate'], env)).out.join('\n')).toMatch(/applied access_0001|schema up to date/);
    expect((await run(['migrate'], env)).out).toEqual(['schema up to date']);
    expect(
      (await run(['org', 'add', 'metro', '--name', 'Metro operator', '--kind', 'transport'], env)).out,
    ).toEqual(['organisation metro (transport) created']);
    const user = await run(['user', 'add', 'alice', '--org', 'metro', '--role', 'operator,analyst'], env);
    expect(user.out[0]).toBe('user alice created in metro with roles operator, analyst');
    expect(user.out[1]).toMatch(/^generated password \(shown once\): \S{12,}$/);
    const token = await run(
      ['token', 'create', '--org', 'metro', '--name', 'gateway-7', '--expires', '30d'],
      env,
    );
    expect(token.out[1]).toMatch(/^secret \(shown once\): sc_\S+$/);
    const verify = await run(['audit', 'verify'], env);
    expect(verify.exitCode).toBe(0);
    expect(verify.out[0]).toMatch(/^audit log intact: \d+ records$/);
    expect(Number(/(\d+) records/.exec(verify.out[0] ?? '')?.[1])).toBeGreaterThanOrEqual(3);
  });

  it('audit verify exits 1 when a record was edited behind the platform’s back', async () => {
    const db = await PGlite.create({ dataDir: join(dir, 'pglite') });
    await db.query(
      `update audit_record set actor_org = 'someone-else' where seq = (select min(seq) from audit_record)`,
    );
    await db.close();
    const verify = await run(['audit', 'verify'], env);
    expect(verify.exitCode).toBe(1);
    expect(verify.out[0]).toMatch(/^AUDIT LOG BROKEN/);
  });
});
