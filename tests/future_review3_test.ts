// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Third review of futures and software movers: the executor, the
 * combinators, and the futures of the thread mover's device.
 */
import {
  chain,
  ClosedError,
  fromStep,
  type Future,
  map,
  type PollContext,
  ready,
  type Step,
  ThreadMover,
  type ThreadMoverOptions,
  wait,
} from "../mod.ts";
import { deviceStats, injectBusy, openTestPortal } from "../testing/mod.ts";
import { assert, runScript, test } from "./_harness.ts";

test(
  "a blocking wait() gets device records that only the pump would free",
  () => {
    // A device op gives its completion record back when it is polled after
    // its work completed. One polled by hand (adopted by the executor) or
    // awaited holds its record until the event loop's pump polls it again,
    // which never happens while wait() blocks the thread: a wait() for an
    // op that needs that record hung forever (records: 1 here; 1024 ops
    // awaited in flight do it with the default). Child processes: red is a
    // hang.
    const r = runScript(
      `
    import { ThreadMover, wait, waitAll } from "@root/mod.ts";
    const MiB = 1 << 20;
    {
      using mover = new ThreadMover({ threads: 1, inlineThreshold: 0, records: 1 });
      const a = new Uint8Array(MiB), b = new Uint8Array(MiB);
      const first = mover.memset(a, 1);
      first.poll(); // submitted; the pump would see it to its end
      wait(mover.memset(b, 2));
      if (a[MiB - 1] !== 1 || b[MiB - 1] !== 2) throw new Error("bytes");
      console.log("hand-polled: ok");
    }
    {
      // a BATCH descriptor: 2 members and the batch, 3 records
      using mover = new ThreadMover({ threads: 1, inlineThreshold: 0, records: 3 });
      const a = new Uint8Array(MiB), b = new Uint8Array(8192);
      mover.memset(a, 1).poll();
      wait(mover.batch([
        { op: "memset", dst: b.subarray(0, 4096), value: 6 },
        { op: "memset", dst: b.subarray(4096), value: 7 },
      ]));
      if (a[MiB - 1] !== 1 || b[0] !== 6 || b[8191] !== 7) throw new Error("bytes");
      console.log("batch: ok");
    }
    {
      using mover = new ThreadMover({ threads: 1, inlineThreshold: 0, records: 2 });
      const a = new Uint8Array(64 * MiB), c = new Uint8Array(64 * MiB);
      const p = Promise.all([mover.memset(a, 3), mover.memset(c, 4)]);
      await new Promise((r) => setTimeout(r, 0)); // the pump submitted both
      const b = new Uint8Array(MiB);
      waitAll([mover.memset(b, 5), mover.batch([
        { op: "memset", dst: b.subarray(0, 4096), value: 6 },
        { op: "memset", dst: b.subarray(4096, 8192), value: 7 },
      ])]);
      await p;
      if (a[0] !== 3 || c[0] !== 4 || b[0] !== 6 || b[8191] !== 7) {
        throw new Error("bytes");
      }
      console.log("awaited: ok");
    }
  `,
      30_000,
    );
    assert.equal(r.signal, null, `hung: ${r.stdout}${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /hand-polled: ok\nbatch: ok\nawaited: ok/);
  },
  { timeout: 60_000 },
);

test("chain(), map() and fromStep() refuse what is not a future or a function when made", () => {
  // They took anything and failed at the first poll with the engine's
  // "f.poll is not a function" / "this.#next is not a function": a chain
  // given a non-function ran its first future (a mover's copy made) and
  // only then failed.
  const first = ready(1);
  const notFuture = Promise.resolve(1) as unknown as Future<number>;
  const notFn = 5 as unknown as (n: number) => number;
  assert.throws(
    () => chain(notFuture, (n) => n),
    /Cannot chain: first must be a Future/,
  );
  assert.throws(
    () => chain(first, notFn),
    /Cannot chain: next must be a function/,
  );
  assert.throws(
    () => map(null as unknown as Future<number>, (n) => n),
    /Cannot map: future must be a Future/,
  );
  assert.throws(() => map(first, notFn), /Cannot map: fn must be a function/);
  assert.throws(
    () => fromStep(7 as unknown as () => Step<number>),
    /Cannot make a future: step must be a function/,
  );
  assert.equal(first.state, "idle"); // nothing ran
  // a future of another copy of the module (duck-typed) still passes
  const foreign = {
    poll: (ctx?: PollContext) => first.poll(ctx),
    then: first.then.bind(first),
    get state() {
      return first.state;
    },
    get value() {
      return first.value;
    },
    get error() {
      return first.error;
    },
    get done() {
      return first.done;
    },
  };
  assert.equal(
    wait(map(foreign as unknown as Future<number>, (n) => n + 1)),
    2,
  );
});

test("an op whose next chunk a full or busy queue refused still completes when the mover closes", () => {
  // A chunked op (longer than maxTransfer) whose next chunk the queue
  // refused waits to resubmit it. A close() meanwhile failed it with
  // ClosedError, its first chunks written and the rest not, where every
  // other op the device had started is seen to its end (the remainder of
  // a chunk's partial completion is finished on the CPU after a close).
  // A busy shared WQ refuses deterministically; a ThreadMover's full ring
  // does the same under load.
  const dsa = openTestPortal({
    mode: "shared",
    engines: 1,
    maxTransfer: 4096,
    inlineThreshold: 0,
  });
  const dst = new Uint8Array(3 * 4096);
  const f = dsa.memset(dst, 7);
  f.poll(); // the first chunk goes out
  for (let i = 0; i < 1000 && dst[4095] !== 7; i++) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
  }
  assert.equal(dst[4095], 7, "the first chunk never ran");
  injectBusy(dsa, 8); // more than the shim's own retries of one answer
  f.poll(); // the second chunk is refused: resubmitted at a later poll
  assert.equal(deviceStats(dsa).busyAnswers, 1);
  assert.equal(f.state, "running");
  dsa.close();
  assert.equal(wait(f), undefined);
  assert.ok(dst.every((b) => b === 7), "bytes left unwritten");
});

test("a device batch started in parts completes when the mover closes before its later parts start", () => {
  // A batch the device cannot take in one descriptor goes out in parts
  // (single ops, BATCH descriptors, the engines' share of a split), each
  // starting when it gets a record. A close() after the first part
  // started failed the later ones with ClosedError: the batch rejected
  // with some members written and others not, where close() sees every
  // started operation to its end (and an abort once a batch started lets
  // it complete).
  const MiB = 1 << 20;
  const cases: [string, ThreadMoverOptions, number[]][] = [
    ["single ops", { threads: 1, inlineThreshold: 0, records: 1 }, [
      3 * 4096,
      100,
      200,
    ]],
    ["an op and a BATCH", {
      threads: 1,
      inlineThreshold: 0,
      records: 3,
      maxTransfer: 4096,
    }, [3 * 4096, 100, 200]],
    // the poller copies the two small ones; the engines' share is two
    // ops, the first still in flight when the second asks for a record
    ["a split batch", { threads: 1, inlineThreshold: 1, records: 1 }, [
      32 * MiB,
      32 * MiB,
      100,
      200,
    ]],
  ];
  for (const [name, options, sizes] of cases) {
    const mover = new ThreadMover(options);
    const bufs = sizes.map((n) => new Uint8Array(n));
    const f = mover.batch(bufs.map((dst) => ({ op: "memset", dst, value: 9 })));
    f.poll(); // the first part starts; a later one waits for a record
    assert.equal(f.state, "running", name);
    mover.close();
    assert.doesNotThrow(() => wait(f), name);
    for (const b of bufs) assert.ok(b.every((x) => x === 9), name);
  }
  // a batch none of whose parts started still fails
  const mover = new ThreadMover({ threads: 1, inlineThreshold: 0, records: 1 });
  const f = mover.batch([3 * 4096, 100, 200].map((n) => ({
    op: "memset",
    dst: new Uint8Array(n),
    value: 9,
  })));
  mover.close();
  assert.throws(() => wait(f), ClosedError);
});
