/** The QueryPort over the NGSI-LD core's q-language and geo-query evaluators. */
import {
  type ExpandedEntity as CoreEntity,
  matchesGeoQuery,
  matchesQuery,
  parseGeoQuery,
  parseQuery,
} from '../context/index.ts';
import type { LdContextPort, QueryPort } from './ports.ts';

export function createCoreQueryPort(ld: LdContextPort): QueryPort {
  return {
    async compileQ(q, context) {
      const ac = await ld.resolve(context);
      const ast = parseQuery(q, (t) => ac.expandTerm(t));
      return (e) => matchesQuery(e as CoreEntity, ast);
    },
    async compileGeoQ(g, context) {
      const ac = await ld.resolve(context);
      const gq = parseGeoQuery(
        { georel: g.georel, geometry: g.geometry, coordinates: g.coordinates, geoproperty: g.geoproperty },
        (t) => ac.expandTerm(t),
      );
      return (e) => matchesGeoQuery(e as CoreEntity, gq);
    },
  };
}
