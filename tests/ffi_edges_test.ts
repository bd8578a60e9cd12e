// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Edges of the FFI layer and the shim under `pmem2/` found by a review:
 * each test either exposed a bug (named in its comment) or pins a contract
 * no other test held.
 */
import { spawnSync } from "node:child_process";
import {
  existsSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import {
  ClosedError,
  mapFile,
  Mapping,
  PmemError,
  Source,
  ThreadMover,
} from "../mod.ts";
import { openTestPortal } from "../testing/mod.ts";
import { backend, lastMessage, native } from "../ffi/lib.ts";
import { nativeHandleOf } from "../pmem2/mapping_access.ts";
import { MappingReader } from "../pmem2/reader.ts";
import {
  assert,
  printed,
  runScript,
  tempDir,
  tempPath,
  test,
} from "./_harness.ts";

/**
 * This process's open descriptors on `targets` (Linux). Only descriptors on
 * the given files count: under `bun test` one process runs every test file,
 * and descriptors of earlier files' Workers, children and finalizers open
 * and close while a test runs (a count of all of them once failed in CI).
 */
function openFdsOn(targets: readonly string[]): string[] {
  const wanted = new Set(targets);
  const found: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed between the listing and the read
    }
    if (wanted.has(target)) found.push(`${fd} -> ${target}`);
  }
  return found;
}

/** An assert.throws predicate: a PmemError (not a ClosedError) with code. */
function pmemCode(code: number, message?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof PmemError, String(e));
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  };
}

// ---- lengths that reach native code ----

// Bug: the lengths handed to the shim were `byteLength` property lookups,
// which an own property or a subclass's getter answers. A 16-byte array
// claiming 1 MiB had memcpy copy 1 MiB of the process's heap into the file
// (Bun) or fault (Deno), read() write 1 MiB past the array (a segfault on
// both), and the mover (memcpyAsync, NONTEMPORAL: its native copy) read
// past it too. Lengths now come from the engine (`byteLengthOf`, `holds`);
// in a child process, so a regression crashes it, not the runner.
test("an array whose byteLength lies never moves bytes past its own", () => {
  const r = runScript(`
    import { mapFile, MemFlags, ThreadMover } from "@root/mod.ts";
    import { MappingReader } from "@root/pmem2/reader.ts";
    const out = [];
    const note = (name, f) => {
      try { f(); out.push(name + " ok"); }
      catch (e) { out.push(name + " " + e.name + " " + (e.code ?? "-")); }
    };
    class Liar extends Uint8Array {
      get byteLength() { return 1 << 20; }
    }
    const own = (n) => {
      const a = new Uint8Array(n);
      Object.defineProperty(a, "byteLength", { value: 1 << 20 });
      return a;
    };
    const mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
    const map = mapFile(${JSON.stringify(tempPath())}, { size: 4 << 20 });
    const threads = mapFile(${
    JSON.stringify(tempPath("threads"))
  }, { size: 4 << 20, mover });
    const src = new Liar(16).fill(0xab);
    const untouched = (m, at) =>
      m.view(at, 16).every((b) => b === 0xab) &&
      m.view(at + 16, 1 << 20).every((b) => b === 0);
    note("memcpy", () => map.memcpy(0, src));
    out.push("memcpy kept " + untouched(map, 0));
    note("memcpy own", () => map.memcpy(2 << 20, own(16).fill(0xab)));
    out.push("memcpy own kept " + untouched(map, 2 << 20));
    await map.memcpyAsync(0, src, MemFlags.NONTEMPORAL);
    await threads.memcpyAsync(0, src);
    await threads.memcpyManyAsync([{ offset: 2 << 20, data: src }]);
    out.push("async kept " + (untouched(map, 0) && untouched(threads, 0) &&
      untouched(threads, 2 << 20)));
    note("read", () => map.read(0, own(16), 1 << 20));
    note("read default", () => map.read(0, own(16)));
    note("read liar", () => map.read(0, new Liar(16), 4096));
    const reader = new MappingReader(map);
    note("reader", () => reader.read(0, own(16), 4096));
    const offsets = new Float64Array(8);
    note("blocks", () => reader.readBlocks(offsets, 8, 4096, own(16)));
    const lying = new Float64Array(2);
    Object.defineProperty(lying, "byteLength", { value: 1 << 20 });
    note("offsets", () =>
      reader.readBlocks(lying, 1000, 16, new Uint8Array(16000)));
    note("prefetch", () => reader.prefetchBlocks(lying, 1000, 16));
    map.close();
    threads.close();
    mover.close();
    console.log(out.join("\\n"));
  `);
  assert.equal(
    printed(r),
    [
      "memcpy ok",
      "memcpy kept true",
      "memcpy own ok",
      "memcpy own kept true",
      "async kept true",
      "read RangeError -",
      "read default RangeError -",
      "read liar RangeError -",
      "reader PmemError -200002",
      "blocks PmemError -200002",
      "offsets PmemError -200002",
      "prefetch PmemError -200002",
    ].join("\n"),
  );
});

