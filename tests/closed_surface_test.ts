// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Use after `close()` throws ClosedError and touches no unmapped memory:
 * every public closable is checked by one of the
 * `closed_surface_*_test.ts` files; what was handed out before close
 * (views, iterators, handles); closed objects given to factories and
 * functions; and option getters that close the object mid-call (the check itself, and the fixtures: `_closed_surface.ts`).
 *
 * @module
 */
import {
  BlockPool,
  ClosedError,
  CpuMover,
  LogStream,
  mapFile,
  Mapping,
  ObjectPool,
  PersistentMap,
  PmemLog,
  Source,
  ThreadMover,
} from "../mod.ts";
import { checkObjectPool } from "../obj/mod.ts";
import {
  deviceStats,
  injectBusy,
  injectFault,
  mark,
  openTestPortal,
  portalCounters,
  setTracer,
  writeBacks,
} from "../testing/mod.ts";
import { rmSync } from "node:fs";
import * as rootEntry from "../mod.ts";
import * as errorsEntry from "../errors/mod.ts";
import * as futureEntry from "../future/mod.ts";
import * as moverEntry from "../mover/mod.ts";
import * as pmem2Entry from "../pmem2/mod.ts";
import * as blkEntry from "../blk/mod.ts";
import * as streamEntry from "../stream/mod.ts";
import * as objEntry from "../obj/mod.ts";
import * as testingEntry from "../testing/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";
import {
  BLOCK,
  describe,
  ENTRY,
  makeObjectPool,
  makeStream,
  membersOf,
  settledWithin,
} from "./_closed_surface.ts";

/**
 * The closables the `closed_surface_*_test.ts` files check, by class
 * name (a base class stands for its subclasses, which are checked;
 * BaseMover's close is abstract). A new public class with a close() fails
 * the next test until it is added, with its own call table in its
 * store's file.
 */
const CHECKED_CLOSABLES: ReadonlySet<string> = new Set([
  "Mapping",
  "Source",
  "DeviceMover", // abstract: ThreadMover, DsaMover
  "CpuMover",
  "ThreadMover",
  "DsaMover",
  "BlockPool",
  "LogStream",
  "PmemLog",
  "ObjectPool",
  "PersistentMap",
]);

test("every public class with a close() is checked here", () => {
  const entries = [
    rootEntry,
    errorsEntry,
    futureEntry,
    moverEntry,
    pmem2Entry,
    blkEntry,
    streamEntry,
    objEntry,
    testingEntry,
  ];
  const found = new Set<string>();
  for (const entry of entries) {
    for (const [name, value] of Object.entries(entry)) {
      if (typeof value !== "function" || value.prototype === undefined) {
        continue;
      }
      if (typeof value.prototype.close === "function") found.add(name);
    }
  }
  const unchecked = [...found].filter((n) => !CHECKED_CLOSABLES.has(n));
  assert.deepEqual(unchecked, [], "closables without a call table here");
  for (const n of CHECKED_CLOSABLES) assert.ok(found.has(n), `${n} is gone`);
});

// ---- what was handed out before close ----

/** A view of closed memory: detached (no bytes) or throwing at a read. */
function assertGone(label: string, view: Uint8Array): void {
  let length: number;
  try {
    length = view.byteLength;
    if (length > 0) view[0];
  } catch {
    return; // throws: fine
  }
  assert.equal(length, 0, `${label}: a view of closed memory still reads`);
}

test("views handed out before close read as detached after it", () => {
  const map = mapFile(tempPath(), { size: 65536 });
  const mapView = map.view(0, 16);
  map.close();
  assertGone("Mapping.view", mapView);

  const { pool, root } = makeObjectPool();
  const objView = pool.view(root);
  pool.close();
  assertGone("ObjectPool.view", objView);

  const { s, r } = makeStream();
  const res = s.reserve(r, 8);
  const [entry] = s.entries(r);
  s.close();
  assertGone("Reservation.data", res.data);
  assertGone("LogEntry.data", entry.data);

  const log = PmemLog.create(tempPath(), { poolSize: 2 << 20 });
  log.append(ENTRY);
  const chunks: Uint8Array[] = [];
  log.walk(4096, (c) => void chunks.push(c));
  log.close();
  for (const c of chunks) assertGone("PmemLog.walk's chunk", c);
});

