/**
 * Test helper: self-checking frames for buffer-sharing tests. A frame holds its number (word 0),
 * the FNV-1a checksum of its payload (word 1), a seeded pseudo-random payload, and an 8-byte
 * trailer the consumer writes back (its checksum of the frame it read).
 */
import { seededRandom } from '../../src/base/random.js';
import { fnv1a } from '../../src/device/soft/soft-kernels.js';

const HEADER = 16;
const TRAILER = 8;

function payloadOf(bytes: Uint8Array): Uint8Array {
  return bytes.subarray(HEADER, bytes.length - TRAILER);
}

/** Writes frame `n` (payload from `seed` and `n`) into `bytes`; returns its checksum. */
export function writeFrame(bytes: Uint8Array, n: number, seed: number): number {
  const random = seededRandom((seed ^ Math.imul(n, 0x9e3779b1)) >>> 0);
  const payload = payloadOf(bytes);
  for (let i = 0; i < payload.length; i++) payload[i] = (random() * 256) | 0;
  const sum = fnv1a(payload);
  const words = new DataView(bytes.buffer, bytes.byteOffset, HEADER);
  words.setUint32(0, n, true);
  words.setUint32(4, sum, true);
  return sum;
}

/** Reads a frame: its number, and whether its payload matches its checksum. */
export function readFrame(bytes: Uint8Array): { n: number; sum: number; ok: boolean } {
  const words = new DataView(bytes.buffer, bytes.byteOffset, HEADER);
  const n = words.getUint32(0, true);
  const sum = words.getUint32(4, true);
  return { n, sum, ok: fnv1a(payloadOf(bytes)) === sum };
}

/** The trailer: what the consumer wrote back. */
export function readAck(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset + bytes.length - TRAILER, 4).getUint32(0, true);
}

export function writeAck(bytes: Uint8Array, sum: number): void {
  new DataView(bytes.buffer, bytes.byteOffset + bytes.length - TRAILER, 4).setUint32(0, sum, true);
}
