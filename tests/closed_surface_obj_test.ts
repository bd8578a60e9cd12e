// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Use after `close()` throws ClosedError and touches no unmapped memory:
 * every member of a closed ObjectPool and PersistentMap, and of
 * a Transaction kept past its end (the check itself, and the fixtures: `_closed_surface.ts`).
 *
 * @module
 */
import {
  ClosedError,
  type ObjectHandle,
  PersistentMap,
  type Transaction,
} from "../mod.ts";
import { txHooks } from "../obj/tx.ts";
import { assert, test } from "./_harness.ts";
import {
  type Any,
  type Calls,
  checkClosedSurface,
  ENTRY,
  makeObjectPool,
} from "./_closed_surface.ts";

test("every member of a closed ObjectPool and PersistentMap throws ClosedError", async () => {
  await checkClosedSurface("ObjectPool", () => {
    const { pool, root } = makeObjectPool();
    return {
      obj: pool,
      close: () => pool.close(),
      calls: {
        size: (p) => p.size,
        rootSize: (p) => p.rootSize,
        tx: (p) => p.tx(() => 1),
        txAsync: (p) => p.txAsync(() => 1),
        root: (p) => p.root(64),
        object: (p) => p.object(root.offset),
        read: (p) => p.read(root),
        view: (p) => p.view(root),
        getU64: (p) => p.getU64(root, 0),
        getBigU64: (p) => p.getBigU64(root, 0),
        getU32: (p) => p.getU32(root, 0),
        stats: (p) => p.stats(),
        flush: (p) => p.flush(),
      },
    };
  }, {
    allowed: {
      path: "the file's path, a JS string",
      layout: "the layout name given at create, a JS string",
      recovery: "the report of open, a JS object",
      mover: "the mover given at open, a JS object",
    },
  });
  const mapCalls: Calls<PersistentMap> = {
    size: (m) => m.size,
    get: (m) => m.get("a"),
    has: (m) => m.has("a"),
    set: (m) => m.set("a", "b"),
    delete: (m) => m.delete("z"),
    setAsync: (m) => m.setAsync("a", "c"),
    deleteAsync: (m) => m.deleteAsync("z"),
    batch: (m) => m.batch([{ set: ["b", "c"] }]),
    entries: (m) => m.entries(),
    keys: (m) => m.keys(),
    values: (m) => m.values(),
    [Symbol.iterator]: (m) => m[Symbol.iterator](),
  };
  const mapAllowed = { name: "its name, a JS string" };
  await checkClosedSurface("PersistentMap", () => {
    const { pool } = makeObjectPool();
    const map = PersistentMap.open(pool, "m");
    return {
      obj: map,
      close: () => {
        map.close();
        pool.close();
      },
      calls: mapCalls,
    };
  }, { allowed: mapAllowed });
  await checkClosedSurface("PersistentMap of a closed pool", () => {
    const { pool } = makeObjectPool();
    const map = PersistentMap.open(pool, "m");
    return { obj: map, close: () => pool.close(), calls: mapCalls };
  }, { allowed: mapAllowed });
});

/**
 * A transaction kept past its end (its pool open, or closed since): every
 * member throws ClosedError (the internal hooks too: below).
 */
test("a Transaction kept past its end or its pool's close throws ClosedError", async () => {
  for (const closePool of [false, true]) {
    await checkClosedSurface(
      `Transaction (pool ${closePool ? "closed" : "open"})`,
      () => {
        const { pool, root } = makeObjectPool();
        let leaked: Transaction | undefined;
        pool.tx((tx) => void (leaked = tx));
        return {
          obj: leaked!,
          close: () => closePool && pool.close(),
          calls: txCalls(root),
        };
      },
      { openCheck: false },
    );
  }
});

/**
 * The pool's internal hooks (`txHooks`, off the public Transaction) on a
 * transaction kept past its end throw ClosedError too: an effect added
 * then would join the group of later transactions and be told their
 * outcome.
 */
test("the internal transaction hooks throw ClosedError on a transaction past its end", () => {
  for (const closePool of [false, true]) {
    const { pool, root } = makeObjectPool();
    let leaked: Transaction | undefined;
    pool.tx((tx) => void (leaked = tx));
    if (closePool) pool.close();
    const t = leaked!;
    const calls: Record<string, () => unknown> = {
      allocInternal: () => txHooks.allocInternal(t, 64, 1),
      allocInternalAt: () => txHooks.allocInternalAt(t, 64, 1),
      freeInternal: () => txHooks.freeInternal(t, root.offset),
      beginInternalWrites: () => txHooks.beginInternalWrites(t),
      endInternalWrites: () => txHooks.endInternalWrites(t, false),
      setU64Internal: () => txHooks.setU64Internal(t, root, 0, 1),
      writeState: () => txHooks.writeState(t, 4096, ENTRY),
      onAbort: () => txHooks.onAbort(t, () => {}),
      effect: () => txHooks.effect(t, { applied() {}, aborted() {} } as Any, 1),
    };
    assert.deepEqual(Object.keys(calls).sort(), Object.keys(txHooks).sort());
    for (const [name, call] of Object.entries(calls)) {
      assert.throws(call, ClosedError, `${name} (pool closed: ${closePool})`);
    }
    pool.close();
  }
});

function txCalls(root: ObjectHandle): Calls<Transaction> {
  return {
    alloc: (t) => t.alloc(64),
    free: (t) => t.free(root),
    object: (t) => t.object(root.offset),
    write: (t) => t.write(root, 0, ENTRY),
    setU64: (t) => t.setU64(root, 0, 1),
    setU32: (t) => t.setU32(root, 0, 1),
    read: (t) => t.read(root, 0, 8),
    getU64: (t) => t.getU64(root, 0),
    getBigU64: (t) => t.getBigU64(root, 0),
    getU32: (t) => t.getU32(root, 0),
  };
}
