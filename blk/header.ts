// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The first 8 KiB of a libpmemblk pool: PMDK's pool header under the
 * signature "PMEMBLK" (`pmdk/pool_header.ts`), and the pmemblk descriptor
 * page (block size, is-zeroed flag). Byte-identical to libpmemblk 1.12.1.
 *
 * @module
 */
import type { PoolKind } from "../pmdk/pool_header.ts";

/** File offset of the pmemblk descriptor (`bsize` u32, `is_zeroed` i32). */
export const DESCRIPTOR_OFFSET = 4096;
/** Bytes of the descriptor that mean something (the rest is ignored). */
export const DESCRIPTOR_SIZE = 8;

/** libpmemblk's pools: signature "PMEMBLK", major version 1. */
export const BLK_POOL: PoolKind = {
  signature: "PMEMBLK\0",
  major: 1,
  name: "pmemblk",
};

/** The pmemblk descriptor at file offset 4096. */
export interface Descriptor {
  /** The block size given at creation (not rounded). */
  blockSize: number;
  /** 1 when the library created the file (known to be zero), else 0. */
  isZeroed: number;
}

/**
 * Encode the descriptor's 8 meaningful bytes.
 *
 * @param d the descriptor
 * @returns 8 bytes for file offset 4096
 */
export function encodeDescriptor(d: Descriptor): Uint8Array {
  const bytes = new Uint8Array(DESCRIPTOR_SIZE);
  const dv = new DataView(bytes.buffer);
  dv.setUint32(0, d.blockSize, true);
  dv.setInt32(4, d.isZeroed, true);
  return bytes;
}

/**
 * Decode the descriptor.
 *
 * @param bytes at least 8 bytes from file offset 4096
 * @returns the fields
 */
export function decodeDescriptor(bytes: Uint8Array): Descriptor {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, DESCRIPTOR_SIZE);
  return { blockSize: dv.getUint32(0, true), isZeroed: dv.getInt32(4, true) };
}
