// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The object store's on-media format, version 1. Pure functions over
 * byte arrays and constants; every integer is little-endian.
 *
 * ```
 * file offset
 * 0      pool header (4 KiB, written once at create)
 *          0  signature "ASYNCPMEM-OBJECT"     16  major u32 = 1
 *         20  minor u32 = 0                    24  pool size u64
 *         32  log offset u64 (8192)            40  log size u64
 *         48  chunk table offset u64           56  heap offset u64
 *         64  chunks u32                       68  chunk size u32
 *         72  CRC seed u32                     76  reserved u32 = 0
 *         80  pool uuid (16 bytes)
 *         96  layout name (1024 bytes, UTF-8, NUL-padded)
 *       1120  CRC-32C of bytes 0..1119
 * 4096   state page (4 KiB)
 *          0  checkpoint u64: the log position replay starts at
 *          8  reserved
 *         64  root offset u64 (0: none)         72  root size u64
 *        128  catalog: 31 slots of 128 bytes
 *               0 name (112 bytes, UTF-8, NUL-padded; empty: free)
 *             112 object offset u64            120 kind u32, reserved u32
 * 8192   redo log: a ring of records at logical positions (a position
 *        only grows; position mod log size is the place in the ring)
 * ...    chunk table: one u64 per chunk (low u32 kind, high u32 argument)
 *          kind 0 free; 1 run of size class `argument`; 2 the first
 *          chunk of a huge object of `argument` chunks
 * ...    heap: chunks of 256 KiB (page-aligned)
 *          a run: a bitmap of its blocks (bit set: allocated), padded to
 *          64 bytes, then the blocks
 *          a huge object: its header at the start of its first chunk
 * ```
 *
 * Every object starts with a 16-byte header, and an object's offset is
 * the offset of its data, just past the header:
 *
 * ```
 *  0  magic u32 0x4F424A31 ("1JBO")   4  size u32 (data bytes)
 *  8  generation u32 (never 0)        12 type u32 (0 user; others internal)
 * ```
 *
 * A log record (8-byte aligned, whole in the ring: a record that would
 * cross the ring's end is placed at the start of the next lap, and a
 * WRAP record says so at its old place; fewer than 32 bytes before the
 * end are skipped):
 *
 * ```
 *  0  CRC-32C (seeded) of bytes 4..length
 *  4  kind u32 (1 record, 2 wrap)       8  position u64
 * 16  length u32 (header included)      20  entries u32
 * 24  reserved u64 = 0
 * 32  entries, each 8-aligned:
 *       0 op u32 (1 COPY, 2 ZERO, 3 OR64, 4 AND64)   4 length u32
 *       8 target u64 (file offset)
 *      16 COPY: the bytes, padded to 8; OR64/AND64: the mask u64
 * ```
 *
 * @module
 */
import { crc32c } from "../pmem2/crc32c.ts";

