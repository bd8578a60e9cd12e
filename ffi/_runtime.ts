// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The one runtime switch: `Deno` first, then `Bun` (never
 * `process.versions`, which Bun also fills in).
 *
 * @module
 */
import { isMainThread } from "node:worker_threads";

/** The JavaScript runtime this process runs on. */
export type RuntimeName = "deno" | "bun";

function detect(): RuntimeName {
  const g = globalThis as Record<string, unknown>;
  if (typeof g.Deno === "object" && g.Deno !== null) return "deno";
  if (typeof g.Bun === "object" && g.Bun !== null) return "bun";
  throw new Error(
    "Cannot load asyncpmem: it runs on Deno or Bun, and neither was detected",
  );
}

/**
 * The runtime, computed once at load.
 *
 * @example Usage
 * ```ts
 * import { RUNTIME } from "@asyncpmem/asyncpmem";
 * import assert from "node:assert/strict";
 *
 * assert.equal(RUNTIME, "Deno" in globalThis ? "deno" : "bun");
 * ```
 */
export const RUNTIME: RuntimeName = detect();

/**
 * Whether this code runs in a JavaScript Worker rather than a process's
 * main thread. A Worker's heap is freed when the Worker ends
 * (`terminate()`, `self.close()`) while the process and its native
 * threads go on; the main thread's lives as long as the process.
 */
export const IN_WORKER: boolean = detectWorker();

function detectWorker(): boolean {
  // node:worker_threads' Workers on both runtimes, and Bun's web Workers
  if (!isMainThread) return true;
  // Deno's web Workers (node:worker_threads says main thread there)
  const g = globalThis as Record<string, unknown>;
  const scope = g.WorkerGlobalScope;
  return typeof scope === "function" && globalThis instanceof scope;
}
