// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The CLI as a user meets it, a third pass: pools the user may only read,
// and what the earlier passes left.
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
} from "node:fs";
import { totalmem } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { BlockPool } from "../blk/mod.ts";
import { storeChecksum } from "../pmdk/checksum.ts";
import { ObjectPool, PersistentMap } from "../obj/mod.ts";
import { LogStream, PmemLog } from "../stream/mod.ts";
import { Mapping, Source } from "../pmem2/mod.ts";
import { CpuMover, ThreadMover } from "../mover/mod.ts";
import {
  createBlockPool,
  deviceStats,
  type FaultOptions,
  injectFault,
  openLogStream,
} from "../testing/mod.ts";
import { PmemError } from "../errors/mod.ts";
import { cli, cliArgv, cliBatch, cliBatchWith, type Run } from "./cli_run.ts";
import { CrashTracer } from "./crash/tracer.ts";
import {
  assert,
  patch,
  peek,
  ROOT,
  runScript,
  tempDir,
  test,
} from "./_harness.ts";

const MiB = 2 ** 20;

/** Whether this process runs as root (who may write any file). */
const ROOT_USER = process.getuid?.() === 0;
/** `setpriv`'s arguments that run a command as nobody. */
const AS_NOBODY = ["--reuid=65534", "--regid=65534", "--clear-groups"];

/**
 * Why the CLI cannot run as a user who may only read the pools, or
 * false: as root, nobody must be able to run this runtime and read the
 * checkout (not so in one under /root).
 */
function readerMissing(): string | false {
  if (!ROOT_USER) return false;
  const asNobody = (...cmd: string[]) =>
    spawnSync("setpriv", [...AS_NOBODY, ...cmd]).status === 0;
  if (spawnSync("setpriv", ["--version"]).status !== 0) {
    return "needs setpriv to run the CLI as nobody";
  }
  if (
    !asNobody(process.execPath, "--version") ||
    !asNobody("test", "-r", join(ROOT, "cli", "main.ts"))
  ) {
    return "nobody cannot run this runtime or read the checkout";
  }
  return false;
}

/**
 * Run each of `commands` as `asyncpmem ...argv`, in one subprocess (see
 * cliBatch), as a user who may read the pool files but not write them:
 * this user after a chmod to 0444, or, as root (who writes any file),
 * nobody through setpriv. (One subprocess: nobody's runtime has no
 * compiled modules cached, and compiled the library for each command.)
 */
function cliAsReader(home: string, ...commands: string[][]): Run[] {
  return cliBatchWith({
    prefix: ROOT_USER ? ["setpriv", ...AS_NOBODY] : [],
    env: { HOME: home, DENO_DIR: undefined },
  }, ...commands);
}

// Bug: `asyncpmem info` and `check` (without --repair) of a libpmemlog
// log, a log stream or an object pool the user may only read failed with
// "cannot open ...: Permission denied" (exit 3), and so did `dump` of a
// libpmemlog log, though they describe a pool "without changing it" and
// a block pool's info and check work on such a file. Cause: they opened
// the file for writing before mapping it privately (the block pool opens
// it read-only).
test(
  "CLI: info, check and dump read pools the user may only read, of every kind",
  () => {
    const dir = tempDir();
    chmodSync(dir, 0o755); // nobody passes through
    const home = join(dir, "home");
    mkdirSync(home);
    chmodSync(home, 0o777);
    const blk = join(dir, "blk");
    {
      using p = BlockPool.create(blk, { blockSize: 512, poolSize: 17 * MiB });
      p.write(0, new Uint8Array(512).fill(1));
    }
    const log = join(dir, "log");
    {
      using l = PmemLog.create(log, { poolSize: 2 * MiB });
      l.append(new Uint8Array(10).fill(7));
    }
    const stream = join(dir, "stream");
    {
      using s = LogStream.create(stream, { size: MiB });
      s.append(s.allocateRegion(4096), new Uint8Array(10));
    }
    const obj = join(dir, "obj");
    {
      using o = ObjectPool.create(obj, { size: 8 * MiB, layout: "L" });
      using m = PersistentMap.open(o, "m");
      m.set("k", "v");
    }
    const before = new Map<string, Buffer>();
    const mtimes = new Map<string, number>();
    for (const f of [blk, log, stream, obj]) {
      chmodSync(f, 0o444);
      before.set(f, readFileSync(f));
      mtimes.set(f, statSync(f).mtimeMs);
    }
    const commands = [
      ["info", "--json", blk],
      ["check", "--json", blk],
      ["info", "--json", log],
      ["check", "--json", log],
      ["dump", "--json", log],
      ["info", "--json", stream],
      ["check", "--json", stream],
      // (a later bug: dump of a stream opened it for writing, as its
      // recovery and clean close write)
      ["dump", "--json", stream, "--region", "0"],
      ["info", "--json", obj],
      ["check", "--json", obj],
    ];
    const runs = cliAsReader(home, ...commands);
    commands.forEach((args, i) => {
      const r = runs[i];
      const what = args.join(" ");
      assert.equal(r.status, 0, `${what}: ${r.stderr}`);
      const report = JSON.parse(r.stdout);
      assert.equal(report.path, args[2], what);
      if (args[0] === "check") assert.equal(report.consistent, true, what);
    });
    for (const [f, bytes] of before) {
      assert.ok(readFileSync(f).equals(bytes), `${f} changed`);
      assert.equal(statSync(f).mtimeMs, mtimes.get(f), `${f} written`);
    }
  },
  {
    timeout: 120_000,
    skip: readerMissing(),
  },
);

