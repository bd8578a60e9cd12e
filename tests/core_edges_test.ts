// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Edges of the core layers (futures, movers, pmem2) found by a review:
 * each test either exposed a bug (named in its comment) or pins a
 * contract no other test held.
 */
import {
  all,
  type BatchEntry,
  fromStep,
  type Future,
  mapFile,
  MemFlags,
  PENDING,
  type PollContext,
  race,
  ready,
  VdmFlags,
  wait,
  waitAll,
  type WakeSource,
} from "../mod.ts";
import { readdirSync } from "node:fs";
import { dsaMoverDevice } from "../mover/dsa.ts";
import { deviceStats, openTestPortal } from "../testing/mod.ts";
import { join } from "node:path";
import {
  assert,
  moverTest,
  runScript,
  tempDir,
  tempPath,
  test,
} from "./_harness.ts";

// ---- flags ----

// Bug: the flag checks tested `flags & ~VALID`, and `&` sees only the low
// 32 bits: 2^32 + 1 passed as DURABLE (the mover then threw
// NotSupportedError "flags 0x0"), and a mapping handed 2^32 + 1 to the
// shim's u32 (Bun truncated it to NODRAIN, Deno's FFI threw its own
// TypeError). Both are unknown bits: a RangeError before any native call.
moverTest("flags beyond 32 bits are unknown flags (RangeError)", (mover) => {
  const dst = new Uint8Array(64);
  const src = new Uint8Array(64);
  for (const flags of [2 ** 32, 2 ** 32 + VdmFlags.DURABLE, 2 ** 40]) {
    assert.throws(() => mover.memcpy(dst, src, flags), RangeError);
    assert.throws(() => mover.memset(dst, 1, flags), RangeError);
    assert.throws(() => mover.flush(dst, flags), RangeError);
    assert.throws(
      () => mover.batch([{ op: "memmove", dst, src, flags }]),
      RangeError,
    );
  }
  assert.equal(mover.supports(2 ** 32 + VdmFlags.DURABLE), false);
});

test("a mapping refuses PMEM2_F_MEM flags beyond 32 bits (RangeError)", () => {
  using map = mapFile(tempPath(), { size: 1 << 16 });
  const src = new Uint8Array(8).fill(1);
  for (const flags of [2 ** 32, 2 ** 32 + MemFlags.NODRAIN]) {
    assert.throws(() => map.memcpy(0, src, flags), RangeError);
    assert.throws(() => map.memmove(0, 8, 8, flags), RangeError);
    assert.throws(() => map.memset(0, 1, 8, flags), RangeError);
    assert.throws(() => map.memcpyAsync(0, src, flags), RangeError);
    assert.throws(() => map.memsetAsync(0, 1, 8, flags), RangeError);
  }
  assert.equal(map.view(0, 1)[0], 0); // nothing was written
});

// Bug: a memset or flush batch entry that carried dstOffset or length
// (a memcpy entry's shape) had them ignored: the memset filled the whole
// of dst, bytes outside the range meant. They take none: a TypeError.
moverTest(
  "batch memset/flush entries with offsets are refused, not widened",
  (mover) => {
    const dst = new Uint8Array(64);
    for (
      const extra of [{ dstOffset: 8 }, { length: 4 }, { srcOffset: 1 }, {
        dstOffset: 8,
        length: 4,
      }]
    ) {
      for (
        const entry of [{ op: "memset", dst, value: 7 }, { op: "flush", dst }]
      ) {
        assert.throws(
          () => mover.batch([{ ...entry, ...extra } as BatchEntry]),
          TypeError,
        );
      }
    }
    assert.ok(dst.every((b) => b === 0));
    // explicit defaults are no offsets
    wait(
      mover.batch([
        { op: "memset", dst, value: 7, dstOffset: 0 } as BatchEntry,
      ]),
    );
    assert.ok(dst.every((b) => b === 7));
  },
);

// Bug: an entry's op that was no string was named with JSON.stringify,
// which threw its own TypeError for a bigint ("Do not know how to
// serialize a BigInt") or a cyclic object instead of "unknown op".
moverTest(
  "a batch entry whose op is no string gets the unknown-op TypeError",
  (mover) => {
    const cyclic: { self?: unknown } = {};
    cyclic.self = cyclic;
    for (const op of [1n, cyclic, Symbol("memcpy"), 5, "copy"]) {
      assert.throws(
        () =>
          mover.batch([
            { op, dst: new Uint8Array(1) } as unknown as BatchEntry,
          ]),
        (e: unknown) =>
          e instanceof TypeError && /Cannot batch: unknown op/.test(e.message),
      );
    }
  },
);