/** The signature at offset 0. */
export const SIGNATURE = "ASYNCPMEM-OBJECT";
/** The format's major version; another refuses to open. */
export const MAJOR = 1;
/** The format's minor version. */
export const MINOR = 0;
/** Bytes of the pool header. */
export const HEADER_SIZE = 4096;
/** Bytes of the pool header the CRC covers. */
const HEADER_CRC_AT = 1120;
/** Largest layout name, in UTF-8 bytes. */
export const MAX_LAYOUT = 1023;
/** Where the state page starts. */
export const STATE_OFFSET = 4096;
/** The checkpoint word (the only word stored outside the log). */
export const CHECKPOINT_AT = STATE_OFFSET;
/** The root object's offset (through the log). */
export const ROOT_OFFSET_AT = STATE_OFFSET + 64;
/** The root object's size (through the log). */
export const ROOT_SIZE_AT = STATE_OFFSET + 72;
/** The first catalog slot. */
export const CATALOG_AT = STATE_OFFSET + 128;
/** Bytes per catalog slot. */
export const CATALOG_SLOT = 128;
/** The kind word of a catalog slot naming a map (the only kind). */
export const CATALOG_KIND_MAP = 1;
/** Catalog slots. */
export const CATALOG_SLOTS = 31;
/** Largest catalog name, in UTF-8 bytes. */
export const MAX_NAME = 111;
/** Where the log ring starts. */
export const LOG_OFFSET = 8192;
/** Bytes per chunk. */
export const CHUNK_SIZE = 256 * 1024;
/** Bytes of an object header. */
export const OBJECT_HEADER = 16;
/** The magic word of an object header. */
export const OBJECT_MAGIC = 0x4f424a31;
/** Bytes of a log record header. */
export const RECORD_HEADER = 32;
/** Bytes of a log entry header. */
export const ENTRY_HEADER = 16;
/** Record kind: transactions. */
export const RECORD = 1;
/** Record kind: the rest of the ring is skipped. */
export const WRAP = 2;
/** Entry op: copy the bytes that follow to the target. */
export const OP_COPY = 1;
/** Entry op: zero `length` bytes at the target. */
export const OP_ZERO = 2;
/** Entry op: OR a u64 mask into the target word. */
export const OP_OR = 3;
/** Entry op: AND a u64 mask into the target word. */
export const OP_AND = 4;
/** Chunk kind: free. */
export const CHUNK_FREE = 0;
/** Chunk kind: a run of one size class. */
export const CHUNK_RUN = 1;
/** Chunk kind: the first chunk of a huge object. */
export const CHUNK_HUGE = 2;
/** The smallest pool. */
export const MIN_POOL_SIZE = 8 << 20;
/** The largest pool: one view of the mapping covers it on every runtime. */
export const MAX_POOL_SIZE = 2 ** 32;
/** The smallest log. */
export const MIN_LOG_SIZE = 256 << 10;
/** Object types the store uses itself (users' types are below). */
export const TYPE_INTERNAL = 0x80000000;
/** Object type of the root. */
export const TYPE_ROOT = 0x80000001;
/** Object type of a map's descriptor. */
export const TYPE_MAP = 0x80000010;

/**
 * Size classes: block sizes (header included) of run allocations, about
 * 12 % apart. Anything larger takes whole chunks.
 */
export const CLASS_SIZES: readonly number[] = [
  64,
  128,
  192,
  256,
  320,
  384,
  448,
  512,
  640,
  768,
  896,
  1024,
  1280,
  1536,
  1792,
  2048,
  2560,
  3072,
  3584,
  4096,
  4608,
  5120,
  6144,
  7168,
  8192,
  10240,
  12288,
  14336,
  16384,
  20480,
  24576,
  28672,
  32768,
  40960,
  49152,
  57344,
  65536,
];

/** Largest block (header included) served by a run. */
export const MAX_RUN_BLOCK = CLASS_SIZES[CLASS_SIZES.length - 1];

/** The geometry of a run of one class: its bitmap and blocks. */
export interface RunGeometry {
  /** Block size, header included. */
  blockSize: number;
  /** Blocks in the run. */
  blocks: number;
  /** Bytes of the bitmap (a multiple of 64). */
  bitmapBytes: number;
}

/** The run geometry of every class. */
export const RUNS: readonly RunGeometry[] = CLASS_SIZES.map((blockSize) => {
  let blocks = Math.floor(CHUNK_SIZE / blockSize);
  for (;;) {
    const bitmapBytes = Math.ceil(blocks / 512) * 64;
    if (bitmapBytes + blocks * blockSize <= CHUNK_SIZE) {
      return { blockSize, blocks, bitmapBytes };
    }
    blocks--;
  }
});

