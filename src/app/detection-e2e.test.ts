/**
 * Detection end to end with the platform's own engine (src/modules/detection through detection-engine.ts):
 * a threshold rule created over the API, a measurement ingested over NGSI-LD that crosses it, and the Alert
 * entity that results — its marking, evidence and who sees it; the rule language's errors on /api/rules; a
 * dry-run over the recorded history; and `safecity rules validate|test`. PGlite, and PostgreSQL + NATS when
 * DATABASE_URL and NATS_URL are set.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import { createPlatform, type Platform } from './platform.ts';
import { testRuleFile, validateRuleFile } from './rules-cli.ts';
import { embeddedTestEnv, SERVER_SKIP, seedWorld, serverPresetTestEnv } from './testing.ts';

const ADMIN_PASSWORD = 'long-secret-for-tests';
const PW = 'correct-horse-staple-9';

const THRESHOLD = {
  name: 'Gate 4 crowding',
  kind: 'threshold',
  severity: 'high',
  category: 'crowd',
  match: { types: ['CrowdFlowObserved'], attribute: 'peopleCount' },
  above: 100,
};

function describePlatform(
  label: string,
  envOf: () => Promise<{ env: Record<string, string>; cleanup(): Promise<void> }>,
) {
  describe(`detection end to end (${label})`, () => {
    let platform: Platform;
    let cleanup: () => Promise<void> = async () => {};
    let auth: Record<string, string> = {};
    const files = mkdtempSync(join(tmpdir(), 'safecity-rules-'));

    const send = async (who: string, method: string, url: string, payload?: unknown) => {
      const res = await platform.server.inject({
        method: method as 'GET',
        url,
        headers: {
          authorization: auth[who] as string,
          ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(payload !== undefined ? { payload: JSON.stringify(payload) } : {}),
      });
      return {
        status: res.statusCode,
        body: res.body,
        json: () => res.json() as Record<string, unknown>,
        headers: res.headers,
      };
    };
    const waitFor = async <T>(what: string, fn: () => Promise<T | undefined>, ms = 45_000): Promise<T> => {
      const until = Date.now() + ms;
      for (;;) {
        const got = await fn();
        if (got !== undefined) return got;
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    beforeAll(async () => {
      const { env, cleanup: c } = await envOf();
      cleanup = c;
      platform = await createPlatform(
        loadConfig({ SAFECITY_MQTT_PORT: '0', PORT: '0', SAFECITY_ADMIN_PASSWORD: ADMIN_PASSWORD, ...env }),
        { log: pino({ level: 'silent' }) },
      );
      auth = await seedWorld(platform, ADMIN_PASSWORD, PW, {
        orgs: [
          ['police', 'police'],
          ['energy', 'energy'],
        ],
        users: [
          ['police-op', 'police', 'operator'],
          ['police-viewer', 'police', 'viewer'],
          ['energy-admin', 'energy', 'admin'],
        ],
      });
    }, 180_000);
    afterAll(async () => {
      await platform?.shutdown();
      await cleanup();
      rmSync(files, { recursive: true, force: true });
    });

    it('refuses an invalid rule with the rule language’s field paths, writing nothing', async () => {
      const res = await send('police-op', 'POST', '/api/rules', {
        rule: { ...THRESHOLD, match: { types: ['CrowdFlowObserved'] }, colour: 'red' },
      });
      expect(res.status).toBe(400);
      const problem = res.json();
      expect(problem.code).toBe('DETECTION_RULE_INVALID');
      const paths = (problem.errors as Array<{ path: string }>).map((e) => e.path);
      expect(paths).toEqual(expect.arrayContaining(['/colour']));
      expect(paths.some((p) => p.startsWith('/match'))).toBe(true);
      expect((await send('police-op', 'GET', '/api/rules')).json().items).toEqual([]);
    });

    it('a measurement over the NGSI-LD API crossing a threshold rule raises an Alert with its marking and evidence', async () => {
      const rule = await send('police-op', 'POST', '/api/rules', {
        rule: THRESHOLD,
        marking: { tlp: 'AMBER' },
      });
      expect(rule.status, rule.body).toBe(201);
      const ruleId = rule.json().id as string;
      const id = 'urn:ngsi-ld:CrowdFlowObserved:gate-4';
      const created = await send('police-op', 'POST', '/ngsi-ld/v1/entities', {
        id,
        type: 'CrowdFlowObserved',
        peopleCount: { type: 'Property', value: 40, observedAt: new Date().toISOString() },
        location: { type: 'GeoProperty', value: { type: 'Point', coordinates: [7.4246, 43.7384] } },
        marking: { tlp: 'AMBER+STRICT' },
      });
      expect(created.status, created.body).toBe(201);
      const patched = await send(
        'police-op',
        'PATCH',
        `/ngsi-ld/v1/entities/${encodeURIComponent(id)}/attrs`,
        {
          peopleCount: { type: 'Property', value: 180, observedAt: new Date().toISOString() },
        },
      );
      expect(patched.status, patched.body).toBe(204);
      const alert = await waitFor('the alert', async () => {
        const items = (await send('police-viewer', 'GET', '/api/alerts')).json().items as Array<
          Record<string, unknown>
        >;
        return items.find((a) => a.sourceRule === ruleId);
      });
      expect(alert).toMatchObject({
        status: 'new',
        severity: 'high',
        category: 'crowd',
        ruleVersion: 1,
        ownerOrg: 'police',
        marking: { tlp: 'AMBER+STRICT' },
        location: { type: 'Point', coordinates: [7.4246, 43.7384] },
      });
      expect(alert.evidence).toEqual([
        expect.objectContaining({ entityId: id, attribute: 'peopleCount', value: 180 }),
      ]);
      // Not visible to an unrelated organisation, by any path.
      const url = encodeURIComponent(alert.id as string);
      expect((await send('energy-admin', 'GET', `/api/alerts/${url}`)).status).toBe(404);
      expect((await send('energy-admin', 'GET', `/ngsi-ld/v1/entities/${url}`)).status).toBe(404);
      expect(((await send('energy-admin', 'GET', '/api/alerts')).json().items as unknown[]).length).toBe(0);
    });

    it('does not feed a rule what its owner may not see', async () => {
      const rule = await send('energy-admin', 'POST', '/api/rules', {
        rule: { ...THRESHOLD, name: 'energy rule' },
      });
      expect(rule.status, rule.body).toBe(201);
      const ruleId = rule.json().id as string;
      // police's AMBER+STRICT entity crosses again: energy's rule never sees it.
      await send(
        'police-op',
        'PATCH',
        `/ngsi-ld/v1/entities/${encodeURIComponent('urn:ngsi-ld:CrowdFlowObserved:gate-4')}/attrs`,
        {
          peopleCount: { type: 'Property', value: 10, observedAt: new Date().toISOString() },
        },
      );
      await send(
        'police-op',
        'PATCH',
        `/ngsi-ld/v1/entities/${encodeURIComponent('urn:ngsi-ld:CrowdFlowObserved:gate-4')}/attrs`,
        {
          peopleCount: { type: 'Property', value: 999, observedAt: new Date().toISOString() },
        },
      );
      // An entity energy owns raises energy's alert (the event after police's, so police's was handled).
      await send('energy-admin', 'POST', '/ngsi-ld/v1/entities', {
        id: 'urn:ngsi-ld:CrowdFlowObserved:substation-yard',
        type: 'CrowdFlowObserved',
        peopleCount: { type: 'Property', value: 500, observedAt: new Date().toISOString() },
      });
      const mine = await waitFor('energy’s alert', async () => {
        const items = (await send('energy-admin', 'GET', '/api/alerts')).json().items as Array<
          Record<string, unknown>
        >;
        const of = items.filter((a) => a.sourceRule === ruleId);
        return of.length > 0 ? of : undefined;
      });
      expect(mine.map((a) => (a.evidence as Array<{ entityId: string }>)[0]?.entityId)).toEqual([
        'urn:ngsi-ld:CrowdFlowObserved:substation-yard',
      ]);
    });

    it('one cause, one open alert: re-raised within the suppression window it is updated, later it is a new alert', async () => {
      const rule = await send('police-op', 'POST', '/api/rules', {
        rule: { ...THRESHOLD, name: 'suppression', dedup: { seconds: 60 } },
        marking: { tlp: 'AMBER' },
      });
      expect(rule.status, rule.body).toBe(201);
      const ruleId = rule.json().id as string;
      const id = 'urn:ngsi-ld:CrowdFlowObserved:platform-2';
      const t0 = Date.now() - 3_600_000;
      const at = (s: number) => new Date(t0 + s * 1000).toISOString();
      const observe = async (value: number, s: number, create = false) => {
        const body = { peopleCount: { type: 'Property', value, observedAt: at(s) } };
        const res = create
          ? await send('police-op', 'POST', '/ngsi-ld/v1/entities', {
              id,
              type: 'CrowdFlowObserved',
              ...body,
            })
          : await send('police-op', 'PATCH', `/ngsi-ld/v1/entities/${encodeURIComponent(id)}/attrs`, body);
        expect(res.status, res.body).toBeLessThan(300);
      };
      const alertsOf = async () =>
        (
          (await send('police-op', 'GET', '/api/alerts?limit=1000')).json().items as Array<
            Record<string, unknown>
          >
        ).filter((a) => a.sourceRule === ruleId);
      await observe(200, 0, true);
      await waitFor('the first alert', async () => ((await alertsOf()).length === 1 ? true : undefined));
      await observe(10, 10);
      await waitFor('its end', async () => ((await alertsOf())[0]?.validTo ? true : undefined));
      // Back within the window (60 s after its end): the same alert.
      await observe(300, 40);
      await waitFor('the update', async () =>
        ((await alertsOf())[0]?.evidence as Array<{ value: number }>).some((e) => e.value === 300)
          ? true
          : undefined,
      );
      expect(await alertsOf()).toHaveLength(1);
      // Ended again, and back long after the window: a new alert; the first one keeps its history.
      await observe(10, 50);
      await observe(400, 600);
      const both = await waitFor('the second alert', async () => {
        const all = await alertsOf();
        return all.length === 2 ? all : undefined;
      });
      const [newest, oldest] = both as [Record<string, unknown>, Record<string, unknown>];
      expect(newest.dateIssued).toBe(at(600));
      expect(newest.validTo).toBeNull();
      expect(oldest.dateIssued).toBe(at(0));
      expect(oldest.validTo).not.toBeNull();
    }, 120_000);

    it('dry-runs the recorded history, and `safecity rules validate|test` work on files', async () => {
      const from = new Date(Date.now() - 3_600_000).toISOString();
      const to = new Date(Date.now() + 60_000).toISOString();
      const draft = await waitFor('the history', async () => {
        const res = await send('police-op', 'POST', '/api/rules/dry-run', { rule: THRESHOLD, from, to });
        expect(res.status, res.body).toBe(200);
        const a = res.json();
        return (a.firings as unknown[]).length >= 1 ? a : undefined;
      });
      expect(draft.observations as number).toBeGreaterThanOrEqual(3);
      expect((draft.firings as Array<{ kind: string }>)[0]?.kind).toBe('raise');

      const good = join(files, 'good.json');
      const bad = join(files, 'bad.json');
      writeFileSync(good, JSON.stringify(THRESHOLD));
      writeFileSync(bad, JSON.stringify({ ...THRESHOLD, above: 'many' }));
      const out: string[] = [];
      expect(validateRuleFile(good, (s) => out.push(s))).toBe(0);
      expect(out.at(-1)).toMatch(/valid threshold rule "Gate 4 crowding"/);
      expect(validateRuleFile(bad, (s) => out.push(s))).toBe(1);
      expect(out.at(-1)).toMatch(/bad\.json: \/above: /);
      expect(validateRuleFile(join(files, 'missing.json'), (s) => out.push(s))).toBe(1);

      // `rules test` speaks to the API; here through the server in process.
      const viaInject: typeof fetch = async (input, init) => {
        const u = new URL(String(input));
        const res = await platform.server.inject({
          method: (init?.method ?? 'GET') as 'POST',
          url: u.pathname,
          headers: init?.headers as Record<string, string>,
          payload: init?.body as string,
        });
        return new Response(res.body, {
          status: res.statusCode,
          headers: { 'content-type': 'application/json' },
        });
      };
      const token = (auth['police-op'] as string).slice('Bearer '.length);
      const lines: string[] = [];
      expect(
        await testRuleFile(
          good,
          { from, to, url: 'http://platform', token },
          (s) => lines.push(s),
          viaInject,
        ),
      ).toBe(0);
      expect(lines[0]).toMatch(/observations of \d+ entities replayed/);
      expect(lines.some((l) => /raise\s/.test(l))).toBe(true);
      const refused: string[] = [];
      expect(
        await testRuleFile(
          bad,
          { from, to, url: 'http://platform', token },
          (s) => refused.push(s),
          viaInject,
        ),
      ).toBe(1);
      expect(refused.join('\n')).toMatch(/DETECTION_RULE_INVALID[\s\S]*\/above/);
      expect(
        await testRuleFile(good, { from, to, url: 'http://platform', token: undefined }, () => {}, viaInject),
      ).toBe(1);
    });
  });
}

describePlatform('PGlite', () => embeddedTestEnv('detection_e2e'));

describe.skipIf(SERVER_SKIP)(`server preset${SERVER_SKIP ? ` (skipped: ${SERVER_SKIP})` : ''}`, () => {
  describePlatform('PostgreSQL + NATS', () => serverPresetTestEnv('detection_e2e'));
});
