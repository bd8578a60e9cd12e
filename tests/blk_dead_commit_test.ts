// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// A Worker terminated in the middle of a commit of the block pool it shares
// with others (holding the blocks' stripes and its lanes): the openers that
// go on recover its lanes from the flog as an open would, and its blocks
// and lanes go round again. Each scenario runs in a child process
// (`deadOpenerScript`), so a hang fails the test instead of the runner; the
// Worker ends its own thread at its step (`dead_commit_worker.ts`).
import { assert, test } from "./_harness.ts";
import { deadOpenerScript } from "./dead_opener.ts";
import type { CommitStep } from "./workers/dead_commit_worker.ts";

/** One place a Worker is stopped at, and what its write is then. */
interface StopPoint {
  /** The commit's persist it stops at (see `dead_commit_worker.ts`). */
  step: CommitStep;
  /** `PMEM2_FORCE_GRANULARITY` of the child, or the file's own (page). */
  granularity?: "CACHE_LINE";
  /** Blocks of the Worker's write: one (a write) or more (a writeMany). */
  lbas: number[];
  /** Whether the commit point was stored: recovery finishes the write. */
  committed: boolean;
  /**
   * A pool never written before (its blocks read as zeros): the Worker's
   * update is the first of its lane, whose other flog entry is all zeros.
   */
  fresh?: boolean;
  /** The Worker's update (see `dead_commit_worker.ts`). @default "write" */
  op?: "write" | "setZero";
}

const STOPS: StopPoint[] = [
  { step: "map", lbas: [3], committed: false },
  { step: "flogTail", lbas: [3], committed: true },
  { step: "map", granularity: "CACHE_LINE", lbas: [3], committed: false },
  { step: "flogHead", granularity: "CACHE_LINE", lbas: [3], committed: false },
  { step: "flogTail", granularity: "CACHE_LINE", lbas: [3], committed: true },
  { step: "committed", lbas: [3], committed: true },
  { step: "published", lbas: [3], committed: true },
  { step: "flogTail", lbas: [3, 5, 6], committed: true },
  {
    step: "flogHead",
    granularity: "CACHE_LINE",
    lbas: [3, 5, 6],
    committed: false,
  },
  {
    step: "flogHead",
    granularity: "CACHE_LINE",
    lbas: [3],
    committed: false,
    fresh: true,
  },
  { step: "flogTail", lbas: [3], committed: true, fresh: true },
];

/**
 * Child source: start the Worker of `dead_commit_worker.ts` on the
 * child's `lbas` and wait until it ended at `stop` (`out.stopped`: 1 when
 * it came to the step; `out.ended`: the opens that ended).
 */
function endWorkerAt(stop: StopPoint): string {
  return `
    const w = await startWorker("@root/tests/workers/dead_commit_worker.ts");
    const words = new Int32Array(new SharedArrayBuffer(8));
    {
      // the Worker ends its thread at the step: wait until the share saw
      // it (opens that ended before it are not counted)
      using share = FileShare.open(path, PoolShared.bytes(statSync(path).size));
      const before = share.endedOpens;
      w.postMessage({
        path, lbas, value: 99, step: "${stop.step}",
        halves: ${stop.granularity !== undefined}, words: words.buffer,
        op: "${stop.op ?? "write"}",
      });
      for (let t0 = performance.now(); share.endedOpens === before;) {
        if (performance.now() - t0 > 20000) break;
        await new Promise((r) => setTimeout(r, 2));
      }
      out.stopped = Atomics.load(words, 0);
      out.ended = share.endedOpens - before;
      w.terminate();
    }`;
}

