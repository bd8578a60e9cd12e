// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
import {
  all,
  BaseMover,
  type BatchEntry,
  type CheckedOp,
  ClosedError,
  CpuMover,
  type Future,
  mapFile,
  NotSupportedError,
  PmemError,
  ThreadMover,
  VdmFlags,
  wait,
  waitAll,
} from "../mod.ts";
import {
  DsaDescriptor,
  DsaFlag,
  DsaOpcode,
  DsaRecord,
  DsaStatus,
} from "../mover/mod.ts";
import { native } from "../ffi/lib.ts";
import { type DeviceStats, deviceStats, injectFault } from "../testing/mod.ts";
import { threadMoverDevice } from "../mover/thread.ts";
import {
  assert,
  moverTest,
  rng,
  runScript,
  tempPath,
  test,
} from "./_harness.ts";

/** What `fn` added to the fault counters of `mover`'s device. */
async function faultCounts(
  mover: ThreadMover,
  fn: () => Promise<void>,
): Promise<
  Pick<DeviceStats, "partialCompletions" | "resubmissions" | "cpuFallbacks">
> {
  const before = deviceStats(mover);
  await fn();
  const after = deviceStats(mover);
  return {
    partialCompletions: after.partialCompletions - before.partialCompletions,
    resubmissions: after.resubmissions - before.resubmissions,
    cpuFallbacks: after.cpuFallbacks - before.cpuFallbacks,
  };
}

moverTest(
  "10 000 random memcpy/memmove/memset ops match a reference",
  async (mover) => {
    const size = 1 << 16;
    const buf = new Uint8Array(size);
    const ref = new Uint8Array(size);
    const pool = new Uint8Array(size).map((_, i) => (i * 131 + 7) & 255);
    const rand = rng(0xC0FFEE);
    const pick = (max: number) => Math.floor(rand() * max);
    for (let i = 0; i < 10_000; i++) {
      const kind = pick(3);
      const len = rand() < 0.05 ? pick(size / 2) : pick(9000);
      const dst = pick(size - len + 1);
      const flags = pick(4);
      let f: Future<void>;
      if (kind === 0) {
        const src = pick(size - len + 1);
        ref.set(pool.subarray(src, src + len), dst);
        f = mover.memcpy(
          buf.subarray(dst, dst + len),
          pool.subarray(src, src + len),
          flags,
        );
      } else if (kind === 1) {
        // overlapping in either direction most of the time
        const src = Math.min(size - len, Math.max(0, dst + pick(512) - 256));
        ref.copyWithin(dst, src, src + len);
        f = mover.memmove(
          buf.subarray(dst, dst + len),
          buf.subarray(src, src + len),
          flags,
        );
      } else {
        const v = pick(256);
        ref.fill(v, dst, dst + len);
        f = mover.memset(buf.subarray(dst, dst + len), v, flags);
      }
      if (i % 2) wait(f);
      else await f;
      if (i % 1000 === 999) assert.deepEqual(buf, ref, `after op ${i}`);
    }
    assert.deepEqual(buf, ref);
  },
  // 3-4 s on Bun for the DSA-portal movers on an idle 2-CPU machine: its
  // 5 s default timed out when other work shared the CPUs
  { timeout: 30_000 },
);

moverTest(
  "a batch aborted once started completes; aborted before, it writes nothing",
  (mover) => {
    // each part of a device batch carried the signal: an abort while some
    // waited for records failed the started batch with the abort's
    // reason, part of it written (2 of 8 copies on a 2-record device)
    const src = new Uint8Array(64 << 10).fill(5);
    const dsts = Array.from({ length: 8 }, () => new Uint8Array(64 << 10));
    const entries = dsts.map((dst) => ({ op: "memcpy" as const, dst, src }));
    const started = new AbortController();
    const b = mover.batch(entries, { signal: started.signal });
    b.poll();
    assert.notEqual(b.state, "idle");
    started.abort(new Error("aborted"));
    wait(b);
    assert.ok(dsts.every((d) => d[0] === 5 && d[d.length - 1] === 5));
    for (const d of dsts) d.fill(0);
    const early = new AbortController();
    const c = mover.batch(entries, { signal: early.signal });
    early.abort(new Error("aborted early"));
    assert.throws(() => wait(c), /aborted early/);
    assert.ok(dsts.every((d) => d.every((x) => x === 0)));
  },
);

moverTest("a batch entry's op is read once", (mover) => {
  // read twice, a getter answering "memcpy" to the check and "bogus" to
  // the rest got a batch that completed with nothing copied (an FFI
  // TypeError at its poll on Deno's device movers)
  let reads = 0;
  const dst = new Uint8Array(64 << 10);
  const src = new Uint8Array(64 << 10).fill(7);
  const entry = {
    get op() {
      return reads++ === 0 ? "memcpy" : "bogus";
    },
    dst,
    src,
  } as unknown as BatchEntry;
  const other = new Uint8Array(64 << 10);
  wait(mover.batch([entry, { op: "memset", dst: other, value: 1 }]));
  assert.equal(reads, 1);
  assert.deepEqual(dst, src);
  assert.equal(other[100], 1);
  assert.throws(
    () => mover.batch([{ op: 7 } as unknown as BatchEntry]),
    /unknown op number/,
  );
});

