// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import {
  ClosedError,
  FileLock,
  mapFile,
  Mapping,
  MemFlags,
  NotSupportedError,
  PmemError,
  Source,
} from "../mod.ts";
import { BlockPool } from "../blk/mod.ts";
import { LogStream, PmemLog } from "../stream/mod.ts";
import { MappingReader } from "../pmem2/reader.ts";
import { VIEW_WINDOWS } from "../pmem2/view_buffers.ts";
import {
  assert,
  ROOT_URL,
  runScript,
  RUNTIME,
  tempDir,
  tempPath,
  test,
} from "./_harness.ts";
import { canMountTmpfs } from "./_requires.ts";

test("mapFile() creates and sizes a file, granularity page", () => {
  const path = tempPath();
  using map = mapFile(path, { size: 1 << 20 });
  assert.equal(map.size, 1 << 20);
  assert.equal(map.granularity, "page");
  assert.equal(map.requiredGranularity, "page");
  assert.equal(statSync(path).size, 1 << 20);
});

test("mapFile() maps an existing file without size and keeps its data", () => {
  const path = tempPath();
  writeFileSync(path, new Uint8Array(8192).fill(9));
  using map = mapFile(path);
  assert.equal(map.size, 8192);
  assert.equal(map.view(100, 1)[0], 9);
});

test("views of a large mapping come from windows where the runtime counts buffers", () => {
  // On Bun, one buffer over all of a large mapping makes JavaScriptCore
  // collect rarely (see VIEW_WINDOWS): short views must come from
  // windows, long ones from one buffer; all share the mapping's memory.
  const { whole, size: windowSize, stride } = VIEW_WINDOWS;
  // past what Bun gives one buffer
  const size = Math.max(
    10 * stride,
    (isFinite(whole) ? whole : 0) + 8 * stride,
  );
  const views: Uint8Array[] = [];
  {
    using map = mapFile(tempPath(), { size, sparse: true });
    const near = map.view(stride - 8, 16); // across a stride: one window
    const far = map.view(size - 4096, 4096);
    const long = map.view(2 * stride - 8, stride + 16); // fits no window
    views.push(near, far, long);
    const windowed = RUNTIME === "bun";
    if (windowed) assert.ok(windowSize <= 2 ** 24);
    assert.equal(near.buffer.byteLength, windowed ? windowSize : size);
    const farBase = Math.floor((size - 4096) / stride) * stride;
    assert.equal(
      far.buffer.byteLength,
      windowed ? Math.min(windowSize, size - farBase) : size,
    );
    assert.equal(long.buffer.byteLength, size);
    near[8] = 5;
    assert.equal(map.view(stride, 1)[0], 5);
    long[8] = 4;
    assert.equal(map.view(2 * stride, 1)[0], 4);
    far[4095] = 9;
    assert.equal(map.view()[size - 1], 9);
    map.memcpy(stride + 1, new Uint8Array([6]));
    assert.equal(near[9], 6);
  }
  for (const v of views) assert.equal(v.length, 0);
});

test("close() after a view's buffer was transferred keeps that memory mapped", () => {
  // The buffer a view's was moved to cannot be detached from here:
  // unmapping would leave it pointing at freed memory (a crash on use).
  const path = tempPath();
  const map = mapFile(path, { size: 1 << 20 });
  const other = map.view(4096, 16);
  const moved = (map.view().buffer as ArrayBuffer).transfer();
  map.close();
  map.close();
  assert.equal(map.closed, true);
  assert.equal(other.length, 0);
  new Uint8Array(moved)[1] = 1; // still mapped: no fault
  assert.throws(() => map.view(0, 1), ClosedError);
  using again = mapFile(path);
  assert.equal(again.view(1, 1)[0], 1);
});

