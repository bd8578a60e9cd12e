// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The shutdown state of a pool's device now, as libpmem (1.12.1) adds it
 * up for a pool header's shutdown state (`shutdown_state_add_part`): the
 * device's unsafe shutdown count, and a Fletcher-64 checksum of its id.
 * A pool left dirty on a device whose count and id still match was
 * closed uncleanly by its process, not cut off by an ADR failure, and
 * libpmem opens it; asyncpmem must read the same two numbers to judge it
 * alike (`shutdownStateProblem` in `pool_header.ts` compares them).
 *
 * @module
 */
import { native, type Ptr } from "../ffi/lib.ts";
import { type Source, sourceHandle } from "../pmem2/source.ts";
import { fletcher64, storeChecksum } from "./checksum.ts";
import {
  type DeviceShutdownState,
  INCOMPAT_CKSUM_2K,
  INCOMPAT_SDS,
  SDS_OFFSET,
  SDS_SIZE,
} from "./pool_header.ts";
import type { Mapping } from "../pmem2/mapping.ts";

/**
 * libpmem's checksum of a device id: the id as `pmem2_source_device_id`
 * writes it (its bytes and the terminating NUL, `len` bytes in all) in a
 * zeroed buffer of `len + 4 - len % 4` bytes (always 1 to 4 bytes longer,
 * so a multiple of 4), checksummed whole with nothing skipped.
 *
 * @param id the id's bytes with its terminating NUL
 * @returns the checksum libpmem adds to the state's `uuid`
 */
export function deviceIdChecksum(id: Uint8Array): bigint {
  const len = id.byteLength;
  const padded = new Uint8Array(len + 4 - len % 4);
  padded.set(id);
  // the checksum field's offset lies past the end: no word is skipped
  return fletcher64(padded, padded.byteLength);
}

/**
 * The shutdown state of `source`'s device now. A device that has no
 * unsafe shutdown count (a file on tmpfs or a disk) counts 0, and one
 * without an id adds nothing, as in libpmem, whose state for a pool on
 * such a device is all zero. A count or id that cannot be read for
 * another reason (the kernel lets only root read the count on some
 * systems) counts as none too, where libpmem refuses to open the pool
 * (pmem/issues#1039): the state is a safety net, not a requirement, and
 * it stays consistent as long as the same reads fail.
 *
 * @param source the pool file, open
 * @returns its device's count and id checksum
 */
export function deviceShutdownState(source: Source): DeviceShutdownState {
  const handle = sourceHandle(source, "deviceUsc");
  // the codes are read, not thrown: every refusal counts as none, and an
  // error's stack was most of what an open of a pool on tmpfs paid here
  const out = new Float64Array(1);
  const usc = native.ap_source_device_usc(handle, out) < 0
    ? 0n
    : BigInt(out[0]);
  const id = deviceIdBytes(handle);
  return { usc, uuid: id === null ? 0n : deviceIdChecksum(id) };
}

/** The device id's bytes with its NUL, or null for a device without one. */
function deviceIdBytes(handle: Ptr): Uint8Array | null {
  const len = new Uint32Array(1);
  if (native.ap_source_device_id(handle, null, 0, len) < 0) return null;
  const id = new Uint8Array(len[0]);
  if (native.ap_source_device_id(handle, id, id.byteLength, len) < 0) {
    return null;
  }
  return id;
}

/**
 * Whether asyncpmem keeps a pool header's shutdown state as libpmem does
 * (dirty while the pool is open, clean after a close): with the SDS
 * feature, and with `CKSUM_2K`, so that the header's own checksum ends
 * before the state and a change of the state leaves it valid. A header
 * without `CKSUM_2K` is left as it is.
 *
 * @param incompat the header's `features.incompat`
 */
export function keepsShutdownState(incompat: number): boolean {
  const wanted = INCOMPAT_SDS | INCOMPAT_CKSUM_2K;
  return (incompat & wanted) === wanted;
}

/**
 * The 64 bytes of the shutdown state libpmem writes for a pool on
 * `device`: dirty at open (`shutdown_state_set_dirty`), clean at close
 * (`shutdown_state_clear_dirty`), its checksum last. A clean state on a
 * device without a count or an id is all zero.
 *
 * @param device the device's state now
 * @param dirty whether the pool is open
 */
export function shutdownStateBytes(
  device: DeviceShutdownState,
  dirty: boolean,
): Uint8Array {
  const sds = new Uint8Array(SDS_SIZE);
  const dv = new DataView(sds.buffer);
  dv.setBigUint64(0, BigInt.asUintN(64, device.usc), true);
  dv.setBigUint64(8, BigInt.asUintN(64, device.uuid), true);
  sds[16] = dirty ? 1 : 0;
  storeChecksum(sds, SDS_SIZE - 8);
  return sds;
}

/**
 * Store the shutdown state for `device` in a pool's mapping, durably:
 * the words that differ from what it holds (none after a crash, which
 * left it dirty already).
 *
 * @param map the pool's mapping (the header at offset 0)
 * @param device the device's state
 * @param dirty whether the pool is open
 */
export function storeShutdownState(
  map: Mapping,
  device: DeviceShutdownState,
  dirty: boolean,
): void {
  const want = shutdownStateBytes(device, dirty);
  const have = new Uint8Array(SDS_SIZE);
  map.read(SDS_OFFSET, have);
  // only the words that change: the state straddles two cache lines, and
  // the first holds only the count, which rarely changes
  let from = 0;
  while (from < SDS_SIZE && have[from] === want[from]) from++;
  if (from === SDS_SIZE) return;
  let to = SDS_SIZE;
  while (have[to - 1] === want[to - 1]) to--;
  from &= ~7;
  to = (to + 7) & ~7;
  map.memcpy(SDS_OFFSET + from, want.subarray(from, to));
}