// Contract: offsets of a batch entry are checked like every size (NaN,
// Infinity, a bigint, 2^53 are typed errors, before anything runs), and
// a batch mixing ops moves overlapping ranges of one buffer like
// memmove in both directions on every mover, a zero-length copy included.
moverTest(
  "batch offsets: typed errors for odd numbers, overlap moved right",
  async (mover) => {
    const n = 20_000;
    const buf = new Uint8Array(3 * n);
    const bad = (extra: Record<string, unknown>) => () =>
      mover.batch([
        { op: "memset", dst: buf, value: 9 },
        { op: "memmove", dst: buf, src: buf, ...extra } as BatchEntry,
      ]);
    for (const v of [NaN, Infinity, -0.5, 2 ** 53]) {
      for (const key of ["dstOffset", "srcOffset", "length"]) {
        assert.throws(bad({ [key]: v }), RangeError, `${key} ${v}`);
      }
    }
    for (const key of ["dstOffset", "srcOffset", "length"]) {
      assert.throws(bad({ [key]: 1n }), TypeError, key);
    }
    assert.ok(buf.every((b) => b === 0)); // the memset never ran
    const fill = () => buf.forEach((_, i) => (buf[i] = (i * 7) & 255));
    const side = new Uint8Array(n);
    for (const [dstOffset, srcOffset] of [[n / 2, 0], [0, n / 2]]) {
      fill();
      const want = buf.slice();
      want.copyWithin(dstOffset, srcOffset, srcOffset + n);
      await mover.batch([
        { op: "memmove", dst: buf, src: buf, dstOffset, srcOffset, length: n },
        { op: "memset", dst: side, value: 3 },
        { op: "memcpy", dst: side, src: buf, length: 0 },
        { op: "flush", dst: side },
      ]);
      assert.deepEqual(buf, want, `dstOffset ${dstOffset}`);
      assert.ok(side.every((b) => b === 3));
    }
  },
);

// ---- resizable and detached buffers ----

// Bug: an operation over a resizable ArrayBuffer went to the device's
// workers; a resize() down while a worker wrote released the pages past
// the new length (V8 and JavaScriptCore decommit them) and the runtime
// died of SIGSEGV. Such operations now run inline, where each range is
// checked against the buffer right before it is copied. In a child
// process: before the fix it crashed.
test("shrinking a resizable buffer under a device operation never crashes", () => {
  const r = runScript(`
    import { ThreadMover } from "@root/mod.ts";
    import { openTestPortal } from "@root/testing/mod.ts";
    const movers = [
      new ThreadMover({ threads: 2, inlineThreshold: 0, maxTransfer: 2 ** 31 }),
      openTestPortal({ mode: "dedicated", inlineThreshold: 0 }),
    ];
    let outcomes = "";
    for (const mover of movers) {
      for (let i = 0; i < 6; i++) {
        const buf = new ArrayBuffer(32 << 20, { maxByteLength: 32 << 20 });
        const ops = [
          mover.memset(new Uint8Array(buf), 7),
          mover.memcpy(new Uint8Array(32 << 20), new Uint8Array(buf)),
          mover.batch([
            { op: "memset", dst: new Uint8Array(buf), value: 7 },
            { op: "memset", dst: new Uint8Array(1 << 20), value: 7 },
          ]),
        ];
        const f = ops[i % 3];
        f.poll();
        buf.resize(0);
        try {
          await f;
          outcomes += "c";
        } catch (e) {
          outcomes += e.name === "RangeError" ? "x" : "?" + e.message;
        }
      }
      mover.close();
    }
    console.log("survived", /^[cx]+$/.test(outcomes) ? "ok" : outcomes);
  `);
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /survived ok/);
});

moverTest("operations over resizable buffers copy right", async (mover) => {
  // the contract the inline route keeps: same bytes as any other buffer,
  // a growable SharedArrayBuffer too, and a shrink before the first poll
  // fails the future rather than copy a part
  const n = 300_000;
  const src = new Uint8Array(new ArrayBuffer(n, { maxByteLength: 2 * n }))
    .map((_, i) => (i * 7) & 255);
  const dst = new Uint8Array(new ArrayBuffer(n, { maxByteLength: 2 * n }));
  await mover.memcpy(dst, src);
  assert.deepEqual(dst, src);
  const shared = new Uint8Array(
    new SharedArrayBuffer(n, { maxByteLength: 2 * n }),
  );
  await mover.batch([
    { op: "memcpy", dst: shared, src, length: n / 2 },
    { op: "memset", dst: dst.subarray(0, n / 2), value: 1 },
  ]);
  assert.deepEqual(shared.subarray(0, n / 2), src.subarray(0, n / 2));
  assert.equal(dst[n / 2 - 1], 1);
  const buf = new ArrayBuffer(n, { maxByteLength: n });
  const f = mover.memset(new Uint8Array(buf), 9);
  buf.resize(10);
  await assert.rejects(async () => await f, RangeError);
  assert.equal(new Uint8Array(buf)[0], 0);
});

