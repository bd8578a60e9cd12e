// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode Refusals}: how a combined future (`all`, `race`) answers a
 * blocking wait that some of its members refused (`PollContext.refuse`).
 *
 * @module
 */
import type { Future, PollContext } from "./future.ts";

/**
 * The members of a combined future that refused a blocking wait in one
 * step (see `PollContext.refuse`). The combined future refuses it in
 * turn only when every member still pending refused: while another can
 * settle, the wait goes on polling it (an `all` settles no member
 * before all have, a `race` may be won by another), and the refused
 * members are polled again with it. Internal to `future/`.
 *
 * @example Usage
 * ```ts
 * import { NO_CONTEXT, ready } from "@asyncpmem/asyncpmem/future";
 * import { Refusals } from "./_refusals.ts";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = [ready(1), ready(2)];
 * const refused: unknown[] = [];
 * const ctx = { ...NO_CONTEXT, refuse: (r: unknown) => refused.push(r) };
 * const refusals = new Refusals();
 * refusals.add(a, "EDEADLK");
 * refusals.refuseIfAll([a, b], ctx); // b may settle: no refusal
 * assert.deepEqual(refused, []);
 * refusals.refuseIfAll([a], ctx);
 * assert.deepEqual(refused, ["EDEADLK"]);
 * ```
 */
export class Refusals {
  #members = new Set<Future<unknown>>();
  #reason: unknown;

  /** `member` refused with `reason`. */
  add(member: Future<unknown>, reason: unknown): void {
    if (this.#members.size === 0) this.#reason = reason;
    this.#members.add(member);
  }

  /** Refuse the wait (the first reason) when every one of `pending` did. */
  refuseIfAll(pending: readonly Future<unknown>[], ctx: PollContext): void {
    for (const f of pending) {
      if (!f.done && !this.#members.has(f)) return;
    }
    ctx.refuse?.(this.#reason);
  }
}