test("iterators made before close throw ClosedError (or end) after it", async () => {
  const { s, r } = makeStream(); // one entry appended
  const it = s.entries(r);
  it.next();
  const following = s.follow(r);
  await following.next();
  s.close();
  assert.throws(() => it.next(), ClosedError, "LogStream.entries");
  // follow ends when the stream closes (documented)
  assert.equal((await following.next()).done, true, "LogStream.follow");

  const { pool } = makeObjectPool();
  const map = PersistentMap.open(pool, "m");
  map.set("a", "1");
  map.set("b", "2");
  const entries = map.entries();
  entries.next();
  pool.close();
  assert.throws(() => entries.next(), ClosedError, "PersistentMap.entries");
});

test("handles of a closed store are refused by a new open of its file", () => {
  const path = tempPath();
  const pool = ObjectPool.create(path, { size: 8 << 20, layout: "c" });
  const root = pool.root(64);
  const obj = pool.tx((tx) => tx.alloc(64));
  pool.close();
  // an ObjectHandle holds numbers only: readable after close
  assert.deepEqual(membersOf(root), ["toString"]);
  assert.equal(typeof root.toString(), "string");
  for (const o of [root, obj]) assert.throws(() => pool.read(o), ClosedError);
  using again = ObjectPool.open(path, { layout: "c" });
  for (const o of [root, obj]) {
    assert.throws(() => again.read(o), (e) => e instanceof Error);
    assert.throws(() => again.tx((tx) => tx.setU64(o, 0, 1)), Error);
  }

  const spath = tempPath();
  const s = LogStream.create(spath, { size: 1 << 20 });
  const r = s.allocateRegion(4096);
  s.close();
  using s2 = LogStream.open(spath);
  assert.throws(() => s2.append(r, ENTRY), Error);
  assert.throws(() => s2.freeRegion(r), Error);
  assert.equal(s2.regions().length, 1);
});

/**
 * A closed mover handed to a factory is a use after close: refused at
 * once, before a file is made, not at the store's first asynchronous call.
 */
test("a closed mover is refused by every factory with ClosedError", () => {
  for (const create of [() => new CpuMover(), () => new ThreadMover()]) {
    const mover = create();
    mover.close();
    const path = tempPath();
    const made: [string, () => { close(): void }][] = [
      ["mapFile", () => mapFile(path, { size: 65536, mover })],
      ["Mapping.map", () => {
        using src = Source.open(path, { size: 65536 });
        return Mapping.map(src, { mover });
      }],
      [
        "BlockPool.create",
        () =>
          BlockPool.create(path, { blockSize: 512, poolSize: 32 << 20, mover }),
      ],
      [
        "LogStream.create",
        () => LogStream.create(path, { size: 1 << 20, mover }),
      ],
      [
        "PmemLog.create",
        () => PmemLog.create(path, { poolSize: 2 << 20, mover }),
      ],
      [
        "ObjectPool.create",
        () => ObjectPool.create(path, { size: 8 << 20, layout: "c", mover }),
      ],
    ];
    const opened: [string, () => { close(): void }, () => void][] = [
      [
        "BlockPool.open",
        () => BlockPool.open(path, { mover }),
        () =>
          BlockPool.create(path, { blockSize: 512, poolSize: 32 << 20 })
            .close(),
      ],
      [
        "LogStream.open",
        () => LogStream.open(path, { mover }),
        () => LogStream.create(path, { size: 1 << 20 }).close(),
      ],
      [
        "PmemLog.open",
        () => PmemLog.open(path, { mover }),
        () => PmemLog.create(path, { poolSize: 2 << 20 }).close(),
      ],
      [
        "ObjectPool.open",
        () => ObjectPool.open(path, { layout: "c", mover }),
        () => ObjectPool.create(path, { size: 8 << 20, layout: "c" }).close(),
      ],
    ];
    const wrong: string[] = [];
    const outcome = (name: string, f: () => { close(): void }) => {
      try {
        f().close();
        wrong.push(`${name} (${mover.name}): took it`);
      } catch (e) {
        if (!(e instanceof ClosedError)) {
          wrong.push(`${name} (${mover.name}): ${describe(e)}`);
        }
      }
    };
    for (const [name, f] of made) {
      outcome(name, f);
      rmSync(path, { force: true });
    }
    for (const [name, f, prepare] of opened) {
      prepare();
      outcome(name, f);
      rmSync(path, { force: true });
    }
    assert.deepEqual(wrong, [], "a closed mover");
  }
});

