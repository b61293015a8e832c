/**
 * The sharing gate against an independent model of MARKINGS.md, on the whole platform (issue 7, "Proof").
 *
 * A random world — organisations with declared clients and default markings, communities, a user of every role
 * in each organisation, and objects of every kind with random markings (reports, NGSI-LD entities in two
 * tenants with attributes to query, a location and a relationship to another entity or to nothing, hosted
 * @contexts, detection rules) — is built through the API. Then every user (and the public) takes every read path — GET one,
 * lists, NGSI-LD queries by type, q, geo and idPattern with count=true, joins of linked entities (join=flat),
 * `/types` and `/attributes`, dispatch candidates, audit, explain — and every answer is
 * compared with the model (reference-model.ts, written from the documents, no read keys). Every write path is
 * tried as every role of the owner organisation, of organisations that see the object and of organisations
 * that do not, and the status compared with the model's verdict. The world is then re-randomised (clients,
 * community members, re-marked objects, an entity deleted and re-created by another organisation, a disabled
 * account) and read again. Zero leaks, zero wrong denials, zero wrong answers are required.
 *
 * Last, the same comparisons run against a deliberately broken gate (PlantedBugGate, passed through the
 * composition root's `makeGate`): each dropped condition must be caught as leaks.
 *
 * Embedded preset (PGlite) always; the server preset (PostgreSQL + NATS) when DATABASE_URL and NATS_URL are
 * set. SAFECITY_POLICY_SEED replays a world; the seed is printed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OpenedStream, openStream } from '../api/stream/testing.ts';
import { ORG_KINDS } from '../modules/access/index.ts';
import { type PlantedBug, PlantedBugGate } from '../modules/sharing/testing.ts';
import { loadConfig } from './config.ts';
import { createPlatform, type Platform } from './platform.ts';
import {
  atLeastAsTight,
  derivedRoadChange,
  type ModelMarking,
  type ModelObject,
  type ModelTlp,
  type ModelUser,
  metres,
  PAPS,
  type Random,
  ReferenceModel,
  readMarkingHeader,
  seededRandom,
  TLPS,
  type WriteOutcome,
} from './reference-model.ts';
import { SERVER_SKIP, serverTestEnv } from './testing.ts';

const SEED = Number(process.env.SAFECITY_POLICY_SEED ?? 20261130);
const ADMIN_PASSWORD = 'long-secret-for-tests';
const PW = 'random-world-passphrase';
// Scaled for CI on two cores: 6 organisations × 5 roles + the platform administrator, 36 reports, 60 entities.
const N_ORGS = 6;
const N_COMMUNITIES = 3;
const N_REPORTS = 36;
/** Detection rules (kind `rule`): marked objects written and read like reports. */
const N_RULES = 12;
const N_ENTITIES = 60;
const ROLES = ['admin', 'operator', 'analyst', 'responder', 'viewer'] as const;
const ENTITY_TYPES = ['Camera', 'Sensor', 'Vehicle', 'Alert'] as const;
/** The default tenant ('') and one more: tenants never see each other's entities. */
const TENANTS = ['', 'ops'] as const;
const NGSI = '/ngsi-ld/v1';
/** Where entities are: central Monaco, whose road network is loaded for dispatch. */
const AREA = { minLon: 7.412, maxLon: 7.436, minLat: 43.729, maxLat: 43.747 };
/** A marker in every piece of content (titles, bodies, attribute values): the audit log must hold none. */
const MARK = '§';
/**
 * The share of objects each user also reads one by one in a round (lists and queries cover every object for
 * every user in every round): half, so that two rounds cost what one would and most pairs are read both ways.
 */
const ONE_BY_ONE = 0.5;

interface Account extends ModelUser {
  auth: string;
}
interface EntityObject extends ModelObject {
  type: string;
  /** Attribute name → value (location as [lon, lat]). */
  attrs: Map<string, unknown>;
}
type Outcome = WriteOutcome | 'other';

/** Counts and the first failures, per comparison run. */
class Tally {
  pairs = 0;
  reads = 0;
  writes = 0;
  leaks = 0;
  wrongDenials = 0;
  wrongAnswers = 0;
  readonly failures: string[] = [];
  readonly paths = new Map<string, number>();

  #fail(line: string) {
    if (this.failures.length < 25) this.failures.push(line);
  }

  #path(path: string) {
    this.pairs += 1;
    this.paths.set(path, (this.paths.get(path) ?? 0) + 1);
  }

  /** One object on one read path for one caller: seen or not, against the model. */
  read(path: string, who: string, what: string, expected: boolean, got: boolean) {
    this.#path(path);
    this.reads += 1;
    if (got && !expected) {
      this.leaks += 1;
      this.#fail(`LEAK ${path}: ${who} sees ${what}`);
    } else if (!got && expected) {
      this.wrongDenials += 1;
      this.#fail(`WRONG DENIAL ${path}: ${who} does not see ${what}`);
    }
  }

  /** A number the model predicts (count=true, entityCount, attributeCount). */
  count(path: string, who: string, what: string, expected: number, got: number | undefined) {
    this.#path(path);
    this.reads += 1;
    if (got === undefined || got === expected) {
      if (got === undefined) {
        this.wrongAnswers += 1;
        this.#fail(`NO COUNT ${path}: ${who} ${what}`);
      }
      return;
    }
    if (got > expected) {
      this.leaks += 1;
      this.#fail(`LEAK ${path}: ${who} counts ${got} ${what}, the model ${expected}`);
    } else {
      this.wrongDenials += 1;
      this.#fail(`WRONG DENIAL ${path}: ${who} counts ${got} ${what}, the model ${expected}`);
    }
  }

  /** A fact that must hold (a marking label as tight as its content, no content in the audit log…). */
  holds(path: string, ok: boolean, kind: 'leak' | 'wrongDenial' | 'wrongAnswer', what: string) {
    this.#path(path);
    if (ok) return;
    if (kind === 'leak') this.leaks += 1;
    else if (kind === 'wrongDenial') this.wrongDenials += 1;
    else this.wrongAnswers += 1;
    this.#fail(
      `${kind === 'leak' ? 'LEAK' : kind === 'wrongDenial' ? 'WRONG DENIAL' : 'WRONG'} ${path}: ${what}`,
    );
  }

  /** One write as one caller: the answer against the model's verdict. */
  write(path: string, who: string, what: string, expected: WriteOutcome, got: Outcome, detail = '') {
    this.#path(path);
    this.writes += 1;
    if (got === expected) return;
    const line = `${path}: ${who} on ${what}: the model says ${expected}, the platform ${got} ${detail}`;
    if (got === 'ok' || (expected === 'absent' && got !== 'other')) {
      // Done when it should not be, or refused in a way that reveals an object the caller cannot see.
      this.leaks += 1;
      this.#fail(`LEAK ${line}`);
    } else if (expected === 'ok' || got === 'absent') {
      this.wrongDenials += 1;
      this.#fail(`WRONG DENIAL ${line}`);
    } else {
      this.wrongAnswers += 1;
      this.#fail(`WRONG ${line}`);
    }
  }

  merge(t: Tally) {
    this.pairs += t.pairs;
    this.reads += t.reads;
    this.writes += t.writes;
    this.leaks += t.leaks;
    this.wrongDenials += t.wrongDenials;
    this.wrongAnswers += t.wrongAnswers;
    for (const f of t.failures) if (this.failures.length < 25) this.failures.push(f);
    for (const [p, n] of t.paths) this.paths.set(p, (this.paths.get(p) ?? 0) + n);
  }

  get clean(): boolean {
    return this.leaks === 0 && this.wrongDenials === 0 && this.wrongAnswers === 0;
  }
}

/** What an answer means, by status and error code (platform problem+json and NGSI-LD ProblemDetails). */
function outcomeOf(status: number, code: string | undefined): Outcome {
  if (status >= 200 && status < 300) return 'ok';
  if (
    code === 'ACCESS_ORG_NOT_FOUND' ||
    code === 'ACCESS_COMMUNITY_NOT_FOUND' ||
    code === 'ACCESS_USER_NOT_FOUND'
  )
    return 'unknown-audience';
  if (status === 409) return 'taken';
  if (status === 404) return 'absent';
  if (status === 403) return code === 'AUTH_ROLE_REQUIRED' ? 'role' : 'denied';
  return 'other';
}

function codeOf(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { code?: string }).code;
  } catch {
    return undefined;
  }
}

interface Preset {
  name: string;
  skip: string | undefined;
  env(): Promise<{ env: Record<string, string>; cleanup(): Promise<void> }>;
}