/** The size class of a block of `bytes` (header included), or -1: huge. */
export function classOf(bytes: number): number {
  if (bytes > MAX_RUN_BLOCK) return -1;
  let lo = 0;
  let hi = CLASS_SIZES.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (CLASS_SIZES[mid] >= bytes) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** `x` rounded up to a multiple of `unit`. */
export function alignUp(x: number, unit: number): number {
  return Math.ceil(x / unit) * unit;
}

/** A pool's geometry, from its header. */
export interface Geometry {
  /** Bytes of the pool file used. */
  size: number;
  /** Bytes of the log ring. */
  logSize: number;
  /** Offset of the chunk table. */
  chunkTable: number;
  /** Offset of the heap. */
  heap: number;
  /** Chunks in the heap. */
  chunks: number;
  /** Seed of every record CRC. */
  seed: number;
  /** The pool's UUID (16 bytes). */
  uuid: Uint8Array;
  /** The layout name. */
  layout: string;
}

/**
 * The geometry of a new pool of `size` bytes with a log of `logSize`.
 *
 * @throws {RangeError} when the heap would hold no chunk
 */
export function planGeometry(
  size: number,
  logSize: number,
  layout: string,
): Geometry {
  const chunkTable = LOG_OFFSET + logSize;
  // table and heap: 8 bytes + one chunk per chunk, the table page-rounded
  let chunks = Math.floor((size - chunkTable) / CHUNK_SIZE);
  while (
    chunks > 0 &&
    alignUp(chunkTable + 8 * chunks, 4096) + chunks * CHUNK_SIZE > size
  ) chunks--;
  if (chunks < 1) {
    throw new RangeError(
      `Cannot create pool: ${size} bytes leave no room for a heap after a log of ${logSize}`,
    );
  }
  return {
    size,
    logSize,
    chunkTable,
    heap: alignUp(chunkTable + 8 * chunks, 4096),
    chunks,
    seed: crypto.getRandomValues(new Uint32Array(1))[0],
    uuid: crypto.getRandomValues(new Uint8Array(16)),
    layout,
  };
}

/** The default log size of a pool of `size` bytes: 1/16, 1–64 MiB. */
export function defaultLogSize(size: number): number {
  const sixteenth = Math.floor(size / 16 / 4096) * 4096;
  return Math.min(64 << 20, Math.max(1 << 20, sixteenth));
}

/** Encode the pool header (4096 bytes). */
export function encodeHeader(g: Geometry): Uint8Array {
  const b = new Uint8Array(HEADER_SIZE);
  const dv = new DataView(b.buffer);
  b.set(new TextEncoder().encode(SIGNATURE), 0);
  dv.setUint32(16, MAJOR, true);
  dv.setUint32(20, MINOR, true);
  dv.setBigUint64(24, BigInt(g.size), true);
  dv.setBigUint64(32, BigInt(LOG_OFFSET), true);
  dv.setBigUint64(40, BigInt(g.logSize), true);
  dv.setBigUint64(48, BigInt(g.chunkTable), true);
  dv.setBigUint64(56, BigInt(g.heap), true);
  dv.setUint32(64, g.chunks, true);
  dv.setUint32(68, CHUNK_SIZE, true);
  dv.setUint32(72, g.seed >>> 0, true);
  b.set(g.uuid, 80);
  b.set(new TextEncoder().encode(g.layout), 96);
  dv.setUint32(HEADER_CRC_AT, crc32c(b, 0, HEADER_CRC_AT), true);
  return b;
}

/** The signature of libpmemobj's pools (PMDK's pool header). */
const LIBPMEMOBJ = new TextEncoder().encode("PMEMOBJ\0");

/**
 * Decode and validate the pool header.
 *
 * @param b the 4096 header bytes
 * @param fileSize the file's size
 * @returns the geometry, or a sentence saying what is wrong
 */
export function decodeHeader(
  b: Uint8Array,
  fileSize: number,
): Geometry | string {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.subarray(0, 16).every((x) => x === 0)) {
    return "not an object pool: the pool header is all zeros";
  }
  const sig = b.subarray(0, 16);
  if (!sig.every((x, i) => x === SIGNATURE.charCodeAt(i))) {
    // an object pool, but libpmemobj's: saying it is none reads as damage
    if (LIBPMEMOBJ.every((x, i) => x === sig[i])) {
      return "a libpmemobj pool (signature \"PMEMOBJ\"): asyncpmem's object store has its own format and does not read libpmemobj's";
    }
    return `not an object pool: ${describeSignature(sig)}`;
  }
  const stored = dv.getUint32(HEADER_CRC_AT, true);
  const computed = crc32c(b, 0, HEADER_CRC_AT);
  if (stored !== computed) {
    return `the pool header is corrupt: CRC 0x${
      stored.toString(16)
    } stored, 0x${computed.toString(16)} computed`;
  }
  const major = dv.getUint32(16, true);
  if (major !== MAJOR) {
    return `unsupported object pool format: major version ${major}, expected ${MAJOR}`;
  }
  // the words as stored, for the message: past 2^53 a double is another number
  const words = [24, 32, 40, 48, 56].map((at) => dv.getBigUint64(at, true));
  const [size, logAt, logSize, chunkTable, heap] = words.map(Number);
  const g: Geometry = {
    size,
    logSize,
    chunkTable,
    heap,
    chunks: dv.getUint32(64, true),
    seed: dv.getUint32(72, true),
    uuid: b.slice(80, 96),
    layout: decodeName(b.subarray(96, 96 + MAX_LAYOUT + 1)),
  };
  const chunkSize = dv.getUint32(68, true);
  const [s, l, n, t, h] = words;
  // the header passed its CRC: a size past the file's end is a file cut
  // short (a copy interrupted), not damage to the header
  if (
    g.size > fileSize && g.size >= MIN_POOL_SIZE && g.size <= MAX_POOL_SIZE
  ) {
    return `the file is truncated: pool size ${s} (the file has ${fileSize} bytes)`;
  }
  if (
    logAt !== LOG_OFFSET || chunkSize !== CHUNK_SIZE ||
    g.size < MIN_POOL_SIZE || g.size > fileSize || g.size > MAX_POOL_SIZE ||
    g.logSize < MIN_LOG_SIZE || g.logSize % 4096 !== 0 ||
    g.chunkTable !== LOG_OFFSET + g.logSize || g.chunks < 1 ||
    g.heap !== alignUp(g.chunkTable + 8 * g.chunks, 4096) ||
    g.heap + g.chunks * CHUNK_SIZE > g.size
  ) {
    return `the pool header is corrupt: its geometry (size ${s}, log ${l}+${n}, chunk table ${t}, heap ${h}, ${g.chunks} chunks of ${chunkSize}) does not fit a file of ${fileSize} bytes`;
  }
  return g;
}

