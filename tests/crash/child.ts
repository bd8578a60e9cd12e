// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Running a crash-suite module as a child process of this same runtime
 * (the sweep per model, the fuzzer's openers, the writer the kill test
 * kills). Each such module runs its child side under `import.meta.main`.
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { RUNTIME } from "../../ffi/_runtime.ts";

/** The arguments of `process.execPath` that run `file` with `args`. */
export function childArgs(file: string, args: readonly string[]): string[] {
  return RUNTIME === "deno"
    ? ["run", "-A", "--no-check", file, ...args]
    : [file, ...args];
}

/** How a child process ended and what it printed. */
export interface ChildResult {
  /** Exit status, or null when a signal ended it. */
  status: number | null;
  /** The signal that ended it, or null. */
  signal: string | null;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

/** The environment of a child: this one's, quiet, plus `extra`. */
function childEnv(
  extra: Record<string, string | undefined>,
): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    NO_COLOR: "1",
    RUST_BACKTRACE: "0",
  };
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/**
 * Run `file` with `args` to completion.
 *
 * @param env variables to set (or, with `undefined`, to remove)
 */
export function runChild(
  file: string,
  args: readonly string[],
  env: Record<string, string | undefined> = {},
  timeoutMs = 600_000,
): ChildResult {
  const r = spawnSync(process.execPath, childArgs(file, args), {
    encoding: "utf8",
    env: childEnv(env),
    timeout: timeoutMs,
    maxBuffer: 256 << 20,
  });
  return {
    status: r.status,
    signal: r.signal,
    stdout: r.stdout ?? "",
    stderr: `${r.stderr ?? ""}${r.error ? String(r.error) : ""}`,
  };
}

/** A child running in the background. */
export interface BackgroundChild {
  /** Everything it printed so far. */
  readonly stdout: () => string;
  /** Resolves when it printed `text` (or ended). */
  printed(text: string): Promise<void>;
  /** Send a signal. */
  kill(signal: "SIGKILL" | "SIGTERM"): void;
  /** Resolves once it ended. */
  readonly ended: Promise<ChildResult>;
}

/**
 * Start `file` with `args` in the background.
 *
 * @param env variables to set (or, with `undefined`, to remove)
 */
export function startChild(
  file: string,
  args: readonly string[],
  env: Record<string, string | undefined> = {},
): BackgroundChild {
  const p = spawn(process.execPath, childArgs(file, args), {
    env: childEnv(env),
  });
  let out = "";
  let err = "";
  const waiters: { text: string; resolve: () => void }[] = [];
  const wake = (all: boolean) => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (all || out.includes(waiters[i].text)) {
        waiters[i].resolve();
        waiters.splice(i, 1);
      }
    }
  };
  p.stdout.setEncoding("utf8");
  p.stderr.setEncoding("utf8");
  p.stdout.on("data", (s: string) => {
    out += s;
    wake(false);
  });
  p.stderr.on("data", (s: string) => (err += s));
  const ended = new Promise<ChildResult>((resolve) => {
    p.on("close", (status, signal) => {
      wake(true);
      resolve({ status, signal, stdout: out, stderr: err });
    });
    p.on("error", (e) => {
      wake(true);
      resolve({ status: null, signal: null, stdout: out, stderr: String(e) });
    });
  });
  return {
    stdout: () => out,
    printed: (text) =>
      out.includes(text)
        ? Promise.resolve()
        : new Promise((resolve) => waiters.push({ text, resolve })),
    kill: (signal) => p.kill(signal),
    ended,
  };
}

/**
 * Kill a writer child at a moment of its writing: `delayMs` after it
 * printed `ready`, with SIGKILL (the kill tests' crash).
 *
 * @returns how it ended, and the problem when it ended otherwise than by
 *   the kill (it failed before: what it printed is no crash's)
 */
export async function killWriter(
  child: BackgroundChild,
  delayMs: number,
): Promise<{ end: ChildResult; problem?: string }> {
  await child.printed("ready");
  await new Promise((r) => setTimeout(r, delayMs));
  child.kill("SIGKILL");
  const end = await child.ended;
  if (end.signal === "SIGKILL") return { end };
  return {
    end,
    problem: `the writer ended with ${
      end.signal ?? end.status
    }, not by the kill: ${end.stderr.trim()}`,
  };
}

/** The child side of a fuzzer: mutants `from .. from + count`. */
export type MutantChild = (
  base: string,
  scratch: string,
  from: number,
  count: number,
) => void;

/**
 * Runs a fuzzer's child side in a child process, on mutants `from ..
 * from + count` of a base file `writeBase` writes once to
 * `dir/NAME-base`, each written to `dir/NAME-scratch` (`file --child
 * BASE SCRATCH FROM COUNT`, see {@linkcode mutantChildMain}).
 */
export function mutantRunner(
  file: string,
  dir: string,
  name: string,
  writeBase: (path: string) => void,
): (from: number, count: number) => ChildResult {
  const base = join(dir, `${name}-base`);
  writeBase(base);
  const scratch = join(dir, `${name}-scratch`);
  return (from, count) =>
    runChild(file, ["--child", base, scratch, String(from), String(count)]);
}

/**
 * A fuzzer's child process: run `child` on the mutants its arguments
 * (`--child BASE SCRATCH FROM COUNT`) name, then remove the scratch file.
 *
 * @param name the fuzzer's file, for the usage message
 * @throws {Error} on other arguments
 */
export function mutantChildMain(
  name: string,
  argv: readonly string[],
  child: MutantChild,
): void {
  const [flag, base, scratch, from, count] = argv;
  if (flag !== "--child") {
    throw new Error(`Usage: ${name} --child BASE SCRATCH FROM COUNT`);
  }
  try {
    child(base, scratch, Number(from), Number(count));
  } finally {
    rmSync(scratch, { force: true });
  }
}
