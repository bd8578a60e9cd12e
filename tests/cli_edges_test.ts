// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The CLI at its edges: output to a pipe whose reader went away, files
// that are no pool.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { BlockPool } from "../blk/mod.ts";
import { PmemLog } from "../stream/mod.ts";
import { detectKind } from "../cli/detect.ts";
import {
  assert,
  patch,
  ROOT,
  RUNTIME,
  tempDir,
  tempPath,
  test,
} from "./_harness.ts";

const CLI = join(ROOT, "cli", "main.ts");
const MiB = 2 ** 20;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The command line that runs the CLI on this runtime. */
function argv(...args: string[]): string[] {
  return RUNTIME === "deno"
    ? [process.execPath, "run", "-A", "--no-check", CLI, ...args]
    : [process.execPath, CLI, ...args];
}

/** Run `asyncpmem ...args` on this runtime. */
function cli(...args: string[]): Run {
  const [cmd, ...rest] = argv(...args);
  const r = spawnSync(cmd, rest, {
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

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
  const script = `${argv(...args).map(q).join(" ")} 2>${q(errFile)} | ${reader}
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

// Bug: `check pool.set` called a PMDK pool set file a damaged pool (exit
// 1); `info DIR` said "EISDIR: illegal operation on a directory, read"
// without the path; cause: detectKind knew no pool set signature and
// passed node:fs errors on unnamed.
test("CLI: a directory, a missing file, an empty file and a pool set file", () => {
  const dir = tempDir();
  const missing = join(dir, "missing");
  for (const command of ["info", "check", "dump"]) {
    const r = cli(command, dir);
    assert.equal(r.status, 3, `${command}: ${r.stderr}`);
    assert.match(r.stderr, /cannot read '.*': it is a directory/, command);
    const m = cli(command, missing);
    assert.equal(m.status, 3, `${command}: ${m.stderr}`);
    assert.match(m.stderr, /cannot read '.*missing': no such file/, command);
  }
  const empty = join(dir, "empty");
  writeFileSync(empty, "");
  assertUsage(cli("info", empty), /not a pool this tool knows/);
  assert.equal(cli("check", empty).status, 1); // pmempool check: no pool
  // a pool set names its parts: it is no damaged pool, but one this tool
  // does not open
  const set = join(dir, "pool.set");
  writeFileSync(set, `PMEMPOOLSET\n32M ${join(dir, "part0")}\n`);
  assert.equal(detectKind(set), "poolset");
  for (const command of ["info", "check", "dump"]) {
    const r = cli(command, set);
    assertUsage(r, /is a PMDK pool set file: pool sets are not supported/);
    assert.doesNotMatch(r.stderr, /damaged/);
  }
  const json = cli("check", "--json", set);
  assert.equal(json.status, 2);
  assert.equal(json.stdout, "");
});
