// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The one test harness: every test file runs unchanged under `deno test`
 * and `bun test` (both speak `node:test`), and `moverTest` runs one body
 * against every data mover.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import {
  closeSync,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
  statfsSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import nodeAssert from "node:assert/strict";
import { test as nodeTest } from "node:test";
import { fileURLToPath } from "node:url";
import { RUNTIME } from "../ffi/_runtime.ts";
import { backend } from "../ffi/lib.ts";
import { CpuMover, DsaMover, ThreadMover, type Vdm } from "../mod.ts";
import { openTestPortal } from "../testing/mod.ts";

export { default as assert } from "node:assert/strict";
export { RUNTIME };

/** A test body. */
export type TestBody = () => void | Promise<void>;

/** Options of {@linkcode test}. */
export interface TestOptions {
  /** Skip with this reason. */
  skip?: string | false;
  /** Milliseconds before the runner fails the test. */
  timeout?: number;
}

/** Temp directories made by the running test, removed when it ends. */
let testDirs: string[] | undefined;
/** Temp directories made outside tests, removed at exit. */
const roots: string[] = [];

/** Register a flat test (one test on Deno and on Bun). */
export function test(
  name: string,
  fn: TestBody,
  options: TestOptions = {},
): void {
  const opts: { skip?: string; timeout?: number } = {};
  if (options.skip) opts.skip = options.skip;
  if (options.timeout) opts.timeout = options.timeout;
  nodeTest(name, opts, async () => {
    testDirs = [];
    try {
      await fn();
    } finally {
      for (const d of testDirs) rmSync(d, { recursive: true, force: true });
      testDirs = undefined;
    }
  });
}

/**
 * A fresh directory for pool files, removed when the test ends: in `base`
 * if given, else on tmpfs when available.
 */
export function tempDir(base?: string): string {
  base ??= process.env.ASYNCPMEM_TEST_DIR ||
    (tryDir("/dev/shm") ? "/dev/shm" : tmpdir());
  const dir = mkdtempSync(join(base, "asyncpmem-test-"));
  (testDirs ?? roots).push(dir);
  return dir;
}

function tryDir(d: string): boolean {
  try {
    rmSync(mkdtempSync(join(d, ".probe-")), { recursive: true });
    return true;
  } catch {
    return false;
  }
}

/** `statfs` magic numbers of disk file systems some tests need. */
export const FS_EXT4 = 0xef53;
/** See {@linkcode FS_EXT4}. */
export const FS_XFS = 0x58465342;

/**
 * The system temp dir when its file system is one of `types` (statfs
 * magic numbers), else undefined: for a test's declared skip.
 */
export function systemTempOn(types: readonly number[]): string | undefined {
  try {
    return types.includes(statfsSync(tmpdir()).type) ? tmpdir() : undefined;
  } catch {
    return undefined;
  }
}

/** A path for a new file in a fresh temp directory. */
export function tempPath(name = "pool"): string {
  return join(tempDir(), name);
}

function removeRoots(): void {
  for (const d of roots) rmSync(d, { recursive: true, force: true });
  roots.length = 0;
}
process.on("exit", removeRoots);
// (`deno test` never emits the process's exit event: its "unload" event is
// the last chance to remove a directory made outside a test)
globalThis.addEventListener?.("unload", removeRoots);

/** The repository root, as a file URL string ending in '/'. */
export const ROOT_URL = new URL("../", import.meta.url).href;

/** Result of {@linkcode runScript}. */
export interface ScriptResult {
  status: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Options of {@linkcode runScript}. */
export interface ScriptOptions {
  /** Variables added to the child's environment. */
  env?: Record<string, string>;
  /** Deno's flags instead of `-A --no-check` (Deno only). */
  denoFlags?: string[];
}

/**
 * Run TypeScript source in a child process of the same runtime, so a
 * crash fails the test instead of killing the runner. `@root/` in the
 * source stands for the repository root.
 */
export function runScript(
  source: string,
  timeoutMs = 60_000,
  options: ScriptOptions = {},
): ScriptResult {
  const dir = tempDir();
  const file = join(dir, "script.ts");
  writeFileSync(file, source.replaceAll("@root/", ROOT_URL));
  const flags = options.denoFlags ?? ["-A", "--no-check"];
  const args = RUNTIME === "deno" ? ["run", ...flags, file] : [file];
  const r = spawnSync(process.execPath, args, {
    encoding: "utf8",
    timeout: timeoutMs,
    env: {
      ...process.env,
      RUST_BACKTRACE: "0",
      NO_COLOR: "1",
      ...options.env,
    },
  });
  return {
    status: r.status,
    signal: r.signal,
    stdout: r.stdout ?? "",
    stderr: r.stderr ?? "",
  };
}

/**
 * The JSON value a {@linkcode runScript} child printed as the last line of
 * its stdout, once it has exited with status 0 (the failure message shows
 * how it ended and all it printed, since a child that dies says why only
 * there).
 */
// (any, as JSON.parse's: each caller reads the fields its script printed)
// deno-lint-ignore no-explicit-any
export function lastJsonLine(r: ScriptResult): any {
  nodeAssert.equal(
    r.status,
    0,
    `status ${r.status} ${r.signal}: ${r.stdout}${r.stderr}`,
  );
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!);
}

/**
 * What a {@linkcode runScript} child printed, trimmed, once it has ended
 * by itself (no signal: a crash) with status 0; the failure messages are
 * its stderr.
 */
export function printed(r: ScriptResult): string {
  nodeAssert.equal(r.signal, null, r.stderr);
  nodeAssert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

/** The repository root as a path. */
export const ROOT = fileURLToPath(ROOT_URL);

// ---- every test body against every mover ----

/** A mover configuration every mover test runs against. */
export interface MoverKind {
  /** Shown in the test name. */
  name: string;
  /** A fresh mover (the test closes it). */
  create(): Vdm;
}

/**
 * The movers: in-thread CPU; the software DSA device with everything sent
 * to its workers; and the device with tiny transfers, queue and record
 * pool, so chunking and back-pressure run on every test; the DSA mover on
 * a test portal (the hardware path, the software device behind it): a
 * dedicated WQ of 4 credits with tiny transfers and batches, and a shared
 * WQ of 2 entries (ENQCMD's retry answers on every test). On a machine
 * with a usable DSA work queue, the DSA mover on it too (`dsa-hw`; the WQ
 * named by ASYNCPMEM_DSA_WQ, else the first usable one).
 */
export const MOVERS: readonly MoverKind[] = [
  { name: "cpu", create: () => new CpuMover() },
  {
    name: "threads",
    create: () => new ThreadMover({ threads: 2, inlineThreshold: 0 }),
  },
  {
    name: "threads-tight",
    create: () =>
      new ThreadMover({
        threads: 2,
        inlineThreshold: 0,
        maxTransfer: 4096,
        queueSize: 4,
        records: 8,
        batchLists: 2,
      }),
  },
  {
    name: "dsa-dwq",
    create: () =>
      openTestPortal({
        mode: "dedicated",
        queueSize: 4,
        maxTransfer: 4096,
        maxBatch: 4,
        records: 8,
        batchLists: 2,
      }),
  },
  {
    name: "dsa-swq",
    create: () => openTestPortal({ mode: "shared", queueSize: 2 }),
  },
  ...(DsaMover.available({ wq: process.env.ASYNCPMEM_DSA_WQ })
    ? [{
      name: "dsa-hw",
      create: () =>
        DsaMover.open({ wq: process.env.ASYNCPMEM_DSA_WQ, inlineThreshold: 0 }),
    }]
    : []),
];

/** Register `body` once per mover, as "name [mover]". */
export function moverTest(
  name: string,
  body: (mover: Vdm, kind: MoverKind) => void | Promise<void>,
  options: TestOptions = {},
): void {
  for (const kind of MOVERS) {
    test(`${name} [${kind.name}]`, async () => {
      const mover = kind.create();
      try {
        await body(mover, kind);
      } finally {
        mover.close();
      }
    }, options);
  }
}

/** A deterministic PRNG (xorshift32) for reproducible random workloads. */
export { xorshift as rng } from "./crash/random.ts";

/** Read `length` bytes of a file at `offset` (to inspect a pool on disk). */
export function peek(path: string, offset: number, length: number): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const buf = new Uint8Array(length);
    readSync(fd, buf, 0, length, offset);
    return buf;
  } finally {
    closeSync(fd);
  }
}

