// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The options objects and first errors of every public factory, from a
// review of the API: each test failed before the fix it names.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { BlockPool } from "../blk/mod.ts";
import { LogStream, PmemLog } from "../stream/mod.ts";
import { ObjectPool, PersistentMap } from "../obj/mod.ts";
import { FileLock, mapFile, Mapping, Source } from "../pmem2/mod.ts";
import { CpuMover, DsaMover, ThreadMover } from "../mover/mod.ts";
import { PmemError } from "../errors/mod.ts";
import { cli } from "./cli_run.ts";
import { main } from "../cli/main.ts";
import { assert, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;

/** Each factory, called on `path` with `options`. */
const FACTORIES: Record<string, (path: string, options: never) => unknown> = {
  "BlockPool.create": (p, o) => BlockPool.create(p, o),
  "BlockPool.open": (p, o) => BlockPool.open(p, o),
  "PmemLog.create": (p, o) => PmemLog.create(p, o),
  "PmemLog.open": (p, o) => PmemLog.open(p, o),
  "LogStream.create": (p, o) => LogStream.create(p, o),
  "LogStream.open": (p, o) => LogStream.open(p, o),
  "ObjectPool.create": (p, o) => ObjectPool.create(p, o),
  "ObjectPool.open": (p, o) => ObjectPool.open(p, o),
  "Source.open": (p, o) => Source.open(p, o),
  mapFile: (p, o) => mapFile(p, o),
  "Mapping.map": (_, o) => {
    using source = Source.fromAnon(4096);
    return Mapping.map(source, o);
  },
  ThreadMover: (_, o) => new ThreadMover(o),
  "DsaMover.open": (_, o) => DsaMover.open(o),
  "DsaMover.openOrFallback": (_, o) => DsaMover.openOrFallback(o).mover,
  "DsaMover.available": (_, o) => DsaMover.available(o),
  "DsaMover.devices": (_, o) => DsaMover.devices(o),
};

/** Close what a factory returned, if it can be. */
function closeIt(made: unknown): void {
  (made as { close?: () => void } | undefined)?.close?.();
}

// Bug: every factory ignored an option it did not know. A misspelled or
// misremembered one went unnoticed: BlockPool.create(path, { size, ... })
// (libpmemblk calls it poolSize; LogStream and ObjectPool call it size)
// failed with "create: cannot open '...': No such file or directory",
// naming neither option; LogStream.create(path, { size, blocksize })
// made a stream of the default block size; new ThreadMover({ thread: 2 })
// started the default threads; Source.open(path, { sise }) said the file
// did not exist. Each factory's options pass through one helper
// (readOptions) that refuses a key it does not know with a TypeError
// naming it and the option meant, before any file is touched.
test("every factory refuses an unknown option with a TypeError naming it and the option meant, before touching a file", () => {
  // [factory, options, the unknown key, the option meant]
  const cases: [string, object, string, string][] = [
    [
      "BlockPool.create",
      { size: 64 * MiB, blockSize: 512 },
      "size",
      "poolSize",
    ],
    [
      "BlockPool.create",
      { poolSize: 64 * MiB, blocksize: 512 },
      "blocksize",
      "blockSize",
    ],
    ["BlockPool.open", { readonly: true }, "readonly", "readOnly"],
    ["PmemLog.create", { size: 4 * MiB }, "size", "poolSize"],
    ["PmemLog.open", { mvoer: undefined }, "mvoer", "mover"],
    ["LogStream.create", { poolSize: 4 * MiB }, "poolSize", "size"],
    [
      "LogStream.create",
      { size: 4 * MiB, blocksize: 512 },
      "blocksize",
      "blockSize",
    ],
    ["LogStream.open", { poolSize: 4 * MiB }, "poolSize", "size"],
    [
      "ObjectPool.create",
      { poolSize: 16 * MiB, layout: "x" },
      "poolSize",
      "size",
    ],
    [
      "ObjectPool.create",
      { size: 16 * MiB, layout: "x", logsize: 1 },
      "logsize",
      "logSize",
    ],
    ["ObjectPool.open", { Layout: "x" }, "Layout", "layout"],
    ["Source.open", { sise: 4096 }, "sise", "size"],
    [
      "mapFile",
      { size: 4096, granularty: "page" },
      "granularty",
      "granularity",
    ],
    ["Mapping.map", { lenght: 4096 }, "lenght", "length"],
    ["ThreadMover", { thread: 2 }, "thread", "threads"],
    ["DsaMover.open", { WQ: "wq0.0" }, "WQ", "wq"],
    ["DsaMover.openOrFallback", { fallbak: {} }, "fallbak", "fallback"],
    [
      "DsaMover.openOrFallback",
      { fallback: { thread: 2 } },
      "thread",
      "threads",
    ],
    ["DsaMover.available", { devcie: "dsa0" }, "devcie", "device"],
    ["DsaMover.devices", { libary: "x" }, "libary", "library"],
  ];
  for (const [name, options, bad, meant] of cases) {
    const path = tempPath();
    const label = `${name}(${JSON.stringify(options)})`;
    let made: unknown;
    assert.throws(
      () => (made = FACTORIES[name](path, options as never)),
      (e) =>
        e instanceof TypeError &&
        e.message.includes(`unknown option '${bad}'`) &&
        e.message.includes(`did you mean '${meant}'?`),
      label,
    );
    closeIt(made);
    assert.equal(existsSync(path), false, `${label} left a file`);
  }
  // a key too far from any option lists them
  assert.throws(
    () => BlockPool.create(tempPath(), { blockSize: 512, foo: 1 } as never),
    {
      name: "TypeError",
      message:
        "Cannot create pool: unknown option 'foo' (the options are 'blockSize', 'poolSize', 'mode', 'mover')",
    },
  );
});

test("an open with an unknown option leaves an existing file's bytes as they were", () => {
  const path = tempPath();
  BlockPool.create(path, { blockSize: 512, poolSize: 32 * MiB }).close();
  const before = readFileSync(path);
  for (
    const options of [{ readonly: true }, {
      blockSize: 512,
      mover: undefined,
      x: 1,
    }]
  ) {
    assert.throws(() => BlockPool.open(path, options as never), TypeError);
  }
  assert.deepEqual(readFileSync(path), before);
  const plain = tempPath();
  writeFileSync(plain, new Uint8Array(8192).fill(7));
  assert.throws(
    () => Source.open(plain, { size: 16384, sise: 1 } as never),
    TypeError,
  );
  assert.equal(readFileSync(plain).length, 8192);
});

// Bug: some factories read an option more than once, checking one read
// and using another: a getter (or a Proxy) could hand a mover that
// passed the check, then one that did not (BlockPool.create and
// LogStream.create/open read `mover` twice; BlockPool.open read
// `readOnly` and `blockSize` three times; ObjectPool.create `logSize`
// twice; DsaMover.open `wq`, `device` and `library` two or three
// times). The one helper reads each option once into a plain object.
test("every factory reads each option once", () => {
  using mover = new ThreadMover({ threads: 1 });
  const setUp: Record<string, (path: string) => void> = {
    "BlockPool.open": (p) =>
      BlockPool.create(p, { blockSize: 512, poolSize: 32 * MiB }).close(),
    "PmemLog.open": (p) => PmemLog.create(p, { poolSize: 4 * MiB }).close(),
    "LogStream.open": (p) => LogStream.create(p, { size: 4 * MiB }).close(),
    "ObjectPool.open": (p) =>
      ObjectPool.create(p, { size: 16 * MiB, layout: "x" }).close(),
  };
  const cases: [string, Record<string, unknown>][] = [
    ["BlockPool.create", {
      blockSize: 512,
      poolSize: 32 * MiB,
      mode: 0o600,
      mover,
    }],
    ["BlockPool.open", { blockSize: 512, readOnly: false, mover }],
    ["PmemLog.create", { poolSize: 4 * MiB, mode: 0o600, mover }],
    ["PmemLog.open", { mover }],
    ["LogStream.create", {
      size: 4 * MiB,
      blockSize: 4096,
      regionSlots: 8,
      maxInFlight: 16,
      mode: 0o600,
      mover,
    }],
    ["LogStream.open", { size: 4 * MiB, blockSize: 4096, mover }],
    ["ObjectPool.create", {
      size: 16 * MiB,
      layout: "x",
      logSize: MiB,
      mode: 0o600,
      mover,
    }],
    ["ObjectPool.open", { layout: "x", mover }],
    ["Source.open", {
      size: 4096,
      create: true,
      exclusive: true,
      sparse: false,
      readOnly: false,
      mode: 0o600,
    }],
    ["mapFile", {
      size: 4096,
      sparse: false,
      mode: 0o600,
      granularity: "page",
      offset: 0,
      length: 0,
      sharing: "shared",
      protection: "read-write",
      mover,
    }],
    ["Mapping.map", { granularity: "page", length: 4096, mover }],
    ["ThreadMover", { threads: 1, queueSize: 4, records: 8, batchLists: 2 }],
    ["DsaMover.open", {
      wq: "wq0.0",
      device: "dsa0",
      inlineThreshold: 1,
      records: 8,
      writeOnly: false,
      library: "libaccel-config.so.1",
    }],
    ["DsaMover.openOrFallback", {
      wq: "wq0.0",
      library: "libaccel-config.so.1",
      fallback: { threads: 1 },
    }],
  ];
  for (const [name, options] of cases) {
    const path = tempPath();
    setUp[name]?.(path);
    const reads: Record<string, number> = {};
    const counted = new Proxy(options, {
      get(target, key, receiver) {
        if (typeof key === "string") reads[key] = (reads[key] ?? 0) + 1;
        return Reflect.get(target, key, receiver);
      },
    });
    try {
      closeIt(FACTORIES[name](path, counted as never));
    } catch (e) {
      // no DSA here: what matters is what was read before saying so
      if (!name.startsWith("DsaMover")) throw e;
    }
    const twice = Object.entries(reads).filter(([, n]) => n > 1);
    assert.deepEqual(twice, [], `${name} read ${JSON.stringify(reads)}`);
  }
});

// Bug: a block pool's or libpmemlog log's create without `poolSize` (0,
// the default, makes the pool in an existing file, at its size) on a
// path with no file said only "create: cannot open '...': No such file
// or directory", not that the size was left out. The message now says
// what to pass; the error stays the system's (PmemError -2, ENOENT).
test("a create without poolSize of a file that does not exist says to pass poolSize", () => {
  const cases: [string, (path: string) => unknown, RegExp][] = [
    [
      "BlockPool.create",
      (p) => BlockPool.create(p, { blockSize: 512 }),
      /No such file or directory; without poolSize the file must exist \(the pool takes its size\): pass poolSize \(at least 16785408\) to create it$/,
    ],
    [
      "PmemLog.create",
      (p) => PmemLog.create(p),
      /No such file or directory; without poolSize the file must exist \(the log takes its size\): pass poolSize \(at least 2097152\) to create it$/,
    ],
  ];
  for (const [name, create, message] of cases) {
    const path = tempPath();
    assert.throws(
      () => create(path),
      (e) =>
        e instanceof PmemError && e.code === -2 && e.op === "create" &&
        message.test(e.message),
      name,
    );
    assert.equal(existsSync(path), false, name);
  }
  // a directory that does not exist is the same mistake or another: the
  // system's words, and the hint, name the path
  assert.throws(
    () => BlockPool.create(`${tempPath()}/no/pool`, { blockSize: 512 }),
    /No such file or directory; without poolSize/,
  );
  // with poolSize given, a missing directory is only the system's words
  for (
    const create of [
      (p: string) =>
        BlockPool.create(p, { blockSize: 512, poolSize: 32 * MiB }),
      (p: string) => PmemLog.create(p, { poolSize: 4 * MiB }),
    ]
  ) {
    assert.throws(
      () => create(`${tempPath()}/no/pool`),
      (e) =>
        e instanceof PmemError && e.code === -2 &&
        /No such file or directory$/.test(e.message),
    );
  }
});

// Bug: Source.open and mapFile tested their flags for truthiness, so
// `readOnly: "no"` opened read-only (then refused to extend the file),
// `create: "false"` and `exclusive: "no"` created the file, and
// `sparse: "no"` made a sparse one; DsaMover.open took `writeOnly: "no"`
// as write-only. A flag must be a boolean (or left out), as
// BlockPool.open's readOnly already had to be.
test("a flag option that is no boolean is a TypeError, before any file is made", () => {
  const cases: [string, object, string][] = [
    ["Source.open", { size: 4096, readOnly: "no" }, "readOnly"],
    ["Source.open", { create: "false" }, "create"],
    ["Source.open", { size: 4096, exclusive: "no" }, "exclusive"],
    ["Source.open", { size: 4096, sparse: 0 }, "sparse"],
    ["mapFile", { size: 4096, sparse: "no" }, "sparse"],
    ["DsaMover.open", { writeOnly: "no" }, "writeOnly"],
    ["DsaMover.openOrFallback", { writeOnly: 1 }, "writeOnly"],
    ["BlockPool.open", { readOnly: "yes" }, "readOnly"],
  ];
  for (const [name, options, flag] of cases) {
    const path = tempPath();
    const label = `${name}(${JSON.stringify(options)})`;
    let made: unknown;
    assert.throws(
      () => (made = FACTORIES[name](path, options as never)),
      (e) =>
        e instanceof TypeError &&
        e.message.endsWith(`: ${flag} must be a boolean`),
      label,
    );
    closeIt(made);
    assert.equal(existsSync(path), false, `${label} left a file`);
  }
});

// Bug: the CLI's unknown option was node:util parseArgs's message,
// "Unknown option '--sise'. To specify a positional argument starting
// with a '-', place it at the end of the command after '--', as in '--
// "--sise"", which suggested a positional and not the option meant. It
// is now the library's policy: "unknown option '--sise' (did you mean
// '--size'?)", a usage error (exit 2), and no file made.
test("CLI: an unknown option names the option meant", () => {
  const cases: [string[], string][] = [
    [["--sise", "64M"], "'--sise' (did you mean '--size'?)"],
    [
      ["--size", "64M", "--pool-size", "64M"],
      "'--pool-size' (did you mean '--size'?)",
    ],
    [
      ["--size", "64M", "--blocksize=512"],
      "'--blocksize' (did you mean '--block-size'?)",
    ],
    [["--size", "64M", "-x"], "'-x'"],
  ];
  for (const [args, named] of cases) {
    const path = tempPath();
    const r = cli("create", "blk", path, ...args);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(
      r.stderr.split("\n")[0],
      `asyncpmem create: unknown option ${named}`,
    );
    assert.equal(existsSync(path), false);
  }
});

// Bug: a store's create checked `mode` to be a non-negative integer and
// left the rest to Source.open, whose RangeError for bits above 0o7777
// named another call: BlockPool.create(path, { ..., mode: 0o17777 })
// said "Cannot open source: mode must be at most 0o7777". One check
// (checkMode) serves Source.open and every create, in its own words.
test("a mode above 0o7777 is refused in the words of the create called", () => {
  const cases: [string, (path: string, mode: number) => unknown, string][] = [
    [
      "pool",
      (p, mode) =>
        BlockPool.create(p, { blockSize: 512, poolSize: 32 * MiB, mode }),
      "create pool",
    ],
    [
      "log",
      (p, mode) => PmemLog.create(p, { poolSize: 4 * MiB, mode }),
      "create log",
    ],
    [
      "stream",
      (p, mode) => LogStream.create(p, { size: 4 * MiB, mode }),
      "create stream",
    ],
    [
      "obj",
      (p, mode) => ObjectPool.create(p, { size: 16 * MiB, layout: "x", mode }),
      "create pool",
    ],
    ["mapFile", (p, mode) => mapFile(p, { size: 4096, mode }), "open source"],
  ];
  for (const [name, create, what] of cases) {
    for (const mode of [0o17777, 2 ** 32 + 0o600]) {
      const path = tempPath();
      assert.throws(() => create(path, mode), {
        name: "RangeError",
        message: `Cannot ${what}: mode must be at most 0o7777, got 0o${
          mode.toString(8)
        }`,
      }, name);
      assert.equal(existsSync(path), false, name);
    }
    assert.throws(() => create(tempPath(), -1), RangeError, name);
    assert.throws(() => create(tempPath(), "644" as never), TypeError, name);
  }
});

// Bug: a required option left out (or undefined) was described as a
// value of the wrong type: "blockSize must be a number, got undefined",
// "layout must be a string". It is now "the blockSize option is
// required", undefined and absent alike, before any file is touched.
test("a required option left out or undefined is named as required", () => {
  const cases: [string, object, string, string][] = [
    ["BlockPool.create", { poolSize: 32 * MiB }, "blockSize", "create pool"],
    ["LogStream.create", { blockSize: 4096 }, "size", "create stream"],
    ["ObjectPool.create", { layout: "x" }, "size", "create pool"],
    ["ObjectPool.create", { size: 16 * MiB }, "layout", "create pool"],
    ["ObjectPool.open", {}, "layout", "open pool"],
  ];
  for (const [name, options, option, what] of cases) {
    for (const given of [options, { ...options, [option]: undefined }]) {
      const path = tempPath();
      assert.throws(() => FACTORIES[name](path, given as never), {
        name: "TypeError",
        message: `Cannot ${what}: the ${option} option is required`,
      }, `${name}(${JSON.stringify(given)})`);
      assert.equal(existsSync(path), false, name);
    }
  }
});

// Bug: Source.open and mapFile took an empty path to the system, which
// said "open: cannot open '': No such file or directory" (a PmemError),
// where the stores refuse it as a TypeError; a path with a NUL byte was
// refused by the FFI layer as "Cannot pass string: it contains a NUL
// character", naming no call. Both are TypeErrors naming the call now.
test("an empty path, or one with a NUL byte, is a TypeError naming the call", () => {
  const cases: [string, (path: string) => unknown, string][] = [
    ["Source.open", (p) => Source.open(p, { size: 4096 }), "open source"],
    ["mapFile", (p) => mapFile(p, { size: 4096 }), "map file"],
    [
      "BlockPool.create",
      (p) => BlockPool.create(p, { blockSize: 512, poolSize: 32 * MiB }),
      "create pool",
    ],
    [
      "PmemLog.create",
      (p) => PmemLog.create(p, { poolSize: 4 * MiB }),
      "create log",
    ],
    ["LogStream.open", (p) => LogStream.open(p), "open stream"],
    [
      "ObjectPool.create",
      (p) => ObjectPool.create(p, { size: 16 * MiB, layout: "x" }),
      "create pool",
    ],
  ];
  for (const [name, call, what] of cases) {
    assert.throws(() => call(""), {
      name: "TypeError",
      message: `Cannot ${what}: path must be a non-empty string`,
    }, name);
    const path = tempPath();
    assert.throws(() => call(`${path}\0.x`), {
      name: "TypeError",
      message: `Cannot ${what}: path must not contain a NUL character`,
    }, name);
    assert.equal(existsSync(path), false, name);
  }
});

// Bug: a mover option was checked for one method: the stores asked for
// `batch` and Mapping for `memcpy`, and each calls others. A mover with
// only `batch` made BlockPool.create fail in Mapping.map's words
// ("Cannot map: mover must implement Vdm"), LogStream's appendAsync fail
// with "Cannot read properties of undefined (reading 'done')"; a mapping
// took one with only `memcpy` and its memsetAsync threw
// "host.mover.supports is not a function". Every factory checks each
// method of Vdm, and names the one missing, before a file is made.
test("a mover option missing a method of Vdm is refused by every factory, naming the method", () => {
  using whole = new ThreadMover({ threads: 1 });
  const methods = ["supports", "memcpy", "memmove", "memset", "flush", "batch"];
  const creates: [string, (path: string, mover: unknown) => unknown, string][] =
    [
      [
        "BlockPool.create",
        (p, mover) =>
          BlockPool.create(
            p,
            { blockSize: 512, poolSize: 32 * MiB, mover } as never,
          ),
        "create pool",
      ],
      [
        "PmemLog.create",
        (p, mover) => PmemLog.create(p, { poolSize: 4 * MiB, mover } as never),
        "create log",
      ],
      [
        "LogStream.create",
        (p, mover) => LogStream.create(p, { size: 4 * MiB, mover } as never),
        "create stream",
      ],
      [
        "ObjectPool.create",
        (p, mover) =>
          ObjectPool.create(p, { size: 16 * MiB, layout: "x", mover } as never),
        "create pool",
      ],
      [
        "mapFile",
        (p, mover) => mapFile(p, { size: 4096, mover } as never),
        "map",
      ],
    ];
  for (const missing of methods) {
    // the mover's own methods, less one
    const partial: Record<string, unknown> = {};
    for (const m of methods) {
      if (m !== missing) {
        partial[m] = (whole as unknown as Record<string, () => unknown>)[m]
          .bind(whole);
      }
    }
    for (const [name, create, what] of creates) {
      const path = tempPath();
      assert.throws(() => closeIt(create(path, partial)), {
        name: "TypeError",
        message:
          `Cannot ${what}: mover must implement Vdm (it has no ${missing} method)`,
      }, `${name} without ${missing}`);
      assert.equal(existsSync(path), false, name);
    }
  }
});

// Bug: the CLI passed the library's refusal of a command-line value on
// in the library's option names, which the command line does not have:
// `create blk --size 1M` said "poolSize must be at least 16785408",
// `create stream --region-slots 0` "regionSlots must be in [1, 65536]".
// The message names the flag given.
test("CLI: a value the library refuses is named by its flag", () => {
  const cases: [string[], string][] = [
    [
      ["blk", "--size", "1M", "--block-size", "512"],
      "--size must be at least 16785408",
    ],
    [
      ["blk", "--size", "64M", "--block-size", "0"],
      "--block-size must be an integer",
    ],
    [["log", "--size", "1M"], "--size must be at least 2097152"],
    [
      ["stream", "--size", "1M", "--region-slots", "0"],
      "--region-slots must be in",
    ],
    [
      ["stream", "--size", "1M", "--block-size", "100"],
      "--block-size must be a power of two",
    ],
    [
      ["obj", "--size", "16M", "--layout", "x", "--log-size", "5"],
      "--log-size must be a multiple of 4096",
    ],
  ];
  for (const [[kind, ...args], said] of cases) {
    const path = tempPath();
    const r = cli("create", kind, path, ...args);
    assert.equal(r.status, 2, r.stderr);
    assert.match(
      r.stderr.split("\n")[0],
      new RegExp(`^asyncpmem create: Cannot create \\w+: ${said}`),
    );
    assert.equal(existsSync(path), false);
  }
});

// Bug: main() is exported for programs, and took what it was given:
// main(undefined) threw the engine's "argv is not iterable", and
// main("create") ran the command 'c'. It is a TypeError naming argv.
test("CLI: main() refuses an argv that is no array of strings", async () => {
  for (const argv of [undefined, "create", ["create", 5], null]) {
    await assert.rejects(() => main(argv as never), {
      name: "TypeError",
      message: "Cannot run asyncpmem: argv must be an array of strings",
    }, JSON.stringify(argv));
  }
});

// Bug: PersistentMap.open(pool, name) with something that is no pool
// said "Cannot use the pool: it must be an ObjectPool", naming neither
// the call nor the argument, where its name's errors say "Cannot open a
// map: name must be a string".
test("PersistentMap.open() with no ObjectPool names the call and the argument", () => {
  for (const pool of [null, undefined, {}, "pool"]) {
    assert.throws(() => PersistentMap.open(pool as never, "m"), {
      name: "TypeError",
      message: "Cannot open a map: pool must be an ObjectPool",
    });
  }
});

// Bug: FileLock.acquire("") went to the system ("lock: cannot open '':
// No such file or directory", a PmemError) and a path with a NUL was the
// FFI layer's "Cannot pass string: it contains a NUL character", as
// Source.open's were; it checks its path as every factory does.
test("FileLock.acquire() refuses an empty path or one with a NUL as a TypeError", () => {
  assert.throws(() => FileLock.acquire(""), {
    name: "TypeError",
    message: "Cannot lock file: path must be a non-empty string",
  });
  const path = tempPath();
  assert.throws(() => FileLock.acquire(`${path}\0.x`), {
    name: "TypeError",
    message: "Cannot lock file: path must not contain a NUL character",
  });
  assert.throws(() => FileLock.acquire(5 as never), {
    name: "TypeError",
    message: "Cannot lock file: path must be a non-empty string",
  });
  assert.equal(existsSync(path), false);
});

// Bug: a path with a lone surrogate (which UTF-8 cannot hold: it would
// name another file, U+FFFD in its place) was refused by the FFI layer
// as "Cannot pass string: it contains a lone surrogate", naming no call;
// the factories' path check names the call, as for a NUL.
test("a path with a lone surrogate is a TypeError naming the call", () => {
  const cases: [(path: string) => unknown, string][] = [
    [(p) => Source.open(p, { size: 4096 }), "open source"],
    [(p) => mapFile(p, { size: 4096 }), "map file"],
    [
      (p) => BlockPool.create(p, { blockSize: 512, poolSize: 32 * MiB }),
      "create pool",
    ],
    [(p) => LogStream.create(p, { size: 4 * MiB }), "create stream"],
    [(p) => FileLock.acquire(p), "lock file"],
  ];
  for (const [call, what] of cases) {
    const path = tempPath();
    assert.throws(() => call(`${path}\uD800`), {
      name: "TypeError",
      message:
        `Cannot ${what}: path must not contain a lone surrogate (not valid UTF-16)`,
    }, what);
    assert.equal(existsSync(path), false, what);
  }
});

// (Found in this review's own helper:) an unknown key of a megabyte, a
// data object passed as the options, was echoed whole into the message,
// after a distance computed against every option name.
test("an unknown option key of any length is cut short in the message", () => {
  const key = "x".repeat(1 << 20);
  assert.throws(
    () => BlockPool.create(tempPath(), { blockSize: 512, [key]: 1 } as never),
    (e) =>
      e instanceof TypeError && e.message.length < 200 &&
      e.message.includes(`unknown option '${"x".repeat(61)}...'`),
  );
});

// Bug: CpuMover's constructor takes no options and ignored any it was
// given: new CpuMover({ threads: 4 }) made the in-thread mover where a
// ThreadMover was meant, silently. Its argument goes through the same
// helper as every factory's options, and takes none.
test("new CpuMover() refuses options it does not take", () => {
  // (its signature takes none: JavaScript callers can pass some)
  const Cpu = CpuMover as unknown as new (options?: unknown) => CpuMover;
  assert.throws(() => new Cpu({ threads: 4 }), {
    name: "TypeError",
    message:
      "Cannot create CpuMover: unknown option 'threads' (it takes no options)",
  });
  assert.throws(() => new Cpu(4), TypeError);
  new Cpu().close();
  new Cpu(undefined).close();
  new Cpu({}).close();
});

// Bug: DsaMover.openOrFallback checked its `fallback` options only when
// it fell back: where a DSA work queue opened, { fallback: { threads: 0 } }
// or { fallback: { thread: 2 } } went unnoticed, until a machine without
// DSA ran the same code and threw. They are checked before DSA is tried.
test("DsaMover.openOrFallback() checks its fallback options where DSA opens too", () => {
  const open = DsaMover.open;
  const sentinel = { close() {} } as unknown as DsaMover;
  DsaMover.open = () => sentinel; // a machine where DSA opens
  try {
    assert.equal(
      DsaMover.openOrFallback({ fallback: { threads: 1 } }).mover,
      sentinel,
    );
    assert.throws(
      () => DsaMover.openOrFallback({ fallback: { threads: 0 } }),
      {
        name: "RangeError",
        message: "Cannot create ThreadMover: threads must be 1..64",
      },
    );
    assert.throws(
      () => DsaMover.openOrFallback({ fallback: { thread: 2 } as never }),
      /unknown option 'thread' \(did you mean 'threads'\?\)/,
    );
    assert.throws(
      () => DsaMover.openOrFallback({ fallback: null as never }),
      /options must be an object/,
    );
  } finally {
    DsaMover.open = open;
  }
});

test("mover: null is the default mover in every store, as in Mapping.map and mapFile", async () => {
  // Mapping.map and mapFile took null for "no mover" (the default one);
  // the stores refused it ("mover must implement Vdm"): one rule now
  {
    using pool = BlockPool.create(tempPath(), {
      blockSize: 512,
      poolSize: 32 << 20,
      mover: null as never,
    });
    await pool.writeAsync(1, new Uint8Array(512).fill(1));
    assert.equal(pool.read(1)[0], 1);
  }
  {
    using s = LogStream.create(tempPath(), {
      size: 4 << 20,
      mover: null as never,
    });
    const r = s.allocateRegion(1 << 20);
    await s.appendAsync(r, Uint8Array.of(7));
    assert.equal([...s.entries(r)][0].data[0], 7);
  }
  {
    using log = PmemLog.create(tempPath(), {
      poolSize: 8 << 20,
      mover: null as never,
    });
    await log.appendAsync(Uint8Array.of(9));
    assert.equal(log.tell(), 1);
  }
  {
    using pool = ObjectPool.create(tempPath(), {
      size: 8 << 20,
      layout: "n",
      mover: null as never,
    });
    const root = pool.root(8);
    await pool.txAsync((tx) => tx.setU64(root, 0, 5));
    assert.equal(pool.getU64(root, 0), 5);
  }
});

test("follow() and a pool's check()/info() refuse an unknown option naming the one meant, and read each option once", () => {
  // method options were not under the factories' policy: follow(r,
  // { form: 5 }) followed from the start, check({ onProgres }) ran
  // without progress, both silently
  using s = LogStream.create(tempPath(), { size: 4 << 20 });
  const r = s.allocateRegion(1 << 20);
  assert.throws(
    () => s.follow(r, { form: 5 } as never),
    (e: unknown) =>
      e instanceof TypeError && /unknown option 'form'/.test(e.message) &&
      /'from'/.test(e.message),
  );
  let reads = 0;
  const once = {
    get from() {
      reads++;
      return reads === 1 ? 0 : -1;
    },
  };
  const it = s.follow(r, once as never);
  assert.equal(reads, 1);
  void it.return?.();
  using pool = BlockPool.create(tempPath(), {
    blockSize: 512,
    poolSize: 32 << 20,
  });
  for (
    const call of [
      () => pool.check({ onProgres: () => {} } as never),
      () => pool.info({ onProgres: () => {} } as never),
    ]
  ) {
    assert.throws(
      call,
      (e: unknown) =>
        e instanceof TypeError &&
        /unknown option 'onProgres'/.test(e.message) &&
        /'onProgress'/.test(e.message),
    );
  }
});