test("functions given a closed object throw ClosedError", () => {
  const { pool } = makeObjectPool();
  pool.close();
  const src = Source.open(tempPath(), { size: 4096 });
  src.close();
  const map = mapFile(tempPath(), { size: 65536 });
  map.close();
  const portal = openTestPortal();
  portal.close();
  const threads = new ThreadMover({ threads: 1 });
  threads.close();
  const calls: [string, () => unknown][] = [
    ["PersistentMap.open", () => PersistentMap.open(pool, "m")],
    ["checkObjectPool", () => checkObjectPool(pool)],
    ["Mapping.map", () => Mapping.map(src)],
    ["setTracer", () => setTracer(map, { flush() {}, drain() {} })],
    ["mark", () => mark(map, "x")],
    ["writeBacks", () => writeBacks(map)],
    ["injectFault (portal)", () => injectFault(portal, 0)],
    ["injectFault (threads)", () => injectFault(threads, 0)],
    ["injectBusy", () => injectBusy(portal, 1)],
    ["portalCounters", () => portalCounters(portal)],
  ];
  for (const [name, call] of calls) assert.throws(call, ClosedError, name);
  // counters kept in JS, still meaningful once the device is gone
  assert.equal(typeof deviceStats(threads).sleeps, "number");
});

/**
 * A view of a closed mapping reads as empty: given as a buffer, it must be
 * refused, not taken for an empty one (a 0-byte operation that succeeds).
 * A detached array is a bad argument (`checkAttached`): a TypeError, or a
 * block store's RangeError of a wrong length; either names it detached.
 */
test("a view of a closed mapping given as a buffer is refused as detached", () => {
  const gone = mapFile(tempPath(), { size: 65536 });
  const view = gone.view(0, 8);
  const block = gone.view(0, 512);
  gone.close();
  using map = mapFile(tempPath(), { size: 65536 });
  using mover = new CpuMover();
  const { pool, root } = makeObjectPool();
  using _ = pool;
  const pm = PersistentMap.open(pool, "m");
  using blk = BlockPool.create(tempPath(), {
    blockSize: 512,
    poolSize: 32 << 20,
  });
  const calls: [string, () => unknown][] = [
    ["Mapping.read", () => map.read(0, view)],
    ["Mapping.memcpy", () => map.memcpy(0, view)],
    ["Mapping.memcpyAsync", () => map.memcpyAsync(0, view)],
    ["mover.memcpy (dst)", () => mover.memcpy(view, ENTRY)],
    ["mover.flush", () => mover.flush(view)],
    ["Transaction.write", () => pool.tx((tx) => tx.write(root, 0, view))],
    ["PersistentMap.set", () => pm.set("a", view)],
    ["BlockPool.write", () => blk.write(0, block)],
    ["BlockPool.writeAsync", () => blk.writeAsync(0, block)],
  ];
  const wrong: string[] = [];
  for (const [name, call] of calls) {
    try {
      const r = call();
      wrong.push(`${name}: returned ${describe(r)}`);
    } catch (e) {
      if (
        !(e instanceof TypeError || e instanceof RangeError) ||
        !/detached/.test(e.message)
      ) wrong.push(`${name}: threw ${describe(e)}`);
    }
  }
  assert.deepEqual(wrong, [], "a detached view");
});

/** Options whose `signal` getter closes `o`: the call's own code closes it. */
function closingOptions(o: { close(): void }): { signal: undefined } {
  return {
    get signal() {
      o.close();
      return undefined;
    },
  };
}

/**
 * An asynchronous call whose options close its object while they are read
 * (each option is read once, in the call): it throws ClosedError, or its
 * future fails with it, never the engine's error of a detached buffer
 * (the stream's shared words) and never a use of the closed object.
 */
