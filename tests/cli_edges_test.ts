// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The CLI at its edges: arguments it must refuse with a usage error (exit
// 2, no stack trace), numbers it must not read leniently, output to a
// pipe whose reader went away, odd paths, files that are no pool.
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
import { BlockPool } from "../blk/mod.ts";
import { storeChecksum } from "../pmdk/checksum.ts";
import { PmemLog } from "../stream/mod.ts";
import {
  onlyOptions,
  parseCount,
  parseMode,
  parseSize,
  UsageError,
} from "../cli/args.ts";
import { detectKind } from "../cli/detect.ts";
import { cliArgv, cliBatch, type Run } from "./cli_run.ts";
import { assert, patch, peek, tempDir, tempPath, test } from "./_harness.ts";

const MiB = 2 ** 20;

/** A shell word for bash. */
function q(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * Run `asyncpmem ...args | reader` in bash; the CLI's exit status (from
 * PIPESTATUS) and its stderr.
 */
function piped(reader: string, ...args: string[]): Run {
  const errFile = join(tempDir(), "stderr");
  const script = `${cliArgv(...args).map(q).join(" ")} 2>${
    q(errFile)
  } | ${reader}
echo "cli=\${PIPESTATUS[0]}"`;
  const r = spawnSync("bash", ["-c", script], {
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
    timeout: 120_000,
  });
  const m = /cli=(\d+)/.exec(r.stdout ?? "");
  const stderr = existsSync(errFile) ? readFileSync(errFile, "utf8") : "";
  return { status: m ? Number(m[1]) : null, stdout: r.stdout ?? "", stderr };
}