// Bug: `asyncpmem dump --json` of a libpmemlog log holding 400 MiB failed
// on Deno with "asyncpmem dump: Invalid string length" and the usage line
// (exit 2, a usage error), and took 3 GiB on Bun: the whole document,
// its data in base64 (4/3 of the log), was built as one string, longer
// than V8's longest. The document is now written a piece at a time.
test(
  "CLI: dump --json of a log larger than a string can hold is one valid document",
  () => {
    const dir = tempDir();
    const log = join(dir, "log");
    const size = 400 * MiB;
    {
      using l = PmemLog.create(log, { poolSize: size + MiB });
      const chunk = new Uint8Array(16 * MiB).fill(65); // "AAA" is "QUFB"
      for (let at = 0; at < size; at += chunk.length) l.append(chunk);
    }
    const into = join(dir, "dump.json");
    const [cmd, ...rest] = cliArgv("dump", "--json", log);
    const fd = openSync(into, "w");
    let r;
    try {
      r = spawnSync(cmd, rest, {
        stdio: ["ignore", fd, "pipe"],
        encoding: "utf8",
        env: { ...process.env, NO_COLOR: "1" },
        timeout: 120_000,
      });
    } finally {
      closeSync(fd);
    }
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, "");
    const [head, tail] = JSON.stringify(
      { kind: "log", path: log, size, data: "" },
      null,
      2,
    ).split('""');
    // the data in base64: "QUFB" for every 3 bytes, the last byte "QQ=="
    const data = Math.ceil(size / 3) * 4;
    const total = head.length + 1 + data + 1 + tail.length + 1;
    assert.equal(statSync(into).size, total);
    const text = (at: number, n: number) =>
      new TextDecoder().decode(peek(into, at, n));
    assert.equal(text(0, head.length + 9), `${head}"QUFBQUFB`);
    assert.equal(
      text(total - tail.length - 10, tail.length + 10),
      `QUFBQQ=="${tail}\n`,
    );
  },
  { timeout: 240_000 },
);

/** The kernel's overcommit policy (2: strict, where no mapping escapes it). */
function overcommit(): string {
  try {
    return readFileSync("/proc/sys/vm/overcommit_memory", "utf8").trim();
  } catch {
    return "unknown";
  }
}

// Bug: `asyncpmem info`, `check` and `dump` of a block pool larger than
// the machine's memory failed with "map: pmem2_map_new: mmap: Cannot
// allocate memory" (exit 3), as did BlockPool.open(path, { readOnly:
// true }) and every private Mapping of such a file, while `zero` (a
// shared mapping) worked. Cause: a private, writable mapping is charged
// in full against the memory the kernel will commit, and one larger than
// memory and swap is refused. A private mapping of a regular file is now
// made with MAP_NORESERVE: only the pages it writes take memory.
test(
  "CLI: info, check and dump a block pool larger than the machine's memory",
  () => {
    const path = join(tempDir(), "big");
    // sparse: only the pool's metadata takes memory
    const poolSize = Math.ceil(2 * totalmem() / 2 ** 30) * 2 ** 30;
    {
      using pool = createBlockPool(path, {
        blockSize: 4096,
        poolSize,
        sparse: true,
      });
      pool.write(5, new Uint8Array(4096).fill(9));
    }
    {
      using source = Source.open(path, { readOnly: true });
      using map = Mapping.map(source, { sharing: "private" });
      assert.equal(map.size, poolSize);
    }
    const [info, check, dump] = cliBatch(
      ["info", "--json", path],
      ["check", "--json", path],
      ["dump", "--raw", "--lba", "5", path],
    );
    assert.equal(info.status, 0, info.stderr);
    assert.equal(JSON.parse(info.stdout).poolSize, poolSize);
    assert.equal(check.status, 0, check.stderr);
    assert.equal(JSON.parse(check.stdout).consistent, true);
    assert.equal(dump.status, 0, dump.stderr);
    assert.equal(dump.stdout, "\t".repeat(4096));
  },
  {
    timeout: 120_000,
    skip: overcommit() === "2" &&
      "strict overcommit: no mapping larger than memory is made",
  },
);

