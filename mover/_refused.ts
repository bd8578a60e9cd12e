// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode refusedBy}: a store's call whose copy its data mover refused
 * because the mover was closed (a mover shared by stores and closed by
 * its owner) fails in the words of that call. Internal: the stores'
 * asynchronous copies.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import type { Vdm } from "./vdm.ts";

/**
 * The error a store's call `op` fails with when its copy through `mover`
 * failed with `error`: a `ClosedError` of the mover's own call ("batch:
 * ThreadMover is closed") while the mover is closed becomes a
 * `ClosedError` of `op` that says its mover is closed, since the user
 * made `op`, not the mover's batch inside it; any other error is
 * returned as it is.
 *
 * @example Usage
 * ```ts
 * import { ClosedError } from "@asyncpmem/asyncpmem/errors";
 * import { CpuMover } from "@asyncpmem/asyncpmem";
 * import { refusedBy } from "./_refused.ts";
 * import assert from "node:assert/strict";
 *
 * const mover = new CpuMover();
 * mover.close();
 * const e = refusedBy(new ClosedError("CpuMover", "batch"), mover, "writeAsync");
 * assert.equal((e as ClosedError).message, "writeAsync: its data mover (CpuMover) is closed");
 * ```
 *
 * @param error what the mover's batch threw, or its future failed with
 * @param mover the store's mover
 * @param op the store's call the user made ("writeAsync")
 */
export function refusedBy(error: unknown, mover: Vdm, op: string): unknown {
  if (!(error instanceof ClosedError) || error.op === op) return error;
  if (mover.closed !== true) return error;
  const name = (mover as { constructor?: { name?: unknown } }).constructor
    ?.name;
  const what = typeof name === "string" && name !== "" ? name : "mover";
  return new ClosedError(what, op, `its data mover (${what}) is closed`);
}
