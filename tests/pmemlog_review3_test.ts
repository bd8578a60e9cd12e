// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// A third review of PmemLog: a failed copy of its data mover, reported
// as every other store reports one, and `close()` with appends in flight.
import {
  chain,
  DsaMover,
  fromStep,
  type Future,
  PENDING,
  PmemError,
  ThreadMover,
  type Vdm,
} from "../mod.ts";
import { DsaStatus } from "../mover/mod.ts";
import { PmemLog } from "../stream/mod.ts";
import { injectFault } from "../testing/mod.ts";
import { logContents } from "./c/logutil.ts";
import { assert, type MoverKind, moverTest, tempPath } from "./_harness.ts";

const MiB = 1 << 20;

/**
 * Make `mover`'s next batch copy, then fail with `error` a poll later (a
 * device reporting a failure after a copy that wrote its bytes), through
 * an own property: the class stays the harness's (as
 * `countingThreadMover` does).
 */
function failNextBatch(mover: Vdm, error: Error): void {
  const batch = mover.batch.bind(mover);
  let armed = true;
  mover.batch = (ops, options) => {
    const copy = batch(ops, options);
    if (!armed) return copy;
    armed = false;
    let polls = 0;
    return chain(copy, () =>
      fromStep<void>(() => {
        if (polls++ === 0) return PENDING;
        throw error;
      }));
  };
}

/** Whether `kind`'s mover has a software device `injectFault` can fail. */
function hasSoftDevice(
  mover: Vdm,
  kind: MoverKind,
): mover is ThreadMover | DsaMover {
  return mover instanceof ThreadMover ||
    (mover instanceof DsaMover && kind.name !== "dsa-hw");
}

/** Poll `f` by hand until it settles (a bounded number of polls). */
function settle(f: Future<unknown>): string {
  for (let i = 0; i < 1_000_000 && !f.done; i++) f.poll();
  return f.state;
}

// Bug: `appendAsync` redid a copy its mover failed on the calling thread
// and resolved, so a broken mover (a DSA completion record with an error
// status, a mover of the user's whose future fails) went unreported,
// where every other store's call fails with the mover's error. The
// appends of the failed batch now fail, with nothing of them in the log
// (the write offset stays before them); an append placed after them in
// another batch is placed again at their place, and later appends go on.
moverTest(
  "PmemLog.appendAsync whose mover fails its copy fails with the mover's error, appends nothing, and later appends go on",
  async (mover, kind) => {
    const path = tempPath();
    const boom = new Error("the mover broke");
    {
      using log = PmemLog.create(path, { poolSize: 2 * MiB, mover });
      log.append(Uint8Array.of(1, 2, 3));
      failNextBatch(mover, boom);
      // a and b: one batch, which fails; c: a batch of its own, placed
      // after them while theirs is in flight
      const a = log.appendAsync(new Uint8Array(100).fill(4));
      const b = log.appendAsync(new Uint8Array(50).fill(5));
      a.poll();
      b.poll();
      a.poll();
      const c = log.appendAsync(new Uint8Array(10).fill(6));
      c.poll();
      c.poll();
      assert.equal(settle(a), "failed");
      assert.equal(a.error, boom);
      assert.equal(settle(b), "failed");
      assert.equal(b.error, boom);
      // (c may be placed again and appended while a and b settle)
      assert.equal(log.tell(), c.state === "complete" ? 13 : 3);
      assert.equal(await c, 3);
      assert.equal(await log.appendAsync(Uint8Array.of(7)), 13);
      log.append(Uint8Array.of(8));
      assert.deepEqual(
        [...logContents(log)],
        [1, 2, 3, ...new Array(10).fill(6), 7, 8],
      );
      if (hasSoftDevice(mover, kind)) {
        // a completion record with an error status: the store's PmemError
        // (EIO) naming the mover; a sync append after it goes on too
        injectFault(mover, 0, { status: DsaStatus.HW_ERR1 });
        await assert.rejects(
          async () => await log.appendAsync(new Uint8Array(64).fill(9)),
          (e: unknown) =>
            e instanceof PmemError && e.code === -5 &&
            /Mover completed with status 0x20 \(HW_ERR1\)/.test(e.message),
        );
        assert.equal(log.tell(), 15);
        log.append(Uint8Array.of(10));
        assert.equal(await log.appendAsync(Uint8Array.of(11)), 16);
      }
    }
    using log = PmemLog.open(path);
    const tail = hasSoftDevice(mover, kind) ? [10, 11] : [];
    assert.deepEqual(
      [...logContents(log)],
      [1, 2, 3, ...new Array(10).fill(6), 7, 8, ...tail],
    );
  },
);

// `close()` finishes every append made, polled or not, as LogStream's
// and ObjectPool's do theirs (the README's table): an unpolled append is
// appended; unpolled ones whose copy the mover fails fail with the
// mover's error, and the close returns with nothing of them in the log.
moverTest(
  "PmemLog.close() finishes appends never polled; those whose copy fails fail with the mover's error",
  async (mover) => {
    const path = tempPath();
    const boom = new Error("the mover broke");
    let lost: Future<number>[];
    {
      using log = PmemLog.create(path, { poolSize: 2 * MiB, mover });
      log.append(Uint8Array.of(1));
      failNextBatch(mover, boom);
      lost = [
        log.appendAsync(new Uint8Array(30).fill(3)),
        log.appendAsync(Uint8Array.of(4)),
      ];
    }
    assert.deepEqual(lost.map((f) => [f.state, f.error]), [
      ["failed", boom],
      ["failed", boom],
    ]);
    let ok: Future<number>;
    {
      using log = PmemLog.open(path, { mover });
      assert.deepEqual([...logContents(log)], [1]);
      ok = log.appendAsync(Uint8Array.of(2, 2));
    }
    assert.equal(ok.state, "complete");
    assert.equal(await ok, 1);
    using log = PmemLog.open(path);
    assert.deepEqual([...logContents(log)], [1, 2, 2]);
  },
);
