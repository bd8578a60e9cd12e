// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The block pool shared by several openers of one process (Workers), from
// a second review: each test failed before the fix it names.
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";
import { PmemError } from "../errors/mod.ts";
import { BlockPool } from "../blk/mod.ts";
import { Arena } from "../blk/arena.ts";
import { Media } from "../blk/media.ts";
import {
  createPoolWith,
  openPoolWith,
  trackedOperations,
} from "../blk/pool_access.ts";
import { type Future, ThreadMover, wait, waitAll } from "../mod.ts";
import { FileShare } from "../pmem2/file_share.ts";
import { maxArenas, PoolShared } from "../blk/shared.ts";
import {
  LANE_BASE,
  LANE_PENDING,
  LANE_PENDING_PRE,
  LANE_WORDS,
} from "../blk/arena_words.ts";
import {
  assert,
  FS_EXT4,
  lastJsonLine,
  peek,
  runScript,
  systemTempOn,
  tempDir,
  tempPath,
  test,
} from "./_harness.ts";
import { unformatted } from "./blk_fixtures.ts";

const MiB = 1 << 20;

function filled(size: number, value: number): Uint8Array {
  return new Uint8Array(size).fill(value);
}

/**
 * A pool of one lane (a block freed by a write is the next write's
 * target) holding 0xaa in block 0 and 0xbb in block 1, and `read` of it
 * run while its first copy (`Media`'s `copy`: the gathering one, or a
 * block's own) is overtaken by hand: another opener comes, writes block 0
 * (its old block goes free) and block 1 (which takes that block), and
 * leaves, between the lookups and the copy. Returns what `read` returned,
 * how many copies ran, and the pool.
 */
function overtakenCopy<T>(
  read: (pool: BlockPool) => T,
  blockSize = 512,
  copy: "readBlocks" | "read" = "readBlocks",
): { value: T; copies: number; pool: BlockPool } {
  const path = tempPath();
  const pool = createPoolWith(path, { blockSize, poolSize: 32 * MiB }, {
    lanes: 1,
  });
  pool.write(0, filled(blockSize, 0xaa));
  pool.write(1, filled(blockSize, 0xbb));
  const original = Media.prototype[copy] as (...args: unknown[]) => unknown;
  let copies = 0;
  Media.prototype[copy] = function (this: Media, ...args: unknown[]) {
    if (copies++ === 0) {
      using other = BlockPool.open(path);
      other.write(0, filled(blockSize, 0xaa)); // block 0's old block goes free
      other.write(1, filled(blockSize, 0xcc)); // and takes block 1's data
    }
    return original.apply(this, args);
  } as never;
  try {
    return { value: read(pool), copies, pool };
  } catch (e) {
    pool.close();
    throw e;
  } finally {
    Media.prototype[copy] = original as never;
  }
}

test("a read alone in the process is not fooled by an opener that came, wrote over its block and left during the copy", () => {
  // A read copies untracked while its BlockPool is the pool's only
  // opener, and checks the count of openers again after the copy. The
  // count was all it looked at: a Worker that opened the pool, wrote the
  // block being copied over and closed again while a long readMany
  // copied (a copy of many blocks takes milliseconds) put the count back
  // to 1, and the read returned another block's data. Such an
  // interleaving is made here by hand: the other opener comes, writes
  // and leaves between the lookup of the blocks and their copy.
  const { value: out, copies: gathers, pool: p } = overtakenCopy((pool) =>
    pool.readMany([0, 1])
  );
  using pool = p;
  assert.deepEqual([out[0], out[511], out[512], out[1023]], [
    0xaa,
    0xaa,
    0xcc,
    0xcc,
  ]);
  assert.equal(gathers, 2, "the read went round again");
  // alone again, reads are right and take the fast path again
  assert.equal(pool.read(1)[0], 0xcc);
  assert.deepEqual(pool.check().problems, []);
});