// ---- operations gathered into one BATCH (DSA work queues) ----

/** A context like an executor's sweep, whose end the test calls. */
function handSweep(): { ctx: PollContext; end(): void } {
  const sources = new Set<WakeSource>();
  return {
    ctx: { sweeping: true, waitOn: (s) => void sources.add(s), pollSoon() {} },
    end: () => sources.forEach((s) => s.sweepEnded?.()),
  };
}

// Bug: an operation polled in a sweep on a WQ that takes BATCH joined the
// sweep's batch but stayed idle (NOT_STARTED) though the sweep's end
// submitted it. race() drops idle losers, so a loser polled in the same
// sweep kept its completion record, and its batch's record and list, for
// the device's life (records ran out over enough races). Gathered
// operations are now running, and race() lets them finish.
test(
  "race() losers gathered into a sweep's BATCH give their records back",
  async () => {
    using dsa = openTestPortal({ mode: "dedicated", records: 16 });
    const dev = dsaMoverDevice(dsa);
    for (let i = 0; i < 4; i++) {
      const a = new Uint8Array(4096);
      const b = new Uint8Array(4096);
      // `first` wins on the second sweep, after a and b went out together
      let polls = 0;
      const first = fromStep<string | void>(() =>
        ++polls === 2 ? "first" : PENDING
      );
      assert.equal(
        await race<string | void>([first, dsa.memset(a, 1), dsa.memset(b, 2)]),
        "first",
      );
    }
    assert.equal(deviceStats(dsa).sweepBatches, 4);
    // the losers finish in the background: wait for that, without a deadline
    while (dev.inFlight > 0) await new Promise((r) => setTimeout(r, 5));
    assert.equal(dev.inFlight, 0);
  },
  { timeout: 60_000 },
);

// Bug (same cause): Mapping.close() waits for the copies that are running
// and passed over the idle ones, so a copy gathered into a sweep's batch
// had its views detached under it and failed with ClosedError, though the
// device had written it (a persist was still owed). close() now waits
// for it: it completes, durable.
test("a mapping's close() waits for copies gathered into a sweep's BATCH", async () => {
  using dsa = openTestPortal({ mode: "dedicated" });
  const path = tempPath();
  const map = mapFile(path, { size: 1 << 20, mover: dsa });
  const sweep = handSweep();
  const fs = [0, 1, 2].map((k) =>
    map.memcpyAsync(k * 65536, new Uint8Array(65536).fill(k + 1))
  );
  for (const f of fs) f.poll(sweep.ctx);
  sweep.end();
  map.close();
  for (const f of fs) await f;
  using again = mapFile(path);
  for (const k of [0, 1, 2]) {
    assert.ok(again.view(k * 65536, 65536).every((b) => b === k + 1));
  }
});

// ---- mapping arguments ----

// Bug: read() and persistRanges() tested `>= 0` (which a bigint passes)
// and then summed offset and length, so a bigint offset threw the
// engine's "Cannot mix BigInt and other types" TypeError instead of the
// named one. The integer tests now come first.
test("a bigint offset of read() or persistRanges() gets the named TypeError", () => {
  using map = mapFile(tempPath(), { size: 1 << 16 });
  const into = new Uint8Array(8);
  const named = (what: string) => (e: unknown) =>
    e instanceof TypeError && e.message.includes(what);
  assert.throws(
    () => map.read(1n as unknown as number, into),
    named("Cannot read: offset must be a number"),
  );
  assert.throws(
    () => map.read(0, into, 4n as unknown as number),
    named("Cannot read: length must be a number"),
  );
  assert.throws(
    () => map.persistRanges([{ offset: 1n as unknown as number, length: 1 }]),
    named("Cannot persistRanges: offset must be a number"),
  );
  assert.throws(
    () => map.persistRanges([{ offset: 0, length: 1n as unknown as number }]),
    named("Cannot persistRanges: length must be a number"),
  );
});

