/**
 * Summarises a V8 CPU profile (`node --cpu-prof`): the functions with the most self time, or with
 * `--inclusive` the most time spent in them and what they called (a sample counts once per function on its
 * stack). Run: node bin/run-ts.js bench/cpu-profile-top.ts <file.cpuprofile> [count] [--inclusive] [regex]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const inclusive = args.includes('--inclusive');
const [file, count, filter] = args.filter((a) => a !== '--inclusive');
if (!file) {
  console.error('usage: cpu-profile-top.ts <file.cpuprofile> [count] [--inclusive] [regex]');
  process.exit(2);
}
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (n: ProfileNode) =>
  `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(src|bench|node_modules)\//, '$1/')}`;
const timeOf = new Map<number, number>();
p.samples.forEach((id, i) => timeOf.set(id, (timeOf.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
const totals = new Map<string, number>();
let busy = 0;
for (const [id, us] of timeOf) {
  const node = byId.get(id) as ProfileNode;
  if (node.callFrame.functionName === '(idle)') continue;
  busy += us;
  const names = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = inclusive ? parent.get(cur) : undefined) {
    names.add(name(byId.get(cur) as ProfileNode));
  }
  for (const k of names) totals.set(k, (totals.get(k) ?? 0) + us);
}
const re = filter ? new RegExp(filter) : undefined;
console.log(`busy ${(busy / 1000).toFixed(0)} ms (${inclusive ? 'inclusive' : 'self'} time)`);
for (const [k, us] of [...totals]
  .filter(([k]) => !re || re.test(k))
  .sort((a, b) => b[1] - a[1])
  .slice(0, Number(count ?? 25))) {
  console.log(
    `${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / busy).toFixed(1).padStart(5)} %  ${k}`,
  );
}
