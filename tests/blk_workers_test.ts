// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Workers of one process share a block pool: each opens the file by path,
// and their writes and reads of overlapping blocks never tear, lose or
// misplace a block.
import { BlockPool } from "../blk/mod.ts";
import {
  decode,
  type Job,
  type Seen,
  type Written,
} from "./workers/blk_blocks.ts";
import { createBlockPool } from "../testing/mod.ts";
import { unformatted } from "./blk_fixtures.ts";
import { assert, tempPath, test } from "./_harness.ts";
import {
  ask as askJob,
  startWorker as startJobWorker,
} from "./workers/jobs.ts";

const MiB = 1 << 20;
const WORKER = new URL("./workers/blk_worker.ts", import.meta.url).href;

/** Start this file's Worker and wait until it is ready for a job. */
const startWorker = (): Promise<Worker> => startJobWorker(WORKER);
/** Give a Worker a job; its result. */
const ask = <T>(w: Worker, job: Job): Promise<T> => askJob<T>(w, job);

/**
 * Check the final state: every block holds the last write of one of the
 * writers to it (each writer's writes take effect in its own order, so
 * that is what any serial order of all the writes leaves), or zeros if
 * none wrote it; and the pool is consistent.
 */
function checkFinal(pool: BlockPool, lbas: number, written: Written[]): void {
  for (let lba = 0; lba < lbas; lba++) {
    const got = decode(pool.read(lba), lba);
    assert.notEqual(typeof got, "string", got as string);
    const lasts = written
      .filter((w) => w.writes[lba].length > 0)
      .map((w) => `${w.id}:${w.writes[lba].at(-1)}`);
    if (got === null) {
      assert.deepEqual(lasts, [], `block ${lba} lost every write`);
    } else {
      const [id, seq] = got as [number, number];
      assert.ok(
        lasts.includes(`${id}:${seq}`),
        `block ${lba} holds writer ${id}'s seq ${seq}, not a last write (${lasts})`,
      );
    }
  }
  const report = pool.check();
  assert.deepEqual(report.problems, []);
}

for (const blockSize of [512, 4096]) {
  test(
    `Workers write and read overlapping blocks of a shared pool (${blockSize} B)`,
    async () => {
      const path = tempPath();
      const lbas = 48;
      // 8 lanes: a freed block is taken again at once, so a read that
      // were not published would meet writers in its block
      using pool = createBlockPool(path, {
        blockSize,
        poolSize: 32 * MiB,
        lanes: 8,
      });
      const workers = await Promise.all([1, 2, 3, 4].map(startWorker));
      try {
        const jobs = [
          ask<Written>(workers[0], {
            kind: "write",
            path,
            id: 1,
            count: 600,
            lbas,
            seed: 11,
            mover: "cpu",
          }),
          ask<Written>(workers[1], {
            kind: "write",
            path,
            id: 2,
            count: 600,
            lbas,
            seed: 12,
            mover: "threads",
          }),
          ask<Seen>(workers[2], {
            kind: "read",
            path,
            count: 1500,
            lbas,
            seed: 13,
          }),
          ask<Seen>(workers[3], {
            kind: "read",
            path,
            count: 1500,
            lbas,
            seed: 14,
          }),
        ];
        // this thread reads too
        let reads = 0;
        let settled = false;
        const all = Promise.all(jobs).finally(() => settled = true);
        while (!settled) {
          const lba = reads % lbas;
          const got = decode(pool.read(lba), lba);
          assert.notEqual(typeof got, "string", got as string);
          reads++;
          await new Promise((r) => setTimeout(r, 0));
        }
        const [a, b, r1, r2] = await all as [Written, Written, Seen, Seen];
        for (const seen of [r1, r2]) {
          assert.deepEqual(seen.bad, []);
          assert.ok(seen.reads > 0);
        }
        checkFinal(pool, lbas, [a, b]);
      } finally {
        for (const w of workers) w.terminate();
      }
      // and the pool reopens consistent, with the same blocks
      const before = pool.readMany(Array.from({ length: lbas }, (_, i) => i));
      pool.close();
      using again = BlockPool.open(path);
      assert.deepEqual(
        again.readMany(Array.from({ length: lbas }, (_, i) => i)),
        before,
      );
      assert.deepEqual(again.check().problems, []);
    },
    { timeout: 120_000 },
  );
}

test("a Worker's open of a pool open here joins it; close order does not matter", async () => {
  const path = tempPath();
  const pool = BlockPool.create(path, { blockSize: 512, poolSize: 32 * MiB });
  const w = await startWorker();
  try {
    const written = await ask<Written>(w, {
      kind: "write",
      path,
      id: 7,
      count: 60,
      lbas: 8,
      seed: 3,
      mover: "cpu",
    });
    // the Worker closed its pool; this one goes on over the shared state
    checkFinal(pool, 8, [written]);
    pool.write(0, new Uint8Array(512).fill(1));
    assert.equal(pool.read(0)[511], 1);
  } finally {
    w.terminate();
    pool.close();
  }
  BlockPool.open(path).close(); // the share is gone: a fresh first open
});

test("a BTT laid out by one opener is found by the others of the process", () => {
  const path = unformatted();
  using a = BlockPool.open(path);
  using b = BlockPool.open(path);
  assert.equal(a.check().formatted, false);
  assert.deepEqual(a.read(3), new Uint8Array(512));
  b.write(3, new Uint8Array(512).fill(3)); // lays the BTT out
  assert.equal(a.read(3)[0], 3);
  assert.equal(a.readMany([3, 4])[0], 3);
  a.write(4, new Uint8Array(512).fill(4));
  assert.equal(b.read(4)[0], 4);
  assert.equal(a.check().formatted, true);
  assert.deepEqual(b.check().problems, []);
  a.setError(5);
  assert.throws(() => b.read(5));
});

// Bug: `check()` read the map and the flogs while writers in other Workers
// committed, so a block one of them had just moved showed up referenced
// twice (by the map entry read before the commit and by the flog read
// after it). A check now holds every stripe lock of the pool, which every
// commit holds from its flog update to its map update.
test(
  "check() in one thread while Workers write the pool reports it consistent",
  async () => {
    const path = tempPath();
    // many lanes over few blocks: commits move blocks all the time
    using pool = createBlockPool(path, {
      blockSize: 512,
      poolSize: 32 * MiB,
      lanes: 64,
    });
    const workers = await Promise.all([1, 2].map(startWorker));
    try {
      const jobs = workers.map((w, i) =>
        ask<Written>(w, {
          kind: "write",
          path,
          id: i + 1,
          count: 3000,
          lbas: 256,
          seed: 21 + i,
          mover: "cpu",
        })
      );
      let settled = false;
      const all = Promise.all(jobs).finally(() => settled = true);
      let checks = 0;
      const problems: string[] = [];
      while (!settled) {
        const report = pool.check();
        checks++;
        problems.push(...report.problems);
        if (problems.length > 0) break;
        await new Promise((r) => setTimeout(r, 0));
      }
      const written = await all;
      assert.deepEqual(problems, [], `after ${checks} checks`);
      assert.ok(checks > 1, `${checks} checks ran while the Workers wrote`);
      checkFinal(pool, 256, written);
    } finally {
      for (const w of workers) w.terminate();
    }
  },
  { timeout: 120_000 },
);
