// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A testing tracer (`@asyncpmem/asyncpmem/testing`) whose callback closes
 * its store in the middle of an update: the update fails with the store's
 * `ClosedError` naming its op, touches no unmapped memory, and the store
 * opens again consistent (the update done or not, as after a crash).
 *
 * @module
 */
import { BlockPool, ClosedError, ObjectPool } from "../mod.ts";
import {
  createBlockPool,
  createLogStream,
  createObjectPool,
  type PersistTracer,
} from "../testing/mod.ts";
import { assert, runScript, tempPath, test } from "./_harness.ts";

/**
 * A tracer that calls `close` at its `at`-th event (flush or drain,
 * counted from `arm()`), and counts the events.
 */
class ClosingTracer implements PersistTracer {
  events = 0;
  #at = 0;
  #close: () => void = () => {};
  arm(at: number, close: () => void): void {
    this.events = 0;
    this.#at = at;
    this.#close = close;
  }
  flush(): void {
    this.#event();
  }
  drain(): void {
    this.#event();
  }
  #event(): void {
    if (++this.events === this.#at) this.#close();
  }
}

/** The events counted up to the end of `f` (none closing). */
function counted(t: ClosingTracer, f: () => void): number {
  t.arm(0, () => {});
  f();
  return t.events;
}

test("a tracer that closes a BlockPool during write() or setZero() makes it fail with ClosedError naming the op", () => {
  // the write went on after the close: giving its lane back touched the
  // detached lane table, the engine's TypeError ("Cannot perform
  // Atomics.store on a detached ... ArrayBuffer") instead of ClosedError
  const open = (t: ClosingTracer, path = tempPath()) =>
    createBlockPool(path, { blockSize: 512, poolSize: 32 << 20, tracer: t });
  const updates: [string, (p: BlockPool) => void][] = [
    ["write", (p) => p.write(1, new Uint8Array(512).fill(2))],
    ["setZero", (p) => p.setZero(1)],
  ];
  for (const [op, update] of updates) {
    let n;
    {
      const t = new ClosingTracer();
      using pool = open(t);
      pool.write(1, new Uint8Array(512).fill(1));
      n = counted(t, () => update(pool));
    }
    assert.ok(n >= 2, `${op}: ${n} events`);
    for (let at = 1; at <= n; at++) {
      const t = new ClosingTracer();
      const path = tempPath();
      const pool = open(t, path);
      pool.write(1, new Uint8Array(512).fill(1));
      t.arm(at, () => pool.close());
      assert.throws(
        () => update(pool),
        (e) => e instanceof ClosedError && e.op === op,
        `${op}, closed at event ${at} of ${n}`,
      );
      assert.equal(pool.closed, true);
      using again = BlockPool.open(path);
      assert.deepEqual(again.check().problems, [], `${op} at ${at}`);
      assert.ok([0, 1, 2].includes(again.read(1)[0]));
      // the arenas did not take the close for a media failure (EIO)
      again.write(1, new Uint8Array(512).fill(4));
      assert.equal(again.read(1)[0], 4);
    }
  }
});

/**
 * Child source: for each event of an asynchronous update of `op`
 * ("writeAsync": two of them polled together; "writeMany": one of three
 * blocks), a pool whose tracer closes it there; `out` gets, per event,
 * each future's error (name and op), whether the pool is closed, and the
 * reopened pool's check problems and blocks.
 */
function asyncCloseScript(op: "writeAsync" | "writeMany"): string {
  return `
    import { BlockPool } from "@root/mod.ts";
    import { createBlockPool } from "@root/testing/mod.ts";
    import { tempPath } from "@root/tests/_harness.ts";
    class ClosingTracer {
      events = 0;
      at = 0;
      close = () => {};
      arm(at, close) { this.events = 0; this.at = at; this.close = close; }
      flush() { if (++this.events === this.at) this.close(); }
      drain() { if (++this.events === this.at) this.close(); }
    }
    const block = (v) => new Uint8Array(512).fill(v);
    const lbas = [1, 2, 3];
    const open = (t, path) =>
      createBlockPool(path, { blockSize: 512, poolSize: 32 << 20, tracer: t });
    const updates = (p) => "${op}" === "writeAsync"
      ? [p.writeAsync(1, block(2)), p.writeAsync(2, block(2))]
      : [p.writeMany(lbas.map((lba) => ({ lba, data: block(2) })))];
    const outcome = async (f) => {
      try { await f; return "ok"; } catch (e) { return e.name + " " + e.op; }
    };
    let n;
    {
      const t = new ClosingTracer();
      using pool = open(t, tempPath());
      for (const lba of lbas) pool.write(lba, block(1));
      t.arm(0, () => {});
      await Promise.all(updates(pool));
      n = t.events;
    }
    const out = { n, runs: [] };
    for (let at = 1; at <= n; at++) {
      const t = new ClosingTracer();
      const path = tempPath();
      const pool = open(t, path);
      for (const lba of lbas) pool.write(lba, block(1));
      t.arm(at, () => pool.close());
      const errors = await Promise.all(updates(pool).map(outcome));
      const run = { at, errors, closed: pool.closed };
      using again = BlockPool.open(path);
      run.problems = again.check().problems;
      run.blocks = lbas.map((lba) => {
        const b = again.read(lba);
        return b.every((x) => x === b[0]) ? b[0] : "torn";
      });
      // the arena did not take the close for a media failure (EIO)
      again.write(1, block(4));
      run.after = again.read(1)[0];
      out.runs.push(run);
    }
    console.log(JSON.stringify(out));
  `;
}

