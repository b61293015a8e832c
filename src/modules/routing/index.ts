/**
 * Routing module — public surface. First responders' fastest routes on a real OpenStreetMap road
 * network, reacting to live closures and slow-downs within milliseconds (Customizable Contraction
 * Hierarchies). Everything else in this folder is internal. See docs/routing.md.
 *
 * Getting an engine
 *   const { engine } = await loadOrBuildRoadNetwork({ source: 'porto', dataDir: 'data', onProgress });
 *     source: an .osm.pbf path, an extract name in roadsDir() ('porto' → <roadsDir>/porto.osm.pbf), or an
 *     http(s) URL (downloaded into <dataDir>/downloads). The built graph is cached as
 *     <dataDir>/routing/<name>.<profile>.<key>.graph and reloaded in well under a second next time.
 *     Options: profile 'car' | 'emergency' (default 'car'), maxSnapMeters (default 1000), clock, rebuild.
 *   importOsmPbf(path, { profile, onProgress }) builds a RoadNetwork without caching;
 *   new RoutingEngine(network, { maxSnapMeters, clock }) wraps one.
 *   onProgress receives { phase, fraction (0..1 overall), message }.
 *
 * Asking (coordinates are [lon, lat]; durations in seconds, distances in metres)
 *   engine.route(from, to)            → Route { reachable: true, durationS, durationMs, distanceM,
 *                                        geometry: GeoJSON LineString, steps[], from, to, arcs }
 *                                       | { reachable: false, reason, from, to }
 *   engine.table(sources, targets)    → { durations: (number | null)[][], sources, targets }
 *   engine.dispatch(incident, units, { k = 3, requiredCapabilities, availableStatuses = ['available'] })
 *                                     → { incident, ranked: [{ id, rank, durationS, route? }], unreachable, excluded }
 *   engine.isochrone(origin, seconds, { cellMeters = 100 }) → GeoJSON Feature (Polygon | MultiPolygon)
 *   engine.snap(point)                → SnappedPoint (where a coordinate joins the network)
 *
 * Live changes (visible to the very next query; expired ones are lifted lazily before each call)
 *   engine.addClosure(geojson, { expiresAt, radiusMeters = 20, bufferMeters = 5 }) → id
 *   engine.liftClosure(id)
 *   engine.addSlowdown(geojson, factor, { expiresAt, ... }) → id   (factor multiplies speed; 0.5 = half speed)
 *   engine.liftSlowdown(id)
 *   engine.liveChanges()              → [{ id, kind, factor, edges, expiresAt }]
 *   geojson: Geometry | Feature | FeatureCollection | GeometryCollection; Point / MultiPoint (with radius),
 *   LineString / MultiLineString, Polygon / MultiPolygon.
 *
 * engine.stats() → sizes, memory, last customization time.
 *
 * Errors are AppError with codes ROUTING_* (see docs/errors.md): ROUTING_INVALID_COORDINATE,
 * ROUTING_POINT_OUTSIDE_NETWORK, ROUTING_INVALID_GEOMETRY, ROUTING_INVALID_ARGUMENT,
 * ROUTING_CLOSURE_NOT_FOUND, ROUTING_SLOWDOWN_NOT_FOUND, ROUTING_SOURCE_NOT_FOUND, ROUTING_DOWNLOAD_FAILED,
 * ROUTING_NOT_OSM_PBF, ROUTING_CORRUPT_FILE, ROUTING_EMPTY_NETWORK, ROUTING_UNKNOWN_PROFILE.
 * An unreachable destination is an answer ({ reachable: false } / null in tables), not an error.
 *
 * Any map or route drawn from this data must show ROAD_DATA_ATTRIBUTION.
 */
export {
  importOsmPbf,
  type LoadOptions,
  type LoadResult,
  loadOrBuildRoadNetwork,
  resolveRoadSource,
  roadsDir,
} from './load-road-network.ts';
export type { ImportProgress, ProgressCallback } from './osm-import.ts';
export { PROFILES, type ProfileName } from './profile.ts';
export type { RoadNetwork } from './road-network.ts';
export {
  type DispatchOptions,
  type DispatchResult,
  type EngineOptions,
  type EngineStats,
  type IsochroneFeature,
  type IsochroneOptions,
  type LiveChange,
  type LiveChangeOptions,
  type LonLat,
  type Route,
  type RouteAnswer,
  type RouteStep,
  RoutingEngine,
  type SnappedPoint,
  type TableResult,
  type Unit,
  type Unreachable,
} from './routing-engine.ts';

/** Attribution required by the OpenStreetMap licence on every map, route or screen drawn from the data. */
export const ROAD_DATA_ATTRIBUTION = '© OpenStreetMap contributors, ODbL';
