// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The BTT's on-media layout: constants, the geometry rule that splits a
 * pool into arenas, and the arena info block. Pure functions over numbers
 * and byte arrays; identical to libpmemblk 1.12.1.
 *
 * @module
 */
import { fletcher64, storeChecksum, storedChecksum } from "../pmdk/checksum.ts";
import { allZero, sameUuid } from "../pmdk/pool_header.ts";

/** File offset of the BTT (arena 0 starts here). */
export const BTT_OFFSET = 8192;
/**
 * The smallest pool file libpmemblk creates on x86-64 (16 MiB + 8 KiB).
 *
 * @example Usage
 * ```ts
 * import { MIN_POOL_SIZE, poolGeometry } from "@asyncpmem/asyncpmem/blk";
 * import assert from "node:assert/strict";
 *
 * assert.equal(poolGeometry(MIN_POOL_SIZE, 4096).blockCount, 3829);
 * ```
 */
export const MIN_POOL_SIZE: number = 16 * 2 ** 20 + 8192;
/** The smallest arena; a smaller remainder of the BTT is unused. */
export const ARENA_MIN_SIZE = 16 * 2 ** 20;
/** The largest arena (512 GiB); every arena but the last has this size. */
export const ARENA_MAX_SIZE = 2 ** 39;
/** Free blocks (and flog slots, and write lanes) per arena. */
export const NFREE = 256;
/** Size of one arena info block. */
export const INFO_SIZE = 4096;
/** Alignment of every BTT structure. */
export const BTT_ALIGN = 4096;
/** Size of one flog slot: two 16-byte entries padded to a cache line. */
export const FLOG_SLOT_SIZE = 64;
/** Size of one flog entry `{lba, old_map, new_map, seq}`. */
export const FLOG_ENTRY_SIZE = 16;
/** Size of one map entry. */
export const MAP_ENTRY_SIZE = 4;
/** Map entry flag: the block reads as zeros. */
export const MAP_ZERO = 0x8000_0000;
/** Map entry flag: reading the block fails. */
export const MAP_ERROR = 0x4000_0000;
/** Map entry flags of a normal mapping (both bits set). */
export const MAP_NORMAL = 0xc000_0000;
/** The flag bits of a map entry. */
export const MAP_FLAGS = 0xc000_0000;
/** The post-map block number bits of a map entry. */
export const MAP_LBA_MASK = 0x3fff_ffff;
/** Info flag: the arena is in the error state (writes fail). */
export const INFO_FLAG_ERROR = 0x1;
/** Largest block size the format stores (u32). */
export const MAX_BLOCK_SIZE = 2 ** 32 - 1;
/** The info block signature: "BTT_ARENA_INFO" and two NULs. */
export const INFO_SIGNATURE = "BTT_ARENA_INFO\0\0";
/** Info format version written by libpmemblk 1.12.1. */
export const INFO_MAJOR = 1;
/** Info minor version written by libpmemblk 1.12.1. */
export const INFO_MINOR = 1;
/** Offset of the info checksum. */
export const INFO_CHECKSUM_OFFSET = 4088;

const MIN_INTERNAL_LBA_SIZE = 512;
const INTERNAL_LBA_ALIGN = 256;
const FLOG_SIZE = roundUp(NFREE * FLOG_SLOT_SIZE, BTT_ALIGN);

/** Round `n` up to a multiple of `align`. */
export function roundUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

/**
 * The internal (on-media) block size for a user block size:
 * `roundup(max(blockSize, 512), 256)`.
 *
 * @param blockSize the user block size
 * @returns the internal block size
 */
export function internalLbaSize(blockSize: number): number {
  return roundUp(
    Math.max(blockSize, MIN_INTERNAL_LBA_SIZE),
    INTERNAL_LBA_ALIGN,
  );
}

/** The placement of one arena. Offsets inside it are arena-relative. */
export interface ArenaGeometry {
  /** Offset of the arena from the start of the BTT (file offset 8192). */
  offset: number;
  /** Bytes the arena spans. */
  size: number;
  /** The user block size. */
  externalLbaSize: number;
  /** The internal block size. */
  internalLbaSize: number;
  /** User blocks in the arena. */
  externalNlba: number;
  /** Data blocks in the arena (`externalNlba + nfree`). */
  internalNlba: number;
  /** Free blocks, flog slots and lanes. */
  nfree: number;
  /** Offset of the first data block. */
  dataOff: number;
  /** Offset of the map. */
  mapOff: number;
  /** Offset of the flog. */
  flogOff: number;
  /** Offset of the backup info block. */
  infoOff: number;
  /** Offset of the next arena, 0 for the last. */
  nextOff: number;
}

