// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The crash-testing tools, reviewed: breakages they must find.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ThreadMover } from "../mover/mod.ts";
import { mapFile } from "../pmem2/mod.ts";
import { BOUND_AT, SETTLED_AT } from "../stream/layout.ts";
import { StreamMedia } from "../stream/media.ts";
import { CACHE_LINE } from "./crash/model.ts";
import {
  checkStreamTrace,
  emptyStreamReport,
  formatStreamReport,
  recordStreamTrace,
  STREAM_CI_SUBSETS,
} from "./crash/stream_sweep.ts";
import { STREAM_WORKLOADS } from "./crash/stream_workload.ts";
import {
  createBlockPool,
  createLogStream,
  createObjectPool,
  injectFault,
  mark,
  openBlockPool,
  type PersistTracer,
  setTracer,
  writeBacks,
} from "../testing/mod.ts";
import { assert, tempDir, tempPath, test } from "./_harness.ts";

// Bug: a recovery that stored a word early and flushed it only after
// persisting something else passed every crash sweep. The checkers
// traced their opens without scanning for unflushed stores (to save the
// scans), so the crash points of a recovery never offered such a store
// for eviction: the images where it reached the media first were never
// made. Here the stream's recovery is broken so: it stores the settled
// timestamp W = R before persisting the headers that cut dropped
// entries (and persists W after them, as it should), so a crash in
// between can leave W = R durable over uncut entries beyond a gap, which
// the next open then keeps. The checker's open whose recovery is
// crashed now scans at every event (`openScanned`).
test(
  "the stream sweep finds a recovery that stores its settled timestamp before the cuts are durable",
  () => {
    const dir = tempDir();
    const settings = {
      subsets: STREAM_CI_SUBSETS,
      probeEvery: 0,
      recoveryImages: 6,
      dir,
    };
    const w = STREAM_WORKLOADS.find((x) => x.name === "sync")!;
    const trace = () =>
      recordStreamTrace(w, CACHE_LINE, 1, 16, join(dir, "s"), "cpu");
    const sound = emptyStreamReport();
    checkStreamTrace(trace(), settings, sound);
    assert.equal(sound.problems, 0, formatStreamReport(sound));
    assert.ok(sound.dropped > 0, "no recovery dropped an entry");
    assert.ok(sound.recoveryImages > 0, "no crash during recovery checked");

    const recorded = trace(); // recorded with the sound store
    const broken = emptyStreamReport();
    const persistRanges = StreamMedia.prototype.persistRanges;
    // during the checker's opens the only persistRanges is recovery's of
    // its cuts (nothing is appended): W is stored just before it
    StreamMedia.prototype.persistRanges = function (ranges) {
      if (this.read64(SETTLED_AT) !== this.read64(BOUND_AT)) {
        this.write64(SETTLED_AT, this.read64(BOUND_AT));
      }
      persistRanges.call(this, ranges);
    };
    try {
      checkStreamTrace(recorded, settings, broken);
    } finally {
      StreamMedia.prototype.persistRanges = persistRanges;
    }
    assert.ok(broken.problems > 0, "the broken recovery passed");
    assert.ok(
      broken.examples.some((p) => /crash during recovery/.test(p.message)),
      broken.examples.map((p) => p.message).join("\n"),
    );
  },
  { timeout: 120_000 },
);

// Bug: setTracer(map, {}) (or a number, or a tracer without drain) was
// taken, and from then on every persist of the mapping threw a runtime
// TypeError ("this.#tracer.flush is not a function") far from the
// mistake; the stores' create and open with such a tracer failed the
// same way. Now the tracer is checked where it is given: a TypeError of
// the library's wording, and the mapping keeps working.
test("testing: a tracer without flush and drain functions is refused where it is given", () => {
  const bad: unknown[] = [
    {},
    5,
    null,
    { flush() {} },
    { drain() {} },
    { flush() {}, drain() {}, mark: 1 },
  ];
  using map = mapFile(tempPath("map"), { size: 1 << 16 });
  for (const tracer of bad) {
    assert.throws(
      () => setTracer(map, tracer as PersistTracer),
      (e: unknown) =>
        e instanceof TypeError && /^Cannot set a tracer: /.test(e.message),
      JSON.stringify(tracer),
    );
    map.persist(0, 64); // still works, untraced
  }
  const path = tempPath("pool");
  for (const tracer of bad) {
    const t = tracer as PersistTracer;
    for (
      const make of [
        () =>
          createBlockPool(path, {
            blockSize: 512,
            poolSize: 32 << 20,
            tracer: t,
          }),
        () => openBlockPool(path, { tracer: t }),
        () => createLogStream(path, { size: 1 << 20, tracer: t }),
        () => createObjectPool(path, { size: 8 << 20, layout: "t", tracer: t }),
      ]
    ) {
      assert.throws(
        make,
        (e: unknown) => e instanceof TypeError && /^Cannot /.test(e.message),
      );
      assert.equal(existsSync(path), false);
    }
  }
  // a tracer with both functions (and an optional mark) is taken
  const events: string[] = [];
  setTracer(map, {
    flush: () => events.push("f"),
    drain: () => events.push("d"),
  });
  map.persist(0, 8);
  setTracer(map, undefined);
  assert.deepEqual(events, ["f", "d"]);
});

