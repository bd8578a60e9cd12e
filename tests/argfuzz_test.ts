// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What an adversarial sweep of bad arguments over the public surface found
 * (each test names the bug it holds fixed): a bad argument gets a typed
 * error and leaves the object usable.
 *
 * @module
 */
import { ObjectPool } from "../obj/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;

// Bug: `Transaction.onAbort` took any value, and an abort that ran a
// callback which threw (or was no function) stopped halfway: the pool
// kept the transaction as its running one, so every later `tx` failed
// with "Transaction is closed", `close()` refused ("inside a transaction's
// callback") and the file could not be opened again in the process. A
// callback that is no function is now refused at once; one that throws
// still fails the transaction, after every other callback ran and the
// pool is free again.
test("an onAbort callback that is no function or throws leaves the object pool usable", () => {
  const path = tempPath();
  const pool = ObjectPool.create(path, { size: 8 * MiB, layout: "t" });
  assert.throws(
    () => pool.tx((tx) => tx.onAbort(5 as unknown as () => void)),
    (e: unknown) =>
      e instanceof TypeError && /Cannot onAbort: fn must be a function/
        .test(e.message),
  );
  const ran: string[] = [];
  assert.throws(
    () =>
      pool.tx((tx) => {
        tx.onAbort(() => ran.push("first"));
        tx.onAbort(() => {
          throw new RangeError("callback");
        });
        tx.onAbort(() => ran.push("last"));
        throw new Error("abort");
      }),
    (e: unknown) => e instanceof RangeError && e.message === "callback",
  );
  assert.deepEqual(ran, ["last", "first"]);
  const o = pool.tx((tx) => tx.alloc(16));
  assert.equal(pool.object(o.offset).size, 16);
  pool.close();
  ObjectPool.open(path, { layout: "t" }).close();
});
