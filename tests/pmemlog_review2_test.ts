// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// A second review of PmemLog (probes against libpmemlog 1.12.1 first, then
// these tests): the options of its asynchronous appends, a failed rewind,
// buffers resized or aliasing the log while appended, opens and appends
// side by side with libpmemlog's, and its appends' atomicity across
// crashes, checked image by image by this library and by libpmemlog.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { all, type Future, ThreadMover, type Vdm } from "../mod.ts";
import { OutOfSpaceError, PmemError } from "../errors/mod.ts";
import { mapFile } from "../pmem2/map_file.ts";
import { Mapping } from "../pmem2/mapping.ts";
import { setMappingTracer } from "../pmem2/mapping_access.ts";
import { PmemLog } from "../stream/mod.ts";
import { openPmemLogToInspect } from "../stream/pmemlog.ts";
import { crashImages } from "./crash/images.ts";
import { lint } from "./crash/lint.ts";
import { CACHE_LINE, PAGE, type PersistenceModel } from "./crash/model.ts";
import { crashMover } from "./crash/movers.ts";
import { ScratchImage } from "./crash/scratch.ts";
import { CI_SUBSETS } from "./crash/sweep.ts";
import { CrashTracer, faultyTracer, type TraceEvent } from "./crash/tracer.ts";
import {
  LIBPMEMLOG_SKIP,
  logContents,
  logPattern,
  logutil,
  writeLogSpec,
} from "./c/logutil.ts";
import { storeChecksum } from "../pmdk/checksum.ts";
import { assert, patch, rng, tempDir, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;

// Bug: `appendAsync(data, options)` took options that are not an object
// (a string such as LogStream's "committed", a number, null, an array of
// more data) as no options at all and appended, where LogStream's
// `appendAsync` refuses them; and a signal that is not an AbortSignal was
// refused in the words of the future's constructor ("Cannot make a
// future"), not the call's.
test("`appendAsync()` refuses options that are not an object, and a bad signal, naming itself", () => {
  using log = PmemLog.create(tempPath(), { poolSize: 2 * MiB });
  for (const bad of ["committed", 1, null]) {
    assert.throws(
      () => log.appendAsync(Uint8Array.of(1), bad as never),
      new TypeError("Cannot appendAsync: options must be an object"),
      JSON.stringify(bad),
    );
  }
  // (more data, as to appendv)
  assert.throws(
    () => log.appendAsync(Uint8Array.of(1), [Uint8Array.of(2)] as never),
    new TypeError(
      "Cannot appendAsync: options must be an object, got an array",
    ),
  );
  assert.throws(
    () => log.appendAsync(Uint8Array.of(1), { signal: {} as AbortSignal }),
    new TypeError("Cannot appendAsync: signal must be an AbortSignal"),
  );
  // nothing was queued: a later append goes first
  log.append(Uint8Array.of(9));
  assert.equal(log.tell(), 1);
});

// Bug: `appendAsync("x")` said "data must be Uint8Arrays", the words of
// `appendv`'s array check, for its one buffer; `append` says "a
// Uint8Array".
test("`appendAsync()` of something not a Uint8Array says it must be a `Uint8Array`", () => {
  using log = PmemLog.create(tempPath(), { poolSize: 2 * MiB });
  for (const bad of ["x", new Uint16Array(2), undefined]) {
    assert.throws(
      () => log.appendAsync(bad as never),
      new TypeError("Cannot appendAsync: data must be a Uint8Array"),
    );
  }
  assert.equal(log.tell(), 0);
});

// Bug: a `rewind()` whose persist of the write offset failed (msync's
// EIO) threw, but left the offset stored at the start: `tell()` said 0
// and a walk found nothing, while the next append went after the old
// data and brought it all back. A failed rewind now leaves the log as it
// was, as a failed append does.
test("a `rewind()` whose persist fails leaves the log as it was", () => {
  using log = PmemLog.create(tempPath(), { poolSize: 2 * MiB });
  log.append(Uint8Array.of(1, 2, 3));
  const persist = Mapping.prototype.persist;
  let fail = true;
  Mapping.prototype.persist = function (
    this: Mapping,
    offset: number,
    length: number,
  ) {
    if (fail && offset === 4112) {
      fail = false;
      throw new PmemError("persist", -5, "injected EIO", { errno: 5 });
    }
    return persist.call(this, offset, length);
  };
  try {
    assert.throws(() => log.rewind(), /injected EIO/);
  } finally {
    Mapping.prototype.persist = persist;
  }
  assert.equal(log.tell(), 3);
  assert.deepEqual([...logContents(log)], [1, 2, 3]);
  log.append(Uint8Array.of(4));
  assert.deepEqual([...logContents(log)], [1, 2, 3, 4]);
  // and one that succeeds empties it
  log.rewind();
  assert.equal(log.tell(), 0);
});

// Checked fine: libpmemlog 1.12.1 and PmemLog.open agree on every damaged
// header, shutdown state and descriptor of this sweep (both open it, with
// the same tell and nbyte, or both refuse it with the same errno), the
// header's checksums restored or not.
test(
  "`PmemLog.open()` opens or refuses damaged logs as libpmemlog does, errno, tell and nbyte alike",
  () => {
    const base = tempPath("base");
    assert.equal(logutil("create", base, `${2 * MiB + 100}`).status, 0);
    const spec = writeLogSpec([{ op: "A", seed: 1, len: 1000 }]);
    assert.equal(logutil("apply", base, spec).status, 0);
    const original = new Uint8Array(readFileSync(base));
    const rand = rng(11);
    const int = (n: number) => Math.floor(rand() * n);
    const u64s = [0n, 8191n, 8192n, 8193n, 9192n, 2n * BigInt(MiB), 2n ** 63n];
    const ours = tempPath("ours");
    const theirs = tempPath("theirs");
    const dump = tempPath("dump");
    const outcomes = new Set<string>();
    for (let i = 0; i < 160; i++) {
      const image = original.slice(0, 3 * 4096);
      const view = new DataView(image.buffer);
      const kind = i % 5;
      let what: string;
      if (kind === 0) {
        const at = int(8192 + 24);
        image[at] ^= 1 + int(255);
        what = `byte ${at}`;
      } else if (kind === 1) {
        const at = 4 * int(4088 / 4);
        view.setUint32(at, [0, 1, 2, 4, 8, 0xffffffff][int(6)], true);
        what = `u32 at ${at}`;
      } else if (kind === 2) {
        const at = 4096 + 8 * int(3);
        view.setBigUint64(at, u64s[int(u64s.length)], true);
        what = `descriptor u64 at ${at}`;
      } else if (kind === 3) {
        const at = 4024 + int(56);
        image[at] ^= 1 + int(255);
        // the shutdown state's own checksum made right, or not
        if (rand() < 0.5) storeChecksum(image.subarray(4024, 4088), 56);
        what = `shutdown state byte ${at}`;
      } else {
        const at = 2048 + int(1976);
        image[at] ^= 1 + int(255);
        what = `unused byte ${at}`;
      }
      // the header checksum made right, or not
      if (rand() < 0.6) {
        const skip = (view.getUint32(16, true) & 2) !== 0 ? 2048 : 4096;
        storeChecksum(image.subarray(0, 4096), 4088, skip);
      }
      for (const path of [ours, theirs]) {
        writeFileSync(path, original);
        patch(path, 0, image);
      }
      let mine: string;
      try {
        const log = PmemLog.open(ours);
        mine = `tell ${log.tell()} nbyte ${log.nbyte()}`;
        log.close();
      } catch (e) {
        assert.ok(e instanceof PmemError, `${what}: ${e}`);
        mine = `errno ${-e.code}`;
      }
      const r = logutil("dump", theirs, dump);
      const lib = r.status === 0
        ? r.stdout.trim()
        : `errno ${/\(errno (\d+)\)/.exec(r.stderr)?.[1]}`;
      assert.equal(mine, lib, `${what}: ${r.stderr}`);
      outcomes.add(mine.split(" ")[0]);
    }
    // both outcomes were seen
    assert.deepEqual([...outcomes].sort(), ["errno", "tell"]);
  },
  { skip: LIBPMEMLOG_SKIP },
);

// Checked fine: appends, appendv's (of no buffer, of empty ones, of up to
// four) and rewinds give libpmemlog's result, errno and tell operation by
// operation, the full log's ENOSPC included (even for nothing appended to
// a full log), and leave the same bytes.
/** An operation of {@linkcode tryBoth}: a rewind, or an append of patterns. */
type TryOp = { parts: [number, number][]; v: boolean } | null;

/**
 * Run `ops` on the log at `ours` (open) and, through libpmemlog, on its
 * copy at `theirs`: each must give the same result, errno and tell.
 * @returns how many found the log full, and how many of them were empty
 */
function tryBoth(log: PmemLog, theirs: string, ops: TryOp[]): number[] {
  const spec = join(tempDir(), "try.txt");
  writeFileSync(
    spec,
    ops.map((o) =>
      o === null
        ? "R"
        : `${o.v ? `W ${o.parts.length}` : "A"} ${o.parts.flat().join(" ")}`
    ).join("\n") + "\n",
  );
  const r = logutil("try", theirs, spec);
  assert.equal(r.status, 0, r.stderr);
  const lib = r.stdout.trim().split("\n");
  assert.equal(lib.length, ops.length);
  let full = 0;
  let emptyOnFull = 0;
  ops.forEach((o, i) => {
    let result = "0 0";
    try {
      if (o === null) log.rewind();
      else {
        const data = o.parts.map(([seed, n]) => logPattern(seed, n));
        if (o.v) log.appendv(data);
        else log.append(data[0]);
      }
    } catch (e) {
      assert.ok(e instanceof OutOfSpaceError, String(e));
      result = `-1 ${-e.code}`;
      full++;
      if (o!.parts.every(([, n]) => n === 0)) emptyOnFull++;
    }
    assert.equal(`${result} ${log.tell()}`, lib[i], `operation ${i}`);
  });
  return [full, emptyOnFull];
}

// Checked fine: appends, appendv's (of no buffer, of empty ones, of up to
// four) and rewinds give libpmemlog's result, errno and tell operation by
// operation, the full log's ENOSPC included (even for nothing appended to
// a full log), and leave the same bytes.
test(
  "append, appendv and rewind give libpmemlog's results op by op, ENOSPC on a full log included",
  () => {
    const ours = tempPath("ours");
    const theirs = tempPath("theirs");
    PmemLog.create(ours, { poolSize: 2 * MiB + 4096 }).close();
    writeFileSync(theirs, readFileSync(ours));
    const rand = rng(3);
    const len = () =>
      rand() < 0.2 ? 0 : Math.floor(rand() * (rand() < 0.4 ? 200_000 : 3000));
    const ops: TryOp[] = [];
    for (let i = 0; i < 400; i++) {
      const r = rand();
      if (r < 0.02) ops.push(null); // a rewind
      else {
        const v = r >= 0.45;
        const parts: [number, number][] = [];
        for (let k = v ? Math.floor(rand() * 5) : 1; k > 0; k--) {
          parts.push([i * 10 + k, len()]);
        }
        ops.push({ parts, v });
      }
    }
    using log = PmemLog.open(ours);
    const [full] = tryBoth(log, theirs, ops);
    assert.ok(full > 20, `only ${full} appends found the log full`);
    // then exactly full: nothing more goes in, not even nothing
    const room = log.nbyte() - log.tell();
    const [, emptyOnFull] = tryBoth(log, theirs, [
      { parts: [[1, room]], v: false },
      { parts: [[2, 0]], v: false },
      { parts: [], v: true },
      { parts: [[3, 0], [4, 0]], v: true },
      { parts: [[5, 1]], v: false },
      null,
      { parts: [[6, 0]], v: true },
      { parts: [[7, 5]], v: false },
    ]);
    assert.equal(emptyOnFull, 3);
    const out = join(tempDir(), "dump");
    assert.equal(logutil("dump", theirs, out).status, 0);
    assert.deepEqual(logContents(log), new Uint8Array(readFileSync(out)));
  },
  { skip: LIBPMEMLOG_SKIP },
);

// Bug: `appendv` took each buffer's length as its array handed it over,
// then went on reading the array (user code: an iterator, a Proxy's
// traps) before it copied: a buffer shrunk meanwhile (a resizable one
// under a length-tracking view) was copied short, and the bytes counted
// past it were committed as they lay in the log, stale bytes of a rewound
// log among them; one grown was copied long, over the next buffer's place.
// The lengths are now those of the copy, taken once the array is read.
test("`appendv()` of a buffer resized while its array is read appends it at its length then, no stale bytes", () => {
  using log = PmemLog.create(tempPath(), { poolSize: 2 * MiB });
  log.append(new Uint8Array(64).fill(0xee));
  log.rewind(); // the old bytes stay in the log's place
  for (const [from, to] of [[16, 4], [4, 16]]) {
    const rab = new ArrayBuffer(from, { maxByteLength: 64 });
    const tracking = new Uint8Array(rab).fill(1);
    const parts = [tracking, Uint8Array.of(2, 2)];
    Object.defineProperty(parts, Symbol.iterator, {
      *value() {
        yield parts[0];
        rab.resize(to);
        new Uint8Array(rab).fill(1);
        yield parts[1];
      },
    });
    const before = log.tell();
    log.appendv(parts);
    assert.deepEqual(
      [...logContents(log).subarray(before)],
      [...new Uint8Array(to).fill(1), 2, 2],
      `resized from ${from} to ${to}`,
    );
    assert.equal(log.tell(), before + to + 2);
  }
});

// Bug: an append of a view of the log's own mapping overlapping the place
// it goes to (a walk's chunk kept across a rewind) stored wrong bytes:
// `appendAsync` with a ThreadMover, whose copy runs in pieces (per view
// window on Bun, per transfer limit) in any order or at once, so one piece
// overwrote what another still had to read (LogStream's appendAsync was
// fixed for the same in 0f7c8bf); `append` on Bun past 64 MiB, whose copy
// goes a view window at a time from the lowest, with the source below the
// place; and `appendv`, whose buffers are copied one after the other, of a
// buffer over the place of one before it. Such sources are now copied out
// first: each append holds the bytes its views held at the call.
test("appends of kept views overlapping the place they go to append the bytes the views held", async () => {
  using mover = new ThreadMover();
  // 80 MiB: past the 64 MiB Bun sees whole, so a copy spans windows
  using log = PmemLog.create(tempPath(), { poolSize: 80 * MiB, mover });
  const len = 5 * MiB;
  const base = new Uint8Array(len + 16384);
  for (let i = 0; i < base.length; i++) base[i] = (i * 31 + (i >> 8)) & 255;
  const ways: [string, (src: Uint8Array) => unknown][] = [
    ["appendAsync", (src) => log.appendAsync(src)],
    ["append", (src) => log.append(src)],
    [
      "appendv",
      (src) => log.appendv([src.subarray(0, 100), src.subarray(100)]),
    ],
  ];
  for (const [way, append] of ways) {
    for (const shift of [1, 4099, -1, -4099]) {
      log.rewind();
      log.append(base);
      let kept: Uint8Array | undefined;
      log.walk(0, (chunk) => {
        kept = chunk;
        return true;
      });
      log.rewind();
      // the next append goes 8192 bytes in; these are the bytes there
      log.append(base.subarray(0, 8192));
      const src = kept!.subarray(8192 + shift, 8192 + shift + len);
      await append(src);
      const got = logContents(log).subarray(8192);
      const want = base.subarray(8192 + shift, 8192 + shift + len);
      assert.equal(got.length, len);
      let diff = -1;
      for (let i = 0; i < len && diff < 0; i++) {
        if (got[i] !== want[i]) diff = i;
      }
      assert.equal(diff, -1, `${way}, shift ${shift}: first wrong byte`);
    }
  }
});

// The same across the appends of one batch: a kept view over the place of
// an append copied with it (red with each source checked against its own
// place only).
test("`appendAsync()` of a kept view over the place of another append of its batch appends the bytes the view held", async () => {
  using mover = new ThreadMover({ threads: 2, inlineThreshold: 0 });
  using log = PmemLog.create(tempPath(), { poolSize: 2 * MiB, mover });
  const n = 512 * 1024;
  const old = new Uint8Array(2 * n);
  for (let i = 0; i < old.length; i++) old[i] = (i * 13 + (i >> 9)) & 255;
  for (let round = 0; round < 4; round++) {
    log.rewind();
    log.append(old);
    let kept: Uint8Array | undefined;
    log.walk(0, (chunk) => {
      kept = chunk;
      return true;
    });
    log.rewind();
    // placed together: the first over the bytes the second reads
    const first = log.appendAsync(new Uint8Array(n).fill(0x5a));
    const second = log.appendAsync(kept!.subarray(0, n));
    first.poll();
    second.poll();
    assert.deepEqual(await all([first, second]), [0, n]);
    const got = logContents(log);
    assert.ok(got.subarray(0, n).every((b) => b === 0x5a), `round ${round}`);
    assert.equal(
      Buffer.compare(got.subarray(n), old.subarray(0, n)),
      0,
      `round ${round}: the second append holds other bytes`,
    );
  }
});

// Bug: `PmemLog.open()` of a PMDK pool set file (libpmemlog opens the pool
// it describes) said "the file is too small (46 bytes, a log has at least
// 2097152)", and `create()` of one with no poolSize that it "has 46 bytes,
// less than the 2 MiB a log needs": both now say it is a pool set file, and
// that pool sets are not supported, as the CLI does.
test("`PmemLog.open()` and `create()` of a pool set file say it is one", () => {
  const dir = tempDir();
  const set = join(dir, "log.set");
  writeFileSync(set, `PMEMPOOLSET\n4M ${join(dir, "part0")}\n`);
  const poolSet = (op: string) => (e: unknown) =>
    e instanceof PmemError && e.op === op && e.code === -22 &&
    /'.*log\.set': a PMDK pool set file: pool sets are not supported/.test(
      e.message,
    );
  assert.throws(() => PmemLog.open(set), poolSet("open"));
  assert.throws(() => PmemLog.create(set), poolSet("create"));
  // the file is left as it was
  assert.equal(
    readFileSync(set, "utf8"),
    `PMEMPOOLSET\n4M ${join(dir, "part0")}\n`,
  );
  // a small file that is no pool set is still too small
  const small = join(dir, "small");
  writeFileSync(small, "PMEMPOOLSE");
  assert.throws(() => PmemLog.open(small), /the file is too small/);
});

// Bug: a walk's chunk is a view of the buffer over the whole mapping, the
// one the log keeps its own views of: a program that transferred it (a
// chunk posted to a Worker with its buffer in the transfer list,
// `buffer.transfer()`) left the log with detached views, so `tell()` said
// NaN and every append, walk and rewind threw the engine's TypeError
// ("Cannot perform Construct on a detached ArrayBuffer"). The log now
// views its mapping again (the mapping makes a new buffer; the one moved
// keeps working).
test("a log whose chunk's buffer was transferred goes on working", async () => {
  const path = tempPath();
  using mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
  {
    using log = PmemLog.create(path, { poolSize: 2 * MiB, mover });
    log.append(Uint8Array.of(1, 2, 3));
    let moved: ArrayBuffer | undefined;
    log.walk(0, (chunk) => {
      moved = (chunk.buffer as ArrayBuffer).transfer();
      return true;
    });
    assert.equal(new Uint8Array(moved!)[8192], 1, "the buffer moved reads");
    assert.equal(log.tell(), 3);
    log.append(Uint8Array.of(4));
    assert.equal(await log.appendAsync(Uint8Array.of(5)), 4);
    assert.deepEqual([...logContents(log)], [1, 2, 3, 4, 5]);
    // transferred again in the middle of a walk in chunks
    const seen: number[] = [];
    log.walk(2, (chunk) => {
      seen.push(...chunk);
      if (seen.length === 2) (chunk.buffer as ArrayBuffer).transfer();
      return true;
    });
    assert.deepEqual(seen, [1, 2, 3, 4, 5]);
    // transferred between an asynchronous append's call and its copy,
    // and between its copy and its commit
    const late = log.appendAsync(Uint8Array.of(7));
    log.walk(0, (chunk) => void (chunk.buffer as ArrayBuffer).transfer());
    assert.equal(await late, 5);
    const copying = log.appendAsync(Uint8Array.of(8));
    copying.poll();
    copying.poll(); // placed, its copy sent to the mover's thread
    log.walk(0, (chunk) => void (chunk.buffer as ArrayBuffer).transfer());
    assert.equal(await copying, 6);
    assert.deepEqual([...logContents(log)], [1, 2, 3, 4, 5, 7, 8]);
    log.rewind();
    assert.equal(log.tell(), 0);
    log.append(Uint8Array.of(6));
  }
  using log = PmemLog.open(path);
  assert.deepEqual([...logContents(log)], [6]);
});

// ---- appends across crashes ----

/** A traced run: the trace from the file's creation, and each op's log. */
interface LogTrace {
  events: TraceEvent[];
  /** `states[k]`: what the log holds after operation k (0: created). */
  states: Uint8Array[];
}

function randomBytes(rand: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = 1 + Math.floor(rand() * 255);
  return b;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

/**
 * Create a log at `path` and run `ops` operations on it, every store
 * traced from the file's creation: appends, appendv's with an empty part,
 * batches of asynchronous appends polled together, rewinds. Marks say
 * "issue k" before operation k and "ack k" once it returned.
 */
async function recordLog(
  path: string,
  model: PersistenceModel,
  mover: Vdm,
  seed: number,
  ops: number,
  dropFences: boolean,
): Promise<LogTrace> {
  const rand = rng(seed);
  let probe: Mapping | undefined;
  const tracer = new CrashTracer({
    live: () => (probe = mapFile(path)).view(),
    shadow: new Uint8Array(2 * MiB),
    flushGranularity: model.flushGranularity,
  });
  const traced = faultyTracer(tracer, { dropFences });
  // the log's mapping is private to it: trace the one it makes
  const map = Mapping.map;
  Mapping.map = (...args: Parameters<typeof Mapping.map>) => {
    const m = map.apply(Mapping, args);
    setMappingTracer(m, traced);
    return m;
  };
  let log: PmemLog;
  try {
    log = PmemLog.create(path, { poolSize: 2 * MiB, mover });
  } finally {
    Mapping.map = map;
  }
  try {
    tracer.mark("ack 0");
    const states: Uint8Array[] = [new Uint8Array(0)];
    let k = 0;
    const issue = () => tracer.mark(`issue ${++k}`);
    const ack = (n: number) => tracer.mark(`ack ${n}`);
    while (k < ops) {
      const r = rand();
      const now = states[states.length - 1];
      if (r < 0.3) {
        const d = randomBytes(rand, 1 + Math.floor(rand() * 300));
        issue();
        log.append(d);
        states.push(concat([now, d]));
        ack(k);
      } else if (r < 0.55) {
        const parts = [
          randomBytes(rand, Math.floor(rand() * 200)),
          new Uint8Array(0),
          randomBytes(rand, 1 + Math.floor(rand() * 5000)),
        ];
        issue();
        log.appendv(parts);
        states.push(concat([now, ...parts]));
        ack(k);
      } else if (r < 0.93) {
        const futures: Future<number>[] = [];
        const first = k + 1;
        for (let n = 1 + Math.floor(rand() * 4); n > 0; n--) {
          const d = randomBytes(rand, Math.floor(rand() * 3000));
          issue();
          futures.push(log.appendAsync(d));
          states.push(concat([states[states.length - 1], d]));
        }
        // placed together, copied as one batch, committed as they finish
        for (const f of futures) f.poll();
        await all(futures);
        for (let i = first; i <= k; i++) ack(i);
      } else {
        issue();
        log.rewind();
        states.push(new Uint8Array(0));
        ack(k);
      }
    }
    log.close();
    return { events: tracer.finish(), states };
  } finally {
    log.close();
    probe?.close();
  }
}

/** What a crash sweep of a trace found. */
interface LogSweep {
  images: number;
  /** Images of an unfinished create, refused as not a log. */
  refused: number;
  /** Images libpmemlog opened too, and read the same. */
  crossChecked: number;
  problems: string[];
}

/**
 * Every crash image of a trace (CI subsets) must open as the log after
 * one of the operations issued and not yet acknowledged, or the last one
 * acknowledged; before the create returned it may be refused, as not a
 * log, with a PmemError. Every `crossEvery`-th image also goes to
 * libpmemlog, which must open it, or refuse it, alike and read the same.
 */
function sweepLog(
  trace: LogTrace,
  model: PersistenceModel,
  seed: number,
  crossEvery: number,
): LogSweep {
  const dir = tempDir();
  using scratch = new ScratchImage(
    join(dir, "scratch"),
    new Uint8Array(2 * MiB),
  );
  const out: LogSweep = {
    images: 0,
    refused: 0,
    crossChecked: 0,
    problems: [],
  };
  let acked = -1;
  let issued = -1;
  const images = crashImages({
    scratch,
    events: trace.events,
    model,
    rand: rng(seed ^ 0x5eed),
    subsets: CI_SUBSETS,
    mark(label) {
      const [what, n] = label.split(" ");
      if (what === "ack") acked = Math.max(acked, Number(n));
      issued = Math.max(issued, Number(n));
    },
  }, { crashPoints: 0, duplicates: 0 });
  for (const { event, image } of images) {
    out.images++;
    for (const words of image) scratch.apply(words);
    const at = `event ${event} (acknowledged ${acked}, issued ${issued})`;
    let got: Uint8Array | null = null;
    try {
      // a private mapping: nothing of the check reaches the image
      const log = openPmemLogToInspect(scratch.path);
      try {
        got = logContents(log);
        if (log.tell() !== got.length) {
          out.problems.push(`${at}: tell ${log.tell()}, ${got.length} bytes`);
        }
      } finally {
        log.close();
      }
    } catch (e) {
      if (acked >= 0 || !(e instanceof PmemError) || e.code !== -22) {
        out.problems.push(`${at}: refused: ${e}`);
      } else out.refused++;
    }
    if (got !== null) {
      let found = false;
      // (a create that had not returned may have finished: empty)
      const last = Math.max(issued, 0);
      for (let j = Math.max(acked, 0); j <= last && !found; j++) {
        found = Buffer.compare(got, trace.states[j]) === 0;
      }
      if (!found) {
        out.problems.push(`${at}: ${got.length} bytes, no state in range`);
      }
    }
    if (crossEvery > 0 && out.images % crossEvery === 0) {
      const copy = join(dir, "copy");
      writeFileSync(copy, scratch.live);
      const dump = join(dir, "dump");
      const r = logutil("dump", copy, dump);
      if ((r.status === 0) !== (got !== null)) {
        out.problems.push(
          `${at}: libpmemlog ${r.status === 0 ? "opens" : "refuses"} it, ` +
            `PmemLog ${got === null ? "refuses" : "opens"} it: ${r.stderr}`,
        );
      } else if (got !== null) {
        if (Buffer.compare(new Uint8Array(readFileSync(dump)), got) !== 0) {
          out.problems.push(`${at}: libpmemlog reads other bytes`);
        }
        out.crossChecked++;
      }
    }
    scratch.revert();
  }
  return out;
}

test(
  "every crash image of a log's creation, appends, appendv's, async batches and rewinds holds the log after an operation in flight, and libpmemlog reads it alike (both models, cpu, thread and DSA movers)",
  async () => {
    let images = 0;
    let refused = 0;
    let crossChecked = 0;
    for (const model of [CACHE_LINE, PAGE]) {
      for (const name of ["cpu", "threads", "dsa"] as const) {
        using mover = crashMover(name);
        const trace = await recordLog(tempPath(), model, mover, 5, 14, false);
        const sweep = sweepLog(trace, model, 5, LIBPMEMLOG_SKIP ? 0 : 4);
        assert.deepEqual(
          sweep.problems.slice(0, 5),
          [],
          `${model.name}, ${name}: ${sweep.problems.length} problems`,
        );
        images += sweep.images;
        refused += sweep.refused;
        crossChecked += sweep.crossChecked;
      }
    }
    assert.ok(images >= 500, `only ${images} images`);
    assert.ok(refused > 0, "no image of an unfinished create");
    if (!LIBPMEMLOG_SKIP) {
      assert.ok(crossChecked >= 100, `libpmemlog read ${crossChecked}`);
    }
  },
  { timeout: 120_000 },
);

test("the log crash sweep finds lost and torn appends when the fences are hidden", async () => {
  using mover = crashMover("cpu");
  for (const model of [CACHE_LINE, PAGE]) {
    const trace = await recordLog(tempPath(), model, mover, 5, 14, true);
    const sweep = sweepLog(trace, model, 5, 0);
    assert.ok(
      sweep.problems.some((p) => /no state in range/.test(p)),
      `${model.name}: ${sweep.problems.slice(0, 3)}`,
    );
  }
});

test("PmemLog's create, appends, rewinds and close leave no store unflushed, unfenced or overwritten between fences", async () => {
  for (const name of ["cpu", "threads", "dsa"] as const) {
    using mover = crashMover(name);
    // at cache-line resolution, whatever this process's mapping granularity
    const trace = await recordLog(tempPath(), CACHE_LINE, mover, 5, 30, false);
    const report = lint(
      trace.events,
      (at) => at < 4096 ? "pool header" : at < 8192 ? "descriptor" : "data",
    );
    assert.deepEqual(report.unflushed, [], name);
    assert.deepEqual(report.unfenced, [], name);
    assert.deepEqual(report.overwritten, [], name);
    // (redundant flushes are not failed: create writes back the zero
    // tail of the header and the zero run-time area, as libpmemlog does)
  }
});