/** Overwrite bytes of a file at `offset` (to corrupt a pool on purpose). */
export function patch(path: string, offset: number, bytes: Uint8Array): void {
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

/**
 * A matcher for `assert.throws`/`rejects`: the TypeError of a misspelled
 * `signal` option (`singal`) in the options of `op`.
 */
export function unknownSingal(op: string): (e: unknown) => boolean {
  return (e) => {
    nodeAssert.ok(e instanceof TypeError, String(e));
    nodeAssert.equal(
      e.message,
      `Cannot ${op}: unknown option 'singal' (did you mean 'signal'?)`,
    );
    return true;
  };
}

/**
 * A ThreadMover of one engine whose `batch` calls are counted, through an
 * own property (its class stays ThreadMover, as the stores' inline paths
 * check: `runsInline` in `mover/_inline.ts`).
 */
export function countingThreadMover(
  inlineThreshold: number,
): { mover: ThreadMover; batches: () => number } {
  const mover = new ThreadMover({ threads: 1, inlineThreshold });
  let calls = 0;
  const batch = mover.batch.bind(mover);
  mover.batch = (ops, options) => {
    calls++;
    return batch(ops, options);
  };
  return { mover, batches: () => calls };
}

/**
 * Bytes of the buffers over native memory that `f` made (`backend.view`):
 * what Bun counts as allocated memory when they are made, so what a
 * store's open makes it collect (see `VIEW_WINDOWS.piecesFirst`).
 */
export function viewsMadeBy(f: () => void): number {
  const view = backend.view;
  let made = 0;
  backend.view = (ptr, length, offset) => {
    made += length;
    return view.call(backend, ptr, length, offset);
  };
  try {
    f();
  } finally {
    backend.view = view;
  }
  return made;
}
