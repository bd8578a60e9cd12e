// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The CLI as a user meets it, a second pass: files that are no regular
// file, damaged pools, and what --repair claims.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { cliArgv } from "./cli_run.ts";
import { assert, tempDir, test } from "./_harness.ts";

// Bug: `asyncpmem info FIFO` (and check, dump, zero, convert) hung
// forever: the format is told from the file's first bytes, and opening a
// FIFO for reading blocks until a writer comes. A FIFO is no pool: the
// file's type is now looked at first, and the command fails (exit 3).
test("CLI: a FIFO is refused, not waited on", () => {
  const dir = tempDir();
  const fifo = join(dir, "fifo");
  const made = spawnSync("mkfifo", [fifo]);
  assert.equal(made.status, 0, "mkfifo");
  for (
    const args of [
      ["info", fifo],
      ["check", "--json", fifo],
      ["dump", fifo, "--lba", "0"],
      ["zero", fifo, "--lba", "0"],
      ["convert", fifo, join(dir, "out")],
    ]
  ) {
    const [cmd, ...rest] = cliArgv(...args);
    const r = spawnSync(cmd, rest, {
      encoding: "utf8",
      env: { ...process.env, NO_COLOR: "1" },
      timeout: 10_000,
    });
    assert.notEqual(r.signal, "SIGTERM", `${args[0]} hung on a FIFO`);
    assert.equal(r.status, 3, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, /cannot read '.*fifo': it is a FIFO/, args[0]);
  }
});
