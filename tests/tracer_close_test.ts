// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A testing tracer (`@asyncpmem/asyncpmem/testing`) whose callback closes
 * its store in the middle of an update: the update fails with the store's
 * `ClosedError` naming its op, touches no unmapped memory, and the store
 * opens again consistent (the update done or not, as after a crash). So
 * does a data mover of the user's that closes its store when an append's
 * copy starts.
 *
 * @module
 */
import {
  BlockPool,
  ClosedError,
  CpuMover,
  LogStream,
  ObjectPool,
  PmemLog,
  type Region,
} from "../mod.ts";
import type { AppendFuture, Reservation } from "../stream/mod.ts";
import { type Future, wait, waitAll } from "../future/mod.ts";
import { BaseMover, type CheckedOp } from "../mover/mod.ts";
import {
  createBlockPool,
  createLogStream,
  createObjectPool,
  createPmemLog,
  type PersistTracer,
} from "../testing/mod.ts";
import { assert, lastJsonLine, runScript, tempPath, test } from "./_harness.ts";

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
 * The start of the child sources below: the imports, a tracer that calls
 * `close` at its `at`-th event (as {@linkcode ClosingTracer}), a block of
 * bytes `v`, a pool of 512-byte blocks opened with a tracer, and what the
 * blocks `lbas` of a pool hold (the byte of each, or "torn").
 */
const CHILD_PRELUDE = `
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
    const open = (t, path) =>
      createBlockPool(path, { blockSize: 512, poolSize: 32 << 20, tracer: t });
    const blocksOf = (p, lbas) => lbas.map((lba) => {
      const b = p.read(lba);
      return b.every((x) => x === b[0]) ? b[0] : "torn";
    });
`;

/**
 * Child source: for each event of an asynchronous update of `op`
 * ("writeAsync": two of them polled together; "writeMany": one of three
 * blocks), a pool whose tracer closes it there; `out` gets, per event,
 * each future's error (name and op), whether the pool is closed, and the
 * reopened pool's check problems and blocks.
 */
