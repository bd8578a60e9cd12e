// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Fourth review of the data movers and the executor: the cache hint of a
 * fill, and a mapping that would map no byte.
 */
import { existsSync, writeFileSync } from "node:fs";
import process from "node:process";
import {
  ClosedError,
  CpuMover,
  DsaMover,
  mapFile,
  Mapping,
  MemFlags,
  PmemError,
  Source,
  ThreadMover,
  VdmFlags,
} from "../mod.ts";
import { DeviceMover } from "../mover/mod.ts";
import { streamedBytes } from "../testing/mod.ts";
import { assert, printed, runScript, tempPath, test } from "./_harness.ts";

// Bug: a mapping whose range holds no byte (offset at the end of the
// source, the length left to "the rest") reached libpmem2, whose mmap of 0
// bytes failed with PmemError -22 "mmap: Invalid argument", which names
// neither the offset nor the size. It is a RangeError before the shim now,
// and mapFile still removes a file it created for it.
test("`Mapping.map()` at an offset equal to the source's size is a RangeError before libpmem2", () => {
  const path = tempPath();
  {
    using src = Source.open(path, { size: 8192 });
    assert.throws(
      () => Mapping.map(src, { offset: 8192 }),
      (e: unknown) =>
        e instanceof RangeError &&
        /Cannot map: offset 8192 is the end of the source \(8192 bytes\)/
          .test(e.message),
    );
    // a range that holds a byte still maps
    using m = Mapping.map(src, { offset: 4096 });
    assert.equal(m.size, 4096);
  }
  const made = tempPath("made");
  assert.throws(() => mapFile(made, { size: 8192, offset: 8192 }), RangeError);
  assert.equal(existsSync(made), false);
  // an empty file stays libpmem2's PMEM2_E_SOURCE_EMPTY (a clear code)
  const empty = tempPath("empty");
  writeFileSync(empty, new Uint8Array(0));
  assert.throws(
    () => mapFile(empty),
    (e: unknown) => e instanceof PmemError && e.code === -100018,
  );
});

/** The bytes written with non-temporal stores while `fn` ran. */
async function streamedBy(fn: () => unknown): Promise<number> {
  const before = streamedBytes();
  await fn();
  return streamedBytes() - before;
}

// Bug: a fill asked not to leave its destination in the cache
// (VdmFlags.NO_CACHE_HINT; a mapping's NONTEMPORAL or WC) was written with
// ordinary stores everywhere a copy honoured the hint: the CPU mover's
// memset (a ThreadMover's small ones too) was `fill()`, the engines' MEMFILL
// with CC=0 a libc memset, and a page-granularity mapping's memset with
// NONTEMPORAL a libc memset as well (pmem2/flags.ts says the hint asks for
// non-temporal stores there). Each now fills with streaming stores, as
// PMDK's pmem2 memset picks them by its flags.
test(
  "a memset with NO_CACHE_HINT or NONTEMPORAL writes with non-temporal stores, as memcpy does",
  async () => {
    const n = 1 << 20;
    const dst = new Uint8Array(n);
    const src = new Uint8Array(n).fill(3);
    const cpu = new CpuMover();
    using threads = new ThreadMover({ threads: 1, inlineThreshold: 0 });
    using small = new ThreadMover({ threads: 1 }); // 64 KiB runs inline
    const { NO_CACHE_HINT } = VdmFlags;
    // the witness works: a copy honours the hint
    assert.ok(
      await streamedBy(() => cpu.memcpy(dst, src, NO_CACHE_HINT)) >= n - 64,
    );
    for (const [name, mover] of [["cpu", cpu], ["threads", threads]] as const) {
      assert.equal(await streamedBy(() => mover.memset(dst, 1)), 0, name);
      assert.ok(
        await streamedBy(() => mover.memset(dst, 2, NO_CACHE_HINT)) >= n - 64,
        name,
      );
      assert.ok(dst.every((b) => b === 2), name);
      // an unaligned start and an odd length
      const part = dst.subarray(3, n - 5);
      assert.ok(
        await streamedBy(() => mover.memset(part, 9, NO_CACHE_HINT)) >= n - 128,
        name,
      );
      assert.equal(dst[2], 2);
      assert.equal(dst[n - 5], 2);
      assert.ok(part.every((b) => b === 9), name);
    }
    const block = dst.subarray(0, 64 << 10);
    assert.ok(
      await streamedBy(() => small.memset(block, 4, NO_CACHE_HINT)) >=
        65536 - 64,
    );
    assert.ok(block.every((b) => b === 4));
    // a mapping (page granularity here): the sync and the async memset
    using map = mapFile(tempPath(), { size: n, mover: threads });
    assert.equal(await streamedBy(() => map.memset(0, 5, n)), 0);
    assert.ok(
      await streamedBy(() => map.memset(0, 6, n, MemFlags.NONTEMPORAL)) >=
        n - 64,
    );
    assert.ok(map.view().every((b) => b === 6));
    assert.ok(
      await streamedBy(() => map.memsetAsync(0, 7, n, MemFlags.WC)) >= n - 64,
    );
    assert.ok(map.view().every((b) => b === 7));
  },
  { skip: process.arch !== "x64" && "non-temporal stores: x86-64 only" },
);