/** A usage error: exit 2, a message and the usage line, no stack trace. */
function assertUsage(r: Run, pattern: RegExp, what = ""): void {
  assert.equal(r.status, 2, `${what}: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, pattern, what);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `${what}: a stack trace`);
}

test("CLI: size, count and mode arguments are read strictly", () => {
  // what a size is: digits, an optional binary unit
  assert.equal(parseSize("4096", "size"), 4096);
  assert.equal(parseSize("64M", "size"), 64 * MiB);
  assert.equal(parseSize("1GiB", "size"), 2 ** 30);
  assert.equal(parseSize("2kb", "size"), 2048);
  for (
    const bad of [
      "1e3",
      "0x10",
      "12abc",
      "-1",
      "+5",
      "1.5M",
      "",
      " ",
      "M",
      "0b101",
      "Infinity",
      "NaN",
      "１２", // full-width digits are no digits here
      "99999999999999999999T",
    ]
  ) {
    assert.throws(() => parseSize(bad, "size"), UsageError, bad);
  }
  assert.throws(() => parseSize(undefined, "size"), /--size needs a size/);
  assert.throws(() => parseSize(true, "size"), UsageError);
  // counts: plain decimal digits, safe integers
  assert.equal(parseCount("0", "lba"), 0);
  assert.equal(parseCount("007", "lba"), 7);
  assert.equal(parseCount(`${Number.MAX_SAFE_INTEGER}`, "lba"), 2 ** 53 - 1);
  for (
    const bad of ["1e3", "0x10", "12abc", "-1", "+1", "1.0", "", " 1", "all"]
  ) {
    assert.throws(() => parseCount(bad, "lba"), UsageError, bad);
  }
  assert.throws(() => parseCount(`${2 ** 53}`, "lba"), /too large/);
  // modes: permission bits only
  assert.equal(parseMode(undefined), 0o644);
  assert.equal(parseMode("600"), 0o600);
  assert.equal(parseMode("0640"), 0o640);
  assert.equal(parseMode("0"), 0);
  for (const bad of ["8", "4755", "7777", "0o644", "-644", "", "rw-r--r--"]) {
    assert.throws(() => parseMode(bad), UsageError, bad);
  }
  // options that do not apply are named, not ignored
  const p = { values: { region: "1", json: true }, positionals: [] };
  assert.throws(
    () => onlyOptions(p, "a blk pool", ["lba", "count"]),
    /--region does not apply to a blk pool/,
  );
  onlyOptions({ values: { lba: "1", json: true }, positionals: [] }, "x", [
    "lba",
  ]);
});

test("CLI: bad numbers on the command line are usage errors, not stack traces", () => {
  const pool = tempPath();
  BlockPool.create(pool, { blockSize: 512, poolSize: 17 * MiB }).close();
  const cases: [string[], RegExp][] = [
    [["dump", pool, "--lba", "1e3"], /--lba needs a non-negative integer/],
    [["dump", pool, "--lba=-1"], /--lba needs a non-negative integer/],
    [["dump", pool, "--lba", "0", "--count", "0x10"], /--count needs/],
    [["dump", pool, "--lba", "99999999999999999999"], /--lba: too large/],
    [["dump", pool, "--lba", "-1"], /--lba/], // parseArgs: a missing value
    [
      ["create", "blk", tempPath(), "--block-size", "512", "--size", "12abc"],
      /'12abc' is not a size/,
    ],
    [
      ["create", "blk", tempPath(), "--block-size", "1e3", "--size", "32M"],
      /--block-size needs a non-negative integer/,
    ],
    [
      ["create", "stream", tempPath(), "--size", "2M", "--region-slots", "1e1"],
      /--region-slots needs/,
    ],
  ];
  const runs = cliBatch(...cases.map(([args]) => args));
  for (const [i, [args, pattern]] of cases.entries()) {
    assertUsage(runs[i], pattern, args.join(" "));
  }
});

// Bug: `zero --lba <past the end> --count all` printed "zeroed -1
// block(s)" and exited 0; cause: the count (blockCount - lba) went
// negative, and the range check only compared lba + count.
test("CLI: zero refuses an LBA past the pool's end, also with --count all", () => {
  const pool = tempPath();
  let count: number;
  {
    using p = BlockPool.create(pool, { blockSize: 512, poolSize: 17 * MiB });
    count = p.blockCount;
  }
  const past = [count, 2 ** 40].flatMap((lba) =>
    ["all", "1"].map((n) => [`${lba}`, n])
  );
  const [last, ...runs] = cliBatch(
    // the last block: one block zeroed
    ["zero", pool, "--lba", `${count - 1}`, "--count", "all"],
    ...past.map((
      [lba, n],
    ) => ["zero", pool, "--lba", lba, "--count", n, "--json"]),
    ["dump", pool, "--lba", `${count}`, "--count", "0"],
    ["dump", pool, "--lba", "0", "--count", "0"],
  );
  assert.equal(last.status, 0, last.stderr);
  assert.match(last.stdout, /^zeroed 1 block$/m);
  past.forEach(([lba, n], i) => {
    const r = runs[i];
    assertUsage(r, /--lba \d+ is past the pool's last block/, `${lba} ${n}`);
    assert.equal(r.stdout, "", "no report of a negative count");
  });
  const [pastDump, dumped] = runs.slice(past.length);
  assertUsage(pastDump, /past the pool's last block/);
  assert.equal(dumped.status, 0, dumped.stderr); // nothing asked, nothing
  assert.equal(dumped.stdout, "");
});

// Bug: `create blk|log FILE --size 0` failed with "cannot open: No such
// file or directory" (exit 3); cause: the libraries read poolSize 0 as
// "lay the pool over the existing file".
test("CLI: --size 0 is a usage error, not 'no such file' (exit 3)", () => {
  const kinds = [
    ["blk", ["--block-size", "512"]],
    ["log", []],
    ["stream", []],
    ["obj", ["--layout", "x"]],
  ] as const;
  const paths = kinds.map(([kind]) => tempPath(kind));
  const runs = cliBatch(
    ...kinds.map(([kind, extra], i) => [
      "create",
      kind,
      paths[i],
      "--size",
      "0",
      ...extra,
    ]),
  );
  kinds.forEach(([kind], i) => {
    assertUsage(runs[i], /size/, kind);
    assert.equal(existsSync(paths[i]), false, kind);
  });
});

// Bug: `create blk` above 256 MiB with a block size the pool cannot have
// exited 3 and left the whole allocated file behind (a failed 1 TiB
// create filled the disk); cause: the file is allocated in steps and the
// pool laid out with poolSize 0, which skips the library's argument
// checks, and nothing removed the file on failure.
test("CLI: a large blk pool's arguments are checked before its file is allocated", () => {
  // above 256 MiB the file is allocated in steps before the pool is laid
  // out over it: a block size the pool cannot have must not leave 300 MiB
  // behind, nor be an I/O error
  const path = tempPath();
  const zero = tempPath();
  const [r, z] = cliBatch(
    ["create", "blk", path, "--block-size", "4294967295", "--size", "300M"],
    ["create", "blk", zero, "--block-size", "0", "--size", "300M"],
  );
  assertUsage(r, /block size 4294967295 is too large/);
  assert.equal(existsSync(path), false);
  assertUsage(z, /--block-size must be an integer/);
  assert.equal(existsSync(zero), false);
});

// Bug: `help nope` exited 0; `asyncpmem toString` was taken for a command
// (a TypeError reported as a usage error); `bench extra` said "expected ,
// got extra"; cause: no check of the help topic, a plain lookup in an
// object literal, a message built for one name at least.
test("CLI: help, unknown commands and stray arguments exit 2", () => {
  // names of Object.prototype are no commands
  const protoNames = ["toString", "constructor", "__proto__", "hasOwnProperty"];
  const [nope, extra, help, top, none, bench, info, ...proto] = cliBatch(
    ["help", "nope"],
    ["help", "create", "extra"],
    ["help", "dump"],
    ["help"],
    [],
    ["bench", "extra"],
    ["info", "a", "b"],
    ...protoNames.map((name) => [name]),
  );
  assertUsage(nope, /unknown command 'nope'/);
  assertUsage(extra, /expected one COMMAND/);
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^usage: asyncpmem dump FILE/);
  assert.equal(top.status, 0);
  assert.match(top.stdout, /^usage: asyncpmem COMMAND/);
  protoNames.forEach((name, i) => {
    assertUsage(proto[i], new RegExp(`unknown command '${name}'`), name);
  });
  assert.equal(none.status, 2);
  assert.equal(none.stdout, "", "the usage of a usage error goes to stderr");
  assert.match(none.stderr, /^usage: asyncpmem COMMAND/);
  assertUsage(bench, /expected no arguments, got "extra"/);
  assertUsage(info, /expected FILE, got "a" "b"/);
});

// Bug: `dump BLK --region 1`, `dump LOG --lba 5`, `convert LOG DST
// --region 0` silently ignored the option and did something else than
// asked; cause: each kind reads only its own options.
test("CLI: options that do not apply to the pool's kind are refused", () => {
  const blk = tempPath("blk");
  BlockPool.create(blk, { blockSize: 512, poolSize: 17 * MiB }).close();
  const log = tempPath("log");
  PmemLog.create(log, { poolSize: 2 * MiB }).close();
  const out = tempPath("out");
  const [region, lba, count, layout, blockSize, convert] = cliBatch(
    ["dump", blk, "--lba", "0", "--region", "1"],
    ["dump", log, "--lba", "0"],
    ["dump", log, "--count", "2"],
    ["create", "stream", tempPath(), "--size", "2M", "--layout", "x"],
    ["create", "log", tempPath(), "--size", "2M", "--block-size", "512"],
    ["convert", log, out, "--region", "0"],
  );
  assertUsage(region, /--region does not apply to a blk pool/);
  assertUsage(lba, /--lba does not apply/);
  assertUsage(count, /--count does not apply/);
  assertUsage(layout, /--layout does not apply/);
  assertUsage(blockSize, /--block-size does not apply/);
  assertUsage(
    convert,
    /--region does not apply to a libpmemlog log's conversion/,
  );
  assert.equal(existsSync(out), false);
});

// Bug: `create log|stream --mode 600` made a 0644 file, and `--mode 7777`
// made a setuid, setgid, sticky pool file; cause: the mode was not passed
// to PmemLog/LogStream.create, and parseMode took four octal digits.
test("CLI: --mode reaches every kind's file, and only permission bits pass", () => {
  const kinds = [
    ["blk", ["--block-size", "512", "--size", "17M"]],
    ["log", ["--size", "2M"]],
    ["stream", ["--size", "2M"]],
    ["obj", ["--size", "16M", "--layout", "x"]],
  ] as const;
  const paths = kinds.map(([kind]) => tempPath(kind));
  const setuid = tempPath();
  const runs = cliBatch(
    ...kinds.map((
      [kind, extra],
      i,
    ) => ["create", kind, paths[i], ...extra, "--mode", "600"]),
    [
      "create",
      "blk",
      setuid,
      "--block-size",
      "512",
      "--size",
      "17M",
      "--mode",
      "4755",
    ],
  );
  kinds.forEach(([kind], i) => {
    assert.equal(runs[i].status, 0, `${kind}: ${runs[i].stderr}`);
    assert.equal(statSync(paths[i]).mode & 0o7777, 0o600, kind);
  });
  assertUsage(
    runs[kinds.length],
    /--mode must be octal permission bits from 0 to 777/,
  );
  assert.equal(existsSync(setuid), false);
});

// Bug: `asyncpmem dump POOL | head` crashed with an uncaught "write EPIPE"
// and a stack trace (exit 1) on Deno and Bun; cause: process.stdout's
// asynchronous 'error' event had no listener. Output now goes through
// synchronous writes that stop at EPIPE.
test("CLI: output to a pipe whose reader went away ends quietly, with the command's own exit code", () => {
  const pool = tempPath();
  {
    using p = BlockPool.create(pool, { blockSize: 4096, poolSize: 17 * MiB });
    p.write(1, new Uint8Array(4096).fill(7));
  }
  // far more than a pipe holds: the reader leaves after 100 bytes
  for (const format of [[], ["--raw"], ["--json"]]) {
    const r = piped(
      "head -c 100 >/dev/null",
      "dump",
      pool,
      "--lba",
      "0",
      "--count",
      "3000",
      ...format,
    );
    assert.equal(r.status, 0, `${format}: ${r.stderr}`);
    assert.equal(r.stderr, "", `${format}: no EPIPE, no stack trace`);
  }
  // a reader that never reads: the exit code is still the check's
  const ok = piped("true", "check", pool);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stderr, "");
  const info = piped("true", "info", pool);
  assert.equal(info.status, 0, info.stderr);
  assert.equal(info.stderr, "");
  const bad = tempPath();
  BlockPool.create(bad, { blockSize: 512, poolSize: 17 * MiB }).close();
  patch(bad, 8192 + 100, new Uint8Array([0xff])); // the info block's twin
  const inconsistent = piped("true", "check", bad);
  assert.equal(inconsistent.status, 1, inconsistent.stderr);
  // a log and a stream dump as well
  const log = tempPath("log");
  {
    using l = PmemLog.create(log, { poolSize: 4 * MiB });
    l.append(new Uint8Array(3 * MiB).fill(1));
  }
  const r = piped("head -c 10 >/dev/null", "dump", log);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, "");
  // the whole of a dump still arrives where the reader stays
  const whole = piped("wc -c", "dump", pool, "--lba", "1", "--raw");
  assert.equal(whole.status, 0, whole.stderr);
  assert.match(whole.stdout, /^\s*4096\s*$/m);
});

