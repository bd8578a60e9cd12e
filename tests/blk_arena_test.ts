// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The write steps of blk/arena.ts driven one by one, interleaved the way
// asynchronous writes will run them, and cut short the way a crash would.
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { Arena, type WriteTicket } from "../blk/arena.ts";
import { IntMap } from "../blk/int_map.ts";
import { decodeBttInfo } from "../blk/layout.ts";
import { Media } from "../blk/media.ts";
import { BlockPool } from "../blk/mod.ts";
import { PmemError } from "../errors/mod.ts";
import { mapFile } from "../pmem2/map_file.ts";
import { commitFlog } from "../blk/commit.ts";
import { assert, rng, tempPath, test } from "./_harness.ts";

/** Step 3 of one update (the commit every write goes through); its old entry. */
function commitOne(arena: Arena, media: Media, lane: number, pre: number) {
  const update = { arena, lane, pre, old: 0 };
  commitFlog(media, [update]);
  return update.old;
}
import { pattern } from "./c/blkutil.ts";

const BS = 512;

/** A fresh pool file and its arena 0, loaded without BlockPool. */
function arenaOf(path: string, create = true) {
  if (create) {
    BlockPool.create(path, { blockSize: BS, poolSize: 32 << 20 }).close();
  }
  const map = mapFile(path);
  const media = new Media(map);
  const info = decodeBttInfo(media.bytes(8192, 4096));
  const repaired: string[] = [];
  const arena = Arena.load(
    media,
    { index: 0, base: 8192, firstLba: 0, info },
    repaired,
  );
  const close = () => {
    media.close();
    map.close();
  };
  return { map, media, arena, repaired, close };
}

/** Steps 1 and 2 of a write: a lane and the data in its free block. */
function prepare(arena: Arena, media: Media, lba: number, seed: number) {
  const lane = arena.takeLane();
  assert.ok(lane >= 0);
  media.memcpy(
    arena.blockOffset(arena.freeBlock(lane)),
    pattern(lba, seed, BS),
  );
  return lane;
}

test("`Arena` runs 256 writes in flight, one per lane, interleaved", () => {
  const path = tempPath();
  const { arena, media, close } = arenaOf(path);
  assert.equal(arena.idleLanes, 256);
  const lanes: number[] = [];
  const frees = new Set<number>();
  for (let lba = 0; lba < 256; lba++) {
    const lane = prepare(arena, media, lba, 7);
    lanes.push(lane);
    frees.add(arena.freeBlock(lane));
  }
  assert.equal(new Set(lanes).size, 256);
  assert.equal(frees.size, 256);
  assert.equal(arena.takeLane(), -1);
  // commit in one order, publish in another
  const olds = new Map<number, number>();
  const order = [...lanes.keys()].sort((a, b) =>
    ((a * 97) % 256) - ((b * 97) % 256)
  );
  for (const lba of order) {
    olds.set(lba, commitOne(arena, media, lanes[lba], lba));
  }
  for (const lba of [...order].reverse()) {
    arena.publish(lanes[lba], lba, olds.get(lba)!);
  }
  assert.equal(arena.idleLanes, 256);
  close();
  using pool = BlockPool.open(path);
  for (let lba = 0; lba < 256; lba++) {
    assert.deepEqual(pool.read(lba), pattern(lba, 7, BS), `${lba}`);
  }
  assert.deepEqual(pool.check().problems, []);
  assert.deepEqual(pool.check().repaired, []);
});

test("`Arena.leave()` from the middle of a queue keeps the others in order", () => {
  const path = tempPath();
  const { arena, close } = arenaOf(path);
  const [a, b, c, d] = [
    arena.enter(5),
    arena.enter(5),
    arena.enter(5),
    arena.enter(5),
  ];
  arena.leave(c); // a failed update behind the head
  assert.equal(arena.mayCommit(a), true);
  arena.leave(a);
  assert.equal(arena.head(5), b);
  assert.equal(arena.mayCommit(b), true);
  assert.equal(arena.mayCommit(d), false);
  arena.leave(b);
  assert.equal(arena.mayCommit(d), true);
  const e = arena.enter(5); // joins behind d, not behind the departed c
  arena.leave(d);
  assert.equal(arena.mayCommit(e), true);
  arena.leave(e);
  assert.equal(arena.hasQueuedUpdates, false);
  close();
});

