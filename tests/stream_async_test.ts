// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The log store's asynchronous side, on every mover: appends in flight
// from one thread, group persists, waits, following iterators.
import {
  all,
  CpuMover,
  type Future,
  PmemError,
  wait,
  waitAll,
} from "../mod.ts";
import { BaseMover, type CheckedOp } from "../mover/mod.ts";
import type { PersistTracer } from "../pmem2/tracer.ts";
import { type AppendFuture, LogStream } from "../stream/mod.ts";
import { createStreamWith, streamMedia } from "../stream/stream.ts";
import { ENTRY_HEADER, entryTotal } from "../stream/layout.ts";
import { hasWholeBuffer } from "../pmem2/mapping_access.ts";
import {
  assert,
  countingThreadMover,
  moverTest,
  RUNTIME,
  tempPath,
  test,
} from "./_harness.ts";

const MiB = 1 << 20;

function payload(i: number, length: number): Uint8Array {
  const b = new Uint8Array(length);
  for (let j = 0; j < length; j++) b[j] = (i * 31 + j * 7) & 0xff;
  return b;
}

/** A tracer that counts fences (each is one persist). */
function fenceCounter(): PersistTracer & { fences: number } {
  const t = {
    fences: 0,
    flush() {},
    drain() {
      t.fences++;
    },
  };
  return t;
}

moverTest(
  "many `appendAsync()` in flight from one thread commit in timestamp order",
  async (mover) => {
    using s = LogStream.create(tempPath(), { size: 8 * MiB, mover });
    const regions = [
      s.allocateRegion(MiB),
      s.allocateRegion(MiB),
      s.allocateRegion(MiB),
    ];
    const futures: AppendFuture[] = [];
    for (let i = 0; i < 300; i++) {
      futures.push(
        s.appendAsync(regions[i % 3], payload(i, 1 + (i * 53) % 2000)),
      );
    }
    const stamps = await all(futures);
    assert.deepEqual(
      stamps,
      futures.map((f) => f.timestamp),
    );
    for (let i = 1; i < stamps.length; i++) {
      assert.equal(stamps[i], stamps[i - 1] + 1);
    }
    assert.equal(s.persistedTimestamp, stamps[stamps.length - 1]);
    regions.forEach((r, k) => {
      const es = [...s.entries(r)];
      assert.equal(es.length, 100);
      es.forEach((e, j) => {
        const i = 3 * j + k;
        assert.equal(e.timestamp, stamps[i]);
        assert.deepEqual(e.data, payload(i, 1 + (i * 53) % 2000));
      });
    });
  },
);

moverTest(
  "appends completing together are persisted with one fence",
  async (mover) => {
    const tracer = fenceCounter();
    using s = createStreamWith(tempPath(), { size: 8 * MiB, mover }, {
      tracer,
    });
    const r = s.allocateRegion(4 * MiB);
    s.append(r, payload(0, 100)); // the first raises the timestamp bound
    let before = tracer.fences;
    for (let i = 0; i < 32; i++) s.append(r, payload(i, 100));
    assert.equal(tracer.fences - before, 32, "a sync append is one persist");
    before = tracer.fences;
    await all(
      Array.from({ length: 32 }, (_, i) => s.appendAsync(r, payload(i, 100))),
    );
    const fences = tracer.fences - before;
    assert.ok(
      fences >= 1 && fences <= 4,
      `${fences} fences for 32 async appends`,
    );
  },
);

