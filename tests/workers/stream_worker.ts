// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A Worker of the stream tests: it opens the stream file by path (a
 * Worker cannot be handed a mapping) and appends or follows as asked,
 * then posts its results. It posts "ready" once loaded, since a message
 * sent before its handler is set may be lost.
 *
 * @module
 */
import { all } from "../../future/mod.ts";
import { LogStream } from "../../stream/mod.ts";
import { streamCore } from "../../stream/open.ts";

/**
 * A job: append `count` entries tagged `id`; follow a region; or scan a
 * region's entries again and again until `count` are there, counting
 * the entries read with timestamp 0 (a header read before it was
 * stored).
 */
export type Job =
  | { kind: "append"; path: string; id: number; count: number }
  | { kind: "follow"; path: string; region: number; count: number }
  | {
    kind: "scan";
    path: string;
    region: number;
    count: number;
    /** An Int32Array's buffer: the worker stores its scan count there. */
    scans: SharedArrayBuffer;
  }
  /**
   * Open the stream and keep it open (to be terminated) holding a
   * reservation of `bytes` in the first region that is never published,
   * or the commit lock; the reservation's timestamp (0 for the lock).
   */
  | { kind: "hold"; path: string; what: "reservation" | "commitLock" }
  /**
   * Open the stream, take the handle of region `region` of generation
   * `generation`, store 1 in `reached` (an Int32Array's buffer), then
   * truncate it up to `upto` or free it; the count truncated (-1 for a
   * free), or the name of the error thrown.
   */
  | StaleJob<"truncate">
  | StaleJob<"free">
  /**
   * Open the stream, reserve `bytes` bytes filled with `fill` in the first
   * region, store 1 in `gate` (an Int32Array's buffer) and wait until
   * the test stores 2 there; then publish and close. The timestamp that
   * publish returned.
   */
  | {
    kind: "reserveAndWait";
    path: string;
    bytes: number;
    fill: number;
    gate: SharedArrayBuffer;
  };

/** A truncate or free job (see {@linkcode Job}). */
interface StaleJob<K> {
  kind: K;
  path: string;
  region: number;
  generation: number;
  upto: number;
  reached: SharedArrayBuffer;
}

// deno-lint-ignore no-explicit-any
const self_ = globalThis as any;

function tagged(id: number, i: number): Uint8Array {
  const b = new Uint8Array(8 + (i % 40));
  const dv = new DataView(b.buffer);
  dv.setUint32(0, id, true);
  dv.setUint32(4, i, true);
  return b;
}

/** What a holding job keeps alive (never closed). */
const held: unknown[] = [];

async function run(job: Job): Promise<unknown> {
  if (job.kind === "hold") {
    const s = LogStream.open(job.path);
    held.push(s);
    if (job.what === "commitLock") {
      streamCore(s).shared.lockCommit("test");
      return 0;
    }
    const res = s.reserve(s.regions()[0], 100);
    held.push(res);
    return res.timestamp;
  }
  using s = LogStream.open(job.path);
  if (job.kind === "reserveAndWait") {
    const res = s.reserve(s.regions()[0], job.bytes);
    res.data.fill(job.fill);
    const gate = new Int32Array(job.gate);
    Atomics.store(gate, 0, 1);
    Atomics.notify(gate, 0);
    while (Atomics.load(gate, 0) !== 2) Atomics.wait(gate, 0, 1, 1000);
    return s.publish(res);
  }
  if (job.kind === "truncate" || job.kind === "free") {
    const r = s.regions().find((x) =>
      x.id === job.region && x.generation === job.generation
    )!;
    Atomics.store(new Int32Array(job.reached), 0, 1);
    try {
      if (job.kind === "free") {
        s.freeRegion(r);
        return -1;
      }
      return s.truncate(r, job.upto);
    } catch (e) {
      return (e as Error).name;
    }
  }
  if (job.kind === "follow") {
    const r = s.regions().find((x) => x.id === job.region)!;
    const seen: number[] = [];
    for await (const e of s.follow(r)) {
      seen.push(e.timestamp);
      if (seen.length === job.count) break;
    }
    return seen;
  }
  if (job.kind === "scan") {
    const r = s.regions().find((x) => x.id === job.region)!;
    const shared = new Int32Array(job.scans);
    let zeros = 0;
    let scans = 0;
    for (let n = 0; n < job.count; scans++) {
      n = 0;
      for (const e of s.entries(r)) {
        if (e.timestamp === 0) zeros++;
        n++;
      }
      Atomics.store(shared, 0, scans + 1);
    }
    return { zeros, scans };
  }
  const [shared, own] = [s.regions()[0], s.regions()[job.id]];
  const stamps: number[] = [];
  for (let i = 0; i < job.count;) {
    const r = i % 4 === 3 ? own : shared;
    const k = i % 3;
    if (k === 0) stamps.push(s.append(r, tagged(job.id, i++)));
    else if (k === 1) {
      const fs = [];
      for (let j = 0; j < 4 && i < job.count; j++) {
        fs.push(s.appendAsync(i % 4 === 3 ? own : shared, tagged(job.id, i++)));
      }
      stamps.push(...await all(fs));
    } else {
      const data = tagged(job.id, i++);
      const res = s.reserve(r, data.length);
      res.data.set(data);
      stamps.push(s.publish(res));
    }
  }
  return stamps;
}

self_.onmessage = async (e: MessageEvent<Job>) => {
  try {
    self_.postMessage({ ok: await run(e.data) });
  } catch (err) {
    self_.postMessage({ error: String(err) });
  }
};
self_.postMessage("ready");
