// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// How the CLI words an option given a value that starts with '-', or no
// value at all: in its own words, as for any other bad value.
import { BlockPool } from "../blk/mod.ts";
import { cliBatch } from "./cli_run.ts";
import { assert, tempPath, test } from "./_harness.ts";

const MiB = 2 ** 20;

// Bug: `dump POOL --lba -1` (or `--count -3`) printed parseArgs's own
// three lines: "Option '--lba' argument is ambiguous. Did you forget to
// specify the option argument for '--lba'? To specify an option argument
// starting with a dash use '--lba=-XYZ'." -- advice to pass a negative
// number the command then refuses, where `--lba=-1` said "--lba needs a
// non-negative integer". And `--lba` with nothing after it said
// "Option '--lba <value>' argument missing".
test("CLI: a negative number after an option is refused as that option's value", () => {
  const pool = tempPath();
  BlockPool.create(pool, { blockSize: 512, poolSize: 17 * MiB }).close();
  const cases: [string[], RegExp][] = [
    [
      ["dump", pool, "--lba", "-1"],
      /^asyncpmem dump: --lba needs a non-negative integer$/m,
    ],
    [
      ["dump", pool, "--lba", "0", "--count", "-3"],
      /^asyncpmem dump: --count needs a non-negative integer$/m,
    ],
    [
      ["zero", pool, "--lba", "-1"],
      /^asyncpmem zero: --lba needs a non-negative integer$/m,
    ],
    [
      ["create", "blk", tempPath(), "--block-size", "512", "--size", "-1M"],
      /--size: '-1M' is not a size/,
    ],
    [["dump", pool, "--lba"], /^asyncpmem dump: --lba needs a value$/m],
    [
      ["create", "log", tempPath(), "--size"],
      /^asyncpmem create: --size needs a value$/m,
    ],
  ];
  const runs = cliBatch(
    ...cases.map(([args]) => args),
    // an option after an option that takes a value is still an option
    ["dump", pool, "--lba", "--json"],
  );
  for (const [i, [args, pattern]] of cases.entries()) {
    const r = runs[i];
    const what = args.join(" ");
    assert.equal(r.status, 2, `${what}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, pattern, `${what}:\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /ambiguous|XYZ|argument missing/, what);
  }
  const r = runs[cases.length];
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--lba needs a value/);
});

// Bug: a misspelt option was named with the one meant ("unknown option
// '--blocksize' (did you mean '--block-size'?)"), a misspelt command was
// not: "unknown command 'creat'", then the whole command list.
test("CLI: a misspelt command names the command meant", () => {
  const typos = [
    ["creat", "create"],
    ["chekc", "check"],
    ["inf", "info"],
    ["help", undefined],
    ["frobnicate", undefined],
  ] as const;
  const runs = cliBatch(
    ...typos.map(([typed]) => [typed, "x"]),
    ["help", "creat"],
  );
  for (const [i, [typed, meant]] of typos.entries()) {
    const r = runs[i];
    if (meant === undefined) {
      assert.doesNotMatch(r.stderr, /did you mean/, typed);
      continue;
    }
    assert.equal(r.status, 2, typed);
    assert.match(
      r.stderr,
      new RegExp(
        `^asyncpmem: unknown command '${typed}' \\(did you mean '${meant}'\\?\\)$`,
        "m",
      ),
      r.stderr,
    );
  }
  const r = runs[typos.length];
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command 'creat' \(did you mean 'create'\?\)/);
});
