// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Edges of the DSA path and the software device standing in for it,
 * found by a review against the reference (dsa.md) and <linux/idxd.h>:
 * each test exposed a bug, named in its comment.
 */
import { mapFile, ShimCode, ThreadMover } from "../mod.ts";
import { native } from "../ffi/lib.ts";
import type { CompletionDevice } from "../mover/_device.ts";
import { dsaMoverDevice } from "../mover/dsa.ts";
import { DsaOpcode } from "../mover/dsa_format.ts";
import { openTestPortal, portalCounters } from "../testing/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";

/** Spin (bounded) until record `rec` is written, as a poller sees it. */
function spinRecord(dev: CompletionDevice, rec: number): number {
  const end = Date.now() + 10_000;
  for (;;) {
    const status = dev.status(rec);
    if (status !== 0) return status;
    if (Date.now() > end) throw new Error(`record ${rec} never completed`);
  }
}

// Bug: on a DSA WQ, the watcher settles a completed BATCH by reading its
// member list (dropping the members' mapping references) -- but
// JavaScript may see the batch's record first, and then reuses the list
// and fresh member records at once. The watcher then read the new list:
// it dropped the new members' references (a mapping could be unmapped
// under a descriptor in flight) and kept the old members' for good (their
// records refused all work as "still in use", their mapping never
// unmapped). Cause: only a batch's own record was marked pending; its
// member records and its list were not, so nothing made a reuse wait for
// the watcher's (or its own) reap.
test("a batch list and member records reused before the watcher settled the batch", () => {
  using dsa = openTestPortal({ engines: 1 });
  const dev = dsaMoverDevice(dsa);
  const h = dev.handle("test");
  using map = mapFile(tempPath(), { size: 4 << 20 });
  const big = map.view(0, 2 << 20);
  const small = map.view(3 << 20, 4096);
  const fill = (v: Uint8Array, rec: number) =>
    [
      rec,
      DsaOpcode.MEMFILL,
      0,
      v,
      v.byteLength,
      0,
      v,
      v.byteLength,
      0,
      v.byteLength,
      1,
    ] as const;
  /** Until the watcher (or a submitter) settled every completion. */
  const settled = () => {
    for (let t = 0; t < 500; t++) {
      const c = portalCounters(dsa);
      if (c.reaped + c.reapedInline >= c.sent) return;
      dev.block(dev.sequence(), 10);
    }
    throw new Error("completions never settled");
  };
  const list = dev.acquireList();
  for (let i = 0; i < 100; i++) {
    const [batch, m0, m1, next] = [0, 1, 2, 3].map(() => dev.acquireRecord({}));
    // members over a mapping: each holds a reference on it
    assert.equal(
      native.ap_dev_batch_set(
        h,
        list,
        0,
        ...fill(big.subarray(0, 1 << 20), m0),
      ),
      0,
      `iteration ${i}: member 0's record is free`,
    );
    assert.equal(
      native.ap_dev_batch_set(h, list, 1, ...fill(big.subarray(1 << 20), m1)),
      0,
      `iteration ${i}: member 1's record is free`,
    );
    assert.equal(native.ap_dev_batch_submit(h, batch, list, 2), 0);
    spinRecord(dev, batch); // seen before the watcher, often
    // the list is JavaScript's again: a new member goes into it
    assert.equal(native.ap_dev_batch_set(h, list, 0, ...fill(small, next)), 0);
    settled();
    // the new member still holds its reference: its record is in use
    assert.equal(
      native.ap_dev_submit(h, ...fill(small, next)),
      ShimCode.BUSY,
      `iteration ${i}: the new member's reference was dropped`,
    );
    native.ap_dev_release(h, next);
    for (const r of [batch, m0, m1, next]) dev.releaseRecord(r);
  }
  dev.releaseList(list);
});

// Bug: a mover made with `batchLists: 0` (an accepted option) never
// finished a batch: runBatch built a BATCH future, which found no list to
// take and waited, NOT_STARTED, for one to be given back -- forever.
// Cause: the offload checked maxBatch and the records, not the lists.
test("a mover without batch lists runs batches as single descriptors", async () => {
  for (
    const mover of [
      new ThreadMover({ threads: 1, inlineThreshold: 0, batchLists: 0 }),
      openTestPortal({ batchLists: 0 }),
    ]
  ) {
    using m = mover;
    const a = new Uint8Array(8192);
    const b = new Uint8Array(8192);
    const f = m.batch([
      { op: "memset", dst: a, value: 1 },
      { op: "memset", dst: b, value: 2 },
    ]);
    const end = Date.now() + 10_000;
    while (f.poll() !== "complete") {
      assert.ok(Date.now() < end, `${m.name}: the batch never completed`);
      await new Promise((r) => setTimeout(r, 1));
    }
    assert.deepEqual([a[0], a[8191], b[0], b[8191]], [1, 1, 2, 2], m.name);
  }
});
