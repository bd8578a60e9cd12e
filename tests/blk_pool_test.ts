// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
import { existsSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { BlockPool, MIN_POOL_SIZE, poolGeometry } from "../blk/mod.ts";
import { blockPoolMapping, createPoolWith } from "../blk/pool_access.ts";
import { RUNTIME } from "../ffi/lib.ts";
import { hasWholeBuffer, viewedBytes } from "../pmem2/mapping_access.ts";
import { VIEW_WINDOWS } from "../pmem2/view_buffers.ts";
import { BadBlockError, ClosedError, PmemError } from "../errors/mod.ts";
import {
  assert,
  moverTest,
  runScript,
  tempPath,
  test,
  viewsMadeBy,
} from "./_harness.ts";
import { pattern } from "./c/blkutil.ts";
import { createBlockPool } from "../testing/mod.ts";

const MiB = 2 ** 20;

/** A PmemError matcher for assert.throws. */
function pmemError(code: number, op: string, message?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof PmemError, `expected a PmemError, got ${e}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.op, op);
    if (message) assert.match(e.message, message);
    return true;
  };
}

test("`BlockPool.create()` lays out the BTT and reports the geometry", () => {
  const path = tempPath();
  using pool = BlockPool.create(path, { blockSize: 4096, poolSize: 64 * MiB });
  assert.equal(pool.blockSize, 4096);
  assert.equal(pool.blockCount, 16103);
  const report = pool.check();
  assert.deepEqual(report, {
    consistent: true,
    problems: [],
    repaired: [],
    formatted: true,
    arenas: 1,
    blockCount: 16103,
  });
  const file = readFileSync(path);
  assert.equal(file.length, 64 * MiB);
  assert.equal(new TextDecoder().decode(file.subarray(0, 7)), "PMEMBLK");
  assert.equal(
    new TextDecoder().decode(file.subarray(8192, 8206)),
    "BTT_ARENA_INFO",
  );
});

test("`BlockPool.write()` survives close and open for every block size", () => {
  for (const blockSize of [1, 100, 512, 520, 4096, 4224]) {
    const path = tempPath();
    const last = poolGeometry(MIN_POOL_SIZE, blockSize).blockCount - 1;
    const lbas = [0, 1, 1000, last];
    {
      using pool = BlockPool.create(path, {
        blockSize,
        poolSize: MIN_POOL_SIZE,
      });
      assert.equal(pool.blockCount, last + 1);
      for (const lba of lbas) pool.write(lba, pattern(lba, 1, blockSize));
      for (const lba of lbas) pool.write(lba, pattern(lba, 2, blockSize));
    }
    using pool = BlockPool.open(path);
    assert.equal(pool.blockSize, blockSize);
    for (const lba of lbas) {
      assert.deepEqual(pool.read(lba), pattern(lba, 2, blockSize), `${lba}`);
    }
    assert.deepEqual(pool.read(2), new Uint8Array(blockSize));
    assert.equal(pool.check().consistent, true);
  }
});

test("`BlockPool.read()` fills `into` and returns it", () => {
  using pool = BlockPool.create(tempPath(), {
    blockSize: 512,
    poolSize: 32 * MiB,
  });
  pool.write(3, pattern(3, 9, 512));
  const into = new Uint8Array(600).fill(7);
  assert.equal(pool.read(3, into), into);
  assert.deepEqual(into.subarray(0, 512), pattern(3, 9, 512));
  assert.equal(into[599], 7);
  pool.read(4, into); // unwritten: zeros
  assert.ok(into.subarray(0, 512).every((b) => b === 0));
  assert.throws(() => pool.read(3, new Uint8Array(511)), RangeError);
  assert.throws(
    () => pool.read(3, new Uint16Array(512) as unknown as Uint8Array),
    TypeError,
  );
});

test("`BlockPool.setZero()` and `setError()` follow libpmemblk", () => {
  const path = tempPath();
  {
    using pool = BlockPool.create(path, {
      blockSize: 4096,
      poolSize: 32 * MiB,
    });
    pool.setZero(10); // never written: a no-op
    pool.write(11, pattern(11, 1, 4096));
    pool.setZero(11);
    assert.deepEqual(pool.read(11), new Uint8Array(4096));
    pool.setError(12);
    assert.throws(() => pool.read(12), (e: unknown) => {
      assert.ok(e instanceof BadBlockError);
      assert.equal(e.lba, 12);
      assert.equal(e.code, -5);
      assert.equal(e.op, "read");
      return true;
    });
    pool.write(12, pattern(12, 1, 4096)); // a write clears the error
    assert.deepEqual(pool.read(12), pattern(12, 1, 4096));
    pool.setError(13);
    pool.setZero(13); // zero replaces error
    assert.deepEqual(pool.read(13), new Uint8Array(4096));
    pool.setError(14);
    pool.setError(14);
    assert.deepEqual(pool.check().problems, []);
  }
  using pool = BlockPool.open(path);
  assert.throws(() => pool.read(14), BadBlockError);
  assert.deepEqual(pool.read(11), new Uint8Array(4096));
});

test("`BlockPool` rejects bad LBAs and data before touching the pool", () => {
  const path = tempPath();
  using pool = BlockPool.create(path, { blockSize: 512, poolSize: 32 * MiB });
  pool.write(0, pattern(0, 1, 512));
  const before = readFileSync(path);
  const n = pool.blockCount;
  const block = new Uint8Array(512);
  for (const bad of ["1", 1n, null, undefined, {}]) {
    const lba = bad as unknown as number;
    assert.throws(() => pool.write(lba, block), TypeError, String(bad));
    assert.throws(() => pool.read(lba), TypeError);
    assert.throws(() => pool.setZero(lba), TypeError);
    assert.throws(() => pool.setError(lba), TypeError);
  }
  // a number that is no LBA is out of range, as for every size and offset
  for (
    const lba of [1.5, NaN, Infinity, -1, n, n + 1, 2 ** 53 - 1, -(2 ** 40)]
  ) {
    assert.throws(() => pool.write(lba, block), RangeError, String(lba));
    assert.throws(() => pool.read(lba), RangeError);
    assert.throws(() => pool.setZero(lba), RangeError);
    assert.throws(() => pool.setError(lba), RangeError);
  }
  assert.throws(() => pool.write(0, new Uint8Array(511)), RangeError);
  assert.throws(() => pool.write(0, new Uint8Array(513)), RangeError);
  assert.throws(
    () => pool.write(0, Array(512).fill(0) as unknown as Uint8Array),
    TypeError,
  );
  assert.throws(
    () => pool.write(0, new DataView(new ArrayBuffer(512)) as never),
    TypeError,
  );
  assert.deepEqual(readFileSync(path), before);
  assert.deepEqual(pool.read(0), pattern(0, 1, 512));
});

test("`BlockPool.create()` validates its options", () => {
  const path = tempPath();
  const create = (o: unknown) => () =>
    BlockPool.create(path, o as { blockSize: number });
  assert.throws(create(undefined), TypeError);
  assert.throws(create({ poolSize: 32 * MiB }), TypeError);
  assert.throws(create({ blockSize: "512", poolSize: 32 * MiB }), TypeError);
  assert.throws(create({ blockSize: 0, poolSize: 32 * MiB }), RangeError);
  assert.throws(create({ blockSize: 2 ** 32, poolSize: 32 * MiB }), RangeError);
  assert.throws(create({ blockSize: 512.5, poolSize: 32 * MiB }), RangeError);
  assert.throws(
    create({ blockSize: 512, poolSize: MIN_POOL_SIZE - 1 }),
    /at least 16785408/,
  );
  assert.throws(create({ blockSize: 512, poolSize: -1 }), RangeError);
  // rounded when printed, 2^60 would look like a valid size
  assert.throws(
    create({ blockSize: 512, poolSize: 2 ** 60 }),
    /poolSize must be at most 2\^53 - 1/,
  );
  assert.throws(
    create({ blockSize: 65536, poolSize: MIN_POOL_SIZE }),
    /at least 512/,
  );
  assert.throws(
    () => BlockPool.create(42 as unknown as string, { blockSize: 512 }),
    TypeError,
  );
  assert.equal(existsSync(path), false);
  BlockPool.create(path, { blockSize: 512, poolSize: 32 * MiB }).close();
  assert.throws(
    create({ blockSize: 512, poolSize: 32 * MiB }),
    pmemError(-17, "create", /exists/),
  );
});

test("`BlockPool.create()` with poolSize 0 formats an existing file", () => {
  const path = tempPath();
  const junk = new Uint8Array(20 * MiB);
  crypto.getRandomValues(junk.subarray(0, 65536));
  for (let off = 65536; off < junk.length; off *= 2) {
    junk.set(junk.subarray(0, 65536), off - 65536);
  }
  junk.fill(0xee, 4096, 8192);
  junk.fill(0, 0, 4096);
  writeFileSync(path, junk);
  {
    using pool = BlockPool.create(path, { blockSize: 512 });
    assert.equal(pool.blockCount, poolGeometry(20 * MiB, 512).blockCount);
    for (const lba of [0, 77, pool.blockCount - 1]) {
      assert.deepEqual(pool.read(lba), new Uint8Array(512));
    }
    pool.write(5, pattern(5, 5, 512));
    assert.equal(pool.check().consistent, true);
  }
  const bytes = readFileSync(path);
  assert.equal(new DataView(bytes.buffer).getInt32(4100, true), 0); // is_zeroed
  using pool = BlockPool.open(path, { blockSize: 512 });
  assert.deepEqual(pool.read(5), pattern(5, 5, 512));
  const other = tempPath();
  writeFileSync(other, new Uint8Array(20 * MiB).fill(1));
  assert.throws(
    () => BlockPool.create(other, { blockSize: 512 }),
    pmemError(-17, "create", /not empty/),
  );
  const small = tempPath();
  writeFileSync(small, new Uint8Array(MiB));
  assert.throws(
    () => BlockPool.create(small, { blockSize: 512 }),
    pmemError(-22, "create", /too small/),
  );
});

test("`BlockPool.open()` with a wrong blockSize throws PmemError -22", () => {
  const path = tempPath();
  BlockPool.create(path, { blockSize: 4096, poolSize: 32 * MiB }).close();
  assert.throws(
    () => BlockPool.open(path, { blockSize: 512 }),
    pmemError(
      -22,
      "open",
      /wrong block size: .* 4096 bytes, 512 were requested/,
    ),
  );
  assert.throws(() => BlockPool.open(path, { blockSize: -1 }), RangeError);
  assert.throws(
    () => BlockPool.open(path, { blockSize: "4096" as unknown as number }),
    TypeError,
  );
  assert.throws(
    () => BlockPool.open(path, null as unknown as { blockSize: number }),
    TypeError,
  );
  BlockPool.open(path, { blockSize: 4096 }).close();
  BlockPool.open(path, { blockSize: 0 }).close();
});

test("`BlockPool.open()` names what is wrong with a file that is no pool", () => {
  assert.throws(
    () => BlockPool.open(tempPath("missing")),
    pmemError(-2, "open", /No such file/),
  );
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(100), /too small/],
    [new Uint8Array(32 * MiB), /all zeros/],
    [new Uint8Array(32 * MiB).fill(0x41), /signature is "AAAAAAAA"/],
  ];
  for (const [bytes, message] of cases) {
    const path = tempPath();
    writeFileSync(path, bytes);
    assert.throws(() => BlockPool.open(path), pmemError(-22, "open", message));
  }
  const path = tempPath();
  BlockPool.create(path, { blockSize: 512, poolSize: 32 * MiB }).close();
  const good = new Uint8Array(readFileSync(path));
  const edit = (at: number, value: number) => {
    const b = good.slice();
    b[at] = value;
    writeFileSync(path, b);
  };
  edit(121, good[121] ^ 1); // crtime: checksum mismatch
  assert.throws(() => BlockPool.open(path), pmemError(-22, "open", /checksum/));
  edit(4097, 0); // descriptor bsize 512 → 0
  assert.throws(
    () => BlockPool.open(path),
    pmemError(-22, "open", /block size is 0/),
  );
  edit(4097, 16); // descriptor bsize 512 → 4096: BTT disagrees
  assert.throws(
    () => BlockPool.open(path),
    pmemError(-22, "open", /block size 512 differs from the pool's 4096/),
  );
  writeFileSync(path, good.subarray(0, 24 * MiB)); // truncated
  assert.throws(() => BlockPool.open(path), pmemError(-22, "open", /beyond/));
  writeFileSync(path, good);
  BlockPool.open(path).close();
});

test("`BlockPool.open()` joins an open pool in this process; another process gets EAGAIN", () => {
  const path = tempPath();
  const pool = BlockPool.create(path, { blockSize: 512, poolSize: 32 * MiB });
  const second = BlockPool.open(path);
  second.write(3, new Uint8Array(512).fill(3));
  assert.equal(pool.read(3)[0], 3);
  const other = runScript(`
    import { BlockPool } from "@root/blk/mod.ts";
    try { BlockPool.open(${JSON.stringify(path)}); console.log("opened"); }
    catch (e) { console.log(e.code, e.message); }
  `);
  assert.match(other.stdout, /^-11 .*already open in another process/);
  pool.close();
  assert.equal(second.read(3)[0], 3);
  // a read-only open is never shared
  assert.throws(
    () => BlockPool.open(path, { readOnly: true }),
    pmemError(-11, "open", /already open in this process/),
  );
  second.close();
  const ro = BlockPool.open(path, { readOnly: true });
  assert.throws(
    () => BlockPool.open(path),
    pmemError(-11, "open", /already open read-only/),
  );
  ro.close();
  BlockPool.open(path).close();
});

test("`BlockPool.close()` is idempotent; later use throws ClosedError", () => {
  const pool = BlockPool.create(tempPath(), {
    blockSize: 512,
    poolSize: 32 * MiB,
  });
  pool.write(1, new Uint8Array(512));
  pool.close();
  pool.close();
  pool[Symbol.dispose]();
  assert.equal(pool.closed, true);
  const calls: [string, () => unknown][] = [
    ["write", () => pool.write(1, new Uint8Array(512))],
    ["read", () => pool.read(1)],
    ["setZero", () => pool.setZero(1)],
    ["setError", () => pool.setError(1)],
    ["check", () => pool.check()],
    ["blockSize", () => pool.blockSize],
    ["blockCount", () => pool.blockCount],
  ];
  for (const [op, call] of calls) {
    assert.throws(call, (e: unknown) => {
      assert.ok(e instanceof ClosedError, `${op}: ${e}`);
      assert.equal(e.op, op);
      assert.match(e.message, /BlockPool is closed/);
      return true;
    });
  }
  assert.throws(() => pool.read(-5), ClosedError); // closed wins over range
});

test("`using` closes the pool and releases its lock", () => {
  const path = tempPath();
  {
    using pool = BlockPool.create(path, {
      blockSize: 512,
      poolSize: 32 * MiB,
    });
    pool.write(0, pattern(0, 3, 512));
  }
  using pool = BlockPool.open(path);
  assert.deepEqual(pool.read(0), pattern(0, 3, 512));
});

test("`BlockPool` survives a random workload and matches a model", () => {
  const path = tempPath();
  const bs = 512;
  const model = new Map<number, number>(); // lba → seed, 0 zero, -1 error
  let rng = 12345;
  const rand = (n: number) => {
    rng = (Math.imul(rng, 1103515245) + 12345) >>> 0;
    return (rng >>> 8) % n;
  };
  {
    using pool = BlockPool.create(path, { blockSize: bs, poolSize: 32 * MiB });
    const hot = 300;
    for (let i = 1; i <= 3000; i++) {
      const lba = rand(10) === 0 ? rand(pool.blockCount) : rand(hot);
      const kind = rand(10);
      if (kind < 7) {
        pool.write(lba, pattern(lba, i, bs));
        model.set(lba, i);
      } else if (kind < 9) {
        pool.setZero(lba);
        model.set(lba, 0);
      } else {
        pool.setError(lba);
        model.set(lba, -1);
      }
    }
    assert.deepEqual(pool.check().problems, []);
  }
  using pool = BlockPool.open(path, { blockSize: bs });
  for (const [lba, seed] of model) {
    if (seed < 0) assert.throws(() => pool.read(lba), BadBlockError);
    else if (seed === 0) assert.deepEqual(pool.read(lba), new Uint8Array(bs));
    else assert.deepEqual(pool.read(lba), pattern(lba, seed, bs), `${lba}`);
  }
  assert.equal(pool.check().consistent, true);
});

test("`BlockPool` spans two arenas in a sparse 513 GiB pool", () => {
  const path = tempPath();
  const arena1 = 134086520; // first LBA of arena 1 at bsize 4096
  const lbas = [0, arena1 - 1, arena1, arena1 + 1];
  {
    using pool = createBlockPool(path, {
      blockSize: 4096,
      poolSize: 513 * 2 ** 30,
      sparse: true,
    });
    assert.equal(pool.blockCount, 134348143);
    lbas.push(pool.blockCount - 1);
    for (const lba of lbas) pool.write(lba, pattern(lba, 4, 4096));
    pool.setError(arena1 + 2);
  }
  using pool = BlockPool.open(path);
  for (const lba of lbas) {
    assert.deepEqual(pool.read(lba), pattern(lba, 4, 4096), `${lba}`);
  }
  assert.throws(() => pool.read(arena1 + 2), BadBlockError);
  assert.deepEqual(pool.read(arena1 + 3), new Uint8Array(4096));
  const report = pool.check();
  assert.equal(report.arenas, 2);
  assert.deepEqual(report.problems, []);
}, { timeout: 30_000 });

test("use after close in a subprocess never crashes the runtime", () => {
  const path = tempPath();
  const r = runScript(`
    import { BlockPool } from "@root/blk/mod.ts";
    const pool = BlockPool.create(${JSON.stringify(path)}, {
      blockSize: 512, poolSize: 32 << 20,
    });
    pool.write(0, new Uint8Array(512).fill(1));
    const block = pool.read(0);
    pool.close();
    let names = [];
    for (const f of [
      () => pool.read(0), () => pool.write(0, block), () => pool.check(),
      () => pool.setError(0), () => pool.blockCount,
    ]) {
      try { f(); } catch (e) { names.push(e.name); }
    }
    console.log(names.join(","), block[0]);
    const again = BlockPool.open(${JSON.stringify(path)});
    console.log("reopened", again.read(0)[511]);
    again.close();
  `);
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /ClosedError,ClosedError,ClosedError,ClosedError,ClosedError 1\nreopened 1/,
  );
});

test("a pool of two arenas reads and writes blocks of both", async () => {
  // A sparse file just over one arena's 512 GiB: the second arena holds
  // the last 64 MiB. Reads there take the general path (arena lookup)
  // and the windowed views of pools over 1 GiB.
  const path = tempPath();
  writeFileSync(path, "");
  truncateSync(path, 2 ** 39 + 64 * MiB);
  using pool = BlockPool.create(path, { blockSize: 4096, poolSize: 0 });
  const g = poolGeometry(2 ** 39 + 64 * MiB, 4096);
  assert.equal(g.arenas.length, 2);
  const first = g.arenas[0].externalNlba;
  assert.equal(pool.blockCount, first + g.arenas[1].externalNlba);
  const last = pool.blockCount - 1;
  const into = new Uint8Array(4096);
  for (const lba of [0, first - 1, first, last]) {
    pool.write(lba, pattern(lba, 1, 4096));
    assert.deepEqual(pool.read(lba, into), pattern(lba, 1, 4096));
  }
  await pool.writeAsync(first + 1, pattern(first + 1, 5, 4096));
  assert.deepEqual(
    await pool.readAsync(first + 1),
    pattern(first + 1, 5, 4096),
  );
  assert.deepEqual(pool.read(first + 2), new Uint8Array(4096));
  pool.setError(last);
  assert.throws(() => pool.read(last, into), BadBlockError);
  pool.setZero(first);
  assert.deepEqual(pool.read(first, into), new Uint8Array(4096));
  assert.equal(pool.check().consistent, true);
}, { timeout: 30_000 }); // (laying out 512 GiB took Bun past 5 s under load)

moverTest(
  "a pool of several view windows reads, writes and reopens, sync and async",
  async (mover) => {
    // 160 MiB: on Bun, past the size one buffer may view (`VIEW_WINDOWS`),
    // so the map and flog are reached through windows and the data blocks
    // that the async writes copy to lie in windows of their own.
    const path = tempPath();
    const size = 160 * MiB;
    const lbas: number[] = [];
    {
      using pool = BlockPool.create(path, {
        blockSize: 4096,
        poolSize: size,
        mover,
      });
      const n = pool.blockCount;
      lbas.push(0, 1, (n >> 2) + 3, n >> 1, n - 2, n - 1);
      for (const lba of lbas) pool.write(lba, pattern(lba, 2, 4096));
      await pool.writeAsync(n >> 3, pattern(n >> 3, 3, 4096));
      await pool.writeMany([
        { lba: n - 3, data: pattern(n - 3, 4, 4096) },
        { lba: (n >> 1) + 1, data: pattern((n >> 1) + 1, 4, 4096) },
      ]);
      assert.deepEqual(await pool.readAsync(n >> 3), pattern(n >> 3, 3, 4096));
      pool.setZero(1);
    }
    using pool = BlockPool.open(path);
    const into = new Uint8Array(4096);
    for (const lba of lbas.filter((l) => l !== 1)) {
      assert.deepEqual(pool.read(lba, into), pattern(lba, 2, 4096), `${lba}`);
    }
    assert.deepEqual(pool.read(1), new Uint8Array(4096));
    const n = pool.blockCount;
    assert.deepEqual(pool.read(n >> 3), pattern(n >> 3, 3, 4096));
    for (const lba of [n - 3, (n >> 1) + 1]) {
      assert.deepEqual(pool.read(lba), pattern(lba, 4, 4096));
    }
    assert.deepEqual(pool.check().problems, []);
  },
);

/** A 5000-byte block whose every word names its LBA, round and place. */
function stamp(lba: number, round: number): Uint8Array {
  const words = new Uint32Array(1250);
  for (let i = 0; i < words.length; i++) words[i] = lba * 4096 + i + round;
  return new Uint8Array(words.buffer);
}

moverTest(
  "async writes and reads of blocks across view windows' ends copy every piece, with no view of the whole pool on Bun",
  async (mover) => {
    // 5000-byte blocks take 5120 bytes each, which does not divide a
    // window (4 MiB on Bun), so some blocks cross an even window's end:
    // on Bun a batch copies such a block in two pieces. With one lane, a
    // write lands in the block the last write freed: writing LBA c twice
    // puts its second copy in c's own block (the BTT's data area starts
    // 4 KiB into the arena), so every block across a window's end is
    // written by a batch and read back by one.
    const path = tempPath();
    const size = 72 * MiB;
    using pool = createPoolWith(
      path,
      { blockSize: 5000, poolSize: size, mover },
      { lanes: 1 },
    );
    const [arena] = pool.info().arenas;
    const bytes = arena.internalBlockSize;
    const data = arena.offset + 4096;
    // the same blocks on both runtimes: those across Bun's window ends
    const window = RUNTIME === "bun" ? VIEW_WINDOWS.size : 4 * MiB;
    const crossing: number[] = [];
    for (let end = window; end < size; end += window) {
      const c = Math.floor((end - data) / bytes);
      if (data + c * bytes < end && c < arena.blocks) crossing.push(c);
    }
    assert.ok(crossing.length >= 2, `crossing blocks ${crossing}`);
    const into = new Uint8Array(5000);
    for (const c of crossing) {
      await pool.writeAsync(c, stamp(c, 0));
      await pool.writeMany([{ lba: c, data: stamp(c, 1) }]);
      assert.deepEqual(await pool.readAsync(c), stamp(c, 1), `block ${c}`);
      assert.deepEqual(pool.read(c, into), stamp(c, 1), `block ${c}`);
    }
    // the pool is past what one buffer may view on Bun: every access,
    // the batches' included, went through windows
    assert.equal(
      hasWholeBuffer(blockPoolMapping(pool)),
      RUNTIME !== "bun" || size <= VIEW_WINDOWS.whole,
    );
    assert.deepEqual(pool.check().problems, []);
  },
);

test("an open and synchronous writes and reads make Bun count pieces of a 32 MiB pool, not the pool; check() views it whole", () => {
  // Bun counts each buffer's length as allocated memory when it is made:
  // a buffer over the whole pool at each open set off a garbage
  // collection at two opens in three (VIEW_WINDOWS.piece)
  const path = tempPath();
  BlockPool.create(path, { blockSize: 4096, poolSize: 32 * MiB }).close();
  using pool = BlockPool.open(path);
  for (const lba of [0, 3, pool.blockCount - 1]) {
    pool.write(lba, new Uint8Array(4096).fill(lba & 0xff));
    assert.equal(pool.read(lba)[4095], lba & 0xff);
  }
  const map = blockPoolMapping(pool);
  const opened = viewedBytes(map);
  if (RUNTIME === "bun") {
    assert.ok(opened <= 4 * VIEW_WINDOWS.piece, `viewed ${opened} bytes`);
  } else assert.equal(opened, map.size); // V8 does not count them
  assert.equal(hasWholeBuffer(map), RUNTIME !== "bun");
  assert.deepEqual(pool.check().problems, []);
  assert.equal(hasWholeBuffer(map), true);
  assert.equal(
    viewedBytes(map),
    RUNTIME === "bun" ? opened + map.size : opened,
  );
});

test("a block pool's open makes Bun count its own read ledger of the shared state, not the 64 openers' (1 MiB)", () => {
  // an open of a 32 MiB pool viewed 1.1 MB of shared state, then views
  // of the control block, its arena's words and one ledger (54 KiB)
  const path = tempPath();
  BlockPool.create(path, { blockSize: 4096, poolSize: 32 * MiB }).close();
  let pool: BlockPool | undefined;
  const made = viewsMadeBy(() => pool = BlockPool.open(path));
  using _ = pool!;
  if (RUNTIME === "bun") assert.ok(made < 512 * 1024, `made ${made} bytes`);
  // (Deno: the whole pool at once, as V8 does not count it)
  else assert.ok(made >= 32 * MiB && made < 33 * MiB, `made ${made} bytes`);
  pool!.write(1, new Uint8Array(4096).fill(1));
  assert.equal(pool!.read(1)[0], 1);
  assert.deepEqual(pool!.check().problems, []);
});

test("`BlockPool.info()` describes geometry, arenas and fill, with progress", () => {
  const path = tempPath();
  using pool = BlockPool.create(path, { blockSize: 512, poolSize: 32 * MiB });
  const before = pool.info();
  assert.equal(before.fill.unwritten, pool.blockCount);
  pool.write(3, new Uint8Array(512).fill(3));
  pool.write(4, new Uint8Array(512).fill(4));
  pool.setZero(3);
  pool.setError(5);
  const seen: number[] = [];
  const info = pool.info({ onProgress: (done) => seen.push(done) });
  assert.equal(info.path, path);
  assert.equal(info.blockSize, 512);
  assert.equal(info.blockCount, pool.blockCount);
  assert.equal(info.readOnly, null);
  assert.equal(info.formatted, true);
  assert.deepEqual(info.fill, {
    written: 1,
    zero: 1,
    error: 1,
    unwritten: pool.blockCount - 3,
  });
  assert.equal(info.arenas.length, 1);
  const a = info.arenas[0];
  assert.equal(a.offset, 8192);
  assert.equal(a.blocks, pool.blockCount);
  assert.equal(a.dataBlocks, pool.blockCount + a.lanes);
  assert.equal(a.lanes, 256);
  assert.equal(a.internalBlockSize, 512);
  assert.equal(a.error, null);
  assert.equal(seen.at(-1), pool.blockCount);
  const checked: number[] = [];
  assert.equal(
    pool.check({ onProgress: (d) => checked.push(d) }).consistent,
    true,
  );
  assert.equal(checked.at(-1), pool.blockCount);
  assert.throws(() => pool.info({ onProgress: 1 as never }), TypeError);
  assert.throws(() => pool.check(null as never), TypeError);
});

test("`BlockPool.open({ readOnly })` recovers in memory and never writes the file", () => {
  const path = tempPath();
  {
    using pool = BlockPool.create(path, { blockSize: 512, poolSize: 32 * MiB });
    pool.write(1, new Uint8Array(512).fill(1));
  }
  const before = new Uint8Array(readFileSync(path));
  {
    using pool = BlockPool.open(path, { readOnly: true });
    assert.deepEqual(pool.read(1), new Uint8Array(512).fill(1));
    assert.equal(pool.info().readOnly, "it was opened read-only");
    const rofs = (e: unknown) =>
      e instanceof PmemError && e.code === -30 &&
      /opened read-only/.test(e.message);
    assert.throws(() => pool.write(1, new Uint8Array(512)), rofs);
    assert.throws(() => pool.setZero(1), rofs);
    assert.throws(() => pool.writeAsync(1, new Uint8Array(512)), rofs);
    assert.throws(() => pool.writeMany([]), rofs);
  }
  assert.deepEqual(new Uint8Array(readFileSync(path)), before);
  assert.throws(
    () => BlockPool.open(path, { readOnly: "yes" as unknown as boolean }),
    TypeError,
  );
});
