// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The shim keeps a device query's refusal per file system of major 0
// (tmpfs) and gives it again (c/source.c). A device DAX node lives on
// such a file system too (devtmpfs), but libpmem2 asks about the device
// the node names, not the file system it sits on: each answers for
// itself. libpmem2 takes /dev/zero and /dev/null for two device DAX
// devices here (tests/c/fake_devdax.c, preloaded).
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  assert,
  lastJsonLine,
  ROOT,
  runScript,
  tempDir,
  test,
} from "./_harness.ts";

/** The major number of a `dev_t` as glibc encodes it. */
function major(dev: number): number {
  return Number(
    ((BigInt(dev) >> 8n) & 0xfffn) | ((BigInt(dev) >> 32n) & ~0xfffn),
  );
}

/** Why the test cannot run here, or "" (gcc, devices on a major-0 /dev). */
function skipReason(): string {
  if (spawnSync("gcc", ["--version"]).status !== 0) return "no gcc";
  try {
    const nul = statSync("/dev/null");
    const zero = statSync("/dev/zero");
    if (!nul.isCharacterDevice() || nul.dev !== zero.dev) return "odd /dev";
    return major(nul.dev) === 0 ? "" : "/dev has a device number of its own";
  } catch {
    return "no /dev/null or /dev/zero";
  }
}

/** Build tests/c/fake_devdax.c; returns the library to preload. */
function fakeDevdax(): string {
  const so = join(tempDir(), "fake_devdax.so");
  const cc = spawnSync("gcc", [
    "-Wall",
    "-Werror",
    "-shared",
    "-fPIC",
    "-o",
    so,
    join(ROOT, "tests", "c", "fake_devdax.c"),
    "-ldl",
  ], { encoding: "utf8", timeout: 120_000 });
  assert.equal(cc.status, 0, cc.stderr);
  return so;
}

// Bug: a refusal of one device DAX device (one no namespace backs) was
// kept under the st_dev of its node, devtmpfs's, and given again for every
// other device DAX node there: a PMem devdax device asked after it read
// as having no unsafe shutdown count, so a pool on it recorded none and
// an unsafe shutdown went unnoticed.
test(
  "Source: a device DAX node's deviceUsc() answers for its own device after another's was refused",
  () => {
    const so = fakeDevdax();
    const r = runScript(
      `
      import { Source } from "@root/pmem2/mod.ts";
      const usc = (path) => {
        using src = Source.open(path);
        try { return src.deviceUsc(); } catch (e) {
          return e.constructor.name + " " + e.code;
        }
      };
      console.log(JSON.stringify([usc("/dev/zero"), usc("/dev/null")]));
      `,
      60_000,
      { env: { LD_PRELOAD: so } },
    );
    assert.deepEqual(lastJsonLine(r), ["NotSupportedError -100001", 42]);
  },
  { skip: skipReason() || false },
);

// Bug: the shim judged whether to keep and give again a refusal by the
// file behind the source's fd at the time of the query, where libpmem2
// answers for the file the source was made from: a source made from a
// caller's fd of a device DAX node whose fd was then closed, its number
// going to a file on tmpfs, got the tmpfs file's kept refusal instead
// of its device's count.
test(
  "Source.fromFd(): a device DAX node's deviceUsc() answers for its device after the fd number went to a tmpfs file",
  () => {
    const so = fakeDevdax();
    const dir = tempDir("/dev/shm");
    const r = runScript(
      `
      import { closeSync, openSync, writeFileSync } from "node:fs";
      import { Source } from "@root/pmem2/mod.ts";
      const usc = (src) => {
        try { return src.deviceUsc(); } catch (e) {
          return e.constructor.name + " " + e.code;
        }
      };
      const dir = ${JSON.stringify(dir)};
      writeFileSync(dir + "/a", new Uint8Array(4096));
      writeFileSync(dir + "/b", new Uint8Array(4096));
      const first = (() => { using a = Source.open(dir + "/a"); return usc(a); })();
      const fd = openSync("/dev/null", "r+");
      using src = Source.fromFd(fd);
      closeSync(fd);
      const again = openSync(dir + "/b", "r+");
      console.log(JSON.stringify([first, again === fd, usc(src)]));
      `,
      60_000,
      { env: { LD_PRELOAD: so } },
    );
    assert.deepEqual(lastJsonLine(r), ["NotSupportedError -100001", true, 42]);
  },
  { skip: skipReason() || (!existsSync("/dev/shm") && "no /dev/shm") || false },
);