test("ThreadMover: operations polled by hand and dropped give their records back", async () => {
  // the device held a started operation's record until its future saw
  // the completion: dropped after a hand poll, it held it for good, and
  // once all were held no operation ever started again
  using mover = new ThreadMover({ threads: 1, inlineThreshold: 0, records: 4 });
  for (let i = 0; i < 4; i++) {
    const f = mover.memset(new Uint8Array(1 << 16), 1);
    assert.equal(f.poll(), "running");
  }
  const entries = [0, 1, 2].map(() => ({
    op: "memset" as const,
    dst: new Uint8Array(1 << 16),
    value: 1,
  }));
  const dropped = mover.batch(entries); // a BATCH: all 4 records
  const started = async () => {
    for (let i = 0; i < 200 && dropped.poll() !== "running"; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    return dropped.state;
  };
  assert.equal(await started(), "running");
  const dst = new Uint8Array(1 << 16);
  const f = mover.memset(dst, 2);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<string>((r) => {
    timer = setTimeout(() => r(`still ${f.state} after 5 s`), 5000);
  });
  try {
    assert.equal(await Promise.race([f.then(() => "done"), late]), "done");
  } finally {
    clearTimeout(timer);
  }
  assert.equal(dst[100], 2);
  assert.ok(entries.every((e) => e.dst[100] === 1));
});

test("ThreadMover: a started batch waiting for records is not failed by an abort", () => {
  for (const records of [2, 4]) {
    using mover = new ThreadMover({ threads: 2, inlineThreshold: 0, records });
    const src = new Uint8Array(1 << 20).fill(5);
    const dsts = Array.from({ length: 8 }, () => new Uint8Array(1 << 20));
    const ac = new AbortController();
    const b = mover.batch(dsts.map((dst) => ({ op: "memcpy", dst, src })), {
      signal: ac.signal,
    });
    b.poll();
    ac.abort(new Error("aborted"));
    wait(b);
    const written = dsts.filter((d) => d[0] === 5 && d[d.length - 1] === 5);
    assert.equal(written.length, 8, `records: ${records}`);
  }
});

moverTest("many futures awaited concurrently all complete", async (mover) => {
  const n = 300;
  const src = new Uint8Array(n * 4096).map((_, i) => i % 251);
  const dst = new Uint8Array(n * 4096);
  const fs: Future<void>[] = [];
  for (let i = 0; i < n; i++) {
    const a = i * 4096;
    fs.push(mover.memcpy(dst.subarray(a, a + 4096), src.subarray(a, a + 4096)));
  }
  await Promise.all(fs.map(async (f) => await f));
  assert.deepEqual(dst, src);
  dst.fill(0);
  const gs = [];
  for (let i = 0; i < n; i++) {
    const a = i * 4096;
    gs.push(mover.memset(dst.subarray(a, a + 4096), i & 255));
  }
  await all(gs);
  assert.ok(gs.every((g) => g.state === "complete"));
  for (let i = 0; i < n; i++) assert.equal(dst[i * 4096 + 100], i & 255);
  dst.fill(0);
  waitAll(
    Array.from({ length: 40 }, (_, i) =>
      mover.memcpy(
        dst.subarray(i * 100),
        src.subarray(i * 100, i * 100 + 100),
      )),
  );
  assert.deepEqual(dst.subarray(0, 4000), src.subarray(0, 4000));
});

moverTest(
  "flush and flags: DURABLE, NO_CACHE_HINT, capability query",
  async (mover) => {
    assert.equal(mover.supports(VdmFlags.DURABLE), true);
    assert.equal(mover.supports(VdmFlags.NO_CACHE_HINT), true); // miniasync said false
    assert.equal(
      mover.supports(VdmFlags.DURABLE | VdmFlags.NO_CACHE_HINT),
      true,
    );
    assert.equal(mover.supports(4), false);
    const src = new Uint8Array(100_000).map((_, i) => i & 255);
    const dst = new Uint8Array(100_000);
    for (const flags of [0, 1, 2, 3]) {
      dst.fill(0);
      await mover.memcpy(dst, src, flags);
      assert.deepEqual(dst, src);
      await mover.memset(dst, 9, flags);
      assert.ok(dst.every((b) => b === 9));
      await mover.flush(dst, flags);
    }
    await mover.flush(new Uint8Array(0));
    assert.throws(() => mover.memcpy(dst, src, 4), RangeError);
    assert.throws(() => mover.memcpy(dst, src, -1), RangeError);
    assert.throws(() => mover.memcpy(dst, src, 0.5), TypeError);
    assert.throws(() =>
      mover.memcpy(
        dst,
        src.subarray(0) as unknown as Uint8Array,
        "1" as unknown as number,
      ), TypeError);
  },
);

moverTest(
  "bad arguments throw TypeError/RangeError before any work",
  (mover) => {
    const a = new Uint8Array(10);
    assert.throws(
      () => mover.memcpy([1] as unknown as Uint8Array, a),
      TypeError,
    );
    assert.throws(
      () => mover.memcpy(a, new Uint16Array(2) as unknown as Uint8Array),
      TypeError,
    );
    assert.throws(() => mover.memcpy(a, new Uint8Array(11)), RangeError);
    assert.throws(() => mover.memmove(a, new Uint8Array(11)), RangeError);
    assert.throws(() => mover.memset(a, 256), RangeError);
    assert.throws(() => mover.memset(a, 1.5), RangeError);
    assert.throws(() => mover.memset(a, "1" as unknown as number), TypeError);
    assert.throws(() => mover.flush(null as unknown as Uint8Array), TypeError);
    assert.throws(() => mover.batch("x" as unknown as []), TypeError);
    assert.throws(() =>
      mover.batch([
        { op: "copy" } as unknown as { op: "flush"; dst: Uint8Array },
      ]), TypeError);
  },
);

moverTest("batch() runs every member", async (mover) => {
  const src = new Uint8Array(40 * 8192).map((_, i) => (i * 3) & 255);
  const dst = new Uint8Array(40 * 8192);
  const entries = [];
  for (let i = 0; i < 40; i++) {
    const a = i * 8192;
    entries.push(
      i % 3 === 0
        ? { op: "memset" as const, dst: dst.subarray(a, a + 8192), value: 0x5a }
        : {
          op: "memcpy" as const,
          dst: dst.subarray(a, a + 8192),
          src: src.subarray(a, a + 8192),
        },
    );
  }
  entries.push({ op: "flush" as const, dst } as never);
  await mover.batch(entries);
  for (let i = 0; i < 40; i++) {
    const a = i * 8192;
    if (i % 3 === 0) {
      assert.ok(dst.subarray(a, a + 8192).every((b) => b === 0x5a));
    } else {assert.deepEqual(
        dst.subarray(a, a + 8192),
        src.subarray(a, a + 8192),
      );}
  }
  await mover.batch([]);
  await mover.batch([{ op: "memset", dst, value: 1 }]);
  assert.equal(dst[dst.length - 1], 1);
});

moverTest("batch() copies at dstOffset into one large view", async (mover) => {
  const src = new Uint8Array(3 * 12288).map((_, i) => (i * 7 + 1) & 255);
  const dst = new Uint8Array(16 * 4096);
  const ref = new Uint8Array(dst.length);
  const entries = [];
  for (let i = 0; i < 3; i++) {
    const at = 5 + i * 20000;
    const piece = src.subarray(i * 12288, (i + 1) * 12288);
    ref.set(piece, at);
    entries.push({ op: "memcpy" as const, dst, dstOffset: at, src: piece });
  }
  // then a memmove within dst, onto an overlapping higher range (chunks
  // of threads-tight copy it backwards)
  const shifted = dst.subarray(30000, 30000 + 10000);
  entries.push({
    op: "memmove" as const,
    dst,
    dstOffset: 61000,
    src: src.subarray(0, 4000),
  });
  ref.set(src.subarray(0, 4000), 61000);
  await mover.batch(entries);
  assert.deepEqual(dst, ref);
  for (let i = 0; i < dst.length; i++) {
    dst[i] = ref[i] = (i * 13 + i / 256) & 255;
  }
  await mover.batch([{
    op: "memmove",
    dst,
    dstOffset: 30100,
    src: shifted,
  }]);
  ref.copyWithin(30100, 30000, 40000);
  assert.deepEqual(dst, ref);
  // The copy must fit dst from dstOffset; dstOffset is a size.
  const bad = (dstOffset: unknown) => () =>
    mover.batch([{
      op: "memcpy",
      dst,
      dstOffset: dstOffset as number,
      src: src.subarray(0, 16),
    }]);
  assert.throws(bad(dst.length - 15), RangeError);
  assert.throws(bad(-1), RangeError);
  assert.throws(bad(1.5), RangeError);
  assert.throws(bad("8"), TypeError);
  await mover.batch([{
    op: "memcpy",
    dst,
    dstOffset: dst.length - 16,
    src: src.subarray(0, 16),
  }]);
  assert.deepEqual(dst.subarray(dst.length - 16), src.subarray(0, 16));
});

moverTest("batch() copies from srcOffset of one large view", async (mover) => {
  const src = new Uint8Array(64 * 1024).map((_, i) => (i * 11 + 3) & 255);
  const dst = new Uint8Array(5 * 4096);
  const ref = new Uint8Array(dst.length);
  const entries = [];
  for (let i = 0; i < 5; i++) {
    const from = 1 + i * 12001;
    ref.set(src.subarray(from, from + 4096), i * 4096);
    entries.push({
      op: "memcpy" as const,
      dst,
      dstOffset: i * 4096,
      src,
      srcOffset: from,
      length: 4096,
    });
  }
  await mover.batch(entries);
  assert.deepEqual(dst, ref);
  // a memmove from an offset, and a length short of the source's end
  await mover.batch([{
    op: "memmove",
    dst,
    src,
    srcOffset: 100,
    length: 10,
  }]);
  assert.deepEqual(dst.subarray(0, 10), src.subarray(100, 110));
  assert.equal(dst[10], ref[10]);
  // the range must lie in src; srcOffset and length are sizes
  const bad = (srcOffset: unknown, length?: unknown) => () =>
    mover.batch([{
      op: "memcpy",
      dst,
      src,
      srcOffset: srcOffset as number,
      length: length as number,
    }]);
  assert.throws(bad(src.length - 15, 16), RangeError);
  assert.throws(bad(src.length + 1), RangeError);
  assert.throws(bad(-1, 4), RangeError);
  assert.throws(bad(0, 1.5), RangeError);
  assert.throws(bad("8", 4), TypeError);
  assert.throws(bad(0, dst.length + 1), RangeError); // does not fit dst
  await mover.batch([{ op: "memcpy", dst, src, srcOffset: src.length - 16 }]);
  assert.deepEqual(dst.subarray(0, 16), src.subarray(src.length - 16));
});

moverTest(
  "a buffer detached before the work runs fails the future with `TypeError`",
  async (mover) => {
    // the caller's error, as at the call (see detached_after_call_test.ts)
    const buf = new ArrayBuffer(65536);
    const f = mover.memset(new Uint8Array(buf), 1);
    buf.transfer(0);
    await assert.rejects(
      async () => await f,
      (e: unknown) =>
        e instanceof TypeError && !(e instanceof ClosedError) &&
        /dst is detached.*transferred/.test(e.message),
    );
  },
);

moverTest(
  "close(): later ops throw ClosedError; idle futures fail; running finish",
  async (mover, kind) => {
    const src = new Uint8Array(1 << 20).fill(3);
    const dsts = Array.from({ length: 8 }, () => new Uint8Array(1 << 20));
    const running = dsts.map((d) => mover.memcpy(d, src));
    for (const f of running) f.poll();
    const idle = mover.memcpy(new Uint8Array(8), src.subarray(0, 8));
    mover.close();
    mover.close();
    assert.equal(mover.closed, true);
    const started = running.filter((f) => f.state !== "idle");
    // the first op always starts (a record and a queue slot are free)
    assert.ok(started.length >= 1, `${kind.name}: nothing started`);
    await all(started);
    let finished = 0;
    for (let i = 0; i < dsts.length; i++) {
      if (running[i].state === "complete") {
        finished++;
        assert.equal(dsts[i][(1 << 20) - 1], 3, kind.name);
      } else {
        // never started: it fails once polled after the close
        await assert.rejects(async () => await running[i], ClosedError);
      }
    }
    assert.equal(finished, started.length, kind.name);
    await assert.rejects(async () => await idle, ClosedError);
    assert.throws(() => mover.memcpy(dsts[0], src), ClosedError);
    assert.throws(() => mover.batch([]), ClosedError);
  },
);

test("ThreadMover: a partial completion (page fault) is resubmitted, then finished on the CPU", async () => {
  using mover = new ThreadMover({ threads: 2, inlineThreshold: 0 });
  const src = new Uint8Array(65536).map((_, i) => (i * 7) & 255);
  // one fault: the remainder is resubmitted and the device finishes it;
  // two or more: the resubmission faults too and the CPU finishes it
  const expected = (count: number) => ({
    partialCompletions: count === 1 ? 1 : 2,
    resubmissions: 1,
    cpuFallbacks: count === 1 ? 0 : 1,
  });
  for (const count of [1, 2, 5]) {
    const dst = new Uint8Array(65536);
    injectFault(mover, 10_000, { count });
    const copied = await faultCounts(mover, async () => {
      await mover.memcpy(dst, src);
    });
    assert.deepEqual(dst, src, `count ${count}`);
    assert.deepEqual(copied, expected(count), `memcpy, count ${count}`);
    const fill = new Uint8Array(65536);
    injectFault(mover, 777, { count, write: false });
    const filled = await faultCounts(mover, async () => {
      await mover.memset(fill, 0xee);
    });
    assert.ok(fill.every((b) => b === 0xee));
    assert.deepEqual(filled, expected(count), `memset, count ${count}`);
    injectFault(mover, -1);
  }
  // overlapping memmove upward copies top-down: the fault leaves the top
  // done, and the resubmission copies the rest below it
  const buf = new Uint8Array(70000).map((_, i) => i & 255);
  const ref = buf.slice();
  ref.copyWithin(1000, 0, 60000);
  injectFault(mover, 5000);
  const moved = await faultCounts(mover, async () => {
    await mover.memmove(buf.subarray(1000, 61000), buf.subarray(0, 60000));
  });
  assert.deepEqual(buf, ref);
  assert.deepEqual(moved, expected(1));
});

test("ThreadMover: partial completions inside a batch are finished on the CPU", async () => {
  using mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
  const src = new Uint8Array(4 * 32768).map((_, i) => (i * 5) & 255);
  const dst = new Uint8Array(src.length);
  injectFault(mover, 3000, { count: 2 });
  const counts = await faultCounts(mover, async () => {
    await mover.batch([0, 1, 2, 3].map((i) => ({
      op: "memcpy" as const,
      dst: dst.subarray(i * 32768, (i + 1) * 32768),
      src: src.subarray(i * 32768, (i + 1) * 32768),
    })));
  });
  assert.deepEqual(dst, src);
  // members 0 and 1 faulted; the batch failed and the CPU finished them
  assert.deepEqual(counts, {
    partialCompletions: 2,
    resubmissions: 0,
    cpuFallbacks: 2,
  });
});

test("ThreadMover: partial completion of a copy at dstOffset is finished", async () => {
  using mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
  const src = new Uint8Array(65536).map((_, i) => (i * 11) & 255);
  const dst = new Uint8Array(3 * 65536);
  injectFault(mover, 5000, { count: 1 });
  const counts = await faultCounts(mover, async () => {
    await mover.batch([{ op: "memcpy", dst, dstOffset: 70001, src }]);
  });
  assert.deepEqual(dst.subarray(70001, 70001 + 65536), src);
  assert.equal(dst[70000], 0);
  assert.equal(dst[70001 + 65536], 0);
  assert.deepEqual(counts, {
    partialCompletions: 1,
    resubmissions: 1,
    cpuFallbacks: 0,
  });
});

test("ThreadMover: a failure status fails the future with a PmemError", async () => {
  using mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
  injectFault(mover, 0, { status: DsaStatus.HW_ERR1 });
  const f = mover.memcpy(new Uint8Array(8192), new Uint8Array(8192));
  await assert.rejects(
    async () => await f,
    (e: unknown) =>
      e instanceof PmemError && e.errno === 5 &&
      /0x20 \(HW_ERR1\)/.test(e.message),
  );
  await mover.memcpy(new Uint8Array(8192), new Uint8Array(8192)); // device still fine
});

test("ThreadMover: chunks larger than maxTransfer, both directions of overlap", async () => {
  using mover = new ThreadMover({
    threads: 2,
    inlineThreshold: 0,
    maxTransfer: 1000,
  });
  for (const shift of [333, -333]) {
    const buf = new Uint8Array(20000).map((_, i) => (i * 11) & 255);
    const ref = buf.slice();
    const d = 5000 + shift;
    ref.copyWithin(d, 5000, 15000);
    await mover.memmove(buf.subarray(d, d + 10000), buf.subarray(5000, 15000));
    assert.deepEqual(buf, ref, `shift ${shift}`);
  }
});

test("ThreadMover: a large batch nothing else waits for is split with the polling thread", async () => {
  // inline below 64 KiB, and polled alone below 64 times that (4 MiB)
  using mover = new ThreadMover({ threads: 2, inlineThreshold: 64 << 10 });
  const dev = threadMoverDevice(mover);
  const MB = 1 << 20;
  const src = new Uint8Array(8 * MB).map((_, i) => (i * 5 + 1) & 255);
  const dsts = Array.from({ length: 8 }, () => new Uint8Array(MB));
  const entries = dsts.map((dst, i) => ({
    op: "memcpy" as const,
    dst,
    src,
    srcOffset: i * MB,
    length: MB,
  }));
  // polled alone: the poller copies its share (the last members) at once
  let seq = dev.sequence();
  const f = mover.batch(entries);
  f.poll({ waitOn() {}, pollSoon() {}, pending: 1 });
  const last = dsts[7];
  assert.deepEqual(last.subarray(MB - 64), src.subarray(8 * MB - 64));
  await f;
  dsts.forEach((dst, i) =>
    assert.deepEqual(dst, src.subarray(i * MB, (i + 1) * MB))
  );
  assert.ok(dev.sequence() !== seq, "the engines took a share");
  // below 64 times the threshold, a batch polled alone is all copied by
  // the poller: a hand-off costs more than it saves
  for (const dst of dsts) dst.fill(0);
  seq = dev.sequence();
  const small = mover.batch(entries.slice(0, 3));
  assert.equal(
    small.poll({ waitOn() {}, pollSoon() {}, pending: 1 }),
    "complete",
  );
  assert.equal(dev.sequence(), seq, "no engine took a share");
  dsts.slice(0, 3).forEach((dst, i) =>
    assert.deepEqual(dst, src.subarray(i * MB, (i + 1) * MB))
  );
  // with other futures waiting on the poller, all go to the engines: the
  // result is the same
  for (const dst of dsts) dst.fill(0);
  const g = mover.batch(entries);
  g.poll({ waitOn() {}, pollSoon() {}, pending: 4 });
  await g;
  dsts.forEach((dst, i) =>
    assert.deepEqual(dst, src.subarray(i * MB, (i + 1) * MB))
  );
});

test("ThreadMover: options are validated", () => {
  assert.throws(() => new ThreadMover({ threads: 0 }), RangeError);
  assert.throws(() => new ThreadMover({ queueSize: 3 }), RangeError);
  assert.throws(() => new ThreadMover({ records: 0 }), RangeError);
  assert.throws(() => new ThreadMover({ maxTransfer: 0 }), RangeError);
  assert.throws(() => new ThreadMover({ threads: 1.5 }), RangeError);
  assert.throws(() => new ThreadMover(null as unknown as object), TypeError);
  using m = new ThreadMover({
    threads: 1,
    queueSize: 8,
    records: 16,
    batchLists: 1,
  });
  assert.equal(m.info.threads, 1);
  assert.equal(m.info.queueSize, 8);
  assert.equal(m.info.records, 16);
  assert.equal(m.info.maxTransfer, 2 ** 21);
  assert.equal(m.info.genCap & 0x100, 0x100); // DRDBK advertised
});

test("ThreadMover: a completion wakes a sleeper at once (async and blocking)", async () => {
  // Each sleep is given 3 s, far longer than the 8 MiB copy it waits
  // for: a sleep that runs into its timeout was not woken by the
  // completion that should have woken it, and says so (false).
  using mover = new ThreadMover({
    threads: 1,
    inlineThreshold: 0,
    maxTransfer: 8 << 20, // one descriptor per copy
  });
  const dev = threadMoverDevice(mover);
  const src = new Uint8Array(8 << 20).fill(1);
  const dst = new Uint8Array(8 << 20);
  let slept = 0;
  for (let i = 0; i < 40; i++) {
    const f = mover.memcpy(dst, src);
    f.poll(); // submitted: its completion will move the sequence
    // the executor's protocol: read the sequence, then check, then sleep
    // (a sleeper may be woken early, never late)
    for (;;) {
      const seq = dev.sequence();
      if (f.poll() === "complete") break;
      const start = performance.now();
      const woken = i % 2 === 0
        ? await dev.sleep(seq, 3000, 1)
        : dev.block(seq, 3000, 1);
      const took = performance.now() - start;
      slept++;
      assert.equal(woken, true, `op ${i}: timed out after ${took} ms`);
      assert.ok(took < 1500, `op ${i}: a sleep took ${took} ms`);
    }
  }
  assert.ok(slept >= 20, `only ${slept} sleeps`);
  assert.equal(deviceStats(mover).lostWakeups, 0);
});

test(
  "ThreadMover: no lost wake-up over 2000 sleeps of the executor",
  async () => {
    // one worker and 8 MiB copies: each op outlasts the executor's spin, so
    // every wait ends in a sleep that only a completion signal should end;
    // a sleep that times out although its completion came is counted lost
    using mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
    // The executor sleeps 10 ms (wait()) or 50 ms (await) at a time. Under
    // load a 2 MiB descriptor can outlast that, and a completion that lands
    // between such an honest timeout and the device's look at the sequence
    // is counted lost too (CI-like load: 3 runs in 16). So each of the
    // executor's sleeps is given 3 s here: its protocol is unchanged, and
    // a sleep that still times out was ended by no completion although one
    // was due (lost, or slept for a sequence no completion reaches).
    const dev = threadMoverDevice(mover);
    const { block, sleep } = dev;
    let timedOut = 0;
    dev.block = (seq, _timeoutMs, waiting) => {
      const woken = block.call(dev, seq, 3000, waiting);
      if (!woken) timedOut++;
      return woken;
    };
    dev.sleep = async (seq, _timeoutMs, waiting) => {
      const woken = await sleep.call(dev, seq, 3000, waiting);
      if (!woken) timedOut++;
      return woken;
    };
    const src = new Uint8Array(8 << 20).fill(1);
    const dst = new Uint8Array(8 << 20);
    for (let i = 0; i < 1000; i++) {
      await mover.memcpy(dst, src);
      wait(mover.memset(dst, i & 255));
      const lost = deviceStats(mover).lostWakeups;
      assert.equal(lost, 0, `${lost} wake-up(s) lost by op ${2 * i + 1}`);
      assert.equal(
        timedOut,
        0,
        `${timedOut} sleep(s) timed out by op ${2 * i + 1}`,
      );
    }
    assert.equal(dst[1000], 999 & 255);
    const stats = deviceStats(mover);
    assert.ok(stats.sleeps >= 2000, `only ${stats.sleeps} sleeps`);
  },
  {
    // 1-2 s on an idle machine; 4-10 s beside two CPU hogs, where Bun's
    // 5 s default timed out (5 runs in 6 without bun test's --timeout)
    timeout: 60_000,
  },
);

test("ThreadMover: a device with a sleep pending is freed only after it returns", async () => {
  // On Deno a sleep is a native wait queued on the runtime's blocking
  // pool; it may start after close() returned, so it must still find the
  // device there.
  const mover = new ThreadMover({ threads: 1 });
  const dev = threadMoverDevice(mover);
  const pending = dev.sleep(dev.sequence(), 2000, 1);
  mover.close();
  assert.equal(dev.freed, false);
  await pending;
  assert.equal(dev.freed, true);
  const idle = new ThreadMover({ threads: 1 });
  idle.close();
  assert.equal(threadMoverDevice(idle).freed, true);
});

test("ThreadMover: closing devices with sleeps in flight never crashes", () => {
  const r = runScript(`
    import { ThreadMover } from "@root/mod.ts";
    import { threadMoverDevice } from "@root/mover/thread.ts";
    for (let i = 0; i < 200; i++) {
      const mover = new ThreadMover({ threads: 1, records: 8192 });
      const dev = threadMoverDevice(mover);
      const p = dev.sleep(dev.sequence(), 1000, 1);
      mover.close();
      await p;
    }
    console.log("done");
  `);
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /done/);
});

