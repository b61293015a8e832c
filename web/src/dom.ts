/** Tiny DOM helpers: every text goes through textContent, never innerHTML (report text is untrusted). */

export function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id} in index.html`);
  return el;
}

export function $input(id: string): HTMLInputElement {
  return $(id) as HTMLInputElement;
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') el.className = v;
    else el.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    el.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return el;
}

/** Properties of an entity or report as a definition list for popups (scalars only, a few at most). */
export function propertyList(props: Record<string, unknown>, skip: string[] = [], max = 10): HTMLElement {
  const dl = h('dl');
  let n = 0;
  for (const [k, v] of Object.entries(props)) {
    if (skip.includes(k) || v === null || v === undefined || n >= max) continue;
    const text = typeof v === 'object' ? JSON.stringify(v) : String(v);
    dl.append(h('dt', {}, k), h('dd', {}, text.length > 160 ? `${text.slice(0, 157)}…` : text));
    n++;
  }
  return dl;
}

export function timeAgo(iso: string, now = Date.now()): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(t).toISOString().slice(0, 16).replace('T', ' ');
}
