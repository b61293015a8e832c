/**
 * The detection API on a whole platform (PGlite; PostgreSQL + NATS when DATABASE_URL and NATS_URL are set):
 * rules as marked objects (every role of the owner, a client and an unrelated organisation), versions and
 * restore, hostile rule documents, an end-to-end alert from a measurement ingested over NGSI-LD (its marking,
 * evidence and who sees it), the alert's status moves, and dry-runs over the recorded history.
 *
 * The engine here is the minimal threshold engine of src/modules/detection-live/testing.ts: these tests are
 * about the platform side (gate, store, bus, alerts), not the rule language.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../app/config.ts';
import { createPlatform, type Platform } from '../../app/platform.ts';
import { embeddedTestEnv, SERVER_SKIP, seedWorld, serverPresetTestEnv } from '../../app/testing.ts';
import { thresholdEngine, validateThresholdRule } from '../../modules/detection-live/testing.ts';

const ADMIN_PASSWORD = 'long-secret-for-tests';
const PW = 'correct-horse-staple-9';
const ROLES = ['admin', 'operator', 'analyst', 'responder', 'viewer'] as const;
type Role = (typeof ROLES)[number];
type Relation = 'owner' | 'client' | 'stranger';
const ORG: Record<Relation, string> = { owner: 'police', client: 'metro', stranger: 'energy' };
const WRITERS: readonly Role[] = ['admin', 'operator', 'analyst'];

const crowdRule = (above = 100, name = 'Gate crowding') => ({
  name,
  entityType: 'CrowdFlowObserved',
  attribute: 'peopleCount',
  above,
  severity: 'high',
  category: 'crowd',
});

function describePlatform(
  name: string,
  envOf: () => Promise<{ env: Record<string, string>; cleanup(): Promise<void> }>,
) {
  describe(`detection API (${name})`, () => {
    let platform: Platform;
    let cleanup: () => Promise<void> = async () => {};
    const auth: Record<string, string> = {};
    const user = (relation: Relation, role: Role) => `${ORG[relation]}-${role}`;

    const send = async (who: string, method: string, url: string, payload?: unknown) => {
      const res = await platform.server.inject({
        method: method as 'GET',
        url,
        headers: {
          authorization: auth[who] as string,
          ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(payload !== undefined
          ? { payload: typeof payload === 'string' ? payload : JSON.stringify(payload) }
          : {}),
      });
      return {
        status: res.statusCode,
        body: res.body,
        json: () => res.json() as Record<string, unknown>,
        headers: res.headers,
      };
    };
    const ownerOperator = user('owner', 'operator');
    const newRule = async (marking: unknown = { tlp: 'AMBER' }, rule: unknown = crowdRule()) => {
      const res = await send(ownerOperator, 'POST', '/api/rules', { rule, marking });
      expect(res.status, res.body).toBe(201);
      return res.json().id as string;
    };
    const waitFor = async <T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> => {
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
        {
          log: pino({ level: 'silent' }),
          detection: { validate: validateThresholdRule, engine: thresholdEngine },
          detectionPartitions: 2,
        },
      );
      const users: [string, string, string][] = [];
      for (const relation of ['owner', 'client', 'stranger'] as const) {
        for (const role of ROLES) users.push([user(relation, role), ORG[relation], role]);
      }
      Object.assign(
        auth,
        await seedWorld(platform, ADMIN_PASSWORD, PW, {
          orgs: [
            [ORG.owner, 'police'],
            [ORG.client, 'transport'],
            [ORG.stranger, 'energy'],
          ],
          users,
        }),
      );
      const clients = await send(user('owner', 'admin'), 'PATCH', `/api/orgs/${ORG.owner}`, {
        clients: [ORG.client],
      });
      expect(clients.status, clients.body).toBe(200);
    }, 180_000);
    afterAll(async () => {
      await platform?.shutdown();
      await cleanup();
    });

    describe('rules are marked objects of the sharing gate', () => {
      const callers = (['owner', 'client', 'stranger'] as const).flatMap((relation) =>
        ROLES.map((role) => ({ relation, role })),
      );

      it.each(callers)('create as $role of the $relation organisation', async ({ relation, role }) => {
        const res = await send(user(relation, role), 'POST', '/api/rules', { rule: crowdRule() });
        if (WRITERS.includes(role)) {
          expect(res.status, res.body).toBe(201);
          const r = res.json();
          expect(r).toMatchObject({
            version: 1,
            enabled: true,
            ownerOrg: ORG[relation],
            name: 'Gate crowding',
          });
        } else {
          expect(res.status, res.body).toBe(403);
          expect(res.json().code).toBe('AUTH_ROLE_REQUIRED');
        }
      });

      it.each(callers)(
        'read, change, version, restore, disable and delete as $role of the $relation organisation',
        async ({ relation, role }) => {
          const id = await newRule();
          const who = user(relation, role);
          const read = await send(who, 'GET', `/api/rules/${id}`);
          const versions = await send(who, 'GET', `/api/rules/${id}/versions`);
          // AMBER: the owner's and its client's users read it; the unrelated organisation does not know it exists.
          if (relation === 'stranger') {
            for (const r of [read, versions]) {
              expect(r.status).toBe(404);
              expect(r.json().code).toBe('DETECTION_RULE_NOT_FOUND');
            }
          } else {
            expect(read.status, read.body).toBe(200);
            expect(versions.status).toBe(200);
          }
          const changes = [
            await send(who, 'PATCH', `/api/rules/${id}`, { rule: crowdRule(150) }),
            await send(who, 'POST', `/api/rules/${id}/disable`),
            await send(who, 'POST', `/api/rules/${id}/restore`, { version: 1 }),
            await send(who, 'DELETE', `/api/rules/${id}`),
          ];
          for (const c of changes) {
            if (relation === 'stranger') {
              expect(c.status, c.body).toBe(404);
              expect(c.json().code).toBe('DETECTION_RULE_NOT_FOUND');
            } else if (!WRITERS.includes(role)) {
              expect(c.status, c.body).toBe(403);
              expect(c.json().code).toBe('AUTH_ROLE_REQUIRED');
            } else if (relation === 'client') {
              expect(c.status, c.body).toBe(403);
              expect(c.json().code).toBe('ACCESS_DENIED');
            } else {
              expect(c.status, c.body).toBeLessThan(300);
            }
          }
        },
      );

      it('keeps every version; restore writes an old document as the newest version', async () => {
        const id = await newRule();
        const v2 = await send(ownerOperator, 'PATCH', `/api/rules/${id}`, {
          rule: crowdRule(150, 'Gate crowding v2'),
        });
        expect(v2.json()).toMatchObject({ version: 2, name: 'Gate crowding v2' });
        // The same document again is no new version; a marking change is no new version either.
        const same = await send(ownerOperator, 'PATCH', `/api/rules/${id}`, {
          rule: crowdRule(150, 'Gate crowding v2'),
          marking: { tlp: 'AMBER+STRICT' },
        });
        expect(same.json()).toMatchObject({ version: 2, marking: { tlp: 'AMBER+STRICT' } });
        const restored = await send(ownerOperator, 'POST', `/api/rules/${id}/restore`, { version: 1 });
        expect(restored.status, restored.body).toBe(200);
        expect(restored.json()).toMatchObject({ version: 3, name: 'Gate crowding', rule: crowdRule() });
        const list = (await send(ownerOperator, 'GET', `/api/rules/${id}/versions`)).json().items as Record<
          string,
          unknown
        >[];
        expect(list.map((v) => [v.version, v.change, v.restoredFrom])).toEqual([
          [3, 'restored', 1],
          [2, 'updated', null],
          [1, 'created', null],
        ]);
        const one = await send(ownerOperator, 'GET', `/api/rules/${id}/versions/2`);
        expect(one.json()).toMatchObject({ version: 2, rule: crowdRule(150, 'Gate crowding v2') });
        expect((await send(ownerOperator, 'GET', `/api/rules/${id}/versions/9`)).json().code).toBe(
          'DETECTION_RULE_VERSION_NOT_FOUND',
        );
        // The gate audited each change: created, updated (rule), share (marking), updated (rule).
        const audit = await send(user('owner', 'admin'), 'GET', `/api/audit?object=${id}`);
        expect(audit.status, audit.body).toBe(200);
        const records = audit.json().items as Array<{ action: string; details: { fields?: string[] } }>;
        expect(records.map((r) => r.action)).toEqual(['create', 'update', 'share', 'update']);
        expect(records[1]?.details.fields).toEqual(['rule']);
      });

      it('a client sees the rule on /api/rules, the unrelated organisation does not', async () => {
        const id = await newRule();
        const listed = async (who: string) =>
          ((await send(who, 'GET', '/api/rules?limit=1000')).json().items as Array<{ id: string }>).some(
            (r) => r.id === id,
          );
        expect(await listed(user('owner', 'viewer'))).toBe(true);
        expect(await listed(user('client', 'viewer'))).toBe(true);
        expect(await listed(user('stranger', 'admin'))).toBe(false);
      });
    });

    describe('hostile rule documents', () => {
      const count = async () =>
        ((await send(ownerOperator, 'GET', '/api/rules?limit=1000')).json().items as unknown[]).length;

      it('answers 400 problem+json with the field paths of an invalid rule, and writes nothing', async () => {
        const before = await count();
        const res = await send(ownerOperator, 'POST', '/api/rules', {
          rule: { name: 'x', entityType: 'Camera', attribute: 42, above: 'a lot', colour: 'red' },
        });
        expect(res.status).toBe(400);
        expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
        const problem = res.json();
        expect(problem.code).toBe('DETECTION_RULE_INVALID');
        expect((problem.errors as Array<{ path: string }>).map((e) => e.path).sort()).toEqual([
          'above',
          'attribute',
          'colour',
        ]);
        expect(await count()).toBe(before);
      });

      it('refuses unknown fields, wrong types, malformed JSON and oversized bodies with 4xx', async () => {
        const before = await count();
        const cases: [unknown, number][] = [
          [{ rule: crowdRule(), colour: 'red' }, 400],
          [{ rule: 'not an object' }, 400],
          [{ rule: crowdRule(), enabled: 'yes' }, 400],
          [{ rule: crowdRule(), marking: { tlp: 'PURPLE' } }, 400],
          [{ rule: crowdRule(), marking: { tlp: 'AMBER', audience: { orgs: ['nobody-here'] } } }, 404],
          ['{"rule": {', 400],
          [{ rule: { ...crowdRule(), name: 'x'.repeat(2 * 1024 * 1024) } }, 413],
          [{ rule: { a: { b: { c: JSON.parse(`${'['.repeat(100)}${']'.repeat(100)}`) } } } }, 400],
        ];
        for (const [payload, status] of cases) {
          const res = await send(ownerOperator, 'POST', '/api/rules', payload);
          expect(res.status, `${JSON.stringify(payload).slice(0, 80)}: ${res.body.slice(0, 200)}`).toBe(
            status,
          );
          expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
        }
        const id = await newRule();
        const bad = await send(ownerOperator, 'PATCH', `/api/rules/${id}`, { rule: { name: 'x' } });
        expect(bad.status).toBe(400);
        expect((await send(ownerOperator, 'GET', `/api/rules/${id}`)).json().version).toBe(1);
        expect((await send(ownerOperator, 'GET', `/api/rules/${id}/versions`)).json().items).toHaveLength(1);
        expect(await count()).toBe(before + 1);
      });
    });

    describe('alerts', () => {
      let ruleId: string;
      const entity = (id: string, count: number, marking: unknown, at = new Date().toISOString()) => ({
        id,
        type: 'CrowdFlowObserved',
        peopleCount: { type: 'Property', value: count, observedAt: at },
        location: { type: 'GeoProperty', value: { type: 'Point', coordinates: [7.42, 43.73] } },
        marking,
      });
      const ngsi = (who: string, method: string, url: string, payload?: unknown) =>
        platform.server.inject({
          method: method as 'POST',
          url,
          headers: { authorization: auth[who] as string, 'content-type': 'application/json' },
          ...(payload !== undefined ? { payload: JSON.stringify(payload) } : {}),
        });
      /** The alert this describe's rule raised about an entity (earlier tests left other rules running). */
      const alertOf = (who: string, entityId: string) =>
        waitFor(`an alert about ${entityId}`, async () => {
          const items = (await send(who, 'GET', '/api/alerts?limit=1000')).json().items as Array<
            Record<string, unknown>
          >;
          return items.find(
            (a) =>
              a.sourceRule === ruleId &&
              (a.evidence as Array<{ entityId: string }>).some((e) => e.entityId === entityId),
          );
        });

      beforeAll(async () => {
        ruleId = await newRule({ tlp: 'AMBER' });
      });

      it('a measurement crossing the threshold raises one Alert entity, marked from its evidence', async () => {
        const id = `urn:ngsi-ld:CrowdFlowObserved:gate-${Date.now()}`;
        const created = await ngsi(
          ownerOperator,
          'POST',
          '/ngsi-ld/v1/entities',
          entity(id, 40, { tlp: 'AMBER+STRICT' }),
        );
        expect(created.statusCode, created.body).toBe(201);
        const over = await ngsi(
          ownerOperator,
          'PATCH',
          `/ngsi-ld/v1/entities/${encodeURIComponent(id)}/attrs`,
          {
            peopleCount: { type: 'Property', value: 180, observedAt: new Date().toISOString() },
          },
        );
        expect(over.statusCode, over.body).toBe(204);
        const alert = await alertOf(ownerOperator, id);
        expect(alert).toMatchObject({
          status: 'new',
          severity: 'high',
          category: 'crowd',
          sourceRule: ruleId,
          ruleVersion: 1,
          organisation: ORG.owner,
          ownerOrg: ORG.owner,
          // The rule is AMBER, the evidence AMBER+STRICT: the alert takes the tighter label.
          marking: { tlp: 'AMBER+STRICT', audience: { orgs: [], communities: [], users: [] } },
        });
        expect(alert.evidence).toEqual([
          expect.objectContaining({ entityId: id, attribute: 'peopleCount', value: 180 }),
        ]);
        // It is an NGSI-LD entity like any other: the broker answers it to the owner, with its marking.
        const viaBroker = await ngsi(
          ownerOperator,
          'GET',
          `/ngsi-ld/v1/entities/${encodeURIComponent(alert.id as string)}`,
        );
        expect(viaBroker.statusCode).toBe(200);
        expect(viaBroker.headers['safecity-marking']).toMatch(/AMBER\+STRICT/);
        // Not to a client (AMBER+STRICT never reaches clients), nor to the unrelated organisation.
        for (const who of [user('client', 'admin'), user('stranger', 'admin')]) {
          expect(
            (await send(who, 'GET', `/api/alerts/${encodeURIComponent(alert.id as string)}`)).status,
          ).toBe(404);
          const items = (await send(who, 'GET', '/api/alerts?limit=1000')).json().items as Array<{
            id: string;
          }>;
          expect(items.some((a) => a.id === alert.id)).toBe(false);
          expect(
            (await ngsi(who, 'GET', `/ngsi-ld/v1/entities/${encodeURIComponent(alert.id as string)}`))
              .statusCode,
          ).toBe(404);
        }
        // Falling back and crossing again re-raises the same cause: the same entity, updated, not a second one.
        await ngsi(ownerOperator, 'PATCH', `/ngsi-ld/v1/entities/${encodeURIComponent(id)}/attrs`, {
          peopleCount: { type: 'Property', value: 20, observedAt: new Date().toISOString() },
        });
        await ngsi(ownerOperator, 'PATCH', `/ngsi-ld/v1/entities/${encodeURIComponent(id)}/attrs`, {
          peopleCount: { type: 'Property', value: 250, observedAt: new Date().toISOString() },
        });
        await waitFor('the re-raised alert', async () => {
          const a = await send(ownerOperator, 'GET', `/api/alerts/${encodeURIComponent(alert.id as string)}`);
          const ev = a.json().evidence as Array<{ value: number }>;
          return ev[0]?.value === 250 ? true : undefined;
        });
        const all = (await send(ownerOperator, 'GET', '/api/alerts?limit=1000')).json().items as Array<
          Record<string, unknown>
        >;
        expect(
          all.filter(
            (a) =>
              a.sourceRule === ruleId &&
              (a.evidence as Array<{ entityId: string }>).some((e) => e.entityId === id),
          ),
        ).toHaveLength(1);
      });

      it('a client reads an AMBER alert of AMBER evidence; filters narrow the list', async () => {
        const id = `urn:ngsi-ld:CrowdFlowObserved:amber-${Date.now()}`;
        expect(
          (await ngsi(ownerOperator, 'POST', '/ngsi-ld/v1/entities', entity(id, 500, { tlp: 'AMBER' })))
            .statusCode,
        ).toBe(201);
        const alert = await alertOf(user('client', 'viewer'), id);
        expect(alert.marking).toMatchObject({ tlp: 'AMBER' });
        const q = (query: string) => send(ownerOperator, 'GET', `/api/alerts?${query}`);
        const has = async (query: string) =>
          ((await q(query)).json().items as Array<{ id: string }>).some((a) => a.id === alert.id);
        expect(await has('severity=high&category=crowd&status=new&organisation=police')).toBe(true);
        expect(await has('severity=low')).toBe(false);
        expect(await has('organisation=energy')).toBe(false);
        expect(await has(`since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).toBe(
          false,
        );
        expect((await q('severity=apocalyptic')).status).toBe(400);
      });

      it('acknowledge, dismiss and promote: writers of the owner organisation; status moves forward only', async () => {
        const make = async () => {
          const id = `urn:ngsi-ld:CrowdFlowObserved:moves-${Date.now()}-${Math.random().toString(36).slice(2)}`;
          expect(
            (await ngsi(ownerOperator, 'POST', '/ngsi-ld/v1/entities', entity(id, 900, { tlp: 'AMBER' })))
              .statusCode,
          ).toBe(201);
          return encodeURIComponent((await alertOf(ownerOperator, id)).id as string);
        };
        const alert = await make();
        for (const relation of ['owner', 'client', 'stranger'] as const) {
          for (const role of ROLES) {
            if (relation === 'owner' && WRITERS.includes(role)) continue;
            const res = await send(user(relation, role), 'POST', `/api/alerts/${alert}/acknowledge`);
            const expected = relation === 'stranger' ? 404 : 403;
            expect(res.status, `${relation} ${role}: ${res.body}`).toBe(expected);
          }
        }
        const ack = await send(user('owner', 'analyst'), 'POST', `/api/alerts/${alert}/acknowledge`);
        expect(ack.status, ack.body).toBe(200);
        expect(ack.json()).toMatchObject({
          status: 'acknowledged',
          statusChangedBy: user('owner', 'analyst'),
        });
        expect((await send(ownerOperator, 'POST', `/api/alerts/${alert}/acknowledge`)).json().code).toBe(
          'DETECTION_ALERT_STATUS_CONFLICT',
        );
        expect((await send(ownerOperator, 'POST', `/api/alerts/${alert}/dismiss`, {})).status).toBe(400);
        expect(
          (await send(ownerOperator, 'POST', `/api/alerts/${alert}/dismiss`, { reason: '' })).status,
        ).toBe(400);
        const dismissed = await send(ownerOperator, 'POST', `/api/alerts/${alert}/dismiss`, {
          reason: 'a drill',
        });
        expect(dismissed.json()).toMatchObject({ status: 'dismissed', dismissReason: 'a drill' });
        expect((await send(ownerOperator, 'POST', `/api/alerts/${alert}/promote`, {})).status).toBe(409);

        const other = await make();
        const promoted = await send(user('owner', 'admin'), 'POST', `/api/alerts/${other}/promote`, {
          note: 'incident',
        });
        expect(promoted.status, promoted.body).toBe(200);
        expect(promoted.json()).toMatchObject({ status: 'promoted', promotionNote: 'incident' });
        const handoff = await platform.store.db
          .withTables<{ detection_alert_handoff: { alert_id: string; promoted_by: string } }>()
          .selectFrom('detection_alert_handoff')
          .selectAll()
          .where('alert_id', '=', decodeURIComponent(other))
          .execute();
        expect(handoff).toHaveLength(1);
        // Promoting again is idempotent: the same alert, one hand-off.
        const again = await send(user('owner', 'admin'), 'POST', `/api/alerts/${other}/promote`, {});
        expect(again.status, again.body).toBe(200);
        expect(again.json()).toMatchObject({ status: 'promoted', promotionNote: 'incident' });
        expect((await send(ownerOperator, 'GET', '/api/alerts/urn:ngsi-ld:Alert:none')).json().code).toBe(
          'DETECTION_ALERT_NOT_FOUND',
        );
      });
    });

    describe('dry-runs', () => {
      it('replays the recorded history through a stored rule and a draft: what would have fired, nothing raised', async () => {
        const id = `urn:ngsi-ld:CrowdFlowObserved:history-${Date.now()}`;
        const t0 = Date.now() - 3_600_000;
        const at = (min: number) => new Date(t0 + min * 60_000).toISOString();
        const stranger = user('stranger', 'operator');
        // History of an entity of the unrelated organisation: nobody of the owner's sees it.
        const hidden = `urn:ngsi-ld:CrowdFlowObserved:hidden-${Date.now()}`;
        await ngsiPost(stranger, {
          id: hidden,
          type: 'CrowdFlowObserved',
          peopleCount: { type: 'Property', value: 999, observedAt: at(1) },
          marking: { tlp: 'AMBER' },
        });
        expect(
          (
            await ngsiPost(ownerOperator, {
              id,
              type: 'CrowdFlowObserved',
              peopleCount: { type: 'Property', value: 10, observedAt: at(0) },
              marking: { tlp: 'AMBER' },
            })
          ).statusCode,
        ).toBe(201);
        for (const [min, value] of [
          [5, 50],
          [10, 130],
          [15, 80],
          [20, 140],
        ] as const) {
          const r = await platform.server.inject({
            method: 'PATCH',
            url: `/ngsi-ld/v1/entities/${encodeURIComponent(id)}/attrs`,
            headers: { authorization: auth[ownerOperator] as string, 'content-type': 'application/json' },
            payload: JSON.stringify({ peopleCount: { type: 'Property', value, observedAt: at(min) } }),
          });
          expect(r.statusCode, r.body).toBe(204);
        }
        const rule = await newRule({ tlp: 'AMBER' }, crowdRule(100, 'Dry-run rule'));
        const window = {
          from: new Date(t0 - 60_000).toISOString(),
          to: new Date(t0 + 30 * 60_000).toISOString(),
        };
        type Firing = { kind: string; at: string; evidence: Array<{ entityId: string }> };
        const answer = await waitFor('the history', async () => {
          const res = await send(ownerOperator, 'POST', `/api/rules/${rule}/dry-run`, window);
          expect(res.status, res.body).toBe(200);
          const firings = res.json().firings as Firing[];
          const mine = firings.filter((f) => f.evidence[0]?.entityId === id);
          return mine.length >= 3 ? { firings, mine } : undefined;
        });
        expect(answer.mine.map((f) => [f.kind, f.at])).toEqual([
          ['raise', at(10)],
          ['clear', at(15)],
          ['update', at(20)],
        ]);
        // The unrelated organisation's entity is never replayed for the owner.
        expect(answer.firings.some((f) => f.evidence[0]?.entityId === hidden)).toBe(false);
        // The same as a draft; nothing was raised by either.
        const draft = await send(ownerOperator, 'POST', '/api/rules/dry-run', {
          rule: crowdRule(100),
          ...window,
        });
        expect(draft.status, draft.body).toBe(200);
        expect((draft.json().firings as unknown[]).length).toBeGreaterThanOrEqual(3);
        const alerts = (await send(ownerOperator, 'GET', '/api/alerts?limit=1000')).json().items as Array<{
          sourceRule: string;
        }>;
        expect(alerts.some((a) => a.sourceRule === rule)).toBe(false);
        // Bad windows and invalid drafts.
        expect(
          (
            await send(ownerOperator, 'POST', `/api/rules/${rule}/dry-run`, {
              from: window.to,
              to: window.from,
            })
          ).json().code,
        ).toBe('DETECTION_INVALID_INPUT');
        expect(
          (
            await send(ownerOperator, 'POST', `/api/rules/${rule}/dry-run`, {
              from: 'yesterday',
              to: window.to,
            })
          ).status,
        ).toBe(400);
        expect(
          (await send(ownerOperator, 'POST', '/api/rules/dry-run', { rule: { name: 1 }, ...window })).json()
            .code,
        ).toBe('DETECTION_RULE_INVALID');
        expect(
          (
            await send(user('owner', 'viewer'), 'POST', '/api/rules/dry-run', {
              rule: crowdRule(),
              ...window,
            })
          ).status,
        ).toBe(403);
        expect(
          (await send(user('stranger', 'admin'), 'POST', `/api/rules/${rule}/dry-run`, window)).status,
        ).toBe(404);
      });

      const ngsiPost = (who: string, payload: unknown) =>
        platform.server.inject({
          method: 'POST',
          url: '/ngsi-ld/v1/entities',
          headers: { authorization: auth[who] as string, 'content-type': 'application/json' },
          payload: JSON.stringify(payload),
        });
    });
  });
}

describePlatform('PGlite', () => embeddedTestEnv('detection'));

describe.skipIf(SERVER_SKIP)(`server preset${SERVER_SKIP ? ` (skipped: ${SERVER_SKIP})` : ''}`, () => {
  describePlatform('PostgreSQL + NATS', () => serverPresetTestEnv('detection'));
});