test("view() is zero-copy in both directions and reaches the file", () => {
  const path = tempPath();
  {
    using map = mapFile(path, { size: 65536 });
    const a = map.view(0, 4096);
    const b = map.view(1000, 16);
    a[1000] = 42;
    assert.equal(b[0], 42);
    map.memcpy(1001, new Uint8Array([7]));
    assert.equal(a[1001], 7);
    map.persist(1000, 2);
    assert.equal(map.view().length, 65536);
  }
  const bytes = readFileSync(path);
  assert.equal(bytes[1000], 42);
  assert.equal(bytes[1001], 7);
});

test("memcpy/memmove/memset copy correctly with every valid flag", () => {
  using map = mapFile(tempPath(), { size: 1 << 20 });
  const flagsList = [
    0,
    MemFlags.NODRAIN,
    MemFlags.NONTEMPORAL,
    MemFlags.TEMPORAL,
    MemFlags.WC,
    MemFlags.WB,
    MemFlags.NOFLUSH,
    MemFlags.NODRAIN | MemFlags.TEMPORAL | MemFlags.WB,
  ];
  const src = new Uint8Array(10000).map((_, i) => (i * 7) & 255);
  for (const flags of flagsList) {
    map.memset(0, 0, 30000, flags);
    map.memcpy(100, src, flags);
    assert.deepEqual(map.view(100, src.length), src);
    map.memmove(150, 100, 10000, flags); // overlapping, upward
    assert.deepEqual(map.view(150, 10000), src);
    map.memmove(120, 150, 10000, flags); // overlapping, downward
    assert.deepEqual(map.view(120, 10000), src);
    map.memset(5, 0xab, 50, flags);
    assert.ok(map.view(5, 50).every((b) => b === 0xab));
    if (flags & MemFlags.NODRAIN) map.drain();
  }
  map.flush(0, 100);
  map.drain();
  map.deepFlush(0, 4096);
});

test("invalid flags are rejected before native code", () => {
  using map = mapFile(tempPath(), { size: 65536 });
  const b = new Uint8Array(4);
  assert.throws(() => map.memcpy(0, b, 64), RangeError);
  assert.throws(
    () => map.memcpy(0, b, MemFlags.NONTEMPORAL | MemFlags.TEMPORAL),
    RangeError,
  );
  assert.throws(() => map.memcpy(0, b, MemFlags.WC | MemFlags.WB), RangeError);
  assert.throws(
    () => map.memcpy(0, b, MemFlags.NOFLUSH | MemFlags.WC),
    RangeError,
  );
  assert.throws(() => map.memcpy(0, b, 1.5), TypeError);
  assert.throws(() => map.memset(0, 256, 1), RangeError);
  assert.throws(() => map.memset(0, "x" as unknown as number, 1), TypeError);
});

test("out-of-range and mistyped arguments throw RangeError/TypeError", () => {
  using map = mapFile(tempPath(), { size: 65536 });
  assert.throws(() => map.view(65536, 1), RangeError);
  assert.throws(() => map.view(-1, 1), RangeError);
  assert.throws(() => map.view(0.5, 1), RangeError);
  assert.throws(() => map.persist(60000, 6000), RangeError);
  assert.throws(() => map.flush(2 ** 60, 1), RangeError);
  assert.throws(() => map.memcpy(65535, new Uint8Array(2)), RangeError);
  assert.throws(() => map.memmove(0, 65000, 1000), RangeError);
  assert.throws(() => map.memset(65000, 1, 1000), RangeError);
  assert.throws(
    () => map.memcpy(0, [1, 2] as unknown as Uint8Array),
    TypeError,
  );
  assert.throws(() => map.persist("0" as unknown as number, 1), TypeError);
  assert.throws(() => mapFile(tempPath(), { size: -1 }), RangeError);
  assert.throws(
    () => mapFile(tempPath(), { size: 4096, granularity: "word" as "page" }),
    TypeError,
  );
  assert.throws(
    () => mapFile(tempPath(), { size: 4096, sharing: "x" as "shared" }),
    TypeError,
  );
  assert.throws(() => mapFile(42 as unknown as string), TypeError);
});

