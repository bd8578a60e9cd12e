// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The one runtime switch: `Deno` first, then `Bun` (never
 * `process.versions`, which Bun also fills in).
 *
 * @module
 */

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
