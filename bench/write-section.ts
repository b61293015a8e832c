import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const FILE = resolve(import.meta.dirname, '../docs/benchmarks.md');

/**
 * Replaces (or appends) the `## title` section of docs/benchmarks.md with `markdown`. Hand-written `### `
 * subsections at the end of the old section (comparisons, notes) are kept after the new figures.
 */
export function writeBenchSection(title: string, generated: string): void {
  let markdown = generated;
  const text = existsSync(FILE) ? readFileSync(FILE, 'utf8') : '# Benchmarks\n\n';
  const header = `## ${title}`;
  const start = text.indexOf(`${header}\n`);
  if (start < 0) {
    writeFileSync(FILE, `${text.trimEnd()}\n\n${markdown.trimEnd()}\n`);
    return;
  }
  const next = text.indexOf('\n## ', start + header.length);
  const end = next < 0 ? text.length : next + 1;
  const sub = text.indexOf('\n### ', start);
  if (sub >= 0 && sub < end) markdown = `${markdown.trimEnd()}\n${text.slice(sub, end)}`;
  writeFileSync(
    FILE,
    `${text.slice(0, start)}${markdown.trimEnd()}\n\n${text.slice(end).replace(/^\n+/, '')}`.trimEnd() + '\n',
  );
}