test("a read that looked its blocks up beside another opener does not copy them untracked once it left", () => {
  // A read looked its blocks up, then asked whether its BlockPool was the
  // pool's only opener, and copied untracked if so: another opener that
  // wrote over a looked-up block and left in between (a readMany's
  // lookups of many blocks take a while) went unnoticed, and the read
  // returned another block's data. The other opener writes and leaves
  // here right after the first lookup, by hand.
  const path = tempPath();
  using pool = createPoolWith(path, { blockSize: 512, poolSize: 32 * MiB }, {
    lanes: 1,
  });
  const mapEntry = Arena.prototype.mapEntry;
  const race = (read: () => Uint8Array): Uint8Array => {
    pool.write(0, filled(512, 0xaa));
    pool.write(1, filled(512, 0xbb));
    let other: BlockPool | null = BlockPool.open(path);
    Arena.prototype.mapEntry = function (pre) {
      const entry = mapEntry.call(this, pre);
      const o = other;
      if (o !== null) {
        other = null;
        o.write(0, filled(512, 0xaa)); // block 0's old block goes free
        o.write(1, filled(512, 0xcc)); // and takes block 1's data
        o.close();
      }
      return entry;
    };
    try {
      return read();
    } finally {
      Arena.prototype.mapEntry = mapEntry;
      other?.close();
    }
  };
  const many = race(() => pool.readMany([0, 1]));
  assert.deepEqual([many[0], many[511], many[512], many[1023]], [
    0xaa,
    0xaa,
    0xcc,
    0xcc,
  ]);
  const one = race(() => pool.read(0));
  assert.deepEqual([one[0], one[511]], [0xaa, 0xaa]);
  assert.deepEqual(pool.check().problems, []);
});

test("readAsync gathered untracked while alone reads again, published, when an opener came, wrote over its block and left before the gather", () => {
  // Reads polled together with a plain CpuMover gather their blocks in
  // one native call on this thread; while their BlockPool is the pool's
  // only opener they publish nothing (no other code runs until the copies
  // end), and check the count of openers again after the gather. Another
  // opener (a Worker's) that wrote over a looked-up block meanwhile and
  // left is made here by hand, just before the gather.
  const { value: outs, copies: gathers, pool: p } = overtakenCopy((pool) =>
    waitAll([pool.readAsync(0), pool.readAsync(1)])
  );
  using pool = p;
  assert.deepEqual([outs[0][0], outs[0][511], outs[1][0], outs[1][511]], [
    0xaa,
    0xaa,
    0xcc,
    0xcc,
  ]);
  assert.equal(gathers, 2, "the reads were gathered again");
  assert.equal(trackedOperations(pool), 0);
  // nothing stays published: every lane can be written again
  pool.write(2, filled(512, 0xdd));
  assert.equal(wait(pool.readAsync(2))[0], 0xdd);
  assert.deepEqual(pool.check().problems, []);
});

test("readAsync of blocks over 1 KiB copied untracked while alone reads again, published, when an opener came, wrote over its block and left during the copies", () => {
  // Blocks too large to gather are copied one call each, on this thread,
  // with a plain CpuMover; while their BlockPool is the pool's only opener
  // they publish nothing either, and check the count of openers again
  // after the copies. Another opener that wrote over a looked-up block
  // and left is made here by hand, at the first copy.
  const { value: outs, copies, pool: p } = overtakenCopy(
    (pool) => waitAll([pool.readAsync(0), pool.readAsync(1)]),
    4096,
    "read",
  );
  using pool = p;
  assert.deepEqual([outs[0][0], outs[0][4095], outs[1][0], outs[1][4095]], [
    0xaa,
    0xaa,
    0xcc,
    0xcc,
  ]);
  assert.equal(copies, 4, "the reads were copied again");
  assert.equal(trackedOperations(pool), 0);
  // nothing stays published: every lane can be written again
  pool.write(2, filled(4096, 0xdd));
  assert.equal(wait(pool.readAsync(2))[0], 0xdd);
  assert.deepEqual(pool.check().problems, []);
});

