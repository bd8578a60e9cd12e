// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The DSA mover on test portals -- the hardware path with the software
// device behind a WQ's interface: the watcher, credits, busy answers,
// partial completions, failed batch members, write(2), durable writes,
// wake-ups, sweep batches. Every mover test body also runs on test
// portals (MOVERS in _harness.ts); discovery is dsa_discovery_test.ts.
import {
  all,
  type DsaMover,
  mapFile,
  NotSupportedError,
  PmemError,
  ShimCode,
  ThreadMover,
  VdmFlags,
} from "../mod.ts";
import { native } from "../ffi/lib.ts";
import { dsaMoverDevice } from "../mover/dsa.ts";
import * as format from "../mover/dsa_format.ts";
import { threadMoverDevice } from "../mover/thread.ts";
import {
  deviceStats,
  injectBusy,
  injectFault,
  openTestPortal,
  portalCounters,
} from "../testing/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";
import { waitRecord } from "./_device.ts";

/**
 * `promise`, or a failure after `ms`: a descriptor a WQ dropped never
 * completes, and a test should say so rather than hang (a liveness
 * bound, generous, not a timing assertion)
 */
async function settles<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`not settled in ${ms} ms: work was lost`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

test("a test portal's completions are noticed by the watcher, once each", async () => {
  for (const mode of ["dedicated", "shared", "write"] as const) {
    using dsa = openTestPortal({ mode, queueSize: 4, maxTransfer: 8192 });
    const dev = dsaMoverDevice(dsa);
    assert.equal(dev.info.submission, mode);
    assert.equal(dev.info.testPortal, true);
    const src = new Uint8Array(50_000).map((_, i) => (i * 7) & 255);
    const dsts = Array.from({ length: 12 }, () => new Uint8Array(50_000));
    await settles(all(dsts.map((d) => dsa.memcpy(d, src))), 20_000);
    for (const d of dsts) assert.deepEqual(d, src, mode);
    // JavaScript may see a record before the watcher does: wait (bounded)
    // until the watcher, or a submitter, has noticed every completion
    let c = portalCounters(dsa);
    for (let t = 0; c.reaped + c.reapedInline < c.sent && t < 50; t++) {
      dev.block(dev.sequence(), 100);
      c = portalCounters(dsa);
    }
    // the device wrote records only: the sequence moved once per
    // descriptor because the watcher (or a submitter) noticed each
    assert.equal(c.sent, 12 * 7, mode); // 50 000 B in 8 KiB chunks
    assert.equal(c.reaped + c.reapedInline, c.sent, mode);
    assert.equal(dev.sequence(), c.sent, mode);
    assert.equal(c.drops, 0, mode);
  }
});

test("a partial completion on a test portal: page touched, remainder resubmitted, then the CPU", async () => {
  using dsa = openTestPortal({ engines: 1 });
  const src = new Uint8Array(65536).map((_, i) => (i * 7) & 255);
  for (const count of [1, 2]) {
    const before = deviceStats(dsa);
    const dst = new Uint8Array(65536);
    injectFault(dsa, 10_000, { count });
    await dsa.memcpy(dst, src);
    assert.deepEqual(dst, src, `count ${count}`);
    const after = deviceStats(dsa);
    assert.equal(after.partialCompletions - before.partialCompletions, count);
    assert.equal(after.pagesTouched - before.pagesTouched, 1);
    assert.equal(after.resubmissions - before.resubmissions, 1);
    assert.equal(after.cpuFallbacks - before.cpuFallbacks, count - 1);
  }
  // an overlapping memmove upward: the device copies top-down, so the
  // fault leaves the top done and only what lies below is redone
  const buf = new Uint8Array(70000).map((_, i) => i & 255);
  const ref = buf.slice();
  ref.copyWithin(1000, 0, 60000);
  injectFault(dsa, 5000, { count: 2 });
  await dsa.memmove(buf.subarray(1000, 61000), buf.subarray(0, 60000));
  assert.deepEqual(buf, ref);
});

test("ap_dev_touch touches only inside the operation's own buffers", () => {
  using mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
  const dev = threadMoverDevice(mover);
  const h = dev.handle("test");
  const dst = new Uint8Array(16384);
  const other = new Uint8Array(16384);
  const rec = dev.acquireRecord({});
  injectFault(mover, 5000);
  const fill = (r: number) =>
    native.ap_dev_submit(
      h,
      r,
      format.DsaOpcode.MEMFILL,
      0,
      dst,
      dst.byteLength,
      0,
      dst,
      dst.byteLength,
      0,
      dst.byteLength,
      7,
    );
  assert.equal(fill(rec), 0);
  assert.equal(waitRecord(dev, rec), 0x83);
  assert.equal(
    native.ap_dev_touch(h, rec, other, other.byteLength, null, 0),
    0,
  );
  assert.equal(
    native.ap_dev_touch(h, rec, null, 0, other, other.byteLength),
    0,
  );
  assert.equal(native.ap_dev_touch(h, rec, dst, dst.byteLength, null, 0), 1);
  const ok = dev.acquireRecord({});
  assert.equal(fill(ok), 0);
  assert.equal(waitRecord(dev, ok), format.DsaStatus.SUCCESS);
  assert.equal(
    native.ap_dev_touch(h, ok, dst, dst.byteLength, null, 0),
    ShimCode.INVALID_ARG,
  );
});

