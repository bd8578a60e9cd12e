// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The log store's on-media format, version 1: the stream header, the
 * region table and the entry header. Pure functions over byte arrays and
 * constants; every integer is little-endian.
 *
 * ```
 * file offset
 * 0      stream header (4 KiB; 80 bytes used)
 *          0  signature "ASYNCPMEM-STREAM"      16  major u32 = 1
 *         20  minor u32 = 0                     24  stream size u64
 *         32  block size u32                    36  region slots u32
 *         40  max in flight u32                 44  checksum seed u32
 *         48  data offset u64                   56  reserved u32 = 0
 *         60  CRC-32C of bytes 0..59
 *         64  settled timestamp u64 (W)         72  timestamp bound u64 (R)
 * 4096   region table: one 64-byte slot per region
 *          0  state u32 (0 free, 1 allocated)    4  generation u32
 *          8  offset u64 (file offset of the region's space)
 *         16  size u64 (a multiple of the block size)
 *         24  CRC-32C of bytes 4..23            28  reserved u32 = 0
 *         32  head u64 (logical position of the first live entry)
 * data   regions, each a circular log of 8-byte aligned entries
 *          0  CRC-32C of bytes 4 .. 16+length, seeded
 *          4  length u32 (bit 31: padding, no data)
 *          8  timestamp u64 (>= 1)
 *         16  data, then up to 7 bytes of padding
 * ```
 *
 * A region's positions are logical: they only grow, and `position mod
 * size` is the place in the region. A header never straddles the end: an
 * entry that does not fit before the end is preceded by a padding entry
 * up to it (or, with fewer than 16 bytes left, the end is skipped). A
 * zero header (timestamp 0) ends a region's entries.
 *
 * @module
 */
import { crc32c } from "../pmem2/crc32c.ts";

/** The signature at offset 0. */
export const SIGNATURE = "ASYNCPMEM-STREAM";
/** The format's major version; another refuses to open. */
export const MAJOR = 1;
/** The format's minor version. */
export const MINOR = 0;
/** Bytes of the stream header (the region table follows). */
export const HEADER_SIZE = 4096;
/** Bytes of the header the CRC covers. */
const HEADER_CRC_END = 60;
/** Offset of the header CRC. */
const HEADER_CRC_AT = 60;
/** File offset of the settled timestamp W. */
export const SETTLED_AT = 64;
/** File offset of the timestamp bound R. */
export const BOUND_AT = 72;
/** Bytes of one region table slot. */
export const SLOT_SIZE = 64;
/** Bytes of an entry header. */
export const ENTRY_HEADER = 16;
/** Bit of the length word marking a padding entry. */
export const PAD_BIT = 0x80000000;
/** Largest entry data length (2^31 - 1 bytes fit the length word). */
export const MAX_ENTRY = 0x7fffffff;
/** Largest timestamp (timestamps are JavaScript numbers). */
export const MAX_TIMESTAMP = Number.MAX_SAFE_INTEGER;
/** The timestamp bound R grows in steps of this many. */
export const BOUND_STEP = 65536;
/** Slot state: free. */
export const SLOT_FREE = 0;
/** Slot state: allocated. */
export const SLOT_ALLOCATED = 1;
/** Region table slots at most. */
export const MAX_SLOTS = 65536;
/** The smallest block size. */
export const MIN_BLOCK_SIZE = 64;
/** The largest block size. */
export const MAX_BLOCK_SIZE = 1 << 30;

/** The stream header's geometry and identity. */
export interface Geometry {
  /** Bytes of the file the stream uses. */
  size: number;
  /** Region alignment and size unit, a power of two. */
  blockSize: number;
  /** Slots of the region table. */
  regionSlots: number;
  /** Timestamps reserved and not yet persisted, at most. */
  maxInFlight: number;
  /** Seed of every entry CRC (random per stream). */
  seed: number;
  /** File offset of the first region's space. */
  dataOffset: number;
}

/** `x` rounded up to a multiple of `unit` (a power of two). */
export function alignUp(x: number, unit: number): number {
  return Math.ceil(x / unit) * unit;
}

/** Bytes an entry of `length` data bytes takes, header included. */
export function entryTotal(length: number): number {
  return ENTRY_HEADER + alignUp(length, 8);
}

/**
 * A logical position moved to the start of the next pass when fewer than
 * a header's bytes remain before the region's end.
 */
export function normalize(pos: number, size: number): number {
  const phys = pos % size;
  return size - phys < ENTRY_HEADER ? pos + size - phys : pos;
}

/** The file offset of the first region's space for a geometry. */
export function dataOffsetOf(regionSlots: number, blockSize: number): number {
  return alignUp(HEADER_SIZE + regionSlots * SLOT_SIZE, blockSize);
}

/** File offset of region table slot `k`. */
export function slotOffset(k: number): number {
  return HEADER_SIZE + k * SLOT_SIZE;
}

/**
 * Encode the stream header (its first 64 bytes; W and R are zero).
 *
 * @param g the geometry
 * @returns 64 bytes for file offset 0
 */
export function encodeHeader(g: Geometry): Uint8Array {
  const b = new Uint8Array(64);
  const dv = new DataView(b.buffer);
  b.set(new TextEncoder().encode(SIGNATURE), 0);
  dv.setUint32(16, MAJOR, true);
  dv.setUint32(20, MINOR, true);
  dv.setBigUint64(24, BigInt(g.size), true);
  dv.setUint32(32, g.blockSize, true);
  dv.setUint32(36, g.regionSlots, true);
  dv.setUint32(40, g.maxInFlight, true);
  dv.setUint32(44, g.seed >>> 0, true);
  dv.setBigUint64(48, BigInt(g.dataOffset), true);
  dv.setUint32(HEADER_CRC_AT, crc32c(b, 0, HEADER_CRC_END), true);
  return b;
}

/**
 * A foreign signature as a message shows it: its bytes up to the first
 * NUL, quoted when they are printable ASCII, else in hex. Decoded byte
 * by byte, so both runtimes show the same (a UTF-8 decoder turns stray
 * bytes into replacement characters).
 */
function showSignature(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  const shown = nul < 0 ? bytes : bytes.subarray(0, nul);
  if (shown.length > 0 && shown.every((x) => x >= 0x20 && x < 0x7f)) {
    return JSON.stringify(String.fromCharCode(...shown));
  }
  const raw = shown.length > 0 ? shown : bytes;
  const hex = Array.from(raw, (x) => x.toString(16).padStart(2, "0"));
  return `0x${hex.join("")}`;
}

/** Whether `n` is a power of two. */
function powerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/**
 * Decode and validate the stream header.
 *
 * @param b at least 80 bytes from file offset 0
 * @param fileSize the file's size
 * @returns the geometry, or a sentence saying what is wrong
 */
export function decodeHeader(
  b: Uint8Array,
  fileSize: number,
): Geometry | string {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const sig = new TextDecoder().decode(b.subarray(0, 16));
  if (b.subarray(0, 16).every((x) => x === 0)) {
    return "not a log stream: the stream header is all zeros";
  }
  if (sig !== SIGNATURE) {
    return `not a log stream: the signature is ${
      showSignature(b.subarray(0, 16))
    }`;
  }
  const stored = dv.getUint32(HEADER_CRC_AT, true);
  const computed = crc32c(b, 0, HEADER_CRC_END);
  if (stored !== computed) {
    return `the stream header is corrupt: CRC 0x${
      stored.toString(16)
    } stored, 0x${computed.toString(16)} computed`;
  }
  const major = dv.getUint32(16, true);
  if (major !== MAJOR) {
    return `unsupported stream format: major version ${major}, expected ${MAJOR}`;
  }
  // the u64 fields as stored, for exact messages
  const size = dv.getBigUint64(24, true);
  const dataOffset = dv.getBigUint64(48, true);
  const g: Geometry = {
    size: Number(size),
    blockSize: dv.getUint32(32, true),
    regionSlots: dv.getUint32(36, true),
    maxInFlight: dv.getUint32(40, true),
    seed: dv.getUint32(44, true),
    dataOffset: Number(dataOffset),
  };
  if (
    !powerOfTwo(g.blockSize) || g.blockSize < MIN_BLOCK_SIZE ||
    g.blockSize > MAX_BLOCK_SIZE
  ) {
    return `the stream header is corrupt: block size ${g.blockSize} is not a power of two in [${MIN_BLOCK_SIZE}, ${MAX_BLOCK_SIZE}]`;
  }
  if (g.regionSlots < 1 || g.regionSlots > MAX_SLOTS) {
    return `the stream header is corrupt: ${g.regionSlots} region slots`;
  }
  if (!powerOfTwo(g.maxInFlight) || g.maxInFlight > 1 << 20) {
    return `the stream header is corrupt: max in flight ${g.maxInFlight}`;
  }
  if (g.dataOffset !== dataOffsetOf(g.regionSlots, g.blockSize)) {
    return `the stream header is corrupt: data offset ${dataOffset}, expected ${
      dataOffsetOf(g.regionSlots, g.blockSize)
    }`;
  }
  if (g.size < g.dataOffset + g.blockSize) {
    return `the stream header is corrupt: stream size ${size} (the file has ${fileSize} bytes)`;
  }
  // the header passed its CRC: it is the file that is short
  if (g.size > fileSize) {
    return `the file is truncated: stream size ${size} (the file has ${fileSize} bytes)`;
  }
  if (dv.getUint32(56, true) !== 0) {
    return "the stream header is corrupt: reserved bytes are not zero";
  }
  return g;
}

/** One region table slot, decoded. */
export interface SlotRecord {
  /** {@linkcode SLOT_FREE} or {@linkcode SLOT_ALLOCATED}. */
  state: number;
  /** Incremented at every allocation of the slot. */
  generation: number;
  /** File offset of the region's space. */
  offset: number;
  /** Bytes of the region's space. */
  size: number;
  /** Logical position of the first live entry. */
  head: number;
  /** Whether the CRC over generation, offset and size holds. */
  crcOk: boolean;
}

/**
 * Encode a slot's generation, offset, size and CRC (bytes 4..28); the
 * state word and head are stored on their own.
 *
 * @returns 24 bytes for slot offset 4
 */
export function encodeSlotBody(
  generation: number,
  offset: number,
  size: number,
): Uint8Array {
  const b = new Uint8Array(24);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, generation >>> 0, true);
  dv.setBigUint64(4, BigInt(offset), true);
  dv.setBigUint64(12, BigInt(size), true);
  dv.setUint32(20, crc32c(b, 0, 20), true);
  return b;
}

/**
 * Decode a slot.
 *
 * @param b the slot's 64 bytes
 */
export function decodeSlot(b: Uint8Array): SlotRecord {
  const dv = new DataView(b.buffer, b.byteOffset, SLOT_SIZE);
  return {
    state: dv.getUint32(0, true),
    generation: dv.getUint32(4, true),
    offset: Number(dv.getBigUint64(8, true)),
    size: Number(dv.getBigUint64(16, true)),
    head: Number(dv.getBigUint64(32, true)),
    crcOk: dv.getUint32(24, true) === crc32c(b, 4, 20),
  };
}
