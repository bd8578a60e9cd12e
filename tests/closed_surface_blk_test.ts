// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Use after `close()` throws ClosedError and touches no unmapped memory:
 * every member of a closed BlockPool (the check itself, and the fixtures: `_closed_surface.ts`).
 *
 * @module
 */
import { BlockPool } from "../mod.ts";
import { tempPath, test } from "./_harness.ts";
import { BLOCK, checkClosedSurface } from "./_closed_surface.ts";

test("every member of a closed BlockPool throws ClosedError", async () => {
  await checkClosedSurface("BlockPool", () => {
    const pool = BlockPool.create(tempPath(), {
      blockSize: 512,
      poolSize: 32 << 20,
    });
    return {
      obj: pool,
      close: () => pool.close(),
      calls: {
        blockSize: (p) => p.blockSize,
        blockCount: (p) => p.blockCount,
        write: (p) => p.write(0, BLOCK),
        read: (p) => p.read(0),
        readMany: (p) => p.readMany([0, 1]),
        setZero: (p) => p.setZero(1),
        setError: (p) => p.setError(2),
        writeAsync: (p) => p.writeAsync(0, BLOCK),
        writeMany: (p) => p.writeMany([{ lba: 3, data: BLOCK }]),
        readAsync: (p) => p.readAsync(0),
        check: (p) => p.check(),
        info: (p) => p.info(),
      },
    };
  });
});
