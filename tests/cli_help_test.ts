// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// What each command's --help says it takes, against what it takes.
import { cliBatch, cliBatchWith } from "./cli_run.ts";
import { assert, tempPath, test } from "./_harness.ts";

// Bug: `create` and `convert` take --json (as the README says every
// command but `bench` does: `create blk ... --json` prints the pool's
// geometry as JSON), but their --help never named it, where info, check,
// dump and zero do.
test("CLI: the --help of every command that takes --json names it", () => {
  const commands = ["create", "info", "check", "dump", "zero", "convert"];
  const runs = cliBatch(
    ...commands.flatMap((c) => [[c, "--help"], [c, "--json"]]),
    ["bench", "--help"],
  );
  commands.forEach((command, i) => {
    const [help, run] = runs.slice(2 * i, 2 * i + 2);
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /--json/, `${command} --help:\n${help.stdout}`);
    // and the command knows the option (an unknown one is a usage error
    // naming it, before any file is looked at)
    assert.doesNotMatch(run.stderr, /unknown option '--json'/, command);
  });
  assert.doesNotMatch(runs.at(-1)!.stdout, /--json/);
});

// Bug: with the native shim missing (ASYNCPMEM_LIB naming no file, or a
// machine without a compiler to build it) even `asyncpmem --help` died
// with an uncaught error and a stack trace: the CLI loaded every store,
// and with them the shim, at start. It loads them when a command needs
// them now.
test("CLI: help and usage errors work without the native shim; a command that needs it says why it cannot run", () => {
  // one subprocess: the commands that need no shim run first, so a shim
  // loaded at start (or by one of them) fails them; the last one needs it
  const [help, createHelp, usage, info] = cliBatchWith(
    { env: { ASYNCPMEM_LIB: "/nonexistent.so" } },
    ["--help"],
    ["help", "create"],
    ["create", "blk"],
    ["info", tempPath()],
  );
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^usage: asyncpmem COMMAND/);
  assert.equal(createHelp.status, 0, createHelp.stderr);
  assert.equal(usage.status, 2, usage.stderr);
  assert.match(usage.stderr, /expected KIND FILE|--size|--block-size/);
  assert.equal(info.status, 3, info.stderr);
  assert.match(
    info.stderr,
    /^asyncpmem info: Cannot load the asyncpmem native shim: ASYNCPMEM_LIB='\/nonexistent.so' does not exist$/m,
  );
  assert.doesNotMatch(info.stderr, /^\s+at /m, "a stack trace");
});