test("an option or argument getter that closes the object fails the call with ClosedError", async () => {
  const mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
  const others: LogStream[] = [];
  const pools: ObjectPool[] = [];
  try {
    // (a call that returns no future is taken as complete)
    const made: [string, () => unknown][] = [
      ["Mapping.memcpyAsync", () => {
        const m = mapFile(tempPath(), { size: 65536, mover });
        return m.memcpyAsync(0, ENTRY, 0, closingOptions(m));
      }],
      ["Mapping.memcpyManyAsync", () => {
        const m = mapFile(tempPath(), { size: 65536, mover });
        return m.memcpyManyAsync(
          [{ offset: 0, data: ENTRY }],
          closingOptions(m),
        );
      }],
      ["ThreadMover.memcpy", () => {
        const m = new ThreadMover({ threads: 1 });
        return m.memcpy(new Uint8Array(8), ENTRY, 0, closingOptions(m));
      }],
      ["BlockPool.writeAsync", () => {
        const p = BlockPool.create(tempPath(), {
          blockSize: 512,
          poolSize: 32 << 20,
          mover,
        });
        return p.writeAsync(0, BLOCK, closingOptions(p));
      }],
      ["LogStream.appendAsync", () => {
        const s = LogStream.create(tempPath(), { size: 1 << 20, mover });
        const r = s.allocateRegion(4096);
        return s.appendAsync(r, ENTRY, closingOptions(s));
      }],
      ["LogStream.appendAsync (another open of the file)", () => {
        // its core stays mapped: a use would succeed, not fail
        const path = tempPath();
        const s = LogStream.create(path, { size: 1 << 20, mover });
        others.push(LogStream.open(path));
        const r = s.allocateRegion(4096);
        return s.appendAsync(r, ENTRY, closingOptions(s));
      }],
      ["LogStream.waitCommitted (another open of the file)", () => {
        const path = tempPath();
        const s = LogStream.create(path, { size: 1 << 20, mover });
        others.push(LogStream.open(path));
        s.append(s.allocateRegion(4096), ENTRY);
        return s.waitCommitted(1, closingOptions(s));
      }],
      ["LogStream.waitCommitted", () => {
        const s = LogStream.create(tempPath(), { size: 1 << 20, mover });
        s.append(s.allocateRegion(4096), ENTRY);
        return s.waitCommitted(1, closingOptions(s));
      }],
      ["LogStream.waitPersisted", () => {
        const s = LogStream.create(tempPath(), { size: 1 << 20, mover });
        s.append(s.allocateRegion(4096), ENTRY);
        return s.waitPersisted(1, closingOptions(s));
      }],
      ["PmemLog.appendAsync", () => {
        const l = PmemLog.create(tempPath(), { poolSize: 2 << 20, mover });
        return l.appendAsync(ENTRY, closingOptions(l));
      }],
      ["LogStream.follow", () => {
        const s = LogStream.create(tempPath(), { size: 1 << 20, mover });
        const r = s.allocateRegion(4096);
        return s.follow(r, closingOptions(s)).next();
      }],
      // arguments read in the call, as options are
      ["PersistentMap.batch", () => {
        const { pool } = makeObjectPool();
        pools.push(pool);
        const map = PersistentMap.open(pool, "m");
        return map.batch([{
          get set(): [string, string] {
            map.close();
            return ["a", "b"];
          },
        }]);
      }],
      ["BlockPool.writeMany", () => {
        const p = BlockPool.create(tempPath(), {
          blockSize: 512,
          poolSize: 32 << 20,
          mover,
        });
        return p.writeMany([{
          get lba() {
            p.close();
            return 0;
          },
          data: BLOCK,
        }]);
      }],
      ["ThreadMover.batch", () => {
        const m = new ThreadMover({ threads: 1 });
        return m.batch([{
          op: "memset",
          get dst() {
            m.close();
            return new Uint8Array(8);
          },
          value: 1,
        }]);
      }],
      ["Mapping.persistRanges", () => {
        const m = mapFile(tempPath(), { size: 65536 });
        return m.persistRanges([{
          get offset() {
            m.close();
            return 0;
          },
          length: 1,
        }]);
      }],
    ];
    const wrong: string[] = [];
    for (const [name, call] of made) {
      let out: unknown;
      try {
        out = await settledWithin(Promise.resolve(call()));
      } catch (e) {
        out = e;
      }
      if (!(out instanceof ClosedError)) {
        wrong.push(`${name}: ${describe(out)}`);
      }
    }
    assert.deepEqual(wrong, [], "closed by its own options");
  } finally {
    for (const s of others) s.close();
    for (const p of pools) p.close();
    mover.close();
  }
});
