/**
 * A deliberately broken sharing gate, for one purpose: proving that the randomized reference-model test
 * (src/app/sharing.randomized.test.ts) notices when the gate drops one of MARKINGS.md's conditions. It is
 * passed to the composition root through `createPlatform(config, { makeGate })`, never through a production
 * setting, and it behaves exactly like the real gate until a bug is planted. Tests only.
 */
import type { RawBuilder } from 'kysely';
import type { MarkedObject, Marking } from './marking.ts';
import { type CurrentObject, type GatePrincipal, SharingGate } from './sharing-gate.ts';

/**
 * The conditions the broken gate can drop:
 * - `strict-reaches-clients`: reading forgets that TLP:AMBER+STRICT never reaches the clients of the owner
 *   and audience organisations (a client reads with its patrons' organisation keys);
 * - `owner-not-checked`: writing forgets the owner organisation (any writer who sees an object changes it);
 * - `red-named-may-reshare`: writing forgets that only its creator changes a TLP:RED object's marking.
 */
export type PlantedBug = 'strict-reaches-clients' | 'owner-not-checked' | 'red-named-may-reshare';

export class PlantedBugGate extends SharingGate {
  /** The condition dropped now; undefined: the real gate. */
  planted: PlantedBug | undefined;

  #widen<P extends Pick<GatePrincipal, 'readKeys'>>(p: P): P {
    if (this.planted !== 'strict-reaches-clients') return p;
    const patrons = p.readKeys.filter((k) => k.startsWith('amber:')).map((k) => `org:${k.slice(6)}`);
    return { ...p, readKeys: [...new Set([...p.readKeys, ...patrons])] };
  }

  override visibleWhere(p: Pick<GatePrincipal, 'readKeys'> | null, column?: string): RawBuilder<boolean> {
    return super.visibleWhere(p ? this.#widen(p) : p, column);
  }

  override readKeysOf(p: Pick<GatePrincipal, 'readKeys'> | null): string[] {
    return super.readKeysOf(p ? this.#widen(p) : p);
  }

  override canSee(
    p: Pick<GatePrincipal, 'readKeys'> | readonly string[] | null,
    o: MarkedObject | { readKeys: readonly string[] },
  ): boolean {
    if (p !== null && Array.isArray(p)) return super.canSee(this.#widen({ readKeys: p }).readKeys, o);
    return super.canSee(p === null ? p : this.#widen(p as Pick<GatePrincipal, 'readKeys'>), o);
  }

  override checkChange(p: GatePrincipal, kind: string, current: CurrentObject, next?: Marking): void {
    if (this.planted === 'owner-not-checked') {
      super.checkChange({ ...p, orgId: current.ownerOrg }, kind, current, next);
    } else if (this.planted === 'red-named-may-reshare' && current.marking.tlp === 'RED') {
      super.checkChange(p, kind, current, undefined);
    } else {
      super.checkChange(p, kind, current, next);
    }
  }
}
