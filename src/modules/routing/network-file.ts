/**
 * The cache file of a built network: one binary file of typed arrays.
 *
 *   bytes 0..7   magic "SCROUTE1"
 *   bytes 8..11  uint32 LE length L of the JSON header
 *   12..12+L     JSON header: { meta, arrays: [{ name, type, offset, length }] }
 *   then the arrays, each at an 8-byte aligned offset from the start of the file
 *
 * Loading is a single read plus one copy per array (no parsing), well under a second for a city.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CchTopology } from './cch-topology.ts';
import {
  ARRAY_FIELDS,
  NETWORK_FORMAT_VERSION,
  type NetworkMeta,
  type RoadNetwork,
  TOPO_FIELDS,
} from './road-network.ts';

const MAGIC = 'SCROUTE1';

type TypedArray = Float64Array | Uint32Array | Int32Array | Uint8Array;
const CTORS = { Float64Array, Uint32Array, Int32Array, Uint8Array } as const;
type CtorName = keyof typeof CTORS;

interface ArrayEntry {
  name: string;
  type: CtorName | 'ArrayBuffer';
  offset: number;
  length: number;
}

function typeName(a: TypedArray): CtorName {
  if (a instanceof Float64Array) return 'Float64Array';
  if (a instanceof Uint32Array) return 'Uint32Array';
  if (a instanceof Int32Array) return 'Int32Array';
  return 'Uint8Array';
}

export function writeNetworkFile(path: string, net: RoadNetwork): void {
  const items: { name: string; bytes: Uint8Array; type: ArrayEntry['type']; length: number }[] = [];
  for (const f of ARRAY_FIELDS) {
    const a = net[f] as TypedArray;
    items.push({
      name: f,
      bytes: new Uint8Array(a.buffer, a.byteOffset, a.byteLength),
      type: typeName(a),
      length: a.length,
    });
  }
  for (const f of TOPO_FIELDS) {
    const a = net.topo[f] as TypedArray;
    items.push({
      name: `topo.${f}`,
      bytes: new Uint8Array(a.buffer, a.byteOffset, a.byteLength),
      type: typeName(a),
      length: a.length,
    });
  }
  items.push({
    name: 'segIndexData',
    bytes: new Uint8Array(net.segIndexData),
    type: 'ArrayBuffer',
    length: net.segIndexData.byteLength,
  });
  // two passes: the header size decides the data offsets
  let headerJson = '';
  let dataStart = 0;
  for (let pass = 0; pass < 3; pass++) {
    let offset = dataStart;
    const arrays: ArrayEntry[] = items.map((it) => {
      const entry = { name: it.name, type: it.type, offset, length: it.length };
      offset = align8(offset + it.bytes.byteLength);
      return entry;
    });
    headerJson = JSON.stringify({ meta: net.meta, n: net.topo.n, arrays });
    const next = align8(12 + Buffer.byteLength(headerJson));
    if (next === dataStart) break;
    dataStart = next;
  }
  let total = dataStart;
  for (const it of items) total = align8(total + it.bytes.byteLength);
  const out = Buffer.alloc(total);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(Buffer.byteLength(headerJson), 8);
  out.write(headerJson, 12, 'utf8');
  let offset = dataStart;
  for (const it of items) {
    out.set(it.bytes, offset);
    offset = align8(offset + it.bytes.byteLength);
  }
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, out);
  renameSync(tmp, path);
}

/** Reads a network file; throws a plain Error when the file is not a valid cache of this format. */
export function readNetworkFile(path: string): RoadNetwork {
  const buf = readFileSync(path);
  if (buf.byteLength < 12 || buf.toString('latin1', 0, 8) !== MAGIC)
    throw new Error('not a network cache file');
  const headerLen = buf.readUInt32LE(8);
  if (12 + headerLen > buf.byteLength) throw new Error('truncated network cache file');
  const header = JSON.parse(buf.toString('utf8', 12, 12 + headerLen)) as {
    meta: NetworkMeta;
    n: number;
    arrays: ArrayEntry[];
  };
  if (header.meta?.formatVersion !== NETWORK_FORMAT_VERSION) throw new Error('network cache format mismatch');
  const got = new Map<string, TypedArray | ArrayBuffer>();
  for (const a of header.arrays) {
    if (a.type === 'ArrayBuffer') {
      if (a.offset + a.length > buf.byteLength) throw new Error('truncated network cache file');
      const copy = new ArrayBuffer(a.length);
      new Uint8Array(copy).set(buf.subarray(a.offset, a.offset + a.length));
      got.set(a.name, copy);
      continue;
    }
    const Ctor = CTORS[a.type];
    if (!Ctor) throw new Error(`unknown array type ${a.type}`);
    const bytes = a.length * Ctor.BYTES_PER_ELEMENT;
    if (a.offset + bytes > buf.byteLength) throw new Error('truncated network cache file');
    const arr = new Ctor(a.length);
    new Uint8Array(arr.buffer).set(buf.subarray(a.offset, a.offset + bytes));
    got.set(a.name, arr);
  }
  const take = <T>(name: string): T => {
    const v = got.get(name);
    if (v === undefined) throw new Error(`network cache file lacks ${name}`);
    return v as T;
  };
  const topo = { n: header.n } as CchTopology;
  for (const f of TOPO_FIELDS) (topo as unknown as Record<string, unknown>)[f] = take(`topo.${f}`);
  const net = { meta: header.meta, topo, segIndexData: take<ArrayBuffer>('segIndexData') } as RoadNetwork;
  for (const f of ARRAY_FIELDS) (net as unknown as Record<string, unknown>)[f] = take(f);
  return net;
}

function align8(x: number): number {
  return (x + 7) & ~7;
}