test("ThreadMover: a small array keeps what a worker wrote when its storage is materialized", async () => {
  // One worker, busy with a long fill, while a 16-byte fill into a fresh
  // array waits behind it in the queue. Reading the array's .buffer
  // then makes the engine move a small array's bytes to a new store
  // (JavaScriptCore does; V8 for arrays up to 64 bytes): the worker must
  // write where the array's bytes are, so submission pins them first.
  using mover = new ThreadMover({
    threads: 1,
    inlineThreshold: 0,
    maxTransfer: 64 << 20,
  });
  for (let i = 0; i < 20; i++) {
    const big = new Uint8Array(32 << 20);
    const long = mover.memset(big, 1);
    long.poll();
    const small = new Uint8Array(16);
    const fill = mover.memset(small, 7 + i);
    fill.poll();
    const buffer = small.buffer; // materialize it (after submission)
    await all([long, fill]);
    assert.deepEqual([...small], new Array(16).fill(7 + i), `round ${i}`);
    assert.equal(new Uint8Array(buffer)[15], 7 + i);
  }
});

test(
  "closing a mapping on the thread whose batch found the queue full never hangs",
  async () => {
    // The queue (2 slots) is full behind a busy worker when the batch is
    // polled: it wrote its members (taking references on the mapping),
    // got EAGAIN, and waits for a later poll. close() on this thread must
    // not wait for that poll, which cannot come while it waits.
    using mover = new ThreadMover({
      threads: 1,
      queueSize: 2,
      inlineThreshold: 0,
      maxTransfer: 64 << 20,
    });
    const fills = [0, 1, 2].map(() => new Uint8Array(64 << 20));
    // The scene needs the worker busy while the batch is polled. The
    // worker frees a slot when it takes a fill, so the first fill goes
    // alone and the test waits until the worker has surely taken it: a
    // fresh 64 MiB array, whose pages the worker faults in one by one,
    // keeps it busy for tens of milliseconds. Only then is the queue
    // filled. A preempted test thread can still miss the scene, so it is
    // built again if so.
    for (let attempt = 1;; attempt++) {
      const map = mapFile(tempPath(), { size: 1 << 20 });
      const first = mover.memset(new Uint8Array(64 << 20), attempt);
      first.poll();
      await new Promise((resolve) => setTimeout(resolve, 2));
      // fill the queue: submit long fills until one finds no room
      const busy = [first];
      for (const dst of fills) {
        const f = mover.memset(dst, attempt);
        busy.push(f);
        if (f.poll() === "idle") break;
      }
      const batch = mover.batch([
        { op: "memset", dst: map.view(0, 4096), value: 1 },
        { op: "memset", dst: map.view(4096, 4096), value: 2 },
      ]);
      if (batch.poll() !== "idle" && attempt < 20) {
        await all([...busy, batch]);
        map.close();
        continue;
      }
      assert.equal(batch.state, "idle", "the queue was never full");
      const start = performance.now();
      map.close();
      assert.ok(performance.now() - start < 5000);
      await all(busy);
      // polled again, the batch finds its buffers detached and fails
      await assert.rejects(async () => await batch, /detached/);
      break;
    }
  },
  { timeout: 30_000 },
);