test("a failed batch member fails the batch, naming the member's status", async () => {
  using dsa = openTestPortal({ engines: 1 });
  const dst = new Uint8Array(4 * 8192);
  const entries = [0, 1, 2, 3].map((i) => ({
    op: "memset" as const,
    dst: dst.subarray(i * 8192, (i + 1) * 8192),
    value: i + 1,
  }));
  injectFault(dsa, 0, { status: format.DsaStatus.HW_ERR1 });
  await assert.rejects(
    async () => await dsa.batch(entries),
    (e: unknown) =>
      e instanceof PmemError && e.op === "memset" && e.errno === 5 &&
      /DsaMover completed with status 0x20 \(HW_ERR1\)/.test(e.message),
  );
  assert.equal(dst[8192], 2); // the other members ran
  assert.equal(portalCounters(dsa).sent, 1); // one BATCH descriptor
  await dsa.batch(entries);
  assert.equal(dst[0], 1);
});

test("a full dedicated WQ: credits hold submissions back, nothing is dropped", async () => {
  // no BATCH, so that every copy is a descriptor of its own
  using dsa = openTestPortal({
    mode: "dedicated",
    queueSize: 2,
    engines: 1,
    maxBatch: 0,
  });
  // 1 MiB fills: the engine's fill takes many times a submission, so the
  // submitter runs out of credits even when it is descheduled often (with
  // 256 KiB fills, a clean-clone CI running both suites once kept up)
  const dsts = Array.from({ length: 40 }, () => new Uint8Array(1 << 20));
  await settles(all(dsts.map((d, i) => dsa.memset(d, i))), 20_000);
  dsts.forEach((d, i) => assert.equal(d[(1 << 20) - 1], i));
  const c = portalCounters(dsa);
  assert.ok(c.creditWaits > 0, "the credits never ran out");
  assert.equal(c.drops, 0);
  assert.equal(c.sent, 40);
});

test("a shared WQ's busy answers are retried, then the CPU finishes", async () => {
  using dsa = openTestPortal({ mode: "shared", engines: 1 });
  const dst = new Uint8Array(32768);
  // fewer than the shim's immediate retries: the device does it
  injectBusy(dsa, 3);
  await dsa.memset(dst, 1);
  let s = deviceStats(dsa);
  assert.equal(s.busyAnswers, 0);
  assert.equal(s.cpuFallbacks, 0);
  assert.equal(portalCounters(dsa).retries, 3);
  // more than one answer's worth: retried from the event loop
  injectBusy(dsa, 8);
  await dsa.memset(dst, 2);
  s = deviceStats(dsa);
  assert.equal(s.busyAnswers, 1);
  assert.equal(s.cpuFallbacks, 0);
  assert.equal(portalCounters(dsa).sent, 2);
  // a WQ others keep full: given up after 16 answers, done on the CPU
  injectBusy(dsa, 1_000_000);
  await dsa.memset(dst, 3);
  await dsa.batch([
    { op: "memset", dst: dst.subarray(0, 8192), value: 4 },
    { op: "memset", dst: dst.subarray(8192), value: 5 },
  ]);
  s = deviceStats(dsa);
  assert.equal(s.busyAnswers, 1 + 16 + 16);
  assert.equal(s.cpuFallbacks, 2);
  assert.equal(portalCounters(dsa).sent, 2);
  assert.deepEqual([dst[0], dst[8191], dst[8192], dst[32767]], [4, 4, 5, 5]);
  injectBusy(dsa, 0);
  using dedicated = openTestPortal({ mode: "dedicated" });
  assert.throws(() => injectBusy(dedicated, 1), NotSupportedError);
});

test("the write(2) path sends no BATCH and runs everything else", async () => {
  using dsa = openTestPortal({ mode: "write" });
  assert.equal(dsa.info.maxBatch, 0);
  assert.equal(dsa.info.portalMapped, false);
  const src = new Uint8Array(6 * 8192).map((_, i) => (i * 3) & 255);
  const dst = new Uint8Array(src.length);
  await dsa.batch([0, 1, 2, 3, 4, 5].map((i) => ({
    op: "memcpy" as const,
    dst: dst.subarray(i * 8192, (i + 1) * 8192),
    src: src.subarray(i * 8192, (i + 1) * 8192),
  })));
  assert.deepEqual(dst, src);
  assert.equal(portalCounters(dsa).sent, 6); // six descriptors, no BATCH
});

