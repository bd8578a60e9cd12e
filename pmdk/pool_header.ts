// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * PMDK's pool header: the first 4 KiB of every pool file of libpmemblk,
 * libpmemlog and libpmemobj (1.12.1), the same structure under another
 * signature. Pure functions over byte arrays; byte-identical to what the C
 * libraries write. Shared by the stores (each keeps its own descriptor).
 *
 * @module
 */
import process from "node:process";
import { isBytes } from "../ffi/validate.ts";
import { fletcher64, storeChecksum, storedChecksum } from "./checksum.ts";

/** Size of the pool header. */
export const HEADER_SIZE = 4096;
/** `features.compat`: CHECK_BAD_BLOCKS, as the Debian build writes. */
export const COMPAT_CHECK_BAD_BLOCKS = 0x1;
/** `features.incompat` bit: single header (pool sets only). */
export const INCOMPAT_SINGLEHDR = 0x1;
/** `features.incompat` bit: the header checksum skips bytes 2048..4095. */
export const INCOMPAT_CKSUM_2K = 0x2;
/** `features.incompat` bit: the shutdown state (SDS) area is in use. */
export const INCOMPAT_SDS = 0x4;
/** Every `features.incompat` bit libpmemblk 1.12.1 knows. */
export const INCOMPAT_KNOWN = 0x7;
/** Offset of the header checksum. */
export const HEADER_CHECKSUM_OFFSET = 4088;
/** Where `CKSUM_2K` stops counting header bytes. */
export const HEADER_CKSUM_2K_END = 2048;
/** Offset of the shutdown state (`struct shutdown_state`, 64 bytes). */
export const SDS_OFFSET = 4024;
/** Size of the shutdown state, its checksum last. */
export const SDS_SIZE = 64;
/** PMDK's alignment descriptor for LP64 Linux (x86-64 and aarch64). */
export const ALIGNMENT_DESC_LP64 = 0x000007f737777310n;

/** ELF machine numbers PMDK writes, by `process.arch`. */
const MACHINES: Readonly<Record<string, number>> = { x64: 62, arm64: 183 };

/** Field offsets of `struct pool_hdr`. */
const F = {
  signature: 0,
  major: 8,
  compat: 12,
  incompat: 16,
  roCompat: 20,
  poolsetUuid: 24,
  uuid: 40,
  prevPartUuid: 56,
  nextPartUuid: 72,
  prevReplUuid: 88,
  nextReplUuid: 104,
  crtime: 120,
  alignmentDesc: 128,
  machineClass: 136,
  data: 137,
  reserved: 138,
  machine: 142,
} as const;

/** The decoded pool header. UUIDs are 16 bytes in PMDK's order. */
export interface PoolHeader {
  /** The 8-byte signature, NUL included. */
  signature: string;
  /** Major format version. */
  major: number;
  /** `features.compat` bits. */
  compat: number;
  /** `features.incompat` bits. */
  incompat: number;
  /** `features.ro_compat` bits (any makes the pool read-only). */
  roCompat: number;
  /** The pool set UUID; the BTT's parent UUID must equal it. */
  poolsetUuid: Uint8Array;
  /** This part's UUID. */
  uuid: Uint8Array;
  /** Previous part (itself in a single-file pool). */
  prevPartUuid: Uint8Array;
  /** Next part (itself in a single-file pool). */
  nextPartUuid: Uint8Array;
  /** Previous replica (itself in a single-file pool). */
  prevReplUuid: Uint8Array;
  /** Next replica (itself in a single-file pool). */
  nextReplUuid: Uint8Array;
  /** Creation time in seconds (the file's ctime at creation). */
  crtime: number;
  /** Alignment descriptor of the creating platform. */
  alignmentDesc: bigint;
  /** 2 for 64-bit platforms. */
  machineClass: number;
  /** 1 for little-endian. */
  data: number;
  /** ELF machine number (62 = x86-64, 183 = aarch64). */
  machine: number;
  /** The stored checksum. */
  checksum: bigint;
}

