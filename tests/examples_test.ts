// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Every single-file example runs, as a user runs it, on this runtime; so
// does the README's tour.
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { assert, ROOT, runScript, RUNTIME, tempDir, test } from "./_harness.ts";

/** What each example must print (one line it cannot print by accident). */
const EXPECT: Record<string, RegExp> = {
  "demo.ts": /^done$/m,
  // DSA where a work queue is usable, else the thread mover and why not
  "dsa_mover.ts":
    /^mover: (?:dsa.*|threads \(no DSA: .+\))\ncopied 4096 bytes durably into /m,
  "map_persist.ts":
    /^file holds "written by memcpy" and "written through a view"$/m,
  "async_copies.ts":
    /^threads: 16 MiB durable in .* ms; byte at 5 MiB = 6, first byte = 255$/m,
  "block_store.ts": /^reopened: 97 blocks written, consistent: true$/m,
  "log_stream.ts": /^pmemlog: 11 bytes, "HELLO WORLD"$/m,
  "object_store.ts": /^users: ada, grace \(2\)$/m,
  "shared_pool.ts":
    /^2 Workers wrote 2560 blocks; 64 of 64 hold one writer's whole block\nconsistent: true /m,
};

const dir = join(ROOT, "examples");
// a `_worker.ts` file is an example's Worker, not an example
const examples = readdirSync(dir)
  .filter((f) => f.endsWith(".ts") && !f.endsWith("_worker.ts"))
  .sort();
for (const file of examples) {
  test(`example ${file} runs and prints what it should`, () => {
    const expect = EXPECT[file];
    assert.ok(expect, `examples_test.ts has no expectation for ${file}`);
    const args = RUNTIME === "deno"
      ? ["run", "-A", "--no-check", join(dir, file)]
      : [join(dir, file)];
    // the example's temp files go to a directory of their own, which
    // it must leave as it found it: a user runs it again and again
    const tmp = join(tempDir(), "tmp");
    mkdirSync(tmp);
    const r = spawnSync(process.execPath, args, {
      encoding: "utf8",
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: "1", TMPDIR: tmp },
      timeout: 120_000,
    });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, expect);
    assert.deepEqual(readdirSync(tmp), [], `${file} left files behind`);
  });
}

test("the README's tour runs and prints what its comments say", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const tour = readme.slice(readme.indexOf("## A tour"));
  const code = tour.slice(
    tour.indexOf("```ts\n") + 6,
    tour.indexOf("```\n", 6),
  );
  const exports: Record<string, string> = JSON.parse(
    readFileSync(join(ROOT, "deno.json"), "utf8"),
  ).exports;
  // the package's entry points by path, its files in a fresh directory
  const source = code
    .replace(
      /"@asyncpmem\/asyncpmem(\/[a-z]+)?"/g,
      (_, sub) =>
        JSON.stringify(`@root/${exports["." + (sub ?? "")].slice(2)}`),
    )
    .replaceAll("/dev/shm/", `${tempDir()}/`);
  const r = runScript(source, 120_000);
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.equal(
    r.stdout,
    ["2 true", "1 17", "2 64", "lovelace 42", ""].join("\n"),
  );
});
