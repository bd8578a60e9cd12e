// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode Ledger}: what a workload issued and what was acknowledged,
 * and so what each block may hold after a crash. Operations are recorded
 * as labels ("issue write 5 17", "ack write 5 17", "issue zero 5",
 * "ack error 5"), the same text whether they come from a tracer's marks
 * or from a child process's stdout.
 *
 * A block's state is a payload version (≥ 1), {@linkcode ZERO} (reads as
 * zeros) or {@linkcode ERROR} (reads fail). After a crash a block may be
 * in the state of its latest acknowledged operation, or of any operation
 * issued after it and not acknowledged; updates of one block take effect
 * in issue order, so an acknowledgement also retires every earlier one
 * (whose own acknowledgement may still be recorded later).
 *
 * @module
 */

/** The state of a block that reads as zeros. */
export const ZERO = 0;
/** The state of a block whose reads fail (set by `setError`). */
export const ERROR = -1;

/** One block update. */
export interface BlockOp {
  /** `write` stores a payload version; `zero` and `error` set flags. */
  op: "write" | "zero" | "error";
  /** The block. */
  lba: number;
  /** The payload version of a write (≥ 1); ignored otherwise. */
  version: number;
}

/** The state a block is in once `op` took effect. */
export function stateOf(op: BlockOp): number {
  return op.op === "write" ? op.version : op.op === "zero" ? ZERO : ERROR;
}

/** The label recording that `op` was issued or acknowledged. */
export function opLabel(phase: "issue" | "ack", op: BlockOp): string {
  return op.op === "write"
    ? `${phase} write ${op.lba} ${op.version}`
    : `${phase} ${op.op} ${op.lba}`;
}

/** Parse a label of {@linkcode opLabel}; `null` for any other text. */
export function parseLabel(
  label: string,
): { phase: "issue" | "ack"; op: BlockOp } | null {
  const m = /^(issue|ack) (write|zero|error) (\d+)(?: (\d+))?$/.exec(label);
  if (m === null) return null;
  const op = m[2] as BlockOp["op"];
  if ((op === "write") !== (m[4] !== undefined)) return null;
  return {
    phase: m[1] as "issue" | "ack",
    op: { op, lba: Number(m[3]), version: op === "write" ? Number(m[4]) : 0 },
  };
}

/** The block states a crash may leave, from issued and acknowledged ops. */
export class Ledger {
  /** Per block: the acknowledged state and the issue number behind it. */
  #acked = new Map<number, { state: number; seq: number }>();
  /** Per block: operations issued and not acknowledged, in issue order. */
  #inflight = new Map<number, { state: number; seq: number }[]>();
  /** Operations retired unacknowledged by a later one's ack ("lba:state"). */
  #retired = new Set<string>();
  #seq = 0;

  /**
   * @param initial the state of blocks before the first operation
   *   (absent blocks read as zeros)
   */
  constructor(initial: ReadonlyMap<number, number> = new Map()) {
    for (const [lba, state] of initial) this.#acked.set(lba, { state, seq: 0 });
  }

  /** Record `op` as issued. */
  issue(op: BlockOp): void {
    const list = this.#inflight.get(op.lba) ?? [];
    list.push({ state: stateOf(op), seq: ++this.#seq });
    this.#inflight.set(op.lba, list);
  }

  /**
   * Record `op` as acknowledged (it must have been issued).
   *
   * @throws {Error} when it was not issued
   */
  ack(op: BlockOp): void {
    const state = stateOf(op);
    const list = this.#inflight.get(op.lba) ?? [];
    const i = list.findIndex((e) => e.state === state);
    if (i < 0) {
      // a later update of the block was acknowledged first
      if (this.#retired.delete(`${op.lba}:${state}`)) return;
      throw new Error(`Cannot acknowledge ${opLabel("ack", op)}: not issued`);
    }
    const entry = list[i];
    const acked = this.#acked.get(op.lba);
    if (acked === undefined || acked.seq < entry.seq) {
      this.#acked.set(op.lba, entry);
    }
    for (const e of list) {
      if (e.seq < entry.seq) this.#retired.add(`${op.lba}:${e.state}`);
    }
    const rest = list.filter((e) => e.seq > entry.seq);
    if (rest.length > 0) this.#inflight.set(op.lba, rest);
    else this.#inflight.delete(op.lba);
  }

  /** Record a label; other text is ignored. Returns whether it was an op. */
  record(label: string): boolean {
    const parsed = parseLabel(label);
    if (parsed === null) return false;
    if (parsed.phase === "issue") this.issue(parsed.op);
    else this.ack(parsed.op);
    return true;
  }

  /** The states `lba` may be in after a crash now. */
  allowed(lba: number): number[] {
    const acked = this.#acked.get(lba);
    const states = [acked?.state ?? ZERO];
    for (const e of this.#inflight.get(lba) ?? []) {
      if (acked === undefined || e.seq > acked.seq) states.push(e.state);
    }
    return states;
  }
}
