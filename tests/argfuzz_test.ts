// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What an adversarial sweep of bad arguments over the public surface found
 * (each test names the bug it holds fixed): a bad argument gets a typed
 * error and leaves the object usable.
 *
 * @module
 */
import { BlockPool, MIN_POOL_SIZE } from "../blk/mod.ts";
import {
  CpuMover,
  Mapping,
  PmemError,
  rejected,
  Source,
  ThreadMover,
  type Vdm,
} from "../mod.ts";
import {
  all,
  type Future,
  NO_CONTEXT,
  type PollContext,
  wait,
} from "../future/mod.ts";
import { ObjectPool, PersistentMap } from "../obj/mod.ts";
import { txHooks } from "../obj/tx.ts";
import { LogStream, PmemLog } from "../stream/mod.ts";
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
  // (a PmemLog redid the copy on this thread, and resolved)
  using log = PmemLog.create(tempPath(), { poolSize: 2 * MiB, mover });
  await assert.rejects(
    async () => await log.appendAsync(new Uint8Array(8).fill(6)),
    eio("appendAsync"),
  );
  assert.equal(log.tell(), 0);
});

/**
 * A data mover of the user's whose every operation returns `answer()`
 * and does nothing: a value that is no Future, or a fake future.
 */
function moverAnswering(answer: () => unknown): Vdm {
  const op = () => answer() as Future<void>;
  return {
    name: "odd",
    capabilities: 0,
    supports: (flags: number) => flags === 0,
    memcpy: op,
    memmove: op,
    memset: op,
    flush: op,
    batch: op,
    closed: false,
    close() {},
    [Symbol.dispose]() {},
  };
}

/**
 * Poll `f` by hand until it settles (at most 100 polls: a future that
 * waits for ever stays pending) and return its state.
 */
function pollByHand(f: Future<unknown>): string {
  for (let i = 0; i < 100 && !f.done; i++) f.poll(NO_CONTEXT);
  return f.state;
}

/**
 * Every store's asynchronous call through `mover` fails by hand polling
 * with a PmemError (EIO) of that call whose message matches `said`, and
 * writes nothing. The object pool's transaction, committed before its
 * mover applies it, is in the pool when it is opened again.
 */
function everyStoreFails(mover: Vdm, said: RegExp): void {
  // (a mapping's copy calls its mover at the call: it throws there)
  const failed = (op: string, f: Future<unknown> | (() => Future<unknown>)) => {
    let e: unknown;
    if (typeof f === "function") {
      try {
        f = f();
      } catch (thrown) {
        e = thrown;
      }
    }
    if (typeof f !== "function") {
      assert.equal(pollByHand(f), "failed", `${op} settled: ${f.state}`);
      e = f.error;
    }
    assert.ok(
      e instanceof PmemError && e.op === op && e.code === -5 &&
        said.test(e.message),
      `${op}: ${e}`,
    );
  };
  using pool = BlockPool.create(tempPath(), {
    blockSize: 512,
    poolSize: MIN_POOL_SIZE,
    mover,
  });
  failed("writeAsync", pool.writeAsync(1, new Uint8Array(512).fill(7)));
  failed(
    "writeMany",
    pool.writeMany([{ lba: 2, data: new Uint8Array(512).fill(7) }]),
  );
  // one batch for two calls: each fails in its own words
  const a = pool.writeAsync(4, new Uint8Array(512).fill(7));
  const b = pool.writeMany([{ lba: 5, data: new Uint8Array(512).fill(7) }]);
  a.poll(NO_CONTEXT);
  b.poll(NO_CONTEXT);
  failed("writeAsync", a);
  failed("writeMany", b);
  assert.deepEqual([1, 2, 4, 5].map((lba) => pool.read(lba)[0]), [0, 0, 0, 0]);
  pool.write(3, new Uint8Array(512).fill(3));
  failed("readAsync", pool.readAsync(3));
  using stream = LogStream.create(tempPath(), { size: 1 << 20, mover });
  const r = stream.allocateRegion(64 << 10);
  failed("appendAsync", stream.appendAsync(r, new Uint8Array(8).fill(1)));
  using log = PmemLog.create(tempPath(), { poolSize: 2 * MiB, mover });
  failed("appendAsync", log.appendAsync(new Uint8Array(8).fill(6)));
  assert.equal(log.tell(), 0);
  using src = Source.fromAnon(1 << 16);
  using map = Mapping.map(src, { mover });
  failed("memcpyAsync", () => map.memcpyAsync(0, new Uint8Array(64).fill(1)));
  failed("memsetAsync", () => map.memsetAsync(0, 1, 64));
  const back = new Uint8Array(64);
  map.read(0, back);
  assert.equal(back.some((b) => b !== 0), false);
  const path = tempPath();
  {
    using obj = ObjectPool.create(path, { size: 8 * MiB, layout: "t", mover });
    const root = obj.root(4096);
    // (1 KiB: the pool applies an entry this long through its mover)
    const tx = obj.txAsync((t) =>
      t.write(root, 0, new Uint8Array(1024).fill(9))
    );
    // ("apply": the pool's application of its committed transactions)
    failed("apply", tx);
  }
  using obj = ObjectPool.open(path, { layout: "t" });
  assert.equal(obj.tx((t) => t.read(obj.root(4096), 0, 1024)[1023]), 9);
}

