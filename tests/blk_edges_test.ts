// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The block store at the edges of its contract: arguments that run code or
// lie about themselves, a mover that refuses work, futures never polled.
// The tests of a bug failed (or crashed, or hung) before its fix; the
// others pin contracts no other test states.
import { ClosedError, type Future, wait } from "../mod.ts";
import { BlockPool } from "../blk/mod.ts";
import { assert, moverTest, runScript, tempPath, test } from "./_harness.ts";
import { decode, type Written } from "./workers/blk_blocks.ts";
import { ask, startWorker } from "./workers/jobs.ts";

const MiB = 1 << 20;

function filled(size: number, value: number): Uint8Array {
  return new Uint8Array(size).fill(value);
}

/** Poll `fs` in sweeps, as an executor would, at most `sweeps` times. */
function pollAll(fs: Future<unknown>[], sweeps = 100): void {
  for (let i = 0; i < sweeps && !fs.every((f) => f.done); i++) {
    for (const f of fs) f.poll();
  }
}

moverTest(
  "writes started together on a mover that refuses the batch all fail; their blocks and lanes are given back",
  (mover) => {
    // A closed mover throws from batch(): the writes polled in one sweep
    // are started as one batch, and every one of them must fail with that
    // error. Only the poller's failed before; the others waited for a copy
    // never made, holding their lanes and the head of their blocks' queues,
    // so wait() on them and close() hung. (Closed after the pool is made:
    // a factory refuses a closed mover.)
    const pool = BlockPool.create(tempPath(), {
      blockSize: 512,
      poolSize: 24 * MiB,
      mover,
    });
    mover.close();
    pool.write(5, filled(512, 5)); // (a block never written needs no copy)
    const fs: Future<unknown>[] = [
      pool.writeAsync(1, filled(512, 1)),
      pool.writeAsync(2, filled(512, 2)),
      pool.writeMany([
        { lba: 3, data: filled(512, 3) },
        { lba: 4, data: filled(512, 4) },
      ]),
      pool.readAsync(5),
    ];
    pollAll(fs);
    for (const f of fs) {
      assert.equal(f.state, "failed");
      assert.ok(f.error instanceof ClosedError, String(f.error));
    }
    // the blocks are free for the next update, which is not overtaken
    for (let lba = 1; lba <= 4; lba++) {
      assert.deepEqual(pool.read(lba), new Uint8Array(512));
      pool.write(lba, filled(512, 10 + lba));
      assert.equal(pool.read(lba)[0], 10 + lba);
    }
    // every lane came back: a write per lane still finds one at once
    for (let lba = 0; lba < 256; lba++) pool.write(lba, filled(512, 7));
    assert.deepEqual(pool.check().problems, []);
    pool.close();
  },
);

test("`BlockPool.readMany()` reads each LBA once and uses what it checked", () => {
  using pool = BlockPool.create(tempPath(), {
    blockSize: 512,
    poolSize: 24 * MiB,
  });
  pool.write(1, filled(512, 1));
  pool.write(2, filled(512, 2));
  // A Proxy (an array to Array.isArray) whose element 0 is valid when
  // checked and out of range afterwards: the lookups read the list again,
  // so an LBA never checked reached the map (zeros came back for block 1,
  // or whatever the word past the map said).
  for (const later of [1e9, -5, 2.5, 2 ** 40]) {
    let reads = 0;
    const lbas = new Proxy([1, 2], {
      get(target, key, receiver) {
        if (key === "0") return reads++ === 0 ? 1 : later;
        return Reflect.get(target, key, receiver);
      },
    });
    const out = pool.readMany(lbas);
    assert.equal(reads, 1, "element 0 was read more than once");
    assert.deepEqual(out.subarray(0, 512), filled(512, 1), String(later));
    assert.deepEqual(out.subarray(512), filled(512, 2));
  }
  // an accessor element of a plain array, likewise
  const list = [1, 2];
  let calls = 0;
  Object.defineProperty(list, 0, {
    get: () => calls++ === 0 ? 2 : pool.blockCount + 7,
  });
  assert.deepEqual(pool.readMany(list).subarray(0, 512), filled(512, 2));
});

test("`BlockPool.readMany()` of a list whose length lies fails at its first missing LBA", () => {
  using pool = BlockPool.create(tempPath(), {
    blockSize: 512,
    poolSize: 24 * MiB,
  });
  // The room for the checked LBAs grows as they are checked: sized by
  // the length the list claims, it was a RangeError (Deno: an invalid
  // typed array length; Bun: out of memory) before any LBA was looked
  // at, or a huge array kept as scratch.
  class Claims extends Uint32Array {
    override get length(): number {
      return 2 ** 40;
    }
  }
  assert.throws(() => pool.readMany(new Claims([1, 2])), TypeError);
  const proxy = new Proxy([1, 2], {
    get: (target, key, receiver) =>
      key === "length" ? 2 ** 40 : Reflect.get(target, key, receiver),
  });
  assert.throws(() => pool.readMany(proxy), /got undefined/);
  // a long list grows the room as it goes
  const lbas = Array.from({ length: 5000 }, (_, i) => i % 3);
  pool.write(2, filled(512, 2));
  const out = pool.readMany(lbas);
  assert.equal(out.length, 5000 * 512);
  assert.equal(out[4999 * 512], 0); // 4999 % 3 = 1
  assert.equal(out[4998 * 512 + 511], 0);
  assert.equal(out[4997 * 512], 2);
});