test("requiring byte granularity on a non-DAX file gives a clear PmemError", () => {
  const path = tempPath();
  const e = assert.throws(
    () => mapFile(path, { size: 65536, granularity: "byte" }),
    (e: unknown) => {
      assert.ok(e instanceof PmemError);
      assert.equal(e.code, -100009);
      assert.equal(e.codeName, "PMEM2_E_GRANULARITY_NOT_SUPPORTED");
      assert.equal(e.errno, 22);
      assert.equal(e.op, "map");
      assert.match(e.message, /DAX/);
      assert.match(e.message, /granularity "page"/);
      return true;
    },
  );
  void e;
});

test("a full file system is an OutOfSpaceError", () => {
  // a 1 MiB tmpfs in a private mount namespace, and a 4 MiB source on it
  const dir = tempDir();
  const script = join(dir, "full.ts");
  writeFileSync(
    script,
    `import { OutOfSpaceError, Source } from ${
      JSON.stringify(`${ROOT_URL}mod.ts`)
    };
    try {
      Source.open(${
      JSON.stringify(join(dir, "mnt", "pool"))
    }, { size: 4 << 20 });
      console.log("created");
    } catch (e) {
      console.log(e instanceof OutOfSpaceError, e.code, e.op, e.message);
    }`,
  );
  mkdirSync(join(dir, "mnt"));
  const run = RUNTIME === "deno"
    ? `${process.execPath} run -A --no-check ${script}`
    : `${process.execPath} ${script}`;
  const r = spawnSync("unshare", [
    "-m",
    "sh",
    "-c",
    `mount -t tmpfs -o size=1m tmpfs ${join(dir, "mnt")} && ${run}`,
  ], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^true -28 open .*No space left/m);
}, { skip: canMountTmpfs() });

test("libpmem2 errors carry code, errno, op and a fresh message", () => {
  const path = tempPath();
  assert.throws(() => Source.open(path), (e: unknown) => {
    assert.ok(e instanceof PmemError);
    assert.equal(e.code, -2);
    assert.equal(e.errno, 2);
    assert.equal(e.op, "open");
    assert.match(e.message, /No such file/);
    return true;
  });
  using src = Source.open(path, { size: 65536 });
  assert.throws(() => Mapping.map(src, { offset: 100 }), (e: unknown) => {
    assert.ok(e instanceof PmemError);
    assert.equal(e.codeName, "PMEM2_E_OFFSET_UNALIGNED");
    assert.doesNotMatch(e.message, /No such file/);
    return true;
  });
  assert.throws(() => Mapping.map(src, { length: 5000 }), (e: unknown) => {
    assert.ok(e instanceof PmemError);
    assert.equal(e.codeName, "PMEM2_E_LENGTH_UNALIGNED");
    return true;
  });
  assert.throws(
    () => Mapping.map(src, { offset: 4096, length: 65536 }),
    (e: unknown) => {
      assert.ok(e instanceof PmemError);
      assert.equal(e.codeName, "PMEM2_E_MAP_RANGE");
      return true;
    },
  );
});

test("Source: size, alignment, fd, RAS not supported on non-DAX files", () => {
  const path = tempPath();
  using src = Source.open(path, { size: 3 * 4096 });
  assert.equal(src.size, 3 * 4096);
  assert.equal(src.alignment, 4096);
  assert.ok(src.fd >= 0);
  assert.throws(() => src.deviceUsc(), NotSupportedError);
  assert.throws(() => src.deviceId(), NotSupportedError);
  assert.throws(() => src.numaNode(), PmemError);
  assert.deepEqual(src.badBlocks(), []);
  using map = Mapping.map(src, { offset: 4096, length: 4096 });
  assert.equal(map.size, 4096);
  src.close();
  src.close();
  assert.throws(() => src.size, ClosedError);
  map.view(0, 10).fill(1); // the mapping outlives its source
  map.persist(0, 10);
});

