// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Edges across the stores found by a sixth review: each test exposed a
 * bug (named in its comment) or checks an edge found sound.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { BlockPool } from "../blk/mod.ts";
import { fromStep, wait } from "../future/mod.ts";
import { CpuMover, mapFile, PmemError } from "../mod.ts";
import { ObjectPool, PersistentMap } from "../obj/mod.ts";
import {
  createBlockPool,
  createLogStream,
  createObjectPool,
  openBlockPool,
  openLogStream,
  openObjectPool,
} from "../testing/mod.ts";
import { LogStream, PmemLog } from "../stream/mod.ts";
import {
  assert,
  lastJsonLine,
  moverTest,
  ROOT_URL,
  RUNTIME,
  tempDir,
  tempPath,
  test,
  unknownSingal,
} from "./_harness.ts";

/** The uid and gid of `nobody` (an unprivileged user every Linux has). */
const NOBODY = 65534;

/**
 * How to run a command as an unprivileged user: the prefix to put
 * before it (none when this process is not root), or the reason it
 * cannot be done here (a declared skip).
 */
function unprivileged(): string[] | string {
  if (process.getuid?.() !== 0) return [];
  const prefix = [
    "setpriv",
    `--reuid=${NOBODY}`,
    `--regid=${NOBODY}`,
    "--clear-groups",
  ];
  const r = spawnSync(prefix[0], [...prefix.slice(1), "true"], {
    timeout: 30_000,
  });
  return r.error === undefined && r.status === 0
    ? prefix
    : "running as root, and setpriv cannot switch to the user nobody";
}

const AS_NOBODY = unprivileged();

/**
 * Run TypeScript source as an unprivileged user (see
 * {@linkcode unprivileged}) in `dir`, made mode 0777; `@dir/` in the
 * source stands for that directory, `@root/` for the repository root.
 * Returns the child's last line of output, parsed.
 */
function runUnprivileged(
  dir: string,
  source: string,
): Record<string, unknown> {
  const prefix = AS_NOBODY as string[];
  chmodSync(dir, 0o777);
  const file = join(dir, "script.ts");
  writeFileSync(
    file,
    source.replaceAll("@root/", ROOT_URL).replaceAll("@dir/", dir + "/"),
  );
  chmodSync(file, 0o644);
  const args = RUNTIME === "deno" ? ["run", "-A", "--no-check", file] : [file];
  const cmd = [...prefix, process.execPath, ...args];
  const r = spawnSync(cmd[0], cmd.slice(1), {
    encoding: "utf8",
    timeout: 60_000,
    // (the user's own caches: root's home is not theirs)
    env: {
      ...process.env,
      HOME: dir,
      DENO_DIR: join(dir, ".deno"),
      NO_COLOR: "1",
    },
  });
  return lastJsonLine(r);
}

// Bug: a store created with a mode its creator can write but not read
// (0o200) failed with EACCES for a user other than root: the file's
// process-wide share (which holds the lock libpmem* take) opened the
// path again read-only to `flock` it. libpmemlog's create locks the
// descriptor it created the file with, so a mode of 0o200 works there.
// The share now falls back to a write-only open when a read-only one is
// refused: `flock` needs a descriptor of either kind.
test(
  "every store is created with mode 0o200 by an unprivileged user, and the file has that mode",
  () => {
    const dir = tempDir();
    const out = runUnprivileged(
      dir,
      `
      import { BlockPool } from "@root/blk/mod.ts";
      import { ObjectPool } from "@root/obj/mod.ts";
      import { LogStream, PmemLog } from "@root/stream/mod.ts";
      const out = {};
      const tries = {
        log: () => PmemLog.create("@dir/log", { mode: 0o200, poolSize: 8 << 20 }),
        blk: () => BlockPool.create("@dir/blk", { mode: 0o200, blockSize: 512, poolSize: 32 << 20 }),
        obj: () => ObjectPool.create("@dir/obj", { mode: 0o200, size: 16 << 20, layout: "review6" }),
        stream: () => LogStream.create("@dir/stream", { mode: 0o200, size: 8 << 20 }),
      };
      for (const [name, create] of Object.entries(tries)) {
        try {
          create().close();
          out[name] = "ok";
        } catch (e) {
          out[name] = String(e);
        }
      }
      console.log(JSON.stringify(out));
    `,
    );
    assert.deepEqual(out, { log: "ok", blk: "ok", obj: "ok", stream: "ok" });
    for (const name of Object.keys(out)) {
      assert.equal(statSync(join(dir, name)).mode & 0o777, 0o200, name);
    }
  },
  { skip: typeof AS_NOBODY === "string" ? AS_NOBODY : false },
);

