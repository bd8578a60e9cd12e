// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// A review of the pools shared by the Workers of a process: mixed updates
// (flags included) and reads from several Workers at once, with checks
// from this thread, reopens meanwhile, and few lanes for many Workers.
import { BlockPool } from "../blk/mod.ts";
import { BadBlockError } from "../errors/mod.ts";
import { LogStream } from "../stream/mod.ts";
import { createBlockPool } from "../testing/mod.ts";
import { decode } from "./workers/blk_blocks.ts";
import { unformatted } from "./blk_fixtures.ts";
import type { Report, ReviewJob } from "./workers/review_worker.ts";
import { tagged } from "./workers/review_entries.ts";
import { assert, tempPath, test } from "./_harness.ts";
import {
  ask as askJob,
  startWorker as startJobWorker,
} from "./workers/jobs.ts";

const MiB = 1 << 20;
const WORKER = new URL("./workers/review_worker.ts", import.meta.url).href;

/** Start this file's Worker and wait until it is ready for a job. */
const startWorker = (): Promise<Worker> => startJobWorker(WORKER);
/** Give a Worker a job; its result. */
const ask = <T>(w: Worker, job: ReviewJob): Promise<T> => askJob<T>(w, job);

/** Every block of `0 .. lbas - 1` whole, zeros or in the error state. */
function checkBlocks(pool: BlockPool, lbas: number): void {
  for (let lba = 0; lba < lbas; lba++) {
    let block: Uint8Array;
    try {
      block = pool.read(lba);
    } catch (e) {
      assert.ok(e instanceof BadBlockError, String(e));
      continue;
    }
    const got = decode(block, lba);
    assert.notEqual(typeof got, "string", got as string);
  }
}

/** Run jobs in Workers while this thread checks and reads the pool. */
async function runJobs(
  pool: BlockPool,
  jobs: ReviewJob[],
  lbas: number,
): Promise<Report[]> {
  const workers = await Promise.all(jobs.map(startWorker));
  try {
    let settled = false;
    const done = Promise.all(jobs.map((j, i) => ask<Report>(workers[i], j)))
      .finally(() => settled = true);
    const problems: string[] = [];
    for (let i = 0; !settled; i++) {
      if (i % 4 === 0) problems.push(...pool.check().problems);
      else if (i % 4 === 1) {
        const { formatted, arenas, fill, blockCount } = pool.info();
        assert.equal(arenas.length > 0, formatted);
        const { written, zero, error, unwritten } = fill;
        assert.equal(written + zero + error + unwritten, blockCount);
      } else checkBlocks(pool, lbas);
      await new Promise((r) => setTimeout(r, 0));
    }
    const reports = await done;
    assert.deepEqual(problems, []);
    for (const r of reports) assert.deepEqual(r.bad, []);
    return reports;
  } finally {
    for (const w of workers) w.terminate();
  }
}

test("Workers write, zero, set errors and read overlapping blocks with few lanes; checks here meanwhile", async () => {
  const path = tempPath();
  const lbas = 40;
  // 4 lanes for 4 Workers whose writeMany groups and writeAsync bursts
  // ask for 6 at once
  using pool = createBlockPool(path, {
    blockSize: 512,
    poolSize: 32 * MiB,
    lanes: 4,
  });
  const jobs: ReviewJob[] = [1, 2, 3, 4].map((id) => ({
    kind: "mixed",
    path,
    id,
    count: 300,
    lbas,
    seed: 40 + id,
    group: 6,
    flags: true,
  }));
  const reports = await runJobs(pool, jobs, lbas);
  assert.ok(reports.every((r) => r.reads > 0));
  checkBlocks(pool, lbas);
  assert.deepEqual(pool.check().problems, []);
  const before = Array.from({ length: lbas }, (_, lba) => {
    try {
      return pool.read(lba);
    } catch {
      return "error";
    }
  });
  pool.close();
  using again = BlockPool.open(path);
  assert.deepEqual(again.check().problems, []);
  for (let lba = 0; lba < lbas; lba++) {
    let got: Uint8Array | string;
    try {
      got = again.read(lba);
    } catch {
      got = "error";
    }
    assert.deepEqual(got, before[lba], `block ${lba}`);
  }
});