// Bug: DsaMover's constructor is private to TypeScript only: from
// JavaScript, `new DsaMover()` (the form CpuMover and ThreadMover take)
// returned a mover without a device. It passed for a Vdm (a mapping took it
// as its mover), and then `closed`, every operation and `close()` (so a
// `using` block's end too) threw the engine's TypeError about reading
// `closed` of undefined. A device mover given no device now refuses to be
// made, naming the factories.
test("`new DsaMover()` from JavaScript is a TypeError naming its factories, not a mover without a device", () => {
  const Dsa = DsaMover as unknown as new (...args: unknown[]) => DsaMover;
  const Device = DeviceMover as unknown as new (...args: unknown[]) => object;
  for (const make of [() => new Dsa(), () => new Dsa({}), () => new Device()]) {
    assert.throws(make, (e: unknown) =>
      e instanceof TypeError &&
      /DsaMover\.open\(\) or DsaMover\.openOrFallback\(\)/.test(e.message));
  }
  // the factories and ThreadMover are unchanged
  using mover = new ThreadMover({ threads: 1 });
  assert.equal(mover.closed, false);
});

// Bug: an uncaught error or unhandled rejection while a ThreadMover's
// engines were writing into arrays of the JavaScript heap crashed Deno with
// SIGSEGV (about one run in two) instead of ending it with the error: Deno
// frees the isolate's arrays on its way out, the engines kept writing into
// them. A device now waits for the work it accepted when Deno reports an
// uncaught error or rejection (its "error" and "unhandledrejection"
// events, before it tears the isolate down), a DSA work queue for the
// descriptors it has not completed; it stays open, in case the error is
// handled. Child processes: red is a signal.
test("an uncaught error while a ThreadMover writes into heap arrays ends the process with the error, not SIGSEGV", () => {
  const script = (fail: string, mover: string) => `
    import { ThreadMover } from "@root/mod.ts";
    import { openTestPortal } from "@root/testing/mod.ts";
    const mover = ${mover};
    for (let i = 0; i < 2; i++) {
      mover.memset(new Uint8Array(1 << 28), 1).then(() => {});
    }
    setTimeout(() => { ${fail}; }, 5);
  `;
  const fails = [
    'Promise.reject(new Error("uncaught elsewhere"))',
    'throw new Error("uncaught elsewhere")',
  ];
  // a DSA work queue too (a test portal: the software device behind it)
  const movers = [
    "new ThreadMover({ threads: 2, inlineThreshold: 0 })",
    'openTestPortal({ mode: "dedicated", engines: 2 })',
  ];
  for (let i = 0; i < 8; i++) {
    const r = runScript(script(fails[i % 2], movers[(i >> 1) % 2]));
    assert.equal(r.signal, null, `run ${i}: ${r.stderr}`);
    assert.equal(r.status, 1, `run ${i}: ${r.stderr}`);
    assert.match(r.stderr, /uncaught elsewhere/);
  }
});