test("`BlockPool.readMany()` whose LBAs run code: a nested readMany, or close()", () => {
  const pool = BlockPool.create(tempPath(), {
    blockSize: 512,
    poolSize: 24 * MiB,
  });
  pool.write(1, filled(512, 1));
  pool.write(2, filled(512, 2));
  // a readMany inside another's getter gets its own room for its LBAs,
  // and neither sees the other's
  let inner: Uint8Array | undefined;
  const outer = pool.readMany(
    new Proxy([1, 1], {
      get(target, key, receiver) {
        if (key === "1" && inner === undefined) {
          inner = pool.readMany([2, 2, 2]);
        }
        return Reflect.get(target, key, receiver);
      },
    }),
  );
  assert.deepEqual(outer, filled(1024, 1));
  assert.deepEqual(inner, filled(1536, 2));
  // A getter that closes the pool: the read must throw ClosedError (it
  // returned zeros, the arenas already dropped).
  const closing = new Proxy([1, 2], {
    get(target, key, receiver) {
      if (key === "1") pool.close();
      return Reflect.get(target, key, receiver);
    },
  });
  assert.throws(() => pool.readMany(closing), ClosedError);
  assert.equal(pool.closed, true);
});

test("a Uint8Array whose byteLength lies is refused, never copied past its end", () => {
  // The native copies trust the length they are given; a subclass or an
  // own property can make `byteLength` claim more than the array holds.
  // A read into such an array wrote past its end (heap corruption, a
  // crash of the runtime); a write copied bytes past the end of its data
  // into the pool. The checks now ask the engine for the length. Run in a
  // child, so a crash fails the test instead of the runner.
  const path = tempPath();
  const r = runScript(`
    import { BlockPool } from "@root/blk/mod.ts";
    import { wait } from "@root/mod.ts";
    class Liar extends Uint8Array {
      get byteLength() { return 1 << 24; }
    }
    const own = new Uint8Array(16);
    Object.defineProperty(own, "byteLength", { value: 4096 });
    const pool = BlockPool.create(${JSON.stringify(path)}, {
      blockSize: 4096, poolSize: 32 << 20,
    });
    pool.write(1, new Uint8Array(4096).fill(1));
    const lbas = Array.from({ length: 4000 }, () => 1);
    const out = [];
    for (const [name, f] of [
      ["read", () => pool.read(1, new Liar(16))],
      ["readOwn", () => pool.read(1, own)],
      ["readMany", () => pool.readMany(lbas, new Liar(16))],
      ["readAsync", () => wait(pool.readAsync(1, new Liar(16)))],
      ["write", () => pool.write(2, own)],
      ["writeAsync", () => wait(pool.writeAsync(2, own))],
      ["writeMany", () => wait(pool.writeMany([{ lba: 2, data: own }]))],
      ["writeLong", () => pool.write(2, new Liar(4096))],
    ]) {
      try { f(); out.push(name + ":ok"); } catch (e) { out.push(name + ":" + e.name); }
    }
    console.log(out.join(" "));
    console.log("block 2 zero:", pool.read(2).every((b) => b === 0));
    pool.close();
  `);
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    new RegExp(
      "read:RangeError readOwn:RangeError readMany:RangeError " +
        "readAsync:RangeError write:RangeError writeAsync:RangeError " +
        "writeMany:RangeError writeLong:TypeError\nblock 2 zero: true",
    ),
  );
});

test("a writeAsync() never polled does nothing; after close() it fails with ClosedError", () => {
  // Futures are lazy: close() finishes what runs, and a write that never
  // started must not start later, nor have written its block.
  const path = tempPath();
  const pool = BlockPool.create(path, { blockSize: 512, poolSize: 24 * MiB });
  const idle = pool.writeAsync(3, filled(512, 3));
  const many = pool.writeMany([{ lba: 4, data: filled(512, 4) }]);
  pool.close();
  assert.equal(idle.state, "idle");
  assert.throws(() => wait(idle), ClosedError);
  assert.throws(() => wait(many), ClosedError);
  using again = BlockPool.open(path);
  assert.deepEqual(again.readMany([3, 4]), new Uint8Array(1024));
  assert.deepEqual(again.check().problems, []);
});

