import { randomFillSync, randomUUID } from 'node:crypto';

/** A random UUID (v4). */
export function newId(): string {
  return randomUUID();
}

/**
 * A time-ordered UUID (v7, RFC 9562): sortable by creation time, so event ids and audit records
 * index well.
 */
export function newTimeOrderedId(now: number = Date.now()): string {
  const bytes = Buffer.from(randomSlice());
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x70;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * 16 random bytes from a pool filled 256 ids at a time (as `randomUUID` does): a write of a thousand
 * entities takes a thousand event ids, and one call into the CSPRNG per id cost more than the rest of the id.
 */
const POOL = Buffer.alloc(16 * 256);
let poolAt = POOL.length;
function randomSlice(): Uint8Array {
  if (poolAt >= POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  poolAt += 16;
  return POOL.subarray(poolAt - 16, poolAt);
}
