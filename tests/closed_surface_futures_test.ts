// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Use after `close()` throws ClosedError and touches no unmapped memory:
 * futures made before close settle as the README's table says,
 * on every store and mover, and never hang (the check itself, and the fixtures: `_closed_surface.ts`).
 *
 * @module
 */
import {
  BlockPool,
  ClosedError,
  CpuMover,
  type Future,
  LogStream,
  mapFile,
  ObjectPool,
  PersistentMap,
  PmemLog,
  ThreadMover,
  type Vdm,
} from "../mod.ts";
import { openTestPortal } from "../testing/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";
import { BLOCK, describe, ENTRY, settledWithin } from "./_closed_surface.ts";

/**
 * What `close()` does with a future made before it: the README's table
 * ("What an `*Async` call does before its future is first polled"). Lazy
 * futures (movers, Mapping's and BlockPool's): started ones finish,
 * unstarted ones fail with ClosedError when polled; the log stores' appends
 * and the object pool's transactions are finished by close; "either" where
 * the README says nothing (a stream's waits).
 */
type Outcome = "complete" | "closed" | "either";

/** A lazy future's outcome: see {@linkcode Outcome}. */
function lazy(started: boolean): Outcome {
  return started ? "complete" : "closed";
}

/**
 * Futures made before close (polled once before it, if `started`), then
 * awaited: each settles as `expect` says, never hangs.
 */
async function checkFuturesAfterClose(
  name: string,
  futures: Record<string, [Future<unknown>, Outcome]>,
  close: () => void,
  started: boolean,
): Promise<void> {
  if (started) { for (const [f] of Object.values(futures)) f.poll(); }
  close();
  const wrong: string[] = [];
  for (const [k, [f, expect]] of Object.entries(futures)) {
    const out = await settledWithin(f);
    const ok = out === "complete"
      ? expect !== "closed"
      : out instanceof ClosedError && expect !== "complete";
    if (!ok) wrong.push(`${name}.${k}: ${describe(out)}, not ${expect}`);
  }
  assert.deepEqual(
    wrong,
    [],
    `a future made before close (started: ${started})`,
  );
}

for (const started of [false, true]) {
  test(`futures made before close settle after it: complete or ClosedError (started: ${started})`, async () => {
    const map = mapFile(tempPath(), { size: 65536 });
    await checkFuturesAfterClose(
      "Mapping",
      {
        memcpyAsync: [map.memcpyAsync(0, new Uint8Array(8)), lazy(started)],
        memmoveAsync: [map.memmoveAsync(0, 8, 8), lazy(started)],
        memsetAsync: [map.memsetAsync(0, 1, 8), lazy(started)],
        memcpyManyAsync: [
          map.memcpyManyAsync([{ offset: 0, data: ENTRY }]),
          lazy(started),
        ],
      },
      () => map.close(),
      started,
    );

    const movers = [
      () => new CpuMover(),
      () => new ThreadMover({ threads: 1, inlineThreshold: 0 }),
      () => openTestPortal({ queueSize: 4 }),
    ];
    for (const create of movers) {
      const m = create();
      const dst = new Uint8Array(64 << 10);
      await checkFuturesAfterClose(
        m.name,
        {
          memcpy: [m.memcpy(dst, new Uint8Array(64 << 10)), lazy(started)],
          memset: [m.memset(dst, 1), lazy(started)],
          batch: [
            m.batch([{ op: "memset", dst, value: 2 }]),
            lazy(started),
          ],
        },
        () => m.close(),
        started,
      );
    }

    for (const create of movers.slice(1)) {
      const mover = create();
      try {
        await storeFutures(mover, started);
      } finally {
        mover.close();
      }
    }
  });
}

/** {@linkcode checkFuturesAfterClose} for every store, on `mover`. */
async function storeFutures(mover: Vdm, started: boolean): Promise<void> {
  const blk = BlockPool.create(tempPath(), {
    blockSize: 512,
    poolSize: 32 << 20,
    mover,
  });
  await checkFuturesAfterClose(
    `BlockPool (${mover.name})`,
    {
      writeAsync: [blk.writeAsync(0, BLOCK), lazy(started)],
      writeMany: [blk.writeMany([{ lba: 1, data: BLOCK }]), lazy(started)],
      readAsync: [blk.readAsync(0), lazy(started)],
    },
    () => blk.close(),
    started,
  );

  const s = LogStream.create(tempPath(), { size: 1 << 20, mover });
  const r = s.allocateRegion(64 << 10);
  await checkFuturesAfterClose(
    `LogStream (${mover.name})`,
    {
      appendAsync: [s.appendAsync(r, ENTRY), "complete"],
      waitCommitted: [s.waitCommitted(1), "either"],
      waitPersisted: [s.waitPersisted(1), "either"],
    },
    () => s.close(),
    started,
  );

  const log = PmemLog.create(tempPath(), { poolSize: 2 << 20, mover });
  await checkFuturesAfterClose(
    `PmemLog (${mover.name})`,
    {
      appendAsync: [log.appendAsync(ENTRY), "complete"],
    },
    () => log.close(),
    started,
  );

  const pool = ObjectPool.create(tempPath(), {
    size: 8 << 20,
    layout: "c",
    mover,
  });
  const root = pool.root(64);
  const pm = PersistentMap.open(pool, "m");
  await checkFuturesAfterClose(
    `ObjectPool (${mover.name})`,
    {
      txAsync: [pool.txAsync((tx) => tx.setU64(root, 0, 5)), "complete"],
      setAsync: [pm.setAsync("a", "b"), "complete"],
      deleteAsync: [pm.deleteAsync("z"), "complete"],
      batch: [pm.batch([{ set: ["c", "d"] }]), "complete"],
    },
    () => pool.close(),
    started,
  );
}
