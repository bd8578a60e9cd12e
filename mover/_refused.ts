// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode refusedBy}: a store's call whose copy its data mover refused
 * because the mover was closed (a mover shared by stores and closed by
 * its owner) fails in the words of that call. Internal: the stores'
 * asynchronous copies.
 *
 * @module
 */
import { ClosedError, PmemError } from "../errors/mod.ts";
import type { Vdm } from "./vdm.ts";

/**
 * The error a store's call `op` fails with when its copy through `mover`
 * failed with `error`: a `ClosedError` of the mover's own call ("batch:
 * ThreadMover is closed") while the mover is closed becomes a
 * `ClosedError` of `op` that says its mover is closed, since the user
 * made `op`, not the mover's batch inside it; `undefined` (a mover of
 * the user's) becomes a `PmemError` (EIO) of `op`; any other error is
 * returned as it is, a `ClosedError` of another object included (the
 * store's mapping: "persist: Mapping is closed"; a copy's array that is
 * a view of a mapping closed since), even while the mover is closed: it
 * is not the mover's. A
 * {@linkcode moverFault} made for another call of the same copy (one
 * batch for several writes) is worded again for `op`.
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
 * const mapping = new ClosedError("Mapping", "persist");
 * assert.equal(refusedBy(mapping, mover, "writeAsync"), mapping);
 * ```
 *
 * @param error what the mover's batch threw, or its future failed with
 * @param mover the store's mover
 * @param op the store's call the user made ("writeAsync")
 */
export function refusedBy(error: unknown, mover: Vdm, op: string): unknown {
  // a mover of the user's that failed with `undefined` (`rejected()`):
  // the stores read an error of undefined as none, and a write resolved
  // with its block never written
  if (error === undefined) {
    return new PmemError(
      op,
      -5,
      `its data mover (${
        moverName(mover)
      }) failed without an error (it failed with undefined)`,
    );
  }
  const fault = faults.get(error as object);
  if (fault !== undefined && (error as PmemError).op !== op) {
    return moverFault(fault.mover, op, fault.detail);
  }
  if (!(error instanceof ClosedError) || error.op === op) return error;
  if (mover.closed !== true) return error;
  const names = classNames(mover);
  if (names.length === 0) return error;
  // a mover's ClosedError names its class (or a base class's: a
  // subclass's mover passes its base's name), as `new ClosedError(name,
  // op)` words it: "batch: ThreadMover is closed" (see mover/_base.ts,
  // _device_mover.ts, _device_batch.ts, cpu.ts)
  if (!names.some((n) => error.message === `${error.op}: ${n} is closed`)) {
    return error;
  }
  const what = names[0];
  return new ClosedError(what, op, `its data mover (${what}) is closed`);
}

/** What each {@linkcode moverFault} said, to word it for another call. */
const faults = new WeakMap<object, { mover: Vdm; detail: string }>();

/**
 * The error of a store's call `op` whose copy `mover` broke the `Vdm`
 * contract of (`detail`: "returned undefined from batch, not a Future"):
 * a `PmemError` (EIO) of `op` naming the mover, the word of a mover that
 * failed with `undefined`. Internal: see `_user_future.ts`.
 *
 * @param mover the store's mover
 * @param op the store's call the user made ("writeAsync")
 * @param detail what the mover did, after its name
 */
export function moverFault(mover: Vdm, op: string, detail: string): PmemError {
  const error = new PmemError(
    op,
    -5,
    `its data mover (${moverName(mover)}) ${detail}`,
  );
  faults.set(error, { mover, detail });
  return error;
}

/** The names of `mover`'s class and its base classes, its own first. */
function classNames(mover: Vdm): string[] {
  const names: string[] = [];
  let proto: unknown = Object.getPrototypeOf(mover);
  while (proto !== null && proto !== Object.prototype) {
    const name = (proto as { constructor?: { name?: unknown } }).constructor
      ?.name;
    if (typeof name === "string" && name !== "") names.push(name);
    proto = Object.getPrototypeOf(proto);
  }
  return names;
}

/** A mover's name for a message: its `name`, else its class's. */
function moverName(mover: Vdm): string {
  const name = (mover as { name?: unknown }).name;
  return typeof name === "string" && name !== ""
    ? name
    : classNames(mover)[0] ?? "unnamed";
}
