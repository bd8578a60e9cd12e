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
import { assert, lastJsonLine, runScript, tempPath, test } from "./_harness.ts";
import { deadOpenerScript } from "./dead_opener.ts";
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

// In a child process: a hang fails the test instead of the runner.
test(
  "Workers terminated at random points of their mixed updates: the others go on, every block stays whole, and a reopen is consistent",
  () => {
    const r = runScript(
      `
    import { statSync } from "node:fs";
    import { BlockPool } from "@root/blk/mod.ts";
    import { PoolShared } from "@root/blk/shared.ts";
    import { BadBlockError } from "@root/errors/mod.ts";
    import { FileShare } from "@root/pmem2/file_share.ts";
    import { createBlockPool } from "@root/testing/mod.ts";
    import { ask, startWorker, terminateAndWait } from "@root/tests/workers/jobs.ts";
    import { decode, stamp } from "@root/tests/workers/blk_blocks.ts";
    const path = ${JSON.stringify(tempPath())};
    const lbas = 24;
    const out = { codes: {}, bad: [] };
    const count = (c) => out.codes[c] = (out.codes[c] ?? 0) + 1;
    const code = (f) => {
      try { f(); return 0; } catch (e) { return e.code ?? String(e); }
    };
    const look = (p) => {
      for (let lba = 0; lba < lbas; lba++) {
        try {
          const d = decode(p.read(lba), lba);
          if (typeof d === "string") out.bad.push(d);
        } catch (e) {
          if (!(e instanceof BadBlockError)) throw e;
        }
      }
    };
    const pool = createBlockPool(path, { blockSize: 512, poolSize: 32 << 20, lanes: 4 });
    const share = FileShare.open(path, PoolShared.bytes(statSync(path).size));
    let seq = 0;
    for (let round = 0; round < 8; round++) {
      const w = await startWorker("@root/tests/workers/review_worker.ts");
      const progress = new SharedArrayBuffer(4);
      const job = ask(w, {
        kind: "mixed", path, id: 2 + round, count: 1e9, lbas, seed: 90 + round,
        group: 4, flags: round % 2 === 1, progress, mover: round % 4 < 2 ? "threads" : "cpu",
      });
      let failed;
      job.catch((e) => failed = e);
      const until = 5 + 13 * round;
      while (Atomics.load(new Int32Array(progress), 0) < until) {
        if (failed) throw failed;
        await new Promise((r) => setTimeout(r, 0));
      }
      await terminateAndWait(w, share);
      // every lane is needed: one by one, then all four at once
      for (let i = 0; i < 30; i++) {
        const lba = i % lbas;
        count(code(() => pool.write(lba, stamp(1, lba, ++seq, 512))));
      }
      try {
        await pool.writeMany([0, 5, 10, 15].map((lba) => ({ lba, data: stamp(1, lba, ++seq, 512) })));
        count(0);
      } catch (e) { count(e.code ?? String(e)); }
      look(pool);
    }
    share.close();
    pool.close();
    using again = BlockPool.open(path);
    out.problems = again.check().problems;
    look(again);
    console.log(JSON.stringify(out));
  `,
      90_000,
    );
    const out = lastJsonLine(r);
    assert.deepEqual(out.bad, []);
    assert.deepEqual(out.problems, []);
    for (const c of Object.keys(out.codes)) {
      assert.ok(
        c === "0" || c === "-130",
        `writes failed with ${c}: ${JSON.stringify(out.codes)}`,
      );
    }
  },
  { timeout: 120_000 },
);

/**
 * Run `body` in a child process with a 4-lane pool (`pool`) at `path`
 * (blocks 0..7 written, block i holding i) and a Worker of
 * `shared_edges_worker.ts` (`w`), ended by `end(w)`; `out` is printed.
 */
function endedLaneScript(body: string): Record<string, unknown> {
  return deadOpenerScript(`
    const pool = fourLanePool();
    const w = await worker();
    ${body}`);
}

