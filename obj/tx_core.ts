// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode TxCore}: the state of one running `Transaction` (`obj/tx.ts`)
 * and what changes it: where its entries start in its group (to take them
 * back), its undo callbacks and effects, its small objects not written
 * yet, the handle it checked last, and its end (commit, or abort and
 * undo). The public class checks its arguments and holds its core in a
 * private field; the pool's own code reaches the core through `txHooks`
 * and `txControl`. Internal to `obj/`.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import type { Engine } from "./engine.ts";
import { newHandle, type ObjectHandle } from "./handle.ts";
import { badRange } from "./object_bytes.ts";
import { OBJECT_HEADER, TYPE_ROOT } from "./layout.ts";
import { type Group, NO_KEY } from "./log_group.ts";
import { freedObject } from "./pending.ts";
import type { TxEffects } from "./tx.ts";
import {
  freshAt,
  LARGE,
  logFree,
  logUnwritten,
  stageFresh,
  UNWRITTEN,
} from "./tx_fresh.ts";
import { allocFresh, heapLogFor, takeBack } from "./tx_heap.ts";

/** The state of one running transaction. Internal. */
export class TxCore {
  /** The pool's engine. */
  readonly e: Engine;
  /** The group the transaction stages into. */
  readonly g: Group;
  /** Between `beginInternalWrites` and its end. */
  #internal = false;
  #size0: number;
  #count0: number;
  #sync: boolean;
  #undo: (() => void)[] | null = null;
  /** Small objects allocated and not written yet. */
  #unwritten = 0;
  /**
   * Length of the group's effect list when the transaction began: its own
   * effects follow (staged there directly, no list of its own; an abort
   * takes them back out).
   */
  #done0: number;
  #open = true;
  /** Whether what it staged was taken back (an abort, or a cut). */
  #undone = false;
  #failure: unknown = undefined;
  /** A handle found live since the last free (checked again after one). */
  #checked: ObjectHandle | null = null;

  constructor(engine: Engine, group: Group, sync: boolean) {
    this.e = engine;
    this.g = group;
    this.#size0 = group.end - group.start;
    this.#count0 = group.count;
    this.#done0 = group.done === null ? 0 : group.done.length;
    this.#sync = sync;
  }

  /** Why the transaction fails (undefined: it does not). */
  get failure(): unknown {
    return this.#failure;
  }

