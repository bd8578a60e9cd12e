// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What an allocation or a free of a region leaves when a persist of its
 * slot's state word fails (the media's EIO): the word stored in the
 * mapping is set back and persisted, and the mirror left as it was before
 * (or the free rolled back), so the region table in the mapping and the
 * mirror agree and no later allocation places a region over one the
 * media may still hold. Internal.
 *
 * @module
 */
import { SLOT_ALLOCATED, SLOT_FREE, slotOffset } from "./layout.ts";
import type { StreamMedia } from "./media.ts";
import {
  REGION_ALLOCATED,
  REGION_FREEING,
  type SharedState,
} from "./shared.ts";

/**
 * The persist of slot `k`'s state word failed in an allocation (region
 * `[offset, offset + size)`): the word, stored allocated, is set back to
 * free and persisted, else a later allocation, the slot free in the
 * mirror, could place a region over this space through another slot, and
 * the next open refused the overlap as corruption. Where that persist
 * fails too, the space is kept from allocation (the slot marked as being
 * freed by no open: never listed, never rolled back) until a reopen,
 * which finds the slot as the media holds it. The caller holds the
 * reserve lock, the allocation's hold set: a thread that ends in here
 * leaves the allocation to the taker, as the word then reads.
 */
export function undoAllocate(
  media: StreamMedia,
  shared: SharedState,
  k: number,
  offset: number,
  size: number,
): void {
  const at = slotOffset(k);
  try {
    media.write32(at, SLOT_FREE);
    media.persist(at, 4);
  } catch {
    shared.setPlace(k, offset, size);
    shared.setFreer(k, 0);
    shared.setRegionState(k, REGION_FREEING);
  }
}

/**
 * The clearing of region `k`'s slot failed (its persist: the region still
 * marked as being freed, the cleared state word perhaps on the media):
 * the word is set back and persisted, then the free rolled back, as one
 * whose settling failed is, so the region is listed and a retry frees it.
 * Where that persist fails too, the region stays marked, by no open, so
 * that no rollback lists it again (until a reopen, which finds it as the
 * media holds it): its space is not allocated again, so no region placed
 * there can meet a slot that reaches the media allocated. The caller holds the reserve lock, the free's hold
 * set: a thread that ends in here leaves the free finished by the taker.
 */
export function restoreSlot(
  media: StreamMedia,
  s: SharedState,
  k: number,
): void {
  if (s.regionState(k) !== REGION_FREEING) return;
  const at = slotOffset(k);
  try {
    media.write32(at, SLOT_ALLOCATED);
    media.persist(at, 4);
  } catch {
    // marked as being freed by no open from here: the rollback of a free
    // whose open ended (see `SharedState.allocated`) would list it again
    // once this open's thread ends, its slot word on the media perhaps
    // free (the caller throws the first failure)
    s.setFreer(k, 0);
    return;
  }
  s.setRegionState(k, REGION_ALLOCATED);
  s.bump();
}