// Bug: a data mover of the user's whose operation returned something that
// was no Future (a Promise, undefined) failed each store's call in the
// engine's words ("copy.future.poll is not a function"), and an object
// pool stopped on that TypeError. The call now fails with a PmemError
// (EIO) naming the mover and its operation, as for a mover that failed
// with undefined.
test("a data mover whose operation returns no Future fails the store's call naming it", () => {
  everyStoreFails(
    moverAnswering(() => Promise.resolve()),
    /data mover \(odd\) returned a Promise from (batch|memcpy|memset), not a Future/,
  );
  everyStoreFails(
    moverAnswering(() => undefined),
    /data mover \(odd\) returned undefined from (batch|memcpy|memset), not a Future/,
  );
});

// Bug: a fake future of a user's mover whose poll() answered a state the
// future module does not define ("done") was read by each store its own
// way: BlockPool.writeAsync and writeMany resolved with the block never
// written, readAsync, LogStream.appendAsync, Mapping.memcpyAsync and an
// object pool's txAsync stayed pending for ever. Each fails now with a
// PmemError (EIO) naming the mover and the state.
test("a data mover whose future answers an unknown state fails the store's call, never completes it", () => {
  const fake = { poll: () => "done", done: false, state: "done" };
  everyStoreFails(
    moverAnswering(() => fake),
    /data mover \(odd\) answered poll\(\) with an unknown state \("done"\) for its (batch|memcpy|memset)/,
  );
});

// Bug: `Future.poll(null)` handed null to the future's step, and a leaf
// that registers its wake source (a ThreadMover's copy, an `all` of one)
// failed for good on the engine's TypeError ("Cannot read properties of
// null"); so did any context that is no PollContext (5, {}). null is now
// no context, as miniasync's `future_poll(fut, NULL)`; anything else that
// is no PollContext is a TypeError at the call, the future untouched.
test("Future.poll(null) polls with no context; a context that is no PollContext is a TypeError that leaves the future usable", () => {
  using mover = new ThreadMover();
  const bytes = new Uint8Array(1 << 20);
  const f = mover.memset(bytes, 1);
  assert.notEqual(f.poll(null as unknown as PollContext), "failed");
  wait(f);
  assert.equal(bytes[bytes.length - 1], 1);
  const bad = [5, "x", {}, { waitOn: 1 }, { waitOn() {}, pollSoon: 1 }, {
    waitOn() {},
    refuse: {},
  }];
  for (
    const make of [
      () => mover.memset(bytes, 2),
      () => all([mover.memset(bytes, 2)]),
    ]
  ) {
    const g: Future<unknown> = make();
    for (const ctx of bad) {
      assert.throws(
        () => g.poll(ctx as unknown as PollContext),
        (e: unknown) =>
          e instanceof TypeError &&
          /^Cannot poll: the context must be a PollContext/.test(e.message),
      );
      assert.equal(g.state, "idle");
    }
    wait(g);
    assert.equal(g.state, "complete");
    assert.equal(bytes[bytes.length - 1], 2);
    bytes.fill(0);
  }
});