// Bug: a Worker that ended holding a block's stripe mid-commit failed every
// later commit of that block (and of its stripe) with EOWNERDEAD (-130),
// and kept its lanes out of the ring, until every opener closed the pool
// and it was opened again: what the reopen would recover (the flog entry
// of each of its lanes) the openers still running could not.
for (const stop of STOPS) {
  const what = `${
    stop.lbas.length === 1 ? "a write" : "a writeMany"
  } at ${stop.step}${stop.granularity ? ` (${stop.granularity})` : ""}${
    stop.fresh ? ", its lane's first" : ""
  }`;
  test(`a Worker ended in ${what}: the others recover its lanes online, its blocks read whole and write again`, () => {
    const out = deadOpenerScript(
      `
    import { stripeOf } from "@root/blk/lanes.ts";
    const lbas = ${JSON.stringify(stop.lbas)};
    const pool = ${
        stop.fresh
          ? "createBlockPool(path, { blockSize: 512, poolSize: 32 << 20, lanes: 4 })"
          : "fourLanePool()"
      };
    ${endWorkerAt(stop)}
    // what a byte of the block is if all are the same, else "torn"
    const whole = (lba) => {
      const b = pool.read(lba);
      return b.every((x) => x === b[0]) ? b[0] : "torn";
    };
    out.heldStripe = laneTable((t) => Atomics.load(t.words, stripeOf(lbas[0])) !== 0);
    // (in a fresh pool a check recovers first: a check waits for every
    // stripe, and would see a lane's half-written first entry left so)
    out.firstCheck = ${stop.fresh ? "pool.check().problems" : "[]"};
    // a commit of another block of the same stripe waits for the stripe
    out.sameStripe = code(() => pool.write(lbas[0] + 1024, block(44)));
    out.seen = lbas.map(whole);
    out.idleAfterRecovery = idleLanes();
    out.write = code(() => pool.write(lbas[0], block(55)));
    out.writeMany = await asyncCode(pool.writeMany(
      lbas.map((lba) => ({ lba, data: block(66) })),
    ));
    out.after = lbas.map(whole);
    Object.assign(out, await useEveryLane(pool, 8));
    out.idle = idleLanes();
    try {
      out.problems = pool.check().problems;
    } catch (e) {
      out.problems = e.code ?? String(e);
    }
    pool.close();
    using again = BlockPool.open(path);
    out.again = again.check().problems;
    out.readAgain = [lbas[0] + 1024, 10].map((lba) => again.read(lba)[0]);
  `,
      stop.granularity
        ? { env: { PMEM2_FORCE_GRANULARITY: stop.granularity } }
        : {},
    );
    assert.equal(out.stopped, 1, "the Worker never came to its step");
    assert.equal(out.ended, 1, "the Worker's thread never ended");
    assert.equal(out.heldStripe, true, "the Worker ended without the stripe");
    assert.deepEqual(out.firstCheck, []);
    assert.equal(out.sameStripe, 0);
    // block i held i before the Worker's write (0 in a fresh pool)
    const old = stop.lbas.map((lba) => stop.fresh ? 0 : lba);
    assert.deepEqual(out.seen, stop.committed ? old.map(() => 99) : old);
    assert.equal(out.idleAfterRecovery, 4);
    assert.equal(out.write, 0);
    assert.equal(out.writeMany, 0);
    assert.deepEqual(out.after, stop.lbas.map(() => 66));
    assert.equal(out.writes, 0);
    assert.equal(out.group, 0);
    assert.deepEqual(out.read, [39, 10, 13]);
    assert.equal(out.idle, 4);
    assert.deepEqual(out.problems, []);
    assert.deepEqual(out.again, []);
    assert.deepEqual(out.readAgain, [44, 10]);
  });
}