test(
  "CLI: paths with spaces, quotes, newlines, unicode and a leading dash",
  () => {
    const dir = join(tempDir(), "odd dir");
    mkdirSync(dir);
    const names = [
      "sp ace",
      "ünï€ode",
      "new\nline",
      "quote'\"",
      "100%s",
      "back\\slash",
      "-dash",
    ];
    const kinds = [
      ["blk", ["--block-size", "512", "--size", "17M"]],
      ["log", ["--size", "2M"]],
      ["stream", ["--size", "2M"]],
    ] as const;
    // every name for a block pool, and all of them at once for the others
    const made: [string, readonly string[]][] = [
      ...names.map((n) =>
        [`blk ${n}`, kinds[0][1]] as [string, readonly string[]]
      ),
      ...kinds.slice(1).map(([k, extra]) =>
        [`${k} ${names.join(" ")}`, extra] as [string, readonly string[]]
      ),
    ];
    const runs = cliBatch(
      ...made.flatMap(([name, extra]) => {
        const path = join(dir, name);
        return [
          ["create", name.split(" ")[0], ...extra, "--", path],
          ["info", "--json", "--", path],
          ["check", "--json", "--", path],
        ];
      }),
      // a relative path that starts with a dash: after `--` it is a file
      ["info", "--", "-nope"],
    );
    made.forEach(([name], i) => {
      const path = join(dir, name);
      const [create, info, check] = runs.slice(3 * i, 3 * i + 3);
      assert.equal(create.status, 0, `${name}: ${create.stderr}`);
      assert.equal(info.status, 0, `${name}: ${info.stderr}`);
      assert.equal(JSON.parse(info.stdout).path, path);
      assert.equal(check.status, 0, `${name}: ${check.stderr}`);
      assert.equal(JSON.parse(check.stdout).path, path);
    });
    const dash = runs.at(-1)!;
    assert.equal(dash.status, 3, dash.stderr);
    assert.match(dash.stderr, /cannot read '-nope': no such file/);
  },
  { timeout: 120_000 },
);