/** The arenas of a pool file. */
export interface PoolGeometry {
  /** The user block size. */
  blockSize: number;
  /** The BTT's size: the file size rounded down to 4 KiB, minus 8192. */
  rawSize: number;
  /** Every arena, in order. */
  arenas: ArenaGeometry[];
  /** User blocks in the pool: the sum of `externalNlba`. */
  blockCount: number;
}

/**
 * Lay out one arena of `size` bytes.
 *
 * @param offset the arena's offset from the start of the BTT
 * @param size the arena's size
 * @param spaceLeft BTT bytes after this arena (decides `nextOff`)
 * @param blockSize the user block size
 * @returns the arena's geometry
 * @throws {RangeError} when the arena holds fewer than 512 blocks
 */
export function arenaGeometry(
  offset: number,
  size: number,
  spaceLeft: number,
  blockSize: number,
): ArenaGeometry {
  const ilba = internalLbaSize(blockSize);
  if (ilba > MAX_BLOCK_SIZE) {
    throw new RangeError(
      `Cannot lay out a pool: block size ${blockSize} is too large`,
    );
  }
  const avail = size - 2 * INFO_SIZE - FLOG_SIZE;
  const internalNlba = Math.floor(
    (avail - BTT_ALIGN) / (ilba + MAP_ENTRY_SIZE),
  );
  if (internalNlba < 2 * NFREE) {
    throw new RangeError(
      `Cannot lay out a pool: an arena of ${size} bytes holds ${
        Math.max(internalNlba, 0)
      } blocks of ${ilba} bytes, at least ${2 * NFREE} are needed`,
    );
  }
  const externalNlba = internalNlba - NFREE;
  const infoOff = size - INFO_SIZE;
  const flogOff = infoOff - FLOG_SIZE;
  const mapOff = flogOff - roundUp(externalNlba * MAP_ENTRY_SIZE, BTT_ALIGN);
  return {
    offset,
    size,
    externalLbaSize: blockSize,
    internalLbaSize: ilba,
    externalNlba,
    internalNlba,
    nfree: NFREE,
    dataOff: INFO_SIZE,
    mapOff,
    flogOff,
    infoOff,
    nextOff: spaceLeft >= ARENA_MIN_SIZE ? size : 0,
  };
}

/**
 * Split a pool file into arenas exactly as libpmemblk does.
 *
 * The BTT spans the file size rounded down to 4 KiB, minus 8192. It is
 * cut into arenas of 512 GiB; a remainder of at least 16 MiB forms one
 * last, smaller arena, and a smaller one is unused. Each arena holds
 * `floor((size - 8192 - 16384 - 4096) / (internalLbaSize + 4))` data
 * blocks, 256 of them free.
 *
 * @example Usage
 * ```ts
 * import { poolGeometry } from "@asyncpmem/asyncpmem/blk";
 * import assert from "node:assert/strict";
 *
 * const g = poolGeometry(64 << 20, 4096);
 * assert.equal(g.blockCount, 16103);
 * assert.equal(g.arenas[0].mapOff, 0x3fe9000);
 * ```
 *
 * @param fileSize the pool file's size in bytes
 * @param blockSize the user block size, 1 to 2^32-1
 * @returns the arenas and the number of user blocks
 * @throws {TypeError} when either is not a number
 * @throws {RangeError} when the file is too small or the block too large
 *   (libpmemblk's EINVAL), or either is not an integer in range
 */
export function poolGeometry(
  fileSize: number,
  blockSize: number,
): PoolGeometry {
  // exported: checked here (a size of Infinity looped without end)
  if (typeof fileSize !== "number" || typeof blockSize !== "number") {
    throw new TypeError(
      "Cannot lay out a pool: fileSize and blockSize must be numbers",
    );
  }
  if (!Number.isSafeInteger(fileSize) || fileSize < 0) {
    throw new RangeError(
      `Cannot lay out a pool: fileSize must be a non-negative safe integer, got ${fileSize}`,
    );
  }
  if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > 0xffffffff) {
    throw new RangeError(
      `Cannot lay out a pool: blockSize must be an integer in [1, 2^32 - 1], got ${blockSize}`,
    );
  }
  const rawSize = Math.floor(fileSize / BTT_ALIGN) * BTT_ALIGN - BTT_OFFSET;
  if (rawSize < ARENA_MIN_SIZE) {
    throw new RangeError(
      `Cannot lay out a pool: ${fileSize} bytes is too small, the minimum is ${MIN_POOL_SIZE}`,
    );
  }
  const arenas: ArenaGeometry[] = [];
  let left = rawSize;
  let offset = 0;
  let blockCount = 0;
  while (left >= ARENA_MIN_SIZE) {
    const size = Math.min(left, ARENA_MAX_SIZE);
    left -= size;
    const a = arenaGeometry(offset, size, left, blockSize);
    arenas.push(a);
    blockCount += a.externalNlba;
    offset += size;
  }
  return { blockSize, rawSize, arenas, blockCount };
}

