// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Found by a fifth review of the CLI (probes first, then these tests):
// how the CLI words a library's refusal.
import { truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BlockPool } from "../blk/mod.ts";
import { ObjectPool } from "../obj/mod.ts";
import { LogStream } from "../stream/mod.ts";
import { cli } from "./cli_run.ts";
import { assert, patch, tempDir, test } from "./_harness.ts";

const MiB = 2 ** 20;

/** A library operation's name after the command's ("info: open: ..."). */
const OP_AFTER_COMMAND = /^asyncpmem \w+: [a-z]\w*: /;

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
    for (const args of runs) {
      const r = cli(...args);
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