// Bug: persistRanges([]) (and a list of empty ranges) on a mapping with
// protection "none" returned, where persist, flush and persistRanges of
// a range refuse it with EACCES; the refusal of a range also named the
// op "flush". Every persistRanges call on such a mapping now throws the
// same PmemError, op "persistRanges", whatever its ranges.
test('persistRanges() on a mapping with protection "none" throws EACCES naming persistRanges, with no ranges too', () => {
  const path = tempPath();
  mapFile(path, { size: 1 << 16 }).close();
  using map = mapFile(path, { protection: "none" });
  const denied = (op: string) => (e: unknown) => {
    assert.ok(e instanceof PmemError, String(e));
    assert.equal(e.code, -13);
    assert.equal(e.op, op);
    return true;
  };
  assert.throws(() => map.persist(0, 64), denied("persist"));
  for (
    const ranges of [
      [],
      [{ offset: 0, length: 0 }],
      [{ offset: 0, length: 64 }],
      [{ offset: 0, length: 64 }, { offset: 8192, length: 64 }],
    ]
  ) {
    assert.throws(
      () => map.persistRanges(ranges),
      denied("persistRanges"),
      JSON.stringify(ranges),
    );
  }
});

/** The options of an async call with `signal` misspelled. */
function typo(): { signal: AbortSignal } {
  return { singal: new AbortController().signal } as never;
}

// Bug: the FutureOptions of every async call ignored keys they do not
// have: `{ singal: ac.signal }` was taken as no options, and the work
// could never be cancelled. One validator (checkFutureOptions, over the
// library's readOptions) now refuses an unknown key at the call, naming
// it and the call, before any work starts.
moverTest(
  "a mover's async calls refuse an unknown key of their FutureOptions at the call",
  (mover) => {
    const dst = new Uint8Array(1 << 16);
    const src = new Uint8Array(1 << 16).fill(7);
    const calls: [string, () => unknown][] = [
      ["memcpy", () => mover.memcpy(dst, src, 0, typo())],
      ["memmove", () => mover.memmove(dst, src, 0, typo())],
      ["memset", () => mover.memset(dst, 7, 0, typo())],
      ["flush", () => mover.flush(dst, 0, typo())],
      [
        "batch",
        () =>
          mover.batch(
            [
              {
                op: "memcpy",
                dst: dst.subarray(0, 8192),
                src: src.subarray(0, 8192),
              },
              { op: "memset", dst: dst.subarray(8192), value: 7 },
            ],
            typo(),
          ),
      ],
    ];
    for (const [op, call] of calls) assert.throws(call, unknownSingal(op));
    assert.equal(dst.indexOf(7), -1, "no work was started");
    // the right key still works
    wait(mover.memset(dst, 1, 0, { signal: new AbortController().signal }));
    assert.equal(dst[0], 1);
  },
);