/** Field offsets of `struct btt_info`. */
const I = {
  signature: 0,
  uuid: 16,
  parentUuid: 32,
  flags: 48,
  major: 52,
  minor: 54,
  externalLbaSize: 56,
  externalNlba: 60,
  internalLbaSize: 64,
  internalNlba: 68,
  nfree: 72,
  infoSize: 76,
  nextOff: 80,
  dataOff: 88,
  mapOff: 96,
  flogOff: 104,
  infoOff: 112,
} as const;

/** A decoded arena info block. Offsets are relative to the arena. */
export interface BttInfo {
  /** The BTT's UUID (random per layout). */
  uuid: Uint8Array;
  /** Must equal the pool header's pool set UUID. */
  parentUuid: Uint8Array;
  /** Bit 0: the arena is in the error state. */
  flags: number;
  /** Format version. */
  major: number;
  /** Format minor version. */
  minor: number;
  /** The user block size. */
  externalLbaSize: number;
  /** User blocks in the arena. */
  externalNlba: number;
  /** The internal block size. */
  internalLbaSize: number;
  /** Data blocks in the arena. */
  internalNlba: number;
  /** Free blocks (flog slots). */
  nfree: number;
  /** Size of the info block. */
  infoSize: number;
  /** Offset of the next arena, 0 for the last. */
  nextOff: number;
  /** Offset of the data blocks. */
  dataOff: number;
  /** Offset of the map. */
  mapOff: number;
  /** Offset of the flog. */
  flogOff: number;
  /** Offset of the backup info block. */
  infoOff: number;
}

/**
 * The info block libpmemblk writes for an arena.
 *
 * @param g the arena's geometry
 * @param uuid the BTT's UUID
 * @param parentUuid the pool set UUID
 * @returns the info fields
 */
export function infoFromGeometry(
  g: ArenaGeometry,
  uuid: Uint8Array,
  parentUuid: Uint8Array,
): BttInfo {
  return {
    uuid,
    parentUuid,
    flags: 0,
    major: INFO_MAJOR,
    minor: INFO_MINOR,
    externalLbaSize: g.externalLbaSize,
    externalNlba: g.externalNlba,
    internalLbaSize: g.internalLbaSize,
    internalNlba: g.internalNlba,
    nfree: g.nfree,
    infoSize: INFO_SIZE,
    nextOff: g.nextOff,
    dataOff: g.dataOff,
    mapOff: g.mapOff,
    flogOff: g.flogOff,
    infoOff: g.infoOff,
  };
}

/**
 * Encode an info block, checksum included.
 *
 * @param info the fields
 * @returns 4096 bytes
 */
export function encodeBttInfo(info: BttInfo): Uint8Array {
  const bytes = new Uint8Array(INFO_SIZE);
  const dv = new DataView(bytes.buffer);
  for (let i = 0; i < 16; i++) bytes[i] = INFO_SIGNATURE.charCodeAt(i);
  bytes.set(info.uuid, I.uuid);
  bytes.set(info.parentUuid, I.parentUuid);
  dv.setUint32(I.flags, info.flags, true);
  dv.setUint16(I.major, info.major, true);
  dv.setUint16(I.minor, info.minor, true);
  dv.setUint32(I.externalLbaSize, info.externalLbaSize, true);
  dv.setUint32(I.externalNlba, info.externalNlba, true);
  dv.setUint32(I.internalLbaSize, info.internalLbaSize, true);
  dv.setUint32(I.internalNlba, info.internalNlba, true);
  dv.setUint32(I.nfree, info.nfree, true);
  dv.setUint32(I.infoSize, info.infoSize, true);
  dv.setBigUint64(I.nextOff, BigInt(info.nextOff), true);
  dv.setBigUint64(I.dataOff, BigInt(info.dataOff), true);
  dv.setBigUint64(I.mapOff, BigInt(info.mapOff), true);
  dv.setBigUint64(I.flogOff, BigInt(info.flogOff), true);
  dv.setBigUint64(I.infoOff, BigInt(info.infoOff), true);
  storeChecksum(bytes, INFO_CHECKSUM_OFFSET);
  return bytes;
}

/**
 * Decode an info block without validating it.
 *
 * @param bytes 4096 bytes
 * @returns the fields
 */
