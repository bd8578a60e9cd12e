// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * `pmempool check` (PMDK 1.12's, which still knows the blk format) as an
 * external oracle for crash images. It is slow next to an in-process
 * check (a few milliseconds a run), so the sweep samples it. Tests that
 * need it declare so (`requires("pmempool")` in `tests/_requires.ts`).
 *
 * @module
 */
import { spawnSync } from "node:child_process";

/** The verdict of one `pmempool check` run. */
export interface PmempoolVerdict {
  /** Exit status 0: "consistent". */
  consistent: boolean;
  /** What it printed (the reasons when not consistent). */
  output: string;
}

/**
 * Run `pmempool check -v` on a pool file (read-only: no repair).
 *
 * @param path the pool file; it must not be open in a pool
 */
export function pmempoolCheck(path: string): PmempoolVerdict {
  const r = spawnSync("pmempool", ["check", "-v", path], {
    encoding: "utf8",
    timeout: 60_000,
  });
  const output = `${r.stdout ?? ""}${r.stderr ?? ""}${
    r.error ? String(r.error) : ""
  }`.trim();
  return { consistent: r.status === 0, output };
}