// The shim keeps a device query's refusal for a file on tmpfs (no
// namespace can back it) and gives it again: libpmem2 took ~0.4 ms per
// query to find none, three queries per pool open. What comes again must
// be what came first, for the other files there too, query by query.
test(
  "Source: a refused deviceUsc()/deviceId() on tmpfs is refused again alike",
  () => {
    const dir = tempDir("/dev/shm");
    const r = runScript(`
      import { writeFileSync } from "node:fs";
      import { Source } from "@root/pmem2/mod.ts";
      const seen = [];
      const refusal = (f) => {
        try { f(); return "no error"; } catch (e) {
          return [e.constructor.name, e.code, e.op, e.message].join("|");
        }
      };
      for (const name of ["a", "b", "a"]) {
        const path = ${JSON.stringify(dir)} + "/" + name;
        writeFileSync(path, new Uint8Array(4096));
        using src = Source.open(path);
        seen.push(refusal(() => src.deviceUsc()), refusal(() => src.deviceId()));
      }
      console.log(JSON.stringify(seen));
    `);
    assert.equal(r.status, 0, r.stderr);
    const seen: string[] = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    assert.match(
      seen[0],
      /^NotSupportedError\|-100001\|deviceUsc\|deviceUsc: unsafe shutdown count: .*not supported/,
    );
    assert.match(
      seen[1],
      /^NotSupportedError\|-100001\|deviceId\|deviceId: device id: not supported for this source$/,
    );
    assert.deepEqual(seen, [
      ...seen.slice(0, 2),
      ...seen.slice(0, 2),
      ...seen.slice(0, 2),
    ]);
  },
  { skip: !existsSync("/dev/shm") && "no /dev/shm" },
);

test("Source.fromAnon() and fromFd(): anonymous memory is BYTE", async () => {
  using anon = Source.fromAnon(1 << 16);
  assert.throws(
    () => anon.fd,
    (e: unknown) =>
      e instanceof PmemError &&
      e.codeName === "PMEM2_E_FILE_DESCRIPTOR_NOT_SET",
  );
  assert.throws(() => anon.deviceUsc(), NotSupportedError);
  using map = Mapping.map(anon, { granularity: "byte" });
  assert.equal(map.granularity, "byte");
  map.memset(0, 5, 100);
  assert.equal(map.view(99, 1)[0], 5);
  const { openSync, closeSync } = await import("node:fs");
  const path = tempPath();
  writeFileSync(path, new Uint8Array(4096));
  const fd = openSync(path, "r+");
  try {
    using src = Source.fromFd(fd);
    assert.equal(src.size, 4096);
  } finally {
    closeSync(fd);
  }
  assert.throws(() => Source.fromFd(-1), RangeError);
  assert.throws(() => Source.fromFd(1.5), RangeError);
  assert.throws(() => Source.fromFd("3" as unknown as number), TypeError);
  assert.throws(() => Source.fromFd(987654), PmemError); // not open
  assert.throws(() => Source.fromAnon(-5), RangeError);
});

test("private mappings are byte granularity and do not reach the file", () => {
  const path = tempPath();
  writeFileSync(path, new Uint8Array(4096));
  {
    using map = mapFile(path, { sharing: "private", granularity: "byte" });
    assert.equal(map.granularity, "byte");
    map.view(0, 1)[0] = 1;
    map.persist(0, 1);
  }
  assert.equal(readFileSync(path)[0], 0);
});

