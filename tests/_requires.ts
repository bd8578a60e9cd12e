// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The external tools some tests need (all of which `tools/setup.sh`
 * installs), and the one way a test declares it needs them:
 * `test(name, fn, { skip: requires("pmempool") })`.
 *
 * Where a tool is missing the test is skipped with the reason, and the
 * skip is counted in the closing line of the test run. After
 * `tools/setup.sh` ran (`tools/test.sh` sets `ASYNCPMEM_STRICT_TOOLS`)
 * or under CI (`CI` set), a missing tool is a failure instead: the file
 * that needs it throws when it registers its tests.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import process from "node:process";

/** A tool a test may need. */
export type Tool =
  | "pmempool"
  | "libpmemblk"
  | "libpmemlog"
  | "libpmemobj"
  | "nm"
  | "valgrind";

/** How to tell each tool is here, and what installs it. */
const PROBES: Record<Tool, { probe: () => boolean; install: string }> = {
  pmempool: {
    probe: () => runs("pmempool", ["--version"]),
    install: "apt-get install pmdk-tools",
  },
  libpmemblk: {
    probe: () => hasHeader("libpmemblk.h"),
    install: "apt-get install libpmemblk-dev",
  },
  libpmemlog: {
    probe: () => hasHeader("libpmemlog.h"),
    install: "apt-get install libpmemlog-dev",
  },
  libpmemobj: {
    probe: () => hasHeader("libpmemobj.h"),
    install: "apt-get install libpmemobj-dev",
  },
  nm: {
    probe: () => runs("nm", ["--version"]),
    install: "apt-get install binutils",
  },
  valgrind: {
    probe: () => runs("valgrind", ["--version"]),
    install: "apt-get install valgrind",
  },
};

function runs(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 30_000 });
  return r.error === undefined && r.status === 0;
}

/** Whether gcc finds a header (and so the library's -dev package). */
function hasHeader(header: string): boolean {
  const r = spawnSync("gcc", ["-E", "-x", "c", "-"], {
    encoding: "utf8",
    input: `#include <${header}>\n`,
    timeout: 30_000,
  });
  return r.error === undefined && r.status === 0;
}

const known = new Map<Tool, boolean>();

/** Whether `tool` is available (probed once per process). */
export function have(tool: Tool): boolean {
  let ok = known.get(tool);
  if (ok === undefined) {
    ok = PROBES[tool].probe();
    known.set(tool, ok);
  }
  return ok;
}

/**
 * The `skip` option of a test that needs `tools`: false when all are
 * here, else the reason.
 *
 * @throws {Error} under CI when one is missing: setup installs them all
 */
export function requires(...tools: Tool[]): string | false {
  const missing = tools.filter((t) => !have(t));
  if (missing.length === 0) return false;
  const reason = missing.map((t) => `${t} is missing (${PROBES[t].install})`)
    .join("; ");
  if (process.env.ASYNCPMEM_STRICT_TOOLS || process.env.CI) {
    throw new Error(
      `${reason}: tools/setup.sh installs it, so a CI run must have it`,
    );
  }
  return reason;
}

/**
 * The `skip` option of a test that mounts a small tmpfs in a private
 * mount namespace (`unshare -m`, as root): false when that works here.
 * Not a tool setup installs, so never a failure.
 */
export function canMountTmpfs(): string | false {
  const r = spawnSync("unshare", [
    "-m",
    "sh",
    "-c",
    "mount -t tmpfs -o size=1m tmpfs /mnt",
  ], {
    encoding: "utf8",
    timeout: 30_000,
  });
  return r.error === undefined && r.status === 0
    ? false
    : "cannot mount a tmpfs in a private mount namespace (needs root)";
}
