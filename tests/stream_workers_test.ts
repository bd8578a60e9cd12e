// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Workers of one process share a stream: each opens the file by path,
// and their appends take one timestamp order.
import { all } from "../future/mod.ts";
import { LogStream } from "../stream/mod.ts";
import type { Job } from "./workers/stream_worker.ts";
import type { StreamCommitStep } from "./workers/stream_dead_commit_worker.ts";
import { assert, lastJsonLine, runScript, tempPath, test } from "./_harness.ts";
import {
  ask as askJob,
  startWorker as startJobWorker,
} from "./workers/jobs.ts";

const MiB = 1 << 20;
const WORKER = new URL("./workers/stream_worker.ts", import.meta.url).href;

/** Start this file's Worker and wait until it is ready for a job. */
const startWorker = (): Promise<Worker> => startJobWorker(WORKER);
/** Give a Worker a job; its result. */
const ask = <T>(w: Worker, job: Job): Promise<T> => askJob<T>(w, job);

test("two Workers appending to one region get one gap-free timestamp order", async () => {
  const path = tempPath();
  const count = 600;
  using s = LogStream.create(path, { size: 16 * MiB });
  const shared = s.allocateRegion(4 * MiB);
  s.allocateRegion(MiB);
  s.allocateRegion(MiB);
  const workers = [await startWorker(), await startWorker()];
  try {
    const results = await Promise.all(
      workers.map((w, i) =>
        ask<number[]>(w, { kind: "append", path, id: i + 1, count })
      ),
    );
    const stamps = results.flat().sort((a, b) => a - b);
    assert.equal(stamps.length, 2 * count);
    assert.equal(new Set(stamps).size, stamps.length, "unique");
    assert.equal(stamps[stamps.length - 1] - stamps[0] + 1, stamps.length);
    for (const r of results) {
      for (let i = 1; i < r.length; i++) assert.ok(r[i] > r[i - 1]);
    }
    assert.equal(s.committedTimestamp, stamps[stamps.length - 1]);
    assert.equal(s.persistedTimestamp, s.committedTimestamp);
    // the Workers' timestamps count as reserved here: waits take them
    const last = stamps[stamps.length - 1];
    await s.waitPersisted(last);
    assert.throws(() => s.waitCommitted(last + 1), /never reserved/);
    // every Worker's entries in its own issue order, in every region
    let total = 0;
    for (const r of s.regions()) {
      const next = new Map<number, number>();
      let prev = 0;
      for (const e of s.entries(r)) {
        assert.ok(e.timestamp > prev);
        prev = e.timestamp;
        const dv = new DataView(e.data.buffer, e.data.byteOffset);
        const id = dv.getUint32(0, true);
        const i = dv.getUint32(4, true);
        assert.ok(i > (next.get(id) ?? -1), `worker ${id} entry ${i}`);
        next.set(id, i);
        total++;
      }
    }
    assert.equal(total, 2 * count);
    assert.ok([...s.entries(shared)].length > count);
  } finally {
    for (const w of workers) w.terminate();
  }
});