// Bug (with the one above): a read of an array whose pointer Deno's
// PointerCache kept went on through that pointer after the array's buffer
// was transferred, once an own `byteLength` said the array still had the
// bytes: the copy landed in the memory the new buffer owns. The cache is
// only used when the array's elements prove the length.
test("a cached pointer is not used once its array's buffer moved", () => {
  const r = runScript(`
    import { mapFile } from "@root/mod.ts";
    import { MappingReader } from "@root/pmem2/reader.ts";
    const map = mapFile(${JSON.stringify(tempPath())}, { size: 65536 });
    map.memset(0, 7, 4096);
    const reader = new MappingReader(map);
    const out = [];
    for (const read of [
      (into, n) => map.read(0, into, n),
      (into, n) => reader.read(0, into, n),
    ]) {
      const into = new Uint8Array(64);
      read(into, 64);
      read(into, 64); // the pointer is cached from the second read on
      const moved = new Uint8Array(into.buffer.transfer());
      moved.fill(1);
      Object.defineProperty(into, "byteLength", { value: 64 });
      try { read(into, 16); out.push("copied"); }
      catch (e) { out.push(e.name); }
      out.push(moved.every((b) => b === 1) ? "moved intact" : "moved written");
    }
    map.close();
    console.log(out.join(" "));
  `);
  assert.equal(r.signal, null, r.stderr);
  assert.equal(
    r.stdout.trim(),
    "RangeError moved intact PmemError moved intact",
    r.stderr,
  );
});

test("reads and copies follow a resizable or shared buffer's current length", () => {
  using map = mapFile(tempPath(), { size: 65536 });
  map.memset(1000, 6, 100);
  // a length-tracking array whose pointer is cached, then shrunk, regrown
  const rab = new ArrayBuffer(64, { maxByteLength: 4096 });
  const into = new Uint8Array(rab, 8);
  map.read(1000, into);
  map.read(1000, into);
  rab.resize(4); // below the array's offset: it is out of bounds, length 0
  assert.equal(into.length, 0);
  assert.throws(() => map.read(1000, into, 1), RangeError);
  map.read(1000, into, 0);
  rab.resize(128);
  into.fill(0);
  map.read(1000, into);
  assert.equal(into.length, 120);
  assert.equal(into[99], 6);
  assert.equal(into[100], 0);
  // a SharedArrayBuffer (growable too) as source and target
  const sab = new SharedArrayBuffer(16, { maxByteLength: 256 });
  const shared = new Uint8Array(sab).fill(3);
  map.memcpy(2000, shared);
  sab.grow(32);
  map.memcpy(3000, shared);
  assert.deepEqual([...map.view(2015, 2)], [3, 0]);
  assert.deepEqual([...map.view(3015, 2)], [3, 0]);
  assert.equal(shared.length, 32);
  map.read(1000, shared.subarray(8));
  assert.deepEqual([...shared.subarray(6, 10)], [3, 3, 6, 6]);
  assert.equal(shared[31], 6);
  // a resizable source shrunk after a copy is copied at its new length
  const src = new Uint8Array(new ArrayBuffer(8, { maxByteLength: 64 }));
  src.fill(9);
  (src.buffer as ArrayBuffer).resize(2);
  map.memcpy(4000, src);
  assert.deepEqual([...map.view(4000, 3)], [9, 9, 0]);
});

// ---- opening files ----

// Bug: mapFile opened (and with `size`, created and sized) the file before
// it checked the mapping's options, so a bad granularity, offset or mover
// threw after the file was made, and left it behind.
test("mapFile checks the mapping's options before it creates the file", () => {
  const bad: [object, ErrorConstructor][] = [
    [{ granularity: "word" }, TypeError],
    [{ offset: -1 }, RangeError],
    [{ length: 1.5 }, RangeError],
    [{ sharing: "both" }, TypeError],
    [{ protection: "write" }, TypeError],
    [{ mover: {} }, TypeError],
  ];
  for (const [options, type] of bad) {
    const path = tempPath();
    assert.throws(
      () => mapFile(path, { size: 4096, ...options }),
      type,
      JSON.stringify(options),
    );
    assert.equal(existsSync(path), false, JSON.stringify(options));
  }
  // no mover (null as undefined) is the default one
  using map = mapFile(tempPath(), { size: 4096, mover: null as never });
  map.memset(0, 1, 1);
});