// Bug: the crash simulator's CrashTracer took a flushGranularity of 0
// (every flush then covered no store, and every store stayed dirty to
// the end) or a negative one, and a live file whose length differs from
// its shadow's when given as bytes (words past the shorter compared with
// undefined), and recorded a wrong trace. Only a length not a multiple
// of 8 was refused, and a length mismatch only for a live file opened
// later. Both are RangeErrors at construction now.
test("crash tracer: a flush granularity of 0 or below, or a shadow of another length, is refused", () => {
  const live = new Uint8Array(64);
  for (const g of [0, -8, 4, NaN]) {
    assert.throws(
      () =>
        new CrashTracer({ live, shadow: live.slice(), flushGranularity: g }),
      RangeError,
      `granularity ${g}`,
    );
  }
  assert.throws(
    () =>
      new CrashTracer({
        live,
        shadow: new Uint8Array(32),
        flushGranularity: 8,
      }),
    /the file has 64 bytes, the shadow 32/,
  );
  // as before: a right one traces
  const t = new CrashTracer({
    live,
    shadow: live.slice(),
    flushGranularity: 8,
  });
  live[0] = 1;
  t.flush(0, 8);
  const [flush] = t.finish();
  assert.equal(flush.kind === "flush" && flush.stores.length, 1);
});

// Bug: the example of CrashTracer's JSDoc (the crash simulator's tracer)
// did not run: it called `map.setTracer(tracer)`, which Mapping does not
// have (a tracer is attached with setTracer from the testing module).
// The examples of tests/ are not run by tests/doc_examples_test.ts; this runs it.
test("crash tracer: the example in CrashTracer's JSDoc runs", () => {
  const source = readFileSync(join(ROOT, "tests/crash/tracer.ts"), "utf8");
  const block = /@example Usage\n \* ```ts\n([\s\S]*?) \* ```/.exec(source);
  assert.ok(block, "CrashTracer has an example");
  const code = block[1].replace(/^ \* ?/gm, "")
    .replaceAll('"../../', '"@root/')
    .replaceAll('"./', '"@root/tests/crash/');
  const r = runScript(code);
  assert.equal(r.status, 0, r.stderr);
});

// Bug: injectFault(mover, n, null) threw the engine's "Cannot read
// properties of null (reading 'count')"; injectFault and deviceStats
// given a CpuMover (or null) said "mover must be a DsaMover", though
// both take a ThreadMover too, as their JSDoc says. Cause: the options
// were read unchecked, and a mover that is no ThreadMover was passed on
// to the DsaMover's check.
test("testing: injectFault and deviceStats name what they take, and refuse options that are no object", () => {
  using mover = new ThreadMover({ threads: 1 });
  assert.throws(
    () => injectFault(mover, 1, null as unknown as FaultOptions),
    {
      name: "TypeError",
      message: "Cannot inject a fault: options must be an object",
    },
  );
  for (const bad of [new CpuMover(), null, {}]) {
    assert.throws(() => injectFault(bad as ThreadMover, 1), {
      name: "TypeError",
      message:
        "Cannot inject a fault: mover must be a ThreadMover or a DsaMover",
    });
    assert.throws(() => deviceStats(bad as ThreadMover), {
      name: "TypeError",
      message:
        "Cannot read device stats: mover must be a ThreadMover or a DsaMover",
    });
  }
  // as before
  injectFault(mover, 10, {});
  assert.equal(deviceStats(mover).partialCompletions, 0);
});

