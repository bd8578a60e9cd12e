// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// An object pool whose shared mover was closed under a committed group's
// batch applies the group on this thread (04a6ab7); here that
// application itself fails, which must stop the pool as any other failed
// apply does, whichever call met the failed batch.
import { ClosedError, CpuMover, PmemError, type Vdm } from "../mod.ts";
import { fromStep, PENDING } from "../future/mod.ts";
import { ObjectPool } from "../obj/mod.ts";
import { poolEngine } from "../obj/pool_access.ts";
import { assert, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;

/**
 * A mover whose batches stay pending until `shut()`, then fail with its
 * ClosedError while `closed` reads true: a shared mover closed by its
 * owner under a batch in flight (or, after `release()`, complete without
 * copying). Everything else goes to a CpuMover.
 */
function shuttingMover(): Vdm & { shut(): void; release(): void } {
  const inner = new CpuMover();
  let shut = false;
  let released = false;
  return {
    name: "shutting",
    capabilities: inner.capabilities,
    supports: (flags) => inner.supports(flags),
    memcpy: (d, s, f, o) => inner.memcpy(d, s, f, o),
    memmove: (d, s, f, o) => inner.memmove(d, s, f, o),
    memset: (d, v, f, o) => inner.memset(d, v, f, o),
    flush: (r, f, o) => inner.flush(r, f, o),
    batch: () =>
      fromStep<void>(() => {
        if (shut) throw new ClosedError("ShuttingMover", "batch");
        return released ? undefined : PENDING;
      }),
    get closed() {
      return shut;
    },
    shut() {
      shut = true;
    },
    release() {
      released = true;
    },
    close: () => inner.close(),
    [Symbol.dispose]: () => inner.close(),
  };
}

const stopped = (cause: RegExp) => (e: unknown) =>
  e instanceof PmemError && e.code === -5 &&
  /the pool stopped after a failure: the media broke/.test(e.message) &&
  cause.test(String((e.cause as Error)?.message));

// Bug: when the closed mover refused a committed group's batch, the group
// was applied here by `Applier.appliedHere`, and a failure of that
// application (the pool's own mapping broken) escaped `Engine.advance`,
// `drain` and `settle` without stopping the pool: the call that met it
// threw the bare error, and the group stayed queued, half applied, for
// the next call to apply again.
for (const path of ["advance", "drain", "settle"] as const) {
  test(`a committed group whose closed mover's batch is applied here and fails stops the pool (${path})`, async () => {
    using mover = shuttingMover();
    using pool = ObjectPool.create(tempPath(), {
      size: 16 * MiB,
      layout: "shut",
      mover,
    });
    const h = pool.tx((tx) => tx.alloc(4096));
    const f = pool.txAsync((tx) =>
      tx.write(h, 0, new Uint8Array(4096).fill(4))
    );
    assert.equal(f.poll(), "running"); // committed; its batch in flight
    const log = poolEngine(pool).log;
    log.applyAll = () => {
      throw new Error("the media broke");
    };
    mover.shut();
    if (path === "advance") {
      await assert.rejects(async () => await f, /the media broke/);
    } else if (path === "drain") {
      assert.throws(() => pool.tx(() => {}), stopped(/media broke/));
    } else {
      assert.throws(() => pool.read(h, 0, 2), stopped(/media broke/));
    }
    // stopped: every later call says so, the transaction failed with
    // the failure
    assert.throws(() => pool.tx(() => {}), stopped(/media broke/));
    assert.throws(() => pool.read(h, 0, 2), stopped(/media broke/));
    await assert.rejects(async () => await f, /the media broke/);
  });
}

// Bug: `Engine.drain` applied a group queued behind a batch in flight
// (committed, not started) on this thread without a guard: its failure
// escaped the synchronous call (the bare error) without stopping the
// pool. Stopped now, and the group applied before it in that drain stays
// applied: its transaction does not fail.
test("a committed group that fails to apply in a drain stops the pool; the one applied before it in the drain stays done", async () => {
  using mover = shuttingMover();
  using pool = ObjectPool.create(tempPath(), {
    size: 16 * MiB,
    layout: "shut",
    mover,
  });
  const [h1, h2] = pool.tx((tx) => [tx.alloc(4096), tx.alloc(4096)]);
  const f1 = pool.txAsync((tx) =>
    tx.write(h1, 0, new Uint8Array(4096).fill(1))
  );
  assert.equal(f1.poll(), "running"); // its batch in flight
  const f2 = pool.txAsync((tx) =>
    tx.write(h2, 0, new Uint8Array(4096).fill(2))
  );
  assert.equal(f2.poll(), "running"); // committed, queued behind it
  poolEngine(pool).log.applyAll = () => {
    throw new Error("the media broke");
  };
  mover.release();
  assert.throws(() => pool.tx(() => {}), stopped(/media broke/));
  assert.equal(await f1, undefined);
  await assert.rejects(async () => await f2, /the media broke/);
  assert.throws(() => pool.tx(() => {}), stopped(/media broke/));
});
