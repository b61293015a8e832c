import type { Principal } from '../api/http/principal.ts';
import {
  type ContextResolver,
  type ContextService,
  DEFAULT_TENANT,
  renderEntity,
} from '../modules/context/index.ts';
import type { Unit } from '../modules/routing/index.ts';

/**
 * Dispatch candidates: the Vehicle entities (Smart Data Models) the caller may see, with their status
 * (`serviceStatus`/`status`: parked and available count as available) and capabilities
 * (`capabilities`, else `vehicleType`).
 */
export async function vehiclesVisibleTo(
  context: ContextService,
  contexts: ContextResolver,
  p: Principal,
): Promise<Unit[]> {
  const ctx = await contexts.core();
  const caller = {
    tenant: DEFAULT_TENANT,
    principal: p,
    readKeys: p.readKeys,
    defaultMarking: p.defaultMarking,
  };
  const units: Unit[] = [];
  for (let offset = 0; offset < 10_000; offset += 1000) {
    const page = await context.queryEntities(caller, { type: 'Vehicle', limit: 1000, offset }, ctx);
    for (const view of page.items) {
      const e = renderEntity(view.entity, ctx, { format: 'keyValues' });
      const loc = e.location as { type?: string; coordinates?: unknown } | undefined;
      if (loc?.type !== 'Point' || !Array.isArray(loc.coordinates)) continue;
      const [lon, lat] = loc.coordinates as number[];
      if (typeof lon !== 'number' || typeof lat !== 'number') continue;
      const rawStatus = String(e.serviceStatus ?? e.status ?? 'available');
      const status = rawStatus === 'parked' ? 'available' : rawStatus;
      const caps = e.capabilities ?? e.vehicleType;
      const capabilities = (Array.isArray(caps) ? caps : caps === undefined ? [] : [caps]).map(String);
      units.push({ id: e.id as string, position: [lon, lat], status, capabilities });
    }
    if (page.items.length < 1000) break;
  }
  return units;
}
