// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode Applier}: how a sealed group of asynchronous transactions is
 * applied. Its entries are read from the ring once, into scratch typed
 * arrays kept for the next group (no object per entry); a group whose
 * copies and fills are all short, or whose entries overlap (other than
 * two bitmap masks, which commute), is applied in order on this thread;
 * otherwise its copies and fills of `MOVER_MIN` bytes or more (those
 * that lie in one window of the pool's media: see `ObjMedia.fits`) go to
 * the mover as one batch while this thread applies the rest. Internal to
 * `obj/`.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import type { Future } from "../future/future.ts";
import type { BatchEntry, Vdm } from "../mover/vdm.ts";
import { moverFuture } from "../mover/_user_future.ts";
import {
  ENTRY_HEADER,
  OP_AND,
  OP_COPY,
  OP_OR,
  OP_ZERO,
  RECORD_HEADER,
} from "./layout.ts";
import type { RedoLog } from "./log.ts";
import { applyOne, payloadOf } from "./log_entry.ts";
import type { Group } from "./log_group.ts";
import type { ObjMedia } from "./media.ts";

/** Entries at least this long are applied by the mover. */
const MOVER_MIN = 64;
/** Entry indexes fit below this in a sort key (target × INDEX + index). */
const INDEX = 2 ** 20;

/** The application of groups of one pool. */
export class Applier {
  #media: ObjMedia;
  #log: RedoLog;
  #mover: Vdm;
  #ops = new Uint8Array(64);
  #targets = new Float64Array(64);
  #lengths = new Float64Array(64);
  #ats = new Float64Array(64);

  constructor(media: ObjMedia, log: RedoLog, mover: Vdm) {
    this.#media = media;
    this.#log = log;
    this.#mover = mover;
  }

  /**
   * Start applying a sealed group: the mover batch applying its long
   * copies and fills (the rest applied here), or undefined when it was
   * applied whole here. `g.moved` lists what the batch writes.
   *
   * @throws whatever the mover's `batch` throws (nothing applied by it)
   */
  start(g: Group): Future<void> | undefined {
    const n = g.count;
    if (this.#ops.length < n) this.#grow(n);
    const ops = this.#ops;
    const targets = this.#targets;
    const lengths = this.#lengths;
    const ats = this.#ats;
    const media = this.#media;
    let q = this.#log.phys(g.start) + RECORD_HEADER;
    let big = 0;
    for (let i = 0; i < n; i++) {
      const op = media.getU32(q);
      const length = media.getU32(q + 4);
      ops[i] = op;
      lengths[i] = length;
      targets[i] = media.read64(q + 8);
      ats[i] = q + ENTRY_HEADER;
      if (
        length >= MOVER_MIN && (op === OP_COPY || op === OP_ZERO) &&
        media.fits(targets[i], length) &&
        (op === OP_ZERO || media.fits(q + ENTRY_HEADER, length))
      ) big++;
      q += ENTRY_HEADER + payloadOf(op, length);
    }
    if (big === 0 || this.#overlapping(n)) {
      this.#log.applyAll(g);
      return undefined;
    }
    // an entry across windows (on Bun, a pool over 64 MiB) is applied
    // here, a window at a time: a view of it would need a window (or a
    // buffer of the whole pool) of its own
    const batch: BatchEntry[] = [];
    const moved: number[] = [];
    for (let i = 0; i < n; i++) {
      const op = ops[i];
      const target = targets[i];
      const length = lengths[i];
      const at = ats[i];
      if (
        length < MOVER_MIN || (op !== OP_COPY && op !== OP_ZERO) ||
        !media.fits(target, length) ||
        (op === OP_COPY && !media.fits(at, length))
      ) {
        applyOne(media, op, target, length, at);
        continue;
      }
      moved.push(target, length);
      if (op === OP_COPY) {
        batch.push({
          op: "memcpy",
          dst: media.u8At(target, length),
          dstOffset: media.index(target, length),
          src: media.bytes(at, length),
        });
      } else {
        batch.push({
          op: "memset",
          dst: media.bytes(target, length),
          value: 0,
        });
      }
    }
    let f: Future<void>;
    try {
      // ("apply": a group holds transactions of several calls)
      f = moverFuture(this.#mover.batch(batch), this.#mover, "batch", "apply");
    } catch (e) {
      if (this.appliedHere(g, e)) return undefined;
      throw e;
    }
    g.moved = moved;
    return f;
  }

  /**
   * Whether `error`, of a group's batch (thrown by `batch`, or its
   * future's failure), is the refusal of a closed mover (one shared with
   * other stores, closed by its owner): the group is then applied whole
   * on this thread (its entries, some perhaps applied already, apply
   * again as they are). Its transactions are committed (durable in the
   * redo log) and must be applied: failed, they stopped the pool ("the
   * pool stopped after a failure: batch: ThreadMover is closed").
   */
  appliedHere(g: Group, error: unknown): boolean {
    if (!(error instanceof ClosedError) || !this.#mover.closed) return false;
    this.#log.applyAll(g);
    g.moved = null; // applyAll notes dirty what it writes
    return true;
  }

  /** Note dirty the homes a group's mover batch wrote. */
  moved(g: Group): void {
    const moved = g.moved;
    if (moved === null) return;
    for (let i = 0; i < moved.length; i += 2) {
      this.#media.dirty(moved[i], moved[i + 1]);
    }
    g.moved = null;
  }

  #grow(n: number): void {
    const size = Math.max(n, this.#ops.length * 2);
    this.#ops = new Uint8Array(size);
    this.#targets = new Float64Array(size);
    this.#lengths = new Float64Array(size);
    this.#ats = new Float64Array(size);
  }

  /**
   * Whether the `n` entries read overlap in a way that needs them applied
   * in order: sorted by target (a numeric sort of target × INDEX + index,
   * no comparator), any entry that starts before a plain one ends, or a
   * plain one that starts before a mask ends.
   */
  #overlapping(n: number): boolean {
    if (n < 2) return false;
    const ops = this.#ops;
    const targets = this.#targets;
    const lengths = this.#lengths;
    let order: ArrayLike<number>;
    if (n < INDEX) {
      const keys = new Float64Array(n);
      for (let i = 0; i < n; i++) keys[i] = targets[i] * INDEX + i;
      keys.sort();
      for (let i = 0; i < n; i++) keys[i] = keys[i] % INDEX;
      order = keys;
    } else {
      order = Array.from({ length: n }, (_, i) => i)
        .sort((a, b) => targets[a] - targets[b]);
    }
    let endPlain = -1;
    let endMask = -1;
    for (let j = 0; j < n; j++) {
      const i = order[j];
      const target = targets[i];
      const mask = ops[i] === OP_OR || ops[i] === OP_AND;
      if (target < endPlain || (!mask && target < endMask)) return true;
      const end = target + lengths[i];
      if (mask) endMask = Math.max(endMask, end);
      else endPlain = Math.max(endPlain, end);
    }
    return false;
  }
}