test("durable copies into a page-granularity mapping are persisted on the CPU after a DSA WQ", async () => {
  for (
    const [name, make] of [
      ["dsa", () => openTestPortal()],
      ["threads", () => new ThreadMover({ threads: 1, inlineThreshold: 0 })],
    ] as const
  ) {
    using mover = make();
    using map = mapFile(tempPath(), { size: 1 << 20, mover });
    assert.equal(map.granularity, "page");
    const data = new Uint8Array(100_000).fill(9);
    await map.memcpyAsync(0, data);
    await mover.memset(map.view(200_000, 8192), 1, VdmFlags.DURABLE);
    const persists = deviceStats(mover).cpuPersists;
    // a WQ cannot msync; the software device's engines do it themselves
    assert.equal(persists, name === "dsa" ? 2 : 0, name);
    assert.equal(map.view(99_999, 1)[0], 9);
  }
});

test("a completion on a DSA WQ wakes a sleeper at once (async and blocking)", async () => {
  // as the ThreadMover's: a 3 s sleep that times out was not woken by the
  // completion that should have woken it, and says so
  using dsa = openTestPortal({ engines: 1, maxTransfer: 8 << 20 });
  const dev = dsaMoverDevice(dsa);
  const src = new Uint8Array(8 << 20).fill(1);
  const dst = new Uint8Array(8 << 20);
  for (let i = 0; i < 20; i++) {
    const f = dsa.memcpy(dst, src);
    f.poll();
    for (;;) {
      const seq = dev.sequence();
      if (f.poll() === "complete") break;
      const woken = i % 2 === 0
        ? await dev.sleep(seq, 3000, 1)
        : dev.block(seq, 3000, 1);
      assert.equal(woken, true, `op ${i}: a sleep timed out`);
    }
  }
  // (no check of the device's lostWakeups: an operation polled by hand is
  // also driven by the executor, whose short sleeps on the device may
  // time out as a copy lands, which that count takes for a lost one; the
  // test's own sleeps, 3 s each, all woke)
});

test("operations polled in one sweep go out as one BATCH where the WQ takes it", async () => {
  const src = new Uint8Array(8 * 8192).map((_, i) => (i * 13) & 255);
  const copies = (mover: DsaMover | ThreadMover) => {
    const dst = new Uint8Array(src.length);
    const fs = [0, 1, 2, 3, 4, 5, 6, 7].map((i) =>
      mover.memcpy(
        dst.subarray(i * 8192, (i + 1) * 8192),
        src.subarray(i * 8192, (i + 1) * 8192),
      )
    );
    return { dst, fs };
  };
  {
    using dsa = openTestPortal({ engines: 1 });
    const { dst, fs } = copies(dsa);
    await all(fs); // one sweep polls all eight
    assert.deepEqual(dst, src);
    assert.equal(portalCounters(dsa).sent, 1);
    assert.equal(deviceStats(dsa).sweepBatches, 1);
    // polled by hand (no sweep), an operation starts at once, alone
    const one = copies(dsa);
    assert.equal(one.fs[0].poll(), "running");
    assert.equal(portalCounters(dsa).sent, 2);
    await all(one.fs);
    assert.deepEqual(one.dst, src);
    // a member that faults is resubmitted alone; a failing one fails
    // alone, the others complete
    injectFault(dsa, 1000, { count: 1 });
    const faulted = copies(dsa);
    await all(faulted.fs);
    assert.deepEqual(faulted.dst, src);
    const s = deviceStats(dsa);
    assert.equal(s.partialCompletions, 1);
    assert.equal(s.resubmissions, 1);
    injectFault(dsa, 0, { status: format.DsaStatus.HW_ERR1 });
    const failing = copies(dsa);
    const outcomes = await Promise.allSettled(
      failing.fs.map(async (f) => await f),
    );
    assert.equal(outcomes.filter((o) => o.status === "rejected").length, 1);
    assert.match(
      String(
        (outcomes.find((o) => o.status === "rejected") as {
          reason: Error;
        }).reason.message,
      ),
      /0x20 \(HW_ERR1\)/,
    );
  }
  // no BATCH on write(2), and the software device never gathers
  for (
    const mover of [
      openTestPortal({ mode: "write" }),
      new ThreadMover({ threads: 1, inlineThreshold: 0 }),
    ]
  ) {
    using m = mover;
    const { dst, fs } = copies(m);
    await all(fs);
    assert.deepEqual(dst, src);
    assert.equal(deviceStats(m).sweepBatches, 0);
  }
});