/** The architecture fields of the running platform. */
export interface ArchFlags {
  /** See {@linkcode PoolHeader.alignmentDesc}. */
  alignmentDesc: bigint;
  /** See {@linkcode PoolHeader.machineClass}. */
  machineClass: number;
  /** See {@linkcode PoolHeader.data}. */
  data: number;
  /** See {@linkcode PoolHeader.machine}. */
  machine: number;
}

/**
 * The architecture fields libpmemblk would write on this platform, or
 * `null` where pools cannot be created (only LP64 little-endian x86-64
 * and aarch64 are known).
 */
export function hostArch(): ArchFlags | null {
  const machine = MACHINES[process.arch];
  if (machine === undefined) return null;
  return {
    alignmentDesc: ALIGNMENT_DESC_LP64,
    machineClass: 2,
    data: 1,
    machine,
  };
}

/**
 * Convert a UUID string to the 16 bytes PMDK stores: the first three
 * groups little-endian, the last two as written (like Python's
 * `uuid.bytes_le`).
 *
 * @example Usage
 * ```ts
 * import { uuidToBytes } from "@asyncpmem/asyncpmem/blk";
 * import assert from "node:assert/strict";
 *
 * const b = uuidToBytes("fd3ed27b-5ac6-41f7-a58c-3ec3d5dad0d4");
 * assert.deepEqual([...b.subarray(0, 4)], [0x7b, 0xd2, 0x3e, 0xfd]);
 * ```
 *
 * @param text `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`
 * @returns 16 bytes
 * @throws {TypeError} when `text` is not a UUID string
 */
export function uuidToBytes(text: string): Uint8Array {
  if (
    typeof text !== "string" ||
    !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(
      text,
    )
  ) {
    throw new TypeError(
      `Cannot parse UUID: ${
        // (JSON.stringify throws its own TypeError for a bigint)
        typeof text === "string" ? JSON.stringify(text) : typeof text}`,
    );
  }
  const hex = text.replaceAll("-", "");
  const raw = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    raw[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  }
  return swapUuid(raw);
}

/**
 * The text form of 16 UUID bytes in PMDK's order (inverse of
 * {@linkcode uuidToBytes}).
 *
 * @example Usage
 * ```ts
 * import { uuidToBytes, uuidToString } from "@asyncpmem/asyncpmem/blk";
 * import assert from "node:assert/strict";
 *
 * const text = "fd3ed27b-5ac6-41f7-a58c-3ec3d5dad0d4";
 * assert.equal(uuidToString(uuidToBytes(text)), text);
 * ```
 *
 * @param bytes 16 bytes
 * @returns the lower-case text form
 * @throws {TypeError} when `bytes` is not a Uint8Array
 * @throws {RangeError} when it has fewer than 16 bytes
 */
