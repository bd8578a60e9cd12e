// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Running the `asyncpmem` command as a user runs it: a subprocess of the
 * same runtime. Shared by the CLI tests.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { ROOT, RUNTIME, tempDir } from "./_harness.ts";

/** The CLI's entry point. */
export const CLI: string = join(ROOT, "cli", "main.ts");

/** What a run of the CLI gave. */
export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The command line that runs `script ...args` on this runtime. */
function runtimeArgv(script: string, args: string[]): string[] {
  return RUNTIME === "deno"
    ? [process.execPath, "run", "-A", "--no-check", script, ...args]
    : [process.execPath, script, ...args];
}

/** The command line that runs `asyncpmem ...args` on this runtime. */
export function cliArgv(...args: string[]): string[] {
  return runtimeArgv(CLI, args);
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

/**
 * Run each of `commands` (argv arrays) as `asyncpmem ...argv`, in order,
 * in ONE subprocess of this runtime: their runs, as {@linkcode cli} gives
 * them. A subprocess per command paid the runtime's start and the
 * library's load each time (about 0.25 s on Deno, most of a CLI test's
 * time); tests whose commands need nothing done between them batch them.
 * The exit status is what the CLI's `main` returned (the entry point sets
 * it as the process's exit code; {@linkcode cli} tests that).
 */
export function cliBatch(...commands: string[][]): Run[] {
  return cliBatchWith({}, ...commands);
}

/** How {@linkcode cliBatchWith} runs its subprocess. */
export interface BatchOptions {
  /** A command line in front of the runtime's, as `setpriv ...`. */
  prefix?: string[];
  /** Variables to set in the subprocess's environment (undefined: unset). */
  env?: Record<string, string | undefined>;
  /** Milliseconds the whole batch may take (240 000). */
  timeout?: number;
}

/**
 * {@linkcode cliBatch}, its subprocess run behind `options.prefix` (as
 * another user: the file of command lines and its folder can be read by
 * anyone) with `options.env`.
 */
export function cliBatchWith(
  options: BatchOptions,
  ...commands: string[][]
): Run[] {
  const dir = tempDir();
  chmodSync(dir, 0o755);
  const file = join(dir, "cli-batch.json");
  writeFileSync(file, JSON.stringify(commands), { mode: 0o644 });
  const nonce = `batch-${Math.random().toString(36).slice(2)}`;
  const argv = [
    ...options.prefix ?? [],
    ...runtimeArgv(join(ROOT, "tests", "cli_batch.ts"), [file, nonce]),
  ];
  const r = spawnSync(argv[0], argv.slice(1), {
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", ...options.env },
    timeout: options.timeout ?? 240_000,
    maxBuffer: 256 * 2 ** 20,
  });
  const marker = new RegExp(`\u0001${nonce}:(\\d+):(\\d+)\u0001`);
  const split = (text: string) => text.split(marker);
  // [out0, i, status, out1, i, status, ..., rest]
  const outs = split(r.stdout ?? "");
  const errs = split(r.stderr ?? "");
  const runs: Run[] = [];
  for (let i = 0; i < commands.length; i++) {
    const k = 3 * i;
    if (outs.length < k + 3 || errs.length < k + 3) {
      throw new Error(
        `the batch ended (status ${r.status}, signal ${r.signal}) before ` +
          `command ${i} (${JSON.stringify(commands[i])}) finished: ` +
          (errs.at(-1) ?? r.error?.message ?? ""),
      );
    }
    runs.push({
      status: Number(outs[k + 2]),
      stdout: outs[k],
      stderr: errs[k],
    });
  }
  return runs;
}
