/**
 * A platform instance for the read-throughput benchmark, in its own process so the load generator does
 * not share its thread. Seeds organisations, users and reports, then prints one JSON line:
 * { address, token, reportId } and serves until killed.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/app/config.ts';
import { createPlatform } from '../../src/app/platform.ts';

const PW = 'bench-password-123';
const env: Record<string, string> = {
  PORT: '0',
  HOST: '127.0.0.1',
  SAFECITY_ADMIN_PASSWORD: PW,
  SAFECITY_MQTT_PORT: '0',
  SAFECITY_JWT_SECRET: 'b'.repeat(40),
};
if (process.env.BENCH_DATABASE_URL) env.DATABASE_URL = process.env.BENCH_DATABASE_URL;
else env.SAFECITY_DATA_DIR = mkdtempSync(join(tmpdir(), 'safecity-bench-api-'));

const platform = await createPlatform(loadConfig(env), { log: pino({ level: 'silent' }) });
const address = await platform.listen();
const inject = (method: 'GET' | 'POST' | 'PATCH', url: string, auth: string | undefined, payload?: unknown) =>
  platform.server.inject({
    method,
    url,
    ...(auth ? { headers: { authorization: auth } } : {}),
    ...(payload ? { payload: payload as object } : {}),
  });
const login = async (username: string) =>
  `Bearer ${(await inject('POST', '/api/auth/login', undefined, { username, password: PW })).json().token}`;
const admin = await login('admin');

const orgs = ['police', 'fire', 'metro', 'energy', 'venue'];
for (const id of orgs)
  await inject('POST', '/api/orgs', admin, {
    id,
    name: id,
    kind: id === 'metro' ? 'transport' : id === 'venue' ? 'venue' : id === 'energy' ? 'energy' : id,
  });
await inject('PATCH', '/api/orgs/police', admin, { clients: ['metro'] });
for (const org of orgs) {
  await inject('POST', '/api/users', admin, {
    username: `${org}-op`,
    orgId: org,
    roles: ['operator'],
    password: PW,
  });
}
const tlps = ['CLEAR', 'GREEN', 'AMBER', 'AMBER+STRICT', 'RED'];
let reportId = '';
const tokens: Record<string, string> = {};
for (const org of orgs) tokens[org] = await login(`${org}-op`);
for (let i = 0; i < 1000; i++) {
  const org = orgs[i % orgs.length] as string;
  const tlp = tlps[Math.floor(i / orgs.length) % tlps.length];
  const res = await inject('POST', '/api/reports', tokens[org], {
    title: `Report ${i}`,
    body: 'Unattended bag near gate B; CCTV 14 shows it since 10:02.',
    category: 'other',
    marking: { tlp, audience: tlp === 'AMBER' ? { orgs: ['fire'] } : {} },
  });
  if (res.statusCode !== 201) throw new Error(`seeding failed: ${res.statusCode} ${res.body}`);
  if (org === 'metro' && tlp === 'GREEN') reportId = res.json().id;
}
// Entities for the write scenarios: each request updates one of them (an audited NGSI-LD write).
const ENTITIES = 200;
for (let i = 0; i < ENTITIES; i++) {
  const res = await inject('POST', '/ngsi-ld/v1/entities', tokens.metro, {
    id: `urn:ngsi-ld:Counter:bench-${i}`,
    type: 'Counter',
    count: { type: 'Property', value: 0 },
  });
  if (res.statusCode !== 201) throw new Error(`seeding entities failed: ${res.statusCode} ${res.body}`);
}
process.stdout.write(
  `${JSON.stringify({ address, token: tokens.metro, reportId, entities: ENTITIES, store: platform.store.kind })}\n`,
);
process.on('SIGTERM', () => {
  platform.shutdown().then(() => process.exit(0));
});
