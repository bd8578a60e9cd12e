// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What an adversarial sweep of bad arguments over the public surface found
 * (each test names the bug it holds fixed): a bad argument gets a typed
 * error and leaves the object usable.
 *
 * @module
 */
import { BlockPool, MIN_POOL_SIZE } from "../blk/mod.ts";
import { PmemError, rejected, type Vdm } from "../mod.ts";
import { ObjectPool, PersistentMap } from "../obj/mod.ts";
import { txHooks } from "../obj/tx.ts";
import { LogStream } from "../stream/mod.ts";
import { assert, lastJsonLine, runScript, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;

// Bug: `Transaction.onAbort` (now the internal `txHooks.onAbort`) took any value, and an abort that ran a
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
    () => pool.tx((tx) => txHooks.onAbort(tx, 5 as unknown as () => void)),
    (e: unknown) =>
      e instanceof TypeError && /Cannot onAbort: fn must be a function/
        .test(e.message),
  );
  const ran: string[] = [];
  assert.throws(
    () =>
      pool.tx((tx) => {
        txHooks.onAbort(tx, () => ran.push("first"));
        txHooks.onAbort(tx, () => {
          throw new RangeError("callback");
        });
        txHooks.onAbort(tx, () => ran.push("last"));
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

// Bug: `Transaction.alloc` read `options?.type` and nothing else, so
// options that are no object (a number, a string: `alloc(64, 7)` meant as
// a type) or hold a misspelt key were taken silently, as type 0; every
// other call that takes options refuses them.
test("Transaction.alloc refuses options that are no object or hold an unknown key", () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "t" });
  for (const options of [7, "x", [], Symbol("s"), 1n, () => 1, null]) {
    assert.throws(
      () => pool.tx((tx) => tx.alloc(64, options as never)),
      (e: unknown) =>
        e instanceof TypeError &&
        /^Cannot alloc: options must be an object/.test(e.message),
    );
  }
  assert.throws(
    () => pool.tx((tx) => tx.alloc(64, { typ: 3 } as never)),
    (e: unknown) =>
      e instanceof TypeError &&
      /^Cannot alloc: unknown option 'typ'/.test(e.message),
  );
  const o = pool.tx((tx) => tx.alloc(64, { type: 3 }));
  assert.equal(o.type, 3);
  assert.equal(pool.tx((tx) => tx.alloc(64, {})).type, 0);
  assert.equal(pool.stats().heap.objects, 2);
});

// Bug: a key of bytes whose resizable buffer shrank below it (a view out
// of bounds) reads as empty, and the map took it as the empty key: `get`
// and `has` answered for that key's entry, and `delete`, `deleteAsync`
// and a batch's delete removed it. The same view as a value failed on the
// engine's TypeError from inside the transaction. Both are refused at the
// call, as a detached array is.
test("a PersistentMap key or value whose buffer shrank below it is refused, not read as empty", async () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "t" });
  using map = PersistentMap.open(pool, "m");
  map.set(new Uint8Array(0), "the empty key's");
  const shrunk = () => {
    const buf = new ArrayBuffer(8, { maxByteLength: 16 });
    const view = new Uint8Array(buf, 0, 4).fill(1);
    buf.resize(2);
    return view;
  };
  const refused = (op: string, what: string) => (e: unknown) =>
    e instanceof TypeError &&
    e.message ===
      `Cannot ${op}: ${what} lies past the end of its buffer, which was resized`;
  assert.throws(() => map.get(shrunk()), refused("get", "the key"));
  assert.throws(() => map.has(shrunk()), refused("has", "the key"));
  assert.throws(() => map.delete(shrunk()), refused("delete", "the key"));
  assert.throws(
    () => map.deleteAsync(shrunk()),
    refused("deleteAsync", "the key"),
  );
  assert.throws(
    () => map.batch([{ delete: shrunk() }]),
    refused("batch", "the key"),
  );
  assert.throws(() => map.set("k", shrunk()), refused("set", "the value"));
  assert.throws(
    () => map.setAsync(shrunk(), "v"),
    refused("setAsync", "the key"),
  );
  await map.batch([]);
  assert.equal(map.get(new Uint8Array(0)), "the empty key's");
  assert.equal(map.size, 1);
});

// Bug: Source's and Mapping's constructors (private to TypeScript, public
// to JavaScript) refused only a missing argument: `new Source(cell)` with
// a BigUint64Array of the caller's took its value as the native handle,
// and the first use (Mapping's constructor itself) dereferenced it: a
// segfault on both runtimes. Only a cell the library made is taken now.
// Child process: red is the crash.
test("Source and Mapping constructors refuse a native handle forged by the caller", () => {
  const r = runScript(`
    import { CpuMover, Mapping, Source } from "@root/mod.ts";
    const out = [];
    const forged = () => new BigUint64Array([0x1000n]);
    const tries = [
      () => new (Source as any)(forged()).size,
      () => new (Mapping as any)(forged(), "page", "rw", new CpuMover()),
      () => new (Source as any)(new Uint8Array(8)),
      () => new (Mapping as any)(new BigUint64Array(1), "page", "rw"),
    ];
    for (const t of tries) {
      try {
        t();
        out.push("made");
      } catch (e) {
        out.push(e instanceof TypeError && /Cannot construct/.test(e.message));
      }
    }
    console.log(JSON.stringify(out));
  `);
  assert.deepEqual(lastJsonLine(r), [true, true, true, true]);
});

/** A data mover whose every operation fails with `undefined`. */
function failingWithUndefined(): Vdm {
  const fail = () => rejected(undefined);
  return {
    name: "failing",
    capabilities: 0,
    supports: (flags: number) => flags === 0,
    memcpy: fail,
    memmove: fail,
    memset: fail,
    flush: fail,
    batch: fail,
    closed: false,
    close() {},
    [Symbol.dispose]() {},
  };
}

// Bug: a block pool's asynchronous write whose copy the data mover failed
// with `undefined` (a user's Vdm, `rejected(undefined)`) read "no error":
// writeAsync and writeMany resolved, and the block was never written. The
// copy's failure is now a PmemError (EIO) of the call, for reads and a
// log stream's appends too (they rejected with `undefined`).
test("an asynchronous copy its data mover failed with undefined fails its call", async () => {
  const mover = failingWithUndefined();
  const eio = (op: string) => (e: unknown) =>
    e instanceof PmemError && e.op === op && e.code === -5 &&
    /data mover \(failing\) failed without an error/.test(e.message);
  using pool = BlockPool.create(tempPath(), {
    blockSize: 512,
    poolSize: MIN_POOL_SIZE,
    mover,
  });
  await assert.rejects(
    async () => await pool.writeAsync(1, new Uint8Array(512).fill(7)),
    eio("writeAsync"),
  );
  await assert.rejects(
    async () =>
      await pool.writeMany([{ lba: 2, data: new Uint8Array(512).fill(7) }]),
    eio("writeMany"),
  );
  assert.deepEqual([pool.read(1)[0], pool.read(2)[0]], [0, 0]);
  pool.write(3, new Uint8Array(512).fill(3));
  await assert.rejects(async () => await pool.readAsync(3), eio("readAsync"));
  using stream = LogStream.create(tempPath(), { size: 1 << 20, mover });
  const r = stream.allocateRegion(64 << 10);
  await assert.rejects(
    async () => await stream.appendAsync(r, new Uint8Array(8)),
    eio("appendAsync"),
  );
});