test("read-only protection maps read-only files and refuses every write", () => {
  const path = tempPath();
  writeFileSync(path, new Uint8Array(4096).fill(3));
  const denied = (e: unknown) =>
    e instanceof PmemError && e.code === -13 && /read-only/.test(e.message);
  {
    using map = mapFile(path, { protection: "read" });
    const into = new Uint8Array(8);
    map.read(10, into);
    assert.deepEqual([...into], [3, 3, 3, 3, 3, 3, 3, 3]);
    // a view could be written through, and a store would fault: none
    assert.throws(() => map.view(10, 1), denied);
    assert.throws(() => map.memcpy(0, new Uint8Array(8)), denied);
    assert.throws(() => map.memset(0, 1, 8), denied);
    assert.throws(() => map.memmove(0, 8, 8), denied);
    assert.throws(() => map.memcpyAsync(0, new Uint8Array(8)), denied);
    assert.throws(() => map.memsetAsync(0, 1, 8), denied);
    map.persist(0, 4096); // flushing nothing written is allowed
  }
  {
    using none = mapFile(path, { protection: "none" });
    assert.throws(
      () => none.read(0, new Uint8Array(1)),
      (e: unknown) => e instanceof PmemError && e.code === -13,
    );
  }
  assert.deepEqual(
    new Uint8Array(readFileSync(path)),
    new Uint8Array(4096).fill(3),
  );
  // the shim refuses too, before a byte moves (never a fault)
  const r = runScript(`
    import { native } from "@root/ffi/lib.ts";
    import { mapFile } from "@root/mod.ts";
    import { nativeHandleOf } from "@root/pmem2/mapping_access.ts";
    const map = mapFile(${JSON.stringify(path)}, { protection: "read" });
    const rc = native.ap_map_memset(nativeHandleOf(map), 0, 1, 8, 0);
    console.log("rc", rc);
  `);
  assert.equal(r.signal, null, r.stderr);
  assert.match(r.stdout, /rc -13/);
});

test("close() is idempotent, detaches views, and later use throws ClosedError", () => {
  const map = mapFile(tempPath(), { size: 65536 });
  const v = map.view(0, 100);
  v[0] = 1;
  map.close();
  map.close();
  assert.equal(map.closed, true);
  assert.equal(v.length, 0);
  assert.equal(v[0], undefined);
  v[0] = 5; // ignored, not a crash
  assert.throws(() => map.view(0, 1), ClosedError);
  assert.throws(() => map.persist(0, 1), ClosedError);
  assert.throws(() => map.memcpy(0, new Uint8Array(1)), ClosedError);
  assert.throws(
    () => map.size,
    (e: unknown) => e instanceof ClosedError && e instanceof PmemError,
  );
});

test("using closes the mapping at scope end", () => {
  let view: Uint8Array;
  {
    using map = mapFile(tempPath(), { size: 4096 });
    view = map.view(0, 10);
    assert.equal(view.length, 10);
  }
  assert.equal(view.length, 0);
});

test("a mapping used after close in a subprocess never crashes the runtime", () => {
  const r = runScript(`
    import { mapFile } from "@root/mod.ts";
    const map = mapFile(${JSON.stringify(tempPath())}, { size: 1 << 20 });
    const views = [map.view(0, 4096), map.view(4096), map.view(1 << 19, 1)];
    map.close();
    let sum = 0;
    let typeErrors = 0;
    for (const v of views) {
      for (let i = 0; i < 4096; i++) sum += v[i] ?? 0;
      v[0] = 1;
      try { v.fill(1); } catch (e) { if (e instanceof TypeError) typeErrors++; }
    }
    try { map.view(0, 1); } catch (e) { console.log(e.name); }
    try { map.memcpy(0, new Uint8Array(8)); } catch (e) { console.log(e.name); }
    console.log("survived", sum, views[0].length, typeErrors);
  `);
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /ClosedError\nClosedError\nsurvived 0 0 3/);
});