test("a custom mover built on BaseMover refuses flags beyond its capabilities", async () => {
  // a mover that honours no flag: every op goes to an inner CPU mover
  let ran = 0;
  class Plain extends BaseMover {
    #inner = new CpuMover();
    constructor() {
      super("Plain", "plain", 0);
    }
    get closed(): boolean {
      return this.#inner.closed;
    }
    protected run(op: CheckedOp): Future<void> {
      ran++;
      return op.op === "memset"
        ? this.#inner.memset(op.dst, op.value)
        : op.op === "flush"
        ? this.#inner.flush(op.dst)
        : this.#inner.memmove(op.dst, op.src!);
    }
    protected runBatch(ops: CheckedOp[]): Future<void> {
      ran += ops.length;
      return this.#inner.batch(
        ops.map((op) => ({ op: "memset" as const, dst: op.dst, value: 0 })),
      );
    }
    close(): void {
      this.#inner.close();
    }
  }
  using mover = new Plain();
  assert.equal(mover.name, "plain");
  assert.equal(mover.capabilities, 0);
  assert.equal(mover.supports(0), true);
  assert.equal(mover.supports(VdmFlags.DURABLE), false);
  const buf = new Uint8Array(8);
  for (const flags of [VdmFlags.DURABLE, VdmFlags.NO_CACHE_HINT]) {
    assert.throws(
      () => mover.memcpy(buf, buf, flags),
      (e: unknown) =>
        e instanceof NotSupportedError && e.errno === 95 &&
        e.op === "memcpy" && /the plain mover does not support/.test(e.message),
    );
    assert.throws(
      () => mover.batch([{ op: "memset", dst: buf, value: 1, flags }]),
      NotSupportedError,
    );
  }
  assert.equal(ran, 0); // refused before the mover's hooks ran
  await mover.memset(buf, 3);
  assert.deepEqual([...buf], [3, 3, 3, 3, 3, 3, 3, 3]);
  assert.equal(ran, 1);
  mover.close();
  assert.throws(() => mover.memset(buf, 1), ClosedError);
});

