// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The interop tests' door to libpmemblk and pmempool: compiles
 * `tests/c/blkutil.c` once per process (gcc, -lpmemblk) into a temp
 * directory, runs it, and mirrors its block pattern in TypeScript.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { tempDir } from "../_harness.ts";
import { requires } from "../_requires.ts";

const SOURCE = fileURLToPath(new URL("./blkutil.c", import.meta.url));

/** Output of a helper run. */
export interface Run {
  /** Exit status (null when killed). */
  status: number | null;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

function run(cmd: string, args: string[], input?: string): Run {
  const r = spawnSync(cmd, args, {
    encoding: "utf8",
    input,
    timeout: 60_000,
  });
  if (r.error) {
    return { status: null, stdout: "", stderr: String(r.error.message) };
  }
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** Build the helper (once per version of its source); its path. */
function compile(): string {
  // one build per version of the source, shared by every run: nothing to
  // clean up, and concurrent runs rename a finished binary into place
  const hash = createHash("sha256").update(readFileSync(SOURCE)).digest("hex");
  const binary = join(tmpdir(), `asyncpmem-blkutil-${hash.slice(0, 16)}`);
  if (existsSync(binary)) return binary;
  const tmp = `${binary}.${process.pid}.tmp`;
  const r = run("gcc", ["-O2", "-o", tmp, SOURCE, "-lpmemblk"]);
  if (r.status !== 0) {
    // libpmemblk's headers are here (else the tests skipped): a real failure
    throw new Error(`cannot build the libpmemblk helper: ${r.stderr}`);
  }
  renameSync(tmp, binary);
  return binary;
}

/** Why libpmemblk tests must be skipped, or false when they can run. */
export const LIBPMEMBLK_SKIP: string | false = requires("libpmemblk");

/** Why `pmempool check` tests must be skipped, or false. */
export const PMEMPOOL_SKIP: string | false = requires("pmempool");

let built: string | undefined;

/**
 * Run the libpmemblk helper: `create PATH BSIZE POOLSIZE`, `info PATH`,
 * `apply PATH SPEC`, `verify PATH SPEC`, `check PATH BSIZE`, `open PATH`.
 */
export function blkutil(...args: string[]): Run {
  return run(blkutilPath(), args);
}

/** The path of the compiled helper (for spawning it directly). */
export function blkutilPath(): string {
  return built ??= compile();
}

/** Run `pmempool check -v PATH`. */
export function pmempoolCheck(path: string): Run {
  return run("pmempool", ["check", "-v", path]);
}

/** One operation, or one expected state, of a spec file. */
export type SpecLine =
  | { op: "W"; lba: number; seed: number }
  | { op: "Z"; lba: number }
  | { op: "E"; lba: number };

/** Write spec lines to a new temp file; returns its path. */
export function writeSpec(lines: SpecLine[]): string {
  const path = join(tempDir(), "spec.txt");
  const text = lines.map((l) =>
    l.op === "W" ? `W ${l.lba} ${l.seed}` : `${l.op} ${l.lba}`
  ).join("\n");
  writeFileSync(path, text + "\n");
  return path;
}

/**
 * The content the helper writes for (lba, seed): an xorshift32 stream
 * seeded from both (must match `fill_pattern` in blkutil.c).
 */
export function pattern(lba: number, seed: number, size: number): Uint8Array {
  let x = (Math.imul(lba, 2654435761) ^ Math.imul(seed, 2246822519) ^
    0x9e3779b9) >>> 0;
  if (x === 0) x = 1;
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    out[i] = x & 0xff;
  }
  return out;
}
