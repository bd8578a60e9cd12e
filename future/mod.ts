// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Lazy, poll-based futures (miniasync re-done): `Future`, combinators, and
 * the executor behind `await`, `wait` and `waitAll`.
 *
 * ```ts
 * import { all, chain, ready, wait } from "@asyncpmem/asyncpmem/future";
 *
 * const f = chain(ready(1), (n) => ready(n + 1));
 * console.log(wait(f), await all([ready("a"), ready("b")]));
 * ```
 *
 * @module
 */
export {
  Future,
  type FutureOptions,
  type FutureState,
  NO_CONTEXT,
  NOT_STARTED,
  PENDING,
  type PollContext,
  type Step,
  type WakeSource,
} from "./future.ts";
export { wait, waitAll } from "./blocking.ts";
export {
  all,
  chain,
  fromStep,
  map,
  race,
  ready,
  rejected,
} from "./combinators.ts";
