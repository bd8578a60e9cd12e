// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The locks of a block pool's check() (the layout lock and every block's
// commit lock) among the Workers of one process: a check whose Worker
// ended holding them.
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
