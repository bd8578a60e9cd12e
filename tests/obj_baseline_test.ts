// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The obj bench suite's native baseline (libpmemobj's transactions) builds
// and runs every case the TypeScript suite compares with, so a bench run
// never loses its reference silently.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { assert, ROOT, tempPath, test } from "./_harness.ts";
import { requires } from "./_requires.ts";

test(
  "bench/c/obj_baseline.c builds against libpmemobj and runs every case obj_bench.ts refers to",
  () => {
    const exe = tempPath("obj_baseline");
    const src = join(ROOT, "bench", "c", "obj_baseline.c");
    const cc = spawnSync("gcc", [
      "-O2",
      "-std=gnu11",
      "-Wall",
      "-Wextra",
      "-Werror",
      "-o",
      exe,
      src,
      "-lpmem2",
      "-lpmemobj",
    ], { encoding: "utf8" });
    assert.equal(cc.status, 0, cc.stderr);
    const r = spawnSync(exe, [tempPath("pool"), "--quick"], {
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    const cases = r.stdout.split("\n").filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l).case as string);
    const bench = readFileSync(join(ROOT, "bench", "obj_bench.ts"), "utf8");
    const wanted = new Set<string>();
    for (const k of [1, 8, 64]) wanted.add(`tx ${k} x 64 B`);
    for (const n of ["64 B", "4 KiB"]) wanted.add(`tx alloc+free ${n}`);
    assert.ok(bench.includes("`tx ${k} x 64 B`"));
    assert.ok(bench.includes("`tx alloc+free ${label}`"));
    assert.deepEqual(new Set(cases), wanted);
  },
  { skip: requires("libpmemobj") },
);