// Bugs: a path with a lone surrogate was encoded with U+FFFD in its
// place, so mapFile("a\uD800") created and mapped "a\uFFFD", another
// file than the one named; a mode above 0o7777 reached the shim's u32
// (Bun truncated 2^32 + 0o600 to 0o600, Deno's FFI threw its own
// TypeError). Both are refused before anything is created.
test("mapFile refuses a path with a lone surrogate and a mode above 0o7777", () => {
  const dir = tempDir();
  // not path.join: Bun's replaces the lone surrogate itself
  assert.throws(
    () => mapFile(`${dir}/a\uD800`, { size: 4096 }),
    (e: unknown) => e instanceof TypeError && /lone surrogate/.test(e.message),
  );
  for (const mode of [2 ** 32 + 0o600, 0o10000]) {
    assert.throws(
      () => mapFile(join(dir, "m"), { size: 4096, mode }),
      RangeError,
    );
  }
  assert.deepEqual(readdirSync(dir), []);
  // a well-formed name outside ASCII is a name like any other
  mapFile(join(dir, "\u00e9\u{1F600}"), { size: 4096, mode: 0o600 }).close();
  assert.deepEqual(readdirSync(dir), ["\u00e9\u{1F600}"]);
});

// Bug: every mapping made without a mover shared one CpuMover, so
// `map.mover.close()` on one closed it for all, and for every mapping
// made later: their async copies threw ClosedError.
test("closing one mapping's default mover leaves other mappings working", async () => {
  const a = mapFile(tempPath(), { size: 1 << 16 });
  using b = mapFile(tempPath(), { size: 1 << 16 });
  a.mover.close();
  a.close();
  using c = mapFile(tempPath(), { size: 1 << 16 });
  await b.memcpyAsync(0, new Uint8Array(8).fill(1));
  await c.memsetAsync(0, 2, 8);
  assert.equal(b.view(7, 1)[0], 1);
  assert.equal(c.view(7, 1)[0], 2);
});

// ---- the executor ----

// Bug: all() and race() took any array and failed only when polled, with
// the engine's "f.poll is not a function" (a promise or a value passed
// by mistake). They now name the member, when called.
test("all() and race() refuse a member that is not a Future", async () => {
  for (const bad of [Promise.resolve(1), 1, null, { then() {} }]) {
    const futures = [ready(0), bad] as unknown as Future<number>[];
    for (const combine of [all, race]) {
      assert.throws(
        () => combine(futures),
        (e: unknown) =>
          e instanceof TypeError && /member 1 is not a Future/.test(e.message),
      );
    }
  }
  assert.deepEqual(await all([ready(1), ready(2)]), [1, 2]);
});

/** A future that waits on `source` and completes after `polls` polls. */
function waitsOn(source: WakeSource, polls: number, value: string) {
  let n = 0;
  return fromStep((ctx) => {
    ctx.waitOn(source);
    return ++n >= polls ? value : PENDING;
  });
}

// Bug: the pump awaited every registered source's sleep() bare, so one
// that rejected ended the pump (an unhandled rejection) with every
// awaited future pending forever, those on other sources too. The
// runner's timeout is only a guard against that hang.
test(
  "a wake source whose sleep() rejects does not stop the executor",
  async () => {
    const broken: WakeSource = {
      sequence: () => 0,
      block: () => true,
      sleep: () => Promise.reject(new Error("sleep broke")),
    };
    let blind = 0;
    const other = fromStep(() => (++blind >= 20 ? "blind" : PENDING));
    assert.deepEqual(
      await Promise.all([waitsOn(broken, 30, "broken"), other]),
      ["broken", "blind"],
    );
  },
  { timeout: 60_000 },
);

// Bug: a source's sweepEnded() that threw escaped the sweep: it ended the
// pump (every awaited future pending forever) and made waitAll() throw
// it, though no future had failed.
test(
  "a wake source whose sweepEnded() throws does not stop the executor",
  async () => {
    let sequence = 0;
    const source: WakeSource = {
      sequence: () => sequence,
      block: () => true,
      sleep: () => Promise.resolve(true),
      sweepEnded() {
        sequence++;
        throw new Error("sweepEnded broke");
      },
    };
    assert.deepEqual(
      waitAll([waitsOn(source, 5, "a"), waitsOn(source, 3, "b")]),
      ["a", "b"],
    );
    assert.equal(await waitsOn(source, 5, "c"), "c");
  },
  { timeout: 60_000 },
);

moverTest(
  "a signal that is not an AbortSignal is a TypeError at the call",
  (mover) => {
    // it was ignored: the work could never be cancelled by it
    const dst = new Uint8Array(8);
    for (const signal of ["x", {}, null]) {
      assert.throws(
        () => mover.memset(dst, 1, 0, { signal: signal as never }),
        // (in the call's words: checked by the mover's memset)
        new TypeError("Cannot memset: signal must be an AbortSignal"),
      );
    }
    const controller = new AbortController();
    wait(mover.memset(dst, 2, 0, { signal: controller.signal }));
    assert.equal(dst[0], 2);
  },
);
