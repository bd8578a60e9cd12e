// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Running the `asyncpmem` command as a user runs it: a subprocess of the
 * same runtime. Shared by the CLI tests.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { ROOT, RUNTIME } from "./_harness.ts";

/** The CLI's entry point. */
export const CLI: string = join(ROOT, "cli", "main.ts");

/** What a run of the CLI gave. */
export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The command line that runs `asyncpmem ...args` on this runtime. */
export function cliArgv(...args: string[]): string[] {
  return RUNTIME === "deno"
    ? [process.execPath, "run", "-A", "--no-check", CLI, ...args]
    : [process.execPath, CLI, ...args];
}

/** Run `asyncpmem ...args` on this runtime. */
export function cli(...args: string[]): Run {
  const [cmd, ...rest] = cliArgv(...args);
  const r = spawnSync(cmd, rest, {
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}
