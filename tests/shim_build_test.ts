// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What a user sees when the native shim cannot be built on first use, or
 * a built one will not load: the error says what to do, and is not buried
 * under the compiler's output.
 */
import { createHash } from "node:crypto";
import {
  chmodSync,
  cpSync,
  mkdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { buildShim } from "../ffi/_build.ts";
import { REMOTE_SOURCES } from "../ffi/_loader.ts";
import { assert, ROOT, runScript, tempDir, test } from "./_harness.ts";

/** The message of `buildShim` run with the compiler `cc`. */
function buildError(cc: string): string {
  const saved = process.env.CC;
  process.env.CC = cc;
  try {
    buildShim(join(ROOT, "c"), tempDir());
  } catch (e) {
    return (e as Error).message;
  } finally {
    if (saved === undefined) delete process.env.CC;
    else process.env.CC = saved;
  }
  throw new Error(`building with '${cc}' did not fail`);
}

/** A stand-in compiler that prints `stderr` and exits 1. */
function failingCompiler(stderr: string): string {
  const dir = tempDir();
  writeFileSync(join(dir, "err.txt"), stderr);
  const cc = join(dir, "cc");
  writeFileSync(cc, `#!/bin/sh\ncat '${join(dir, "err.txt")}' >&2\nexit 1\n`);
  chmodSync(cc, 0o755);
  return cc;
}

// Bug: without libpmem2-dev, gcc fails on every one of the shim's ~25
// C files, five lines each, and the error carried all of it: the line
// saying what to install came first, then ~125 lines of the same
// "fatal error: libpmem2.h: No such file or directory".
test("a build without libpmem2's headers says what to install, in a few lines", () => {
  const files = ["blk_read", "checksum", "cpu", "dev_exec", "device"];
  const stderr = files.map((f) =>
    `In file included from c/${f}.c:9:\n` +
    `c/internal.h:10:10: fatal error: libpmem2.h: No such file or directory\n` +
    `   10 | #include <libpmem2.h>\n` +
    `      |          ^~~~~~~~~~~~\n` +
    `compilation terminated.\n`
  ).join("").repeat(5);
  const message = buildError(failingCompiler(stderr));
  assert.match(message, /libpmem2 is missing/);
  assert.match(message, /apt-get install -y gcc libpmem2-dev/);
  assert.match(message, /fatal error: libpmem2\.h: No such file/);
  const lines = message.split("\n").length;
  assert.ok(lines <= 3, `${lines} lines:\n${message}`);
});

test("a link without libpmem2 says what to install, in a few lines", () => {
  const message = buildError(failingCompiler(
    "/usr/bin/ld: cannot find -lpmem2: No such file or directory\n" +
      "collect2: error: ld returned 1 exit status\n",
  ));
  assert.match(message, /libpmem2 is missing/);
  assert.match(message, /cannot find -lpmem2/);
  assert.ok(message.split("\n").length <= 3, message);
});

test("any other compiler failure keeps the compiler's output", () => {
  const stderr = "c/cpu.c:1:1: error: something else\n".repeat(4);
  const message = buildError(failingCompiler(stderr));
  assert.doesNotMatch(message, /libpmem2 is missing/);
  assert.ok(message.includes(stderr.trimEnd()), message);
});

test("no compiler at all says what to install", () => {
  const message = buildError(join(tempDir(), "no-such-cc"));
  assert.match(message, /could not run/);
  assert.match(message, /apt-get install -y gcc libpmem2-dev/);
});

/** A copy of the package's files as `bun add` installs them. */
function installedCopy(): string {
  const dir = tempDir();
  const meta = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  for (const entry of meta.files as string[]) {
    if (entry.startsWith("c/")) continue;
    cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
  }
  mkdirSync(join(dir, "c"));
  for (const f of REMOTE_SOURCES) {
    cpSync(join(ROOT, "c", f), join(dir, "c", f));
  }
  cpSync(join(ROOT, "package.json"), join(dir, "package.json"));
  return dir;
}

// Bug: an installed package's shim in the per-user cache that would not
// load (damaged: "file too short") said "rebuild it with 'deno task
// build'", a task of the repository that the user of a package does not
// have; removing the cache entry is what rebuilds it.
test("an installed package's damaged cached shim says to remove it from the cache", () => {
  const pkg = installedCopy();
  const cache = tempDir();
  const hash = createHash("sha256");
  for (const f of REMOTE_SOURCES) {
    hash.update(readFileSync(join(pkg, "c", f)));
  }
  const meta = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8"));
  const entry = join(
    cache,
    "asyncpmem",
    `${meta.version}-${hash.digest("hex").slice(0, 12)}`,
  );
  mkdirSync(entry, { recursive: true });
  writeFileSync(join(entry, "libasyncpmem.so"), "damaged\n");
  const r = runScript(
    `await import(${JSON.stringify(join(pkg, "mod.ts"))});`,
    60_000,
    { env: { XDG_CACHE_HOME: cache, ASYNCPMEM_LIB: "" } },
  );
  assert.notEqual(r.status, 0, "the damaged shim loaded");
  assert.match(r.stderr, /Cannot load the asyncpmem native shim/);
  assert.ok(r.stderr.includes(`remove '${entry}'`), r.stderr);
  assert.doesNotMatch(r.stderr, /deno task build/);
});

// Bug: where the per-user cache cannot be made (a read-only or missing
// HOME, XDG_CACHE_HOME naming a file), the first import of an installed
// package failed with the bare "ENOTDIR: not a directory, mkdir '...'",
// which says neither that it is the shim's cache nor what to do.
test("an installed package whose shim cache cannot be made says what to set", () => {
  const pkg = installedCopy();
  const notDir = join(tempDir(), "file");
  writeFileSync(notDir, "");
  const r = runScript(
    `await import(${JSON.stringify(join(pkg, "mod.ts"))});`,
    60_000,
    { env: { XDG_CACHE_HOME: notDir, ASYNCPMEM_LIB: "" } },
  );
  assert.notEqual(r.status, 0, "the shim was built");
  assert.match(r.stderr, /Cannot build the asyncpmem native shim in '/);
  assert.match(r.stderr, /set XDG_CACHE_HOME to a writable directory/);
  assert.match(r.stderr, /ASYNCPMEM_LIB/);
});