// The recovery is durable on its own: the flog entry the ended commit
// stored may not have been persisted, and its map entry, once finished,
// is in no list of pending entries that others persist. A crash after
// the others went on would otherwise find the block's new data block
// still free in the flog, or its map entry gone back.
test("a Worker ended at its commit point: the recovery persists the lane's flog slot, then the block's map entry", () => {
  const stop: StopPoint = { step: "flogTail", lbas: [3], committed: true };
  const out = deadOpenerScript(`
    import { arena0Regions } from "@root/tests/workers/arena0.ts";
    const lbas = [3];
    let flushes = null;
    const pool = createBlockPool(path, {
      blockSize: 512,
      poolSize: 32 << 20,
      lanes: 4,
      tracer: { flush: (o, l) => flushes?.push([o, l]), drain() {} },
    });
    for (let lba = 0; lba < 8; lba++) pool.write(lba, block(lba));
    ${endWorkerAt(stop)}
    flushes = [];
    out.sameStripe = code(() => pool.write(3 + 1024, block(44)));
    const { map, flog } = arena0Regions(path);
    const slot = flushes.findIndex(([o, l]) =>
      o >= flog[0] && o < flog[1] && (o - flog[0]) % 64 === 0 && l === 64
    );
    const entry = flushes.findIndex(([o, l]) => o === map[0] + 3 * 4 && l === 4);
    out.order = [slot >= 0, entry > slot];
    out.read = pool.read(3)[0];
    pool.close();
  `);
  assert.equal(out.stopped, 1);
  assert.equal(out.sameStripe, 0);
  assert.deepEqual(out.order, [true, true]);
  assert.equal(out.read, 99);
});

// Bug: a Worker ended in a setZero (or setError) between the store of the
// block's map entry and its persist, holding the block's stripe. The online
// recovery released the stripe without persisting that entry, and the next
// commit of the block staged the stored, never durable entry as its flog
// entry's old_map: after a power failure the map held the entry from
// before the setZero, recovery found it unlike old_map and left it, and
// the block read its old data, now also its lane's free block (reused by
// the next write through that lane) while the committed write was lost.
// Granularity below page: the persists of the commit's other map entries
// do not reach this one's line.
test("a Worker ended in setZero's persist: the recovery persists the block's map entry before the block commits again", () => {
  const stop: StopPoint = {
    step: "map",
    granularity: "CACHE_LINE",
    lbas: [100],
    committed: false,
    op: "setZero",
  };
  const out = deadOpenerScript(
    `
    import { arena0Regions } from "@root/tests/workers/arena0.ts";
    const lbas = [100];
    let flushes = null;
    const pool = createBlockPool(path, {
      blockSize: 512,
      poolSize: 32 << 20,
      lanes: 4,
      tracer: { flush: (o, l) => flushes?.push([o, l]), drain() {} },
    });
    // block 100's map entry durable (the later writes reuse its lane) and
    // pending in no lane
    for (const lba of [100, 0, 1, 2, 3, 4, 5, 6, 7]) pool.write(lba, block(lba));
    ${endWorkerAt(stop)}
    flushes = [];
    out.write = code(() => pool.write(100, block(55)));
    const { map, flog } = arena0Regions(path);
    const at = map[0] + 100 * 4;
    const entry = flushes.findIndex(([o, l]) => o <= at && at < o + l);
    const slot = flushes.findIndex(([o]) => o >= flog[0] && o < flog[1]);
    out.order = [slot >= 0, entry >= 0 && entry < slot];
    out.read = pool.read(100)[0];
    pool.close();
  `,
    { env: { PMEM2_FORCE_GRANULARITY: "CACHE_LINE" } },
  );
  assert.equal(out.stopped, 1, "the Worker never came to its step");
  assert.equal(out.write, 0);
  assert.deepEqual(out.order, [true, true]);
  assert.equal(out.read, 55);
});

