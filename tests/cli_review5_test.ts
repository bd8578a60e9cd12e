// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Found by a fifth review of the CLI (probes first, then these tests):
// what `info`, `check` and `dump` do with a stream another process holds
// open, and how the CLI words a library's refusal.
import { statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BlockPool } from "../blk/mod.ts";
import { ObjectPool } from "../obj/mod.ts";
import { LogStream, PmemLog } from "../stream/mod.ts";
import { cliBatch } from "./cli_run.ts";
import { assert, patch, tempDir, test } from "./_harness.ts";

const MiB = 2 ** 20;

/** A library operation's name after the command's ("info: open: ..."). */
const OP_AFTER_COMMAND = /^asyncpmem \w+: [a-z]\w*: /;

// Bug: `info` and `check` of a log stream another process held open read
// it as it was at that moment (torn entries in flight, a recovery report
// of a live stream), where the same commands on a block pool, an object
// pool or a libpmemlog log refuse it, as pmempool refuses an open pool:
// its lock is taken (flock). The stream's are refused the same way now,
// and so is `dump` (which opened the stream, for writing).
test(
  "CLI: info, check and dump refuse a stream open in another process, as they refuse every other kind",
  () => {
    const dir = tempDir();
    const paths = {
      blk: join(dir, "blk"),
      obj: join(dir, "obj"),
      log: join(dir, "log"),
      stream: join(dir, "stream"),
    };
    // held open by this process: the CLI runs in another
    using blk = BlockPool.create(paths.blk, {
      blockSize: 512,
      poolSize: 17 * MiB,
    });
    using obj = ObjectPool.create(paths.obj, { size: 8 * MiB, layout: "L" });
    using log = PmemLog.create(paths.log, { poolSize: 2 * MiB });
    using s = LogStream.create(paths.stream, { size: MiB });
    s.append(s.allocateRegion(4096), new Uint8Array(10).fill(1));
    const before = statSync(paths.stream).mtimeMs;
    const commands = Object.entries(paths).flatMap(([kind, path]) =>
      [["info", path], ["check", path]].concat(
        kind === "stream" ? [["dump", path, "--region", "0"]] : [],
      ).map((args) => ({ kind, path, args }))
    );
    const runs = cliBatch(...commands.map((c) => c.args));
    for (const [i, { kind, path, args }] of commands.entries()) {
      const r = runs[i];
      const what = `${args[0]} ${kind}`;
      assert.equal(r.status, 3, `${what}: ${r.stdout}${r.stderr}`);
      assert.match(
        r.stderr,
        new RegExp(
          `^asyncpmem ${
            args[0]
          }: cannot lock '${path}': the (pool|log|stream) is already open`,
        ),
        what,
      );
    }
    assert.equal(statSync(paths.stream).mtimeMs, before);
    void blk, obj, log;
  },
  { timeout: 120_000 },
);

// Bug: a library error's operation was printed after the command's name
// unless it was the command's own, so refusals said their operation twice
// ("asyncpmem info: inspect: cannot inspect '...'", "asyncpmem dump:
// open: cannot open '...'") or named an internal step ("asyncpmem check:
// open: cannot lock ..."). The CLI drops a library error's operation in
// the one place it words failures: the command names what was asked.
test(
  "CLI: a library refusal (missing file, wrong kind, locked, corrupt) never repeats or adds an operation's name",
  () => {
    const dir = tempDir();
    const stream = join(dir, "stream");
    LogStream.create(stream, { size: MiB }).close();
    const truncated = join(dir, "truncated");
    LogStream.create(truncated, { size: MiB }).close();
    truncateSync(truncated, 8192);
    const table = join(dir, "table");
    {
      using s = LogStream.create(table, { size: MiB });
      s.allocateRegion(4096);
    }
    patch(table, 4096, new Uint8Array(12).fill(0xff)); // slot 0's state
    const blk = join(dir, "blk");
    BlockPool.create(blk, { blockSize: 512, poolSize: 17 * MiB }).close();
    truncateSync(blk, 8192);
    const obj = join(dir, "obj");
    ObjectPool.create(obj, { size: 8 * MiB, layout: "L" }).close();
    truncateSync(obj, 9000);
    const junk = join(dir, "junk");
    writeFileSync(junk, new Uint8Array(100_000).fill(7));
    const runs = [
      ["info", join(dir, "missing")],
      ["info", junk],
      ["zero", stream, "--lba", "0"],
      ["info", truncated],
      ["check", truncated],
      ["dump", truncated, "--region", "0"],
      ["info", table],
      ["check", "--json", table],
      ["dump", table, "--region", "0"],
      ["info", blk],
      ["check", blk],
      ["info", obj],
    ];
    const results = cliBatch(...runs);
    for (const [i, args] of runs.entries()) {
      const r = results[i];
      const what = args.join(" ");
      assert.notEqual(r.status, 0, what);
      const first = r.stderr.split("\n")[0];
      assert.match(first, new RegExp(`^asyncpmem ${args[0]}: `), what);
      assert.doesNotMatch(first, OP_AFTER_COMMAND, what);
      assert.doesNotMatch(first, /asyncpmem[ \w]*: asyncpmem/, what);
      if (args.includes("--json")) {
        const report = JSON.parse(r.stdout);
        assert.doesNotMatch(report.problems[0], /^[a-z]\w*: /, what);
      }
    }
  },
  { timeout: 120_000 },
);