test("the stores' and futures' async calls refuse an unknown key of their FutureOptions at the call", () => {
  const dir = tempDir();
  using map = mapFile(join(dir, "map"), { size: 1 << 20 });
  using pool = BlockPool.create(join(dir, "blk"), {
    blockSize: 512,
    poolSize: 32 << 20,
  });
  using stream = LogStream.create(join(dir, "stream"), { size: 8 << 20 });
  const region = stream.allocateRegion(4096);
  const ts = stream.append(region, new Uint8Array(8));
  using log = PmemLog.create(join(dir, "log"), { poolSize: 8 << 20 });
  const data = new Uint8Array(512).fill(7);
  const calls: [string, () => unknown][] = [
    ["memcpyAsync", () => map.memcpyAsync(0, data, 0, typo())],
    ["memmoveAsync", () => map.memmoveAsync(0, 4096, 64, 0, typo())],
    ["memsetAsync", () => map.memsetAsync(0, 7, 64, 0, typo())],
    [
      "memcpyManyAsync",
      () => map.memcpyManyAsync([{ offset: 0, data }], typo()),
    ],
    ["writeAsync", () => pool.writeAsync(0, data, typo())],
    ["writeMany", () => pool.writeMany([{ lba: 0, data }], typo())],
    ["readAsync", () => pool.readAsync(0, undefined, typo())],
    ["appendAsync", () => stream.appendAsync(region, data, typo())],
    ["waitCommitted", () => stream.waitCommitted(ts, typo())],
    ["waitPersisted", () => stream.waitPersisted(ts, typo())],
    ["appendAsync", () => log.appendAsync(data, typo())],
    ["make a future", () => fromStep(() => 1, typo())],
  ];
  for (const [op, call] of calls) assert.throws(call, unknownSingal(op));
  // nothing was written or appended
  assert.equal(map.view(0, 64).indexOf(7), -1);
  assert.equal(pool.read(0).indexOf(7), -1);
  assert.equal(log.tell(), 0);
  // an append's own option beside the signal is no unknown key
  wait(stream.appendAsync(region, data, { level: "committed" }));
});

/** A Proxy of a Uint8Array of `n` bytes (it passes `instanceof`). */
function proxied(n: number): Uint8Array {
  return new Proxy(new Uint8Array(n), {});
}

// Bug: a Proxy of a Uint8Array (which passes `instanceof Uint8Array`)
// given as data or `into` met the engine's own TypeError ("Method get
// TypedArray.prototype.byteLength called on incompatible receiver" on
// Deno, "Receiver should be a typed array view" on Bun) at the block
// store's, the mapping's read, the streams' and the object store's
// calls; the movers and the mapping's copies said "src must be a
// Uint8Array". Every entry point now tests for a Uint8Array as those
// do (ffi/validate.ts isBytes: `instanceof` and `ArrayBuffer.isView`, an
// internal slot no Proxy has), and names the argument.
test("a Proxy of a Uint8Array is refused with the library's TypeError naming the argument", () => {
  const dir = tempDir();
  using map = mapFile(join(dir, "map"), { size: 1 << 20 });
  using pool = BlockPool.create(join(dir, "blk"), {
    blockSize: 512,
    poolSize: 32 << 20,
  });
  using stream = LogStream.create(join(dir, "stream"), { size: 8 << 20 });
  const region = stream.allocateRegion(4096);
  using log = PmemLog.create(join(dir, "log"), { poolSize: 8 << 20 });
  using objects = ObjectPool.create(join(dir, "obj"), {
    size: 16 << 20,
    layout: "review6",
  });
  const root = objects.root(64);
  using pmap = PersistentMap.open(objects, "m");
  using mover = new CpuMover();
  const calls: [string, string, () => unknown][] = [
    ["write", "data", () => pool.write(0, proxied(512))],
    ["read", "into", () => pool.read(0, proxied(512))],
    ["readMany", "into", () => pool.readMany([0], proxied(512))],
    ["writeAsync", "data", () => pool.writeAsync(0, proxied(512))],
    [
      "writeMany",
      "data",
      () => pool.writeMany([{ lba: 0, data: proxied(512) }]),
    ],
    ["readAsync", "into", () => pool.readAsync(0, proxied(512))],
    ["read", "into", () => map.read(0, proxied(64))],
    ["read", "into", () => map.read(0, proxied(64), 0)],
    ["memcpy", "src", () => map.memcpy(0, proxied(64))],
    ["memcpyAsync", "src", () => map.memcpyAsync(0, proxied(64))],
    ["append", "data", () => stream.append(region, proxied(8))],
    ["appendAsync", "data", () => stream.appendAsync(region, proxied(8))],
    ["append", "data", () => log.append(proxied(8))],
    ["appendv", "data", () => log.appendv([proxied(8)])],
    ["appendAsync", "data", () => log.appendAsync(proxied(8))],
    ["write", "bytes", () => objects.tx((tx) => tx.write(root, 0, proxied(8)))],
    ["set", "key", () => pmap.set(proxied(4), "v")],
    ["set", "value", () => pmap.set("k", proxied(4))],
    ["get", "key", () => pmap.get(proxied(4))],
    ["memcpy", "dst", () => mover.memcpy(proxied(8), new Uint8Array(8))],
  ];
  for (const [op, name, call] of calls) {
    assert.throws(call, (e: unknown) => {
      assert.ok(e instanceof TypeError, String(e));
      assert.match(e.message, new RegExp(`^Cannot ${op}: .*\\b${name}\\b`));
      assert.match(e.message, /Uint8Array/);
      return true;
    }, `${op} ${name}`);
  }
  // nothing was written or appended
  assert.equal(log.tell(), 0);
});

