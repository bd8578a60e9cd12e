// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The log interop tests' door to libpmemlog: compiles `tests/c/logutil.c`
 * once per version of its source (gcc, -lpmemlog) into the temp
 * directory, runs it, and mirrors its data pattern in TypeScript.
 *
 * @module
 */
import type { PmemLog } from "../../stream/mod.ts";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { tempDir } from "../_harness.ts";
import { requires } from "../_requires.ts";
import type { Run } from "./blkutil.ts";

const SOURCE = fileURLToPath(new URL("./logutil.c", import.meta.url));

function run(cmd: string, args: string[]): Run {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 60_000 });
  if (r.error) return { status: null, stdout: "", stderr: r.error.message };
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** Build the helper (once per version of its source); its path. */
function compile(): string {
  const hash = createHash("sha256").update(readFileSync(SOURCE)).digest("hex");
  const binary = join(tmpdir(), `asyncpmem-logutil-${hash.slice(0, 16)}`);
  if (existsSync(binary)) return binary;
  const tmp = `${binary}.${process.pid}.tmp`;
  const r = run("gcc", ["-O2", "-o", tmp, SOURCE, "-lpmemlog"]);
  if (r.status !== 0) {
    // libpmemlog's headers are here (else the tests skipped): a real failure
    throw new Error(`cannot build the libpmemlog helper: ${r.stderr}`);
  }
  renameSync(tmp, binary);
  return binary;
}

/** Why libpmemlog tests must be skipped, or false when they can run. */
export const LIBPMEMLOG_SKIP: string | false = requires("libpmemlog");

let built: string | undefined;

/**
 * Run the libpmemlog helper: `create PATH SIZE`, `apply PATH SPEC`, `try
 * PATH SPEC` (each operation's result), `dump PATH OUT`, `walk PATH CHUNK`,
 * `open PATH`.
 */
export function logutil(...args: string[]): Run {
  return run(logutilPath(), args);
}

/** The path of the compiled helper (to spawn it directly). */
export function logutilPath(): string {
  return built ??= compile();
}

/** One operation of a spec: append, appendv of two, or rewind. */
export type LogOp =
  | { op: "A"; seed: number; len: number }
  | { op: "V"; seed: number; len: number; seed2: number; len2: number }
  | { op: "R" };

/** Write spec lines to a new temp file; returns its path. */
export function writeLogSpec(ops: LogOp[]): string {
  const path = join(tempDir(), "spec.txt");
  writeFileSync(
    path,
    ops.map((o) =>
      o.op === "A"
        ? `A ${o.seed} ${o.len}`
        : o.op === "V"
        ? `V ${o.seed} ${o.len} ${o.seed2} ${o.len2}`
        : "R"
    ).join("\n") + "\n",
  );
  return path;
}

/** The bytes of (seed, len): must match `fill_pattern` in logutil.c. */
export function logPattern(seed: number, len: number): Uint8Array {
  let x = (Math.imul(seed, 2654435761) ^ 0x9e3779b9) >>> 0;
  if (x === 0) x = 1;
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** What a spec leaves in a log that held `before`. */
export function applyLogSpec(before: Uint8Array, ops: LogOp[]): Uint8Array {
  const parts: Uint8Array[] = [before];
  for (const o of ops) {
    if (o.op === "R") parts.length = 0;
    else if (o.op === "A") parts.push(logPattern(o.seed, o.len));
    else parts.push(logPattern(o.seed, o.len), logPattern(o.seed2, o.len2));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Everything a log holds, in one walk of chunk 0 (a copy). */
export function logContents(log: PmemLog): Uint8Array {
  let out = new Uint8Array(0);
  log.walk(0, (c) => {
    out = c.slice();
    return true;
  });
  return out;
}