function asyncCloseScript(op: "writeAsync" | "writeMany"): string {
  return `${CHILD_PRELUDE}
    const lbas = [1, 2, 3];
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
      run.blocks = blocksOf(again, lbas);
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
      const out = lastJsonLine(r);
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

/**
 * Child source: a pool with pending map entries (synchronous writes and
 * awaited writeAsync) whose tracer closes it at each event of its own
 * close(); `out` gets, per event, how the outer close ended, whether the
 * pool is closed, and the reopened pool's check problems and blocks.
 */
const closeInCloseScript = `${CHILD_PRELUDE}
  const lbas = [1, 2, 3, 4, 5, 6];
  const fill = async (p) => {
    for (const lba of lbas.slice(0, 3)) p.write(lba, block(lba));
    await Promise.all(lbas.slice(3).map((lba) => p.writeAsync(lba, block(lba))));
  };
  const out = { runs: [] };
  for (let at = 1; ; at++) {
    const t = new ClosingTracer();
    const path = tempPath();
    const pool = open(t, path);
    await fill(pool);
    t.arm(at, () => pool.close());
    let outcome = "ok";
    try { pool.close(); } catch (e) { outcome = e.name + ": " + e.message; }
    // a close of fewer events: each of them was tried
    if (t.events < at) break;
    const run = { at, outcome, closed: pool.closed };
    using again = BlockPool.open(path);
    run.problems = again.check().problems;
    run.blocks = blocksOf(again, lbas);
    out.runs.push(run);
  }
  console.log(JSON.stringify(out));
`;

test(
  "a tracer that closes a BlockPool during its own close() lets that close finish; every acknowledged block reopens",
  () => {
    // close() persists the pending map entries with the pool still
    // mapped: a close from the tracer there ran a second close inside the
    // first, which hung (or failed with the engine's TypeError "Cannot
    // perform Atomics.store on a detached ... ArrayBuffer" in markClosed).
    // The inner close is the outer one's own, already under way: it
    // returns, and the outer close ends as a close does (it lost nothing
    // to report)
    const r = runScript(closeInCloseScript, 30_000);
    const out = lastJsonLine(r);
    const n = out.runs.length;
    assert.ok(n >= 1, `${n} events`);
    for (const run of out.runs) {
      const at = `closed at event ${run.at} of ${n}`;
      assert.equal(run.outcome, "ok", at);
      assert.equal(run.closed, true, at);
      assert.deepEqual(run.problems, [], at);
      assert.deepEqual(run.blocks, [1, 2, 3, 4, 5, 6], at);
    }
  },
  { timeout: 60_000 },
);

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

/** What a stream file holds: each region's entries, by their first byte. */
function contents(path: string): number[][] {
  using s = LogStream.open(path);
  return contentsOf(s);
}

test("a tracer that closes a LogStream during append() makes it fail with ClosedError naming append", () => {
  // the close was refused with a TypeError thrown from the tracer, in the
  // middle of the append's persist: the append failed with it, and left
  // the stream's counters half moved (the file did not open again: its
  // region was corrupt). Before that the close waited on the same thread
  // for the lock the append held: append() never returned. A stream's
  // first append persists its bound first (more events than the next)
  const open = (t: ClosingTracer, path = tempPath()) => {
    const s = createLogStream(path, { size: 1 << 20, tracer: t });
    return [s, s.allocateRegion(4096)] as const;
  };
  for (const first of [true, false]) {
    let n;
    {
      const t = new ClosingTracer();
      const [s, r] = open(t);
      using _ = s;
      if (!first) s.append(r, new Uint8Array(64).fill(1));
      n = counted(t, () => s.append(r, new Uint8Array(64).fill(2)));
    }
    assert.ok(n >= 2, `${n} events`);
    for (let at = 1; at <= n; at++) {
      const t = new ClosingTracer();
      const path = tempPath();
      const [s, r] = open(t, path);
      if (!first) s.append(r, new Uint8Array(64).fill(1));
      t.arm(at, () => s.close());
      assert.throws(
        () => s.append(r, new Uint8Array(64).fill(2)),
        (e) => e instanceof ClosedError && e.op === "append",
        `closed at event ${at} of ${n}`,
      );
      assert.equal(s.closed, true);
      const before = first ? [] : [1];
      const got = contents(path);
      assert.ok(
        [[before], [[...before, 2]]].some((c) =>
          JSON.stringify(c) === JSON.stringify(got)
        ),
        `event ${at} of ${n}: ${JSON.stringify(got)}`,
      );
    }
  }
});

test("a tracer that closes a LogStream during publish(), allocateRegion(), freeRegion() or truncate() makes it fail with ClosedError naming the op", () => {
  // each failed with the TypeError the close threw from the tracer, in the
  // middle of the operation's persist (the stream left half changed)
  type Setup = { s: LogStream; r: Region; r2: Region; res: Reservation };
  const cases: [string, (x: Setup) => unknown, (got: number[][]) => boolean][] =
    [
      [
        "publish",
        (x) => x.s.publish(x.res),
        // the reservation's entry is whole or absent
        (got) => same(got, [[1], [3]]) || same(got, [[1, 2], [3]]),
      ],
      [
        "allocateRegion",
        (x) => x.s.allocateRegion(4096),
        (got) => same(got, [[1], [3]]) || same(got, [[1], [3], []]),
      ],
      [
        "freeRegion",
        (x) => x.s.freeRegion(x.r2),
        (got) => same(got, [[1], [3]]) || same(got, [[1]]),
      ],
      [
        "truncate",
        (x) => x.s.truncate(x.r, 1e9),
        (got) => same(got, [[1], [3]]) || same(got, [[], [3]]),
      ],
    ];
  const open = (t: ClosingTracer, path = tempPath()): Setup => {
    const s = createLogStream(path, { size: 1 << 20, tracer: t });
    const r = s.allocateRegion(4096);
    const r2 = s.allocateRegion(4096);
    s.append(r, new Uint8Array(64).fill(1));
    s.append(r2, new Uint8Array(64).fill(3));
    const res = s.reserve(r, 64);
    res.data.fill(2);
    // only publish keeps it: it holds back every later timestamp
    return { s, r, r2, res };
  };
  for (const [op, update, consistent] of cases) {
    let n;
    {
      const t = new ClosingTracer();
      const x = open(t);
      using _ = x.s;
      if (op !== "publish") x.s.cancel(x.res);
      n = counted(t, () => update(x));
    }
    assert.ok(n >= 1, `${op}: ${n} events`);
    for (let at = 1; at <= n; at++) {
      const t = new ClosingTracer();
      const path = tempPath();
      const x = open(t, path);
      if (op !== "publish") x.s.cancel(x.res);
      t.arm(at, () => x.s.close());
      assert.throws(
        () => update(x),
        (e) => e instanceof ClosedError && e.op === op,
        `${op}, closed at event ${at} of ${n}`,
      );
      assert.equal(x.s.closed, true);
      const got = contents(path);
      assert.ok(
        consistent(got),
        `${op} at ${at} of ${n}: ${JSON.stringify(got)}`,
      );
    }
  }
});

test("a tracer that closes a LogStream during a first reserve() makes it fail with ClosedError naming reserve; the reservation is given up", () => {
  // a stream's first reservation persists its timestamp bound first (the
  // only persist of a reserve): the close was refused there with a
  // TypeError thrown from the tracer, as in append() (fixed with it)
  const open = (t: ClosingTracer, path = tempPath()) => {
    const s = createLogStream(path, { size: 1 << 20, tracer: t });
    return [s, s.allocateRegion(4096)] as const;
  };
  let n;
  {
    const t = new ClosingTracer();
    const [s, r] = open(t);
    using _ = s;
    n = counted(t, () => s.reserve(r, 64));
  }
  assert.ok(n >= 1, `${n} events`);
  for (let at = 1; at <= n; at++) {
    const t = new ClosingTracer();
    const path = tempPath();
    const [s, r] = open(t, path);
    t.arm(at, () => s.close());
    assert.throws(
      () => s.reserve(r, 64),
      (e) => e instanceof ClosedError && e.op === "reserve",
      `closed at event ${at} of ${n}`,
    );
    assert.equal(s.closed, true);
    // closed, the reservation was cancelled: padding, no entry
    assert.deepEqual(contents(path), [[]]);
  }
});

test("a tracer that closes a LogStream during appendAsync()'s group persist, or a waitPersisted() driving it, makes them fail with ClosedError naming the op", () => {
  // the close was refused with a TypeError thrown from the tracer in the
  // middle of the group persist: the futures failed with it, and the
  // stream's counters were left half moved (the persist counted, the
  // ring slots emptied, the entries never persisted)
  const open = (t: ClosingTracer, path = tempPath()) => {
    const s = createLogStream(path, { size: 1 << 20, tracer: t });
    const r = s.allocateRegion(4096);
    s.append(r, new Uint8Array(64).fill(1));
    return [s, r] as const;
  };
  const appends = (s: LogStream, r: Region, errors: unknown[]) => {
    const fs: AppendFuture[] = [];
    for (const v of [2, 3, 4]) {
      try {
        fs.push(s.appendAsync(r, new Uint8Array(64).fill(v)));
      } catch (e) {
        errors.push(e);
      }
    }
    return fs;
  };
  const failures = (fs: AppendFuture[], errors: unknown[]) => {
    for (const f of fs) if (f.state === "failed") errors.push(f.error);
    return errors;
  };
  const updates: [string, (s: LogStream, r: Region) => unknown[]][] = [
    ["appendAsync", (s, r) => {
      const errors: unknown[] = [];
      const fs = appends(s, r, errors);
      try {
        waitAll(fs); // polled in one sweep: one group, one persist
      } catch {
        // each future's failure is read below
      }
      return failures(fs, errors);
    }],
    ["waitPersisted", (s, r) => {
      const errors: unknown[] = [];
      const fs = appends(s, r, errors);
      try {
        wait(s.waitPersisted(fs.at(-1)!.timestamp));
      } catch (e) {
        errors.push(e);
      }
      try {
        waitAll(fs);
      } catch {
        // each future's failure is read below
      }
      return failures(fs, errors);
    }],
  ];
  for (const [op, update] of updates) {
    let n = 0;
    {
      const t = new ClosingTracer();
      const [s, r] = open(t);
      using _ = s;
      n = counted(t, () => assert.deepEqual(update(s, r), []));
      assert.deepEqual(contentsOf(s), [[1, 2, 3, 4]]);
    }
    assert.ok(n >= 2, `${op}: ${n} events`);
    for (let at = 1; at <= n; at++) {
      const t = new ClosingTracer();
      const path = tempPath();
      const [s, r] = open(t, path);
      t.arm(at, () => s.close());
      const errors = update(s, r);
      const where = `${op}, closed at event ${at} of ${n}`;
      assert.ok(errors.length > 0, where);
      for (const e of errors) {
        assert.ok(
          e instanceof ClosedError &&
            (e.op === op || e.op === "appendAsync"),
          `${where}: ${e}`,
        );
      }
      if (op === "waitPersisted") {
        assert.ok(errors.some((e) => (e as ClosedError).op === op), where);
      }
      assert.equal(s.closed, true);
      const got = contents(path);
      assert.ok(
        [[[1]], [[1, 2]], [[1, 2, 3]], [[1, 2, 3, 4]]].some((c) =>
          same(c, got)
        ),
        `${where}: ${JSON.stringify(got)}`,
      );
    }
  }
});

test("a tracer that closes a PmemLog during append(), appendv() or rewind() makes it fail with ClosedError naming the op", () => {
  // the log was closed at once, and the rest of the operation failed on
  // its closed media with the engine's TypeError ("Cannot read properties
  // of undefined")
  const updates: [string, (l: PmemLog) => unknown, number[][]][] = [
    ["append", (l) => l.append(new Uint8Array(64).fill(2)), [[1], [1, 2]]],
    [
      "appendv",
      (l) =>
        l.appendv([new Uint8Array(32).fill(2), new Uint8Array(32).fill(2)]),
      [[1], [1, 2]],
    ],
    ["rewind", (l) => l.rewind(), [[1], []]],
  ];
  const open = (t: ClosingTracer, path = tempPath()) => {
    const l = createPmemLog(path, { poolSize: 2 << 20, tracer: t });
    l.append(new Uint8Array(64).fill(1));
    return l;
  };
  for (const [op, update, consistent] of updates) {
    let n;
    {
      const t = new ClosingTracer();
      using l = open(t);
      n = counted(t, () => update(l));
    }
    assert.ok(n >= 2, `${op}: ${n} events`);
    for (let at = 1; at <= n; at++) {
      const t = new ClosingTracer();
      const path = tempPath();
      const l = open(t, path);
      t.arm(at, () => l.close());
      assert.throws(
        () => update(l),
        (e) => e instanceof ClosedError && e.op === op,
        `${op}, closed at event ${at} of ${n}`,
      );
      assert.equal(l.closed, true);
      const got = logContents(path);
      assert.ok(
        consistent.some((c) => same(c, got)),
        `${op} at ${at} of ${n}: ${JSON.stringify(got)}`,
      );
    }
  }
});

test("a tracer that closes a PmemLog during appendAsync()'s group persist makes it fail with ClosedError naming appendAsync", () => {
  // the close waited for the appends in flight, the one whose persist it
  // was called from included, polling it again from inside its own step:
  // it never returned
  const open = (t: ClosingTracer, path = tempPath()) => {
    const l = createPmemLog(path, { poolSize: 2 << 20, tracer: t });
    l.append(new Uint8Array(64).fill(1));
    return l;
  };
  const update = (l: PmemLog) => {
    const errors: unknown[] = [];
    const fs: Future<number>[] = [];
    for (const v of [2, 3, 4]) {
      try {
        fs.push(l.appendAsync(new Uint8Array(64).fill(v)));
      } catch (e) {
        errors.push(e);
      }
    }
    try {
      waitAll(fs); // polled in one sweep: one group, one persist
    } catch {
      // each future's failure is read below
    }
    for (const f of fs) if (f.state === "failed") errors.push(f.error);
    return errors;
  };
  let n = 0;
  {
    const t = new ClosingTracer();
    using l = open(t);
    n = counted(t, () => assert.deepEqual(update(l), []));
  }
  assert.ok(n >= 2, `${n} events`);
  for (let at = 1; at <= n; at++) {
    const t = new ClosingTracer();
    const path = tempPath();
    const l = open(t, path);
    t.arm(at, () => l.close());
    const errors = update(l);
    const where = `closed at event ${at} of ${n}`;
    assert.ok(errors.length > 0, where);
    for (const e of errors) {
      assert.ok(
        e instanceof ClosedError && e.op === "appendAsync",
        `${where}: ${e}`,
      );
    }
    assert.equal(l.closed, true);
    const got = logContents(path);
    assert.ok(
      [[1], [1, 2], [1, 2, 3], [1, 2, 3, 4]].some((c) => same(c, got)),
      `${where}: ${JSON.stringify(got)}`,
    );
  }
});

test("a mover whose batch() closes the LogStream or PmemLog it copies for makes the append that started the copy fail with ClosedError; the others finish", () => {
  // the close ran at once inside the append's step: its wait for the
  // appends in flight polled that append again from inside its own step,
  // for good (both stores hung)
  const cpu = new CpuMover();
  let onBatch: (() => void) | undefined;
  class Closing extends BaseMover {
    constructor() {
      super("Closing", "closing", 0);
    }
    get closed(): boolean {
      return cpu.closed;
    }
    close(): void {
      cpu.close();
    }
    protected run(): Future<void> {
      throw new Error("unused");
    }
    protected runBatch(ops: CheckedOp[]): Future<void> {
      const close = onBatch;
      onBatch = undefined;
      close?.();
      return cpu.batch(
        ops.map((op) => ({ op: "memcpy" as const, dst: op.dst, src: op.src! })),
      );
    }
  }
  using mover = new Closing();
  // above the inline threshold: the copies go through batch()
  const data = (v: number) => new Uint8Array(20_000).fill(v);
  const outcome = (fs: Future<number>[]) => {
    try {
      waitAll(fs);
    } catch {
      // each future's outcome is read below
    }
    return fs.map((f) =>
      f.state === "failed"
        ? (f.error instanceof ClosedError ? `closed ${f.error.op}` : f.error)
        : "ok"
    );
  };
  {
    const path = tempPath();
    const s = LogStream.create(path, { size: 1 << 20, mover });
    const r = s.allocateRegion(1 << 16);
    s.append(r, new Uint8Array(64).fill(1));
    const fs = [2, 3].map((v) => s.appendAsync(r, data(v)));
    onBatch = () => s.close();
    assert.deepEqual(outcome(fs), ["closed appendAsync", "ok"]);
    assert.equal(s.closed, true);
    assert.deepEqual(contents(path), [[1, 2, 3]]);
  }
  {
    const path = tempPath();
    const l = PmemLog.create(path, { poolSize: 2 << 20, mover });
    l.append(new Uint8Array(64).fill(1));
    const fs = [2, 3].map((v) => l.appendAsync(data(v)));
    onBatch = () => l.close();
    assert.deepEqual(outcome(fs), ["closed appendAsync", "ok"]);
    assert.equal(l.closed, true);
    using again = PmemLog.open(path);
    assert.equal(again.tell(), 64 + 2 * 20_000);
  }
});

/** What a log file holds, in 64-byte entries, each by its first byte. */
function logContents(path: string): number[] {
  using l = PmemLog.open(path);
  const out: number[] = [];
  l.walk(64, (chunk) => {
    assert.ok(chunk.every((b) => b === chunk[0]), "an entry is whole");
    out.push(chunk[0]);
    return true;
  });
  return out;
}

/** What an open stream holds: each region's entries, by their first byte. */
function contentsOf(s: LogStream): number[][] {
  return s.regions().map((r) => [...s.entries(r)].map((e) => e.data[0]));
}

/** Whether two JSON-able values are equal. */
function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

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