test("`Arena.mayCommit()` orders writes of one block by issue order", () => {
  const path = tempPath();
  const { arena, media, close } = arenaOf(path);
  const first = arena.enter(9);
  const second = arena.enter(9);
  const other = arena.enter(10);
  assert.equal(arena.mayCommit(first), true);
  assert.equal(arena.mayCommit(second), false);
  assert.equal(arena.mayCommit(other), true);
  assert.throws(
    () => arena.enterNow(9, "write"),
    (e: unknown) => e instanceof PmemError && e.code === -16,
  );
  // the second write copies first, but must wait to commit
  const l2 = prepare(arena, media, 9, 2);
  const l1 = prepare(arena, media, 9, 1);
  arena.publish(l1, 9, commitOne(arena, media, l1, 9));
  arena.leave(first);
  assert.equal(arena.mayCommit(second), true);
  arena.publish(l2, 9, commitOne(arena, media, l2, 9));
  arena.leave(second);
  arena.leave(other);
  arena.leave(other); // leaving twice is harmless
  const t = arena.enterNow(9, "write");
  arena.leave(t);
  close();
  using pool = BlockPool.open(path);
  assert.deepEqual(pool.read(9), pattern(9, 2, BS));
  assert.equal(pool.check().consistent, true);
});

test("`Arena.takeLane()` never hands out a block a read is copying", () => {
  const path = tempPath();
  const { arena, media, close } = arenaOf(path);
  let lane = prepare(arena, media, 3, 1);
  arena.publish(lane, 3, commitOne(arena, media, lane, 3));
  const block = arena.mapEntry(3) & 0x3fffffff;
  arena.trackRead(block); // a reader fetched map[3] and copies block
  arena.trackRead(block); // a second one
  lane = prepare(arena, media, 3, 2); // a write frees block
  arena.publish(lane, 3, commitOne(arena, media, lane, 3));
  assert.equal(arena.freeBlock(lane), block);
  assert.equal(arena.isBeingRead(block), true);
  const taken: number[] = [];
  for (;;) {
    const l = arena.takeLane();
    if (l < 0) break;
    assert.notEqual(arena.freeBlock(l), block);
    taken.push(l);
  }
  assert.equal(taken.length, 255);
  arena.untrackRead(block);
  assert.equal(arena.takeLane(), -1); // one reader is still copying
  arena.untrackRead(block);
  assert.equal(arena.takeLane(), lane);
  for (const l of [...taken, lane]) arena.releaseLane(l);
  assert.equal(arena.idleLanes, 256);
  close();
});

test("`BlockPool.write()` cycles flog sequence numbers 1 → 2 → 3 → 1", () => {
  const path = tempPath();
  using pool = BlockPool.create(path, { blockSize: BS, poolSize: 32 << 20 });
  const info = decodeBttInfo(
    new Uint8Array(readFileSync(path).subarray(8192, 8192 + 4096)),
  );
  // lanes are reused oldest first: follow every slot through 7 uses
  const flog = 8192 + info.flogOff;
  const nfree = info.nfree;
  const fd = openSync(path, "r");
  const history: number[][][] = Array.from({ length: nfree }, () => []);
  const slots = new Uint8Array(nfree * 64);
  const seqsOf = (lane: number) => {
    const f = new DataView(slots.buffer, lane * 64, 32);
    return [f.getUint32(12, true), f.getUint32(28, true)];
  };
  try {
    readSync(fd, slots, 0, slots.length, flog);
    let before = Array.from({ length: nfree }, (_, l) => seqsOf(l).join());
    for (let i = 0; i < 7 * nfree; i++) {
      pool.write(i % 3, pattern(i, i, BS));
      readSync(fd, slots, 0, slots.length, flog);
      const after = Array.from({ length: nfree }, (_, l) => seqsOf(l).join());
      const changed = after.flatMap((v, l) => (v === before[l] ? [] : [l]));
      assert.equal(changed.length, 1, `write ${i} changed one flog slot`);
      history[changed[0]].push(seqsOf(changed[0]));
      before = after;
    }
  } finally {
    closeSync(fd);
  }
  for (const seqs of history) {
    assert.deepEqual(seqs, [
      [1, 2],
      [3, 2],
      [3, 1],
      [2, 1],
      [2, 3],
      [1, 3],
      [1, 2],
    ]);
  }
  assert.deepEqual(pool.check().problems, []);
});

