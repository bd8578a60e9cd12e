// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The CLI as a user meets it, a third pass: pools the user may only read,
// and what the earlier passes left.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { BlockPool } from "../blk/mod.ts";
import { ObjectPool, PersistentMap } from "../obj/mod.ts";
import { LogStream, PmemLog } from "../stream/mod.ts";
import { cliArgv, type Run } from "./cli_run.ts";
import { assert, tempDir, test } from "./_harness.ts";

const MiB = 2 ** 20;

/** Whether this process runs as root (who may write any file). */
const ROOT_USER = process.getuid?.() === 0;
/** Whether `setpriv` is here, to run the CLI as nobody when root. */
const SETPRIV = spawnSync("setpriv", ["--version"]).status === 0;

/**
 * Run `asyncpmem ...args` as a user who may read the pool files but not
 * write them: this user after a chmod to 0444, or, as root (who writes
 * any file), nobody through setpriv.
 */
function cliAsReader(home: string, ...args: string[]): Run {
  const argv = cliArgv(...args);
  const [cmd, ...rest] = ROOT_USER
    ? [
      "setpriv",
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      ...argv,
    ]
    : argv;
  const r = spawnSync(cmd, rest, {
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", HOME: home, DENO_DIR: undefined },
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
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
    for (const f of [blk, log, stream, obj]) {
      chmodSync(f, 0o444);
      before.set(f, readFileSync(f));
    }
    for (
      const args of [
        ["info", "--json", blk],
        ["check", "--json", blk],
        ["info", "--json", log],
        ["check", "--json", log],
        ["dump", "--json", log],
        ["info", "--json", stream],
        ["check", "--json", stream],
        ["info", "--json", obj],
        ["check", "--json", obj],
      ]
    ) {
      const r = cliAsReader(home, ...args);
      const what = args.join(" ");
      assert.equal(r.status, 0, `${what}: ${r.stderr}`);
      const report = JSON.parse(r.stdout);
      assert.equal(report.path, args[2], what);
      if (args[0] === "check") assert.equal(report.consistent, true, what);
    }
    for (const [f, bytes] of before) {
      assert.ok(readFileSync(f).equals(bytes), `${f} changed`);
    }
  },
  {
    timeout: 120_000,
    skip: ROOT_USER && !SETPRIV && "needs setpriv to run as nobody",
  },
);