test("Workers open, write and close a pool again and again while others write it", async () => {
  const path = tempPath();
  const lbas = 24;
  using pool = createBlockPool(path, {
    blockSize: 4096,
    poolSize: 32 * MiB,
    lanes: 8,
  });
  const jobs: ReviewJob[] = [
    { kind: "reopen", path, id: 1, times: 40, lbas, seed: 7 },
    { kind: "reopen", path, id: 2, times: 40, lbas, seed: 8 },
    {
      kind: "mixed",
      path,
      id: 3,
      count: 300,
      lbas,
      seed: 9,
      group: 4,
      flags: false,
    },
    {
      kind: "mixed",
      path,
      id: 4,
      count: 300,
      lbas,
      seed: 10,
      group: 4,
      flags: false,
    },
  ];
  await runJobs(pool, jobs, lbas);
  checkBlocks(pool, lbas);
  assert.deepEqual(pool.check().problems, []);
});

test("Workers that close and open a stream again while another appends get one gap-free timestamp order, kept by a reopen", async () => {
  const path = tempPath();
  {
    using s = LogStream.create(path, { size: 8 * MiB });
    s.allocateRegion(4 * MiB);
  }
  const jobs: ReviewJob[] = [
    { kind: "streamAppend", path, id: 1, count: 300, reopenEvery: 7 },
    { kind: "streamAppend", path, id: 2, count: 300, reopenEvery: 11 },
    { kind: "streamAppend", path, id: 3, count: 300, reopenEvery: 5 },
  ];
  const workers = await Promise.all(jobs.map(startWorker));
  let results: number[][];
  try {
    results = await Promise.all(
      jobs.map((j, i) => ask<number[]>(workers[i], j)),
    );
  } finally {
    for (const w of workers) w.terminate();
  }
  const stamps = results.flat().sort((a, b) => a - b);
  assert.equal(new Set(stamps).size, stamps.length, "unique");
  assert.equal(stamps.at(-1)! - stamps[0] + 1, stamps.length, "no gap");
  using s = LogStream.open(path);
  const r = s.regions()[0];
  const entries = [...s.entries(r)];
  assert.deepEqual(entries.map((e) => e.timestamp), stamps);
  for (const e of entries) {
    const dv = new DataView(e.data.buffer, e.data.byteOffset);
    const id = dv.getUint32(0, true);
    const i = dv.getUint32(4, true);
    assert.deepEqual(e.data, tagged(id, i));
    assert.equal(results[id - 1][i], e.timestamp, `writer ${id} entry ${i}`);
  }
  assert.equal(s.append(r, new Uint8Array(4)), stamps.at(-1)! + 1);
});

test("a follower in one Worker sees every entry two other Workers append, in timestamp order", async () => {
  const path = tempPath();
  {
    using s = LogStream.create(path, { size: 8 * MiB });
    s.allocateRegion(4 * MiB);
  }
  const count = 200;
  const follower = await startWorker();
  const appenders = await Promise.all([1, 2].map(startWorker));
  try {
    const followed = ask<[number, number][]>(follower, {
      kind: "streamFollow",
      path,
      count: 2 * count,
    });
    const results = await Promise.all(
      appenders.map((w, i) =>
        ask<number[]>(w, {
          kind: "streamAppend",
          path,
          id: i + 1,
          count,
          reopenEvery: 50,
        })
      ),
    );
    const seen = await followed;
    const want = results.flatMap((stamps, w) =>
      stamps.map((ts, i) => [ts, (w + 1) * 1e6 + i] as [number, number])
    ).sort((a, b) => a[0] - b[0]);
    assert.deepEqual(seen, want);
  } finally {
    follower.terminate();
    for (const w of appenders) w.terminate();
  }
});

test("Workers whose first updates lay an unformatted pool out at once share one layout", async () => {
  const path = unformatted();
  const lbas = 32;
  using pool = BlockPool.open(path);
  const jobs: ReviewJob[] = [1, 2, 3, 4].map((id) => ({
    kind: "mixed",
    path,
    id,
    count: 150,
    lbas,
    seed: 60 + id,
    group: 3,
    flags: id % 2 === 0,
  }));
  await runJobs(pool, jobs, lbas);
  checkBlocks(pool, lbas);
  const report = pool.check();
  assert.equal(report.formatted, true);
  assert.deepEqual(report.problems, []);
});
