// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The locks of a block pool's check() (the layout lock and every block's
// commit lock), and the layout lock of an attach to a layout another
// opener made, among the Workers of one process: a check or an attach
// whose Worker ended holding them, and checks that run back to back while
// others write.
import { assert, RUNTIME, test } from "./_harness.ts";
import { deadOpenerScript, POOL_WITHOUT_BTT } from "./dead_opener.ts";

/**
 * After `start` (script source: it makes `pool`, blocks 0..7 written,
 * and ends a Worker that left a read-only hold of the pool's locks): check
 * and write from this thread's open and another Worker's, then reopen;
 * what each gave.
 */
function afterDeadHolder(start: string): Record<string, unknown> {
  return deadOpenerScript(`
    ${start}
    const other = await worker();
    await ask(other, { kind: "open", path });
    out.check = code(() => pool.check());
    out.write = code(() => pool.write(1, block(41)));
    const failed = (e) => "failed: " + e.message.split("\\n")[0];
    out.otherCheck = await ask(other, { kind: "check" }).catch(failed);
    out.otherWrite = await ask(other, { kind: "write", lba: 2, value: 42 })
      .catch(failed);
    try {
      out.problems = pool.check().problems;
    } catch (e) {
      out.problems = e.code;
    }
    await ask(other, { kind: "close" });
    other.terminate();
    pool.close();
    out.unlocked = unlocked();
    using again = BlockPool.open(path);
    out.again = again.check().problems;
    out.read = [0, 1, 2, 3].map((lba) => again.read(lba)[0]);
  `);
}

/**
 * {@linkcode afterDeadHolder} after the Worker `hold` (script source: its
 * job) left a check's locks held and ended.
 */
function afterDeadCheck(hold: string): Record<string, unknown> {
  return afterDeadHolder(`
    const pool = BlockPool.create(path, { blockSize: 512, poolSize: 32 << 20 });
    for (let lba = 0; lba < 8; lba++) pool.write(lba, block(lba));
    const w = await worker();
    out.inside = await ask(w, ${hold});
    await end(w);
  `);
}

/** What afterDeadHolder gives once the locks are taken over. */
const ANSWERS = {
  check: 0,
  write: 0,
  otherCheck: [],
  otherWrite: true,
  problems: [],
  unlocked: 0,
  again: [],
  read: [0, 41, 42, 3],
};

// Bug (Bun): a Worker terminated inside check() left the pool's layout
// lock held with its token, and every later check() of the process
// failed with EOWNERDEAD (-130) until the pool was reopened (its stripes
// were recovered, as an ended opener's are). A check only reads the
// pool, so one that ended left nothing half done: the layout lock says
// it is a check's now, and is taken over. (Deno ends a Worker only at a
// turn of its event loop, never inside check(): there the next test
// leaves what a check holds.)
test(
  "a Worker terminated inside check(): later checks and writes of the other openers go on",
  () => {
    const out = afterDeadCheck(`{ kind: "checkForever", path }`);
    assert.deepEqual(out, { inside: "inside", ...ANSWERS });
  },
  {
    skip: RUNTIME === "deno"
      ? "Deno cannot end a Worker inside synchronous code"
      : undefined,
  },
);

test("a Worker ended holding what a check() holds: later checks and writes of the other openers go on", () => {
  const out = afterDeadCheck(
    `{ kind: "holdLock", path, lock: "check", pre: 0 }`,
  );
  assert.deepEqual(out, { inside: true, ...ANSWERS });
});

/**
 * A pool without a BTT (as libpmemblk creates them: info blocks wiped),
 * opened here as `pool` and by the Worker `w`; `pool` lays the BTT out
 * (blocks 0..7 written), the Worker's open has none yet (script source).
 */
const LAID_OUT_SINCE = `
    ${POOL_WITHOUT_BTT}
    const pool = BlockPool.open(path);
    const w = await worker();
    await ask(w, { kind: "open", path });
    for (let lba = 0; lba < 8; lba++) pool.write(lba, block(lba));
`;

// Bug (Bun): an open that attached to the BTT another opener of the
// process had laid out since it opened (at its first read, write, info,
// ...) held the layout lock unmarked, as a layout does: when its Worker
// ended there, every later wait for the lock (a check, an attach) failed
// with EOWNERDEAD (-130) until the pool was reopened, though an attach
// writes nothing to the pool. Its hold is marked read-only now, and taken
// over. (The Worker's attach waits there for arena 0's ring lock, which
// this thread holds. Deno cannot end a Worker there: the next test
// leaves what an attach holds.)
test(
  "a Worker terminated while it attached to a layout another open made: later checks and writes go on",
  () => {
    const out = afterDeadHolder(`
    ${LAID_OUT_SINCE}
    const { LAYOUT_LOCK_WORD, lockWord, unlockWord } = await import(
      "@root/blk/shared.ts"
    );
    const { RING_LOCK } = await import("@root/blk/arena_words.ts");
    {
      // (closed before the pool: the file lock goes with the last open)
      using share = FileShare.open(path, PoolShared.bytes(statSync(path).size));
      const shared = new PoolShared(share.memory, 1);
      lockWord(shared.arena(0), RING_LOCK, share.token);
      // the Worker's read attaches, holding the layout lock, and waits
      ask(w, { kind: "read", lba: 1 }).catch(() => {});
      const held = () => Atomics.load(shared.control, LAYOUT_LOCK_WORD) !== 0;
      for (let i = 0; i < 2000 && !held(); i++) {
        await new Promise((r) => setTimeout(r, 5));
      }
      out.inside = held();
      await end(w);
      unlockWord(shared.arena(0), RING_LOCK);
    }
  `);
    assert.deepEqual(out, { inside: true, ...ANSWERS });
  },
  {
    skip: RUNTIME === "deno"
      ? "Deno cannot end a Worker inside synchronous code"
      : undefined,
  },
);

