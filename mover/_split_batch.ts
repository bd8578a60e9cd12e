// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode SplitBatch}: a batch divided, at its first poll, between a
 * device's engines and the polling thread. Internal to `mover/`.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import {
  Future,
  type FutureOptions,
  PENDING,
  type PollContext,
  type Step,
} from "../future/future.ts";
import { executeOnCpu } from "./cpu.ts";
import type { CheckedOp } from "./vdm.ts";

/** What a split decided: the poller's share and the engines' future. */
export interface Split {
  inline: CheckedOp[];
  offloaded: Future<void> | undefined;
}

/**
 * A batch too large to copy inline without thought: at its first poll it
 * asks `split` (which sees what is waiting in that poll), starts the
 * engines' part, copies its own share, and completes when the engines'
 * part has.
 */
export class SplitBatch extends Future<void> {
  #mover: { readonly closed: boolean };
  #className: string;
  #split: ((ctx: PollContext) => Split) | undefined;
  #offloaded: Future<void> | undefined;
  /** Why the inline share failed (reported once the engines' part ends). */
  #failure: unknown;

  /**
   * @param mover the mover (a closed one fails the batch at its first poll)
   * @param className for errors ("ThreadMover")
   * @param split decides the shares at the first poll
   */
  constructor(
    mover: { readonly closed: boolean },
    className: string,
    split: (ctx: PollContext) => Split,
    options?: FutureOptions,
  ) {
    super(options);
    this.#mover = mover;
    this.#className = className;
    this.#split = split;
  }

  protected step(ctx: PollContext): Step<void> {
    const split = this.#split;
    if (split !== undefined) {
      this.#split = undefined;
      if (this.#mover.closed) throw new ClosedError(this.#className, "poll");
      const { inline, offloaded } = split(ctx);
      this.#offloaded = offloaded;
      offloaded?.poll(ctx); // the engines start first
      try {
        for (const op of inline) executeOnCpu(op);
      } catch (e) {
        this.#failure = e; // the engines' part still runs: wait for it
      }
    }
    const rest = this.#offloaded;
    if (rest !== undefined) {
      const state = rest.poll(ctx);
      if (state !== "complete" && state !== "failed") return PENDING;
    }
    if (this.#failure !== undefined) throw this.#failure;
    if (rest?.state === "failed") throw rest.error;
  }

  protected override settle(): void {
    this.#split = undefined;
    this.#offloaded = undefined;
  }
}