export function decodeBttInfo(bytes: Uint8Array): BttInfo {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, INFO_SIZE);
  const u64 = (off: number) => Number(dv.getBigUint64(off, true));
  return {
    uuid: bytes.slice(I.uuid, I.uuid + 16),
    parentUuid: bytes.slice(I.parentUuid, I.parentUuid + 16),
    flags: dv.getUint32(I.flags, true),
    major: dv.getUint16(I.major, true),
    minor: dv.getUint16(I.minor, true),
    externalLbaSize: dv.getUint32(I.externalLbaSize, true),
    externalNlba: dv.getUint32(I.externalNlba, true),
    internalLbaSize: dv.getUint32(I.internalLbaSize, true),
    internalNlba: dv.getUint32(I.internalNlba, true),
    nfree: dv.getUint32(I.nfree, true),
    infoSize: dv.getUint32(I.infoSize, true),
    nextOff: u64(I.nextOff),
    dataOff: u64(I.dataOff),
    mapOff: u64(I.mapOff),
    flogOff: u64(I.flogOff),
    infoOff: u64(I.infoOff),
  };
}

/**
 * Why an info block is not valid in libpmemblk's sense (signature,
 * parent UUID, checksum, major version), or `null` when it is valid.
 *
 * @param bytes the 4096 info bytes
 * @param parentUuid the pool set UUID from the pool header
 * @returns a phrase naming the problem, or `null`
 */
export function infoProblem(
  bytes: Uint8Array,
  parentUuid: Uint8Array,
): string | null {
  if (allZero(bytes)) return "it is all zeros";
  for (let i = 0; i < 16; i++) {
    if (bytes[i] !== INFO_SIGNATURE.charCodeAt(i)) return "bad signature";
  }
  if (!sameUuid(bytes.subarray(I.parentUuid, I.parentUuid + 16), parentUuid)) {
    return "its parent UUID is not the pool's";
  }
  const stored = storedChecksum(bytes, INFO_CHECKSUM_OFFSET);
  const computed = fletcher64(bytes, INFO_CHECKSUM_OFFSET);
  if (stored !== computed) {
    return `bad checksum (0x${stored.toString(16)} stored, 0x${
      computed.toString(16)
    } computed)`;
  }
  const major = new DataView(bytes.buffer, bytes.byteOffset).getUint16(
    I.major,
    true,
  );
  if (major === 0) return "major version 0";
  return null;
}

/**
 * Stricter structural checks than libpmemblk's: sizes agree with the
 * block size and every region lies inside the arena without overlap.
 *
 * @param info a valid info block
 * @param blockSize the pool's block size
 * @param room BTT bytes from the arena's start to the end of the BTT
 * @returns a phrase naming the first problem, or `null`
 */
export function infoFieldProblem(
  info: BttInfo,
  blockSize: number,
  room: number,
): string | null {
  const i = info;
  if (i.externalLbaSize !== blockSize) {
    return `its block size ${i.externalLbaSize} differs from the pool's ${blockSize}`;
  }
  if (i.internalLbaSize !== internalLbaSize(blockSize)) {
    return `internal block size ${i.internalLbaSize} does not match block size ${blockSize}`;
  }
  if (i.nfree === 0 || i.externalNlba === 0) {
    return `nfree ${i.nfree} and external_nlba ${i.externalNlba} must not be 0`;
  }
  if (
    i.internalNlba !== i.externalNlba + i.nfree ||
    i.internalNlba > MAP_LBA_MASK + 1
  ) {
    return `internal_nlba ${i.internalNlba} is not external_nlba ${i.externalNlba} + nfree ${i.nfree}`;
  }
  if (i.infoSize !== INFO_SIZE) return `info size ${i.infoSize} is not 4096`;
  if (i.nextOff !== 0 && i.nextOff !== ARENA_MAX_SIZE) {
    return `next arena offset ${i.nextOff} is neither 0 nor 2^39`;
  }
  const end = i.nextOff !== 0 ? i.nextOff : room;
  if (i.nextOff > room) {
    return `next arena offset ${i.nextOff} is beyond the end of the pool`;
  }
  for (
    const [name, off] of Object.entries({
      dataoff: i.dataOff,
      mapoff: i.mapOff,
      flogoff: i.flogOff,
      infooff: i.infoOff,
    })
  ) {
    if (off % BTT_ALIGN !== 0) return `${name} ${off} is not 4 KiB aligned`;
  }
  const regions: [string, number, number][] = [
    ["info", 0, INFO_SIZE],
    ["data", i.dataOff, i.internalNlba * i.internalLbaSize],
    ["map", i.mapOff, i.externalNlba * MAP_ENTRY_SIZE],
    ["flog", i.flogOff, i.nfree * FLOG_SLOT_SIZE],
    ["backup info", i.infoOff, INFO_SIZE],
  ];
  let prevEnd = 0;
  let prevName = "";
  for (const [name, off, len] of regions) {
    if (off < prevEnd) return `the ${name} region overlaps the ${prevName}`;
    prevEnd = off + len;
    prevName = name;
  }
  if (prevEnd > end) {
    return `the arena's regions end at ${prevEnd}, beyond its ${end} bytes`;
  }
  return null;
}