test("two openers closing at once leave the pool header's shutdown state clean, as the last close of libpmemblk does", () => {
  // The last close marks the header's shutdown state clean; a close
  // called itself the last when the count of openers read 1, and dropped
  // its own count only later. Two openers (Workers) closing at once both
  // saw the other's count and neither cleaned: the pool was left marked
  // open, and after an unsafe shutdown of its device (while no process had
  // it open) an open would take it for one that was open then. Here the
  // second opener closes inside the first's close, by hand.
  const path = tempPath();
  BlockPool.create(path, { blockSize: 512, poolSize: 32 * MiB }).close();
  const clean = peek(path, 4024, 64);
  assert.equal(clean[16], 0); // the dirty flag
  const a = BlockPool.open(path);
  const b = BlockPool.open(path);
  assert.equal(peek(path, 4024, 64)[16], 1, "open: dirty");
  const close = Media.prototype.close;
  let inside = 0;
  Media.prototype.close = function () {
    if (inside++ === 0) b.close();
    return close.call(this);
  };
  try {
    a.close();
  } finally {
    Media.prototype.close = close;
  }
  assert.equal(inside, 2, "b closed inside a's close");
  assert.deepEqual(peek(path, 4024, 64), clean);
});

test("an open that joins while another opener lays the BTT out does not take the arenas before their shared state is ready", () => {
  // A pool without a BTT (as libpmemblk creates them) gets one at its
  // first write, under the layout lock; the arenas' shared state (lanes,
  // idle ring) is set up after the info blocks are written. An open that
  // joined in between found valid info blocks and took the arenas with no
  // lanes yet: its writeMany made groups of 0 blocks and never settled
  // (and its writes waited for lanes). The joiner opens here right after
  // arena 0's info block, the layout's last write, by hand.
  const path = unformatted();
  let joiner: BlockPool | undefined;
  let many: Future<void> | undefined;
  const tracer = {
    flush(offset: number) {
      // arena 0's primary info block: the layout is valid on the media
      if (offset !== 8192 || joiner !== undefined) return;
      joiner = BlockPool.open(path);
      many = joiner.writeMany([{ lba: 1, data: filled(512, 1) }]);
    },
    drain() {},
  };
  using first = openPoolWith(path, {}, { tracer });
  first.write(0, filled(512, 7)); // lays the BTT out
  assert.ok(joiner !== undefined && many !== undefined, "the joiner opened");
  // polled by hand: a writeMany that never settles must not hang the test
  for (let i = 0; i < 1000 && !many.done; i++) many.poll();
  assert.equal(many.state, "complete", "the writeMany settled");
  try {
    joiner.write(2, filled(512, 2));
    assert.deepEqual(
      [first.read(1)[0], first.read(2)[0], joiner.read(0)[0]],
      [1, 2, 7],
    );
    assert.deepEqual(first.check().problems, []);
  } finally {
    joiner.close();
  }
});

/**
 * Two opens of one pool of 4 lanes in this isolate, `a` with a started
 * write in flight on each lane (copies under way, not committed), `b`
 * with `a`'s mover if `shareMover`, else its own.
 */
function lanesHeldByAnotherOpen(shareMover: boolean) {
  const path = tempPath();
  const mover = new ThreadMover();
  const a = createPoolWith(path, {
    blockSize: 512,
    poolSize: 32 * MiB,
    mover,
  }, { lanes: 4 });
  const b = BlockPool.open(path, shareMover ? { mover } : {});
  const writes = [0, 1, 2, 3].map((lba) => a.writeAsync(lba, filled(512, 1)));
  for (const w of writes) w.poll(); // each queues
  writes[0].poll(); // starts them all: each holds a lane, its copy under way
  assert.ok(writes.every((w) => w.state === "running"));
  return {
    a,
    b,
    writes,
    [Symbol.dispose]() {
      b.close();
      a.close();
      mover.close();
    },
  };
}

test("a write that finds every lane held by another opener of this isolate drives that opener's writes, not waits 30 s for them", async () => {
  // A synchronous write with no idle lane waited for its own pool's
  // writes in flight, then slept for lanes that other openers (Workers)
  // hold: 30 s, then EBUSY. When the holder was another BlockPool of the
  // pool in this isolate, its writes could only finish on this thread,
  // which slept. It drives them now, as its own.
  using held = lanesHeldByAnotherOpen(false);
  const { a, b, writes } = held;
  const t0 = performance.now();
  b.write(10, filled(512, 2));
  const ms = performance.now() - t0;
  assert.ok(ms < 5000, `the write waited ${Math.round(ms)} ms`);
  await Promise.all(writes);
  assert.deepEqual([a.read(0)[0], a.read(3)[0], a.read(10)[0]], [1, 1, 2]);
});