for (const op of ["writeAsync", "writeMany"] as const) {
  test(
    `a tracer that closes a BlockPool during ${op}()'s commit makes it fail with ClosedError naming ${op}`,
    () => {
      // close() waited for the write whose commit called it: the write's
      // step, polled again from inside its own commit, found its group
      // neither queued nor done and went round for good (the process hung)
      const r = runScript(asyncCloseScript(op), 30_000);
      assert.equal(r.status, 0, `status ${r.status} ${r.signal}: ${r.stderr}`);
      const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
      assert.ok(out.n >= 2, `${out.n} events`);
      assert.equal(out.runs.length, out.n);
      const expect = op === "writeAsync"
        ? ["ClosedError writeAsync", "ClosedError writeAsync"]
        : ["ClosedError writeMany"];
      for (const run of out.runs) {
        const at = `closed at event ${run.at} of ${out.n}`;
        assert.deepEqual(run.errors, expect, at);
        assert.equal(run.closed, true, at);
        assert.deepEqual(run.problems, [], at);
        for (const b of run.blocks) {
          assert.ok(b === 1 || b === 2, `${at}: ${b}`);
        }
        assert.equal(run.after, 4, at);
      }
    },
    { timeout: 60_000 },
  );
}

test("a tracer that closes a BlockPool during write() fails its writeAsync in flight with ClosedError too", async () => {
  // a close from inside a synchronous write cannot let the pool's other
  // writes commit in the middle of that write: they fail as it does
  const t = new ClosingTracer();
  const path = tempPath();
  const pool = createBlockPool(path, {
    blockSize: 512,
    poolSize: 32 << 20,
    tracer: t,
  });
  pool.write(1, new Uint8Array(512).fill(1));
  pool.write(5, new Uint8Array(512).fill(1));
  const f = pool.writeAsync(5, new Uint8Array(512).fill(3));
  f.poll(); // in its block's queue
  f.poll(); // copied, not committed
  assert.equal(f.state, "running");
  t.arm(1, () => pool.close());
  assert.throws(
    () => pool.write(1, new Uint8Array(512).fill(2)),
    (e) => e instanceof ClosedError && e.op === "write",
  );
  await assert.rejects(
    async () => await f,
    (e) => e instanceof ClosedError && e.op === "writeAsync",
  );
  using again = BlockPool.open(path);
  assert.deepEqual(again.check().problems, []);
  assert.equal(again.read(1)[0], 1);
  assert.equal(again.read(5)[0], 1);
  again.write(5, new Uint8Array(512).fill(4));
  assert.equal(again.read(5)[0], 4);
});

test("a tracer that closes an ObjectPool during tx()'s commit makes it fail with ClosedError naming tx", () => {
  // it failed with the mapping's ClosedError, naming the op "persist"
  const open = (t: ClosingTracer, path: string) =>
    createObjectPool(path, { size: 8 << 20, layout: "t", tracer: t });
  const update = (p: ObjectPool) =>
    p.tx((tx) => tx.write(p.root(64), 0, new Uint8Array(8).fill(2)));
  let n;
  {
    const t = new ClosingTracer();
    using pool = open(t, tempPath());
    pool.root(64);
    n = counted(t, () => update(pool));
  }
  assert.ok(n >= 2, `${n} events`);
  for (let at = 1; at <= n; at++) {
    const t = new ClosingTracer();
    const path = tempPath();
    const pool = open(t, path);
    pool.root(64);
    t.arm(at, () => pool.close());
    assert.throws(
      () => update(pool),
      (e) => e instanceof ClosedError && e.op === "tx",
      `closed at event ${at} of ${n}`,
    );
    using again = ObjectPool.open(path, { layout: "t" });
    assert.ok([0, 2].includes(again.read(again.root(64), 0, 1)[0]));
    update(again);
    assert.equal(again.read(again.root(64), 0, 1)[0], 2);
  }
});