// Bug: an ended open's slot in the file's share was never reused, so once
// 1024 opens had ended with their Workers while others kept the pool open
// (Workers recycled by terminate), every later open had no slot, and its
// lock words held a number no open takes for ended: a Worker terminated in
// the middle of a commit then kept its block's stripe for good, and the
// others' writes of that block (and of its stripe) waited for ever. An
// ended open's slot is now taken again by a later open, with a new
// generation in its token, so the ended one's token still reads as ended.
test("a Worker ended mid-commit after 1023 others ended without closing: the others still recover its lanes", () => {
  const out = deadOpenerScript(`
    import { stripeOf } from "@root/blk/lanes.ts";
    const lbas = [3];
    const pool = fourLanePool();
    const size = PoolShared.bytes(statSync(path).size);
    // 1023 opens that end with their Worker: with the pool's, every slot
    const filler = await startWorker("@root/tests/workers/lock_worker.ts");
    await ask(filler, { kind: "share", path, srcSize: size, count: 1023 });
    await end(filler);
    ${endWorkerAt({ step: "flogTail", lbas: [3], committed: true })}
    {
      using share = FileShare.open(path, size);
      const holder = laneTable((t) => Atomics.load(t.words, stripeOf(3)));
      out.holderEnded = holder !== 0 && share.ended(holder);
    }
    // (taken for live, the holder keeps the write, and a check, waiting
    // for good)
    if (out.holderEnded) {
      out.write = code(() => pool.write(3 + 1024, block(44)));
      out.seen = [3, 3 + 1024].map((lba) => pool.read(lba)[0]);
      out.problems = pool.check().problems;
    }
    pool.close();
  `);
  assert.equal(out.stopped, 1, "the Worker never came to its step");
  assert.equal(out.holderEnded, true, "the dead holder was taken for live");
  assert.equal(out.write, 0);
  assert.deepEqual(out.seen, [99, 44]);
  assert.deepEqual(out.problems, []);
});

// A writeMany of blocks of two arenas commits them together, holding a
// stripe and a lane in each: a Worker ended there leaves both held. Each
// arena recovers its own lanes and stripes (a flog slot and the stripes
// lie in one arena), at the first wait for one of them there: a write of
// arena 1 recovers arena 1 and leaves arena 0 to its own first waiter.
test(
  "a Worker ended in a writeMany of two arenas: each arena recovers its lanes online at its first wait",
  () => {
    const out = deadOpenerScript(`
    import { stripeOf } from "@root/blk/lanes.ts";
    import { poolGeometry } from "@root/blk/layout.ts";
    import { maxArenas } from "@root/blk/shared.ts";
    // a sparse file just over one arena's 512 GiB: arena 1 holds the last
    // 128 MiB (blocks past 1024: two of one stripe); 64 KiB blocks keep
    // arena 0's map at 32 MiB
    const size = 2 ** 39 + 128 * 2 ** 20;
    const bs = 65536;
    const first = poolGeometry(size, bs).arenas[0].externalNlba;
    const lbas = [3, first + 3];
    const big = (v) => new Uint8Array(bs).fill(v);
    const pool = createBlockPool(path, {
      blockSize: bs,
      poolSize: size,
      sparse: true,
      lanes: 4,
    });
    for (const lba of lbas) pool.write(lba, big(lba % 251));
    ${endWorkerAt({ step: "flogTail", lbas: [], committed: true })}
    const whole = (lba) => {
      const b = pool.read(lba);
      return b.every((x) => x === b[0]) ? b[0] : "torn";
    };
    /** Whether arena k's stripe of pre-map block 3 is held. */
    const held = (k) => {
      using share = FileShare.open(path, PoolShared.bytes(size));
      const words = new PoolShared(share.memory, maxArenas(size)).arena(k);
      return Atomics.load(words, stripeOf(3)) !== 0;
    };
    out.held = [held(0), held(1)];
    // a block of arena 1 of the same stripe: arena 1 recovers, not 0
    out.arena1 = code(() => pool.write(first + 3 + 1024, big(44)));
    out.heldAfter1 = [held(0), held(1)];
    out.arena0 = code(() => pool.write(3 + 1024, big(45)));
    out.heldAfter0 = [held(0), held(1)];
    out.seen = lbas.map(whole);
    out.write = code(() => pool.write(lbas[1], big(55)));
    out.writeMany = await asyncCode(pool.writeMany(
      lbas.map((lba) => ({ lba, data: big(66) })),
    ));
    out.after = lbas.map(whole);
    // every lane of both arenas goes round: a group of all 4 in each
    out.groups = await asyncCode(pool.writeMany(
      [10, 11, 12, 13, first + 10, first + 11, first + 12, first + 13]
        .map((lba) => ({ lba, data: big(lba % 251) })),
    ));
    out.problems = pool.check().problems;
    pool.close();
    using again = BlockPool.open(path);
    out.again = again.check().problems;
    out.readAgain = [3, first + 3, first + 3 + 1024, first + 13].map((lba) => {
      const b = again.read(lba);
      return b.every((x) => x === b[0]) ? b[0] : "torn";
    });
    out.first = first;
  `);
    assert.equal(out.stopped, 1, "the Worker never came to its step");
    assert.equal(out.ended, 1, "the Worker's thread never ended");
    assert.deepEqual(out.held, [true, true]);
    assert.equal(out.arena1, 0);
    assert.deepEqual(out.heldAfter1, [true, false]);
    assert.equal(out.arena0, 0);
    assert.deepEqual(out.heldAfter0, [false, false]);
    assert.deepEqual(out.seen, [99, 99]);
    assert.equal(out.write, 0);
    assert.equal(out.writeMany, 0);
    assert.deepEqual(out.after, [66, 66]);
    assert.equal(out.groups, 0);
    assert.deepEqual(out.problems, []);
    assert.deepEqual(out.again, []);
    const first = out.first as number;
    assert.deepEqual(out.readAgain, [66, 66, 44, (first + 13) % 251]);
  },
  { timeout: 120_000 },
);

