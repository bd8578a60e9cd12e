// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * `asyncpmem bench`: the benchmark suites (`bench/run.ts`) beside their C
 * baselines, run by the runtime running the CLI.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { RUNTIME } from "../ffi/_runtime.ts";
import { ExitCode } from "./args.ts";
import { err } from "./output.ts";

/** Run the suites (the short ones unless `full`); the exit code. */
export function runBench(full: boolean): number {
  const url = new URL("../bench/run.ts", import.meta.url);
  if (url.protocol !== "file:" || !existsSync(fileURLToPath(url))) {
    err(
      "asyncpmem bench: the benchmark suites ship with the repository " +
        "only (clone it, then run `deno task bench` there)\n",
    );
    return ExitCode.IO;
  }
  const script = fileURLToPath(url);
  const args = [
    ...(RUNTIME === "deno" ? ["run", "-A", script] : [script]),
    ...(full ? [] : ["--quick"]),
  ];
  const r = spawnSync(process.execPath, args, { stdio: "inherit" });
  return r.status === 0 ? ExitCode.OK : ExitCode.IO;
}