test("a tracer that closes a LogStream during append() is refused with TypeError; the stream goes on", () => {
  // the close waited for the lock the append held, on the same thread:
  // append() never returned. A stream's first append persists its bound
  // first (more events than the next ones)
  const open = (t: ClosingTracer) => {
    const s = createLogStream(tempPath(), { size: 1 << 20, tracer: t });
    return [s, s.allocateRegion(4096)] as const;
  };
  let n;
  {
    const t = new ClosingTracer();
    const [s, r] = open(t);
    using _ = s;
    n = counted(t, () => s.append(r, new Uint8Array(64).fill(1)));
  }
  assert.ok(n >= 2, `${n} events`);
  for (let at = 1; at <= n; at++) {
    const t = new ClosingTracer();
    const [s, r] = open(t);
    using _ = s;
    t.arm(at, () => s.close());
    assert.throws(
      () => s.append(r, new Uint8Array(64).fill(2)),
      (e) =>
        e instanceof TypeError && !(e instanceof ClosedError) &&
        /^Cannot close the stream inside its own /.test(e.message),
      `closed at event ${at} of ${n}`,
    );
    assert.equal(s.closed, false);
    t.arm(0, () => {});
    s.append(r, new Uint8Array(64).fill(3));
    assert.equal([...s.entries(r)].at(-1)!.data[0], 3);
  }
});

test("a tracer that closes an ObjectPool during txAsync()'s commit makes it fail with ClosedError naming txAsync", async () => {
  // it failed with the mapping's ClosedError, naming the op "persist"
  const open = (t: ClosingTracer, path: string) =>
    createObjectPool(path, { size: 8 << 20, layout: "t", tracer: t });
  const update = (p: ObjectPool) =>
    p.txAsync((tx) => tx.write(p.root(64), 0, new Uint8Array(8).fill(2)));
  let n = 0;
  {
    const t = new ClosingTracer();
    using pool = open(t, tempPath());
    pool.root(64);
    t.arm(0, () => {});
    await update(pool);
    n = t.events;
  }
  assert.ok(n >= 2, `${n} events`);
  for (let at = 1; at <= n; at++) {
    const t = new ClosingTracer();
    const path = tempPath();
    const pool = open(t, path);
    pool.root(64);
    t.arm(at, () => pool.close());
    await assert.rejects(
      async () => await update(pool),
      (e) => e instanceof ClosedError && e.op === "txAsync",
      `closed at event ${at} of ${n}`,
    );
    assert.equal(pool.closed, true);
    using again = ObjectPool.open(path, { layout: "t" });
    assert.ok([0, 2].includes(again.read(again.root(64), 0, 1)[0]));
  }
});

test("a BlockPool write that a tracer starts in the middle of another pool's write commits both whole", () => {
  // a synchronous write reuses one update record per isolate: the write
  // run by the tracer, in the middle of the first one's commit, must not
  // take it over (the first would publish the second's block and lane)
  const data = (v: number) => new Uint8Array(512).fill(v);
  let n;
  {
    const t = new ClosingTracer();
    using a = createBlockPool(tempPath(), {
      blockSize: 512,
      poolSize: 32 << 20,
      tracer: t,
    });
    n = counted(t, () => a.write(3, data(1)));
  }
  for (let at = 1; at <= n; at++) {
    const t = new ClosingTracer();
    using a = createBlockPool(tempPath(), {
      blockSize: 512,
      poolSize: 32 << 20,
      tracer: t,
    });
    using b = BlockPool.create(tempPath(), {
      blockSize: 512,
      poolSize: 32 << 20,
    });
    a.write(3, data(1));
    b.write(7, data(2));
    t.arm(at, () => b.write(9, data(at + 10)));
    a.write(5, data(3));
    assert.deepEqual(a.read(5), data(3), `event ${at} of ${n}`);
    assert.deepEqual(a.read(3), data(1));
    assert.deepEqual(b.read(9), data(at + 10));
    assert.deepEqual(b.read(7), data(2));
    assert.deepEqual(a.check().problems, []);
    assert.deepEqual(b.check().problems, []);
  }
});
