// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode moverFuture}: what a store polls of the future its data
 * mover's operation returned. A mover of the user's (any object with the
 * `Vdm` methods) may return something that is no future: each store
 * failed in the engine's words ("poll is not a function"). Internal: the
 * stores' asynchronous copies.
 *
 * @module
 */
import type { Future } from "../future/future.ts";
import { moverFault } from "./_refused.ts";
import type { Vdm } from "./vdm.ts";

/**
 * The future a store polls for what `mover`'s operation `moverOp`
 * returned, checked: something without a `poll` method is refused with
 * the `PmemError` (EIO) of `op` that names the mover and `moverOp`.
 *
 * @example Usage
 * ```ts
 * import { CpuMover } from "@asyncpmem/asyncpmem";
 * import { moverFuture } from "./_user_future.ts";
 * import assert from "node:assert/strict";
 *
 * using mover = new CpuMover();
 * const own = mover.memset(new Uint8Array(8), 1);
 * assert.equal(moverFuture(own, mover, "memset", "writeAsync"), own);
 * assert.throws(
 *   () => moverFuture(undefined as never, mover, "memset", "writeAsync"),
 *   /returned undefined from memset, not a Future/,
 * );
 * ```
 *
 * @param result what the operation returned
 * @param mover the store's mover
 * @param moverOp the mover's operation ("batch")
 * @param op the store's call the user made ("writeAsync")
 * @throws {PmemError} code -5 (EIO) when `result` has no `poll` method
 */
export function moverFuture(
  result: Future<void>,
  mover: Vdm,
  moverOp: string,
  op: string,
): Future<void> {
  const poll = (result as { poll?: unknown } | null | undefined)?.poll;
  if (typeof poll !== "function") {
    throw moverFault(
      mover,
      op,
      `returned ${describe(result)} from ${moverOp}, not a Future`,
    );
  }
  return result;
}

/** A value, for a message: a string quoted, else its kind. */
function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null || value === undefined) return String(value);
  if (typeof value !== "object") return `a ${typeof value}`;
  const name = (value as { constructor?: { name?: unknown } }).constructor
    ?.name;
  if (typeof name !== "string" || name === "" || name === "Object") {
    return "an object";
  }
  return `${/^[AEIOU]/.test(name) ? "an" : "a"} ${name}`;
}
