// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Block payloads that name themselves: a 16-byte header (magic, LBA,
 * version, checksum) and a pseudo-random body derived from (LBA, version).
 * A block read back is either all zeros, exactly one (LBA, version)'s
 * payload, or torn: any mix of two versions, or of a version and stale
 * bytes, fails the comparison.
 *
 * @module
 */
import { Buffer } from "node:buffer";

/** "CRSH", little-endian, at offset 0 of every payload. */
const MAGIC = 0x48535243;
/** The smallest block a payload fits (the header, and a body word). */
export const MIN_PAYLOAD = 20;

/** What a block read back holds. */
export type BlockContent =
  | { kind: "zero" }
  | { kind: "version"; lba: number; version: number }
  | { kind: "torn"; why: string };

/**
 * The payload of `lba` at `version` (version ≥ 1).
 *
 * @param lba the block
 * @param version the write's version
 * @param size the block size, at least {@linkcode MIN_PAYLOAD}
 */
export function payload(
  lba: number,
  version: number,
  size: number,
): Uint8Array {
  const bytes = new Uint8Array(size);
  const dv = new DataView(bytes.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, lba, true);
  dv.setUint32(8, version, true);
  let x = (Math.imul(lba + 1, 0x9e3779b1) ^ Math.imul(version, 0x85ebca77)) >>>
      0 || 1;
  for (let i = 16; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    dv.setUint32(i, x >>> 0, true);
  }
  for (let i = size & ~3; i < size; i++) bytes[i] = (x >>> (8 * (i & 3))) & 255;
  dv.setUint32(12, checksum(bytes), true);
  return bytes;
}

/** FNV-1a over the block, its checksum field read as zero. */
function checksum(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h = Math.imul(h ^ (i >= 12 && i < 16 ? 0 : bytes[i]), 0x01000193);
  }
  return h >>> 0;
}

/** Payloads by (LBA, version), generated once each. */
export class Payloads {
  #size: number;
  #cache = new Map<string, Uint8Array>();

  /** @param size the block size */
  constructor(size: number) {
    if (size < MIN_PAYLOAD) {
      throw new RangeError(
        `Cannot make payloads: the block size must be at least ${MIN_PAYLOAD}, got ${size}`,
      );
    }
    this.#size = size;
  }

  /** The payload of `lba` at `version`. */
  get(lba: number, version: number): Uint8Array {
    const key = `${lba}:${version}`;
    let p = this.#cache.get(key);
    if (p === undefined) {
      p = payload(lba, version, this.#size);
      this.#cache.set(key, p);
    }
    return p;
  }

  /** Classify a block read back. */
  decode(block: Uint8Array): BlockContent {
    const dv = new DataView(block.buffer, block.byteOffset, block.byteLength);
    if (dv.getUint32(0, true) !== MAGIC) {
      return isZero(block)
        ? { kind: "zero" }
        : { kind: "torn", why: "no payload header" };
    }
    const lba = dv.getUint32(4, true);
    const version = dv.getUint32(8, true);
    const expected = this.get(lba, version);
    if (Buffer.compare(block.subarray(0, this.#size), expected) !== 0) {
      return {
        kind: "torn",
        why:
          `the header names block ${lba} version ${version}, the body differs`,
      };
    }
    return { kind: "version", lba, version };
  }
}

function isZero(block: Uint8Array): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}