test("a mapping larger than 4 GiB is viewable everywhere (Bun windows)", () => {
  const path = tempPath();
  const size = 5 * 2 ** 30;
  using map = mapFile(path, { size, sparse: true });
  assert.equal(map.size, size);
  const offsets = [0, 2 ** 32 - 8, 2 ** 32 + 12345, size - 4096];
  for (const off of offsets) {
    const v = map.view(off, 16);
    v[0] = 0xa5;
    assert.equal(map.view(off, 1)[0], 0xa5);
    map.persist(off, 1);
  }
  const across = map.view(2 ** 32 - 4096, 20000); // spans the 4 GiB line
  assert.equal(across[4096 - 8], 0xa5);
  assert.equal(across[4096 + 12345], 0xa5);
  if (RUNTIME === "bun") {
    assert.throws(() => map.view(0, 2 ** 32 + 1), RangeError);
  }
});

test("FileLock: exclusive, idempotent release, across processes", () => {
  const path = tempPath();
  writeFileSync(path, new Uint8Array(16));
  const lock = FileLock.acquire(path);
  assert.throws(() => FileLock.acquire(path), (e: unknown) => {
    assert.ok(e instanceof PmemError);
    assert.equal(e.errno, 11);
    assert.match(e.message, /locked/);
    return true;
  });
  const r = runScript(`
    import { FileLock } from "@root/mod.ts";
    try { FileLock.acquire(${JSON.stringify(path)}); console.log("got it"); }
    catch (e) { console.log(e.name, e.errno); }
  `);
  assert.equal(r.stdout.trim(), "PmemError 11", r.stderr);
  lock.release();
  lock.release();
  assert.equal(lock.released, true);
  using again = FileLock.acquire(path);
  assert.equal(again.released, false);
  assert.throws(
    () => FileLock.acquire(tempPath("missing")),
    (e: unknown) => e instanceof PmemError && e.errno === 2,
  );
  assert.throws(() => FileLock.acquire(5 as unknown as string), TypeError);
});

test("Source.clearBadBlock() reallocates a range of a regular file (zeroes it)", () => {
  using src = Source.open(tempPath(), { size: 65536 });
  using map = Mapping.map(src);
  map.memset(0, 7, 65536);
  src.clearBadBlock({ offset: 4096, length: 4096 });
  assert.equal(map.view(4096, 1)[0], 0);
  assert.equal(map.view(8191, 1)[0], 0);
  assert.equal(map.view(4095, 1)[0], 7);
  assert.equal(map.view(8192, 1)[0], 7);
  assert.throws(() => src.clearBadBlock({ offset: -1, length: 1 }), RangeError);
  assert.throws(
    () =>
      src.clearBadBlock(null as unknown as { offset: number; length: number }),
    TypeError,
  );
  using anon = Source.fromAnon(65536);
  assert.throws(
    () => anon.clearBadBlock({ offset: 0, length: 4096 }),
    PmemError,
  );
});

test("Source.clearBadBlock() refuses a range past the end of the file", () => {
  // libpmem2 reallocates the range with fallocate(KEEP_SIZE): past the end
  // it allocated storage the file never shows (on tmpfs, memory), as much as
  // asked for (2^32 exhausted the machine's memory)
  const path = tempPath();
  using src = Source.open(path, { size: 65536 });
  const blocks = statSync(path).blocks;
  for (
    const block of [
      { offset: 0, length: 65536 + 4096 },
      { offset: 65536, length: 1 << 20 },
      { offset: 1 << 20, length: 4096 },
    ]
  ) {
    assert.throws(
      () => src.clearBadBlock(block),
      (e: unknown) =>
        e instanceof RangeError && /exceeds the size 65536/.test(e.message),
    );
  }
  assert.equal(statSync(path).blocks, blocks);
  src.clearBadBlock({ offset: 61440, length: 4096 }); // the last page: fine
  assert.equal(statSync(path).size, 65536);
});