// Bug: an array resized (a resizable ArrayBuffer shrunk or grown) after
// an asynchronous call and before its work started failed that work with
// a class that depended on the store: a RangeError (BlockPool), a
// TypeError (LogStream.appendAsync, as for a detached array), a
// ClosedError naming the mover's own operation (the movers, and
// Mapping.memcpyAsync through them: "memcpy: a buffer shrank", though
// nothing had closed). The rule now: resized is a RangeError of the
// call, detached a TypeError of the call (a view of a mapping closed
// since: ClosedError, as before).
test("an array resized after an asynchronous call fails it with a RangeError, detached with a TypeError, on every store", async () => {
  using cpu = new CpuMover();
  using threads = new ThreadMover();
  using pool = BlockPool.create(tempPath(), {
    blockSize: 512,
    poolSize: MIN_POOL_SIZE,
  });
  using stream = LogStream.create(tempPath(), { size: 1 << 20 });
  const region = stream.allocateRegion(64 << 10);
  using src = Source.fromAnon(1 << 20);
  using map = Mapping.map(src);
  const calls: [string, number, (b: Uint8Array) => Future<unknown>][] = [
    ["writeAsync", 512, (b) => pool.writeAsync(1, b)],
    ["writeMany", 512, (b) => pool.writeMany([{ lba: 1, data: b }])],
    ["readAsync", 512, (b) => pool.readAsync(1, b)],
    ["appendAsync", 64, (b) => stream.appendAsync(region, b)],
    ["memcpyAsync", 4096, (b) => map.memcpyAsync(0, b)],
    [
      "memcpyManyAsync",
      4096,
      (b) => map.memcpyManyAsync([{ offset: 0, data: b }]),
    ],
    ["memcpy", 4096, (b) => cpu.memcpy(new Uint8Array(8192), b)],
    ["memset", 4096, (b) => cpu.memset(b, 1)],
    // (1 MiB: the threads copy it, not the polling thread)
    ["memcpy", 1 << 20, (b) => threads.memcpy(new Uint8Array(2 << 20), b)],
  ];
  const outcome = async (f: Future<unknown>) => {
    try {
      return await f;
    } catch (e) {
      return e;
    }
  };
  const failsWith = (
    e: unknown,
    type: typeof RangeError | typeof TypeError,
    op: string,
    what: string,
  ) =>
    assert.ok(
      e instanceof type && e.message.startsWith(`Cannot ${op}: `),
      `${op} of a ${what} array: ${e}`,
    );
  for (const [op, n, call] of calls) {
    const resizable = new ArrayBuffer(n, { maxByteLength: 2 * n });
    const shrunk = call(new Uint8Array(resizable).fill(1));
    resizable.resize(n / 2);
    const plain = new ArrayBuffer(n);
    const detached = call(new Uint8Array(plain).fill(1));
    plain.transfer();
    failsWith(await outcome(shrunk), RangeError, op, "shrunk");
    failsWith(await outcome(detached), TypeError, op, "detached");
  }
  // grown: the stores that take the array whole as their record
  for (const [op, n, call] of calls.slice(0, 2).concat([calls[3]])) {
    const resizable = new ArrayBuffer(n, { maxByteLength: 2 * n });
    const grown = call(new Uint8Array(resizable).fill(1));
    resizable.resize(2 * n);
    failsWith(await outcome(grown), RangeError, op, "grown");
  }
});