const PRESETS: Preset[] = [
  {
    name: 'embedded (PGlite)',
    skip: undefined,
    async env() {
      const dir = mkdtempSync(join(tmpdir(), 'safecity-sharing-'));
      return {
        env: { SAFECITY_DATA_DIR: dir },
        cleanup: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: 'server (PostgreSQL + NATS)',
    skip: SERVER_SKIP,
    async env() {
      const dir = mkdtempSync(join(tmpdir(), 'safecity-sharing-pg-'));
      const server = await serverTestEnv('sharing');
      return {
        env: { ...server.env, SAFECITY_DATA_DIR: dir },
        cleanup: async () => {
          await server.cleanup();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
];

for (const preset of PRESETS) {
  describe.skipIf(preset.skip)(
    `the sharing gate against a reference model of MARKINGS.md, every kind and path, seed ${SEED}, ${preset.name}${
      preset.skip ? ` (skipped: ${preset.skip})` : ''
    }`,
    () => {
      const r: Random = seededRandom(SEED);
      const model = new ReferenceModel();
      let platform: Platform;
      let gate: PlantedBugGate;
      let address = '';
      let cleanup: () => Promise<void> = async () => {};
      const accounts: Account[] = [];
      const orgs: string[] = ['city'];
      const communities: string[] = [];
      const reports: ModelObject[] = [];
      const entities: EntityObject[] = [];
      const contexts: ModelObject[] = [];
      /** Closures and slow-downs drawn by people (derived ones are a function of the entities: derivedRoadChange). */
      const roadChanges: ModelObject[] = [];
      let tally = new Tally();
      const totals = new Tally();
      let started = 0;
      let built = 0;
      let entitySeq = 0;
      let reportSeq = 0;

      // ------------------------------------------------------------------------------------------ HTTP
      type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
      const send = (
        who: Account | null,
        method: Method,
        url: string,
        payload?: unknown,
        headers: Record<string, string> = {},
      ) =>
        platform.server.inject({
          method,
          url,
          headers: {
            ...(who ? { authorization: who.auth } : {}),
            ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
            ...headers,
          },
          ...(payload !== undefined ? { payload: JSON.stringify(payload) } : {}),
        });
      const must = async (
        who: Account | null,
        method: Method,
        url: string,
        payload?: unknown,
        headers: Record<string, string> = {},
      ) => {
        const res = await send(who, method, url, payload, headers);
        if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
        return res.body ? res.json() : undefined;
      };
      const tenantHeader = (scope: string): Record<string, string> =>
        scope ? { 'NGSILD-Tenant': scope } : {};
      const platformAdmin = () => accounts[0] as Account;
      const adminOf = (org: string): Account => {
        if (org === 'city') return platformAdmin();
        const a = accounts.find((u) => u.org === org && u.roles.includes('admin') && !u.disabled);
        if (!a) throw new Error(`no administrator of ${org}`);
        return a;
      };
      const active = () => accounts.filter((u) => !u.disabled);
      const writersOf = (org?: string) =>
        active().filter(
          (u) =>
            (org === undefined || u.org === org) &&
            u.roles.some((x) => ['admin', 'operator', 'analyst'].includes(x)),
        );
      const label = (o: ModelObject) =>
        `${o.kind} ${o.scope ? `${o.scope}/` : ''}${o.id} (${o.marking.tlp} of ${o.owner}, audience ${JSON.stringify(
          o.marking.audience,
        )})`;
      const nameOf = (u: Account | null) =>
        u ? `${u.username} (${u.org}, ${u.roles.join('+')})` : 'the public';

      // ------------------------------------------------------------------------------------ markings
      /**
       * A random marking a creator may give: all five labels, PAP or none, audiences of organisations,
       * communities and users (named by id or username). TLP:RED often names a colleague of the creator, so
       * that named users of the owner organisation try to pass RED objects on.
       */
      const randomMarking = (creator: ModelUser): { wire: unknown; model: ModelMarking } => {
        const tlp = r.pick(TLPS);
        const users = r.some(
          [...model.users.values()].filter((u) => u.id !== creator.id),
          3,
        );
        if (tlp === 'RED' && r.chance(0.6)) {
          const colleague = [...model.users.values()].find(
            (u) => u.org === creator.org && u.id !== creator.id && !users.includes(u) && r.chance(0.5),
          );
          if (colleague) users.push(colleague);
        }
        const audience = {
          orgs: r.some(orgs, 3),
          communities: r.some([...communities, 'all'], 2).filter((c) => c !== 'all' || r.chance(0.3)),
          users: users.map((u) => u.id),
        };
        const pap = r.chance(0.5) ? r.pick(PAPS) : undefined;
        const wire = {
          tlp: r.chance(0.2) ? `TLP:${tlp}` : tlp,
          ...(pap ? { pap } : {}),
          audience: { ...audience, users: users.map((u) => (r.chance(0.5) ? u.username : u.id)) },
        };
        return { wire, model: { tlp, ...(pap ? { pap } : {}), audience } };
      };
      /** A marking naming an organisation, community or user that does not exist. */
      const unknownMarking = () => {
        const which = r.pick(['orgs', 'communities', 'users'] as const);
        return {
          tlp: r.pick(TLPS),
          audience: { orgs: [], communities: [], users: [], [which]: [`nobody-${r.int(1e6)}`] },
        };
      };

      // ------------------------------------------------------------------------------------ entities
      const randomPoint = (): [number, number] => [
        +(AREA.minLon + r.next() * (AREA.maxLon - AREA.minLon)).toFixed(6),
        +(AREA.minLat + r.next() * (AREA.maxLat - AREA.minLat)).toFixed(6),
      ];
      const entityAttrs = (type: string): Map<string, unknown> => {
        const attrs = new Map<string, unknown>([
          ['level', r.int(101)],
          ['status', r.pick(['open', 'closed', 'unknown'])],
          ['note', `${MARK}note ${r.int(1e9)}`],
          ['location', randomPoint()],
        ]);
        if (type === 'Vehicle') {
          attrs.set('serviceStatus', 'available');
          attrs.set('vehicleType', r.pick(['ambulance', 'fireTruck', 'police']));
        }
        // Alerts that close roads, slow them, or neither: derived closures and slow-downs follow them.
        if (type === 'Alert')
          attrs.set('subCategory', r.pick(['roadClosed', 'flood', 'trafficJam', 'roadWorks', 'weather']));
        // A relationship to another entity (of any tenant, organisation and marking) or to nothing: what
        // linked entity retrieval (join) may join.
        if (r.chance(0.7)) {
          const target =
            entities.length > 0 && r.chance(0.85)
              ? r.pick(entities).id
              : `urn:ngsi-ld:Nothing:n${r.int(1e6)}`;
          attrs.set('linkedTo', { rel: target });
        }
        return attrs;
      };
      const entityBody = (id: string, type: string, attrs: Map<string, unknown>, marking?: unknown) => {
        const body: Record<string, unknown> = { id, type };
        for (const [k, v] of attrs) {
          body[k] =
            k === 'location'
              ? { type: 'GeoProperty', value: { type: 'Point', coordinates: v } }
              : k === 'linkedTo'
                ? { type: 'Relationship', object: (v as { rel: string }).rel }
                : { type: 'Property', value: v };
        }
        if (marking !== undefined) body.marking = marking;
        return body;
      };
      /** Creates an entity as `creator` through the API and adds it to the model. */
      const createEntity = async (
        creator: Account,
        scope: string,
        id?: string,
        type = r.pick(ENTITY_TYPES) as string,
      ): Promise<EntityObject> => {
        const entityId = id ?? `urn:ngsi-ld:${type}:e${++entitySeq}`;
        const entityType = id ? (id.split(':')[2] as string) : type;
        const attrs = entityAttrs(entityType);
        const m = r.chance(0.15) ? undefined : randomMarking(creator);
        const res = await send(
          creator,
          'POST',
          `${NGSI}/entities`,
          entityBody(entityId, entityType, attrs, m?.wire),
          tenantHeader(scope),
        );
        if (res.statusCode !== 201) throw new Error(`create ${entityId}: ${res.statusCode} ${res.body}`);
        const e: EntityObject = {
          kind: 'entity',
          scope,
          id: entityId,
          owner: creator.org,
          createdBy: creator.id,
          marking: m?.model ?? (model.defaults.get(creator.org) as ModelMarking),
          type: entityType,
          attrs,
        };
        entities.push(e);
        return e;
      };
      const rules: ModelObject[] = [];
      let ruleSeq = 0;
      /**
       * A rule document of the detection rule language (its name is content: never in the audit log). It reads
       * a type no entity of this world has: the Alert entities rules raise are not in the model.
       */
      const ruleDoc = (n: number | string) => ({
        name: `${MARK}rule ${n}`,
        kind: 'threshold',
        severity: 'high',
        category: 'crowd',
        match: { types: ['Turbine'], attribute: 'level' },
        above: 90 + r.int(10),
      });
      const createRule = async (creator: Account): Promise<ModelObject> => {
        const m = r.chance(0.15) ? undefined : randomMarking(creator);
        const n = ++ruleSeq;
        const created = await must(creator, 'POST', '/api/rules', {
          rule: ruleDoc(n),
          ...(m ? { marking: m.wire } : {}),
        });
        const o: ModelObject = {
          kind: 'rule',
          scope: '',
          id: created.id,
          owner: creator.org,
          createdBy: creator.id,
          marking: m?.model ?? (model.defaults.get(creator.org) as ModelMarking),
        };
        rules.push(o);
        return o;
      };
      const createReport = async (creator: Account): Promise<ModelObject> => {
        const m = r.chance(0.15) ? undefined : randomMarking(creator);
        const n = ++reportSeq;
        const rep = await must(creator, 'POST', '/api/reports', {
          title: `${MARK}report ${n}`,
          body: `${MARK}body of report ${n}`,
          category: r.pick(['theft', 'fire', 'flood', 'protest']),
          ...(m ? { marking: m.wire } : {}),
        });
        const o: ModelObject = {
          kind: 'report',
          scope: '',
          id: rep.id,
          owner: creator.org,
          createdBy: creator.id,
          marking: m?.model ?? (model.defaults.get(creator.org) as ModelMarking),
        };
        reports.push(o);
        return o;
      };

      const roadPath = (kind: string) => `/api/routing/${kind === 'closure' ? 'closures' : 'slowdowns'}`;
      const roadChangeBody = (kind: string, marking?: unknown) => ({
        geometry: { type: 'Point', coordinates: randomPoint() },
        radius_m: 40,
        reason: `${MARK}reason ${r.int(1e6)}`,
        ...(kind === 'slowdown' ? { factor: 0.5 } : {}),
        ...(marking !== undefined ? { marking } : {}),
      });
      /** Draws a closure or slow-down as `creator` through the API and adds it to the model. */
      const drawRoadChange = async (creator: Account, kind = r.pick(['closure', 'slowdown'])) => {
        const m = r.chance(0.15) ? undefined : randomMarking(creator);
        const res = await send(creator, 'POST', roadPath(kind), roadChangeBody(kind, m?.wire));
        if (res.statusCode !== 201) throw new Error(`draw a ${kind}: ${res.statusCode} ${res.body}`);
        const o: ModelObject = {
          kind,
          scope: '',
          id: res.json().id,
          owner: creator.org,
          createdBy: creator.id,
          marking: m?.model ?? (model.defaults.get(creator.org) as ModelMarking),
        };
        roadChanges.push(o);
        return o;
      };

      // ------------------------------------------------------------------------------------ the world
      beforeAll(async () => {
        console.log(
          `sharing gate randomized test (${preset.name}): seed ${SEED} (SAFECITY_POLICY_SEED replays it)`,
        );
        started = performance.now();
        const e = await preset.env();
        cleanup = e.cleanup;
        platform = await createPlatform(
          loadConfig({
            ...e.env,
            SAFECITY_ADMIN_PASSWORD: ADMIN_PASSWORD,
            SAFECITY_MQTT_PORT: '0',
            SAFECITY_ROADS: 'monaco',
            HOST: '127.0.0.1',
            PORT: '0',
          }),
          {
            log: pino({ level: 'silent' }),
            makeGate: (o) => {
              gate = new PlantedBugGate(o);
              return gate;
            },
          },
        );
        address = await platform.listen();
        const login = async (username: string, password: string) => {
          const res = await send(null, 'POST', '/api/auth/login', { username, password });
          if (res.statusCode !== 200) throw new Error(`login ${username}: ${res.statusCode} ${res.body}`);
          return `Bearer ${res.json().token}`;
        };
        const admin: Account = {
          id: '',
          username: 'admin',
          org: 'city',
          roles: ['platform-admin', 'admin'],
          disabled: false,
          auth: await login('admin', ADMIN_PASSWORD),
        };
        admin.id = (await must(admin, 'GET', '/api/auth/me')).userId;
        accounts.push(admin);
        model.users.set(admin.id, admin);
        model.addOrg('city', { tlp: 'AMBER', audience: { orgs: [], communities: [], users: [] } });
        for (let i = 0; i < N_ORGS; i++) {
          const id = `o${i}`;
          await must(admin, 'POST', '/api/orgs', { id, name: `Organisation ${i}`, kind: r.pick(ORG_KINDS) });
          orgs.push(id);
          model.addOrg(id, { tlp: 'AMBER', audience: { orgs: [], communities: [], users: [] } });
        }
        for (let i = 0; i < N_COMMUNITIES; i++) {
          const id = `c${i}`;
          const members = r.some(orgs, 4);
          await must(admin, 'POST', '/api/communities', { id, name: `Community ${i}`, members });
          communities.push(id);
          model.communities.set(id, new Set(members));
        }
        // The platform administrator appoints each organisation's first administrator; that administrator
        // creates the organisation's other accounts (the platform administrator may not).
        for (const org of orgs.slice(1)) {
          for (const role of ROLES) {
            const username = `${org}-${role}`;
            const creator = role === 'admin' ? admin : adminOf(org);
            const u = await must(creator, 'POST', '/api/users', {
              username,
              orgId: org,
              roles: [role],
              password: PW,
            });
            const account: Account = {
              id: u.id,
              username,
              org,
              roles: [role],
              disabled: false,
              auth: await login(username, PW),
            };
            accounts.push(account);
            model.users.set(account.id, account);
          }
        }
        // Declared clients and default markings, by each organisation's administrator.
        for (const org of orgs.slice(1)) {
          const clients = r.some(
            orgs.filter((x) => x !== org && x !== 'city'),
            2,
          );
          const m = randomMarking(adminOf(org));
          if (m.model.tlp === 'RED') m.model.audience.users = [];
          const wire = { ...(m.wire as object), audience: { ...m.model.audience } };
          await must(adminOf(org), 'PATCH', `/api/orgs/${org}`, { clients, defaultMarking: wire });
          model.clients.set(org, new Set(clients));
          model.defaults.set(org, m.model);
        }
        await platform.routing.whenLoaded();
        for (let i = 0; i < N_REPORTS; i++) await createReport(r.pick(writersOf()));
        for (let i = 0; i < N_RULES; i++) await createRule(r.pick(writersOf()));
        for (let i = 0; i < N_ENTITIES; i++) {
          await createEntity(r.pick(writersOf()), i % 5 === 4 ? 'ops' : '');
        }
        const drawers = () => active().filter((u) => !u.roles.includes('viewer'));
        for (let i = 0; i < 10; i++) await drawRoadChange(r.pick(drawers()));
        for (let i = 0; i < 4; i++) {
          const creator = r.pick(writersOf());
          const res = await send(creator, 'POST', `${NGSI}/jsonldContexts`, {
            '@context': { [`term${i}`]: `https://example.org/${MARK}/${i}` },
          });
          if (res.statusCode !== 201) throw new Error(`host a context: ${res.statusCode} ${res.body}`);
          contexts.push({
            kind: 'jsonld-context',
            scope: '',
            id: decodeURIComponent(String(res.headers.location).split('/').pop() as string),
            owner: creator.org,
            createdBy: creator.id,
            marking: { tlp: 'CLEAR', audience: { orgs: [], communities: [], users: [] } },
          });
        }
        built = (performance.now() - started) / 1000;
      });
      afterAll(async () => {
        const s = (performance.now() - started) / 1000;
        console.log(
          `${preset.name}, seed ${SEED}: ${totals.pairs} pairs checked (${totals.reads} reads, ${totals.writes} writes, ${
            totals.pairs - totals.reads - totals.writes
          } facts), ${totals.leaks} leaks, ${totals.wrongDenials} wrong denials, ${totals.wrongAnswers} wrong answers, in ${s.toFixed(
            1,
          )} s (the world built in ${built.toFixed(1)} s); by path: ${[...totals.paths].map(([p, n]) => `${p} ${n}`).join(', ')}`,
        );
        await platform?.shutdown();
        await cleanup();
      });

      /** Runs a comparison with its own tally, adds it to the totals, and answers it. */
      const run = async (what: string, compare: () => Promise<void>): Promise<Tally> => {
        tally = new Tally();
        const t0 = performance.now();
        await compare();
        const mine = tally;
        console.log(
          `${preset.name} ${what}: ${mine.pairs} pairs, ${mine.leaks} leaks, ${mine.wrongDenials} wrong denials, ${mine.wrongAnswers} wrong answers in ${(
            (performance.now() - t0) / 1000
          ).toFixed(1)} s`,
        );
        return mine;
      };
      const count = (t: Tally) => {
        totals.pairs += t.pairs;
        totals.reads += t.reads;
        totals.writes += t.writes;
        totals.leaks += t.leaks;
        totals.wrongDenials += t.wrongDenials;
        totals.wrongAnswers += t.wrongAnswers;
        for (const [p, n] of t.paths) totals.paths.set(p, (totals.paths.get(p) ?? 0) + n);
      };
      const expectClean = (t: Tally) => {
        count(t);
        expect(t.failures).toEqual([]);
        expect({ leaks: t.leaks, wrongDenials: t.wrongDenials, wrongAnswers: t.wrongAnswers }).toEqual({
          leaks: 0,
          wrongDenials: 0,
          wrongAnswers: 0,
        });
      };

      // ------------------------------------------------------------------------------------ reads
      const readReports = async (u: Account) => {
        const who = nameOf(u);
        for (const o of reports) {
          if (!r.chance(ONE_BY_ONE)) continue;
          const res = await send(u, 'GET', `/api/reports/${o.id}`);
          if (res.statusCode !== 200 && res.statusCode !== 404)
            throw new Error(`GET report: ${res.statusCode} ${res.body}`);
          tally.read('GET /api/reports/:id', who, label(o), model.maySee(u, o), res.statusCode === 200);
          if (res.statusCode === 200) {
            const body = res.json();
            tally.holds(
              'report marking',
              body.ownerOrg === o.owner && body.marking?.tlp === o.marking.tlp,
              'wrongAnswer',
              `${label(o)} answered as ${body.marking?.tlp} of ${body.ownerOrg}`,
            );
          }
        }
        const listed = new Set<string>(
          ((await must(u, 'GET', '/api/reports?limit=1000')).items as { id: string }[]).map((x) => x.id),
        );
        for (const o of reports)
          tally.read('GET /api/reports', who, label(o), model.maySee(u, o), listed.has(o.id));
        const known = new Set(reports.map((o) => o.id));
        for (const id of listed)
          tally.holds('GET /api/reports', known.has(id), 'leak', `${who} lists unknown report ${id}`);
      };

      const readRules = async (u: Account) => {
        const who = nameOf(u);
        for (const o of rules) {
          if (!r.chance(ONE_BY_ONE)) continue;
          const path = r.chance(0.5) ? `/api/rules/${o.id}` : `/api/rules/${o.id}/versions`;
          const res = await send(u, 'GET', path);
          if (res.statusCode !== 200 && res.statusCode !== 404)
            throw new Error(`GET ${path}: ${res.statusCode} ${res.body}`);
          tally.read(
            `GET ${path.replace(o.id, ':id')}`,
            who,
            label(o),
            model.maySee(u, o),
            res.statusCode === 200,
          );
          if (res.statusCode === 200 && !path.endsWith('/versions')) {
            const body = res.json();
            tally.holds(
              'rule marking',
              body.ownerOrg === o.owner && body.marking?.tlp === o.marking.tlp,
              'wrongAnswer',
              `${label(o)} answered as ${body.marking?.tlp} of ${body.ownerOrg}`,
            );
          }
        }
        const listed = new Set<string>(
          ((await must(u, 'GET', '/api/rules?limit=1000')).items as { id: string }[]).map((x) => x.id),
        );
        for (const o of rules)
          tally.read('GET /api/rules', who, label(o), model.maySee(u, o), listed.has(o.id));
        const known = new Set(rules.map((o) => o.id));
        for (const id of listed)
          tally.holds('GET /api/rules', known.has(id), 'leak', `${who} lists unknown rule ${id}`);
      };

      const entityOf = new Map<string, EntityObject>();
      const indexEntities = () => {
        entityOf.clear();
        for (const e of entities) entityOf.set(`${e.scope}|${e.id}`, e);
      };

      /**
       * A query's answer against the model: every entity of the tenant that matches the filter (visibility
       * aside) must be in the answer exactly when the caller may see it; the count is the visible count; the
       * SafeCity-Marking header is at least as tight as the entities it carries.
       */
      const compareQuery = (
        path: string,
        u: Account | null,
        scope: string,
        matches: (e: EntityObject) => boolean,
        res: { statusCode: number; body: string; headers: Record<string, unknown> },
        what: string,
      ) => {
        const who = nameOf(u);
        if (res.statusCode !== 200) {
          tally.holds(
            path,
            false,
            'wrongAnswer',
            `${who} ${what}: ${res.statusCode} ${res.body.slice(0, 300)}`,
          );
          return;
        }
        const items = JSON.parse(res.body) as { id: string }[];
        const got = new Set(items.map((x) => x.id));
        const pool = entities.filter((e) => e.scope === scope && matches(e));
        let visible = 0;
        for (const e of pool) {
          const expected = model.maySee(u, e);
          if (expected) visible += 1;
          tally.read(path, who, `${label(e)} for ${what}`, expected, got.has(e.id));
        }
        for (const id of got) {
          tally.holds(
            path,
            pool.some((e) => e.id === id),
            'leak',
            `${who} ${what}: answered ${id}, which the model does not match`,
          );
        }
        const header = res.headers['ngsild-results-count'];
        tally.count(`${path} count`, who, what, visible, header === undefined ? undefined : Number(header));
        const held = items.map((x) => entityOf.get(`${scope}|${x.id}`)).filter((e): e is EntityObject => !!e);
        tally.holds(
          `${path} SafeCity-Marking`,
          atLeastAsTight(readMarkingHeader(res.headers['safecity-marking'] as string | undefined), held),
          'leak',
          `${who} ${what}: header ${String(res.headers['safecity-marking'])} for ${held.map(label).join('; ')}`,
        );
      };

      /**
       * A joined answer (join=flat) against the model: the caller's visible entities of the type, then the
       * entities their `linkedTo` names that the caller may see — an invisible one never, exactly as an absent
       * one; nothing else; a SafeCity-Marking at least as tight as everything the answer carries.
       */
      const compareJoin = (
        path: string,
        u: Account | null,
        scope: string,
        type: string,
        res: { statusCode: number; body: string; headers: Record<string, unknown> },
      ) => {
        const who = nameOf(u);
        if (res.statusCode !== 200) {
          tally.holds(
            path,
            false,
            'wrongAnswer',
            `${who} join ${type}: ${res.statusCode} ${res.body.slice(0, 300)}`,
          );
          return;
        }
        const items = JSON.parse(res.body) as { id: string }[];
        const got = new Set(items.map((x) => x.id));
        const inScope = entities.filter((e) => e.scope === scope);
        const roots = inScope.filter((e) => e.type === type && model.maySee(u, e));
        const linkedIds = new Set(
          roots.map((e) => (e.attrs.get('linkedTo') as { rel: string } | undefined)?.rel).filter((x) => !!x),
        );
        for (const e of inScope) {
          if (e.type !== type && !linkedIds.has(e.id)) continue;
          const why = e.type === type ? `${type} of the answer` : `linked from a ${type}`;
          tally.read(path, who, `${label(e)} (${why})`, model.maySee(u, e), got.has(e.id));
        }
        for (const id of got) {
          tally.holds(
            path,
            inScope.some((e) => e.id === id && (e.type === type || linkedIds.has(id))),
            'leak',
            `${who} join ${type}: answered ${id}, which the model neither matches nor links`,
          );
        }
        const held = items.map((x) => entityOf.get(`${scope}|${x.id}`)).filter((e): e is EntityObject => !!e);
        tally.holds(
          `${path} SafeCity-Marking`,
          atLeastAsTight(readMarkingHeader(res.headers['safecity-marking'] as string | undefined), held),
          'leak',
          `${who} join ${type}: header ${String(res.headers['safecity-marking'])} for ${held.map(label).join('; ')}`,
        );
      };

      const qQueries: { q: string; test: (e: EntityObject) => boolean }[] = [
        { q: 'level>50', test: (e) => Number(e.attrs.get('level')) > 50 },
        { q: 'status=="open"', test: (e) => e.attrs.get('status') === 'open' },
        {
          q: 'level>=20;level<=70',
          test: (e) => Number(e.attrs.get('level')) >= 20 && Number(e.attrs.get('level')) <= 70,
        },
        {
          q: 'status=="closed"|level<10',
          test: (e) => e.attrs.get('status') === 'closed' || Number(e.attrs.get('level')) < 10,
        },
      ];

      /** A circle whose edge is 15 m or more away from every entity, so rounding never decides. */
      const safeNear = (): { point: [number, number]; distance: number } => {
        const point = randomPoint();
        let distance = 300 + r.int(1200);
        const ds = entities.map((e) => metres(point, e.attrs.get('location') as [number, number]));
        while (ds.some((d) => Math.abs(d - distance) < 15)) distance += 20;
        return { point, distance };
      };
      /** A box whose edges are away from every entity. */
      const safeBox = (): [number, number, number, number] => {
        const a = randomPoint();
        const b = randomPoint();
        const box: [number, number, number, number] = [
          Math.min(a[0], b[0]),
          Math.min(a[1], b[1]),
          Math.max(a[0], b[0]),
          Math.max(a[1], b[1]),
        ];
        const near = (x: number, y: number) => Math.abs(x - y) < 2e-4;
        for (const e of entities) {
          const [lon, lat] = e.attrs.get('location') as [number, number];
          if (near(lon, box[0]) || near(lon, box[2]) || near(lat, box[1]) || near(lat, box[3]))
            return safeBox();
        }
        return box;
      };
      const inBox = (e: EntityObject, b: [number, number, number, number]) => {
        const [lon, lat] = e.attrs.get('location') as [number, number];
        return lon > b[0] && lon < b[2] && lat > b[1] && lat < b[3];
      };

      const readEntities = async (u: Account | null) => {
        const who = nameOf(u);
        for (const e of entities) {
          if (!r.chance(ONE_BY_ONE)) continue;
          const res = await send(
            u,
            'GET',
            `${NGSI}/entities/${encodeURIComponent(e.id)}`,
            undefined,
            tenantHeader(e.scope),
          );
          if (res.statusCode !== 200 && res.statusCode !== 404)
            throw new Error(`GET entity: ${res.statusCode} ${res.body}`);
          const seen = res.statusCode === 200;
          tally.read('GET /ngsi-ld/v1/entities/:id', who, label(e), model.maySee(u, e), seen);
          if (seen) {
            tally.holds(
              'GET /ngsi-ld/v1/entities/:id SafeCity-Marking',
              atLeastAsTight(readMarkingHeader(res.headers['safecity-marking'] as string | undefined), [e]),
              'leak',
              `${who}: header ${String(res.headers['safecity-marking'])} for ${label(e)}`,
            );
          }
        }
        for (const scope of TENANTS) {
          const h = tenantHeader(scope);
          const get = (query: string) =>
            send(u, 'GET', `${NGSI}/entities?${query}&limit=1000&count=true`, undefined, h);
          for (const type of ENTITY_TYPES) {
            compareQuery(
              'query type',
              u,
              scope,
              (e) => e.type === type,
              await get(`type=${type}`),
              `type=${type}`,
            );
          }
          const q = r.pick(qQueries);
          compareQuery(
            'query q',
            u,
            scope,
            q.test,
            await get(`type=${ENTITY_TYPES.join(',')}&q=${encodeURIComponent(q.q)}`),
            `q=${q.q}`,
          );
          const near = safeNear();
          const nearQuery = `georel=${encodeURIComponent(`near;maxDistance==${near.distance}`)}&geometry=Point&coordinates=${encodeURIComponent(JSON.stringify(near.point))}`;
          const isNear = (e: EntityObject) =>
            metres(near.point, e.attrs.get('location') as [number, number]) < near.distance;
          compareQuery('query geo near', u, scope, isNear, await get(nearQuery), `near ${near.distance} m`);
          compareQuery(
            'query geo near + q',
            u,
            scope,
            (e) => isNear(e) && q.test(e),
            await get(`${nearQuery}&q=${encodeURIComponent(q.q)}`),
            `near ${near.distance} m and q=${q.q}`,
          );
          const box = safeBox();
          const ring = [
            [box[0], box[1]],
            [box[2], box[1]],
            [box[2], box[3]],
            [box[0], box[3]],
            [box[0], box[1]],
          ];
          compareQuery(
            'query geo within',
            u,
            scope,
            (e) => inBox(e, box),
            await get(
              `georel=within&geometry=Polygon&coordinates=${encodeURIComponent(JSON.stringify([ring]))}`,
            ),
            `within ${box.join(',')}`,
          );
          compareQuery(
            'query attrs',
            u,
            scope,
            (e) => e.attrs.has('note'),
            await get('attrs=note'),
            'attrs=note',
          );
          const type = r.pick(ENTITY_TYPES);
          compareQuery(
            'query idPattern',
            u,
            scope,
            (e) => e.id.startsWith(`urn:ngsi-ld:${type}:`),
            await get(`idPattern=${encodeURIComponent(`^urn:ngsi-ld:${type}:.*`)}`),
            `idPattern ${type}`,
          );
          const joinType = r.pick(ENTITY_TYPES);
          compareJoin(
            'query join=flat',
            u,
            scope,
            joinType,
            await get(`type=${joinType}&join=flat&joinLevel=1`),
          );
          const post = await send(
            u,
            'POST',
            `${NGSI}/entityOperations/query?limit=1000&count=true`,
            { type: 'Query', entities: [{ type }], q: q.q },
            h,
          );
          compareQuery(
            'POST entityOperations/query',
            u,
            scope,
            (e) => e.type === type && q.test(e),
            post,
            `Query ${type} q=${q.q}`,
          );
          await readDiscovery(u, scope);
        }
      };

      /** `/types` and `/attributes`: names and counts of what the caller may see, no more, no less. */
      const readDiscovery = async (u: Account | null, scope: string) => {
        const who = nameOf(u);
        const h = tenantHeader(scope);
        const visible = entities.filter((e) => e.scope === scope && model.maySee(u, e));
        const all = entities.filter((e) => e.scope === scope);
        const types = await send(u, 'GET', `${NGSI}/types`, undefined, h);
        const typeList = new Set<string>(types.statusCode === 200 ? types.json().typeList : []);
        for (const t of ENTITY_TYPES) {
          const expected = visible.filter((e) => e.type === t).length;
          tally.read('GET /types', who, `type ${t} in tenant "${scope}"`, expected > 0, typeList.has(t));
          const one = await send(u, 'GET', `${NGSI}/types/${t}`, undefined, h);
          if (expected === 0) {
            tally.read(
              'GET /types/:type',
              who,
              `type ${t} in tenant "${scope}"`,
              false,
              one.statusCode === 200,
            );
          } else {
            tally.count(
              'GET /types/:type entityCount',
              who,
              `entities of type ${t} in "${scope}"`,
              expected,
              one.statusCode === 200 ? one.json().entityCount : 0,
            );
          }
        }
        const names = [...new Set(all.flatMap((e) => [...e.attrs.keys()]))];
        const attrs = await send(u, 'GET', `${NGSI}/attributes`, undefined, h);
        const attrList = new Set<string>(attrs.statusCode === 200 ? attrs.json().attributeList : []);
        for (const a of attrList) {
          tally.holds(
            'GET /attributes',
            names.includes(a),
            'leak',
            `${who} is told of attribute ${a} in "${scope}"`,
          );
        }
        for (const a of names) {
          const having = visible.filter((e) => e.attrs.has(a));
          tally.read(
            'GET /attributes',
            who,
            `attribute ${a} in "${scope}"`,
            having.length > 0,
            attrList.has(a),
          );
          if (r.chance(0.5)) continue;
          const one = await send(u, 'GET', `${NGSI}/attributes/${a}`, undefined, h);
          if (having.length === 0) {
            tally.read(
              'GET /attributes/:attr',
              who,
              `attribute ${a} in "${scope}"`,
              false,
              one.statusCode === 200,
            );
            continue;
          }
          const body = one.statusCode === 200 ? one.json() : {};
          tally.count(
            'GET /attributes/:attr attributeCount',
            who,
            `entities with ${a}`,
            having.length,
            body.attributeCount ?? 0,
          );
          const typeNames = new Set<string>(body.typeNames ?? []);
          for (const t of ENTITY_TYPES) {
            tally.read(
              'GET /attributes/:attr typeNames',
              who,
              `type ${t} having ${a} in "${scope}"`,
              having.some((e) => e.type === t),
              typeNames.has(t),
            );
          }
        }
      };

      /** Dispatch without a unit list ranks the vehicles the caller may see, and only those. */
      const readDispatch = async (u: Account) => {
        const who = nameOf(u);
        const res = await send(u, 'POST', '/api/routing/dispatch', { incident: randomPoint(), k: 0 });
        if (res.statusCode !== 200) {
          tally.holds(
            'dispatch',
            false,
            'wrongAnswer',
            `${who}: ${res.statusCode} ${res.body.slice(0, 200)}`,
          );
          return;
        }
        const b = res.json() as Record<'ranked' | 'unreachable' | 'excluded', { id: string }[]>;
        const got = new Set([...b.ranked, ...b.unreachable, ...b.excluded].map((x) => x.id));
        const vehicles = entities.filter((e) => e.scope === '' && e.type === 'Vehicle');
        for (const e of vehicles)
          tally.read('dispatch candidates', who, label(e), model.maySee(u, e), got.has(e.id));
        for (const id of got) {
          tally.holds(
            'dispatch candidates',
            vehicles.some((e) => e.id === id),
            'leak',
            `${who} is offered ${id}`,
          );
        }
      };

      /** Hosted @contexts are public (TLP:CLEAR): anyone reads them, the public included. */
      const readContexts = async (u: Account | null) => {
        for (const o of contexts) {
          const res = await send(u, 'GET', `${NGSI}/jsonldContexts/${encodeURIComponent(o.id)}`);
          tally.read(
            'GET /jsonldContexts/:id',
            nameOf(u),
            label(o),
            model.maySee(u, o),
            res.statusCode === 200,
          );
        }
      };

      /**
       * The public (no account): NGSI-LD needs an account, even for TLP:CLEAR entities (MARKINGS.md allows CLEAR
       * on public feeds; the broker is not one), so every read is 401 and nothing leaks.
       */
      const readPublic = async () => {
        for (const e of entities.filter((x) => x.marking.tlp === 'CLEAR').slice(0, 5)) {
          const res = await send(null, 'GET', url(e), undefined, tenantHeader(e.scope));
          tally.holds(
            'the public: GET /ngsi-ld/v1/entities/:id',
            res.statusCode === 401,
            'leak',
            `${label(e)}: ${res.statusCode}`,
          );
        }
        for (const path of ['/entities?type=Camera', '/types', '/attributes']) {
          const res = await send(null, 'GET', `${NGSI}${path}`);
          tally.holds(
            `the public: GET ${path}`,
            res.statusCode === 401,
            'leak',
            `${res.statusCode} ${res.body.slice(0, 100)}`,
          );
        }
      };

      /** Closures and slow-downs, drawn and derived, as one user sees them: lists, single reads, counts. */
      const readRoadChanges = async (u: Account) => {
        const who = nameOf(u);
        const derived = entities.map(derivedRoadChange).filter((o): o is ModelObject => o !== undefined);
        const counted = { closure: 0, slowdown: 0 } as Record<string, number>;
        for (const kind of ['closure', 'slowdown']) {
          const listed = (await must(u, 'GET', roadPath(kind))).items as {
            id: string;
            source: string;
            ownerOrg: string;
            marking: { tlp: string };
          }[];
          const byId = new Map(listed.map((x) => [x.id, x]));
          const bySource = new Map(listed.filter((x) => x.source !== 'api').map((x) => [x.source, x]));
          for (const o of roadChanges.filter((x) => x.kind === kind)) {
            const expected = model.maySee(u, o);
            if (expected) counted[kind] = (counted[kind] ?? 0) + 1;
            tally.read(`GET ${roadPath(kind)}`, who, label(o), expected, byId.has(o.id));
          }
          for (const o of derived.filter((x) => x.kind === kind)) {
            const expected = model.maySee(u, o);
            if (expected) counted[kind] = (counted[kind] ?? 0) + 1;
            const got = bySource.get(o.id);
            tally.read(`GET ${roadPath(kind)} (derived)`, who, label(o), expected, got !== undefined);
            if (got) {
              tally.holds(
                `GET ${roadPath(kind)} (derived) marking`,
                got.ownerOrg === o.owner && got.marking.tlp === o.marking.tlp,
                'leak',
                `${label(o)} listed as ${got.marking.tlp} of ${got.ownerOrg}`,
              );
            }
          }
          const known = new Set([
            ...roadChanges.map((o) => o.id),
            ...derived.filter((o) => o.kind === kind).map((o) => o.id),
          ]);
          for (const x of listed) {
            tally.holds(
              `GET ${roadPath(kind)}`,
              known.has(x.source === 'api' ? x.id : x.source),
              'leak',
              `${who} is shown ${kind} ${x.id} from ${x.source}, which the model does not have`,
            );
          }
        }
        for (const o of roadChanges) {
          if (!r.chance(ONE_BY_ONE)) continue;
          const res = await send(u, 'GET', `${roadPath(o.kind)}/${o.id}`);
          tally.read(
            `GET ${roadPath(o.kind)}/:id`,
            who,
            label(o),
            model.maySee(u, o),
            res.statusCode === 200,
          );
        }
        const stats = (await must(u, 'GET', '/api/routing/network')).stats as Record<string, number>;
        tally.count(
          'GET /api/routing/network stats.closures',
          who,
          'closures',
          counted.closure ?? 0,
          stats.closures,
        );
        tally.count(
          'GET /api/routing/network stats.slowdowns',
          who,
          'slow-downs',
          counted.slowdown ?? 0,
          stats.slowdowns,
        );
      };

      /**
       * Derived changes follow their sources asynchronously (one consumer group of entity events): the road
       * changes are compared once the derivation has settled — again and again for up to five seconds, the last
       * comparison counting.
       */
      const readAllRoadChanges = async () => {
        const outer = tally;
        for (let attempt = 0; ; attempt++) {
          tally = new Tally();
          for (const u of active()) await readRoadChanges(u);
          if (tally.clean || attempt >= 25) break;
          await new Promise((res) => setTimeout(res, 200));
        }
        const mine = tally;
        tally = outer;
        tally.merge(mine);
      };

      const readEverything = async () => {
        indexEntities();
        for (const u of accounts) {
          if (u.disabled) {
            // A disabled account's token no longer works, on any path.
            const res = await send(u, 'GET', '/api/reports?limit=1');
            tally.holds(
              'disabled account',
              res.statusCode === 401,
              'leak',
              `${u.username} still reads: ${res.statusCode}`,
            );
            const ngsi = await send(u, 'GET', `${NGSI}/entities?type=Camera`);
            tally.holds(
              'disabled account',
              ngsi.statusCode === 401,
              'leak',
              `${u.username} still queries: ${ngsi.statusCode}`,
            );
            continue;
          }
          await readReports(u);
          await readRules(u);
          await readEntities(u);
          await readDispatch(u);
          await readContexts(u);
        }
        await readAllRoadChanges();
        await readPublic();
        await readContexts(null);
      };

      // ------------------------------------------------------------------------------------ writes
      /** A target for a caller, rotating: its organisation's, another's it sees, one it does not see. */
      const targetFor = <T extends ModelObject>(
        u: Account,
        pool: readonly T[],
        turn: number,
      ): T | undefined => {
        const own = pool.filter((o) => o.owner === u.org && model.maySee(u, o));
        const seen = pool.filter((o) => o.owner !== u.org && model.maySee(u, o));
        const unseen = pool.filter((o) => !model.maySee(u, o));
        const groups = [own, seen, unseen].filter((g) => g.length > 0);
        if (groups.length === 0) return undefined;
        return r.pick(groups[turn % groups.length] as T[]);
      };
      const outcome = (res: { statusCode: number; body: string }): Outcome =>
        outcomeOf(res.statusCode, codeOf(res.body));
      /** The outcome of a one-entity batch: 2xx without errors, else the entity's error. */
      const batchOutcome = (res: { statusCode: number; body: string }): Outcome => {
        if (res.statusCode === 207) {
          const err = (JSON.parse(res.body) as { errors: { error: { status: number; code?: string } }[] })
            .errors[0];
          return err ? outcomeOf(err.error.status, err.error.code) : 'other';
        }
        return outcome(res);
      };
      const url = (e: ModelObject, rest = '') => `${NGSI}/entities/${encodeURIComponent(e.id)}${rest}`;
      const nextMarking = (e: ModelObject, u: Account) => {
        if (r.chance(0.1)) return { wire: unknownMarking(), model: undefined, unknownAudience: true };
        const creator = model.users.get(e.createdBy) ?? u;
        const m = randomMarking(creator);
        return { wire: m.wire, model: m.model, unknownAudience: false };
      };
      /** After an entity is deleted, another organisation creates an entity with the same id. */
      const recreateElsewhere = async (e: EntityObject) => {
        entities.splice(entities.indexOf(e), 1);
        const other = r.pick(writersOf().filter((w) => w.org !== e.owner));
        await createEntity(other, e.scope, e.id);
      };

      interface EntityWrite {
        path: string;
        /** Sends the write; answers the outcome and the marking it asked for (if any). */
        send(u: Account, e: EntityObject): Promise<{ got: Outcome; detail: string }>;
        /** The model's verdict. */
        expect(u: Account, e: EntityObject): WriteOutcome;
        /** The model after the write was done. */
        apply(u: Account, e: EntityObject): Promise<void> | void;
      }
      let pendingMarking: { model: ModelMarking | undefined; unknownAudience: boolean } | undefined;
      const level = () => r.int(101);
      const entityWrites: EntityWrite[] = [
        {
          path: 'POST /entities/:id/attrs',
          send: async (u, e) => {
            const v = level();
            const res = await send(
              u,
              'POST',
              url(e, '/attrs'),
              { level: { type: 'Property', value: v } },
              tenantHeader(e.scope),
            );
            if (outcome(res) === 'ok') e.attrs.set('level', v);
            return { got: outcome(res), detail: res.body };
          },
          expect: (u, e) => model.mayChange(u, e),
          apply: () => {},
        },
        {
          path: 'PATCH /entities/:id/attrs',
          send: async (u, e) => {
            const v = level();
            const res = await send(
              u,
              'PATCH',
              url(e, '/attrs'),
              { level: { type: 'Property', value: v } },
              tenantHeader(e.scope),
            );
            if (outcome(res) === 'ok') e.attrs.set('level', v);
            return { got: outcome(res), detail: res.body };
          },
          expect: (u, e) => model.mayChange(u, e),
          apply: () => {},
        },
        {
          path: 'PATCH /entities/:id (merge)',
          send: async (u, e) => {
            const v = r.pick(['open', 'closed', 'unknown']);
            const res = await send(
              u,
              'PATCH',
              url(e),
              { status: { type: 'Property', value: v } },
              tenantHeader(e.scope),
            );
            if (outcome(res) === 'ok') e.attrs.set('status', v);
            return { got: outcome(res), detail: res.body };
          },
          expect: (u, e) => model.mayChange(u, e),
          apply: () => {},
        },
        {
          path: 'PUT /entities/:id (replace)',
          send: async (u, e) => {
            const attrs = entityAttrs(e.type);
            const body = entityBody(e.id, e.type, attrs);
            const res = await send(u, 'PUT', url(e), body, tenantHeader(e.scope));
            if (outcome(res) === 'ok') e.attrs = attrs;
            return { got: outcome(res), detail: res.body };
          },
          expect: (u, e) => model.mayChange(u, e),
          apply: () => {},
        },
        {
          path: 'PATCH /entities/:id/attrs/:attr',
          send: async (u, e) => {
            const v = level();
            const res = await send(u, 'PATCH', url(e, '/attrs/level'), { value: v }, tenantHeader(e.scope));
            if (outcome(res) === 'ok') e.attrs.set('level', v);
            return { got: outcome(res), detail: res.body };
          },
          expect: (u, e) => model.mayChange(u, e),
          apply: () => {},
        },
        {
          path: 'PUT /entities/:id/attrs/:attr',
          send: async (u, e) => {
            const v = r.pick(['open', 'closed', 'unknown']);
            const res = await send(
              u,
              'PUT',
              url(e, '/attrs/status'),
              { type: 'Property', value: v },
              tenantHeader(e.scope),
            );
            if (outcome(res) === 'ok') e.attrs.set('status', v);
            return { got: outcome(res), detail: res.body };
          },
          expect: (u, e) => model.mayChange(u, e),
          apply: () => {},
        },
        {
          path: 'DELETE /entities/:id/attrs/:attr',
          send: async (u, e) => {
            const owner = writersOf(e.owner).find((w) => model.maySee(w, e));
            if (!e.attrs.has('note') && owner) {
              // Put it back first, as its owner, so that the deletion has something to delete.
              const back = await send(
                owner,
                'POST',
                url(e, '/attrs'),
                { note: { type: 'Property', value: `${MARK}again` } },
                tenantHeader(e.scope),
              );
              if (back.statusCode !== 204)
                throw new Error(`note back on ${e.id}: ${back.statusCode} ${back.body}`);
              e.attrs.set('note', `${MARK}again`);
            }
            const res = await send(u, 'DELETE', url(e, '/attrs/note'), undefined, tenantHeader(e.scope));
            if (outcome(res) === 'ok') e.attrs.delete('note');
            return { got: outcome(res), detail: res.body };
          },
          expect: (u, e) => model.mayChange(u, e),
          apply: () => {},
        },
        {
          path: 'POST /entities/:id/attrs (marking)',
          send: async (u, e) => {
            const next = nextMarking(e, u);
            pendingMarking = next;
            const res = await send(
              u,
              'POST',
              url(e, '/attrs'),
              { marking: next.wire },
              tenantHeader(e.scope),
            );
            return { got: outcome(res), detail: res.body };
          },
          expect: (u, e) =>
            model.mayChange(u, e, {
              next: pendingMarking?.model,
              unknownAudience: pendingMarking?.unknownAudience,
            }),
          apply: (_u, e) => {
            if (pendingMarking?.model) e.marking = pendingMarking.model;
          },
        },
        {
          path: 'POST entityOperations/update',
          send: async (u, e) => {
            const v = level();
            const res = await send(
              u,
              'POST',
              `${NGSI}/entityOperations/update`,
              [{ id: e.id, type: e.type, level: { type: 'Property', value: v } }],
              tenantHeader(e.scope),
            );
            if (batchOutcome(res) === 'ok') e.attrs.set('level', v);
            return { got: batchOutcome(res), detail: res.body };
          },
          expect: (u, e) => model.mayChange(u, e),
          apply: () => {},
        },
        {
          path: 'POST entityOperations/merge',
          send: async (u, e) => {
            const v = level();
            const res = await send(
              u,
              'POST',
              `${NGSI}/entityOperations/merge`,
              [{ id: e.id, type: e.type, level: { type: 'Property', value: v } }],
              tenantHeader(e.scope),
            );
            if (batchOutcome(res) === 'ok') e.attrs.set('level', v);
            return { got: batchOutcome(res), detail: res.body };
          },
          expect: (u, e) => model.mayChange(u, e),
          apply: () => {},
        },
        {
          path: 'POST entityOperations/upsert?options=update',
          send: async (u, e) => {
            const v = level();
            const res = await send(
              u,
              'POST',
              `${NGSI}/entityOperations/upsert?options=update`,
              [{ id: e.id, type: e.type, level: { type: 'Property', value: v } }],
              tenantHeader(e.scope),
            );
            if (batchOutcome(res) === 'ok') e.attrs.set('level', v);
            return { got: batchOutcome(res), detail: res.body };
          },
          expect: (u, e) => model.mayUpsert(u, e),
          apply: () => {},
        },
        {
          path: 'POST /entities (an id that is taken)',
          send: async (u, e) => {
            const res = await send(
              u,
              'POST',
              `${NGSI}/entities`,
              entityBody(e.id, e.type, entityAttrs(e.type)),
              tenantHeader(e.scope),
            );
            return { got: outcome(res), detail: res.body };
          },
          expect: (u, e) => model.mayCreateTaken(u, e),
          apply: () => {},
        },
        {
          path: 'DELETE /entities/:id',
          send: async (u, e) => {
            const res = await send(u, 'DELETE', url(e), undefined, tenantHeader(e.scope));
            return { got: outcome(res), detail: res.body };
          },
          expect: (u, e) => model.mayChange(u, e),
          apply: (_u, e) => recreateElsewhere(e),
        },
        {
          path: 'POST entityOperations/delete',
          send: async (u, e) => {
            const res = await send(
              u,
              'POST',
              `${NGSI}/entityOperations/delete`,
              [e.id],
              tenantHeader(e.scope),
            );
            return { got: batchOutcome(res), detail: res.body };
          },
          expect: (u, e) => model.mayChange(u, e),
          apply: (_u, e) => recreateElsewhere(e),
        },
      ];

      const reportWrites: EntityWrite[] = [
        {
          path: 'PATCH /api/reports/:id (content)',
          send: async (u, o) => {
            const res = await send(u, 'PATCH', `/api/reports/${o.id}`, {
              title: `${MARK}changed ${r.int(1e6)}`,
            });
            return { got: outcome(res), detail: res.body };
          },
          expect: (u, o) => model.mayChange(u, o),
          apply: () => {},
        },
        {
          path: 'PATCH /api/reports/:id (marking)',
          send: async (u, o) => {
            const next = nextMarking(o, u);
            pendingMarking = next;
            const res = await send(u, 'PATCH', `/api/reports/${o.id}`, { marking: next.wire });
            return { got: outcome(res), detail: res.body };
          },
          expect: (u, o) =>
            model.mayChange(u, o, {
              next: pendingMarking?.model,
              unknownAudience: pendingMarking?.unknownAudience,
            }),
          apply: (_u, o) => {
            if (pendingMarking?.model) o.marking = pendingMarking.model;
          },
        },
        {
          path: 'DELETE /api/reports/:id',
          send: async (u, o) => {
            const res = await send(u, 'DELETE', `/api/reports/${o.id}`);
            return { got: outcome(res), detail: res.body };
          },
          expect: (u, o) => model.mayChange(u, o),
          apply: async (_u, o) => {
            reports.splice(reports.indexOf(o), 1);
            await createReport(r.pick(writersOf()));
          },
        },
      ];

      const ruleWrites: EntityWrite[] = [
        {
          path: 'PATCH /api/rules/:id (document)',
          send: async (u, o) => {
            const res = await send(u, 'PATCH', `/api/rules/${o.id}`, {
              rule: ruleDoc(`changed ${r.int(1e6)}`),
            });
            return { got: outcome(res), detail: res.body };
          },
          expect: (u, o) => model.mayChange(u, o),
          apply: () => {},
        },
        {
          path: 'PATCH /api/rules/:id (marking)',
          send: async (u, o) => {
            const next = nextMarking(o, u);
            pendingMarking = next;
            const res = await send(u, 'PATCH', `/api/rules/${o.id}`, { marking: next.wire });
            return { got: outcome(res), detail: res.body };
          },
          expect: (u, o) =>
            model.mayChange(u, o, {
              next: pendingMarking?.model,
              unknownAudience: pendingMarking?.unknownAudience,
            }),
          apply: (_u, o) => {
            if (pendingMarking?.model) o.marking = pendingMarking.model;
          },
        },
        {
          path: 'POST /api/rules/:id/disable',
          send: async (u, o) => {
            const res = await send(u, 'POST', `/api/rules/${o.id}/disable`);
            return { got: outcome(res), detail: res.body };
          },
          expect: (u, o) => model.mayChange(u, o),
          apply: () => {},
        },
        {
          path: 'DELETE /api/rules/:id',
          send: async (u, o) => {
            const res = await send(u, 'DELETE', `/api/rules/${o.id}`);
            return { got: outcome(res), detail: res.body };
          },
          expect: (u, o) => model.mayChange(u, o),
          apply: async (_u, o) => {
            rules.splice(rules.indexOf(o), 1);
            await createRule(r.pick(writersOf()));
          },
        },
      ];

      const contextWrites: EntityWrite[] = [
        {
          path: 'DELETE /jsonldContexts/:id',
          send: async (u, o) => {
            const res = await send(u, 'DELETE', `${NGSI}/jsonldContexts/${encodeURIComponent(o.id)}`);
            return { got: outcome(res), detail: res.body };
          },
          expect: (u, o) => model.mayChange(u, o),
          apply: async (_u, o) => {
            contexts.splice(contexts.indexOf(o), 1);
            const creator = r.pick(writersOf());
            const res = await send(creator, 'POST', `${NGSI}/jsonldContexts`, {
              '@context': { again: `https://example.org/${MARK}/${r.int(1e6)}` },
            });
            contexts.push({
              ...o,
              id: decodeURIComponent(String(res.headers.location).split('/').pop() as string),
              owner: creator.org,
              createdBy: creator.id,
            });
          },
        },
      ];

      const roadWrites: EntityWrite[] = [
        {
          path: 'DELETE /api/routing/{closures,slowdowns}/:id',
          send: async (u, o) => {
            const res = await send(u, 'DELETE', `${roadPath(o.kind)}/${o.id}`);
            return { got: outcome(res), detail: res.body };
          },
          expect: (u, o) => model.mayChange(u, o),
          apply: async (_u, o) => {
            roadChanges.splice(roadChanges.indexOf(o), 1);
            await drawRoadChange(r.pick(active().filter((x) => !x.roles.includes('viewer'))));
          },
        },
      ];

      /** Every write of a kind, as every active account, on a rotating choice of targets. */
      const tryWrites = async (kind: string, writes: EntityWrite[], pool: () => ModelObject[]) => {
        let turn = 0;
        for (const w of writes) {
          for (const u of active()) {
            turn += 1;
            const target = targetFor(u, pool(), turn);
            if (!target) continue;
            const { got, detail } = await w.send(u, target as EntityObject);
            const expected = w.expect(u, target as EntityObject);
            tally.write(`${kind}: ${w.path}`, nameOf(u), label(target), expected, got, detail.slice(0, 200));
            if (got === 'ok') await w.apply(u, target as EntityObject);
          }
        }
      };

      /** Creating, as every active account: a writing role is all it takes. */
      const tryCreates = async () => {
        for (const u of active()) {
          const ruleExpected = model.mayCreate(u, 'rule');
          const newRule = await send(u, 'POST', '/api/rules', { rule: ruleDoc('new') });
          tally.write(
            'rule: POST /api/rules',
            nameOf(u),
            'a new rule',
            ruleExpected,
            outcome(newRule),
            newRule.body.slice(0, 200),
          );
          if (outcome(newRule) === 'ok') {
            rules.push({
              kind: 'rule',
              scope: '',
              id: newRule.json().id,
              owner: u.org,
              createdBy: u.id,
              marking: model.defaults.get(u.org) as ModelMarking,
            });
          }
          const expected = model.mayCreate(u, 'report');
          const res = await send(u, 'POST', '/api/reports', { title: `${MARK}new`, category: 'other' });
          tally.write(
            'report: POST /api/reports',
            nameOf(u),
            'a new report',
            expected,
            outcome(res),
            res.body.slice(0, 200),
          );
          if (outcome(res) === 'ok') {
            reports.push({
              kind: 'report',
              scope: '',
              id: res.json().id,
              owner: u.org,
              createdBy: u.id,
              marking: model.defaults.get(u.org) as ModelMarking,
            });
          }
          const scope = r.pick(TENANTS);
          const type = r.pick(ENTITY_TYPES) as string;
          const id = `urn:ngsi-ld:${type}:e${++entitySeq}`;
          const attrs = entityAttrs(type);
          const m = randomMarking(u);
          const batch = r.chance(0.5);
          const body = entityBody(id, type, attrs, m.wire);
          const created = batch
            ? await send(u, 'POST', `${NGSI}/entityOperations/create`, [body], tenantHeader(scope))
            : await send(u, 'POST', `${NGSI}/entities`, body, tenantHeader(scope));
          const got = batch ? batchOutcome(created) : outcome(created);
          tally.write(
            `entity: ${batch ? 'POST entityOperations/create' : 'POST /entities'}`,
            nameOf(u),
            `new ${id}`,
            model.mayCreate(u, 'entity'),
            got,
            created.body.slice(0, 200),
          );
          if (got === 'ok') {
            entities.push({
              kind: 'entity',
              scope,
              id,
              owner: u.org,
              createdBy: u.id,
              marking: m.model,
              type,
              attrs,
            });
          }
          const kind = r.pick(['closure', 'slowdown']);
          const m2 = randomMarking(u);
          const drawn = await send(u, 'POST', roadPath(kind), roadChangeBody(kind, m2.wire));
          tally.write(
            `${kind}: POST ${roadPath(kind)}`,
            nameOf(u),
            `a new ${kind}`,
            model.mayCreate(u, kind),
            outcome(drawn),
            drawn.body.slice(0, 200),
          );
          if (outcome(drawn) === 'ok') {
            roadChanges.push({
              kind,
              scope: '',
              id: drawn.json().id,
              owner: u.org,
              createdBy: u.id,
              marking: m2.model,
            });
          }
          const hosted = await send(u, 'POST', `${NGSI}/jsonldContexts`, {
            '@context': { mine: `https://example.org/${MARK}/${r.int(1e6)}` },
          });
          tally.write(
            'jsonld-context: POST /jsonldContexts',
            nameOf(u),
            'a new @context',
            model.mayCreate(u, 'jsonld-context'),
            outcome(hosted),
            hosted.body.slice(0, 200),
          );
          if (outcome(hosted) === 'ok') {
            contexts.push({
              kind: 'jsonld-context',
              scope: '',
              id: decodeURIComponent(String(hosted.headers.location).split('/').pop() as string),
              owner: u.org,
              createdBy: u.id,
              marking: { tlp: 'CLEAR', audience: { orgs: [], communities: [], users: [] } },
            });
          }
        }
      };

      const writeEverything = async () => {
        await tryCreates();
        await tryWrites('report', reportWrites, () => reports);
        await tryWrites('rule', ruleWrites, () => rules);
        await tryWrites('entity', entityWrites, () => entities);
        await tryWrites('jsonld-context', contextWrites, () => contexts);
        await tryWrites('closure/slowdown', roadWrites, () => roadChanges);
      };

      // ------------------------------------------------------------------------------------ audit, explain
      const ADMINISTRATION = ['org', 'community', 'user', 'service_account', 'api_token', 'settings'];
      const readAudit = async () => {
        const admins = accounts.filter((u) => u.roles.includes('admin') && !u.disabled);
        for (const a of admins) {
          const records: Record<string, unknown>[] = [];
          let after = 0;
          for (;;) {
            const page = (await must(a, 'GET', `/api/audit?limit=1000&after=${after}`)).items as Record<
              string,
              unknown
            >[];
            records.push(...page);
            if (page.length < 1000) break;
            after = Number(page[page.length - 1]?.seq);
          }
          const who = nameOf(a);
          const platformAdmin = a.roles.includes('platform-admin');
          for (const rec of records) {
            const mine =
              rec.ownerOrg === a.org ||
              rec.actorOrg === a.org ||
              (platformAdmin && ADMINISTRATION.includes(String(rec.objectKind)));
            tally.holds(
              'GET /api/audit scope',
              mine,
              'leak',
              `${who} reads record ${rec.seq} (${rec.action} ${rec.objectKind} of ${rec.ownerOrg} by ${rec.actorOrg})`,
            );
            tally.holds(
              'GET /api/audit content',
              !JSON.stringify(rec).includes(MARK),
              'leak',
              `${who} reads content in record ${rec.seq}: ${JSON.stringify(rec.details).slice(0, 200)}`,
            );
          }
          // Every object its organisation owns now has its creation on record, readable by its administrator.
          const created = new Set<string>();
          for (const rec of records) {
            if (rec.action !== 'create') continue;
            created.add(`${rec.objectKind}|${rec.objectId}`);
            const ids = (rec.details as { ids?: string[] } | undefined)?.ids ?? [];
            for (const id of ids) created.add(`${rec.objectKind}|${id}`);
          }
          for (const o of [...reports, ...rules, ...entities, ...contexts, ...roadChanges]) {
            if (o.owner !== a.org) continue;
            tally.read(
              'GET /api/audit completeness',
              who,
              `the creation of ${label(o)}`,
              true,
              created.has(`${o.kind}|${o.id}`),
            );
          }
        }
      };

      /** The audit chain of every write and disclosure above is intact. */
      const verifyChain = async () => {
        const v = await must(platformAdmin(), 'GET', '/api/audit/verify');
        tally.holds(
          'GET /api/audit/verify',
          v.ok === true && v.records > 0,
          'wrongAnswer',
          JSON.stringify(v),
        );
        const plain = active().find((u) => !u.roles.includes('admin')) as Account;
        const refused = await send(plain, 'GET', '/api/audit');
        tally.holds(
          'GET /api/audit (not an administrator)',
          refused.statusCode === 403,
          'leak',
          `${refused.statusCode}`,
        );
      };

      const readExplain = async (samples: number) => {
        const objects = [...reports, ...rules, ...entities, ...contexts, ...roadChanges];
        for (let i = 0; i < samples; i++) {
          const o = r.pick(objects);
          const u = r.pick(accounts);
          const asker = adminOf(o.owner);
          const q = `object=${encodeURIComponent(o.id)}&user=${encodeURIComponent(r.chance(0.5) ? u.username : u.id)}&kind=${o.kind}&tenant=${encodeURIComponent(o.scope)}`;
          const res = await send(asker, 'GET', `/api/access/explain?${q}`);
          if (res.statusCode !== 200) {
            tally.holds(
              'explain',
              false,
              'wrongDenial',
              `${nameOf(asker)} about ${label(o)}: ${res.statusCode} ${res.body}`,
            );
            continue;
          }
          const v = res.json();
          tally.read('explain', nameOf(u), label(o), model.explainVisible(u, o), v.visible === true);
          tally.holds(
            'explain rule',
            (v.visible &&
              !['not-in-audience', 'strict-excludes-clients', 'red-not-named', 'account-disabled'].includes(
                v.rule,
              )) ||
              (!v.visible && (u.disabled ? v.rule === 'account-disabled' : v.rule !== 'account-disabled')),
            'wrongAnswer',
            `rule ${v.rule} for ${nameOf(u)} on ${label(o)}`,
          );
          // An administrator of an organisation that neither owns nor sees the object is not told of it.
          const stranger = accounts.find(
            (x) => x.roles.includes('admin') && !x.disabled && x.org !== o.owner && !model.maySee(x, o),
          );
          if (stranger) {
            const s = await send(stranger, 'GET', `/api/access/explain?${q}`);
            tally.read('explain (stranger)', nameOf(stranger), label(o), false, s.statusCode === 200);
          }
          // Nobody else asks.
          const plain = accounts.find((x) => !x.roles.includes('admin') && !x.disabled && x.org === o.owner);
          if (plain) {
            const p = await send(plain, 'GET', `/api/access/explain?${q}`);
            tally.holds(
              'explain (not an administrator)',
              p.statusCode === 403,
              'leak',
              `${nameOf(plain)}: ${p.statusCode}`,
            );
          }
        }
      };

      // ------------------------------------------------------------------------------------ re-randomise
      const rerandomise = async () => {
        for (const org of r.some(orgs.slice(1), 3)) {
          const clients = r.some(
            orgs.filter((x) => x !== org && x !== 'city'),
            3,
          );
          await must(adminOf(org), 'PATCH', `/api/orgs/${org}`, { clients });
          model.clients.set(org, new Set(clients));
        }
        for (const c of communities) {
          const org = r.pick(orgs);
          const members = model.communities.get(c) as Set<string>;
          const add = !members.has(org);
          await must(platformAdmin(), add ? 'PUT' : 'DELETE', `/api/communities/${c}/members/${org}`);
          if (add) members.add(org);
          else members.delete(org);
        }
        // Re-marked by their creators (who may always change the marking of what they created).
        for (const o of r.some(reports, 12)) {
          const creator = accounts.find((u) => u.id === o.createdBy);
          if (!creator || creator.disabled) continue;
          const m = randomMarking(creator);
          await must(creator, 'PATCH', `/api/reports/${o.id}`, { marking: m.wire });
          o.marking = m.model;
        }
        for (const e of r.some(entities, 15)) {
          const creator = accounts.find((u) => u.id === e.createdBy);
          if (!creator || creator.disabled) continue;
          const m = randomMarking(creator);
          const res = await send(
            creator,
            'POST',
            url(e, '/attrs'),
            { marking: m.wire },
            tenantHeader(e.scope),
          );
          if (res.statusCode !== 204) throw new Error(`re-mark ${e.id}: ${res.statusCode} ${res.body}`);
          e.marking = m.model;
        }
        // Entities deleted by their owner and re-created under the same id by another organisation.
        for (const e of r.some(entities, 3)) {
          const owner = writersOf(e.owner).find((w) => model.maySee(w, e));
          if (!owner) continue;
          await must(owner, 'DELETE', url(e), undefined, tenantHeader(e.scope));
          await recreateElsewhere(e);
        }
        // A disabled account (not an administrator: the organisations keep theirs).
        const victim = r.pick(active().filter((u) => !u.roles.includes('admin')));
        await must(adminOf(victim.org), 'POST', `/api/users/${victim.id}/disable`);
        victim.disabled = true;
      };

      // ------------------------------------------------------------------------------------ live streams
      const streams = new Map<Account, OpenedStream>();
      const openStreams = async () => {
        for (const u of active()) streams.set(u, await openStream(address, u.auth));
        for (const [u, s] of streams) {
          if (!(await waitFor(() => s.events.some((e) => e.event === 'ready')))) {
            throw new Error(`${u.username}'s stream is not ready`);
          }
        }
      };
      const waitFor = async (check: () => boolean, ms = 5000): Promise<boolean> => {
        const t0 = Date.now();
        while (!check()) {
          if (Date.now() - t0 > ms) return false;
          await new Promise((res) => setTimeout(res, 10));
        }
        return true;
      };
      /** Time for events nobody should get to arrive anyway, if they were going to. */
      const GRACE_MS = 150;

      /**
       * One change, then every open stream against the model: a reader who sees the object after the change is
       * told `changed` (with a label at least as tight as the object's marking), a reader who saw it before and no
       * longer does is told `removed`, and nobody else is told anything. Content never travels.
       */
      const streamChange = async (
        what: string,
        change: () => Promise<{ before: ModelObject | undefined; after: ModelObject | undefined }>,
      ) => {
        const marks = new Map([...streams].map(([u, s]) => [u, s.events.length]));
        const { before, after } = await change();
        const o = (after ?? before) as ModelObject;
        const about = (e: { data: Record<string, unknown> }) =>
          e.data.kind === o.kind && e.data.id === o.id && String(e.data.tenant ?? '') === o.scope;
        const expected = (u: Account) =>
          after && model.maySee(u, after)
            ? 'changed'
            : before && model.maySee(u, before)
              ? 'removed'
              : 'nothing';
        const told = (u: Account) => (streams.get(u)?.events ?? []).slice(marks.get(u) ?? 0).filter(about);
        await waitFor(() =>
          [...streams.keys()].every((u) => u.disabled || expected(u) === 'nothing' || told(u).length > 0),
        );
        await new Promise((res) => setTimeout(res, GRACE_MS));
        for (const u of streams.keys()) {
          if (u.disabled) continue;
          const events = told(u);
          const names = new Set(events.map((e) => e.event.split('.').pop()));
          const want = expected(u);
          const who = nameOf(u);
          tally.read(
            'SSE changed',
            who,
            `${label(o)} after ${what}`,
            want === 'changed',
            names.has('changed'),
          );
          tally.holds(
            'SSE removed',
            want !== 'changed' || !names.has('removed'),
            'wrongAnswer',
            `${who} told removed of ${label(o)} it sees (${what})`,
          );
          if (want === 'removed') {
            tally.holds(
              'SSE removed',
              names.has('removed'),
              'wrongAnswer',
              `${who} not told it lost ${label(o)} (${what})`,
            );
          } else if (want === 'nothing') {
            tally.holds(
              'SSE nothing',
              names.size === 0,
              'leak',
              `${who} told ${[...names].join(',')} of ${label(o)} (${what})`,
            );
          }
          for (const e of events) {
            const held = e.event.endsWith('.removed') ? before : after;
            tally.holds(
              'SSE marking label',
              held === undefined || atLeastAsTight(readMarkingHeader(String(e.data.marking)), [held]),
              'leak',
              `${who}: ${e.event} labelled ${String(e.data.marking)} for ${label(held ?? o)}`,
            );
            tally.holds(
              'SSE content',
              !JSON.stringify(e.data).includes(MARK),
              'leak',
              `${who}: ${JSON.stringify(e.data)}`,
            );
          }
        }
      };

      /**
       * Who sees what changes with the directory too: a new client, a client dropped, a community member added
       * or removed must reach open streams at once, as it reaches every request at once.
       */
      const changeDirectory = async () => {
        const org = r.pick(orgs.slice(1));
        const clients = r.some(
          orgs.filter((x) => x !== org && x !== 'city'),
          3,
        );
        await must(adminOf(org), 'PATCH', `/api/orgs/${org}`, { clients });
        model.clients.set(org, new Set(clients));
        const c = r.pick(communities);
        const member = r.pick(orgs);
        const members = model.communities.get(c) as Set<string>;
        const add = !members.has(member);
        await must(platformAdmin(), add ? 'PUT' : 'DELETE', `/api/communities/${c}/members/${member}`);
        if (add) members.add(member);
        else members.delete(member);
      };

      const streamChanges = async () => {
        for (let i = 0; i < 3; i++) {
          const drawer = r.pick(active().filter((x) => !x.roles.includes('viewer')));
          const drawn = { o: undefined as ModelObject | undefined };
          await streamChange('a closure or slow-down drawn', async () => {
            drawn.o = await drawRoadChange(drawer);
            return { before: undefined, after: drawn.o };
          });
          const o = drawn.o as ModelObject;
          await streamChange('a closure or slow-down lifted', async () => {
            await must(drawer, 'DELETE', `${roadPath(o.kind)}/${o.id}`);
            roadChanges.splice(roadChanges.indexOf(o), 1);
            return { before: o, after: undefined };
          });
        }
        for (let i = 0; i < 8; i++) {
          if (i % 2 === 0) await changeDirectory();
          // Re-marked by its creator.
          const o = r.pick(reports.filter((x) => !accounts.find((u) => u.id === x.createdBy)?.disabled));
          const creator = accounts.find((u) => u.id === o.createdBy) as Account;
          await streamChange('a report re-marked', async () => {
            const before = { ...o };
            const m = randomMarking(creator);
            await must(creator, 'PATCH', `/api/reports/${o.id}`, { marking: m.wire });
            o.marking = m.model;
            return { before, after: o };
          });
          const e = r.pick(entities.filter((x) => !accounts.find((u) => u.id === x.createdBy)?.disabled));
          const entityCreator = accounts.find((u) => u.id === e.createdBy) as Account;
          await streamChange('an entity re-marked', async () => {
            const before = { ...e };
            const m = randomMarking(entityCreator);
            await must(entityCreator, 'POST', url(e, '/attrs'), { marking: m.wire }, tenantHeader(e.scope));
            e.marking = m.model;
            return { before, after: e };
          });
        }
        for (let i = 0; i < 4; i++) {
          const creator = r.pick(writersOf());
          await streamChange('a report created', async () => ({
            before: undefined,
            after: await createReport(creator),
          }));
          const e = r.pick(entities);
          const owner = writersOf(e.owner).find((w) => model.maySee(w, e));
          if (owner) {
            await streamChange('an entity changed', async () => {
              const v = r.int(101);
              await must(
                owner,
                'PATCH',
                url(e, '/attrs'),
                { level: { type: 'Property', value: v } },
                tenantHeader(e.scope),
              );
              e.attrs.set('level', v);
              return { before: e, after: e };
            });
            await streamChange('an entity deleted', async () => {
              await must(owner, 'DELETE', url(e), undefined, tenantHeader(e.scope));
              entities.splice(entities.indexOf(e), 1);
              return { before: e, after: undefined };
            });
            const other = r.pick(writersOf().filter((w) => w.org !== e.owner));
            await streamChange('the id re-created by another organisation', async () => ({
              before: undefined,
              after: await createEntity(other, e.scope, e.id),
            }));
          }
          const rep = r.pick(reports);
          const repOwner = writersOf(rep.owner).find((w) => model.maySee(w, rep));
          if (repOwner) {
            await streamChange('a report deleted', async () => {
              await must(repOwner, 'DELETE', `/api/reports/${rep.id}`);
              reports.splice(reports.indexOf(rep), 1);
              return { before: rep, after: undefined };
            });
          }
        }
      };

      // ------------------------------------------------------------------------------------ the tests
      it('answers every read path of every user as the model does', async () => {
        const t = await run('round 1 reads', readEverything);
        expectClean(t);
        // The world must exercise every label, or the test proves little.
        for (const l of TLPS) {
          expect(reports.filter((o) => o.marking.tlp === l).length, `reports ${l}`).toBeGreaterThan(0);
          expect(entities.filter((o) => o.marking.tlp === l).length, `entities ${l}`).toBeGreaterThan(0);
        }
      });

      it('answers every write path as every role as the model does', async () => {
        expectClean(await run('writes', writeEverything));
        const counts = new Map<string, number>();
        for (const [p, n] of totals.paths) if (p.includes(': ')) counts.set(p, n);
        expect(counts.size).toBeGreaterThan(15);
      });

      it('still does after clients, communities, markings, an entity id and an account change', async () => {
        await openStreams();
        await rerandomise();
        // The disabled account's live stream ends.
        const [victim, stream] = [...streams].find(([u]) => u.disabled) as [Account, OpenedStream];
        const ended = await waitFor(() => stream.ended());
        expectClean(
          await run('round 2 reads', async () => {
            tally.holds(
              'SSE of a disabled account',
              ended,
              'leak',
              `${victim.username}'s stream is still open`,
            );
            await readEverything();
          }),
        );
      });

      it('tells each live stream of exactly the changes its user may see, under their labels', async () => {
        try {
          expectClean(await run('live streams', streamChanges));
        } finally {
          for (const s of streams.values()) s.close();
        }
      });

      it('shows each administrator only its organisation’s audit records, with no content', async () => {
        expectClean(
          await run('audit', async () => {
            await readAudit();
            await verifyChain();
          }),
        );
      });

      it('explains visibility as the model does, to the owner’s administrator only', async () => {
        expectClean(await run('explain', () => readExplain(120)));
      });

      it('catches a gate that drops one condition', async () => {
        const caught: Record<string, number> = {};
        const plant = async (bug: PlantedBug, compare: () => Promise<void>) => {
          gate.planted = bug;
          try {
            const t = await run(`planted bug ${bug}`, compare);
            caught[bug] = t.leaks;
          } finally {
            gate.planted = undefined;
          }
        };
        // A smaller comparison suffices to catch each: reads of reports and entities, and every write.
        await plant('strict-reaches-clients', async () => {
          indexEntities();
          // Only the users of client organisations can tell: the others read as before.
          const clients = active().filter((u) => [...model.clients.values()].some((c) => c.has(u.org)));
          for (const u of clients) {
            await readReports(u);
            for (const e of entities) {
              const res = await send(u, 'GET', url(e), undefined, tenantHeader(e.scope));
              tally.read(
                'GET /ngsi-ld/v1/entities/:id',
                nameOf(u),
                label(e),
                model.maySee(u, e),
                res.statusCode === 200,
              );
            }
          }
        });
        await plant('owner-not-checked', () => tryWrites('entity', entityWrites.slice(0, 3), () => entities));
        await plant('red-named-may-reshare', async () => {
          // Named users of the owner organisation try to pass TLP:RED objects on.
          for (const o of [...reports, ...entities]) {
            if (o.marking.tlp !== 'RED') continue;
            for (const id of o.marking.audience.users) {
              const u = accounts.find((x) => x.id === id && !x.disabled);
              if (!u || u.org !== o.owner) continue;
              const next = { tlp: 'CLEAR' as ModelTlp, audience: { orgs: [], communities: [], users: [] } };
              const res =
                o.kind === 'report'
                  ? await send(u, 'PATCH', `/api/reports/${o.id}`, { marking: next })
                  : await send(u, 'POST', url(o, '/attrs'), { marking: next }, tenantHeader(o.scope));
              tally.write(
                `${o.kind}: re-share RED`,
                nameOf(u),
                label(o),
                model.mayChange(u, o, { next }),
                outcome(res),
              );
              if (outcome(res) === 'ok') o.marking = next;
            }
          }
        });
        console.log(
          `${preset.name}: planted bugs caught — ${Object.entries(caught)
            .map(([b, n]) => `${b}: ${n} leaks`)
            .join(', ')}`,
        );
        for (const [bug, leaks] of Object.entries(caught)) expect(leaks, bug).toBeGreaterThan(0);
      });
    },
  );
}