moverTest(
  "`appendAsync()` copies through the stream's mover",
  async (mover) => {
    class Counting extends BaseMover {
      batches = 0;
      copies = 0;
      constructor() {
        super("Counting", "counting", 0);
      }
      get closed(): boolean {
        return mover.closed;
      }
      protected run(): Future<void> {
        throw new Error("unused");
      }
      protected runBatch(ops: CheckedOp[]): Future<void> {
        this.batches++;
        this.copies += ops.length;
        return mover.batch(
          ops.map((op) => ({
            op: "memcpy" as const,
            dst: op.dst,
            src: op.src!,
          })),
        );
      }
      close(): void {}
    }
    const counting = new Counting();
    using s = LogStream.create(tempPath(), { size: 4 * MiB, mover: counting });
    const r = s.allocateRegion(MiB);
    await all(
      Array.from({ length: 16 }, (_, i) => s.appendAsync(r, payload(i, 64))),
    );
    assert.equal(counting.copies, 16);
    assert.ok(
      counting.batches >= 1 && counting.batches <= 2,
      `${counting.batches} batches`,
    );
    assert.equal(s.mover, counting);
    assert.deepEqual(
      [...s.entries(r)].map((e) => e.data[5]),
      Array.from({ length: 16 }, (_, i) => payload(i, 64)[5]),
    );
  },
);

moverTest(
  "a committed-level append is visible at once and durable after `waitPersisted()`",
  async (mover) => {
    using s = LogStream.create(tempPath(), { size: 4 * MiB, mover });
    const r = s.allocateRegion(MiB);
    s.append(r, payload(0, 8));
    const ts = await s.appendAsync(r, payload(1, 8), { level: "committed" });
    assert.ok(s.committedTimestamp >= ts);
    assert.equal(s.persistedTimestamp, ts - 1, "nothing persisted it yet");
    assert.equal([...s.entries(r)].length, 2);
    await s.waitPersisted(ts);
    assert.equal(s.persistedTimestamp, ts);
  },
);

