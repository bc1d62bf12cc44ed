/**
 * The `render` scenario's image contents: what a frame and a texture hold, computed the same way
 * by the soft device's kernels (engine workers), the compositor (its own worker) and the tests.
 *
 * Overview: a texture is a `u32` buffer whose word 0 is its version and whose other words are
 * texels drawn from a key (the run's seed, the texture and the version). A frame is a `u32`
 * buffer: a header (a magic word, the frame's key, the versions of the two textures it read)
 * and a body whose word `i` mixes the frame's key with one texel of each texture. So the body of
 * a frame can be checked word for word by anyone who knows the seed, the client, the frame number
 * and which texture versions it was meant to see: a frame that ran before the upload it depended
 * on, raced with one, or was overwritten while being read does not match.
 *
 * Contract: pure functions of their arguments (no state, no imports), cheap enough to check a
 * frame per frame on the compositor's thread.
 *
 * @example
 * ```ts
 * import { checkFrame, drawFrame, fillTexture, frameKey } from './render-pattern.js';
 * const [tex0, tex1] = [new Uint32Array(64), new Uint32Array(64)];
 * fillTexture(tex0, 1, 0, 3);
 * fillTexture(tex1, 1, 1, 0);
 * const frame = new Uint32Array(256);
 * drawFrame(frame, tex0, tex1, frameKey(1, 2, 7));
 * console.log(checkFrame(frame, { seed: 1, client: 2, frame: 7, textures: [0, 1], versions: [3, 0] }, 64)); // null
 * ```
 */

/** Word 0 of every frame ("FRME"). */
export const FRAME_MAGIC = 0x46524d45;
/** Header words of a frame: magic, key, version of texture 0, version of texture 1. */
export const FRAME_HEADER_WORDS = 4;

/** A 32-bit mix of two words (a murmur3-style finaliser over their combination). */
export function mix32(a: number, b: number): number {
  let h = (a ^ Math.imul(b + 0x9e3779b9, 0x85ebca6b)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The key of frame `frame` of client `client` in a run seeded with `seed`. */
export function frameKey(seed: number, client: number, frame: number): number {
  return mix32(mix32(seed, client + 1), frame);
}

/** The key of version `version` of texture `texture`. */
export function textureKey(seed: number, texture: number, version: number): number {
  return mix32(mix32(seed ^ 0x7e57, texture + 1), version);
}

/** Writes version `version` of texture `texture` into `tex` (texels first, the version word last). */
export function fillTexture(tex: Uint32Array, seed: number, texture: number, version: number): void {
  const key = textureKey(seed, texture, version);
  for (let j = 1; j < tex.length; j++) tex[j] = mix32(key, j);
  tex[0] = version;
}

/** Texel `j` (1-based word index) of version `version` of texture `texture`. */
function texel(key: number, j: number): number {
  return mix32(key, j);
}

/** Which texel of each texture body word `i` reads (both textures have `texWords` words). */
function texelIndex(i: number, texWords: number, stride: number): number {
  return 1 + ((i * stride) % (texWords - 1));
}

/** Renders the frame with key `key` from the two textures into `out` (one pass). */
export function drawFrame(out: Uint32Array, tex0: Uint32Array, tex1: Uint32Array, key: number): void {
  // The versions are read first: a texture rewritten during the pass shows in the body.
  out[2] = tex0[0]!;
  out[3] = tex1[0]!;
  const n0 = tex0.length;
  const n1 = tex1.length;
  for (let i = FRAME_HEADER_WORDS; i < out.length; i++) {
    out[i] = (mix32(key, i) ^ tex0[texelIndex(i, n0, 1)]! ^ tex1[texelIndex(i, n1, 7)]!) >>> 0;
  }
  out[1] = key;
  out[0] = FRAME_MAGIC;
}

/** What a frame must hold. */
export interface FrameExpectation {
  readonly seed: number;
  readonly client: number;
  readonly frame: number;
  /** The two textures the frame read. */
  readonly textures: readonly [number, number];
  /** The version of each that it had to see (the last upload submitted before it). */
  readonly versions: readonly [number, number];
}

/**
 * Checks `frame` against what it must hold, textures of `texWords` words each.
 * @returns null when it matches, else what is wrong (the first wrong word).
 */
export function checkFrame(frame: Uint32Array, want: FrameExpectation, texWords: number): string | null {
  const key = frameKey(want.seed, want.client, want.frame);
  const what = `client ${want.client} frame ${want.frame}`;
  if (frame[0] !== FRAME_MAGIC) return `${what}: no frame header (word 0 is ${frame[0]})`;
  if (frame[1] !== key) return `${what}: holds another frame (key ${frame[1]}, want ${key})`;
  for (const t of [0, 1] as const) {
    if (frame[2 + t] !== want.versions[t]) {
      return (
        `${what}: read version ${frame[2 + t]} of texture ${want.textures[t]}, want ${want.versions[t]} ` +
        '(it did not wait for the upload, or overtook the next one)'
      );
    }
  }
  const words = texWords;
  const k0 = textureKey(want.seed, want.textures[0], want.versions[0]);
  const k1 = textureKey(want.seed, want.textures[1], want.versions[1]);
  for (let i = FRAME_HEADER_WORDS; i < frame.length; i++) {
    const expected = (mix32(key, i) ^ texel(k0, texelIndex(i, words, 1)) ^ texel(k1, texelIndex(i, words, 7))) >>> 0;
    if (frame[i] !== expected) return `${what}: word ${i} is ${frame[i]}, want ${expected}`;
  }
  return null;
}