test("a blocking wait for a write whose lanes another opener of this isolate holds finishes that opener's writes, not waits for good", async () => {
  // A write short of lanes finished the writes of its own pool that were
  // copied but not committed (their futures not polled), and waited.
  // When another BlockPool of the pool in this isolate held the lanes,
  // only a poll of its writes, on this thread, could commit them: a
  // blocking wait() for the write (or the pool's close, which waits for
  // its writes) waited for good. Polled by hand here, for a bounded time.
  using held = lanesHeldByAnotherOpen(true);
  const { a, b, writes } = held;
  const mine = b.writeAsync(10, filled(512, 2));
  const deadline = performance.now() + 3000;
  while (!mine.done && performance.now() < deadline) {
    mine.poll();
    await new Promise((r) => setTimeout(r, 1));
  }
  const state = mine.state;
  await Promise.all(writes);
  await mine;
  assert.equal(state, "complete", "the write went on");
  assert.deepEqual([b.read(0)[0], b.read(3)[0], a.read(10)[0]], [1, 1, 2]);
});

test("another open of the pool in this isolate refuses inside check()'s progress callback what would wait for the check's locks", () => {
  // check() holds the pool's layout lock and every commit lock while its
  // progress callback runs; the callback's updates, checks and commits of
  // the pool throw a TypeError. Through another BlockPool of the same
  // pool in this isolate they waited for those locks, held by their own
  // thread, for good. In a child process, so a hang fails the test.
  const path = tempPath();
  const r = runScript(
    `
    import { BlockPool } from "@root/blk/mod.ts";
    import { wait } from "@root/mod.ts";
    const path = ${JSON.stringify(path)};
    const a = BlockPool.create(path, { blockSize: 512, poolSize: 32 << 20 });
    const b = BlockPool.open(path);
    const block = (v) => new Uint8Array(512).fill(v);
    const out = {};
    const name = (f) => { try { f(); return "ok"; } catch (e) { return e.name; } };
    let once = true;
    a.check({ onProgress: () => {
      if (!once) return;
      once = false;
      out.write = name(() => b.write(1, block(1)));
      out.setZero = name(() => b.setZero(2));
      out.check = name(() => b.check());
      out.writeAsync = name(() => wait(b.writeAsync(3, block(3))));
      out.read = b.read(1)[0];
    } });
    // after the check, all goes on
    b.write(1, block(11));
    wait(b.writeMany([{ lba: 3, data: block(33) }]));
    out.after = [a.read(1)[0], a.read(3)[0]];
    out.problems = b.check().problems;
    b.close();
    a.close();
    console.log(JSON.stringify(out));
  `,
    20_000,
  );
  assert.deepEqual(lastJsonLine(r), {
    write: "TypeError",
    setZero: "TypeError",
    check: "TypeError",
    writeAsync: "TypeError",
    read: 0,
    after: [11, 33],
    problems: [],
  });
});