// Bug: only an exclusive create removed its file when it failed. A plain
// create (mapFile with `size`) that could not extend the new file (ENOSPC)
// left an empty file, and a read-only open with `size` created an empty
// file, then failed ("opened read-only") and left it. The shim now knows
// whether it made the file (it opens without O_CREAT first, then with
// O_EXCL) and removes only that one.
test("a failed open removes the file it created, never one it found", () => {
  const huge = 2 ** 44; // no temp file system has the room
  const creates: ((path: string) => Disposable)[] = [
    (path) => mapFile(path, { size: huge }),
    (path) => Source.open(path, { size: 4096, readOnly: true }),
    (path) => mapFile(path, { size: 4096, protection: "read" }),
  ];
  for (const create of creates) {
    const path = tempPath();
    assert.throws(() => create(path)[Symbol.dispose](), PmemError);
    assert.equal(existsSync(path), false, create.toString());
  }
  // files that were there stay, with their bytes
  const found = tempPath();
  writeFileSync(found, new Uint8Array(100).fill(5));
  assert.throws(() => mapFile(found, { size: huge }), PmemError);
  assert.throws(
    () => mapFile(found, { size: 4096, protection: "read" }),
    pmemCode(-200001, /read-only/),
  );
  assert.deepEqual(
    new Uint8Array(readFileSync(found)),
    new Uint8Array(100).fill(5),
  );
  // a create through a dangling symlink makes its target (O_CREAT's way)
  const target = tempPath("target");
  const link = tempPath("link");
  spawnSync("ln", ["-s", target, link]);
  {
    using map = mapFile(link, { size: 4096 });
    map.memset(0, 4, 1);
  }
  assert.equal(readFileSync(target)[0], 4);
});

// Bug: the shim opened files with a plain open(2), and a FIFO opened
// O_RDONLY waits for a writer: mapFile(fifo, { protection: "read" }),
// Source.open(fifo, { readOnly: true }) and FileLock.acquire(fifo) hung
// the process for ever. Every open is now nonblocking (the flag is cleared
// on the descriptor afterwards), and a FIFO is refused as no mappable
// file. In a child with a timeout, so a regression fails instead of hangs.
test("a FIFO is refused at once, never waited on", () => {
  const fifo = join(tempDir(), "fifo");
  const made = spawnSync("mkfifo", [fifo]);
  assert.equal(made.status, 0, String(made.error ?? made.stderr));
  const r = runScript(
    `
    import { FileLock, mapFile, Source } from "@root/mod.ts";
    const fifo = ${JSON.stringify(fifo)};
    for (const open of [
      () => mapFile(fifo, { protection: "read" }),
      () => Source.open(fifo, { readOnly: true }),
      () => mapFile(fifo),
      () => mapFile(fifo, { size: 4096 }),
    ]) {
      try { open(); console.log("opened"); }
      catch (e) { console.log(e.name, e.codeName); }
    }
    FileLock.acquire(fifo).release();
    console.log("locked");
  `,
    30_000,
  );
  assert.equal(r.signal, null, `hung? ${r.stderr}`);
  assert.equal(
    r.stdout.trim(),
    [
      ...Array(4).fill("PmemError PMEM2_E_INVALID_FILE_TYPE"),
      "locked",
    ].join("\n"),
    r.stderr,
  );
});

// Bug: libpmem2 fails some calls without a message of its own (its source
// from a character device that is no DAX device), and the shim reported
// libpmem2's last message, from whatever failed before: mapping /dev/null
// after a directory said "cannot set fd to directory". libpmem2's message
// is now emptied before each call into it. Also: a successful map set the
// thread's message to "too many live mappings".
test("each file that cannot be mapped gets its own error, and no fd leaks", () => {
  const dir = tempDir();
  const empty = join(dir, "empty");
  writeFileSync(empty, new Uint8Array(0));
  const fifo = join(dir, "fifo");
  spawnSync("mkfifo", [fifo]);
  const cases: [() => unknown, number, RegExp][] = [
    [() => mapFile(dir), -21, /Is a directory/],
    [() => mapFile(dir, { protection: "read" }), -100005, /directory/],
    [() => mapFile("/dev/null"), -100005, /^(?![\s\S]*directory)/],
    [() => mapFile(fifo), -100005, /file type/],
    [() => mapFile("/dev/zero"), -100005, /^(?![\s\S]*file type)/],
    [() => mapFile(empty), -100018, /length is equal 0|empty/i],
    [() => Source.open(join(dir, "none")), -2, /No such file/],
  ];
  const round = () => {
    for (const [open, code, message] of cases) {
      assert.throws(open, pmemCode(code, message));
    }
  };
  const targets = [dir, fifo, empty, "/dev/null", "/dev/zero"];
  round(); // the runtime's own descriptors (Bun opens some lazily)
  const before = openFdsOn(targets);
  for (let i = 0; i < 20; i++) round();
  assert.deepEqual(openFdsOn(targets), before);
  mapFile(join(dir, "ok"), { size: 4096 }).close();
  assert.doesNotMatch(lastMessage(), /too many live mappings/);
});

