// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The contract "use after `close()` throws ClosedError and touches no
 * unmapped memory", held by reflection for every public closable: each
 * class's prototype chain is walked and every method and getter must have
 * an entry in that class's call table (or be listed as an allowed
 * exception, with the reason), so a new member fails here until it is
 * called after close. The library's convention for async methods is the
 * synchronous one: `Cannot ...` checks, ClosedError included, throw at the
 * call (see `BlockPool.writeAsync`'s `@throws`), so a call table entry
 * must throw at once; a lazy iterator's entry is called with its first
 * `next()`, which must throw (or reject) with ClosedError.
 *
 * @module
 */
import {
  BlockPool,
  ClosedError,
  CpuMover,
  DsaMover,
  FileLock,
  type Future,
  LogStream,
  mapFile,
  Mapping,
  type ObjectHandle,
  ObjectPool,
  PersistentMap,
  PmemError,
  PmemLog,
  type Region,
  Source,
  ThreadMover,
  type Transaction,
  type Vdm,
} from "../mod.ts";
import type { CheckedOp } from "../mover/mod.ts";
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

/** Members that are not use: the ones the contract itself names. */
const NOT_USE: ReadonlySet<PropertyKey> = new Set([
  "constructor",
  "close",
  "closed",
  Symbol.dispose,
]);

/** Every method and getter of `obj`'s prototype chain, but {@linkcode NOT_USE}. */
function membersOf(obj: object): PropertyKey[] {
  const out = new Set<PropertyKey>();
  for (
    let p = Object.getPrototypeOf(obj);
    p !== null && p !== Object.prototype;
    p = Object.getPrototypeOf(p)
  ) {
    for (const k of Reflect.ownKeys(p)) if (!NOT_USE.has(k)) out.add(k);
  }
  return [...out];
}

// deno-lint-ignore no-explicit-any
type Any = any;
/** One use of a member: arguments valid on the open object. */
type Call<T> = (o: T) => unknown;
/** A call table: one entry per member (a getter's entry reads it). */
type Calls<T> = Record<PropertyKey, Call<T>>;

function isIterator(r: unknown): r is Iterator<unknown> {
  return typeof r === "object" && r !== null &&
    typeof (r as { next?: unknown }).next === "function" &&
    typeof (r as { then?: unknown }).then !== "function";
}

function isThenable(r: unknown): r is PromiseLike<unknown> {
  return typeof r === "object" && r !== null &&
    typeof (r as { then?: unknown }).then === "function";
}

function describe(v: unknown): string {
  if (v instanceof Error) return `${v.name}: ${v.message}`;
  if (typeof v === "object" && v !== null) return v.constructor?.name ?? "{}";
  return String(v);
}

/**
 * `call` on a closed object: ClosedError at once (or at a lazy iterator's
 * first step). Returns what went wrong instead, if anything.
 */
async function closedOutcome(call: () => unknown): Promise<string | null> {
  let r: unknown;
  try {
    r = call();
  } catch (e) {
    return e instanceof ClosedError ? null : `threw ${describe(e)}`;
  }
  if (isThenable(r)) {
    // settled, so nothing is left in flight; still wrong: the convention
    // is the synchronous throw
    const out = await Promise.resolve(r).then(
      (v) => `resolved ${describe(v)}`,
      (e) => `rejected ${describe(e)}`,
    );
    return `returned a future (${out})`;
  }
  if (isIterator(r)) {
    try {
      await r.next();
    } catch (e) {
      return e instanceof ClosedError ? null : `next() threw ${describe(e)}`;
    }
    return "its iterator's next() did not throw";
  }
  return `returned ${describe(r)}`;
}

/** The result of an open object's call, settled (a future awaited). */
async function settle(r: unknown): Promise<void> {
  if (isThenable(r)) await r;
}

/** An object to close, and a call table of arguments valid for it. */
interface Made<T> {
  obj: T;
  close(): void;
  calls: Calls<T>;
}

/** Options of {@linkcode checkClosedSurface}. */
interface SurfaceOptions {
  /** Members that stay readable after close, each with the reason. */
  allowed?: Record<PropertyKey, string>;
  /** Whether the calls are tried on an open twin first. @default true */
  openCheck?: boolean;
}

/**
 * The whole check of one closable: its call table and `allowed` cover its
 * members exactly; every call works while it is open (on a twin made the
 * same way) and throws ClosedError after close; allowed members stay
 * readable; `close()` twice and `[Symbol.dispose]()` are no-ops.
 */
async function checkClosedSurface<T extends object>(
  name: string,
  make: () => Made<T>,
  options: SurfaceOptions = {},
): Promise<void> {
  const allowed = options.allowed ?? {};
  if (options.openCheck ?? true) {
    const live = make();
    for (const k of Reflect.ownKeys(live.calls)) {
      // valid while open (device queries aside: tmpfs answers few)
      try {
        await settle(live.calls[k as string](live.obj));
      } catch (e) {
        if (!(e instanceof PmemError) || e instanceof ClosedError) throw e;
      }
    }
    live.close();
  }

  const { obj, close, calls } = make();
  const listed = new Set<PropertyKey>([
    ...Reflect.ownKeys(calls),
    ...Reflect.ownKeys(allowed),
  ]);
  const members = membersOf(obj);
  for (const m of members) {
    assert.ok(listed.has(m), `${name}.${String(m)} has no call table entry`);
  }
  for (const k of listed) {
    assert.ok(members.includes(k), `${name}.${String(k)} is not a member`);
  }
  if ("closed" in obj) {
    assert.equal((obj as { closed: unknown }).closed, false, `${name} open`);
  }
  close();
  close(); // idempotent
  (obj as Partial<Disposable>)[Symbol.dispose]?.(); // a no-op too
  if ("closed" in obj) assert.equal((obj as { closed: unknown }).closed, true);
  const wrong: string[] = [];
  for (const k of Reflect.ownKeys(calls)) {
    const out = await closedOutcome(() => calls[k as string](obj));
    if (out !== null) wrong.push(`${name}.${String(k)}: ${out}`);
  }
  assert.deepEqual(wrong, [], "after close, not a ClosedError");
  for (const k of Reflect.ownKeys(allowed)) {
    (obj as Any)[k]; // readable: no memory behind it
  }
}

/**
 * The closables this file checks, by class name (a base class stands for
 * its subclasses, which are checked; BaseMover's close is abstract). A new public class with a close()
 * fails the next test until it is added, with its own call table.
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

// ---- pmem2 ----

const MAPPING_CALLS: Calls<Mapping> = {
  size: (m) => m.size,
  granularity: (m) => m.granularity,
  view: (m) => m.view(0, 1),
  read: (m) => m.read(0, new Uint8Array(1)),
  persist: (m) => m.persist(0, 1),
  flush: (m) => m.flush(0, 1),
  drain: (m) => m.drain(),
  deepFlush: (m) => m.deepFlush(0, 1),
  memcpy: (m) => m.memcpy(0, new Uint8Array(1)),
  memmove: (m) => m.memmove(0, 1, 1),
  memset: (m) => m.memset(0, 1, 1),
  memcpyAsync: (m) => m.memcpyAsync(0, new Uint8Array(1)),
  memmoveAsync: (m) => m.memmoveAsync(0, 1, 1),
  memsetAsync: (m) => m.memsetAsync(0, 1, 1),
  persistRanges: (m) => m.persistRanges([{ offset: 0, length: 1 }]),
  memcpyManyAsync: (m) =>
    m.memcpyManyAsync([{ offset: 0, data: new Uint8Array(1) }]),
};

test("every member of a closed Mapping and Source throws ClosedError", async () => {
  await checkClosedSurface("Mapping", () => {
    const map = mapFile(tempPath(), { size: 65536 });
    return { obj: map, close: () => map.close(), calls: MAPPING_CALLS };
  }, {
    allowed: {
      mover: "the mover given at map time, a JS object: no memory behind it",
      requiredGranularity: "the granularity asked for at map time: a JS value",
    },
  });
  await checkClosedSurface("Source", () => {
    const src = Source.open(tempPath(), { size: 4096 });
    return { obj: src, close: () => src.close(), calls: SOURCE_CALLS };
  });
});

const SOURCE_CALLS: Calls<Source> = {
  size: (s) => s.size,
  alignment: (s) => s.alignment,
  fd: (s) => s.fd,
  deviceUsc: (s) => s.deviceUsc(),
  deviceId: (s) => s.deviceId(),
  numaNode: (s) => s.numaNode(),
  badBlocks: (s) => s.badBlocks(),
  clearBadBlock: (s) => s.clearBadBlock({ offset: 0, length: 0 }),
};

test("a released FileLock: release() twice and dispose are no-ops", () => {
  const path = tempPath();
  mapFile(path, { size: 4096 }).close();
  const lock = FileLock.acquire(path);
  assert.deepEqual(membersOf(lock).sort(), ["release", "released"]);
  lock.release();
  lock.release();
  lock[Symbol.dispose]();
  assert.equal(lock.released, true);
  // and the lock is free again
  FileLock.acquire(path).release();
});

// ---- movers ----

function checkedOp(dst: Uint8Array, src: Uint8Array): CheckedOp {
  return {
    op: "memcpy",
    dst,
    dstOffset: 0,
    src,
    srcOffset: 0,
    value: 0,
    length: dst.length,
    flags: 0,
  };
}

/** Protected members reach JS too: a subclass may call them after close. */
function moverCalls(): Calls<Any> {
  const dst = new Uint8Array(64);
  const src = new Uint8Array(64).fill(7);
  return {
    memcpy: (m) => m.memcpy(dst, src),
    memmove: (m) => m.memmove(dst, src),
    memset: (m) => m.memset(dst, 1),
    flush: (m) => m.flush(dst),
    batch: (m) => m.batch([{ op: "memcpy", dst, src }]),
    run: (m) => m.run(checkedOp(dst, src), undefined),
    runBatch: (m) => m.runBatch([checkedOp(dst, src)], undefined),
  };
}

/** Constants of a mover's kind, fixed at construction: no memory behind them. */
const MOVER_CONSTANTS: Record<string, string> = {
  name: "the mover's kind, a JS string",
  capabilities: "the flags it honours, a JS number",
  supports: "a bitwise test of those flags",
  takesDstOffset: "a protected constant of the class",
  takesSrcOffset: "a protected constant of the class",
};
const DEVICE_CONSTANTS: Record<string, string> = {
  ...MOVER_CONSTANTS,
  sharesWithPoller: "a protected constant of the class",
  info: "the configuration read once at open, a JS object",
};

test("every member of a closed mover throws ClosedError", async () => {
  const movers: [string, () => Vdm, Record<string, string>][] = [
    ["CpuMover", () => new CpuMover(), {
      ...MOVER_CONSTANTS,
      run: "",
      runBatch: "",
    }],
    ["ThreadMover", () => new ThreadMover({ threads: 1 }), DEVICE_CONSTANTS],
    ["DsaMover (test portal)", () => openTestPortal(), {
      ...DEVICE_CONSTANTS,
      queue: "the work queue's description, copied at open",
    }],
  ];
  for (const [name, create, allowed] of movers) {
    await checkClosedSurface(name, () => {
      const m = create();
      return {
        obj: m,
        close: () => m.close(),
        calls: moverCalls(),
      };
    }, { allowed });
  }
  // whichever mover openOrFallback chose, its close is the choice's
  await checkClosedSurface("DsaMover.openOrFallback's mover", () => {
    const choice = DsaMover.openOrFallback({ fallback: { threads: 1 } });
    return {
      obj: choice.mover,
      close: () => choice.close(),
      calls: moverCalls(),
    };
  }, {
    allowed: {
      ...DEVICE_CONSTANTS,
      ...(DsaMover.available() ? { queue: "copied at open" } : {}),
    },
  });
  const choice = DsaMover.openOrFallback({ fallback: { threads: 1 } });
  assert.equal(choice.closed, false);
  choice[Symbol.dispose]();
  assert.equal(choice.closed, true);
  choice.close();
  choice[Symbol.dispose]();
  assert.equal(choice.mover.closed, true);
});

// ---- stores ----

const BLOCK = new Uint8Array(512).fill(3);

test("every member of a closed BlockPool throws ClosedError", async () => {
  await checkClosedSurface("BlockPool", () => {
    const pool = BlockPool.create(tempPath(), {
      blockSize: 512,
      poolSize: 32 << 20,
    });
    return {
      obj: pool,
      close: () => pool.close(),
      calls: {
        blockSize: (p) => p.blockSize,
        blockCount: (p) => p.blockCount,
        write: (p) => p.write(0, BLOCK),
        read: (p) => p.read(0),
        readMany: (p) => p.readMany([0, 1]),
        setZero: (p) => p.setZero(1),
        setError: (p) => p.setError(2),
        writeAsync: (p) => p.writeAsync(0, BLOCK),
        writeMany: (p) => p.writeMany([{ lba: 3, data: BLOCK }]),
        readAsync: (p) => p.readAsync(0),
        check: (p) => p.check(),
        info: (p) => p.info(),
      },
    };
  });
});

const ENTRY = Uint8Array.of(1, 2, 3);

/** A stream with a region, a spare one and two reservations made. */
function makeStream(): {
  s: LogStream;
  r: Region;
  calls: Calls<LogStream>;
} {
  const s = LogStream.create(tempPath(), { size: 1 << 20 });
  const r = s.allocateRegion(64 << 10);
  const spare = s.allocateRegion(4096);
  s.append(r, ENTRY);
  const [res1, res2] = [s.reserve(r, 3), s.reserve(r, 3)];
  const calls: Calls<LogStream> = {
    size: (s) => s.size,
    blockSize: (s) => s.blockSize,
    committedTimestamp: (s) => s.committedTimestamp,
    persistedTimestamp: (s) => s.persistedTimestamp,
    allocateRegion: (s) => s.allocateRegion(4096),
    freeRegion: (s) => s.freeRegion(spare),
    regions: (s) => s.regions(),
    append: (s) => s.append(r, ENTRY),
    reserve: (s) => s.cancel(s.reserve(r, 3)),
    publish: (s) => s.publish(res1),
    cancel: (s) => s.cancel(res2),
    appendAsync: (s) => s.appendAsync(r, ENTRY),
    waitCommitted: (s) => s.waitCommitted(1),
    waitPersisted: (s) => s.waitPersisted(1),
    entries: (s) => s.entries(r),
    follow: (s) => s.follow(r),
    truncate: (s) => s.truncate(r, 1),
  };
  return { s, r, calls };
}

test("every member of a closed LogStream, and of its regions and reservations, throws ClosedError", async () => {
  await checkClosedSurface("LogStream", () => {
    const { s, calls } = makeStream();
    return { obj: s, close: () => s.close(), calls };
  }, {
    allowed: {
      path: "the file's path, a JS string",
      recovery: "the report of open, a JS object",
      mover: "the mover given at open, a JS object",
    },
  });
  await checkClosedSurface("Region of a closed stream", () => {
    const { s, r } = makeStream();
    return {
      obj: r,
      close: () => s.close(),
      calls: {
        size: (r) => r.size,
        used: (r) => r.used,
      },
    };
  }, {
    allowed: {
      id: "its slot number, a JS number",
      generation: "a JS number",
      // what follow() and callers ask before a use: a handle of a closed
      // stream reads as freed (RegionHandles.close), as `closed` reads true
      freed: "a state query, as `closed`: true once the handle is unusable",
    },
  });
  await checkClosedSurface("Reservation of a closed stream", () => {
    const { s, r } = makeStream();
    const res = s.reserve(r, 8);
    return {
      obj: res,
      close: () => s.close(),
      calls: {},
    };
  }, {
    openCheck: false,
    allowed: {
      stream: "the stream that made it",
      settled: "a JS boolean: close cancels it",
      timestamp: "a JS number",
      region: "its region (whose members throw, above)",
      data: "a view of the mapping, detached by close (tested below)",
    },
  });
});

test("every member of a closed PmemLog throws ClosedError", async () => {
  await checkClosedSurface("PmemLog", () => {
    const log = PmemLog.create(tempPath(), { poolSize: 2 << 20 });
    return {
      obj: log,
      close: () => log.close(),
      calls: {
        tell: (l) => l.tell(),
        nbyte: (l) => l.nbyte(),
        append: (l) => l.append(ENTRY),
        appendv: (l) => l.appendv([ENTRY, ENTRY]),
        appendAsync: (l) => l.appendAsync(ENTRY),
        rewind: (l) => l.rewind(),
        walk: (l) => l.walk(4096, () => {}),
      },
    };
  }, { allowed: { mover: "the mover given at open, a JS object" } });
});

function makeObjectPool(): { pool: ObjectPool; root: ObjectHandle } {
  const pool = ObjectPool.create(tempPath(), { size: 8 << 20, layout: "c" });
  return { pool, root: pool.root(64) };
}

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
 * member throws ClosedError, the internal hooks too (an effect added then
 * would join the group of later transactions and be told their outcome).
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

function txCalls(root: ObjectHandle): Calls<Transaction> {
  return {
    alloc: (t) => t.alloc(64),
    allocInternal: (t) => t.allocInternal(64, 1),
    allocInternalAt: (t) => t.allocInternalAt(64, 1),
    free: (t) => t.free(root),
    freeInternal: (t) => t.freeInternal(root.offset),
    object: (t) => t.object(root.offset),
    beginInternalWrites: (t) => t.beginInternalWrites(),
    endInternalWrites: (t) => t.endInternalWrites(false),
    write: (t) => t.write(root, 0, ENTRY),
    setU64: (t) => t.setU64(root, 0, 1),
    setU64Internal: (t) => t.setU64Internal(root, 0, 1),
    setU32: (t) => t.setU32(root, 0, 1),
    read: (t) => t.read(root, 0, 8),
    getU64: (t) => t.getU64(root, 0),
    getBigU64: (t) => t.getBigU64(root, 0),
    getU32: (t) => t.getU32(root, 0),
    writeState: (t) => t.writeState(4096, ENTRY),
    onAbort: (t) => t.onAbort(() => {}),
    effect: (t) => t.effect({ commit() {}, abort() {} } as Any, 1),
  };
}

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

/** `p` settled: its value or error, or "hung" after `ms`. */
async function settledWithin(
  p: PromiseLike<unknown>,
  ms = 5000,
): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise((r) => timer = setTimeout(() => r("hung"), ms));
  try {
    return await Promise.race([
      Promise.resolve(p).then(() => "complete", (e) => e),
      hung,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * What `close()` does with a future made before it: the README's table
 * ("What an `*Async` call does before its future is first polled"). Lazy
 * futures (movers, Mapping's and BlockPool's): started ones finish,
 * unstarted ones fail with ClosedError when polled; the log stores' appends
 * and the object pool's transactions are finished by close; "either" where
 * the README says nothing (a stream's waits).
 */
type Outcome = "complete" | "closed" | "either";

/** A lazy future's outcome: see {@linkcode Outcome}. */
function lazy(started: boolean): Outcome {
  return started ? "complete" : "closed";
}

/**
 * Futures made before close (polled once before it, if `started`), then
 * awaited: each settles as `expect` says, never hangs.
 */
async function checkFuturesAfterClose(
  name: string,
  futures: Record<string, [Future<unknown>, Outcome]>,
  close: () => void,
  started: boolean,
): Promise<void> {
  if (started) { for (const [f] of Object.values(futures)) f.poll(); }
  close();
  const wrong: string[] = [];
  for (const [k, [f, expect]] of Object.entries(futures)) {
    const out = await settledWithin(f);
    const ok = out === "complete"
      ? expect !== "closed"
      : out instanceof ClosedError && expect !== "complete";
    if (!ok) wrong.push(`${name}.${k}: ${describe(out)}, not ${expect}`);
  }
  assert.deepEqual(
    wrong,
    [],
    `a future made before close (started: ${started})`,
  );
}

for (const started of [false, true]) {
  test(`futures made before close settle after it: complete or ClosedError (started: ${started})`, async () => {
    const map = mapFile(tempPath(), { size: 65536 });
    await checkFuturesAfterClose(
      "Mapping",
      {
        memcpyAsync: [map.memcpyAsync(0, new Uint8Array(8)), lazy(started)],
        memmoveAsync: [map.memmoveAsync(0, 8, 8), lazy(started)],
        memsetAsync: [map.memsetAsync(0, 1, 8), lazy(started)],
        memcpyManyAsync: [
          map.memcpyManyAsync([{ offset: 0, data: ENTRY }]),
          lazy(started),
        ],
      },
      () => map.close(),
      started,
    );

    const movers = [
      () => new CpuMover(),
      () => new ThreadMover({ threads: 1, inlineThreshold: 0 }),
      () => openTestPortal({ queueSize: 4 }),
    ];
    for (const create of movers) {
      const m = create();
      const dst = new Uint8Array(64 << 10);
      await checkFuturesAfterClose(
        m.name,
        {
          memcpy: [m.memcpy(dst, new Uint8Array(64 << 10)), lazy(started)],
          memset: [m.memset(dst, 1), lazy(started)],
          batch: [
            m.batch([{ op: "memset", dst, value: 2 }]),
            lazy(started),
          ],
        },
        () => m.close(),
        started,
      );
    }

    for (const create of movers.slice(1)) {
      const mover = create();
      try {
        await storeFutures(mover, started);
      } finally {
        mover.close();
      }
    }
  });
}

/** {@linkcode checkFuturesAfterClose} for every store, on `mover`. */
async function storeFutures(mover: Vdm, started: boolean): Promise<void> {
  const blk = BlockPool.create(tempPath(), {
    blockSize: 512,
    poolSize: 32 << 20,
    mover,
  });
  await checkFuturesAfterClose(
    `BlockPool (${mover.name})`,
    {
      writeAsync: [blk.writeAsync(0, BLOCK), lazy(started)],
      writeMany: [blk.writeMany([{ lba: 1, data: BLOCK }]), lazy(started)],
      readAsync: [blk.readAsync(0), lazy(started)],
    },
    () => blk.close(),
    started,
  );

  const s = LogStream.create(tempPath(), { size: 1 << 20, mover });
  const r = s.allocateRegion(64 << 10);
  await checkFuturesAfterClose(
    `LogStream (${mover.name})`,
    {
      appendAsync: [s.appendAsync(r, ENTRY), "complete"],
      waitCommitted: [s.waitCommitted(1), "either"],
      waitPersisted: [s.waitPersisted(1), "either"],
    },
    () => s.close(),
    started,
  );

  const log = PmemLog.create(tempPath(), { poolSize: 2 << 20, mover });
  await checkFuturesAfterClose(
    `PmemLog (${mover.name})`,
    {
      appendAsync: [log.appendAsync(ENTRY), "complete"],
    },
    () => log.close(),
    started,
  );

  const pool = ObjectPool.create(tempPath(), {
    size: 8 << 20,
    layout: "c",
    mover,
  });
  const root = pool.root(64);
  const pm = PersistentMap.open(pool, "m");
  await checkFuturesAfterClose(
    `ObjectPool (${mover.name})`,
    {
      txAsync: [pool.txAsync((tx) => tx.setU64(root, 0, 5)), "complete"],
      setAsync: [pm.setAsync("a", "b"), "complete"],
      deleteAsync: [pm.deleteAsync("z"), "complete"],
      batch: [pm.batch([{ set: ["c", "d"] }]), "complete"],
    },
    () => pool.close(),
    started,
  );
}

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
