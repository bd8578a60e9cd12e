// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Workers of one process share a stream: each opens the file by path,
// and their appends take one timestamp order.
import { all } from "../future/mod.ts";
import { LogStream } from "../stream/mod.ts";
import type { Job } from "./workers/stream_worker.ts";
import { assert, tempPath, test } from "./_harness.ts";
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
