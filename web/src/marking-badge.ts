/**
 * TLP 2.0 and PAP labels as the operator sees them: FIRST's colours on black, with the label in text so
 * that colour is never the only signal.
 */

export const TLP_COLOURS: Record<string, string> = {
  RED: '#FF2B2B',
  'AMBER+STRICT': '#FFC000',
  AMBER: '#FFC000',
  GREEN: '#33FF00',
  CLEAR: '#FFFFFF',
};

export const TLP_CHOICES = ['CLEAR', 'GREEN', 'AMBER', 'AMBER+STRICT', 'RED'] as const;
export const PAP_CHOICES = ['CLEAR', 'GREEN', 'AMBER', 'RED'] as const;

/** What each label means for who sees the object on this platform (shared/MARKINGS.md), for tooltips. */
export const TLP_MEANING: Record<string, string> = {
  CLEAR: 'anyone, also public feeds',
  GREEN: 'every organisation of the audience communities',
  AMBER: 'owner, audience organisations and their clients',
  'AMBER+STRICT': 'owner and audience organisations only',
  RED: 'named people only',
};

export function tlpColour(tlp: string | undefined): string {
  return (tlp && TLP_COLOURS[tlp.toUpperCase()]) || '#9aa4b2';
}

/** A badge `TLP:AMBER` (black background, label colour), or `TLP:?` when the object carries none. */
export function tlpBadge(tlp: string | undefined): HTMLElement {
  const el = document.createElement('span');
  el.className = 'badge tlp';
  const label = tlp ? tlp.toUpperCase() : '?';
  el.textContent = `TLP:${label}`;
  el.style.color = tlpColour(tlp);
  el.title = TLP_MEANING[label] ?? 'no TLP label';
  el.dataset.tlp = label;
  return el;
}

export function papBadge(pap: string | undefined): HTMLElement | null {
  if (!pap) return null;
  const el = document.createElement('span');
  el.className = 'badge pap';
  el.textContent = `PAP:${pap.toUpperCase()}`;
  el.style.color = tlpColour(pap);
  el.title = 'Permissible Actions Protocol: what recipients may do with it';
  return el;
}
