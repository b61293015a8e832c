declare module 'tiny-osmpbf' {
  interface OsmElementBase {
    id: number;
    tags: Record<string, string>;
  }
  export interface OsmNode extends OsmElementBase {
    type: 'node';
    lat: number;
    lon: number;
  }
  export interface OsmWay extends OsmElementBase {
    type: 'way';
    nodes: number[];
  }
  export interface OsmRelation extends OsmElementBase {
    type: 'relation';
    members: { type: 'node' | 'way' | 'relation'; ref: number; role: string }[];
  }
  export type OsmElement = OsmNode | OsmWay | OsmRelation;
  function tinyOsmPbf(data: Uint8Array, handler: (element: OsmElement) => void): unknown;
  export default tinyOsmPbf;
}
