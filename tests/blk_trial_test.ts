// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The block store's asynchronous calls as a new user meets their errors:
// each names the call that failed and says what happened to its array.
import { BadBlockError } from "../mod.ts";
import { BlockPool } from "../blk/mod.ts";
import { assert, moverTest, tempPath } from "./_harness.ts";

moverTest(
  "a readAsync of a block in the error state fails with a BadBlockError naming readAsync",
  async (mover) => {
    using pool = BlockPool.create(tempPath(), {
      blockSize: 512,
      poolSize: 24 << 20,
      mover,
    });
    pool.write(4, new Uint8Array(512).fill(4));
    pool.setError(4);
    // the synchronous calls name themselves; the future said "read"
    assert.throws(
      () => pool.read(4),
      (e) => e instanceof BadBlockError && e.op === "read",
    );
    await assert.rejects(
      async () => await pool.readAsync(4),
      (e) =>
        e instanceof BadBlockError && e.op === "readAsync" && e.lba === 4 &&
        /^readAsync: block 4 is in the error state$/.test(e.message),
    );
  },
);