test("a Worker ended holding the layout lock as an attach does: later checks and writes go on", () => {
  const out = afterDeadHolder(`
    ${LAID_OUT_SINCE}
    out.inside = await ask(w, { kind: "holdLock", path, lock: "attach", pre: 0 });
    await end(w);
  `);
  assert.deepEqual(out, { inside: true, ...ANSWERS });
});

// Bug: the stripes of a check() whose Worker ended were let go only by
// the recovery of an ended committer: each lane its opener held (here
// one, as a write of its in flight holds it) was rebuilt from its flog
// slot first, and where a slot could not be (here spoilt) every commit of
// a block, and every check, failed with EOWNERDEAD (-130) until the pool
// was reopened, though the check committed nothing. A check's stripes are
// marked read-only now, and taken over as its layout lock is. (The lane
// stays out until a take runs short, and then goes round as it is: its
// opener's commit never began. The spoilt slot is the check's to report,
// and the reopen's to refuse.)
test("a Worker ended holding a check()'s locks and a lane that cannot be recovered: writes and checks go on", () => {
  const out = deadOpenerScript(`
    const pool = BlockPool.create(path, { blockSize: 512, poolSize: 32 << 20 });
    for (let lba = 0; lba < 8; lba++) pool.write(lba, block(lba));
    const w = await worker();
    out.inside = await ask(w, {
      kind: "holdLock", path, lock: "check", pre: 0, lanes: 1, spoil: true,
    });
    await end(w);
    out.write = code(() => pool.write(1, block(41)));
    out.async = await asyncCode(pool.writeAsync(2, block(42)));
    out.group = await asyncCode(pool.writeMany(
      [3, 4].map((lba) => ({ lba, data: block(40 + lba) })),
    ));
    out.zero = code(() => pool.setZero(5));
    let problems;
    out.check = code(() => { problems = pool.check().problems; });
    out.flog = problems?.some((p) => p.includes("flog")) ?? false;
    out.read = [0, 1, 2, 3, 4, 5].map((lba) => pool.read(lba)[0]);
  `);
  assert.deepEqual(out, {
    inside: true,
    write: 0,
    async: 0,
    group: 0,
    zero: 0,
    check: 0,
    flog: true,
    read: [0, 41, 42, 43, 44, 0],
  });
});

// Bug: a check() run right after another let no commit through: a
// Worker looping check() back to back made 200 writes of another Worker
// take 3 s on Deno and 12 s on Bun. The check took every stripe again
// before the commits waiting for one woke from their sleep. A commit
// that waits marks the arena now, and the next check defers to it.
test(
  "a commit waiting for a check's locks goes before the check that follows",
  () => {
    const out = deadOpenerScript(`
    const { STRIPE_WANT } = await import("@root/blk/arena_words.ts");
    const pool = BlockPool.create(path, { blockSize: 512, poolSize: 32 << 20 });
    pool.write(1, block(1));
    const writer = await worker();
    await ask(writer, { kind: "open", path });
    const checker = await worker();
    const words = new Int32Array(new SharedArrayBuffer(8));
    const twice = ask(checker, { kind: "checkTwice", path, lba: 1, words: words.buffer });
    const until = async (f) => {
      for (let i = 0; i < 2000 && !f(); i++) {
        await new Promise((r) => setTimeout(r, 5));
      }
      return f();
    };
    // the first check holds every stripe: the write waits for block 1's
    out.inside = await until(() => Atomics.load(words, 0) === 1);
    const wrote = ask(writer, { kind: "write", lba: 1, value: 2 });
    using share = FileShare.open(path, PoolShared.bytes(statSync(path).size));
    const arena = new PoolShared(share.memory, 1).arena(0);
    out.marked = await until(() => Atomics.load(arena, STRIPE_WANT) !== 0);
    Atomics.store(words, 1, 1);
    Atomics.notify(words, 1);
    // what the second check saw of block 1
    out.seen = await twice;
    out.wrote = await wrote;
    out.problems = pool.check().problems;
    for (const w of [writer, checker]) w.terminate();
    pool.close();
  `);
    assert.deepEqual(out, {
      inside: true,
      marked: true,
      seen: 2,
      wrote: true,
      problems: [],
    });
  },
  { timeout: 60_000 },
);