// Bug: `check pool.set` called a PMDK pool set file a damaged pool (exit
// 1); `info DIR` said "EISDIR: illegal operation on a directory, read"
// without the path; cause: detectKind knew no pool set signature and
// passed node:fs errors on unnamed.
test("CLI: a directory, a missing file, an empty file and a pool set file", () => {
  const dir = tempDir();
  const missing = join(dir, "missing");
  const empty = join(dir, "empty");
  writeFileSync(empty, "");
  // a pool set names its parts: it is no damaged pool, but one this tool
  // does not open
  const set = join(dir, "pool.set");
  writeFileSync(set, `PMEMPOOLSET\n32M ${join(dir, "part0")}\n`);
  assert.equal(detectKind(set), "poolset");
  const commands = ["info", "check", "dump"];
  const runs = cliBatch(
    ...commands.flatMap((command) => [[command, dir], [command, missing]]),
    ["info", empty],
    ["check", empty],
    ...commands.map((command) => [command, set]),
    ["check", "--json", set],
  );
  commands.forEach((command, i) => {
    const [r, m] = runs.slice(2 * i, 2 * i + 2);
    assert.equal(r.status, 3, `${command}: ${r.stderr}`);
    assert.match(r.stderr, /cannot read '.*': it is a directory/, command);
    assert.equal(m.status, 3, `${command}: ${m.stderr}`);
    assert.match(m.stderr, /cannot read '.*missing': no such file/, command);
  });
  const [emptyInfo, emptyCheck, ...onSet] = runs.slice(2 * commands.length);
  assertUsage(emptyInfo, /not a pool this tool knows/);
  assert.equal(emptyCheck.status, 1); // pmempool check: no pool
  commands.forEach((command, i) => {
    const r = onSet[i];
    assertUsage(r, /is a PMDK pool set file: pool sets are not supported/);
    assert.doesNotMatch(r.stderr, /damaged/, command);
  });
  const json = onSet[commands.length];
  assert.equal(json.status, 2);
  assert.equal(json.stdout, "");
});