export function uuidToString(bytes: Uint8Array): string {
  if (!isBytes(bytes)) {
    throw new TypeError("Cannot format UUID: bytes must be a Uint8Array");
  }
  if (bytes.length < 16) {
    throw new RangeError(
      `Cannot format UUID: bytes has ${bytes.length} bytes, 16 are needed`,
    );
  }
  const raw = swapUuid(bytes);
  const hex = Array.from(raw, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${
    hex.slice(16, 20)
  }-${hex.slice(20)}`;
}

/** Reverse the byte order of the first three UUID groups. */
function swapUuid(b: Uint8Array): Uint8Array {
  return Uint8Array.of(
    b[3],
    b[2],
    b[1],
    b[0],
    b[5],
    b[4],
    b[7],
    b[6],
    ...b.subarray(8, 16),
  );
}

/** A random (version 4) UUID in PMDK's byte order. */
export function randomUuid(): Uint8Array {
  return uuidToBytes(crypto.randomUUID());
}

/** A pool format's identity in the header. */
export interface PoolKind {
  /** The signature, NUL-padded to 8 bytes ("PMEMBLK\0"). */
  signature: string;
  /** The only major version the library opens. */
  major: number;
  /** The name in messages ("pmemblk"). */
  name: string;
}

/**
 * A new pool header as libpmemblk and libpmemlog 1.12.1 write it for a
 * single-file pool: compat CHECK_BAD_BLOCKS, incompat CKSUM_2K | SDS (the
 * shutdown state stays zero, which they accept), every part and replica
 * link pointing at the pool's own UUID.
 *
 * @param kind the format
 * @param crtime creation time in seconds
 * @param arch the platform fields
 * @returns the header (its checksum is computed by
 *   {@linkcode encodePoolHeader})
 */
export function newPoolHeader(
  kind: PoolKind,
  crtime: number,
  arch: ArchFlags,
): PoolHeader {
  const uuid = randomUuid();
  return {
    signature: kind.signature,
    major: kind.major,
    compat: COMPAT_CHECK_BAD_BLOCKS,
    incompat: INCOMPAT_CKSUM_2K | INCOMPAT_SDS,
    roCompat: 0,
    poolsetUuid: randomUuid(),
    uuid,
    prevPartUuid: uuid,
    nextPartUuid: uuid,
    prevReplUuid: uuid,
    nextReplUuid: uuid,
    crtime,
    ...arch,
    checksum: 0n,
  };
}

/**
 * Encode a pool header into 4096 bytes, checksum included. The unused
 * areas and the shutdown state stay zero.
 *
 * @param h the header
 * @returns the 4096 bytes to store at file offset 0
 */
export function encodePoolHeader(h: PoolHeader): Uint8Array {
  const bytes = new Uint8Array(HEADER_SIZE);
  const dv = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode(h.signature).subarray(0, 8), F.signature);
  dv.setUint32(F.major, h.major, true);
  dv.setUint32(F.compat, h.compat, true);
  dv.setUint32(F.incompat, h.incompat, true);
  dv.setUint32(F.roCompat, h.roCompat, true);
  bytes.set(h.poolsetUuid, F.poolsetUuid);
  bytes.set(h.uuid, F.uuid);
  bytes.set(h.prevPartUuid, F.prevPartUuid);
  bytes.set(h.nextPartUuid, F.nextPartUuid);
  bytes.set(h.prevReplUuid, F.prevReplUuid);
  bytes.set(h.nextReplUuid, F.nextReplUuid);
  dv.setBigUint64(F.crtime, BigInt(h.crtime), true);
  dv.setBigUint64(F.alignmentDesc, h.alignmentDesc, true);
  dv.setUint8(F.machineClass, h.machineClass);
  dv.setUint8(F.data, h.data);
  dv.setUint16(F.machine, h.machine, true);
  h.checksum = storeChecksum(bytes, HEADER_CHECKSUM_OFFSET, checksumEnd(h));
  return bytes;
}

/** Where the header checksum stops counting bytes. */
function checksumEnd(h: { incompat: number }): number {
  return (h.incompat & INCOMPAT_CKSUM_2K) ? HEADER_CKSUM_2K_END : HEADER_SIZE;
}

/**
 * Decode the 4096 header bytes without validating them.
 *
 * @param bytes at least 4096 bytes from file offset 0
 * @returns the fields
 */
export function decodePoolHeader(bytes: Uint8Array): PoolHeader {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
  const uuid = (off: number) => bytes.slice(off, off + 16);
  return {
    signature: String.fromCharCode(...bytes.subarray(0, 8)),
    major: dv.getUint32(F.major, true),
    compat: dv.getUint32(F.compat, true),
    incompat: dv.getUint32(F.incompat, true),
    roCompat: dv.getUint32(F.roCompat, true),
    poolsetUuid: uuid(F.poolsetUuid),
    uuid: uuid(F.uuid),
    prevPartUuid: uuid(F.prevPartUuid),
    nextPartUuid: uuid(F.nextPartUuid),
    prevReplUuid: uuid(F.prevReplUuid),
    nextReplUuid: uuid(F.nextReplUuid),
    crtime: Number(dv.getBigUint64(F.crtime, true)),
    alignmentDesc: dv.getBigUint64(F.alignmentDesc, true),
    machineClass: dv.getUint8(F.machineClass),
    data: dv.getUint8(F.data),
    machine: dv.getUint16(F.machine, true),
    checksum: dv.getBigUint64(HEADER_CHECKSUM_OFFSET, true),
  };
}

/** Whether two UUIDs are equal. */
export function sameUuid(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== 16 || b.byteLength !== 16) return false;
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Whether `a` and `b` hold the same bytes: word by word where both start
 * 4-aligned (an info block and its backup, 4 KiB each, compared at every
 * open and check: `every()` with a callback per byte cost ~4 % of a crash
 * sweep).
 */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.byteLength;
  if (b.byteLength !== n) return false;
  let i = 0;
  if (a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0) {
    const wa = new Uint32Array(a.buffer, a.byteOffset, n >>> 2);
    const wb = new Uint32Array(b.buffer, b.byteOffset, n >>> 2);
    for (; i < wa.length; i++) if (wa[i] !== wb[i]) return false;
    i *= 4;
  }
  for (; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether every byte is zero. */
export function allZero(bytes: Uint8Array): boolean {
  const n = bytes.byteLength;
  let i = 0;
  if (bytes.byteOffset % 4 === 0) {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, n >>> 2);
    for (; i < words.length; i++) if (words[i] !== 0) return false;
    i *= 4;
  }
  for (; i < n; i++) if (bytes[i] !== 0) return false;
  return true;
}

/**
 * The state of a device without an unsafe shutdown count or an id (also
 * what a pool's device is taken for until it is read).
 */
export const NO_DEVICE_STATE: Readonly<DeviceShutdownState> = Object.freeze({
  usc: 0n,
  uuid: 0n,
});

/**
 * The shutdown state of a pool's device now, as libpmem adds it up: the
 * device's unsafe shutdown count and a checksum of its id (both zero on a
 * device without them, like tmpfs or a disk; `deviceShutdownState` in
 * `shutdown_state.ts` reads them).
 */
export interface DeviceShutdownState {
  /** The device's unsafe shutdown count. */
  usc: bigint;
  /** libpmem's checksum of the device's id. */
  uuid: bigint;
}

/** A device's state, or how to read it when it is needed. */
export type DeviceShutdownSource =
  | DeviceShutdownState
  | (() => DeviceShutdownState);

/**
 * What the shutdown state (SDS) of a pool header says, as libpmem's open
 * (`shutdown_state_check`) and `pmempool check` read it.
 *
 * With the SDS feature, the state records the unsafe shutdown count and
 * device id checksum of the pool's device, and a dirty flag set while the
 * pool is open. A state that is zero, or whose checksum is wrong (a crash
 * while it was written), or that was closed, or whose device matches is
 * accepted (libpmem starts it anew); a dirty state whose count or id
 * differ from the device's now is an ADR failure: the pool is refused.
 * The device's state is read only for a dirty state (`current` may be a
 * function that reads it).
 *
 * Without the feature libpmem ignores the state, but `pmempool check`
 * wants it zero: `strict` adds that rule.
 *
 * @param bytes the 4096 header bytes
 * @param strict also report a non-zero state the pool does not use
 * @param current the state of the pool's device now @default zero (a
 *   device without a count or id)
 * @returns a sentence saying what is wrong, or null
 */
export function shutdownStateProblem(
  bytes: Uint8Array,
  strict = false,
  current: DeviceShutdownSource = NO_DEVICE_STATE,
): string | null {
  const sds = bytes.subarray(SDS_OFFSET, SDS_OFFSET + SDS_SIZE);
  const incompat = new DataView(bytes.buffer, bytes.byteOffset)
    .getUint32(F.incompat, true);
  if (allZero(sds)) return null;
  if ((incompat & INCOMPAT_SDS) === 0) {
    return strict
      ? "the shutdown state is dirty: it is not zero, though the pool " +
        "does not use it (no SHUTDOWN_STATE feature)"
      : null;
  }
  if (fletcher64(sds, SDS_SIZE - 8) !== storedChecksum(sds, SDS_SIZE - 8)) {
    return null; // interrupted while written: libpmem starts it anew
  }
  const dv = new DataView(sds.buffer, sds.byteOffset, SDS_SIZE);
  const usc = dv.getBigUint64(0, true);
  const uuid = dv.getBigUint64(8, true);
  if (sds[16] === 0) return null; // closed cleanly
  const device = typeof current === "function" ? current() : current;
  if (usc === device.usc && uuid === device.uuid) return null;
  return `an ADR failure was detected: the shutdown state says the pool ` +
    `was open when its device (unsafe shutdown count ${usc}) shut down, ` +
    "so it might be corrupt (`pmempool check --repair` resets the state, " +
    "at your own risk)";
}

/**
 * Whether a header's shutdown state says the pool's last open closed it:
 * clean (all zero on a device without a count or an id) with a valid
 * checksum. That close persisted whatever the open stored first, so the
 * pool holds no store that is visible but not durable; a dirty state (a
 * process killed, a power failure) or one torn while written may. Only
 * meaningful for a header whose state is kept (`keepsShutdownState`).
 *
 * @param bytes the 4096 header bytes
 */
export function closedCleanly(bytes: Uint8Array): boolean {
  const sds = bytes.subarray(SDS_OFFSET, SDS_OFFSET + SDS_SIZE);
  if (allZero(sds)) return true;
  return sds[16] === 0 &&
    fletcher64(sds, SDS_SIZE - 8) === storedChecksum(sds, SDS_SIZE - 8);
}

/**
 * Validate header bytes as the C libraries' open does (signature, major,
 * incompatible features, checksum, architecture, single-file UUID links,
 * no SINGLEHDR feature, a shutdown state without an ADR failure).
 *
 * @param bytes the 4096 header bytes
 * @param kind the format expected
 * @param arch the platform to match, or `null` to skip that check
 * @param device the state of the pool's device now (read only for a
 *   dirty shutdown state) @default zero
 * @returns the decoded header, or a sentence saying what is wrong
 */
export function checkPoolHeader(
  bytes: Uint8Array,
  kind: PoolKind,
  arch: ArchFlags | null,
  device: DeviceShutdownSource = NO_DEVICE_STATE,
): PoolHeader | string {
  if (allZero(bytes.subarray(0, HEADER_SIZE))) {
    return `not a ${kind.name} pool: the pool header is all zeros`;
  }
  const h = decodePoolHeader(bytes);
  if (h.signature !== kind.signature) {
    const shown = h.signature.replace(/\0+$/, "").replace(/[^ -~]/g, "?");
    return `not a ${kind.name} pool: the signature is ${JSON.stringify(shown)}`;
  }
  if (h.major !== kind.major) {
    return `unsupported pool format: major version ${h.major}, expected ${kind.major}`;
  }
  if ((h.incompat & ~INCOMPAT_KNOWN) !== 0) {
    return `unsupported pool format: unknown incompatible features 0x${
      h.incompat.toString(16)
    }`;
  }
  const computed = fletcher64(
    bytes.subarray(0, HEADER_SIZE),
    HEADER_CHECKSUM_OFFSET,
    checksumEnd(h),
  );
  const stored = storedChecksum(bytes, HEADER_CHECKSUM_OFFSET);
  if (computed !== stored) {
    return `the pool header is corrupt: checksum 0x${
      stored.toString(16)
    } stored, 0x${computed.toString(16)} computed`;
  }
  const reserved = new DataView(bytes.buffer, bytes.byteOffset)
    .getUint32(F.reserved, true);
  if (reserved !== 0) {
    return "the pool header is corrupt: reserved architecture bytes are not zero";
  }
  if (
    arch !== null &&
    (h.alignmentDesc !== arch.alignmentDesc ||
      h.machineClass !== arch.machineClass || h.data !== arch.data ||
      h.machine !== arch.machine)
  ) {
    return `the pool was created on another architecture (machine ${h.machine}, class ${h.machineClass}, data ${h.data}, alignment 0x${
      h.alignmentDesc.toString(16)
    })`;
  }
  const linked = [
    h.prevPartUuid,
    h.nextPartUuid,
    h.prevReplUuid,
    h.nextReplUuid,
  ].every((u) => sameUuid(u, h.uuid));
  if (!linked) {
    return "the pool header links other parts or replicas: pool sets are not supported";
  }
  if ((h.incompat & INCOMPAT_SINGLEHDR) !== 0) {
    // libpmem opens such a header only through a pool set file with the
    // NOHDRS option, whose other parts have no header
    return "the pool header has the SINGLEHDR feature of a pool set's " +
      "first part: pool sets are not supported";
  }
  const sds = shutdownStateProblem(bytes, false, device);
  if (sds !== null) return sds;
  return h;
}