test("a follower in a Worker sees the entries appended here", async () => {
  const path = tempPath();
  using s = LogStream.create(path, { size: 4 * MiB });
  const r = s.allocateRegion(MiB);
  const w = await startWorker();
  try {
    const seen = ask<number[]>(w, {
      kind: "follow",
      path,
      region: r.id,
      count: 20,
    });
    const stamps: number[] = [];
    for (let i = 0; i < 20; i++) {
      stamps.push(
        i % 2
          ? s.append(r, new Uint8Array(10))
          : await s.appendAsync(r, new Uint8Array(10)),
      );
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.deepEqual(await seen, stamps);
  } finally {
    w.terminate();
  }
});

test("a reader in a Worker reads no header before it is stored", async () => {
  // Groups of asynchronous appends store their headers in one native
  // call: a reader in another thread that saw a region's new committed
  // end before those headers were stored read zeros there (entries of
  // timestamp 0; seen once as a follower's flake). A Worker scans the
  // region without pause while large groups commit.
  const path = tempPath();
  const groups = 500;
  const perGroup = 32;
  using s = LogStream.create(path, { size: 24 * MiB });
  const r = s.allocateRegion(20 * MiB);
  const w = await startWorker();
  try {
    const progress = new SharedArrayBuffer(4);
    const scanned = ask<{ zeros: number; scans: number }>(w, {
      kind: "scan",
      path,
      region: r.id,
      count: groups * perGroup,
      scans: progress,
    });
    // the scene needs the Worker scanning while the groups commit: wait
    // until it has finished a first scan (of the empty region), so it is
    // scanning again as they commit (a Worker slow to start could first
    // look after the last commit, and scan once); a Worker that failed
    // ends the wait too, and its error the test
    let answered = false;
    scanned.then(() => answered = true, () => answered = true);
    while (!answered && Atomics.load(new Int32Array(progress), 0) === 0) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const data = new Uint8Array(1024).fill(7);
    for (let g = 0; g < groups; g++) {
      const fs = [];
      for (let j = 0; j < perGroup; j++) fs.push(s.appendAsync(r, data));
      await all(fs);
    }
    const { zeros, scans } = await scanned;
    assert.ok(scans > 1, `${scans} scans`);
    assert.equal(zeros, 0, `entries of timestamp 0 in ${scans} scans`);
  } finally {
    w.terminate();
  }
});

/**
 * The start of a child script whose Worker ends holding a stream's locks:
 * the imports, `out` for its report, `code(f)` (an error's code, or its
 * text), and `bytes(v)` (32 bytes of v).
 */
const WORKER_CHILD = `
    import { LogStream } from "@root/stream/mod.ts";
    import { streamCore } from "@root/stream/open.ts";
    import { FileShare } from "@root/pmem2/file_share.ts";
    import { ask, startWorker, terminateAndWait } from "@root/tests/workers/jobs.ts";
    const out = {};
    const code = (f) => {
      try { return f(); } catch (e) { return e.code ?? String(e); }
    };
    const bytes = (v) => new Uint8Array(32).fill(v);`;

// Bug: a Worker terminated with a reservation it never published, or
// holding the commit lock, hung every later append and wait of the
// process for good: the commit pass waited for the reservation's data
// forever, and the lock words could not say whose they were. Ring slots
// and lock words now carry the holder's share token: a reservation whose
// thread ended is committed as padding, and a commit lock whose holder
// ended is taken over (its appends were failing with EOWNERDEAD, -130,
// until a reopen: see the test of a Worker ended in the middle of a
// commit). In a child process, so a hang fails the test instead of the
// runner.
test(
  "a Worker ended holding a reservation or the commit lock hangs no append here",
  () => {
    const r = runScript(
      `${WORKER_CHILD}
    /** Terminate w; wait until the share saw its thread end. */
    async function end(w, s) {
      await terminateAndWait(w, FileShare.of(streamCore(s).shared.i32.buffer));
    }
    for (const what of ["reservation", "commitLock"]) {
      const path = ${JSON.stringify(tempPath())} + what;
      const s = LogStream.create(path, { size: 8 << 20 });
      const r = s.allocateRegion(1 << 20);
      s.append(r, bytes(1));
      const w = await startWorker("@root/tests/workers/stream_worker.ts");
      out[what + " held"] = await ask(w, { kind: "hold", path, what });
      await end(w, s);
      out[what + " append"] = code(() => s.append(r, bytes(2)) > 0 ? "ok" : "no");
      if (what === "commitLock") {
        out[what + " publish"] = code(() => s.publish(s.reserve(r, 4)) > 0 ? "ok" : "no");
      }
      out[what + " entries"] = code(() =>
        [...s.entries(r)].map((e) => e.data[0]).join(",")
      );
      out[what + " close"] = code(() => { s.close(); return "ok"; });
      const again = LogStream.open(path);
      out[what + " reopened"] = [...again.entries(again.regions()[0])]
        .map((e) => e.data[0]).join(",");
      again.append(again.regions()[0], bytes(3));
      again.close();
    }
    console.log(JSON.stringify(out));
    `,
      60_000,
    );
    const out = lastJsonLine(r);
    assert.deepEqual(out, {
      "reservation held": 2,
      "reservation append": "ok",
      "reservation entries": "1,2",
      "reservation close": "ok",
      "reservation reopened": "1,2",
      "commitLock held": 0,
      "commitLock append": "ok",
      "commitLock publish": "ok",
      "commitLock entries": "1,2,0",
      "commitLock close": "ok",
      "commitLock reopened": "1,2,0",
    });
  },
  { timeout: 90_000 },
);

// Bug: a Worker that ended with the stream open (terminated, never
// closed) still counted as an open of the process: the others' last
// close was never the last, so the stream was never finished (W and R
// stayed where they were on the media), and the next open's timestamps
// jumped to the next bound step. An open now counts by its share token,
// and one whose thread ended stops counting, as lock holders do.
test(
  "a Worker ended with the stream open stops counting: the last close here finishes the stream and timestamps go on after a reopen",
  () => {
    const r = runScript(
      `${WORKER_CHILD}
    import { readFileSync } from "node:fs";
    const path = ${JSON.stringify(tempPath())};
    const s = LogStream.create(path, { size: 8 << 20 });
    const r = s.allocateRegion(1 << 20);
    s.append(r, bytes(1));
    const w = await startWorker("@root/tests/workers/stream_worker.ts");
    out.held = await ask(w, { kind: "hold", path, what: "reservation" });
    await terminateAndWait(w, FileShare.of(streamCore(s).shared.i32.buffer));
    out.append = s.append(r, bytes(3));
    s.close();
    const dv = new DataView(readFileSync(path).buffer);
    // the settled timestamp W and the bound R on the media (64, 72)
    out.media = dv.getBigUint64(64, true) + "/" + dv.getBigUint64(72, true);
    const again = LogStream.open(path);
    out.entries = [...again.entries(again.regions()[0])]
      .map((e) => e.timestamp + ":" + e.data[0]).join(",");
    out.next = again.append(again.regions()[0], bytes(4));
    again.close();
    console.log(JSON.stringify(out));
    `,
      60_000,
    );
    assert.deepEqual(lastJsonLine(r), {
      held: 2,
      append: 3,
      media: "3/3",
      entries: "1:1,3:3",
      next: 4,
    });
  },
  { timeout: 90_000 },
);

// Bug: an open joined this isolate's core of the stream by the instance
// number its first opener drew, unique only among that opener's isolate:
// a Worker with a core of another stream under the same number joined
// that one, and wrote to the wrong file. Here every draw gives the same
// number.
test("a Worker's open of a stream never joins its core of another stream drawn the same instance number", () => {
  const r = runScript(`
import { writeFileSync } from "node:fs";
import { LogStream } from "@root/stream/mod.ts";
const same = (a) => { a[0] = 42; return a; };
crypto.getRandomValues = same;
const workerUrl = new URL("./worker.ts", import.meta.url);
writeFileSync(workerUrl, \`
import { LogStream } from "@root/stream/mod.ts";
crypto.getRandomValues = (a) => { a[0] = 42; return a; };
let y;
onmessage = (e) => {
  if (e.data.create) {
    y = LogStream.create(e.data.create, { size: 4 << 20 });
    y.allocateRegion(64 << 10);
    postMessage("created");
    return;
  }
  const x = LogStream.open(e.data.open);
  const regions = x.regions().length;
  x.close();
  y.close();
  postMessage(regions);
};
postMessage("loaded");
\`);
const dir = new URL(".", import.meta.url).pathname;
const w = new Worker(workerUrl.href, { type: "module" });
const next = () => new Promise((resolve) => { w.onmessage = (e) => resolve(e.data); });
await next();
w.postMessage({ create: dir + "y.stream" });
await next();
const x = LogStream.create(dir + "x.stream", { size: 4 << 20 });
for (let i = 0; i < 3; i++) x.allocateRegion(64 << 10);
w.postMessage({ open: dir + "x.stream" });
const regions = await next();
w.terminate();
x.close();
console.log(JSON.stringify({ regions }));
`);
  assert.deepEqual(lastJsonLine(r), {
    regions: 3,
  });
});

// Bug: close() threw EOWNERDEAD (-130) when a Worker had ended holding
// the commit lock while entries were committed and not yet persisted:
// close owes their persist, and waited for the lock like an append does
// (the stream did close; a reopen recovered them). close takes the dead
// holder's lock over for that persist, as every taker of it now does.
test(
  "close() after a Worker ended holding the commit lock persists what is committed and returns",
  () => {
    const r = runScript(
      `${WORKER_CHILD}
    const path = ${JSON.stringify(tempPath())};
    const s = LogStream.create(path, { size: 8 << 20 });
    const r = s.allocateRegion(1 << 20);
    s.append(r, bytes(1));
    await s.appendAsync(r, bytes(2), { level: "committed" });
    out.pending = s.persistedTimestamp < s.committedTimestamp;
    const other = LogStream.open(path);
    const w = await startWorker("@root/tests/workers/stream_worker.ts");
    out.held = await ask(w, { kind: "hold", path, what: "commitLock" });
    await terminateAndWait(w, FileShare.of(streamCore(s).shared.i32.buffer));
    const committed = s.committedTimestamp;
    out.close = code(() => { s.close(); return "ok"; });
    out.persisted = other.persistedTimestamp === committed;
    // taken over: the other open appends on
    out.append = code(() => other.append(other.regions()[0], bytes(3)));
    out.entries = [...other.entries(other.regions()[0])].map((e) => e.data[0]).join(",");
    other.close();
    const again = LogStream.open(path);
    out.reopened = [...again.entries(again.regions()[0])]
      .map((e) => e.data[0]).join(",");
    again.close();
    console.log(JSON.stringify(out));
    `,
      60_000,
    );
    const out = lastJsonLine(r);
    assert.deepEqual(out, {
      pending: true,
      held: 0,
      close: "ok",
      persisted: true,
      append: 3,
      entries: "1,2,3",
      reopened: "1,2,3",
    });
  },
  { timeout: 90_000 },
);

/**
 * Run, in a child, each of `steps` of `stream_dead_commit_worker.ts` on a
 * stream of its own (regions 0 and 1, entry [1] in region 0): the Worker
 * ends its own thread at the step; then this thread appends [5] to
 * region 0 and [6] asynchronously to region 1, closes and reopens.
 * Per step: whether the Worker came to it, the two timestamps (or error
 * codes), the committed and persisted timestamps, each region's entries
 * (`ts:first byte`) and live count, and the entries after a reopen.
 */
function endWorkerIn(steps: StreamCommitStep[]): Record<string, unknown> {
  const r = runScript(
    `${WORKER_CHILD}
    const live = (s, r) => streamCore(s).shared.live(r.id);
    const data = (s, r) => [...s.entries(r)]
      .map((e) => e.timestamp + ":" + e.data[0]).join(",");
    for (const step of ${JSON.stringify(steps)}) {
      const path = ${JSON.stringify(tempPath())} + step;
      const s = LogStream.create(path, { size: 8 << 20 });
      const r0 = s.allocateRegion(1 << 20);
      const r1 = s.allocateRegion(1 << 20);
      s.append(r0, bytes(1));
      const share = FileShare.of(streamCore(s).shared.i32.buffer);
      const before = share.endedOpens;
      const w = await startWorker("@root/tests/workers/stream_dead_commit_worker.ts");
      const words = new Int32Array(new SharedArrayBuffer(8));
      w.postMessage({ path, step, words: words.buffer });
      for (const t0 = performance.now(); share.endedOpens === before;) {
        if (performance.now() - t0 > 20000) break;
        await new Promise((r) => setTimeout(r, 2));
      }
      const o = out[step] = { stopped: Atomics.load(words, 0) };
      w.terminate();
      o.before = data(s, r0) + " | " + data(s, r1);
      try { o.append = s.append(r0, bytes(5)); } catch (e) {
        o.append = e.code ?? String(e);
        const doing = / held the reserve lock to ([a-z ]+)/.exec(e.message);
        if (doing !== null) o.doing = doing[1];
      }
      try { o.async = await s.appendAsync(r1, bytes(6)); } catch (e) { o.async = e.code ?? String(e); }
      o.levels = s.committedTimestamp + "/" + s.persistedTimestamp;
      o.entries = data(s, r0) + " | " + data(s, r1);
      o.live = live(s, r0) + "," + live(s, r1);
      o.head = streamCore(s).shared.head(r0.id);
      o.regions = s.regions().length;
      o.close = code(() => { s.close(); return "ok"; });
      const again = LogStream.open(path);
      const [a0, a1] = again.regions();
      o.reopened = data(again, a0) + " | " + data(again, a1);
      o.reregions = again.regions().length;
      again.close();
    }
    console.log(JSON.stringify(out));
    `,
    60_000,
  );
  return lastJsonLine(r);
}

// Bug: a Worker that ended in the middle of a commit (its ring slots
// marked committed, headers stored, some regions' committed ends moved,
// the stream's committed timestamp not) failed every later append of
// the process with EOWNERDEAD (-130) until all of them closed the stream
// and it was opened again. The next taker of the commit lock now takes it
// over and its commit pass finishes the half-done one: every entry the
// Worker had put in place is committed once, in timestamp order, a
// reservation it gave up stays padding, and each region's count of live
// entries (what a truncate of all of them returns) counts each entry
// once. In a child process, so a hang fails the test instead of the
// runner.
test(
  "a Worker ended in the middle of a commit: the next commit finishes it and appends go on",
  () => {
    const out = endWorkerIn(["marked", "headers", "region", "alone"]);
    const three = {
      stopped: 1,
      before: "1:1 | ",
      append: 6,
      async: 7,
      levels: "7/7",
      entries: "1:1,2:2,5:4,6:5 | 3:3,7:6",
      live: "4,2",
      head: 0,
      regions: 2,
      close: "ok",
      reopened: "1:1,2:2,5:4,6:5 | 3:3,7:6",
      reregions: 2,
    };
    assert.deepEqual(out, {
      marked: three,
      headers: three,
      region: three,
      alone: {
        stopped: 1,
        before: "1:1 | ",
        append: 3,
        async: 4,
        levels: "4/4",
        entries: "1:1,2:2,3:5 | 4:6",
        live: "3,1",
        head: 0,
        regions: 2,
        close: "ok",
        reopened: "1:1,2:2,3:5 | 4:6",
        reregions: 2,
      },
    });
  },
  { timeout: 90_000 },
);

// Bug: a Worker that ended holding the reserve lock in a reserve, or in
// an append with nothing else in flight (which stores its entry under
// both locks), failed every later append of the process with EOWNERDEAD
// (-130) until a reopen. Both now mark the lock word, and a lone append
// fills a ring slot as a reserve does; the next taker takes a marked lock
// over and finishes the reservation it finds half made (its ring slot
// filled, the region's reserved end perhaps moved, the next timestamp
// not): counted in, it is committed as padding, or as the entry once
// marked ready, so no later entry lands behind a room no header covers
// (entries past it were not shown, nor recovered) and no timestamp is
// given twice.
test(
  "a Worker ended in a reserve or a lone append: the next taker of the reserve lock finishes the reservation and appends go on",
  () => {
    const out = endWorkerIn([
      "reserveTail",
      "reserved",
      "aloneWritten",
      "aloneReady",
    ]);
    const after = {
      stopped: 1,
      before: "1:1 | ",
      append: 3,
      async: 4,
      levels: "4/4",
      entries: "1:1,3:5 | 4:6",
      live: "2,1",
      head: 0,
      regions: 2,
      close: "ok",
      reopened: "1:1,3:5 | 4:6",
      reregions: 2,
    };
    assert.deepEqual(out, {
      reserveTail: after,
      reserved: after,
      aloneWritten: after,
      // its entry was whole and marked ready: committed as such
      aloneReady: {
        ...after,
        entries: "1:1,2:2,3:5 | 4:6",
        live: "3,1",
        head: 0,
        reopened: "1:1,2:2,3:5 | 4:6",
      },
    });
  },
  { timeout: 90_000 },
);

// Bug: a Worker that ended holding the reserve lock (unmarked) to cancel
// a reservation, allocate or free a region failed every later append of
// the process with EOWNERDEAD (-130) until a reopen, with an error that
// did not say what it was doing. The holder now says (SharedState.hold),
// and the next taker of the lock finishes or rolls back its work
// (stream/takeover.ts): the cancel is done again, an allocation whose
// slot reached the media is loaded from it, a free not yet settled is
// rolled back, a settled one finished, a truncate finished from the head
// on the media (its live count counted again).
test(
  "a Worker ended holding the reserve lock to cancel, allocate, free or truncate: the next taker finishes or rolls back its work and appends go on",
  () => {
    const out = endWorkerIn([
      "cancel",
      "allocate",
      "freeBegin",
      "free",
      "truncate",
    ]);
    const after = {
      stopped: 1,
      before: "1:1 | ",
      append: 3,
      async: 4,
      levels: "4/4",
      entries: "1:1,3:5 | 4:6",
      live: "2,1",
      head: 0,
      regions: 2,
      close: "ok",
      reopened: "1:1,3:5 | 4:6",
      reregions: 2,
    };
    const three = { ...after, regions: 3, reregions: 3 };
    assert.deepEqual(out, {
      cancel: after,
      allocate: {
        ...three,
        append: 2,
        async: 3,
        levels: "3/3",
        entries: "1:1,2:5 | 3:6",
        reopened: "1:1,2:5 | 3:6",
      },
      freeBegin: {
        ...three,
        append: 2,
        async: 3,
        levels: "3/3",
        entries: "1:1,2:5 | 3:6",
        reopened: "1:1,2:5 | 3:6",
      },
      free: {
        ...after,
        append: 2,
        async: 3,
        levels: "3/3",
        entries: "1:1,2:5 | 3:6",
        reopened: "1:1,2:5 | 3:6",
      },
      // its head on the media: finished, region 0 emptied and restarted
      // at its start (a pass of 1 MiB on)
      truncate: {
        ...after,
        append: 2,
        async: 3,
        levels: "3/3",
        entries: "2:5 | 3:6",
        live: "1,1",
        head: 1 << 20,
        reopened: "2:5 | 3:6",
      },
    });
  },
  { timeout: 90_000 },
);

// Bug: a Worker that ended inside freeRegion between its two holds of the
// reserve lock (settling the region's entries: no lock held) left the
// region marked as being freed for good: missing from regions(), never
// allocatable, yet back after a reopen. The free now records who marked
// it, and the next taker of the reserve lock rolls back a free whose
// marker ended, through the takeover's repair of a free not yet settled.
test(
  "a Worker ended between a free's two holds of the reserve lock: the next taker rolls the free back and regions() lists the region",
  () => {
    const out = endWorkerIn(["freeGap"]);
    assert.deepEqual(out, {
      freeGap: {
        stopped: 1,
        before: "1:1 | ",
        append: 2,
        async: 3,
        levels: "3/3",
        entries: "1:1,2:5 | 3:6",
        live: "2,1",
        head: 0,
        regions: 3,
        close: "ok",
        reopened: "1:1,2:5 | 3:6",
        reregions: 3,
      },
    });
  },
  { timeout: 90_000 },
);

// Bug: a Worker that ended in the last close of the process (W stored on
// the media, not R) left the reserve lock held: the next open in the
// process joined the share and failed every append with EOWNERDEAD
// (-130) until it closed again. The taker of the lock (the joiner) now
// does the close's work again (nothing of the joiner's is reserved yet:
// it reserves under this lock), and appends go on.
test(
  "a Worker ended in the last close: the next open's taker of the reserve lock finishes it and appends go on",
  () => {
    const r = runScript(
      `${WORKER_CHILD}
    const path = ${JSON.stringify(tempPath())};
    const data = (s) => [...s.entries(s.regions()[0])]
      .map((e) => e.timestamp + ":" + e.data[0]).join(",");
    const s = LogStream.create(path, { size: 8 << 20 });
    s.append(s.allocateRegion(1 << 20), bytes(1));
    const w = await startWorker("@root/tests/workers/stream_dead_commit_worker.ts");
    const words = new Int32Array(new SharedArrayBuffer(8));
    s.close();
    w.postMessage({ path, step: "close", words: words.buffer });
    const until = async (v) => {
      for (const t0 = performance.now(); Atomics.load(words, 0) !== v;) {
        if (performance.now() - t0 > 20000) break;
        await new Promise((r) => setTimeout(r, 2));
      }
    };
    await until(3);
    // joins the Worker's share: its close is in its middle
    const again = LogStream.open(path);
    Atomics.store(words, 1, 1);
    Atomics.notify(words, 1);
    await until(1);
    out.stopped = Atomics.load(words, 0);
    const share = FileShare.of(streamCore(again).shared.i32.buffer);
    for (const t0 = performance.now(); share.endedOpens === 0;) {
      if (performance.now() - t0 > 20000) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    w.terminate();
    try { out.append = again.append(again.regions()[0], bytes(5)); } catch (e) {
      out.append = e.code ?? String(e);
      out.message = e.message;
    }
    out.entries = data(again);
    out.close = code(() => { again.close(); return "ok"; });
    const last = LogStream.open(path);
    out.reopened = data(last);
    out.append2 = code(() => last.append(last.regions()[0], bytes(6)));
    last.close();
    console.log(JSON.stringify(out));
    `,
      60_000,
    );
    assert.deepEqual(lastJsonLine(r), {
      stopped: 1,
      append: 3,
      entries: "1:1,3:5",
      close: "ok",
      reopened: "1:1,3:5",
      append2: 4,
    });
  },
  { timeout: 90_000 },
);

// Bug: a taker of the reserve lock whose repair of the ended holder's
// work threw (a media error) kept the lock, taken over, and never let it
// go: every later call of the process waited for it for ever. The lock
// now goes back to the ended holder, its hold as it was, and the next
// taker repairs it again (here, the media error gone, it succeeds; else
// it fails too, or with -130 naming the work). In a child process, so a
// hang fails the test instead of the runner.
test(
  "a repair of an ended holder's work that throws leaves the reserve lock to that holder: the next taker repairs it, no hang",
  () => {
    const r = runScript(
      `${WORKER_CHILD}
    const path = ${JSON.stringify(tempPath())};
    const s = LogStream.create(path, { size: 8 << 20 });
    const r0 = s.allocateRegion(1 << 20);
    s.allocateRegion(1 << 20);
    const share = FileShare.of(streamCore(s).shared.i32.buffer);
    const w = await startWorker("@root/tests/workers/stream_dead_commit_worker.ts");
    const words = new Int32Array(new SharedArrayBuffer(8));
    w.postMessage({ path, step: "allocate", words: words.buffer });
    for (const t0 = performance.now(); share.endedOpens === 0;) {
      if (performance.now() - t0 > 20000) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    out.stopped = Atomics.load(words, 0);
    w.terminate();
    const media = streamCore(s).media;
    const persist = media.persist.bind(media);
    media.persist = () => { throw new Error("EIO"); };
    out.first = code(() => s.append(r0, bytes(5)));
    media.persist = persist;
    try { out.second = s.append(r0, bytes(6)); } catch (e) {
      out.second = e.code;
      out.doing = / held the reserve lock to ([a-z ]+)/.exec(e.message)?.[1];
    }
    out.close = code(() => { s.close(); return "ok"; });
    const again = LogStream.open(path);
    out.reopened = again.regions().length + " " + again.append(again.regions()[0], bytes(7));
    again.close();
    console.log(JSON.stringify(out));
    `,
      30_000,
    );
    assert.equal(r.signal, null, "a later call hung");
    assert.deepEqual(lastJsonLine(r), {
      stopped: 1,
      first: "Error: EIO",
      second: 1,
      close: "ok",
      // the ended Worker's open no longer counts: the close here was the
      // last, and timestamps go on after the reopen
      reopened: "3 2",
    });
  },
  { timeout: 60_000 },
);
