// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What the next taker of the reserve lock does with the work an
 * unmarked holder whose thread ended (a Worker terminated) left half
 * done, as its hold says ({@linkcode SharedState.hold}): each is finished
 * from what the shared state and the media hold, or rolled back, with the
 * media writes the holder would have made (crash consistency as theirs).
 * Internal.
 *
 * @module
 */
import type { LogCore } from "./core.ts";
import { cancelSlot } from "./core.ts";
import { decodeSlot, SLOT_ALLOCATED, SLOT_SIZE, slotOffset } from "./layout.ts";
import {
  HOLD_ALLOCATE,
  HOLD_CANCEL,
  HOLD_CLOSE,
  HOLD_FREE,
  HOLD_FREE_BEGIN,
  HOLD_TRUNCATE,
  REGION_ALLOCATED,
  REGION_FREE,
  REGION_FREEING,
} from "./shared.ts";
import { finishFree, restartEmpty, rollBackFree, scanTo } from "./table.ts";
import { finishStream } from "./progress.ts";

/**
 * Finish or roll back hold `hold` of region `k` (reserve lock held, taken
 * over): returns false where that cannot be done soundly.
 *
 * - cancel: done again (each of its stores is idempotent given the
 *   reservation, and the slot turns VOID last);
 * - allocate: finished when the slot's state word reached the media (the
 *   mirror loaded from the slot, the word persisted), else nothing of it
 *   shows (the mirror changes only after that word);
 * - the start of a free (the region marked as being freed): rolled back,
 *   as if never asked for (its entries were not settled yet); also what
 *   the next taker does for a free whose thread ended between its two
 *   holds of the lock (`SharedState.markFreeing`);
 * - the end of a free (its entries settled): the slot is cleared again;
 * - the last close: done again (nothing joined may have reserved yet:
 *   a joiner reserves under this lock);
 * - truncate (its entries settled before the lock): finished from the
 *   head on the media, the truth (stored before the mirror's): persisted
 *   again, the mirror's head (and, where the restart of an emptied
 *   region at its start stored it, its reserved and committed ends) set
 *   to it, the region restarted if emptied, and its count of live
 *   entries counted again from the headers under the commit lock (the
 *   holder's share of it moves apart from the head, and whether it moved
 *   cannot be told from the count: other commits move it too).
 */
export function repairHold(
  core: LogCore,
  hold: number,
  k: number,
  args: readonly number[],
): boolean {
  const s = core.shared;
  const media = core.media;
  switch (hold) {
    case HOLD_CANCEL:
      cancelSlot(s, k, args[0], args[1], args[2]);
      return true;
    case HOLD_ALLOCATE: {
      if (s.regionState(k) !== REGION_FREE) return true;
      const at = slotOffset(k);
      const slot = decodeSlot(media.bytes(at, SLOT_SIZE));
      if (slot.state !== SLOT_ALLOCATED) return true;
      media.persist(at, 4);
      s.setGeneration(k, slot.generation);
      s.setPlace(k, slot.offset, slot.size);
      s.setHead(k, slot.head);
      s.setTail(k, slot.head);
      s.setCommitted(k, slot.head, 0);
      s.setLive(k, 0);
      s.setRegionState(k, REGION_ALLOCATED);
      s.bump();
      return true;
    }
    case HOLD_FREE_BEGIN:
      rollBackFree(s, k);
      return true;
    case HOLD_FREE:
      if (s.regionState(k) === REGION_FREEING) finishFree(media, s, k);
      return true;
    case HOLD_CLOSE:
      finishStream(core);
      return true;
    case HOLD_TRUNCATE: {
      const at = slotOffset(k) + 32;
      const head = media.read64(at);
      media.persist(at, 8);
      if (s.head(k) !== head) s.setHead(k, head);
      if (head > s.committedEnd(k)) {
        s.setTail(k, head);
        s.setCommitted(k, head, s.lastTs(k));
      }
      restartEmpty(core, k, head);
      s.lockCommit("truncate");
      try {
        s.setLive(k, scanTo(core, k, s.head(k), Infinity).dropped);
      } finally {
        s.unlockCommit();
      }
      s.bump();
      return true;
    }
    default:
      return false;
  }
}