/**
 * What the 16 signature bytes of a file that is no object pool say: the
 * printable ASCII before the first NUL (`"PMEMBLK"`, `"ASYNCPMEM-STREAM"`:
 * another kind of pool), or else the bytes in hex, trailing NULs left out
 * (garbage: hex shows the same bytes the same way on every runtime, where
 * decoded text depends on the decoder and hides bytes behind `?`).
 */
export function describeSignature(sig: Uint8Array): string {
  const nul = sig.indexOf(0);
  const text = sig.subarray(0, nul < 0 ? sig.length : nul);
  if (text.length > 0 && text.every((x) => x >= 0x20 && x <= 0x7e)) {
    return `the signature is ${JSON.stringify(String.fromCharCode(...text))}`;
  }
  let end = sig.length;
  while (end > 1 && sig[end - 1] === 0) end--;
  let hex = "";
  for (let i = 0; i < end; i++) hex += sig[i].toString(16).padStart(2, "0");
  return `the signature bytes are 0x${hex}`;
}

/**
 * A NUL-padded UTF-8 name (with a leading U+FEFF kept: the default
 * decoder drops it, and the name would read back as another).
 */
export function decodeName(b: Uint8Array): string {
  const end = b.indexOf(0);
  return new TextDecoder("utf-8", { ignoreBOM: true }).decode(
    b.subarray(0, end < 0 ? b.length : end),
  );
}

/** The file offset of chunk `k`. */
export function chunkOffset(g: Geometry, k: number): number {
  return g.heap + k * CHUNK_SIZE;
}