test("a file whose length is no page multiple maps at its length, on any file system", () => {
  for (const base of [tempDir(), tmpdir()]) {
    const path = join(base, `asyncpmem-odd-${process.pid}-${Math.random()}`);
    writeFileSync(path, new Uint8Array(5000).fill(2));
    try {
      {
        using map = mapFile(path);
        assert.equal(map.size, 5000);
        assert.equal(map.granularity, "page");
        assert.equal(map.view().length, 5000);
        map.memset(4999, 9, 1);
        map.persist(4990, 10);
        assert.throws(() => map.view(5000, 1), RangeError);
        assert.throws(() => map.read(4999, new Uint8Array(2)), RangeError);
        const into = new Uint8Array(1);
        map.read(4999, into);
        assert.equal(into[0], 9);
      }
      using src = Source.open(path);
      using tail = Mapping.map(src, { offset: 4096 });
      assert.equal(tail.size, 904);
      assert.equal(tail.view(903, 1)[0], 9);
      assert.equal(readFileSync(path)[4999], 9);
    } finally {
      spawnSync("rm", ["-f", path]);
    }
  }
});

// ---- closed objects ----

/** Arguments that would be valid for each method of an open mapping. */
const MAPPING_CALLS: Record<string, unknown[]> = {
  view: [0, 1],
  read: [0, new Uint8Array(1)],
  persist: [0, 1],
  flush: [0, 1],
  drain: [],
  deepFlush: [0, 1],
  memcpy: [0, new Uint8Array(1)],
  memmove: [0, 1, 1],
  memset: [0, 1, 1],
  memcpyAsync: [0, new Uint8Array(1)],
  memmoveAsync: [0, 1, 1],
  memsetAsync: [0, 1, 1],
  persistRanges: [[{ offset: 0, length: 1 }]],
  memcpyManyAsync: [[{ offset: 0, data: new Uint8Array(1) }]],
};

// A new method of Mapping must be listed above, so this test calls it.
test("every method of a closed Mapping and Source throws ClosedError", () => {
  const map = mapFile(tempPath(), { size: 65536 });
  const view = map.view(0, 16);
  const methods = Object.getOwnPropertyNames(Mapping.prototype).filter((k) =>
    k !== "constructor" && k !== "close" &&
    typeof Object.getOwnPropertyDescriptor(Mapping.prototype, k)?.value ===
      "function"
  );
  const call = (m: string) =>
    (map as unknown as Record<string, (...a: unknown[]) => unknown>)[m](
      ...MAPPING_CALLS[m],
    );
  for (const m of methods) {
    assert.ok(m in MAPPING_CALLS, `no arguments for Mapping.${m}`);
    call(m); // valid on the open mapping
  }
  map.close();
  for (const m of methods) assert.throws(() => call(m), ClosedError, m);
  for (const getter of ["size", "granularity"] as const) {
    assert.throws(() => map[getter], ClosedError, getter);
  }
  assert.equal(view.length, 0);
  assert.throws(() => nativeHandleOf(map), ClosedError);

  const src = Source.open(tempPath(), { size: 4096 });
  src.close();
  const calls: [string, () => unknown][] = [
    ["size", () => src.size],
    ["alignment", () => src.alignment],
    ["fd", () => src.fd],
    ["deviceUsc", () => src.deviceUsc()],
    ["deviceId", () => src.deviceId()],
    ["numaNode", () => src.numaNode()],
    ["badBlocks", () => src.badBlocks()],
    ["clearBadBlock", () => src.clearBadBlock({ offset: 0, length: 4096 })],
    ["map", () => Mapping.map(src)],
  ];
  for (const [name, call] of calls) assert.throws(call, ClosedError, name);
  const listed = new Set(calls.map(([name]) => name));
  for (const k of Object.getOwnPropertyNames(Source.prototype)) {
    if (k === "constructor" || k === "close" || k === "closed") continue;
    assert.ok(listed.has(k), `Source.${k} is not called here`);
  }
});

