/**
 * Roles and actions, table-driven: every action of every API surface tried as every role of the object's
 * owner organisation, of a client organisation (which reads the owner's TLP:AMBER objects) and of an unrelated
 * organisation, against the matrix of docs/access.md ("Roles and actions"). A green suite once hid leaks
 * because every test wrote as an operator: here nobody is assumed.
 *
 * Each row names the answer it expects for each caller: 'ok' (2xx), 'role' (403 AUTH_ROLE_REQUIRED),
 * 'denied' (403 ACCESS_DENIED or the surface's forbidden), 'absent' (404: the object does not exist for the
 * caller). Rows that change or delete an object get a fresh object for every caller.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import { createPlatform, type Platform } from './platform.ts';
import { seedWorld } from './testing.ts';

const ADMIN_PASSWORD = 'long-secret-for-tests';
const PW = 'correct-horse-staple-9';

const ROLES_UNDER_TEST = ['admin', 'operator', 'analyst', 'responder', 'viewer'] as const;
type Role = (typeof ROLES_UNDER_TEST)[number];
/** The caller's organisation: the object's owner, a client of the owner, an unrelated one. */
type Relation = 'owner' | 'client' | 'stranger';
type Outcome = 'ok' | 'role' | 'denied' | 'absent';

interface Caller {
  role: Role;
  relation: Relation;
  username: string;
}

interface Request {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  url: string;
  payload?: unknown;
  headers?: Record<string, string>;
}

interface Row {
  surface: string;
  action: string;
  /** Makes what the action acts on, as the owner organisation's operator; returns what `request` needs. */
  fresh?: () => Promise<string>;
  request: (target: string, caller: Caller) => Request;
  expect: (caller: Caller) => Outcome;
}

const ORG: Record<Relation, string> = { owner: 'police', client: 'metro', stranger: 'energy' };
const WRITERS: readonly Role[] = ['admin', 'operator', 'analyst'];
const writer = (c: Caller) => WRITERS.includes(c.role);
/** Closures and slow-downs: field units (responders) create and lift them too. */
const roadWriter = (c: Caller) => writer(c) || c.role === 'responder';

/** The usual rule for a marked object shared TLP:AMBER by its owner (its clients read it). */
function amberObjectRule(
  kind: 'read' | 'change',
  mayWrite: (c: Caller) => boolean = writer,
): (c: Caller) => Outcome {
  return (c) => {
    if (c.relation === 'stranger') return 'absent';
    if (kind === 'read') return 'ok';
    if (!mayWrite(c)) return 'role';
    return c.relation === 'owner' ? 'ok' : 'denied';
  };
}

