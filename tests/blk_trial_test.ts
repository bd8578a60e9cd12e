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

moverTest(
  "a writeAsync whose data grew before it started says it grew, not that it shrank",
  async (mover) => {
    using pool = BlockPool.create(tempPath(), {
      blockSize: 512,
      poolSize: 24 << 20,
      mover,
    });
    const old = new Uint8Array(512).fill(1);
    pool.write(1, old);
    const buf = new ArrayBuffer(512, { maxByteLength: 1024 });
    const f = pool.writeAsync(1, new Uint8Array(buf).fill(7));
    buf.resize(1000);
    await assert.rejects(
      async () => await f,
      /^RangeError: Cannot writeAsync: the data grew to 1000 bytes before the write started; a block is 512$/,
    );
    assert.deepEqual(pool.read(1), old);
    buf.resize(512);
    const g = pool.writeMany([{ lba: 1, data: new Uint8Array(buf) }]);
    buf.resize(600);
    await assert.rejects(
      async () => await g,
      /^RangeError: Cannot writeMany: the data grew to 600 bytes/,
    );
    assert.deepEqual(pool.read(1), old);
  },
);
