import { randomBytes, randomUUID } from 'node:crypto';

/** A random UUID (v4). */
export function newId(): string {
  return randomUUID();
}

/**
 * A time-ordered UUID (v7, RFC 9562): sortable by creation time, so event ids and audit records
 * index well.
 */
export function newTimeOrderedId(now: number = Date.now()): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x70;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