describe('roles and actions: every surface, every role, owner / client / unrelated organisation', () => {
  const dir = mkdtempSync(join(tmpdir(), 'safecity-roles-'));
  let platform: Platform;
  const auth: Record<string, string> = {};
  const callers: Caller[] = [];

  const send = (r: Request, who: string) =>
    platform.server.inject({
      method: r.method,
      url: r.url,
      headers: {
        authorization: auth[who] as string,
        ...(r.payload !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(r.headers ?? {}),
      },
      ...(r.payload !== undefined ? { payload: JSON.stringify(r.payload) } : {}),
    });

  const ownerOperator = `${ORG.owner}-operator`;

  beforeAll(async () => {
    platform = await createPlatform(
      loadConfig({
        SAFECITY_DATA_DIR: dir,
        SAFECITY_ADMIN_PASSWORD: ADMIN_PASSWORD,
        SAFECITY_MQTT_PORT: '0',
        PORT: '0',
        // Subscriptions in these rows notify 127.0.0.1 (nothing listens there).
        SAFECITY_EGRESS_ALLOW: 'public,private,loopback',
      }),
      { log: pino({ level: 'silent' }) },
    );
    const users: [string, string, string][] = [];
    for (const relation of ['owner', 'client', 'stranger'] as const) {
      for (const role of ROLES_UNDER_TEST) {
        const username = `${ORG[relation]}-${role}`;
        users.push([username, ORG[relation], role]);
        callers.push({ role, relation, username });
      }
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
    const clients = await send(
      { method: 'PATCH', url: `/api/orgs/${ORG.owner}`, payload: { clients: [ORG.client] } },
      `${ORG.owner}-admin`,
    );
    expect(clients.statusCode, clients.body).toBe(200);
  });
  afterAll(async () => {
    await platform?.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  const report = async () => {
    const res = await send(
      {
        method: 'POST',
        url: '/api/reports',
        payload: {
          title: 'Unattended bag at gate 4',
          category: 'suspicious-object',
          marking: { tlp: 'AMBER' },
        },
      },
      ownerOperator,
    );
    expect(res.statusCode, res.body).toBe(201);
    return res.json().id as string;
  };

  let entities = 0;
  /** A TLP:AMBER NGSI-LD entity of the owner organisation. */
  const entity = async () => {
    const id = `urn:ngsi-ld:Camera:roles-${++entities}`;
    const res = await send(
      {
        method: 'POST',
        url: '/ngsi-ld/v1/entities',
        payload: { id, type: 'Camera', fps: { type: 'Property', value: 25 }, marking: { tlp: 'AMBER' } },
      },
      ownerOperator,
    );
    expect(res.statusCode, res.body).toBe(201);
    return id;
  };
  /** A hosted @context of the owner organisation (public: TLP:CLEAR). */
  const hostedContext = async () => {
    const res = await send(
      {
        method: 'POST',
        url: '/ngsi-ld/v1/jsonldContexts',
        payload: { '@context': { fps: 'https://example.org/fps' } },
      },
      ownerOperator,
    );
    expect(res.statusCode, res.body).toBe(201);
    return String(res.headers.location);
  };

  /** A TLP:AMBER closure or slow-down of the owner organisation. */
  const roadChange = (kind: 'closures' | 'slowdowns') => async () => {
    const res = await send(
      {
        method: 'POST',
        url: `/api/routing/${kind}`,
        payload: {
          geometry: { type: 'Point', coordinates: [7.4245, 43.7349] },
          ...(kind === 'slowdowns' ? { factor: 0.5 } : {}),
          reason: 'water main burst',
          marking: { tlp: 'AMBER' },
        },
      },
      ownerOperator,
    );
    expect(res.statusCode, res.body).toBe(201);
    return res.json().id as string;
  };

  const subscription = async () => {
    const res = await send(
      {
        method: 'POST',
        url: '/ngsi-ld/v1/subscriptions',
        payload: {
          type: 'Subscription',
          entities: [{ type: 'Camera' }],
          notification: { endpoint: { uri: 'http://127.0.0.1:9/notify' } },
        },
      },
      ownerOperator,
    );
    expect(res.statusCode, res.body).toBe(201);
    return decodeURIComponent(String(res.headers.location).split('/').pop() ?? '');
  };

  /** A TLP:AMBER entity of the owner with history (made once: the rows only read it). */
  let withHistory: Promise<string> | undefined;
  const entityWithHistory = () => {
    withHistory ??= (async () => {
      const id = 'urn:ngsi-ld:Camera:history-1';
      const res = await send(
        {
          method: 'POST',
          url: '/ngsi-ld/v1/entities',
          payload: {
            id,
            type: 'Camera',
            count: { type: 'Property', value: 7 },
            marking: { type: 'Property', value: { tlp: 'AMBER' } },
          },
        },
        ownerOperator,
      );
      expect(res.statusCode, res.body).toBe(201);
      for (let i = 0; i < 200; i++) {
        const h = await send({ method: 'GET', url: `/ngsi-ld/v1/temporal/entities/${id}` }, ownerOperator);
        if (h.statusCode === 200) return id;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error('no history recorded');
    })();
    return withHistory;
  };

  /** A rule over a type no entity here has: the rows about rules do not raise alerts. */
  const crowdRule = {
    name: 'roles: crowding',
    kind: 'threshold',
    severity: 'high',
    category: 'crowd',
    match: { types: ['Turnstile'], attribute: 'peopleCount' },
    above: 100,
  };
  /** A TLP:AMBER detection rule of the owner organisation. */
  const detectionRule = async (rule: object = crowdRule) => {
    const res = await send(
      { method: 'POST', url: '/api/rules', payload: { rule, marking: { tlp: 'AMBER' } } },
      ownerOperator,
    );
    expect(res.statusCode, res.body).toBe(201);
    return res.json().id as string;
  };
  /** The one rule that raises the alerts below (made once). */
  let alertingRule: Promise<string> | undefined;
  let crowds = 0;
  /** A TLP:AMBER Alert entity the owner's rule raised from a TLP:AMBER measurement of the owner. */
  const alertEntity = async () => {
    alertingRule ??= detectionRule({
      ...crowdRule,
      match: { types: ['CrowdFlowObserved'], attribute: 'peopleCount' },
    });
    const ruleId = await alertingRule;
    const id = `urn:ngsi-ld:CrowdFlowObserved:roles-${++crowds}`;
    const res = await send(
      {
        method: 'POST',
        url: '/ngsi-ld/v1/entities',
        payload: {
          id,
          type: 'CrowdFlowObserved',
          peopleCount: { type: 'Property', value: 500 },
          marking: { tlp: 'AMBER' },
        },
      },
      ownerOperator,
    );
    expect(res.statusCode, res.body).toBe(201);
    for (let i = 0; i < 400; i++) {
      const list = await send({ method: 'GET', url: '/api/alerts?limit=1000' }, ownerOperator);
      const found = (
        list.json().items as Array<{ id: string; sourceRule: string; evidence: Array<{ entityId: string }> }>
      ).find((a) => a.sourceRule === ruleId && a.evidence.some((e) => e.entityId === id));
      if (found) return encodeURIComponent(found.id);
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('no alert raised');
  };

  let temporalEntities = 0;
  /** A TLP:AMBER temporal entity of the owner (provided through the temporal API). */
  const temporalEntity = async () => {
    const id = `urn:ngsi-ld:Camera:temporal-${++temporalEntities}`;
    const res = await send(
      {
        method: 'POST',
        url: '/ngsi-ld/v1/temporal/entities',
        payload: {
          id,
          type: 'Camera',
          fps: [
            { type: 'Property', value: 25, observedAt: '2026-11-30T10:00:00Z' },
            { type: 'Property', value: 30, observedAt: '2026-11-30T10:01:00Z' },
          ],
          marking: { tlp: 'AMBER' },
        },
      },
      ownerOperator,
    );
    expect(res.statusCode, res.body).toBe(201);
    return id;
  };
  /** The path of one instance of a fresh temporal entity: `{id}/attrs/fps/{instanceId}`. */
  const temporalInstance = async () => {
    const id = await temporalEntity();
    const res = await send({ method: 'GET', url: `/ngsi-ld/v1/temporal/entities/${id}` }, ownerOperator);
    expect(res.statusCode, res.body).toBe(200);
    const instanceId = String((res.json() as { fps: Array<{ instanceId: string }> }).fps[0]?.instanceId);
    return `${id}/attrs/fps/${encodeURIComponent(instanceId)}`;
  };

  /** A subscription: its organisation's users see it (TLP:AMBER+STRICT), no client, no one else. */
  const subscriptionRule = (kind: 'read' | 'change') => (c: Caller) => {
    if (c.relation !== 'owner') return 'absent';
    return kind === 'read' || writer(c) ? 'ok' : 'role';
  };

  const rows: Row[] = [
    // ------------------------------------------------------------------------------------ platform
    {
      surface: 'platform',
      action: 'create an organisation',
      request: (_, c) => ({
        method: 'POST',
        url: '/api/orgs',
        payload: { id: `x-${c.username}`, name: 'X', kind: 'other' },
      }),
      expect: () => 'role',
    },
    {
      surface: 'platform',
      action: "rename the owner's organisation",
      request: () => ({ method: 'PATCH', url: `/api/orgs/${ORG.owner}`, payload: { name: 'Police force' } }),
      expect: () => 'role',
    },
    {
      surface: 'platform',
      action: "declare the owner's clients",
      request: () => ({ method: 'PATCH', url: `/api/orgs/${ORG.owner}`, payload: { clients: [ORG.client] } }),
      expect: (c) => (c.role !== 'admin' ? 'role' : c.relation === 'owner' ? 'ok' : 'denied'),
    },
    {
      surface: 'platform',
      action: 'create a community',
      request: (_, c) => ({
        method: 'POST',
        url: '/api/communities',
        payload: { id: `c-${c.username}`, name: 'C' },
      }),
      expect: () => 'role',
    },
    {
      surface: 'platform',
      action: 'create an account in the owner organisation',
      request: (_, c) => ({
        method: 'POST',
        url: '/api/users',
        payload: { username: `new-${c.username}`, orgId: ORG.owner, roles: ['viewer'], password: PW },
      }),
      expect: (c) => (c.role !== 'admin' ? 'role' : c.relation === 'owner' ? 'ok' : 'denied'),
    },
    {
      surface: 'platform',
      action: 'grant platform-admin',
      request: (_, c) => ({
        method: 'POST',
        url: '/api/users',
        payload: { username: `pa-${c.username}`, orgId: ORG.owner, roles: ['platform-admin'], password: PW },
      }),
      expect: (c) => (c.role !== 'admin' ? 'role' : 'denied'),
    },
    {
      surface: 'platform',
      action: 'create an API token in the owner organisation',
      request: (_, c) => ({
        method: 'POST',
        url: '/api/tokens',
        payload: { orgId: ORG.owner, name: `cam-${c.username}` },
      }),
      expect: (c) => (c.role !== 'admin' ? 'role' : c.relation === 'owner' ? 'ok' : 'denied'),
    },
    {
      surface: 'platform',
      action: 'list accounts',
      request: () => ({ method: 'GET', url: '/api/users' }),
      expect: (c) => (c.role === 'admin' ? 'ok' : 'role'),
    },
    {
      surface: 'platform',
      action: "list the owner organisation's accounts",
      request: () => ({ method: 'GET', url: `/api/users?org=${ORG.owner}` }),
      expect: (c) => (c.role !== 'admin' ? 'role' : c.relation === 'owner' ? 'ok' : 'denied'),
    },
    {
      surface: 'platform',
      action: 'read the audit log',
      request: () => ({ method: 'GET', url: '/api/audit' }),
      expect: (c) => (c.role === 'admin' ? 'ok' : 'role'),
    },
    // ------------------------------------------------------------------------------------ reports
    {
      surface: 'reports',
      action: 'read a TLP:AMBER report',
      fresh: report,
      request: (id) => ({ method: 'GET', url: `/api/reports/${id}` }),
      expect: amberObjectRule('read'),
    },
    {
      surface: 'reports',
      action: 'create a report',
      request: () => ({ method: 'POST', url: '/api/reports', payload: { title: 't', category: 'other' } }),
      expect: (c) => (writer(c) ? 'ok' : 'role'),
    },
    {
      surface: 'reports',
      action: 'change a TLP:AMBER report',
      fresh: report,
      request: (id) => ({ method: 'PATCH', url: `/api/reports/${id}`, payload: { title: 'Bag removed' } }),
      expect: amberObjectRule('change'),
    },
    {
      surface: 'reports',
      action: 'widen a TLP:AMBER report to TLP:CLEAR',
      fresh: report,
      request: (id) => ({
        method: 'PATCH',
        url: `/api/reports/${id}`,
        payload: { marking: { tlp: 'CLEAR' } },
      }),
      expect: amberObjectRule('change'),
    },
    {
      surface: 'reports',
      action: 'delete a TLP:AMBER report',
      fresh: report,
      request: (id) => ({ method: 'DELETE', url: `/api/reports/${id}` }),
      expect: amberObjectRule('change'),
    },
    // ------------------------------------------------------------------------------------ NGSI-LD
    {
      surface: 'NGSI-LD',
      action: 'read a TLP:AMBER entity',
      fresh: entity,
      request: (id) => ({ method: 'GET', url: `/ngsi-ld/v1/entities/${id}` }),
      expect: amberObjectRule('read'),
    },
    {
      surface: 'NGSI-LD',
      action: 'create an entity',
      request: (_, c) => ({
        method: 'POST',
        url: '/ngsi-ld/v1/entities',
        payload: { id: `urn:ngsi-ld:Camera:by-${c.username}`, type: 'Camera' },
      }),
      expect: (c) => (writer(c) ? 'ok' : 'role'),
    },
    {
      surface: 'NGSI-LD',
      action: 'append attributes to a TLP:AMBER entity',
      fresh: entity,
      request: (id) => ({ method: 'POST', url: `/ngsi-ld/v1/entities/${id}/attrs`, payload: { fps: 30 } }),
      expect: amberObjectRule('change'),
    },
    {
      surface: 'NGSI-LD',
      action: 'merge a TLP:AMBER entity',
      fresh: entity,
      request: (id) => ({ method: 'PATCH', url: `/ngsi-ld/v1/entities/${id}`, payload: { fps: 30 } }),
      expect: amberObjectRule('change'),
    },
    {
      surface: 'NGSI-LD',
      action: 'widen a TLP:AMBER entity to TLP:CLEAR',
      fresh: entity,
      request: (id) => ({
        method: 'POST',
        url: `/ngsi-ld/v1/entities/${id}/attrs`,
        payload: { marking: { tlp: 'CLEAR' } },
      }),
      expect: amberObjectRule('change'),
    },
    {
      surface: 'NGSI-LD',
      action: 'delete a TLP:AMBER entity',
      fresh: entity,
      request: (id) => ({ method: 'DELETE', url: `/ngsi-ld/v1/entities/${id}` }),
      expect: amberObjectRule('change'),
    },
    {
      surface: 'NGSI-LD',
      action: 'host an @context',
      request: () => ({
        method: 'POST',
        url: '/ngsi-ld/v1/jsonldContexts',
        payload: { '@context': { a: 'https://example.org/a' } },
      }),
      expect: (c) => (writer(c) ? 'ok' : 'role'),
    },
    {
      surface: 'NGSI-LD',
      action: "delete the owner's hosted @context",
      fresh: hostedContext,
      request: (location) => ({ method: 'DELETE', url: location }),
      // Hosted contexts are public (TLP:CLEAR): every organisation sees them, only the owner's writers delete.
      expect: (c) => (!writer(c) ? 'role' : c.relation === 'owner' ? 'ok' : 'denied'),
    },
    {
      surface: 'platform',
      action: 'explain a TLP:AMBER entity',
      fresh: entity,
      request: (id) => ({
        method: 'GET',
        url: `/api/access/explain?object=${id}&kind=entity&tenant=&user=${ownerOperator}`,
      }),
      expect: (c) => (c.role !== 'admin' ? 'role' : c.relation === 'stranger' ? 'absent' : 'ok'),
    },
    {
      surface: 'platform',
      action: 'explain a TLP:AMBER report',
      fresh: report,
      request: (id) => ({ method: 'GET', url: `/api/access/explain?object=${id}&user=${ownerOperator}` }),
      expect: (c) => (c.role !== 'admin' ? 'role' : c.relation === 'stranger' ? 'absent' : 'ok'),
    },
    // ------------------------------------------------------------------------------------ routing
    ...(['closures', 'slowdowns'] as const).flatMap((kind): Row[] => [
      {
        surface: 'routing',
        action: `read a TLP:AMBER ${kind.slice(0, -1)}`,
        fresh: roadChange(kind),
        request: (id) => ({ method: 'GET', url: `/api/routing/${kind}/${id}` }),
        expect: amberObjectRule('read'),
      },
      {
        surface: 'routing',
        action: `create a ${kind.slice(0, -1)}`,
        request: () => ({
          method: 'POST',
          url: `/api/routing/${kind}`,
          payload: {
            geometry: { type: 'Point', coordinates: [7.4245, 43.7349] },
            ...(kind === 'slowdowns' ? { factor: 0.5 } : {}),
          },
        }),
        expect: (c) => (roadWriter(c) ? 'ok' : 'role'),
      },
      {
        surface: 'routing',
        action: `lift a TLP:AMBER ${kind.slice(0, -1)}`,
        fresh: roadChange(kind),
        request: (id) => ({ method: 'DELETE', url: `/api/routing/${kind}/${id}` }),
        expect: amberObjectRule('change', roadWriter),
      },
    ]),
    {
      surface: 'platform',
      action: 'explain a TLP:AMBER closure',
      fresh: roadChange('closures'),
      request: (id) => ({
        method: 'GET',
        url: `/api/access/explain?object=${id}&kind=closure&user=${ownerOperator}`,
      }),
      expect: (c) => (c.role !== 'admin' ? 'role' : c.relation === 'stranger' ? 'absent' : 'ok'),
    },
    // ------------------------------------------------------------------------------- subscriptions
    {
      surface: 'subscriptions',
      action: 'create a subscription (a share)',
      request: () => ({
        method: 'POST',
        url: '/ngsi-ld/v1/subscriptions',
        payload: {
          type: 'Subscription',
          entities: [{ type: 'Camera' }],
          notification: { endpoint: { uri: 'http://127.0.0.1:9/notify' } },
        },
      }),
      expect: (c) => (writer(c) ? 'ok' : 'role'),
    },
    {
      surface: 'subscriptions',
      action: "read the owner's subscription",
      fresh: subscription,
      request: (id) => ({ method: 'GET', url: `/ngsi-ld/v1/subscriptions/${id}` }),
      expect: subscriptionRule('read'),
    },
    {
      surface: 'subscriptions',
      action: "change the owner's subscription",
      fresh: subscription,
      request: (id) => ({
        method: 'PATCH',
        url: `/ngsi-ld/v1/subscriptions/${id}`,
        payload: { isActive: false },
      }),
      expect: subscriptionRule('change'),
    },
    {
      surface: 'subscriptions',
      action: "delete the owner's subscription",
      fresh: subscription,
      request: (id) => ({ method: 'DELETE', url: `/ngsi-ld/v1/subscriptions/${id}` }),
      expect: subscriptionRule('change'),
    },
    // ------------------------------------------------------------------------------------ temporal
    {
      surface: 'temporal',
      action: 'read the history of a TLP:AMBER entity',
      fresh: entityWithHistory,
      request: (id) => ({ method: 'GET', url: `/ngsi-ld/v1/temporal/entities/${id}` }),
      expect: amberObjectRule('read'),
    },
    {
      surface: 'temporal',
      action: 'create a temporal entity',
      request: (_, c) => ({
        method: 'POST',
        url: '/ngsi-ld/v1/temporal/entities',
        payload: {
          id: `urn:ngsi-ld:Camera:temporal-by-${c.username}`,
          type: 'Camera',
          fps: [{ type: 'Property', value: 25, observedAt: '2026-11-30T10:00:00Z' }],
        },
      }),
      expect: (c) => (writer(c) ? 'ok' : 'role'),
    },
    {
      surface: 'temporal',
      action: "read the owner's TLP:AMBER temporal entity",
      fresh: temporalEntity,
      request: (id) => ({ method: 'GET', url: `/ngsi-ld/v1/temporal/entities/${id}` }),
      expect: amberObjectRule('read'),
    },
    {
      surface: 'temporal',
      action: "add instances to the owner's temporal entity by creating it again",
      fresh: temporalEntity,
      request: (id) => ({
        method: 'POST',
        url: '/ngsi-ld/v1/temporal/entities',
        payload: {
          id,
          type: 'Camera',
          fps: [{ type: 'Property', value: 5, observedAt: '2026-11-30T10:02:00Z' }],
        },
      }),
      // This may create: the role is asked first, then the object is decided on as any change.
      expect: (c) =>
        !writer(c)
          ? 'role'
          : c.relation === 'stranger'
            ? 'absent'
            : c.relation === 'client'
              ? 'denied'
              : 'ok',
    },
    {
      surface: 'temporal',
      action: "add attribute instances to the owner's temporal entity",
      fresh: temporalEntity,
      request: (id) => ({
        method: 'POST',
        url: `/ngsi-ld/v1/temporal/entities/${id}/attrs`,
        payload: { fps: [{ type: 'Property', value: 5, observedAt: '2026-11-30T10:02:00Z' }] },
      }),
      expect: amberObjectRule('change'),
    },
    {
      surface: 'temporal',
      action: "modify an instance of the owner's temporal entity",
      fresh: temporalInstance,
      request: (path) => ({
        method: 'PATCH',
        url: `/ngsi-ld/v1/temporal/entities/${path}`,
        payload: { value: 26 },
      }),
      expect: amberObjectRule('change'),
    },
    {
      surface: 'temporal',
      action: "delete an attribute of the owner's temporal entity",
      fresh: temporalEntity,
      request: (id) => ({
        method: 'DELETE',
        url: `/ngsi-ld/v1/temporal/entities/${id}/attrs/fps?deleteAll=true`,
      }),
      expect: amberObjectRule('change'),
    },
    {
      surface: 'temporal',
      action: "delete an instance of the owner's temporal entity",
      fresh: temporalInstance,
      request: (path) => ({ method: 'DELETE', url: `/ngsi-ld/v1/temporal/entities/${path}` }),
      expect: amberObjectRule('change'),
    },
    {
      surface: 'temporal',
      action: "delete the owner's temporal entity",
      fresh: temporalEntity,
      request: (id) => ({ method: 'DELETE', url: `/ngsi-ld/v1/temporal/entities/${id}` }),
      expect: amberObjectRule('change'),
    },
    {
      surface: 'temporal',
      action: "set its organisation's history retention of a type",
      request: () => ({
        method: 'PUT',
        url: '/ngsi-ld/v1/temporal/retention/Camera',
        payload: { seconds: 86_400 },
      }),
      expect: (c) => (c.role === 'admin' ? 'ok' : 'role'),
    },
    {
      surface: 'temporal',
      action: "read its organisation's history retention",
      request: () => ({ method: 'GET', url: '/ngsi-ld/v1/temporal/retention' }),
      expect: () => 'ok',
    },
    // ----------------------------------------------------------------------------------- ingestion
    {
      surface: 'ingestion',
      action: 'ingest a measurement over HTTP',
      request: (_, c) => ({
        method: 'POST',
        url: `/ingest/v1/default/measurements/NoiseLevelObserved/dev-${c.username}`,
        payload: { laeq: 51 },
      }),
      expect: (c) => (writer(c) ? 'ok' : 'role'),
    },
    // ------------------------------------------------------------------- NGSI-LD batches, discovery
    {
      surface: 'NGSI-LD',
      action: 'list entity types and attributes',
      request: () => ({ method: 'GET', url: '/ngsi-ld/v1/types' }),
      expect: () => 'ok',
    },
    // ----------------------------------------------------------------------- audit and break-glass
    {
      surface: 'audit',
      action: 'verify the audit chain',
      request: () => ({ method: 'GET', url: '/api/audit/verify' }),
      expect: (c) => (c.role === 'admin' ? 'ok' : 'role'),
    },
    {
      surface: 'audit',
      action: 'break-glass a TLP:AMBER report',
      fresh: report,
      request: (id) => ({
        method: 'POST',
        url: '/api/access/break-glass',
        payload: { object: id, reason: 'Bomb threat names this station: need the report now' },
      }),
      // The emergency path: any administrator, any object, audited under the owner.
      expect: (c) => (c.role === 'admin' ? 'ok' : 'role'),
    },
    {
      surface: 'audit',
      action: "list break-glass reads of its organisation's objects",
      request: () => ({ method: 'GET', url: '/api/access/break-glass' }),
      expect: () => 'ok',
    },
    // ---------------------------------------------------------------------------------- detection
    {
      surface: 'detection',
      action: 'create a rule',
      request: () => ({ method: 'POST', url: '/api/rules', payload: { rule: crowdRule } }),
      expect: (c) => (writer(c) ? 'ok' : 'role'),
    },
    {
      surface: 'detection',
      action: 'read a TLP:AMBER rule',
      fresh: () => detectionRule(),
      request: (id) => ({ method: 'GET', url: `/api/rules/${id}` }),
      expect: amberObjectRule('read'),
    },
    {
      surface: 'detection',
      action: "read a TLP:AMBER rule's versions",
      fresh: () => detectionRule(),
      request: (id) => ({ method: 'GET', url: `/api/rules/${id}/versions` }),
      expect: amberObjectRule('read'),
    },
    {
      surface: 'detection',
      action: 'change a TLP:AMBER rule',
      fresh: () => detectionRule(),
      request: (id) => ({
        method: 'PATCH',
        url: `/api/rules/${id}`,
        payload: { rule: { ...crowdRule, above: 150 } },
      }),
      expect: amberObjectRule('change'),
    },
    {
      surface: 'detection',
      action: 'disable a TLP:AMBER rule',
      fresh: () => detectionRule(),
      request: (id) => ({ method: 'POST', url: `/api/rules/${id}/disable` }),
      expect: amberObjectRule('change'),
    },
    {
      surface: 'detection',
      action: 'restore a version of a TLP:AMBER rule',
      fresh: () => detectionRule(),
      request: (id) => ({ method: 'POST', url: `/api/rules/${id}/restore`, payload: { version: 1 } }),
      expect: amberObjectRule('change'),
    },
    {
      surface: 'detection',
      action: 'delete a TLP:AMBER rule',
      fresh: () => detectionRule(),
      request: (id) => ({ method: 'DELETE', url: `/api/rules/${id}` }),
      expect: amberObjectRule('change'),
    },
    {
      surface: 'detection',
      action: 'dry-run a TLP:AMBER rule',
      fresh: () => detectionRule(),
      request: (id) => ({
        method: 'POST',
        url: `/api/rules/${id}/dry-run`,
        payload: { from: '2026-11-30T00:00:00Z', to: '2026-11-30T01:00:00Z' },
      }),
      expect: amberObjectRule('read'),
    },
    {
      surface: 'detection',
      action: 'dry-run a draft rule',
      request: () => ({
        method: 'POST',
        url: '/api/rules/dry-run',
        payload: { rule: crowdRule, from: '2026-11-30T00:00:00Z', to: '2026-11-30T01:00:00Z' },
      }),
      expect: (c) => (writer(c) ? 'ok' : 'role'),
    },
    {
      surface: 'detection',
      action: 'read a TLP:AMBER alert',
      fresh: alertEntity,
      request: (id) => ({ method: 'GET', url: `/api/alerts/${id}` }),
      expect: amberObjectRule('read'),
    },
    {
      surface: 'detection',
      action: 'acknowledge a TLP:AMBER alert',
      fresh: alertEntity,
      request: (id) => ({ method: 'POST', url: `/api/alerts/${id}/acknowledge` }),
      expect: amberObjectRule('change'),
    },
    {
      surface: 'detection',
      action: 'dismiss a TLP:AMBER alert',
      fresh: alertEntity,
      request: (id) => ({ method: 'POST', url: `/api/alerts/${id}/dismiss`, payload: { reason: 'a drill' } }),
      expect: amberObjectRule('change'),
    },
    {
      surface: 'detection',
      action: 'promote a TLP:AMBER alert',
      fresh: alertEntity,
      request: (id) => ({ method: 'POST', url: `/api/alerts/${id}/promote`, payload: { note: 'incident' } }),
      expect: amberObjectRule('change'),
    },
    // ------------------------------------------------------------------------------ routing reads
    {
      surface: 'routing',
      action: 'list closures',
      request: () => ({ method: 'GET', url: '/api/routing/closures' }),
      expect: () => 'ok',
    },
  ];

  it('stream: every account opens its live stream; an anonymous caller cannot', async () => {
    const address = await platform.listen();
    const open = async (authorization: string | undefined) => {
      const abort = new AbortController();
      const res = await fetch(`${address}/api/stream`, {
        headers: authorization ? { authorization } : {},
        signal: abort.signal,
      });
      let first = '';
      if (res.status === 200 && res.body) {
        const reader = res.body.getReader();
        const chunk = await reader.read();
        first = new TextDecoder().decode(chunk.value);
      }
      abort.abort();
      return { status: res.status, first };
    };
    for (const c of callers) {
      const r = await open(auth[c.username]);
      expect([c.username, r.status, r.first.includes('event: ready')]).toEqual([c.username, 200, true]);
    }
    expect((await open(undefined)).status).toBe(401);
  });

  const statusOf = (o: Outcome) => (o === 'ok' ? 'ok' : o === 'absent' ? 404 : 403);

  for (const row of rows) {
    it(`${row.surface}: ${row.action}`, async () => {
      const wrong: string[] = [];
      for (const c of callers) {
        const target = row.fresh ? await row.fresh() : '';
        const res = await send(row.request(target, c), c.username);
        const want = row.expect(c);
        const got = res.statusCode >= 200 && res.statusCode < 300 ? 'ok' : res.statusCode;
        let code: string | undefined;
        try {
          code = (res.json() as { code?: string }).code;
        } catch {
          code = undefined;
        }
        const codeOk =
          want === 'role'
            ? code === 'AUTH_ROLE_REQUIRED'
            : want === 'denied'
              ? code !== 'AUTH_ROLE_REQUIRED'
              : true;
        if (got !== statusOf(want) || !codeOk) {
          wrong.push(
            `${c.username} (${c.relation} ${c.role}): expected ${want}, got ${res.statusCode} ${res.body.slice(0, 160)}`,
          );
        }
      }
      expect(wrong).toEqual([]);
    });
  }
});