moverTest(
  "waits resolve for timestamps committed later, and followers wake on appends",
  async (mover) => {
    using s = LogStream.create(tempPath(), { size: 4 * MiB, mover });
    const r = s.allocateRegion(MiB);
    const other = s.allocateRegion(MiB);
    const first = s.append(r, payload(0, 10));
    // a wait names a reserved timestamp (one beyond is refused at once)
    assert.throws(() => s.waitPersisted(first + 3), RangeError);
    const pending = s.appendAsync(r, payload(1, 10)); // not copied yet
    const later = s.waitPersisted(pending.timestamp);
    const seen: number[] = [];
    const controller = new AbortController();
    const following = (async () => {
      for await (
        const e of s.follow(r, { from: first + 1, signal: controller.signal })
      ) {
        seen.push(e.timestamp);
        if (seen.length === 3) controller.abort();
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual(seen, [], "the follower waits");
    assert.equal(later.done, false);
    const a = await pending;
    s.append(other, payload(2, 10));
    const b = s.append(r, payload(3, 10));
    await later;
    const c = await s.appendAsync(r, payload(4, 10));
    await following;
    assert.deepEqual(seen, [a, b, c]);
    await s.waitCommitted(c);
  },
);

moverTest(
  "a synchronous append drives earlier async appends nobody awaited",
  (mover) => {
    using s = LogStream.create(tempPath(), { size: 4 * MiB, mover });
    const r = s.allocateRegion(MiB);
    const pending = Array.from(
      { length: 10 },
      (_, i) => s.appendAsync(r, payload(i, 300)),
    );
    const ts = s.append(r, payload(99, 10));
    assert.equal(ts, pending[9].timestamp + 1);
    assert.ok(pending.every((f) => f.state === "complete"));
    assert.equal([...s.entries(r)].length, 11);
  },
);

moverTest(
  "an aborted append leaves padding, never a gap, and later ones commit",
  async (mover) => {
    using s = LogStream.create(tempPath(), { size: 4 * MiB, mover });
    const r = s.allocateRegion(MiB);
    const controller = new AbortController();
    const doomed = s.appendAsync(r, payload(1, 50), {
      signal: controller.signal,
    });
    const kept = s.appendAsync(r, payload(2, 50));
    controller.abort(new Error("no"));
    await assert.rejects(async () => await doomed, /no/);
    assert.equal(await kept, doomed.timestamp + 1);
    const es = [...s.entries(r)];
    assert.deepEqual(es.map((e) => e.timestamp), [kept.timestamp]);
    assert.equal(s.committedTimestamp, kept.timestamp);
  },
);

moverTest(
  "a small in-flight ring applies back-pressure without losing appends",
  async (mover) => {
    using s = LogStream.create(tempPath(), {
      size: 4 * MiB,
      mover,
      maxInFlight: 8,
    });
    const r = s.allocateRegion(2 * MiB);
    const futures = Array.from(
      { length: 100 },
      (_, i) => s.appendAsync(r, payload(i, 40)),
    );
    await all(futures);
    assert.equal([...s.entries(r)].length, 100);
    for (let i = 0; i < 20; i++) {
      s.append(r, payload(i, 40));
    }
    assert.equal(s.persistedTimestamp, s.committedTimestamp);
  },
);

test("`close()` finishes appends in flight; the reopened stream has them all", () => {
  const path = tempPath();
  const s = LogStream.create(path, { size: 4 * MiB, mover: new CpuMover() });
  const r = s.allocateRegion(MiB);
  const futures = Array.from(
    { length: 20 },
    (_, i) => s.appendAsync(r, payload(i, 77)),
  );
  s.close();
  assert.ok(futures.every((f) => f.state === "complete"));
  using t = LogStream.open(path);
  const [rr] = t.regions();
  assert.equal([...t.entries(rr)].length, 20);
  assert.equal(t.recovery.wrote, false);
  // a waiting future of a closed stream fails instead of touching it
  t.close();
  assert.throws(() => wait(t.waitCommitted(1)), /closed/);
});

test("`freeRegion()` refuses a region with appends in flight, then frees it once they are done", async () => {
  using s = LogStream.create(tempPath(), { size: 4 * MiB });
  const r = s.allocateRegion(MiB);
  // a reservation: an appendAsync not yet polled is given up instead
  // (its copy has not started; tests/stream_review4_test.ts)
  const res = s.reserve(r, 10);
  assert.throws(
    () => s.freeRegion(r),
    (e) => e instanceof PmemError && e.code === -16,
  );
  assert.equal(r.freed, false);
  s.publish(res);
  await s.appendAsync(r, payload(1, 10));
  s.freeRegion(r);
  assert.equal(r.freed, true);
});

test("an append left unpolled after it persisted does not hide the owner of a later timestamp in its ring slot", () => {
  using s = LogStream.create(tempPath(), {
    size: 4 * MiB,
    mover: new CpuMover(),
    maxInFlight: 4,
  });
  const r = s.allocateRegion(MiB);
  const a = s.appendAsync(r, payload(1, 10));
  const b = s.appendAsync(r, payload(2, 10));
  a.poll(); // queued
  b.poll(); // queued
  a.poll(); // copies both, commits and persists both: a settles
  assert.equal(a.state, "complete");
  assert.equal(s.persistedTimestamp, b.timestamp);
  assert.equal(b.state, "running"); // persisted, not yet told
  for (let i = 0; i < 3; i++) s.append(r, payload(3 + i, 10));
  // a later append in b's slot of the ring (maxInFlight apart)
  const c = s.appendAsync(r, payload(9, 10));
  assert.equal(c.timestamp, b.timestamp + 4);
  assert.equal(wait(b), b.timestamp); // b settles: c still owns its slot
  // a wait behind c finds c as the owner of the blocking timestamp and
  // drives it; without an owner it would stay pending
  const w = s.waitPersisted(c.timestamp);
  for (let i = 0; i < 8 && !w.done; i++) w.poll();
  assert.equal(w.state, "complete");
  assert.equal(c.state, "complete");
});

test("`waitCommitted()`/`waitPersisted()` refuse at once a timestamp never reserved, and wait for every reserved one", async () => {
  const path = tempPath();
  {
    using s = LogStream.create(path, { size: MiB });
    const never =
      /timestamp 1000 was never reserved \(the last reserved is 0\)/;
    // a synchronous wait for these would block the event loop for ever
    assert.throws(() => s.waitCommitted(1000), RangeError);
    assert.throws(() => s.waitCommitted(1000), never);
    assert.throws(() => s.waitPersisted(1000), never);
    assert.throws(
      () => s.waitCommitted(1000, { signal: AbortSignal.timeout(200) }),
      never,
    );
    assert.throws(() => s.waitPersisted(1), /last reserved is 0/);
    wait(s.waitCommitted(0));
    const r = s.allocateRegion(64 << 10);
    assert.equal(s.append(r, new Uint8Array(8)), 1);
    wait(s.waitPersisted(1));
    // a reservation not yet published counts: its timestamp is taken
    const res = s.reserve(r, 8);
    assert.equal(res.timestamp, 2);
    const committed = s.waitCommitted(2);
    assert.throws(
      () => s.waitCommitted(3),
      /never reserved.*last reserved is 2/,
    );
    s.publish(res);
    await committed;
    const f = s.appendAsync(r, new Uint8Array(8));
    const persisted = s.waitPersisted(f.timestamp);
    await Promise.all([f, persisted]);
    assert.equal(s.persistedTimestamp, 3);
  }
  // a reopened stream's timestamps start above the bound R: the ones up
  // to it count as reserved (and committed)
  using s = LogStream.open(path);
  wait(s.waitPersisted(3));
  assert.throws(() => s.waitCommitted(4), /last reserved is 3/);
  const [r] = s.regions();
  const ts = s.append(r, new Uint8Array(1));
  wait(s.waitCommitted(ts));
  assert.throws(() => s.waitCommitted(ts + 1), RangeError);
});

moverTest(
  "a stream of several view windows: entries across window strides, appended every way, read, reopened and truncated",
  async (mover) => {
    // 160 MiB: on Bun, past the size one buffer may view (`VIEW_WINDOWS`),
    // so the store sees the stream through windows of 4 MiB every 2 MiB.
    // Entries of up to 1.1 MiB straddle 2 and 4 MiB boundaries (the ends
    // of odd and even windows); 2.5 MiB ones are longer than a stride.
    const size = 160 * MiB;
    const stride = 2 * MiB;
    const even = 4 * MiB; // an even window's end (on Bun)
    const path = tempPath();
    const lengths = [100, 1126 * 1024, 5000, 700 * 1024, 1, 333_333, 0];
    const bigLength = stride + MiB / 2;
    const data = (i: number, n: number) => {
      const out = new Uint8Array(n);
      for (let j = 0; j < n; j++) out[j] = i * 13 + j * 7 + (j >>> 12);
      return out;
    };
    type Want = { ts: number; data: Uint8Array };
    const small: Want[] = [];
    const big: Want[] = [];
    const kinds = ["append", "reserve", "appendAsync"] as const;
    /** Kinds whose entries crossed an even window's end. */
    const crossed = new Set<string>();
    {
      using s = LogStream.create(path, { size, mover });
      const media = streamMedia(s);
      assert.equal(media.whole === undefined, RUNTIME === "bun");
      s.allocateRegion(MiB + 12 * 4096); // later regions start off a stride
      const r = s.allocateRegion(64 * MiB);
      const rb = s.allocateRegion(12 * MiB);
      const base = LogStream.inspect(path).regions
        .find((x) => x.size === 64 * MiB)!.offset;
      assert.ok(base % stride !== 0);
      let at = base; // where the next entry of r goes (no wrap yet)
      let i = 0;
      for (let round = 0; round < 12; round++) {
        for (let k = 0; k < kinds.length; k++) {
          const fs: AppendFuture[] = [];
          const mine: Want[] = [];
          for (let j = 0; j < lengths.length; j++) {
            if ((round * lengths.length + j) % 3 !== k) continue;
            const n = lengths[j];
            const d = data(i++, n);
            const from = at + ENTRY_HEADER;
            if (
              n > 0 &&
              Math.floor(from / even) !== Math.floor((from + n - 1) / even)
            ) {
              crossed.add(kinds[k]);
            }
            at += entryTotal(n);
            const w: Want = { ts: 0, data: d };
            mine.push(w);
            if (k === 0) w.ts = s.append(r, d);
            else if (k === 1) {
              const res = s.reserve(r, n);
              res.data.set(d);
              w.ts = s.publish(res);
            } else fs.push(s.appendAsync(r, d));
          }
          if (k === 2) {
            const stamps = await all(fs);
            mine.forEach((w, m) => (w.ts = stamps[m]));
          }
          small.push(...mine);
        }
      }
      assert.equal(r.used, at - base);
      assert.deepEqual([...crossed].sort(), [...kinds].sort());
      // entries longer than a stride, synchronously and asynchronously
      for (let m = 0; m < 4; m++) {
        const d = data(1000 + m, bigLength);
        const ts = m % 2 === 0 ? s.append(rb, d) : await s.appendAsync(rb, d);
        big.push({ ts, data: d });
      }
      // no view so far needed a buffer of the whole stream on Bun
      assert.equal(hasWholeBuffer(media.mapping), RUNTIME !== "bun");
      const es = [...s.entries(r)];
      assert.equal(es.length, small.length);
      es.forEach((e, m) => {
        assert.equal(e.timestamp, small[m].ts);
        assert.deepEqual(e.data, small[m].data, `entry ${m}`);
      });
      let m = 0;
      for await (const e of s.follow(r)) {
        assert.equal(e.timestamp, small[m].ts);
        assert.deepEqual(e.data, small[m].data, `followed ${m}`);
        if (++m === small.length) break;
      }
      // reading them made windows only (odd ones for the straddlers)
      assert.equal(hasWholeBuffer(media.mapping), RUNTIME !== "bun");
      const bs = [...s.entries(rb)];
      assert.deepEqual(bs.map((e) => e.timestamp), big.map((w) => w.ts));
      bs.forEach((e, m) => assert.deepEqual(e.data, big[m].data));
      // truncate half, append until the region wraps, entries across
      // windows again
      const cut = small[Math.floor(small.length / 2)].ts;
      s.truncate(r, cut);
      small.splice(0, small.length / 2 + 1);
      for (let m = 0; r.used + 2 * MiB < 64 * MiB; m++) {
        const d = data(2000 + m, lengths[m % lengths.length]);
        const ts = m % 2 === 0 ? s.append(r, d) : await s.appendAsync(r, d);
        small.push({ ts, data: d });
      }
    }
    {
      using s = LogStream.open(path, { mover });
      const [, r, rb] = s.regions();
      const es = [...s.entries(r)];
      assert.deepEqual(es.map((e) => e.timestamp), small.map((w) => w.ts));
      es.forEach((e, m) => assert.deepEqual(e.data, small[m].data, `${m}`));
      const bs = [...s.entries(rb)];
      bs.forEach((e, m) => assert.deepEqual(e.data, big[m].data));
      const cut = small[small.length - 5].ts;
      s.truncate(r, cut);
      assert.deepEqual(
        [...s.entries(r)].map((e) => e.timestamp),
        small.slice(-4).map((w) => w.ts),
      );
      const d = data(3000, 1126 * 1024);
      const ts = await s.appendAsync(r, d);
      const last = [...s.entries(r)].at(-1)!;
      assert.equal(last.timestamp, ts);
      assert.deepEqual(last.data, d);
    }
  },
);

test("small appendAsync sweeps of a ThreadMover below its inline threshold skip its batch", () => {
  // as with a CpuMover, the copies are made by the stream at the sweep;
  // above the threshold they go to the mover's batch
  for (const [threshold, batches] of [[1 << 20, 0], [0, 1]] as const) {
    const { mover, batches: calls } = countingThreadMover(threshold);
    using _mover = mover;
    using s = LogStream.create(tempPath(), { size: 1 << 20, mover });
    const r = s.allocateRegion(256 << 10);
    const fs = Array.from(
      { length: 32 },
      (_, i) => s.appendAsync(r, new Uint8Array(100).fill(i)),
    );
    waitAll(fs);
    const got = [...s.entries(r)].map((e) => e.data[0]);
    assert.deepEqual(got, Array.from({ length: 32 }, (_, i) => i));
    assert.equal(calls(), batches, `inlineThreshold ${threshold}`);
  }
});