// Bug (found by the shared-store review, fixed after it): a flusher of
// pending map entries read each lane's mark (1 + the block), persisted,
// then cleared the mark by a compare-exchange on that value. Another
// opener committing the same block through the same lane between the
// persist and the clear stored a newer entry with the same mark, and the
// flusher cleared it: an entry never persisted counted as persisted, so
// the lane's flog slot could be reused with the only durable record of
// that update lost. The mark is now the update's sequence number.
test("a flush of pending map entries leaves pending an entry that another opener stored after its persist", () => {
  const path = tempPath();
  using p1 = createPoolWith(path, { blockSize: 512, poolSize: 32 * MiB }, {
    lanes: 2,
  });
  using p2 = BlockPool.open(path);
  const size = statSync(path).size;
  using share = FileShare.open(path, PoolShared.bytes(size));
  const w = new PoolShared(share.memory, maxArenas(size)).arena(0);
  const marks = () =>
    [0, 1].map((l) => w[LANE_BASE + l * LANE_WORDS + LANE_PENDING]);
  p1.write(5, filled(512, 1));
  p1.write(9, filled(512, 2));
  assert.ok(marks().every((m) => m !== 0), "both lanes have a pending entry");
  let armed = true;
  const restore: (() => void)[] = [];
  for (const name of ["persist", "persistRanges"] as const) {
    const proto = Media.prototype as unknown as Record<
      string,
      (...a: unknown[]) => unknown
    >;
    const orig = proto[name];
    proto[name] = function (this: unknown, ...a: unknown[]) {
      const r = orig.apply(this, a);
      if (armed && new Error().stack!.includes("flushPendingMaps")) {
        armed = false;
        // block 9 again, through a lane whose entry the flush collected
        p2.write(9, filled(512, 3));
      }
      return r;
    };
    restore.push(() => proto[name] = orig);
  }
  try {
    p1.write(7, filled(512, 4));
  } finally {
    for (const r of restore) r();
  }
  assert.equal(armed, false, "the other opener wrote during the flush");
  // p2's entry for block 9 was stored after p1's persist: still pending
  // (or persisted by a later flush, which would have cleared every mark)
  const pending = [0, 1].filter((l) =>
    w[LANE_BASE + l * LANE_WORDS + LANE_PENDING] !== 0 &&
    w[LANE_BASE + l * LANE_WORDS + LANE_PENDING_PRE] === 9 + 1
  );
  assert.equal(pending.length, 1, `marks ${marks()}`);
  assert.deepEqual(p1.read(9), filled(512, 3));
});

/** The system temp dir on ext4 with chattr (+i refuses root too), or undefined. */
const ext4 = spawnSync("chattr", ["--help"]).error === undefined
  ? systemTempOn([FS_EXT4])
  : undefined;

// Bug (found by the CLI review): BlockPool.open({ readOnly: true }) opened
// the file read-write and mapped it shared (then again privately), so a
// pool file the caller may only read could not be opened read-only, and
// `asyncpmem info`/`check` failed on it. It is now opened for reading and
// mapped privately from the start. (Root writes any file whatever its
// mode: an immutable file, chattr +i, refuses root too.)
test(
  "BlockPool.open({ readOnly: true }) opens a pool file that may not be written",
  () => {
    const path = join(tempDir(ext4), "pool");
    try {
      {
        using pool = BlockPool.create(path, {
          blockSize: 512,
          poolSize: 32 * MiB,
        });
        pool.write(3, filled(512, 7));
      }
      assert.equal(spawnSync("chattr", ["+i", path]).status, 0);
      assert.throws(() => BlockPool.open(path), PmemError, "a writable open");
      using pool = BlockPool.open(path, { readOnly: true });
      assert.deepEqual(pool.read(3), filled(512, 7));
      assert.equal(pool.check().consistent, true);
    } finally {
      spawnSync("chattr", ["-i", path]); // then the harness removes it
    }
  },
  {
    skip: ext4 === undefined &&
      "needs an ext4 temp dir and chattr (immutable files)",
  },
);

// Bug: every readAsync, writeAsync and writeMany future was kept by its
// pool from its creation, so close() could find it: futures made and
// dropped without a poll (lazy: they never started) stayed, with their
// arrays, until the pool closed. A future is now kept from its first poll.
test("block futures never polled are not kept by their pool; polled ones are, until they settle", async () => {
  using pool = BlockPool.create(tempPath(), {
    blockSize: 512,
    poolSize: 32 << 20,
  });
  const data = new Uint8Array(512).fill(9);
  for (let i = 0; i < 1000; i++) {
    pool.readAsync(i % 64);
    pool.writeAsync(i % 64, data);
    pool.writeMany([{ lba: 1, data }, { lba: 2, data }]);
  }
  assert.equal(trackedOperations(pool), 0);
  const w = pool.writeAsync(5, data);
  const r = pool.readAsync(5);
  w.poll();
  r.poll();
  assert.equal(trackedOperations(pool), 2);
  await w;
  assert.equal((await r)[0], 9);
  assert.equal(trackedOperations(pool), 0);
});
