// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The Worker of the stream's tests of a Worker ended in a commit or a
 * reserve (`tests/stream_workers_test.ts`): it opens a stream by path,
 * puts entries in place and commits them itself, through its core's own
 * calls (`commitReady`, `publishAlone`), ending its thread at one step of
 * that commit, as a Worker terminated there would: holding the commit
 * lock with the commit half done; or it ends in a reserve, holding the
 * reserve lock. No tracer sees these steps (nothing is
 * persisted in them), so the Worker wraps the calls of its own media and
 * shared state that mark them, and ends its thread in the wrapper:
 *
 * - `"marked"`: at the fourth header queued, with the first three
 *   entries' ring slots marked committed (the padding's too) and the
 *   first region's terminator zeroed, no header stored;
 * - `"headers"`: with every header stored, no region's committed end
 *   moved;
 * - `"region"`: with the first region's committed end moved, not the
 *   others', nor the stream's committed timestamp;
 * - `"alone"`: in `publishAlone` of a lone reservation, with its header
 *   stored and persisted and its region's committed end moved, not the
 *   stream's committed timestamp;
 * - `"reserveTail"`: in a reserve of 32 bytes in region 0, with its ring
 *   slot filled and the region's reserved end moved, not the next
 *   timestamp;
 * - `"reserved"`: in a reserve of 32 bytes in region 0, with everything
 *   stored, as it releases the reserve lock;
 * - `"aloneWritten"`: in an `append` of `[2]` to region 0 with nothing
 *   else in flight (`appendAlone`: both locks), with the entry stored and
 *   persisted, before it reads as ready;
 * - `"aloneReady"`: the same, with the entry marked ready and the
 *   region's reserved end moved, not its committed end nor the next
 *   timestamp;
 * - `"cancel"`: in a cancel of a reservation of 32 bytes in region 0 (its
 *   last), with the region's reserved end moved back, its slot not yet
 *   given up;
 * - `"allocate"`: in an allocation of a third region, with its slot
 *   allocated on the media, nothing in the shared state;
 * - `"freeBegin"`: in a free of a third region it allocated, with the
 *   region marked as being freed, its entries not settled;
 * - `"free"`: the same, with the slot cleared on the media, not in the
 *   shared state;
 * - `"freeGap"`: the same, between the free's two holds of the reserve
 *   lock: the region marked as being freed, no lock held;
 * - `"freeGapThird"`: the same, in a free of the third region, which the
 *   test allocated (so the test holds its handle);
 * - `"truncate"`: in a truncate of region 0 up to timestamp 1, with the
 *   new head on the media, not in the shared state;
 * - `"close"`: in the last close of the process (the test closed its
 *   own first), with a reservation of 32 bytes in region 0 never
 *   published, committed as padding and persisted, the settled timestamp
 *   W stored on the media, not the bound R. There it sets `words[0]` to
 *   3 and waits (20 s at most) for `words[1]` to be set, so the test
 *   opens the stream again (joining this open's share) before it ends.
 *
 * The entries (except for `"alone"`): `[2]` in region 0, `[3]` in region
 * 1, a reservation given up in region 0 (padding), `[4]` in region 0 (32
 * bytes each, filled with that byte). It posts
 * "ready" first, then takes one job, sets `words[0]` to 1 as it ends at
 * the step, and never replies (2: the step never came).
 *
 * @module
 */
import process from "node:process";
import { commitReady } from "../../stream/commit.ts";
import { ENTRY_HEADER } from "../../stream/layout.ts";
import { LogStream } from "../../stream/mod.ts";
import { streamCore } from "../../stream/open.ts";

/** A step of a commit the Worker ends at (see the module doc). */
export type StreamCommitStep =
  | "marked"
  | "headers"
  | "region"
  | "alone"
  | "reserveTail"
  | "reserved"
  | "aloneWritten"
  | "aloneReady"
  | "cancel"
  | "allocate"
  | "freeBegin"
  | "free"
  | "freeGap"
  | "freeGapThird"
  | "truncate"
  | "close";

/** The one job of this Worker. */
export interface DieInCommitJob {
  /** The stream (at least two regions). */
  path: string;
  /** Where to end. */
  step: StreamCommitStep;
  /** `[0]` is set to 1 (and notified) as the Worker ends at its step. */
  words: SharedArrayBuffer;
}

// deno-lint-ignore no-explicit-any
const self_ = globalThis as any;

/**
 * End this thread now, as a Worker terminated or crashed there: no
 * `finally` of the commit runs (as in `dead_commit_worker.ts`).
 */
function endHere(words: Int32Array): never {
  Atomics.store(words, 0, 1);
  Atomics.notify(words, 0);
  const deno = (globalThis as { Deno?: { exit(code: number): never } }).Deno;
  if (deno !== undefined) deno.exit(0);
  process.exit(0);
}

/**
 * Wrap method `name` of `target` (an own property shadows the class's):
 * the thread ends at its `call`-th call, before it runs (`before`) or
 * after.
 */
function endAt(
  target: object,
  name: string,
  call: number,
  before: boolean,
  words: Int32Array,
): void {
  const t = target as Record<string, (...args: unknown[]) => unknown>;
  const method = t[name].bind(target);
  let calls = 0;
  t[name] = (...args: unknown[]) => {
    if (++calls === call && before) endHere(words);
    const out = method(...args);
    if (calls === call) endHere(words);
    return out;
  };
}

self_.onmessage = (e: MessageEvent<DieInCommitJob>) => {
  const job = e.data;
  const words = new Int32Array(job.words);
  const s = LogStream.open(job.path);
  const core = streamCore(s);
  const [r0, r1] = s.regions();
  /** Reserve an entry of 32 bytes of `v` in `r` and put its data in place. */
  const place = (r: typeof r0, v: number) => {
    const res = core.reserve(r.id, r.generation, 32, "test")!;
    core.media.set(res.at + ENTRY_HEADER, new Uint8Array(32).fill(v));
    core.ready(res.ts);
    return res;
  };
  const shared = core.shared;
  if (job.step === "cancel") {
    const res = core.reserve(r0.id, r0.generation, 32, "test")!;
    endAt(shared, "setTail", 1, false, words);
    core.cancel(res, "test");
  } else if (job.step === "allocate") {
    endAt(shared, "setGeneration", 1, true, words);
    s.allocateRegion(1 << 20);
  } else if (
    job.step === "freeBegin" || job.step === "free" || job.step === "freeGap"
  ) {
    const r2 = s.allocateRegion(1 << 20);
    // the first: beginFree's; the second: finishFree's
    if (job.step === "freeBegin") {
      endAt(shared, "setRegionState", 1, false, words);
    } else if (job.step === "free") {
      endAt(shared, "setRegionState", 2, true, words);
    } else endAt(shared, "unlockReserve", 1, false, words);
    s.freeRegion(r2);
  } else if (job.step === "freeGapThird") {
    const r2 = s.regions()[2];
    endAt(shared, "unlockReserve", 1, false, words);
    s.freeRegion(r2);
  } else if (job.step === "close") {
    core.reserve(r0.id, r0.generation, 32, "test");
    const media = core.media as unknown as Record<string, unknown>;
    const write64 = core.media.write64.bind(core.media);
    media.write64 = (at: number, v: number) => {
      write64(at, v);
      Atomics.store(words, 0, 3);
      Atomics.notify(words, 0);
      Atomics.wait(words, 1, 0, 20_000);
      endHere(words);
    };
    s.close();
  } else if (job.step === "truncate") {
    endAt(shared, "setHead", 1, true, words);
    s.truncate(r0, 1);
  } else if (job.step === "aloneWritten" || job.step === "aloneReady") {
    if (job.step === "aloneWritten") {
      endAt(core.media, "writeEntry", 1, false, words);
    } else endAt(shared, "setTail", 1, false, words);
    s.append(r0, new Uint8Array(32).fill(2));
  } else if (job.step === "reserveTail" || job.step === "reserved") {
    if (job.step === "reserveTail") endAt(shared, "setTail", 1, false, words);
    else endAt(shared, "unlockReserve", 1, true, words);
    core.reserve(r0.id, r0.generation, 32, "test");
  } else if (job.step === "alone") {
    const res = place(r0, 2);
    endAt(shared, "setCommitted", 1, false, words);
    core.publishAlone(res);
  } else {
    place(r0, 2);
    place(r1, 3);
    core.abandon(core.reserve(r0.id, r0.generation, 32, "test")!.ts);
    place(r0, 4);
    if (job.step === "marked") endAt(core.media, "queueHeader", 4, true, words);
    if (job.step === "headers") {
      endAt(core.media, "writeHeaders", 1, false, words);
    }
    if (job.step === "region") endAt(shared, "setCommitted", 1, false, words);
    shared.lockCommit("test");
    commitReady(shared, core.media, core.geometry.seed);
  }
  Atomics.store(words, 0, 2);
  Atomics.notify(words, 0);
};
self_.postMessage("ready");
