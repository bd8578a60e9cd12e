// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// What each command's --help says it takes, against what it takes.
import { cli } from "./cli_run.ts";
import { assert, test } from "./_harness.ts";

// Bug: `create` and `convert` take --json (as the README says every
// command but `bench` does: `create blk ... --json` prints the pool's
// geometry as JSON), but their --help never named it, where info, check,
// dump and zero do.
test("CLI: the --help of every command that takes --json names it", () => {
  for (
    const command of ["create", "info", "check", "dump", "zero", "convert"]
  ) {
    const help = cli(command, "--help");
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /--json/, `${command} --help:\n${help.stdout}`);
    // and the command knows the option (an unknown one is a usage error
    // naming it, before any file is looked at)
    const run = cli(command, "--json");
    assert.doesNotMatch(run.stderr, /unknown option '--json'/, command);
  }
  const bench = cli("bench", "--help");
  assert.doesNotMatch(bench.stdout, /--json/);
});
