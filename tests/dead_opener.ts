// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The child-process scaffold of the tests of openers that ended (a
 * Worker terminated while it held lanes, locks or reads of a block
 * pool): `blk_shared_edges_test.ts` and `workers_review_test.ts`. Each
 * scenario runs in a child process, so a hang fails the test instead of
 * the runner.
 *
 * @module
 */
import {
  lastJsonLine,
  runScript,
  type ScriptOptions,
  tempPath,
} from "./_harness.ts";

/**
 * Script source for {@linkcode deadOpenerScript}'s body: a pool at `path`
 * without a BTT, as libpmemblk creates them (its info blocks wiped), so
 * that its first write lays the BTT out.
 */
export const POOL_WITHOUT_BTT = `
    BlockPool.create(path, { blockSize: 512, poolSize: 32 << 20 }).close();
    {
      const { poolGeometry } = await import("@root/blk/mod.ts");
      const { closeSync, openSync, writeSync } = await import("node:fs");
      const fd = openSync(path, "r+");
      const infoOff = poolGeometry(32 << 20, 512).arenas[0].infoOff;
      for (const at of [8192, 8192 + infoOff]) {
        writeSync(fd, new Uint8Array(4096), 0, 4096, at);
      }
      closeSync(fd);
    }
`;

/**
 * Run `body` in a child with a pool at `path` and the Worker of
 * `shared_edges_worker.ts` (`worker()` starts one, `end(w)` terminates it
 * and waits for its thread to end); `out` is printed and returned.
 * `options` go to the child (`runScript`'s: its environment).
 */
export function deadOpenerScript(
  body: string,
  options: ScriptOptions = {},
): Record<string, unknown> {
  const r = runScript(
    `
    import { statSync } from "node:fs";
    import process from "node:process";
    import { BlockPool } from "@root/blk/mod.ts";
    import { LaneTable } from "@root/blk/lanes.ts";
    import { PoolShared } from "@root/blk/shared.ts";
    import { FileLock } from "@root/pmem2/file_lock.ts";
    import { FileShare } from "@root/pmem2/file_share.ts";
    import { wait } from "@root/future/mod.ts";
    import { createBlockPool } from "@root/testing/mod.ts";
    import { ask, startWorker, terminateAndWait } from "@root/tests/workers/jobs.ts";
    const path = ${JSON.stringify(tempPath())};
    const out = {};
    const block = (v) => new Uint8Array(512).fill(v);
    const code = (f) => {
      try { f(); return 0; } catch (e) { return e.code ?? String(e); }
    };
    const asyncCode = async (p) => {
      try { await p; return 0; } catch (e) { return e.code ?? String(e); }
    };
    const worker = () =>
      startWorker("@root/tests/workers/shared_edges_worker.ts");
    /** Terminate w; wait until its thread ended (its opens with it). */
    async function end(w) {
      using share = FileShare.open(path, PoolShared.bytes(statSync(path).size));
      await terminateAndWait(w, share);
    }
    const unlocked = () => code(() => FileLock.acquire(path).release());
    /**
     * Writes that need every lane of a 4-lane pool: 40 of blocks 0..n-1
     * one by one, then a group of 4 (all lanes at once); their codes, and
     * blocks n-1, 10 and 13 read back.
     */
    async function useEveryLane(pool, n) {
      const writes = code(() => {
        for (let i = 0; i < 40; i++) pool.write(i % n, block(i));
      });
      const group = await asyncCode(pool.writeMany(
        [10, 11, 12, 13].map((lba) => ({ lba, data: block(lba) })),
      ));
      const read = [n - 1, 10, 13].map((lba) => pool.read(lba)[0]);
      return { writes, group, read };
    }
    /** A pool of 4 lanes, blocks 0..7 written (block i holds i). */
    function fourLanePool() {
      const pool = createBlockPool(path, {
        blockSize: 512,
        poolSize: 32 << 20,
        lanes: 4,
      });
      for (let lba = 0; lba < 8; lba++) pool.write(lba, block(lba));
      return pool;
    }
    /** Arena 0's lane table, as an opener of the share sees it. */
    function laneTable(f) {
      using share = FileShare.open(path, PoolShared.bytes(statSync(path).size));
      return f(new LaneTable(new PoolShared(share.memory, 1).arena(0), 0x5555));
    }
    const idleLanes = () => laneTable((t) => t.idle);
    /** Take an idle lane (and give it back): the lane, or -1. */
    const tryTakeLane = () =>
      laneTable((t) => {
        const lane = t.takeOne();
        if (lane >= 0) t.giveOne(lane);
        return lane;
      });
    ${body}
    console.log(JSON.stringify(out));
    process.exit(0);
    `,
    90_000,
    options,
  );
  return lastJsonLine(r);
}
