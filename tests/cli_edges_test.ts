// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The CLI at its edges: output to a pipe whose reader went away.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { BlockPool } from "../blk/mod.ts";
import { PmemLog } from "../stream/mod.ts";
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

/** What a run of the CLI left. */
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