// Bug: writeBacks(map, since) with a since it never returned listed
// notes never made: -1 gave a note {offset 0, length 0} of no kind
// before the real ones, -5 five of them; a since above the count, or
// 1.5, or NaN, silently listed none. Now such a since is a RangeError
// (a non-number a TypeError).
test("testing: writeBacks() refuses a since it never returned", () => {
  using map = mapFile(tempPath("map"), { size: 1 << 16 });
  const { count } = writeBacks(map);
  map.persist(0, 64);
  map.persist(128, 64);
  const after = writeBacks(map, count);
  assert.equal(after.count, count + 2);
  assert.deepEqual(after.notes.map((n) => n.kind), ["durable", "durable"]);
  for (const since of [-1, -5, 1.5, NaN, after.count + 1, Infinity]) {
    assert.throws(
      () => writeBacks(map, since),
      (e: unknown) =>
        e instanceof RangeError && /since must be a count/.test(e.message),
      String(since),
    );
  }
  assert.throws(
    () => writeBacks(map, "1" as unknown as number),
    TypeError,
  );
  assert.deepEqual(writeBacks(map, after.count).notes, []);
  assert.equal(writeBacks(map, 0).notes.length, after.count);
});

// Bug: createBlockPool(path, { lanes: NaN }) made the pool, whose every
// write then failed ("arena 0 has no idle lane (NaN updates in
// flight)"); 1.5, 0 and -1 were taken as well. Now lanes must be an
// integer of at least 1 (RangeError, before the file is made).
test("testing: createBlockPool() refuses lanes that are no count", () => {
  const path = tempPath("pool");
  for (const lanes of [NaN, 0, -1, 1.5, Infinity]) {
    assert.throws(
      () =>
        createBlockPool(path, { blockSize: 512, poolSize: 32 << 20, lanes }),
      (e: unknown) =>
        e instanceof RangeError && /lanes must be an integer/.test(e.message),
      String(lanes),
    );
    assert.equal(existsSync(path), false, String(lanes));
  }
  using pool = createBlockPool(path, {
    blockSize: 512,
    poolSize: 32 << 20,
    lanes: 1,
  });
  pool.write(0, new Uint8Array(512).fill(1));
  pool.write(0, new Uint8Array(512).fill(2));
  assert.equal(pool.read(0)[0], 2);
});

// Bug: injectFault(mover, n, { status: 0 }) (or 256, or NaN, stored as
// 0) was taken, and the next descriptor's future never settled: a
// completion status of 0 means "not complete yet", so the mover waited
// for it forever. Now the status must be a completion status byte in
// [1, 255] (RangeError); a string is a RangeError too, not an FFI error.
test("testing: injectFault() refuses a status that is no completion", async () => {
  using mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
  for (const status of [0, 256, -1, NaN, 1.5, "x" as unknown as number]) {
    assert.throws(
      () => injectFault(mover, 10, { status }),
      (e: unknown) =>
        e instanceof RangeError && /status must be/.test(e.message),
      String(status),
    );
  }
  // nothing armed: a copy completes
  const dst = new Uint8Array(4096);
  await mover.memset(dst, 3);
  assert.equal(dst[4095], 3);
  // a status that is a completion still fails the next copy with it
  injectFault(mover, 10, { status: 0x7f });
  await assert.rejects(() => Promise.resolve(mover.memset(dst, 4)));
});

// Bug: the testing hooks that take a mapping threw the engine's own
// TypeError (about a private field of undefined) for anything else.
test("setTracer, mark and writeBacks refuse what is no Mapping with their own TypeError", () => {
  const tracer = { flush() {}, drain() {} };
  for (const bad of [undefined, null, {}, 5]) {
    assert.throws(
      () => setTracer(bad as never, tracer),
      /Cannot set a tracer: map must be a Mapping/,
    );
    assert.throws(
      () => mark(bad as never, "x"),
      /Cannot mark: map must be a Mapping/,
    );
    assert.throws(
      () => writeBacks(bad as never),
      /Cannot list write-backs: map must be a Mapping/,
    );
  }
  using map = mapFile(tempPath(), { size: 1 << 16 });
  assert.throws(() => mark(map, 5 as never), /label must be a string/);
});