test("Mapping.read() copies out of the mapping with checks", () => {
  using map = mapFile(tempPath(), { size: 65536 });
  map.memset(100, 9, 50);
  const into = new Uint8Array(64);
  map.read(90, into);
  assert.deepEqual([...into.subarray(8, 12)], [0, 0, 9, 9]);
  map.read(0, into, 4);
  assert.throws(() => map.read(65530, into), RangeError);
  assert.throws(() => map.read(0, into, 65), RangeError);
  assert.throws(() => map.read(0, [] as unknown as Uint8Array), TypeError);
  assert.throws(() => map.read(0.5, into, 4), RangeError);
  assert.throws(() => map.read(0, into, Number.NaN), RangeError);
  map.close();
  assert.throws(() => map.read(0, into), ClosedError);
});

test("persistRanges() checks every range before persisting any", () => {
  using map = mapFile(tempPath(), { size: 65536 });
  map.persistRanges([]);
  map.persistRanges([{ offset: 0, length: 0 }, { offset: 4096, length: 10 }]);
  map.persistRanges([{ offset: 65535, length: 1 }, { offset: 0, length: 1 }]);
  const bad = (r: unknown) => () =>
    map.persistRanges([{ offset: 0, length: 8 }, r] as never);
  assert.throws(bad({ offset: 65530, length: 7 }), RangeError);
  assert.throws(bad({ offset: -1, length: 1 }), RangeError);
  assert.throws(bad({ offset: 1.5, length: 1 }), RangeError);
  assert.throws(bad({ offset: 0, length: Number.NaN }), RangeError);
  assert.throws(bad({ offset: "0", length: 1 }), TypeError);
  assert.throws(bad(null), TypeError);
  assert.throws(() => map.persistRanges({} as never), TypeError);
  map.close();
  assert.throws(() => map.persistRanges([]), ClosedError);
});

test("Mapping.read() into a reused array, then a detached one", () => {
  using map = mapFile(tempPath(), { size: 65536 });
  const into = new Uint8Array(4096);
  // The second and later reads into the same array go through its cached
  // pointer (on Deno); each must still land in the array.
  for (let round = 1; round <= 4; round++) {
    map.memset(4096 * round, round, 4096);
    map.read(4096 * round, into);
    assert.equal(into[0], round);
    assert.equal(into[4095], round);
  }
  const other = new Uint8Array(16);
  map.read(4096, other);
  assert.equal(other[15], 1);
  map.read(8192, into, 16);
  assert.equal(into[0], 2);
  // A transferred buffer leaves the array detached (length 0): a read of
  // any bytes into it is refused before the native copy.
  const moved = into.buffer.transfer();
  assert.equal(into.byteLength, 0);
  assert.throws(() => map.read(0, into, 16), RangeError);
  map.read(0, into, 0);
  assert.equal(new Uint8Array(moved)[0], 2);
});

test("MappingReader reads without checks and closes with its mapping", () => {
  const map = mapFile(tempPath(), { size: 65536 });
  map.memset(512, 5, 512);
  const reader = new MappingReader(map);
  const into = new Uint8Array(512);
  reader.read(512, into, 512);
  reader.read(512, into, 512);
  assert.equal(into[511], 5);
  // The native side still checks the range.
  assert.throws(() => reader.read(65536 - 256, into, 512), PmemError);
  map.close();
  assert.throws(() => reader.read(512, into, 512), ClosedError);
  reader.close();
  assert.throws(() => new MappingReader(map), ClosedError);
});

test("a store's create that cannot extend its new file leaves no file behind", () => {
  // 16 TiB: no temp file system has the room, so posix_fallocate fails
  // (ENOSPC) after the exclusive open made the file, which stayed, and a
  // retry of the create then failed with EEXIST
  const huge = 2 ** 44;
  const creates = [
    (path: string) =>
      BlockPool.create(path, { blockSize: 512, poolSize: huge }),
    (path: string) => LogStream.create(path, { size: huge }),
    (path: string) => PmemLog.create(path, { poolSize: huge }),
  ];
  for (const create of creates) {
    const path = tempPath();
    assert.throws(() => create(path), PmemError);
    assert.equal(existsSync(path), false, create.toString());
  }
});
