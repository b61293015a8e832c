/**
 * How fast a dry-run replays history (docs/detection.md, "Dry-run"): 100 sensors observed every second for
 * SAFECITY_DRY_RUN_HOURS hours, written straight into context-live's history tables, replayed through a
 * threshold rule on the real engine — the history read alone, then the whole dry-run over the API. A
 * measurement, not a check: it runs only when SAFECITY_DRY_RUN_HOURS is set (PGlite; PostgreSQL when
 * DATABASE_URL and NATS_URL are set too).
 */
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import { createPlatform, type Platform } from './platform.ts';
import { embeddedTestEnv, SERVER_SKIP, seedWorld, serverPresetTestEnv } from './testing.ts';

const HOURS = Number(process.env.SAFECITY_DRY_RUN_HOURS ?? 0);
const SENSORS = 100;
const T0 = Date.parse('2026-11-29T00:00:00Z');
const TYPE = 'https://uri.etsi.org/ngsi-ld/default-context/CrowdFlowObserved';
const ATTR = 'https://uri.etsi.org/ngsi-ld/default-context/peopleCount';

describe.skipIf(!HOURS)('dry-run speed (set SAFECITY_DRY_RUN_HOURS)', () => {
  let platform: Platform;
  let cleanup: () => Promise<void> = async () => {};
  let auth: Record<string, string>;
  const out = (s: string) => process.stdout.write(`dry-run speed (${platform.store.kind}): ${s}\n`);

  beforeAll(async () => {
    const e = SERVER_SKIP
      ? await embeddedTestEnv('dry_run_speed')
      : await serverPresetTestEnv('dry_run_speed');
    cleanup = e.cleanup;
    platform = await createPlatform(
      loadConfig({
        SAFECITY_MQTT_PORT: '0',
        PORT: '0',
        SAFECITY_ADMIN_PASSWORD: 'long-secret-for-tests',
        ...e.env,
      }),
      { log: pino({ level: 'silent' }) },
    );
    auth = await seedWorld(platform, 'long-secret-for-tests', 'correct-horse-staple-9', {
      orgs: [['police', 'police']],
      users: [['op', 'police', 'operator']],
    });
    const db = platform.store.db;
    const marking = JSON.stringify({ tlp: 'AMBER', audience: { orgs: [], communities: [], users: [] } });
    const started = Date.now();
    await sql`insert into context_live_temporal_entity (tenant, entity_id, incarnation, entity_types, owner_org,
        marking, read_keys, created_at, modified_at, deleted_at, kind)
      select '', 'urn:ngsi-ld:CrowdFlowObserved:s' || g, 'createdAt:1', array[${TYPE}], 'police', ${marking}::jsonb,
        array['amber:police'], now(), now(), null, 'entity'
      from generate_series(1, ${SENSORS}::int) g`.execute(db);
    await sql`insert into context_live_temporal_segment (tenant, entity_id, seg, incarnation, owner_org, marking, read_keys)
      select '', 'urn:ngsi-ld:CrowdFlowObserved:s' || g, 'seg' || g, 'createdAt:1', 'police', ${marking}::jsonb,
        array['amber:police']
      from generate_series(1, ${SENSORS}::int) g`.execute(db);
    for (let h = 0; h < HOURS; h++) {
      await sql`insert into context_live_attr_instance (tenant, entity_id, attr, dataset_id, seg, instance_id,
          attr_type, observed_at, modified_at, value_num, value_text, instance)
        select '', 'urn:ngsi-ld:CrowdFlowObserved:s' || g, ${ATTR}, '', 'seg' || g, 'i' || g || '-' || s, 'Property',
          to_timestamp(${T0 / 1000}::float8 + s), to_timestamp(${T0 / 1000}::float8 + s),
          (50 + 60 * sin(s / 600.0 + g))::int, null, null
        from generate_series(1, ${SENSORS}::int) g, generate_series(${h * 3600}::int, ${h * 3600 + 3599}::int) s`.execute(
        db,
      );
    }
    out(`${SENSORS * 3600 * HOURS} observations loaded in ${Date.now() - started} ms`);
  }, 3_600_000);
  afterAll(async () => {
    await platform?.shutdown();
    await cleanup();
  });

  it('replays the history', async () => {
    const to = new Date(T0 + HOURS * 3_600_000);
    let t = Date.now();
    let n = 0;
    for await (const page of platform.live.temporal.replay('', [{ readKeys: ['amber:police'] }], {
      from: new Date(T0),
      to,
      limit: 100_000_000,
    }))
      n += page.length;
    out(`history read alone: ${n} observations in ${Date.now() - t} ms`);
    for (let run = 0; run < 2; run++) {
      t = Date.now();
      const res = await platform.server.inject({
        method: 'POST',
        url: '/api/rules/dry-run',
        headers: { authorization: auth.op as string, 'content-type': 'application/json' },
        payload: JSON.stringify({
          rule: {
            name: 'crowding',
            kind: 'threshold',
            severity: 'high',
            category: 'crowd',
            match: { types: ['CrowdFlowObserved'], attribute: 'peopleCount' },
            above: 100,
          },
          from: new Date(T0).toISOString(),
          to: to.toISOString(),
        }),
      });
      expect(res.statusCode, res.body).toBe(200);
      const a = res.json();
      out(
        `dry-run ${run + 1}: ${a.observations} observations of ${a.entities} entities, ${a.firings.length} signals, truncated ${a.truncated}, ${a.elapsedMs} ms (${Math.round(a.observations / (a.elapsedMs / 1000))} observations/s)`,
      );
    }
  }, 3_600_000);
});