/** What a call gave: "ok", or its error. */
function outcome(call: () => Disposable): string {
  try {
    call()[Symbol.dispose]();
    return "ok";
  } catch (e) {
    return String(e);
  }
}

// Bug: the testing entry points that wrap the stores' factories
// (createBlockPool, openLogStream, ...) dropped the options an object
// inherits (getters of a class's prototype: `size`, `blockSize`,
// `layout`): they split off their own keys and copied only the caller's
// own properties for the factory, which reads inherited ones too, so
// `createLogStream(path, new Options())` said "the size option is
// required" where LogStream.create took it. The rest now keeps the
// caller's prototype, so the factory sees what it would have seen.
test("the testing wrappers of the stores' factories take options a prototype's getters give, as the factories do", () => {
  const dir = tempDir();
  class BlockOptions {
    get blockSize(): number {
      return 512;
    }
    get poolSize(): number {
      return 32 << 20;
    }
  }
  class StreamOptions {
    get size(): number {
      return 8 << 20;
    }
  }
  class ObjectOptions {
    get size(): number {
      return 16 << 20;
    }
    get layout(): string {
      return "review6";
    }
  }
  class ReadOnly {
    get readOnly(): boolean {
      return true;
    }
  }
  class Layout {
    get layout(): string {
      return "review6";
    }
  }
  class WrongSize {
    get size(): number {
      return 4 << 20;
    }
  }
  const at = (name: string) => join(dir, name);
  const pairs: [string, () => Disposable, () => Disposable][] = [
    [
      "create pool",
      () => BlockPool.create(at("blk1"), new BlockOptions()),
      () => createBlockPool(at("blk2"), new BlockOptions()),
    ],
    [
      "open pool",
      () => BlockPool.open(at("blk1"), new ReadOnly()),
      () => openBlockPool(at("blk2"), new ReadOnly()),
    ],
    [
      "create stream",
      () => LogStream.create(at("s1"), new StreamOptions()),
      () => createLogStream(at("s2"), new StreamOptions()),
    ],
    [
      "open stream of another size",
      () => LogStream.open(at("s1"), new WrongSize()),
      () => openLogStream(at("s2"), new WrongSize()),
    ],
    [
      "create object pool",
      () => ObjectPool.create(at("o1"), new ObjectOptions()),
      () => createObjectPool(at("o2"), new ObjectOptions()),
    ],
    [
      "open object pool",
      () => ObjectPool.open(at("o1"), new Layout()),
      () => openObjectPool(at("o2"), new Layout()),
    ],
  ];
  for (const [what, plain, wrapped] of pairs) {
    const want = outcome(plain);
    assert.equal(outcome(wrapped), want.replaceAll(at("s1"), at("s2")), what);
  }
  // the open with an inherited readOnly opened read-only
  using pool = openBlockPool(at("blk2"), new ReadOnly());
  assert.ok(pool.info().readOnly);
  assert.throws(() => pool.write(0, new Uint8Array(512)), /read-only/);
});
