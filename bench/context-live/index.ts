/**
 * The context-live benchmarks, for `npm run bench`: ingestion (MQTT, batch upsert, raw INSERT ceiling),
 * notification latency (100 subscriptions at 1,000 updates/s) and temporal aggregation (a day of
 * 1-second observations). Each runs on PostgreSQL when DATABASE_URL is set, on PGlite otherwise.
 */
import { pathToFileURL } from 'node:url';
import { type IngestionBenchResult, runIngestionBench } from './ingestion.ts';
import { type NotificationLatencyResult, runNotificationLatencyBench } from './notification-latency.ts';
import { runTemporalAggregationBench, type TemporalAggregationResult } from './temporal-aggregation.ts';

export type { IngestionBenchResult, NotificationLatencyResult, TemporalAggregationResult };
export { runIngestionBench, runNotificationLatencyBench, runTemporalAggregationBench };

export interface ContextLiveBenchResults {
  ingestion: IngestionBenchResult;
  notifications: NotificationLatencyResult;
  temporal: TemporalAggregationResult;
}

export async function runContextLiveBenches(log?: (s: string) => void): Promise<ContextLiveBenchResults> {
  const o = log ? { log } : {};
  return {
    ingestion: await runIngestionBench(o),
    notifications: await runNotificationLatencyBench(o),
    temporal: await runTemporalAggregationBench(o),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(JSON.stringify(await runContextLiveBenches(), null, 2));
}