test("`BlockPool.open()` finishes a write that crashed after its commit", () => {
  const path = tempPath();
  {
    using pool = BlockPool.create(path, { blockSize: BS, poolSize: 32 << 20 });
    pool.write(4, pattern(4, 1, BS));
  }
  const { arena, media, close } = arenaOf(path, false);
  const lane = prepare(arena, media, 4, 2); // steps 1, 2
  const old = commitOne(arena, media, lane, 4); // step 3, then the crash
  assert.equal(arena.mapEntry(4), old);
  close();
  using pool = BlockPool.open(path);
  assert.deepEqual(pool.read(4), pattern(4, 2, BS));
  const report = pool.check();
  assert.deepEqual(report.problems, []);
  assert.equal(report.repaired.length, 1);
  assert.match(report.repaired[0], /finished the interrupted write of block 4/);
  pool.close();
  using again = BlockPool.open(path); // the roll-forward was persisted
  assert.deepEqual(again.check().repaired, []);
  assert.deepEqual(again.read(4), pattern(4, 2, BS));
});

test("`BlockPool.open()` keeps the old data when a write crashed before its commit", () => {
  for (const cut of ["after data", "after flog half 1"]) {
    const path = tempPath();
    {
      using pool = BlockPool.create(path, {
        blockSize: BS,
        poolSize: 32 << 20,
      });
      pool.write(4, pattern(4, 1, BS));
    }
    const { arena, media, close } = arenaOf(path, false);
    const lane = prepare(arena, media, 4, 2);
    if (cut === "after flog half 1") {
      const at = arena.flogOff + lane * 64; // after one write, A is next
      media.setU32(at, 4);
      media.setU32(at + 4, arena.mapEntry(4));
      media.persist(at, 8);
    }
    close();
    using pool = BlockPool.open(path);
    assert.deepEqual(pool.read(4), pattern(4, 1, BS), cut);
    assert.deepEqual(pool.check().repaired, [], cut);
    assert.deepEqual(pool.check().problems, [], cut);
    pool.write(4, pattern(4, 3, BS)); // the lane works on
    assert.deepEqual(pool.read(4), pattern(4, 3, BS), cut);
  }
});

test("`IntMap` agrees with a Map over random sets and deletes", () => {
  const queues = new IntMap<WriteTicket>();
  const reference = new Map<number, WriteTicket>();
  const next = rng(7);
  for (let i = 0; i < 50_000; i++) {
    // few distinct blocks at first (heavy reuse), then a wide range
    const pre = Math.floor(next() * (i < 20_000 ? 300 : 2 ** 30));
    if (next() < 1 / 3) {
      queues.delete(pre);
      reference.delete(pre);
    } else {
      const t = { pre };
      queues.set(pre, t);
      reference.set(pre, t);
    }
    assert.equal(queues.size, reference.size);
    assert.equal(queues.get(pre), reference.get(pre));
    assert.equal(queues.has(pre), reference.has(pre));
  }
  for (const [pre, t] of reference) assert.equal(queues.get(pre), t);
  assert.equal(queues.get(123_456_789), reference.get(123_456_789));
});
