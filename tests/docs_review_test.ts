// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// What the README and the package's metadata promise a new user, checked
// against the files themselves.
import {
  existsSync,
  readFileSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import {
  chain,
  fromStep,
  map,
  mapFile,
  OutOfSpaceError,
  PmemError,
  ready,
  Source,
} from "../mod.ts";
import {
  BlockPool,
  fletcher64,
  poolGeometry,
  uuidToBytes,
  uuidToString,
} from "../blk/mod.ts";
import { ObjectPool } from "../obj/mod.ts";
import { LogStream, PmemLog } from "../stream/mod.ts";
import {
  assert,
  ROOT,
  runScript,
  tempDir,
  tempPath,
  test,
} from "./_harness.ts";

test("the package's bin is an executable file, so npm pack leaves it as it is", () => {
  // npm pack (tools/package_check.sh, run by tools/test.sh) sets the
  // execute bits of every `bin` in the work tree it packs: a bin stored
  // without them left cli/main.ts modified after every test run
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  for (const [name, path] of Object.entries<string>(pkg.bin)) {
    const file = join(ROOT, path);
    assert.match(readFileSync(file, "utf8"), /^#!\/usr\/bin\/env /, name);
    assert.equal(
      statSync(file).mode & 0o111,
      0o111,
      `${path} is not executable`,
    );
  }
});

/** `statfs` magic of tmpfs. */
const TMPFS = 0x01021994;
/** tmpfs refuses a fallocate beyond its size at once; a disk file system
 * may fill itself first, which a test must not do to a shared machine. */
const onTmpfs = (() => {
  // removed at once: the harness's exit hook, which would remove a
  // directory made outside a test, does not run under deno test
  const dir = tempDir();
  const type = statfsSync(dir).type;
  rmSync(dir, { recursive: true, force: true });
  return type === TMPFS;
})();

test(
  "a create larger than the file system throws OutOfSpaceError in every store, as the README says",
  () => {
    const dir = tempDir();
    const fs = statfsSync(dir);
    // twice the file system's size: the file cannot be allocated
    const size = Math.ceil(2 * fs.blocks * fs.bsize / 2 ** 30 + 1) * 2 ** 30;
    const creates: [string, () => { close(): void }][] = [
      [
        "BlockPool",
        () =>
          BlockPool.create(join(dir, "b"), { blockSize: 4096, poolSize: size }),
      ],
      ["LogStream", () => LogStream.create(join(dir, "s"), { size })],
      ["PmemLog", () => PmemLog.create(join(dir, "l"), { poolSize: size })],
    ];
    for (const [name, create] of creates) {
      assert.throws(() => create().close(), (e) => {
        assert.ok(e instanceof OutOfSpaceError, `${name}: ${e}`);
        assert.equal(e.code, -28);
        return true;
      });
    }
    assert.ok(!existsSync(join(dir, "b")), "the failed create left its file");
  },
  { skip: !onTmpfs && "the test directory is not on tmpfs" },
);

test("chain(), map() and fromStep() refuse what is no Future or no function at once, with a TypeError", () => {
  // the README: bad arguments throw TypeError before anything runs; they
  // failed the future only at its first poll, with the engine's own
  // "f.poll is not a function" (or "next is not a function")
  const bad: [string, () => unknown][] = [
    ["chain(5, fn)", () => chain(5 as never, () => 1)],
    ["chain(promise, fn)", () => chain(Promise.resolve(1) as never, () => 1)],
    ["chain(f, 5)", () => chain(ready(1), 5 as never)],
    ["map(null, fn)", () => map(null as never, (x) => x)],
    ["map(f, 'x')", () => map(ready(1), "x" as never)],
    ["fromStep(5)", () => fromStep(5 as never)],
  ];
  for (const [what, call] of bad) {
    assert.throws(call, TypeError, what);
  }
});

test("a bigint where a mapping wants a number or a name is the library's TypeError", () => {
  // the README: bad arguments throw a TypeError saying what is wrong; a
  // bigint reached arithmetic (view's default length) or JSON.stringify
  // (the granularity's message) first, which threw the engine's own
  const path = join(tempDir(), "m");
  assert.throws(
    () => mapFile(path, { size: 4096, granularity: 10n as never }),
    (e) => e instanceof TypeError && /^Cannot map: granularity/.test(e.message),
  );
  using map = mapFile(path, { size: 4096 });
  assert.throws(
    () => map.view(10n as never),
    (e) => e instanceof TypeError && /^Cannot view: offset/.test(e.message),
  );
});

test("Source.open and /blk's helpers refuse bad arguments with the library's own errors", () => {
  // each threw the engine's own TypeError ("null is not an object",
  // "undefined is not an object (evaluating 'bytes.byteLength')", or
  // JSON.stringify's about a BigInt) instead of one naming the argument
  const path = join(tempDir(), "f");
  const bad: [string, () => unknown, ErrorConstructor, RegExp][] = [
    [
      "Source.open(path, null)",
      () => Source.open(path, null as never),
      TypeError,
      /^Cannot open source: options/,
    ],
    [
      "fletcher64()",
      () => fletcher64(undefined as never, 0),
      TypeError,
      /^Cannot checksum: bytes/,
    ],
    [
      "fletcher64([])",
      () => fletcher64([] as never, 0),
      TypeError,
      /^Cannot checksum: bytes/,
    ],
    [
      "uuidToString()",
      () => uuidToString(undefined as never),
      TypeError,
      /^Cannot format UUID: bytes/,
    ],
    [
      "uuidToString(3 bytes)",
      () => uuidToString(new Uint8Array(3)),
      RangeError,
      /^Cannot format UUID: bytes/,
    ],
    [
      "uuidToBytes(1n)",
      () => uuidToBytes(1n as never),
      TypeError,
      /^Cannot parse UUID/,
    ],
  ];
  for (const [what, call, type, message] of bad) {
    assert.throws(
      call,
      (e) => e instanceof type && message.test((e as Error).message),
      what,
    );
  }
});

test(
  "LogStream.appendAsync refused for a bad signal leaves no timestamp behind",
  () => {
    // the README: appendAsync reserves its timestamp at the call; a signal
    // that is no AbortSignal was refused only after that, by the future's
    // constructor, and the timestamp it held was never committed: every
    // later append of the stream (a Worker's too) and close() waited for it
    // forever. In a child process, so that a hang fails the test.
    const path = join(tempDir(), "s");
    const r = runScript(
      `
    import { LogStream } from "@root/stream/mod.ts";
    const s = LogStream.create(${JSON.stringify(path)}, { size: 1 << 20 });
    const region = s.allocateRegion(65536);
    try {
      s.appendAsync(region, new Uint8Array(8), { signal: 5 as never });
      console.log("no error");
    } catch (e) {
      console.log(e instanceof TypeError ? "TypeError" : String(e));
    }
    console.log(s.append(region, new Uint8Array(8)));
    console.log(await s.appendAsync(region, new Uint8Array(8)));
    s.close();
    `,
      30_000,
    );
    assert.equal(r.signal, null, `the child hung: ${r.stdout}`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "TypeError\n1\n2\n");
  },
  { timeout: 60_000 },
);

test("poolGeometry refuses what is no file size or block size at once", () => {
  // exported from /blk without checks of its own: "x" or NaN returned a
  // pool of no arenas, a fractional or zero block size a geometry, and
  // Infinity looped for good (2^64 ran Deno out of memory). Those two run
  // in a child process.
  const bad: [string, () => unknown, ErrorConstructor][] = [
    [
      'poolGeometry("x", 512)',
      () => poolGeometry("x" as never, 512),
      TypeError,
    ],
    ["poolGeometry(NaN, 512)", () => poolGeometry(NaN, 512), RangeError],
    ["poolGeometry(64 MiB, 0)", () => poolGeometry(64 << 20, 0), RangeError],
    [
      "poolGeometry(64 MiB, 1.5)",
      () => poolGeometry(64 << 20, 1.5),
      RangeError,
    ],
    [
      "poolGeometry(64 MiB, '1')",
      () => poolGeometry(64 << 20, "1" as never),
      TypeError,
    ],
  ];
  for (const [what, call, type] of bad) {
    assert.throws(
      call,
      (e) => e instanceof type && /^Cannot /.test((e as Error).message),
      what,
    );
  }
  const r = runScript(
    `
    import { poolGeometry } from "@root/blk/mod.ts";
    for (const size of [Infinity, 2 ** 64]) {
      try {
        poolGeometry(size, 512);
        console.log("no error");
      } catch (e) {
        console.log((e as Error).name);
      }
    }
    `,
    20_000,
  );
  assert.equal(r.signal, null, "poolGeometry(Infinity) did not return");
  assert.equal(r.stdout, "RangeError\nRangeError\n", r.stderr);
}, { timeout: 60_000 });

// Bug: a create whose file exists said op "open" (its source's) in the log
// stream, libpmemlog log and object pool, and "create" in the block pool.
test("every store's create of an existing file names create as the failed op", () => {
  const path = tempPath();
  writeFileSync(path, "x");
  const creates: [string, () => unknown][] = [
    [
      "BlockPool",
      () => BlockPool.create(path, { blockSize: 512, poolSize: 32 << 20 }),
    ],
    ["LogStream", () => LogStream.create(path, { size: 4 << 20 })],
    ["PmemLog", () => PmemLog.create(path, { poolSize: 4 << 20 })],
    [
      "ObjectPool",
      () => ObjectPool.create(path, { size: 8 << 20, layout: "x" }),
    ],
  ];
  for (const [name, create] of creates) {
    assert.throws(create, (e) => {
      assert.ok(e instanceof PmemError, `${name}: ${e}`);
      assert.equal(e.op, "create", `${name}: ${e.message}`);
      assert.equal(e.code, -17, `${name}: ${e.message}`);
      return true;
    });
  }
});

// Bug (found by the movers review): the classes whose constructors are
// internal (private to TypeScript only) could be called from JavaScript.
// `new BlockPool()` and the like failed with the engine's TypeError about
// a property of undefined; `new FileLock()`, `new PersistentMap()` and
// `new ObjectHandle()` made objects that seemed a lock, a map or a handle.
test("classes made by factories refuse `new` from JavaScript with a TypeError naming the factory", async () => {
  const exported = {
    ...(await import("../mod.ts")),
    ...(await import("../blk/mod.ts")),
    ...(await import("../stream/mod.ts")),
    ...(await import("../obj/mod.ts")),
  } as Record<string, unknown>;
  const names = [
    "BlockPool",
    "FileLock",
    "LogStream",
    "Mapping",
    "ObjectHandle",
    "ObjectPool",
    "PersistentMap",
    "PmemLog",
    "Source",
    "Transaction",
  ];
  for (const name of names) {
    const ctor = exported[name] as new () => unknown;
    assert.equal(typeof ctor, "function", name);
    assert.throws(
      () => new ctor(),
      (e) =>
        e instanceof TypeError &&
        e.message.startsWith(`Cannot construct ${name}: `),
      name,
    );
  }
});
