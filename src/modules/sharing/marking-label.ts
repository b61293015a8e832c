/**
 * How a marking travels with what leaves the platform, in one documented form (docs/access.md, "Markings on
 * the way out"): `TLP:AMBER; PAP:GREEN; owner=police` for one object, and for an answer or a notification that
 * carries several objects the tightest label and PAP of them all with every owner (`owner=fire,police`) — the
 * label a receiver must honour for the whole message. NGSI-LD answers and notifications carry it in the
 * `SafeCity-Marking` header (the NGSI-LD payloads themselves stay standard); the platform's own JSON carries
 * the marking object itself.
 */
import type { Marking, Pap, Tlp } from './marking.ts';
import { TLP_RANK } from './marking.ts';

/** The HTTP header (and MQTT metadata key) that carries the marking of what a message holds. */
export const MARKING_HEADER = 'SafeCity-Marking';

const PAP_RANK: Record<Pap, number> = { CLEAR: 0, GREEN: 1, AMBER: 2, RED: 3 };

/** The label of one object or of several together; undefined when there is nothing. */
export function markingLabel(objects: readonly { marking: Marking; ownerOrg: string }[]): string | undefined {
  if (objects.length === 0) return undefined;
  let tlp: Tlp = 'CLEAR';
  let pap: Pap | undefined;
  const owners = new Set<string>();
  for (const o of objects) {
    if (TLP_RANK[o.marking.tlp] > TLP_RANK[tlp]) tlp = o.marking.tlp;
    const p = o.marking.pap;
    if (p && (!pap || PAP_RANK[p] > PAP_RANK[pap])) pap = p;
    owners.add(o.ownerOrg);
  }
  return [`TLP:${tlp}`, ...(pap ? [`PAP:${pap}`] : []), `owner=${[...owners].sort().join(',')}`].join('; ');
}

/** Reads a label back (for receivers and tests): `{ tlp, pap?, owners }`, or undefined when malformed. */
export function parseMarkingLabel(label: string): { tlp: Tlp; pap?: Pap; owners: string[] } | undefined {
  const parts = label.split(';').map((p) => p.trim());
  const tlp = parts.find((p) => p.startsWith('TLP:'))?.slice(4) as Tlp | undefined;
  if (!tlp || !(tlp in TLP_RANK)) return undefined;
  const pap = parts.find((p) => p.startsWith('PAP:'))?.slice(4) as Pap | undefined;
  const owners = (parts.find((p) => p.startsWith('owner='))?.slice(6) ?? '').split(',').filter(Boolean);
  return pap && pap in PAP_RANK ? { tlp, pap, owners } : { tlp, owners };
}