// Bug: `asyncpmem convert SRC DST` where DST is a symbolic link to a file
// that does not exist deleted the link (exit 3, "File exists"), and
// `create KIND LINK` failed with "File exists" (exit 3) where any other
// existing path is a usage error (exit 2). Cause: "exists already" was
// asked of existsSync, which follows the link; the exclusive create then
// refused the link itself, and convert's clean-up removed what it took
// for its own half-made file.
test("CLI: create and convert onto a dangling symbolic link refuse it and leave it", () => {
  const dir = tempDir();
  const log = join(dir, "log");
  PmemLog.create(log, { poolSize: 2 * MiB }).close();
  const link = join(dir, "link");
  const target = join(dir, "nowhere");
  symlinkSync(target, link);
  const attempts = [
    ["convert", log, link],
    ["create", "blk", link, "--block-size", "512", "--size", "17M"],
    ["create", "stream", link, "--size", "2M"],
    ["create", "log", link, "--size", "2M"],
    ["create", "obj", link, "--size", "8M", "--layout", "x"],
  ];
  // one subprocess for all: an attempt that removed the link, or made a
  // file where it points, leaves the link missing or the target there
  const runs = cliBatch(...attempts);
  attempts.forEach((args, i) => {
    const r = runs[i];
    const what = args.slice(0, 2).join(" ");
    assert.equal(r.status, 2, `${what}: ${r.stderr}`);
    assert.match(r.stderr, /'.*link' exists already/, what);
  });
  assert.equal(readlinkSync(link), target, "the link was removed");
  assert.equal(existsSync(target), false, "a file was made at the target");
});

// Bug: `asyncpmem info --json` of every block pool said "readOnly": "it
// was opened read-only" -- how info itself opens a pool, not a property
// of the pool -- so a script could not tell a pool with ro_compat
// features (which the libraries open read-only) from any other. Now the
// field says what the pool is: null, or why it opens read-only.
test("CLI: info --json of a block pool says whether the pool is read-only, not how info opened it", () => {
  const dir = tempDir();
  const path = join(dir, "blk");
  BlockPool.create(path, { blockSize: 512, poolSize: 17 * MiB }).close();
  const roPath = join(dir, "ro");
  BlockPool.create(roPath, { blockSize: 512, poolSize: 17 * MiB }).close();
  const header = peek(roPath, 0, 4096);
  new DataView(header.buffer).setUint32(20, 1, true); // ro_compat
  storeChecksum(header, 4088, 2048);
  patch(roPath, 0, header);
  const [plain, ro] = cliBatch(
    ["info", "--json", path],
    ["info", "--json", roPath],
  );
  assert.equal(plain.status, 0, plain.stderr);
  assert.equal(JSON.parse(plain.stdout).readOnly, null);
  assert.equal(ro.status, 0, ro.stderr);
  assert.equal(
    JSON.parse(ro.stdout).readOnly,
    "its header has ro_compat features",
  );
});

// Bug: openLogStream(path, { tracer }) of a stream already open in this
// process returned a handle whose tracer saw nothing: the open joined
// the process's open stream, whose mapping (traced by the first open, or
// not at all) serves every handle, and the new mapping with the tracer
// was closed. A crash test using it recorded an empty trace. Such an open
// is refused now; a plain open still joins.
test("testing: openLogStream with a tracer refuses a stream already open in this process", () => {
  const path = join(tempDir(), "stream");
  LogStream.create(path, { size: MiB }).close();
  const tracer = { flush() {}, drain() {} };
  for (
    const first of [
      () => LogStream.open(path),
      () => openLogStream(path, { tracer }),
    ]
  ) {
    using _first = first();
    assert.throws(
      () => openLogStream(path, { tracer: { flush() {}, drain() {} } }),
      (e: unknown) =>
        e instanceof PmemError && e.code === -16 &&
        /already open in this process/.test(e.message),
    );
    using joined = LogStream.open(path); // a plain open joins it
    joined.append(joined.allocateRegion(4096), new Uint8Array(8));
  }
  // once closed, a traced open sees the appends
  let flushes = 0;
  using s = openLogStream(path, {
    tracer: { flush: () => void flushes++, drain() {} },
  });
  s.append(s.regions()[0], new Uint8Array(8));
  assert.ok(flushes > 0);
});

// Since dump --json writes its document a piece at a time: a dump that
// failed midway (a block in the error state) left a cut document on
// standard output. A document up to 64 MiB is held until it is whole
// again, so a failed dump prints none, as before; only a larger one is
// written as it comes.
test("CLI: dump --json that fails midway prints no document", () => {
  const path = join(tempDir(), "blk");
  {
    using pool = BlockPool.create(path, { blockSize: 512, poolSize: 17 * MiB });
    pool.write(0, new Uint8Array(512).fill(1));
    pool.setError(1);
  }
  const r = cli("dump", "--json", "--lba", "0", "--count", "3", path);
  assert.equal(r.status, 3, r.stderr);
  assert.match(r.stderr, /block 1 is in the error state/);
  assert.equal(r.stdout, "");
  const one = cli("dump", "--json", "--lba", "0", path);
  assert.equal(one.status, 0, one.stderr);
  assert.equal(JSON.parse(one.stdout).blocks.length, 1);
});
