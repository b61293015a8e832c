/**
 * `safecity rules validate FILE` and `safecity rules test FILE --from … --to …`: a rule document checked by
 * the rule language (offline), and replayed over a running platform's history through its API
 * (`POST /api/rules/dry-run`, as the token's account: what it and its organisation may read).
 */
import { readFileSync } from 'node:fs';
import type { RuleProblem } from '../modules/detection-live/index.ts';
import { defaultDetection } from './detection-engine.ts';

/** Reads a rule document (JSON); answers the document or the problem reading it. */
function readRule(file: string): { doc: unknown } | { problem: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return { problem: `cannot read the file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  }
  try {
    return { doc: JSON.parse(text) };
  } catch (e) {
    return { problem: `not JSON: ${(e as Error).message}` };
  }
}

/** Validates a rule file; answers the exit code (0 valid, 1 invalid). */
export function validateRuleFile(file: string, out: (s: string) => void): number {
  const read = readRule(file);
  if ('problem' in read) {
    out(`${file}: ${read.problem}`);
    return 1;
  }
  const verdict = defaultDetection().validate(read.doc);
  if (verdict.ok) {
    const r = verdict.rule as { name?: unknown; kind?: unknown };
    out(
      `${file}: valid${typeof r.kind === 'string' ? ` ${r.kind} rule` : ''}${typeof r.name === 'string' ? ` "${r.name}"` : ''}`,
    );
    return 0;
  }
  for (const e of verdict.errors) out(`${file}: ${e.path || '(document)'}: ${e.reason}`);
  return 1;
}

export interface RuleTestOptions {
  from: string;
  to: string;
  url: string;
  token: string | undefined;
}

/** Replays a rule file over a platform's history (its dry-run API); answers the exit code. */
export async function testRuleFile(
  file: string,
  o: RuleTestOptions,
  out: (s: string) => void,
  fetchImpl: typeof fetch = fetch,
): Promise<number> {
  const read = readRule(file);
  if ('problem' in read) {
    out(`${file}: ${read.problem}`);
    return 1;
  }
  if (!o.token) {
    out('a token is needed: --token or SAFECITY_TOKEN (an API token or a session token of a writer)');
    return 1;
  }
  const from = new Date(o.from);
  const to = new Date(o.to);
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) {
    out('--from and --to are ISO 8601 times, e.g. 2026-11-30T00:00:00Z');
    return 1;
  }
  let res: Response;
  try {
    res = await fetchImpl(new URL('/api/rules/dry-run', o.url), {
      method: 'POST',
      headers: { authorization: `Bearer ${o.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ rule: read.doc, from: from.toISOString(), to: to.toISOString() }),
    });
  } catch (e) {
    out(`cannot reach ${o.url}: ${(e as Error).message}`);
    return 1;
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) {
    out(`${res.status} ${String(body.code ?? '')}: ${String(body.detail ?? '')}`);
    for (const e of (body.errors as RuleProblem[] | undefined) ?? [])
      out(`${file}: ${e.path || '(document)'}: ${e.reason}`);
    return 1;
  }
  const firings =
    (body.firings as Array<{
      kind: string;
      at: string;
      key: string;
      evidence: Array<{ entityId: string; attribute?: string; value?: unknown }>;
    }>) ?? [];
  out(
    `${body.observations} observations of ${body.entities} entities replayed in ${body.elapsedMs} ms: ${firings.length} signals${body.truncated ? ' (truncated: narrow the window)' : ''}`,
  );
  for (const f of firings) {
    const ev = f.evidence
      .map((e) => `${e.entityId}${e.attribute ? ` ${e.attribute}=${JSON.stringify(e.value)}` : ''}`)
      .join(', ');
    out(`${f.at}  ${f.kind.padEnd(9)} ${f.key}${ev ? `  ${ev}` : ''}`);
  }
  return 0;
}