// Bug: a Worker terminated in the middle of a commit keeps its lane (its
// commit may be half done) for as long as the process has the pool open;
// a writeMany took its groups as large as the arena's lanes, and a group
// takes all its lanes at once, so every writeMany of 4 blocks or more on
// a 4-lane pool waited for good (seen with Bun, whose terminate() stops a
// Worker anywhere: tests/workers_review_test.ts's test of Workers
// terminated at random points hung).
test(
  "a Worker ended mid-commit holding one lane: writeMany of as many blocks as the arena has lanes still completes",
  () => {
    const out = endedLaneScript(`
    out.taken = (await ask(w, { kind: "holdLanes", path, n: 1, stripe: 100 })).length;
    await end(w);
    out.group = await asyncCode(pool.writeMany(
      [10, 11, 12, 13, 14, 15].map((lba) => ({ lba, data: block(lba) })),
    ));
    out.read = [10, 13, 15].map((lba) => pool.read(lba)[0]);
    out.async = await asyncCode(Promise.all([1, 2, 3, 4].map((lba) =>
      pool.writeAsync(lba, block(40 + lba))
    )));
    out.write = code(() => pool.write(5, block(55)));
    out.blocks = [1, 4, 5].map((lba) => pool.read(lba)[0]);
  `);
    assert.deepEqual(out, {
      taken: 1,
      group: 0,
      read: [10, 13, 15],
      async: 0,
      write: 0,
      blocks: [41, 44, 55],
    });
  },
  { timeout: 60_000 },
);

// ... and with every lane kept so, a write waited 30 s and failed with
// EBUSY, and asynchronous writes waited for good: they fail at once with
// EOWNERDEAD (-130), as writes of the block whose commit lock it holds do.
// (Lanes that the others can recover online go round again: here a flog
// slot of the Worker's is spoilt, so they cannot.)
test(
  "a Worker ended mid-commit holding every lane, one it left unrecoverable: writes fail at once with EOWNERDEAD",
  () => {
    const out = endedLaneScript(`
    out.taken = (await ask(w, {
      kind: "holdLanes", path, n: 4, stripe: 100, spoil: true,
    })).length;
    await end(w);
    out.write = code(() => pool.write(3, block(33)));
    out.async = await asyncCode(pool.writeAsync(3, block(33)));
    out.group = await asyncCode(pool.writeMany(
      [10, 11].map((lba) => ({ lba, data: block(lba) })),
    ));
    out.read = [3, 7].map((lba) => pool.read(lba)[0]);
  `);
    assert.deepEqual(out, {
      taken: 4,
      write: -130,
      async: -130,
      group: -130,
      read: [3, 7],
    });
  },
  { timeout: 60_000 },
);