// Bug: `check --repair` of a blk pool with ro_compat features said
// "repaired: ... restored the BTT info block", "consistent", exit 0, and
// the next check found the same damage; cause: such a pool opens
// read-only (on a private mapping), so the repairs never reach the file.
test("CLI: check --repair of a read-only (ro_compat) blk pool does not claim repairs", () => {
  const path = tempPath();
  BlockPool.create(path, { blockSize: 512, poolSize: 17 * MiB }).close();
  const header = peek(path, 0, 4096);
  new DataView(header.buffer).setUint32(20, 1, true); // ro_compat
  storeChecksum(header, 4088, 2048);
  patch(path, 0, header);
  patch(path, 8192 + 100, new Uint8Array([0xff])); // the info block
  const before = readFileSync(path);
  const [r, asJson] = cliBatch(
    ["check", path, "--repair"],
    ["check", path, "--repair", "--json"],
  );
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.doesNotMatch(r.stdout, /^repaired:/m);
  assert.match(r.stdout, /cannot repair: .*read-only.*ro_compat/);
  assert.match(r.stdout, /: not consistent$/m);
  const json = JSON.parse(asJson.stdout);
  assert.deepEqual([json.consistent, json.repairedNow], [false, false]);
  assert.ok(readFileSync(path).equals(before), "the file is unchanged");
});