test("`BlockPool.readMany()` takes SharedArrayBuffer and resizable arrays", () => {
  using pool = BlockPool.create(tempPath(), {
    blockSize: 512,
    poolSize: 24 * MiB,
  });
  pool.write(1, filled(512, 1));
  // LBAs in a shared typed array, blocks into a shared array
  const lbas = new Int32Array(new SharedArrayBuffer(8));
  lbas.set([1, 0]);
  const shared = new Uint8Array(new SharedArrayBuffer(1024)).fill(9);
  pool.readMany(lbas, shared);
  assert.deepEqual(
    shared,
    new Uint8Array([...filled(512, 1), ...new Uint8Array(512)]),
  );
  // a length-tracking view of a resizable buffer: its length is now
  const buffer = new ArrayBuffer(1024, { maxByteLength: 4096 });
  const tracking = new Uint8Array(buffer);
  buffer.resize(256);
  assert.throws(() => pool.readMany([1], tracking), RangeError);
  assert.throws(() => pool.read(1, tracking), RangeError);
  buffer.resize(2048);
  assert.deepEqual(
    pool.readMany([1], tracking).subarray(0, 512),
    filled(512, 1),
  );
});

moverTest(
  "close() with a batch in flight finishes it on every mover: writes durable, reads copied",
  (mover) => {
    // The existing close() test runs on the thread mover only; the DSA
    // movers complete their batches by polling, which close() must do.
    const path = tempPath();
    const pool = BlockPool.create(path, {
      blockSize: 512,
      poolSize: 24 * MiB,
      mover,
    });
    pool.write(50, filled(512, 50));
    const writes = [];
    for (let lba = 0; lba < 20; lba++) {
      writes.push(pool.writeAsync(lba, filled(512, lba + 1)));
    }
    // two updates of one block: the second waits behind the first
    writes.push(pool.writeAsync(7, filled(512, 77)));
    writes.push(
      pool.writeMany([{ lba: 30, data: filled(512, 30) }, {
        lba: 31,
        data: filled(512, 31),
      }]),
    );
    const into = new Uint8Array(512);
    const read = pool.readAsync(50, into);
    for (const f of [...writes, read]) f.poll();
    pool.close();
    for (const f of [...writes, read]) assert.equal(f.state, "complete");
    assert.deepEqual(into, filled(512, 50));
    using again = BlockPool.open(path);
    for (let lba = 0; lba < 20; lba++) {
      assert.equal(again.read(lba)[0], lba === 7 ? 77 : lba + 1, `${lba}`);
    }
    assert.deepEqual(
      again.readMany([30, 31]).subarray(510, 514),
      new Uint8Array([30, 30, 31, 31]),
    );
    assert.deepEqual(again.check().problems, []);
  },
);

test("a Worker closes its BlockPool while this thread writes other blocks of the pool", async () => {
  // The Worker's close leaves the share (lanes, read tracking, per-block
  // order) to this opener, which is writing through it at that moment:
  // none of its writes may be lost or torn, the Worker's neither.
  const path = tempPath();
  const pool = BlockPool.create(path, { blockSize: 512, poolSize: 24 * MiB });
  const w = await startWorker(
    new URL("./workers/blk_worker.ts", import.meta.url).href,
  );
  try {
    let done = false;
    const job = ask<Written>(w, {
      kind: "write",
      path,
      id: 3,
      count: 200,
      lbas: 8,
      seed: 11,
      mover: "threads",
    }).finally(() => done = true);
    let round = 0;
    const mine = filled(512, 0);
    // write blocks 8..15 until the Worker is done, and a little after
    for (let after = 0; after < 20; after += done ? 1 : 0) {
      round++;
      for (let lba = 8; lba < 16; lba++) {
        mine.fill((round + lba) & 255);
        pool.write(lba, mine);
      }
      await new Promise((r) => setTimeout(r, 0));
    }
    const written = await job;
    for (let lba = 0; lba < 8; lba++) {
      const got = decode(pool.read(lba), lba);
      const last = written.writes[lba].at(-1);
      if (last === undefined) assert.equal(got, null);
      else assert.deepEqual(got, [3, last], `block ${lba}`);
    }
    for (let lba = 8; lba < 16; lba++) {
      assert.deepEqual(pool.read(lba), filled(512, (round + lba) & 255));
    }
    assert.deepEqual(pool.check().problems, []);
  } finally {
    w.terminate();
    pool.close();
  }
  BlockPool.open(path).close();
});

test("`writeMany()` on a pool with fewer lanes than a group's blocks completes", () => {
  // a group of up to 64 blocks took a lane per block at once, and waited
  // forever for lanes an arena of fewer lanes never has (the `lanes` test
  // hook; a child process, so a hang fails the test instead of the runner)
  const path = tempPath();
  const out = runScript(
    `
    import { createPoolWith } from "@root/blk/pool_access.ts";
    const pool = createPoolWith(${JSON.stringify(path)}, {
      blockSize: 512,
      poolSize: 32 << 20,
    }, { lanes: 2 });
    await pool.writeMany(
      [0, 1, 2, 3, 4].map((lba) => ({ lba, data: new Uint8Array(512).fill(lba + 1) })),
    );
    console.log([0, 1, 2, 3, 4].map((lba) => pool.read(lba)[0]).join(" "));
    pool.close();
  `,
    20_000,
  );
  assert.equal(out.signal, null, "writeMany hung");
  assert.equal(out.stdout.trim(), "1 2 3 4 5", out.stderr);
});