// In a child process: a hang fails the test instead of the runner. Bun
// ends a terminated Worker anywhere, often holding the commit or the
// reserve lock: the appends here used to fail with EOWNERDEAD (-130)
// then, and the close too, until a reopen. The next taker of the lock
// now finishes or rolls back what the Worker left half done, so every
// append here and the close must succeed.
test(
  "Workers terminated in the middle of their appends: every append here succeeds and survives a reopen, whole and in order",
  () => {
    const r = runScript(
      `
    import { LogStream } from "@root/stream/mod.ts";
    import { streamCore } from "@root/stream/open.ts";
    import { FileShare } from "@root/pmem2/file_share.ts";
    import { ask, startWorker } from "@root/tests/workers/jobs.ts";
    import { tagged } from "@root/tests/workers/review_entries.ts";
    const path = ${JSON.stringify(tempPath())};
    const out = { codes: {}, bad: [] };
    const count = (c) => out.codes[c] = (out.codes[c] ?? 0) + 1;
    /** Check entries whole and in order; the index of each of writer 1's. */
    function scan(s) {
      const mine = new Map();
      let prev = 0;
      for (const e of s.entries(s.regions()[0])) {
        if (e.timestamp <= prev) out.bad.push("order " + e.timestamp);
        prev = e.timestamp;
        const dv = new DataView(e.data.buffer, e.data.byteOffset);
        const id = dv.getUint32(0, true);
        const want = tagged(id, dv.getUint32(4, true));
        if (want.length !== e.data.length || want.some((v, k) => v !== e.data[k])) {
          out.bad.push("torn " + e.timestamp);
        }
        if (id === 1) mine.set(e.timestamp, dv.getUint32(4, true));
      }
      return { mine, last: prev };
    }
    const s = LogStream.create(path, { size: 8 << 20 });
    const r = s.allocateRegion(4 << 20);
    const share = FileShare.of(streamCore(s).shared.i32.buffer);
    const oks = new Map();
    let i = 0;
    for (let round = 0; round < 8; round++) {
      const w = await startWorker("@root/tests/workers/review_worker.ts");
      const progress = new SharedArrayBuffer(4);
      let failed;
      ask(w, {
        kind: "streamAppend", path, id: 2 + round, count: 1e9,
        reopenEvery: 1e9, progress,
      }).catch((e) => failed = e);
      while (Atomics.load(new Int32Array(progress), 0) < 3 + 37 * round) {
        if (failed) throw failed;
        await new Promise((r) => setTimeout(r, 0));
      }
      const before = share.endedOpens;
      w.terminate();
      while (share.endedOpens === before) {
        await new Promise((r) => setTimeout(r, 2));
      }
      for (let k = 0; k < 20; k++, i++) {
        try {
          oks.set(k % 2 ? s.append(r, tagged(1, i)) : await s.appendAsync(r, tagged(1, i)), i);
          count(0);
        } catch (e) {
          count(e.code ?? String(e));
        }
      }
      scan(s);
    }
    try {
      s.close();
    } catch (e) {
      count("close " + e.code);
    }
    using again = LogStream.open(path);
    const { mine, last } = scan(again);
    for (const [ts, k] of oks) {
      if (mine.get(ts) !== k) out.bad.push("lost " + ts + ":" + k);
    }
    out.after = again.append(again.regions()[0], tagged(1, i)) > last;
    console.log(JSON.stringify(out));
  `,
      60_000,
    );
    const out = lastJsonLine(r);
    assert.deepEqual(out.bad, []);
    assert.equal(out.after, true);
    assert.deepEqual(out.codes, { 0: 8 * 20 });
  },
  { timeout: 90_000 },
);

// Bug: the EOWNERDEAD errors of a block whose commit lock an ended
// Worker held all named the operation "write": check(), setZero,
// setError, writeAsync and writeMany said "write" too. (Refused only when
// the commit it left cannot be recovered online: its flog slot spoilt.)
test(
  "a Worker ended holding a block's commit lock, its commit unrecoverable: each refused operation names itself",
  () => {
    const out = endedLaneScript(`
    await ask(w, { kind: "holdLanes", path, n: 1, stripe: 6, spoil: true });
    await end(w);
    const op = (f) => {
      try { f(); return "none"; } catch (e) { return e.code + " " + e.op; }
    };
    const asyncOp = async (p) => {
      try { await p; return "none"; } catch (e) { return e.code + " " + e.op; }
    };
    out.ops = [
      op(() => pool.check()),
      op(() => pool.setZero(6)),
      op(() => pool.setError(6)),
      op(() => pool.write(6, block(1))),
      await asyncOp(pool.writeAsync(6, block(1))),
      await asyncOp(pool.writeMany([6, 7].map((lba) => ({ lba, data: block(lba) })))),
    ];
    out.read = pool.read(6)[0];
  `);
    assert.deepEqual(out, {
      ops: [
        "-130 check",
        "-130 setZero",
        "-130 setError",
        "-130 write",
        "-130 writeAsync",
        "-130 writeMany",
      ],
      read: 6,
    });
  },
  { timeout: 60_000 },
);

test("six Workers share one lane: group writes, bursts and sync writes all finish", async () => {
  const path = tempPath();
  const lbas = 16;
  using pool = createBlockPool(path, {
    blockSize: 512,
    poolSize: 32 * MiB,
    lanes: 1,
  });
  const jobs: ReviewJob[] = [1, 2, 3, 4, 5, 6].map((id) => ({
    kind: "mixed",
    path,
    id,
    count: 80,
    lbas,
    seed: 70 + id,
    group: 5,
    flags: id % 3 === 0,
    mover: id % 2 === 0 ? "threads" : "cpu",
  }));
  await runJobs(pool, jobs, lbas);
  checkBlocks(pool, lbas);
  assert.deepEqual(pool.check().problems, []);
});