// Bug: an operation over a resizable ArrayBuffer shrunk after the call
// failed with a ClosedError saying the buffer "was detached ...
// (transferred, or its mapping closed)": none of which had happened. The
// message now names the resize, in a RangeError (nothing closed: see
// argfuzz_test's resized-array test).
test("an operation whose resizable buffer shrank before it ran names the resize in its RangeError", async () => {
  using mover = new CpuMover();
  const ab = new ArrayBuffer(4096, { maxByteLength: 8192 });
  const f = mover.memset(new Uint8Array(ab, 0, 4096), 1);
  ab.resize(16);
  await assert.rejects(
    async () => await f,
    (e: unknown) =>
      e instanceof RangeError &&
      e.message ===
        "Cannot memset: dst shrank before the operation ran (its buffer was resized)",
  );
});

// Bug: `poll()` never throws, but a Future subclass may override it (it
// is public), and one that threw killed the executor's pump: the rejection
// escaped (Deno exited with it) and every other awaited future stayed
// pending for good (Bun). The pump now fails that future's await with the
// error and goes on, as it does for a WakeSource that throws. Child
// process: red is a crash or a hang.
test("an awaited future whose overridden `poll()` throws rejects its await; the executor drives the others on", () => {
  const r = runScript(`
    import { Future, type FutureState, PENDING, fromStep } from "@root/mod.ts";
    class Throwing extends Future<number> {
      protected step() { return PENDING; }
      override poll(): FutureState { throw new RangeError("poll broke"); }
    }
    let polls = 0;
    const other = fromStep(() => (++polls < 3 ? PENDING : "other done"));
    const bad = new Throwing().then(() => "resolved", (e) => e.message);
    const timer = setTimeout(() => { console.log("hang"); process.exit(2); }, 5000);
    console.log(await bad, await other);
    clearTimeout(timer);
  `);
  assert.equal(printed(r), "poll broke other done");
});

// Bug: a view of a closed mapping (or of a transferred buffer) is detached,
// and a detached view reads as empty: handed to a mover it was a 0-byte
// operation that completed. A flush of a closed mapping's view said the
// range was durable, a memset or a copy from one wrote nothing and
// succeeded, and a batch entry likewise; the same view detached a moment
// later (after the call) failed with ClosedError. Refused at the call now
// (a TypeError since: a bad argument, as the log store refuses one); an
// empty view that is not detached still makes an empty operation.
test("a mover refuses a view of a closed mapping at the call (TypeError: a bad argument), not as an empty operation", async () => {
  const path = tempPath();
  const map = mapFile(path, { size: 1 << 16 });
  const view = map.view(4096, 4096);
  map.close();
  const closed = (e: unknown) =>
    e instanceof TypeError && !(e instanceof ClosedError) &&
    /dst is detached|src is detached/.test(e.message);
  const cpu = new CpuMover();
  using threads = new ThreadMover({ threads: 1, inlineThreshold: 0 });
  for (const mover of [cpu, threads]) {
    assert.throws(() => mover.flush(view), closed, mover.name);
    assert.throws(() => mover.memset(view, 1), closed, mover.name);
    assert.throws(() => mover.memcpy(new Uint8Array(8), view), closed);
    assert.throws(() => mover.memmove(view, new Uint8Array(0)), closed);
    assert.throws(
      () =>
        mover.batch([
          { op: "memset", dst: new Uint8Array(8), value: 1 },
          { op: "flush", dst: view },
        ]),
      closed,
    );
    // a transferred buffer's view too; a plain empty view is no error
    const buf = new ArrayBuffer(8);
    const moved = new Uint8Array(buf);
    buf.transfer();
    assert.throws(() => mover.memset(moved, 1), closed);
    await mover.memset(new Uint8Array(0), 1);
    await mover.memcpy(new Uint8Array(0), new Uint8Array(0));
    await mover.flush(new Uint8Array(new SharedArrayBuffer(0)));
  }
});
