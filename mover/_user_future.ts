// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode moverFuture}: what a store polls of the future its data
 * mover's operation returned. A mover of the user's (any object with the
 * `Vdm` methods) may return something that is no future, or a future of
 * its own whose `poll()` answers a state the future module does not
 * define; each store read such an answer its own way (a block pool's
 * write resolved with its block never written, a read or an append
 * waited for ever, a missing `poll` failed in the engine's words "poll
 * is not a function"). Internal: the stores' asynchronous copies.
 *
 * @module
 */
import { Future, NOT_STARTED, PENDING } from "../future/future.ts";
import type { PollContext, Step } from "../future/future.ts";
import { moverFault } from "./_refused.ts";
import type { Vdm } from "./vdm.ts";

/**
 * The future a store polls for what `mover`'s operation `moverOp`
 * returned: the library's own futures as they are (their `poll` answers
 * only the states of `FutureState`); any other object with a `poll`
 * method behind a future that fails, with the `PmemError` (EIO) of `op`
 * that names the mover and `moverOp`, when that `poll` answers a state
 * that is none of "idle", "running", "complete" or "failed" (it is never
 * taken as complete: the store would report data written that was not).
 * A failed one fails with its `error`, as the library's do.
 *
 * @example Usage
 * ```ts
 * import { CpuMover } from "@asyncpmem/asyncpmem";
 * import { NO_CONTEXT } from "@asyncpmem/asyncpmem/future";
 * import { moverFuture } from "./_user_future.ts";
 * import assert from "node:assert/strict";
 *
 * using mover = new CpuMover();
 * const own = mover.memset(new Uint8Array(8), 1);
 * assert.equal(moverFuture(own, mover, "memset", "writeAsync"), own);
 * const odd = { poll: () => "done" } as never;
 * const f = moverFuture(odd, mover, "memset", "writeAsync");
 * assert.equal(f.poll(NO_CONTEXT), "failed");
 * assert.match(String(f.error), /answered poll\(\) with an unknown state/);
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
  // (the library's futures pass two tests: none overrides poll, and a
  // subclass of the user's that does is checked as any other future)
  if (result instanceof Future && result.poll === Future.prototype.poll) {
    return result;
  }
  const poll = (result as { poll?: unknown } | null | undefined)?.poll;
  if (typeof poll !== "function") {
    throw moverFault(
      mover,
      op,
      `returned ${describe(result)} from ${moverOp}, not a Future`,
    );
  }
  return new UserFuture(result, mover, moverOp, op);
}

/** The future of a user's mover, its states checked (see moverFuture). */
class UserFuture extends Future<void> {
  #inner: Future<void>;
  #mover: Vdm;
  #moverOp: string;
  #op: string;

  constructor(inner: Future<void>, mover: Vdm, moverOp: string, op: string) {
    super();
    this.#inner = inner;
    this.#mover = mover;
    this.#moverOp = moverOp;
    this.#op = op;
  }

  protected step(ctx: PollContext): Step<void> {
    const inner = this.#inner;
    const state: unknown = inner.poll(ctx);
    switch (state) {
      case "complete":
        return;
      case "failed":
        // (undefined too: the store words it, see refusedBy)
        throw inner.error;
      case "running":
        return PENDING;
      case "idle":
        return NOT_STARTED;
    }
    throw moverFault(
      this.#mover,
      this.#op,
      `answered poll() with an unknown state (${
        describe(state)
      }) for its ${this.#moverOp}`,
    );
  }
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