  /** Fail the transaction with `error` (the first error given stays). */
  doom(error: unknown): void {
    if (this.#failure === undefined) this.#failure = error;
  }

  /** Doom the transaction and take back what it staged now. */
  cut(error: unknown): void {
    if (this.#failure === undefined) this.#failure = error;
    try {
      this.#undoAll();
    } catch {
      // an onAbort callback threw: the others ran, and the
      // transaction already fails with `error` (thrown here, it
      // would fail the poll that seals the group instead)
    }
  }

  /** Throw once the transaction ended, or its failure once doomed. */
  live(op: string): void {
    this.ended(op);
    if (this.#failure !== undefined) throw this.#failure;
  }

  /**
   * Throw once the transaction ended. The internal hooks take only this
   * check, not a doomed one's failure: they run in a doomed transaction's
   * cleanup (`endInternalWrites` in a `finally`), where throwing would hide
   * the failure.
   */
  ended(op: string): void {
    if (!this.#open) throw new ClosedError("Transaction", op);
  }

  #onUndo(fn: () => void): void {
    (this.#undo ??= []).push(fn);
  }

  /**
   * Allocate an object of `size` bytes and type `type`, both checked by
   * the caller, as is the transaction (see `live`).
   */
  alloc(size: number, type: number): ObjectHandle {
    const e = this.e;
    const f = allocFresh(e, this.g, size, type, "alloc");
    if (f.rel === UNWRITTEN) this.#unwritten++;
    return newHandle(e.token, f.block + OBJECT_HEADER, size, type, f.gen);
  }

  /**
   * Allocate an object of an internal type: its offset (no handle is
   * made, for a caller that needs none).
   */
  allocAt(size: number, type: number): number {
    this.live("alloc");
    const f = allocFresh(this.e, this.g, size, type, "alloc");
    if (f.rel === UNWRITTEN) this.#unwritten++;
    return f.block + OBJECT_HEADER;
  }

  /**
   * Free the live object at `offset`, an internal one included (the
   * caller knows it is live).
   */
  free(offset: number): void {
    this.live("free");
    const e = this.e;
    const g = this.g;
    const f = freshAt(e, offset);
    this.#checked = null;
    // the heap first: `logFree` changes a copy staged in the log in
    // place, which nothing could take back if the heap's entries then
    // found the log out of room; a free that fails is taken back whole
    const size0 = g.end - g.start;
    const count0 = g.count;
    const mark = e.heap.mark;
    try {
      e.heap.free(offset - OBJECT_HEADER, heapLogFor(e, g));
      logFree(e, g, f, offset);
    } catch (err) {
      takeBack(e, g, size0, count0, mark);
      throw err;
    }
    if (f !== undefined && f.rel === UNWRITTEN) this.#unwritten--;
    e.locals.set(offset, freedObject());
  }

  /** Check a handle (once until the transaction frees something). */
  check(o: ObjectHandle, op: string): void {
    // (`#checked` starts and is reset as null, which no handle is)
    if (o === this.#checked && o !== null) return;
    this.e.check(o, op);
    this.#checked = o;
  }

  /**
   * Refuse a write to an object of the pool's own (a map's descriptor,
   * directory, leaf or node; `pool.object(offset)` hands out handles to
   * them) unless the pool's code writes it: a stray write broke a map. The
   * root is the user's.
   */
  ours(o: ObjectHandle, op: string): void {
    if (this.#internal || o.type === TYPE_ROOT) return;
    throw new TypeError(
      `Cannot ${op}: the object belongs to the pool (a map's structure)`,
    );
  }

  /**
   * Let the writes that follow reach the pool's own objects (a map's
   * structure) until `endInternalWrites` with the value returned.
   */
  beginInternalWrites(): boolean {
    this.ended("beginInternalWrites");
    const was = this.#internal;
    this.#internal = true;
    return was;
  }

  /** End what `beginInternalWrites` began. */
  endInternalWrites(was: boolean): void {
    this.ended("endInternalWrites");
    this.#internal = was;
  }

  /** Check a handle and a range of its object. */
  range(o: ObjectHandle, offset: number, length: number, op: string): void {
    this.live(op);
    this.check(o, op);
    // the integer tests first: a bigint must not reach the sum
    if (
      !Number.isInteger(offset) || !Number.isInteger(length) ||
      !(offset >= 0 && length >= 0 && offset + length <= o.size)
    ) badRange(o.size, offset, length, op);
  }

  /**
   * Where the data of a small object allocated by this transaction lies
   * in the log (its copy staged now if it was not written yet), or -1 for
   * any other object. Valid until the next entry is staged.
   */
  stage(offset: number, op: string): number {
    const e = this.e;
    const f = freshAt(e, offset);
    if (f === undefined || f.rel === LARGE) return -1;
    if (f.rel === UNWRITTEN) {
      const at = stageFresh(e, this.g, f, offset, op);
      this.#unwritten--;
      return at;
    }
    return e.log.at(this.g, f.rel) + OBJECT_HEADER;
  }

  /**
   * Store a u64 below 2^53 at `offset` of an internal object the caller
   * knows is live and large enough (a map's leaf): no handle check, so no
   * pending object is looked up.
   */
  setU64Internal(o: ObjectHandle, offset: number, value: number): void {
    this.live("setU64");
    const lo = value >>> 0;
    this.storeU64(o, offset, lo, (value - lo) / 2 ** 32);
  }

  /**
   * Stage a u64, given as its two u32 halves, at `offset` of `o` (checked
   * by the caller): into the object's staged copy when it has one, else
   * as a log word.
   */
  storeU64(o: ObjectHandle, offset: number, lo: number, hi: number): void {
    const at = this.stage(o.offset, "setU64");
    if (at >= 0) {
      this.e.media.store32(at + offset, lo);
      this.e.media.store32(at + offset + 4, hi);
      return;
    }
    this.e.log.word(this.g, o.offset + offset, lo, hi, "setU64", o.offset);
  }

  /** Log a write to the state page (root, catalog). */
  writeState(target: number, bytes: Uint8Array): void {
    this.live("write");
    this.e.log.copy(this.g, target, bytes, 0, bytes.length, "write", NO_KEY);
  }

  /**
   * Run `fn` on abort (undo of volatile changes), newest first.
   *
   * @throws {TypeError} when `fn` is no function
   */
  onAbort(fn: () => void): void {
    // kept past its end, the callback would never run
    this.ended("onAbort");
    // refused here: at the abort it would fail it in the abort's words
    if (typeof fn !== "function") {
      throw new TypeError("Cannot onAbort: fn must be a function");
    }
    this.#onUndo(fn);
  }

  /**
   * Tell `target` about `item` once the transaction is applied, or when
   * it aborts (effects abort newest first).
   */
  effect<T>(target: TxEffects<T>, item: T): void {
    // kept past its end, the effect would join the group of later
    // transactions (an asynchronous one stages several), and be told of
    // their outcome
    this.ended("effect");
    (this.g.done ??= []).push(target, item);
  }

  /**
   * Log the small objects never written, publish the objects allocated
   * and freed (asynchronous: transactions staged after it see them); the
   * transaction is done.
   */
  end(): void {
    const e = this.e;
    const g = this.g;
    if (this.#unwritten > 0) {
      try {
        logUnwritten(e, g);
      } catch (err) {
        this.abort();
        throw err;
      }
    }
    this.#open = false;
    g.txs++;
    e.heap.settle();
    if (!this.#sync) e.pending.publish(g, e.locals);
    e.locals.clear();
    e.current = undefined;
  }

  /** Undo everything the transaction staged; it is over. */
  abort(): void {
    const e = this.e;
    this.#open = false;
    try {
      this.#undoAll();
    } finally {
      // an onAbort callback that threw fails the transaction with its
      // error, but the pool's running transaction must end all the same:
      // kept, every later one failed and the pool could not be closed
      e.current = undefined;
      e.locals.clear();
      e.abandon(this.g);
    }
  }

  /**
   * Take back everything the transaction staged (once: a transaction cut
   * while its callback runs is not undone again when it ends).
   */
  #undoAll(): void {
    if (this.#undone) return;
    this.#undone = true;
    const e = this.e;
    const g = this.g;
    e.pending.truncate(g, this.#size0, this.#count0);
    e.heap.rollback();
    const done = g.done;
    if (done !== null && done.length > this.#done0) {
      for (let i = done.length - 2; i >= this.#done0; i -= 2) {
        (done[i] as TxEffects<unknown>).aborted(done[i + 1]);
      }
      done.length = this.#done0;
    }
    const undo = this.#undo;
    if (undo !== null) {
      this.#undo = null;
      // every callback runs (each undoes its own volatile change), then
      // the first error of one is thrown
      let failed = false, error: unknown;
      for (let i = undo.length - 1; i >= 0; i--) {
        try {
          undo[i]();
        } catch (err) {
          if (!failed) [failed, error] = [true, err];
        }
      }
      if (failed) throw error;
    }
  }
}