// Bug: the close waited for the idle-lane ring's lock, which the
// recovery calling the tracer held for this same opener: the process
// hung. The close goes ahead (the write that recovered fails with
// ClosedError), and gives the ring lock back for the recovery, which
// never touches the shared state again.
test("a tracer that closes the pool during the online recovery of an ended Worker's commit: the write fails with ClosedError, nothing hangs", () => {
  const out = deadOpenerScript(`
    import { arena0Regions } from "@root/tests/workers/arena0.ts";
    const lbas = [3];
    let close = null;
    let flog = [0, 0];
    const pool = createBlockPool(path, {
      blockSize: 512,
      poolSize: 32 << 20,
      lanes: 4,
      tracer: {
        // the recovery persists a whole flog slot (64 bytes) first, under
        // the ring lock; a commit persists one entry
        flush(o, l) { if (o >= flog[0] && o < flog[1] && l === 64) close?.(); },
        drain() {},
      },
    });
    flog = arena0Regions(path).flog;
    for (let lba = 0; lba < 8; lba++) pool.write(lba, block(lba));
    ${endWorkerAt({ step: "flogTail", lbas: [3], committed: true })}
    // another opener of the pool, which goes on after the close
    const other = BlockPool.open(path);
    close = () => {
      close = null;
      pool.close();
    };
    try {
      pool.write(3 + 1024, block(44));
      out.write = "ok";
    } catch (e) {
      out.write = e.name + " " + e.op;
    }
    out.closed = pool.closed;
    // the ring lock is free, the ended Worker's commit recovered
    out.otherWrite = code(() => other.write(3 + 1024, block(45)));
    out.otherRead = other.read(3)[0];
    Object.assign(out, await useEveryLane(other, 8));
    out.problems = other.check().problems;
    other.close();
    using again = BlockPool.open(path);
    out.again = again.check().problems;
    out.readAgain = [3, 3 + 1024].map((lba) => again.read(lba)[0]);
  `);
  assert.equal(out.stopped, 1);
  assert.equal(out.write, "ClosedError write");
  assert.equal(out.closed, true);
  assert.equal(out.otherWrite, 0);
  assert.equal(out.otherRead, 99);
  assert.equal(out.writes, 0);
  assert.equal(out.group, 0);
  assert.deepEqual(out.read, [39, 10, 13]);
  assert.deepEqual(out.problems, []);
  assert.deepEqual(out.again, []);
  assert.deepEqual(out.readAgain, [35, 45]);
});
