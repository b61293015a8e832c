/** NGSI-LD entities as map features, whatever representation the broker answered with. */
import type { Feature, FeatureCollection } from './platform-types.ts';

/** NGSI-LD answers: a GeoJSON FeatureCollection, or (if the server ignores Accept) an entity array. */
export function toFeatures(body: unknown, type: string): Feature[] {
  const out: Feature[] = [];
  const fc = body as FeatureCollection | undefined;
  const items: unknown[] =
    fc && fc.type === 'FeatureCollection' ? fc.features : Array.isArray(body) ? body : [];
  for (const item of items) {
    const f = item as Partial<Feature> & Record<string, unknown>;
    if (f.type === 'Feature') {
      if (!f.geometry) continue;
      out.push({
        type: 'Feature',
        ...(f.id !== undefined ? { id: f.id } : {}),
        geometry: f.geometry,
        properties: { ...(f.properties ?? {}), id: f.id ?? f.properties?.id, type },
      });
    } else {
      const loc = f.location as Feature['geometry'] | { value?: Feature['geometry'] } | undefined;
      const geometry = loc && 'value' in loc ? (loc.value ?? null) : ((loc as Feature['geometry']) ?? null);
      if (!geometry) continue;
      const { location: _drop, ...props } = f;
      out.push({ type: 'Feature', geometry, properties: { ...props, type } });
    }
  }
  return out;
}