test("a custom mover that does not take dstOffset gets views instead", () => {
  const seen: CheckedOp[] = [];
  class Recording extends BaseMover {
    #inner = new CpuMover();
    constructor() {
      super("Recording", "recording", 0);
    }
    get closed(): boolean {
      return this.#inner.closed;
    }
    protected run(op: CheckedOp): Future<void> {
      return this.runBatch([op]);
    }
    protected runBatch(ops: CheckedOp[]): Future<void> {
      seen.push(...ops);
      // forwards dst alone, as a mover written before dstOffset would
      return this.#inner.batch(
        ops.map((op) => ({ op: "memcpy", dst: op.dst, src: op.src! })),
      );
    }
    close(): void {
      this.#inner.close();
    }
  }
  using mover = new Recording();
  const dst = new Uint8Array(64);
  wait(mover.batch([{
    op: "memcpy",
    dst,
    dstOffset: 40,
    src: new Uint8Array([1, 2, 3]),
  }]));
  assert.deepEqual([...dst.subarray(39, 44)], [0, 1, 2, 3, 0]);
  assert.equal(seen[0].dstOffset, 0);
  assert.equal(seen[0].dst.byteOffset, 40);
  assert.equal(seen[0].dst.length, 3);
});

test("DSA layouts and constants match <linux/idxd.h>", () => {
  const out = new Uint32Array(64);
  const n = native.ap_dsa_layout(out, 64);
  const expected = [
    DsaDescriptor.SIZE,
    DsaDescriptor.COMPLETION_ADDR,
    DsaDescriptor.SRC_ADDR,
    DsaDescriptor.DST_ADDR,
    DsaDescriptor.XFER_SIZE,
    DsaDescriptor.INT_HANDLE,
    DsaRecord.SIZE,
    DsaRecord.STATUS,
    DsaRecord.RESULT,
    DsaRecord.BYTES_COMPLETED,
    DsaRecord.FAULT_ADDR,
    DsaRecord.INVALID_FLAGS,
    DsaOpcode.MEMMOVE,
    DsaOpcode.MEMFILL,
    DsaOpcode.CFLUSH,
    DsaOpcode.BATCH,
    DsaOpcode.NOOP,
    DsaOpcode.DRAIN,
    DsaFlag.COMPLETION_ADDR_VALID,
    DsaFlag.REQUEST_COMPLETION,
    DsaFlag.CACHE_CONTROL,
    DsaFlag.DEST_READBACK,
    DsaFlag.FENCE,
    DsaStatus.SUCCESS,
    DsaStatus.PAGE_FAULT_NOBOF,
    DsaStatus.BATCH_FAIL,
    0x80,
  ];
  assert.equal(n, expected.length);
  assert.deepEqual([...out.subarray(0, n)], expected);
});
