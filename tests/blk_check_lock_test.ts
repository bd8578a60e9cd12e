// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The locks of a block pool's check() (the layout lock and every block's
// commit lock) among the Workers of one process: a check whose Worker
// ended holding them, and checks that run back to back while others
// write.
import { assert, RUNTIME, test } from "./_harness.ts";
import { deadOpenerScript } from "./dead_opener.ts";

/**
 * After the Worker `hold` (script source) left a check's locks held and
 * ended: check and write from this thread's open and another Worker's,
 * then reopen; what each gave.
 */
function afterDeadCheck(hold: string): Record<string, unknown> {
  return deadOpenerScript(`
    const pool = BlockPool.create(path, { blockSize: 512, poolSize: 32 << 20 });
    for (let lba = 0; lba < 8; lba++) pool.write(lba, block(lba));
    const w = await worker();
    out.inside = await ask(w, ${hold});
    await end(w);
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

/** What afterDeadCheck gives once a check's locks are taken over. */
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

// Bug: a check() run right after another let no commit through: a
// Worker looping check() back to back made 200 writes of another Worker
// take 3 s on Deno and 12 s on Bun. The check took every stripe again
// before the commits waiting for one woke from their sleep. A commit
// that waits marks the arena now, and the next check defers to it.
test(
  "a commit waiting for a check's locks goes before the check that follows",
  () => {
    const out = deadOpenerScript(`
    const { STRIPE_WANT } = await import("@root/blk/shared.ts");
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
