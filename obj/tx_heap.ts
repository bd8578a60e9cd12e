// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A running `Transaction`'s allocations and frees in the heap
 * (`obj/tx.ts`): the heap's changes are redo entries of the
 * transaction's group ({@linkcode heapLogFor}), and an allocation or a
 * free that fails half-way is taken back whole ({@linkcode takeBack}).
 * Internal to `obj/`.
 *
 * @module
 */
import type { Engine } from "./engine.ts";
import type { HeapLog } from "./heap.ts";
import { OBJECT_HEADER } from "./layout.ts";
import { type Group, NO_KEY } from "./log_group.ts";
import { addFresh, type Fresh } from "./tx_fresh.ts";

/** The engine and group of the transaction the heap works for. */
let heapE: Engine;
let heapG: Group;

/**
 * The heap's door to the transaction it works for: one object for all,
 * as callbacks never overlap.
 */
const heapLog: HeapLog = {
  word(target, lo, hi) {
    heapE.log.word(heapG, target, lo, hi, "alloc", NO_KEY);
  },
  zero(target, length) {
    heapE.log.zero(heapG, target, length, "alloc", NO_KEY);
  },
  mask(op, target, lo, hi) {
    heapE.log.mask(heapG, op, target, lo, hi, "alloc");
  },
};

/**
 * The heap's door to the transaction of `e` staging into `g`, for one
 * call of the heap.
 */
export function heapLogFor(e: Engine, g: Group): HeapLog {
  heapE = e;
  heapG = g;
  return heapLog;
}

/**
 * Allocate an object of `size` bytes of data in the transaction of `e`
 * staging into `g`: it is recorded as the transaction's (its data at
 * `block + OBJECT_HEADER`, its generation in `gen`).
 */
export function allocFresh(
  e: Engine,
  g: Group,
  size: number,
  type: number,
  op: string,
): Fresh {
  const bytes = OBJECT_HEADER + size;
  // an allocation logs several entries (bitmap, chunk table, header):
  // one that fails half-way (the log out of room) is taken back whole,
  // so a callback that catches the error commits none of it
  const size0 = g.end - g.start;
  const count0 = g.count;
  const mark = e.heap.mark;
  try {
    const block = e.heap.alloc(bytes, heapLogFor(e, g), op);
    return addFresh(
      e,
      g,
      block,
      block + OBJECT_HEADER,
      size,
      type,
      e.nextGen(),
      op,
    );
  } catch (err) {
    takeBack(e, g, size0, count0, mark);
    throw err;
  }
}

/**
 * Take back an allocation or a free that failed half-way: the entries
 * it staged after (`size`, `count`) and its heap changes after `mark`.
 */
export function takeBack(
  e: Engine,
  g: Group,
  size: number,
  count: number,
  mark: number,
): void {
  e.pending.truncate(g, size, count);
  e.heap.rollback(mark);
}