// ---- the two runtimes alike ----

// Bug: bun:ffi's ptr() throws for an empty array where Deno's
// UnsafePointer.of gives null, and the shim refused a NULL buffer even for
// a copy of 0 bytes: an IndexedReader read of 0 bytes into an empty array
// threw on Bun (AP_E_INVALID_ARG) and succeeded on Deno, and so did
// readBlocks of 0-byte blocks.
test("empty arrays cross the FFI alike on Deno and Bun", () => {
  const empty = new Uint8Array(0);
  assert.equal(backend.pointerOf(empty), null);
  assert.equal(backend.addressOf(empty), 0);
  assert.equal(backend.pointerOf(new Uint8Array(new ArrayBuffer(8), 8)), null);
  using map = mapFile(tempPath(), { size: 65536 });
  const reader = new MappingReader(map);
  reader.readBlocks(new Float64Array([0, 4096]), 2, 0, empty);
  reader.read(65536, empty, 0);
  // a table of one u32 entry at 0 (0: record 0, present), records of 512
  // bytes at 4096, guard word 0 expected 0
  const desc = new Float64Array([0, 1, 0xff, 0, 4096, 1, 512, 0, 0]);
  const guard = new Int32Array(1);
  const indexed = reader.indexed(desc, guard);
  assert.equal(indexed.read(0, empty, 0), true);
  map.memset(4096, 8, 512);
  const into = new Uint8Array(512);
  assert.equal(indexed.read(0, into, 512), true);
  assert.equal(into[511], 8);
  // too short an array is refused by its elements, not its byteLength
  assert.throws(() => indexed.read(0, new Uint8Array(511), 512), PmemError);
});

// The log store's header check converted each offset to size_t before it
// bounded it: a double beyond 2^64 is undefined behaviour in that cast.
test("the shim bounds every double before converting it", () => {
  using map = mapFile(tempPath(), { size: 65536 });
  const h = nativeHandleOf(map);
  for (const at of [2 ** 64, 1e300, Infinity, 2 ** 53, -8, Number.NaN, 0.5]) {
    const desc = new Float64Array([at, 0, 0]);
    assert.equal(
      native.ap_log_headers(h, desc, desc.byteLength, 1, 0),
      -200002,
      String(at),
    );
  }
  const ok = new Float64Array([64, 0, 0]);
  assert.equal(native.ap_log_headers(h, ok, ok.byteLength, 1, 0), 0);
  for (const v of [2 ** 64, Infinity, -1, Number.NaN, 1.5]) {
    assert.equal(native.ap_map_persist(h, v, 1), -200001, String(v));
    assert.equal(native.ap_map_persist(h, 0, v), -200001, String(v));
  }
  assert.equal(native.ap_map_persist(h, 65535, 2), -200002);
  assert.equal(native.ap_map_persist(h, 2 ** 53 - 1, 2 ** 53 - 1), -200002);
});

// Bug: -0 as a mover option (a thread count, queue size, record or batch
// list count) passed the size checks and reached a u32 FFI parameter,
// where Deno threw its own TypeError ("Invalid FFI u32 type") and Bun took
// it as 0; and a test portal's mode "toString" passed the check (`in`
// answers the prototype's names). checkSize now returns +0.
test("-0 mover options act as 0 on both runtimes; a mode must be a portal's own", () => {
  const outcome = (make: () => { close(): void }) => {
    try {
      make().close();
      return "ok";
    } catch (e) {
      return (e as Error).name;
    }
  };
  const thread = ["threads", "queueSize", "records", "batchLists"] as const;
  for (const name of thread) {
    assert.equal(
      outcome(() => new ThreadMover({ [name]: -0 })),
      outcome(() => new ThreadMover({ [name]: 0 })),
      `ThreadMover ${name}`,
    );
  }
  const portal = [
    "queueSize",
    "records",
    "batchLists",
    "maxBatch",
    "engines",
  ] as const;
  for (const name of portal) {
    assert.equal(
      outcome(() => openTestPortal({ [name]: -0 })),
      outcome(() => openTestPortal({ [name]: 0 })),
      `openTestPortal ${name}`,
    );
  }
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => openTestPortal({ mode: "toString" as any }),
    RangeError,
  );
});
