// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode Group}: one record of the redo log (`obj/log.ts`) and the
 * transactions staged into it, with the states it goes through (staging,
 * committed, applying, applied, or failed) and what the engine keeps of
 * it until it is applied. Internal to `obj/`.
 *
 * @module
 */
import type { Future } from "../future/future.ts";
import { RECORD_HEADER } from "./layout.ts";
import type { Entry } from "./log_entry.ts";

/** Group state: transactions are being staged into it. */
export const STAGING = 0;
/** Sealed and durable; its entries are not all applied yet. */
export const COMMITTED = 1;
/** Its entries are being applied (a mover batch in flight). */
export const APPLYING = 2;
/** Applied: its transactions are done. */
export const APPLIED = 3;
/** Failed (sealing or applying): its transactions failed. */
export const FAILED = 4;

/** No object: the key of an entry of the heap or the state page. */
export const NO_KEY = -1;

/** One log record and the transactions staged into it. */
export class Group {
  /** Logical position of the record header. */
  start: number;
  /** Logical position just past the last entry. */
  end: number;
  /** Entries staged. */
  count = 0;
  /** STAGING … FAILED. */
  state = STAGING;
  /** Where the record started before it moved to the next lap. */
  wrapAt = -1;
  /**
   * Effects of its transactions, in order (a `TxEffects`, then its item,
   * each), told once it is applied.
   */
  done: unknown[] | null = null;
  /** The mover batch applying it. */
  apply: Future<void> | undefined = undefined;
  /** Why it failed. */
  error: unknown = undefined;
  /** Transactions staged into it. */
  txs = 0;
  /** The object each entry changes (NO_KEY: none), one per entry. */
  keys: number[] = [];
  /**
   * The entries added to the engine's overlay, a prefix of the record
   * (null where the key is NO_KEY); null until a read needed them.
   */
  items: (Entry | null)[] | null = null;
  /** Bytes of the record before the first entry not in `items`. */
  indexedSize = RECORD_HEADER;
  /** Its allocations and frees: offset, then the pending object, per change. */
  gens: unknown[] | null = null;
  /** Entries of `gens` (two items each) added to the pending objects' Map. */
  gensIndexed = 0;
  /** The homes its mover batch writes: target, then length, each. */
  moved: number[] | null = null;

  constructor(start: number) {
    this.start = start;
    this.end = start + RECORD_HEADER;
  }

  /** Bytes of the record so far. */
  get size(): number {
    return this.end - this.start;
  }
}
