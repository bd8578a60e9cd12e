// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode Heap}: the persistent allocator. Chunks of 256 KiB are free,
 * a run of blocks of one size class, or part of a huge object; what each
 * is lives in the chunk table, and which blocks of a run are allocated in
 * the run's bitmap. Every change of either goes through the transaction's
 * redo log (an OR or AND of a bitmap word, a copy of a table entry), in
 * the same record as the rest of the transaction: an allocation is
 * published exactly when the transaction commits, so one that did not
 * commit is free again after recovery, and nothing leaks.
 *
 * The free space itself is volatile: rebuilt from the table and the
 * bitmaps at open, updated as transactions stage their changes (in the
 * order they run, which is the log's order), and restored from an undo
 * journal of the running transaction's changes when it aborts (a list of
 * numbers, not closures: these cost more on some runtimes than the
 * change itself).
 *
 * A run's volatile state, and its reading from its bitmap at open, are in
 * `obj/heap_run.ts`.
 *
 * @module
 */
import { OutOfSpaceError } from "../errors/mod.ts";
import { CorruptPoolError } from "./errors.ts";
import {
  CHUNK_FREE,
  CHUNK_HUGE,
  CHUNK_RUN,
  CHUNK_SIZE,
  CLASS_SIZES,
  classOf,
  type Geometry,
  OP_AND,
  OP_OR,
  RUNS,
} from "./layout.ts";
import { loadRun, Run } from "./heap_run.ts";
import type { ObjMedia } from "./media.ts";

/** How the heap records a change: the transaction it happens in. */
export interface HeapLog {
  /** Log a copy of one u64, given as its two u32 halves, to `target`. */
  word(target: number, lo: number, hi: number): void;
  /** Log zeroing `length` bytes at `target`. */
  zero(target: number, length: number): void;
  /** Log an OR64/AND64 of a mask into the word at `target`. */
  mask(op: number, target: number, lo: number, hi: number): void;
}

/** Undo journal ops (what to restore of the volatile state). */
const U_ALLOC = 1;
const U_NEW_RUN = 2;
const U_HUGE = 3;
const U_FREE_HUGE = 4;
const U_FREE = 5;
const U_RELEASE = 6;

/** Volatile chunk kind of the chunks after a huge object's first. */
const CHUNK_CONT = 3;

/** Heap occupancy. */
export interface HeapUsage {
  /** Chunks in the heap. */
  chunks: number;
  /** Free chunks. */
  freeChunks: number;
  /** Chunks that are runs. */
  runChunks: number;
  /** Chunks of huge objects. */
  hugeChunks: number;
  /** Allocated blocks and huge objects. */
  objects: number;
}

/** The persistent allocator's volatile state over its persistent metadata. */
export class Heap {
  #g: Geometry;
  #media: ObjMedia;
  #kinds: Uint8Array;
  #runs: (Run | undefined)[];
  #huge: Uint32Array;
  /** Runs with free blocks, per class (may hold stale ones: checked). */
  #avail: Run[][];
  #freeChunks = 0;
  #hint = 0;
  /** The running transaction's changes: op, then two arguments, each. */
  #journal: unknown[] = [];
  /** Slots of the journal in use (the array is never truncated). */
  #jn = 0;

  private constructor(media: ObjMedia, g: Geometry) {
    this.#g = g;
    this.#media = media;
    this.#kinds = new Uint8Array(g.chunks);
    this.#runs = new Array(g.chunks).fill(undefined);
    this.#huge = new Uint32Array(g.chunks);
    this.#avail = CLASS_SIZES.map(() => []);
  }

  /**
   * The heap as its chunk table and bitmaps say.
   *
   * @throws {CorruptPoolError} for an entry of unknown kind or class, or
   *   a huge object past the heap's end or over other chunks
   */
  static load(media: ObjMedia, g: Geometry, op: string): Heap {
    const h = new Heap(media, g);
    for (let k = 0; k < g.chunks;) {
      const at = g.chunkTable + 8 * k;
      const kind = media.getU32(at);
      const arg = media.getU32(at + 4);
      const bad = (detail: string) =>
        new CorruptPoolError(op, `chunk table entry ${k}`, detail);
      if (kind === CHUNK_FREE) {
        if (arg !== 0) throw bad(`a free chunk with argument ${arg}`);
        h.#freeChunks++;
        k++;
      } else if (kind === CHUNK_RUN) {
        if (arg >= CLASS_SIZES.length) throw bad(`unknown size class ${arg}`);
        const run = loadRun(media, k, arg, g.heap + k * CHUNK_SIZE, bad);
        h.#kinds[k] = CHUNK_RUN;
        h.#runs[k] = run;
        if (run.free > 0) h.#list(run);
        k++;
      } else if (kind === CHUNK_HUGE) {
        if (arg < 1 || k + arg > g.chunks) {
          throw bad(`a huge object of ${arg} chunks`);
        }
        for (let j = 1; j < arg; j++) {
          const v = g.chunkTable + 8 * (k + j);
          if (media.getU32(v) !== 0 || media.getU32(v + 4) !== 0) {
            throw bad(`its huge object covers chunk ${k + j}, which is in use`);
          }
          h.#kinds[k + j] = CHUNK_CONT;
        }
        h.#kinds[k] = CHUNK_HUGE;
        h.#huge[k] = arg;
        k += arg;
      } else {
        throw bad(`unknown kind ${kind}`);
      }
    }
    return h;
  }

  /** The file offset of chunk table entry `k`. */
  #entry(k: number): number {
    return this.#g.chunkTable + 8 * k;
  }

  #setEntry(k: number, kind: number, arg: number, log: HeapLog): void {
    log.word(this.#entry(k), kind, arg);
  }

  /**
   * Allocate a block of at least `bytes` (header included), logging the
   * change in `log`: the file offset of the block (its header).
   *
   * @throws {OutOfSpaceError} when no block or run of chunks is free
   */
  alloc(bytes: number, log: HeapLog, op: string): number {
    const cls = classOf(bytes);
    if (cls < 0) return this.#allocHuge(bytes, log, op);
    const run = this.#runFor(cls, log, op);
    const bits = run.bits;
    let w = run.cursor;
    const n = bits.length;
    for (let i = 0; i < n; i++, w = w + 1 === n ? 0 : w + 1) {
      if (bits[w] !== 0xffffffff) break;
    }
    const free = ~bits[w];
    const bit = 31 - Math.clz32(free & -free);
    const b = w * 32 + bit;
    bits[w] |= 1 << bit;
    run.free--;
    run.cursor = w;
    // noted before it is logged: a log out of room throws, and the
    // rollback must find every change of the volatile state
    this.#note(U_ALLOC, run, b);
    const word = run.base + (b >>> 6) * 8;
    const mask = 1 << (b & 31);
    if ((b & 63) < 32) log.mask(OP_OR, word, mask >>> 0, 0);
    else log.mask(OP_OR, word, 0, mask >>> 0);
    return run.block(b);
  }

  /** A run of `cls` with a free block, made from a free chunk if needed. */
  #runFor(cls: number, log: HeapLog, op: string): Run {
    const avail = this.#avail[cls];
    while (avail.length > 0) {
      const r = avail[avail.length - 1];
      if (r.free > 0 && this.#runs[r.chunk] === r) return r;
      avail.pop();
      r.listed = false;
    }
    const k = this.#takeChunks(1, op, log);
    const run = new Run(k, cls, this.#g.heap + k * CHUNK_SIZE);
    this.#kinds[k] = CHUNK_RUN;
    this.#runs[k] = run;
    this.#list(run);
    this.#note(U_NEW_RUN, k, 0);
    log.zero(run.base, RUNS[cls].bitmapBytes);
    this.#setEntry(k, CHUNK_RUN, cls, log);
    return run;
  }

  /** Put a run in its class's list of runs with room. */
  #list(run: Run): void {
    run.listed = true;
    this.#avail[run.cls].push(run);
  }

  /**
   * Find `n` contiguous free chunks (first fit from a hint), mark them.
   * When there are none, the empty runs are given back first (logged in
   * `log`): each class keeps one (see `#maybeRelease`), and nothing else
   * frees their chunks, which no other class, nor a huge object, could
   * have (an emptied map of values of many sizes held one per size).
   */
  #takeChunks(n: number, op: string, log: HeapLog): number {
    let k = this.#findChunks(n);
    if (k < 0 && this.#releaseEmpty(log)) k = this.#findChunks(n);
    if (k >= 0) return k;
    throw new OutOfSpaceError(
      op,
      n === 1
        ? "the pool has no free chunk for a new run"
        : `the pool has no ${n} contiguous free chunks`,
    );
  }

  /** Give back every empty run's chunk; whether there was one. */
  #releaseEmpty(log: HeapLog): boolean {
    let any = false;
    for (let k = 0; k < this.#g.chunks; k++) {
      const run = this.#runs[k];
      if (
        this.#kinds[k] !== CHUNK_RUN || run === undefined ||
        run.free !== RUNS[run.cls].blocks
      ) continue;
      // logged first: a log out of room throws with nothing changed here
      this.#setEntry(k, CHUNK_FREE, 0, log);
      this.#kinds[k] = CHUNK_FREE;
      this.#runs[k] = undefined;
      this.#freeChunks++;
      this.#note(U_RELEASE, run, 0);
      any = true;
    }
    return any;
  }

  /** The first of `n` contiguous free chunks, marked taken; -1: none. */
  #findChunks(n: number): number {
    const kinds = this.#kinds;
    const total = this.#g.chunks;
    if (this.#freeChunks >= n) {
      for (let pass = 0; pass < 2; pass++) {
        let k = pass === 0 ? this.#hint : 0;
        const end = pass === 0 ? total : Math.min(total, this.#hint + n);
        while (k + n <= end) {
          let j = 0;
          while (j < n && kinds[k + j] === CHUNK_FREE) j++;
          if (j === n) {
            this.#freeChunks -= n;
            this.#hint = k + n < total ? k + n : 0;
            return k;
          }
          k += j + 1;
        }
      }
    }
    return -1;
  }

  #allocHuge(bytes: number, log: HeapLog, op: string): number {
    const n = Math.ceil(bytes / CHUNK_SIZE);
    const k = this.#takeChunks(n, op, log);
    this.#kinds[k] = CHUNK_HUGE;
    this.#huge[k] = n;
    for (let j = 1; j < n; j++) this.#kinds[k + j] = CHUNK_CONT;
    this.#note(U_HUGE, k, n);
    this.#setEntry(k, CHUNK_HUGE, n, log);
    return this.#g.heap + k * CHUNK_SIZE;
  }

  /**
   * Where the block whose header is at `block` lies: its index in its
   * run (the chunk's), 0 for a huge object's first chunk, or -1 when no
   * allocated block starts there. A number, not an object: handles are
   * checked on every access.
   */
  #locate(block: number): number {
    const g = this.#g;
    if (block < g.heap || block >= g.heap + g.chunks * CHUNK_SIZE) return -1;
    const k = Math.floor((block - g.heap) / CHUNK_SIZE);
    const kind = this.#kinds[k];
    const base = g.heap + k * CHUNK_SIZE;
    if (kind === CHUNK_HUGE) return block === base ? 0 : -1;
    if (kind !== CHUNK_RUN) return -1;
    const run = this.#runs[k]!;
    const r = RUNS[run.cls];
    const off = block - base - r.bitmapBytes;
    if (off < 0 || off % r.blockSize !== 0) return -1;
    const b = off / r.blockSize;
    if (b >= r.blocks || !(run.bits[b >>> 5] & (1 << (b & 31)))) return -1;
    return b;
  }

  /** Bytes of the allocated block at `block` (header included), or 0. */
  capacity(block: number): number {
    if (this.#locate(block) < 0) return 0;
    const k = Math.floor((block - this.#g.heap) / CHUNK_SIZE);
    return this.#kinds[k] === CHUNK_HUGE
      ? this.#huge[k] * CHUNK_SIZE
      : CLASS_SIZES[this.#runs[k]!.cls];
  }

  /**
   * Bytes of the allocated block at `block` (header included) as the
   * chunk table and bitmaps in the pool say, or 0: the heap as the
   * transactions applied left it. The volatile state follows the
   * transactions staged, so it differs for a block that one not applied
   * yet allocated or freed; a read outside a transaction sees the applied
   * objects, and checks their headers against this.
   */
  appliedCapacity(block: number): number {
    const g = this.#g;
    if (block < g.heap || block >= g.heap + g.chunks * CHUNK_SIZE) return 0;
    const k = Math.floor((block - g.heap) / CHUNK_SIZE);
    const media = this.#media;
    const kind = media.getU32(g.chunkTable + 8 * k);
    const arg = media.getU32(g.chunkTable + 8 * k + 4);
    const base = g.heap + k * CHUNK_SIZE;
    if (kind === CHUNK_HUGE) return block === base ? arg * CHUNK_SIZE : 0;
    if (kind !== CHUNK_RUN || arg >= RUNS.length) return 0;
    const r = RUNS[arg];
    const off = block - base - r.bitmapBytes;
    if (off < 0 || off % r.blockSize !== 0) return 0;
    const b = off / r.blockSize;
    if (b >= r.blocks) return 0;
    // the bitmap's u64 words, little-endian: block b's bit is bit b % 32
    // of the u32 at 4 * (b / 32)
    const word = media.getU32(base + 4 * (b >>> 5));
    return word & (1 << (b & 31)) ? r.blockSize : 0;
  }

  /** Free the allocated block at `block`, logging the change. */
  free(block: number, log: HeapLog): void {
    const b = this.#locate(block);
    if (b < 0) throw new Error(`no allocated block at ${block}`);
    const k = Math.floor((block - this.#g.heap) / CHUNK_SIZE);
    const run = this.#kinds[k] === CHUNK_HUGE ? undefined : this.#runs[k]!;
    if (run === undefined) {
      const n = this.#huge[k];
      this.#setEntry(k, CHUNK_FREE, 0, log);
      for (let j = 0; j < n; j++) this.#kinds[k + j] = CHUNK_FREE;
      this.#huge[k] = 0;
      this.#freeChunks += n;
      this.#note(U_FREE_HUGE, k, n);
      return;
    }
    const bits = run.bits;
    const w = b >>> 5;
    bits[w] &= ~(1 << (b & 31));
    run.free++;
    this.#note(U_FREE, run, b);
    const word = run.base + (b >>> 6) * 8;
    const mask = ~(1 << (b & 31)) >>> 0;
    if ((b & 63) < 32) log.mask(OP_AND, word, mask, 0xffffffff);
    else log.mask(OP_AND, word, 0xffffffff, mask);
    if (!run.listed) this.#list(run);
    if (run.free === RUNS[run.cls].blocks) this.#maybeRelease(run, log);
  }

  /**
   * Give an empty run's chunk back, unless it is its class's only run
   * with room (alloc/free of one object would make and drop a run each).
   */
  #maybeRelease(run: Run, log: HeapLog): void {
    const avail = this.#avail[run.cls];
    let other = false;
    for (let i = 0; i < avail.length && !other; i++) {
      const r = avail[i];
      other = r !== run && r.free > 0 && this.#runs[r.chunk] === r;
    }
    if (!other) return;
    const k = run.chunk;
    this.#setEntry(k, CHUNK_FREE, 0, log);
    this.#kinds[k] = CHUNK_FREE;
    this.#runs[k] = undefined;
    this.#freeChunks++;
    this.#note(U_RELEASE, run, 0);
  }

  #note(op: number, a: unknown, b: number): void {
    const j = this.#journal;
    const n = this.#jn;
    if (n < j.length) {
      j[n] = op;
      j[n + 1] = a;
      j[n + 2] = b;
    } else j.push(op, a, b);
    this.#jn = n + 3;
  }

  /** The running transaction committed: forget its changes' undo. */
  settle(): void {
    this.#jn = 0;
  }

  /**
   * Where the undo journal of the running transaction stands: a
   * {@linkcode Heap.rollback} to it undoes what came after (one
   * allocation or free that failed half-way, its log out of room).
   */
  get mark(): number {
    return this.#jn;
  }

  /**
   * The running transaction aborted (or one of its allocations or frees
   * failed): undo its changes of the volatile state after `to` (a
   * {@linkcode Heap.mark}; all of them by default), newest first (each
   * restores what the one after it found).
   */
  rollback(to = 0): void {
    const j = this.#journal;
    const kinds = this.#kinds;
    for (let i = this.#jn - 3; i >= to; i -= 3) {
      const op = j[i] as number;
      const b = j[i + 2] as number;
      if (op === U_ALLOC || op === U_FREE) {
        const run = j[i + 1] as Run;
        if (op === U_ALLOC) {
          run.bits[b >>> 5] &= ~(1 << (b & 31));
          run.free++;
          // a later allocation may have dropped the run from its class's
          // list as full: its block is free again, so list it again
          if (!run.listed) this.#list(run);
        } else {
          run.bits[b >>> 5] |= 1 << (b & 31);
          run.free--;
        }
      } else if (op === U_RELEASE) {
        const run = j[i + 1] as Run;
        kinds[run.chunk] = CHUNK_RUN;
        this.#runs[run.chunk] = run;
        this.#freeChunks--;
        if (!run.listed) this.#list(run);
      } else {
        const k = j[i + 1] as number;
        if (op === U_NEW_RUN) {
          kinds[k] = CHUNK_FREE;
          this.#runs[k] = undefined;
          this.#freeChunks++;
        } else if (op === U_HUGE) {
          for (let c = 0; c < b; c++) kinds[k + c] = CHUNK_FREE;
          this.#huge[k] = 0;
          this.#freeChunks += b;
        } else {
          kinds[k] = CHUNK_HUGE;
          for (let c = 1; c < b; c++) kinds[k + c] = CHUNK_CONT;
          this.#huge[k] = b;
          this.#freeChunks -= b;
        }
      }
      j[i + 1] = 0;
    }
    this.#jn = to;
  }

  /** Every allocated block's header offset, in file order. */
  *blocks(): Generator<number> {
    const g = this.#g;
    for (let k = 0; k < g.chunks; k++) {
      if (this.#kinds[k] === CHUNK_HUGE) yield g.heap + k * CHUNK_SIZE;
      const run = this.#runs[k];
      if (this.#kinds[k] !== CHUNK_RUN || run === undefined) continue;
      const { blocks } = RUNS[run.cls];
      for (let b = 0; b < blocks; b++) {
        if (run.bits[b >>> 5] & (1 << (b & 31))) yield run.block(b);
      }
    }
  }

  /** Occupancy figures. */
  usage(): HeapUsage {
    let runChunks = 0;
    let hugeChunks = 0;
    let objects = 0;
    for (let k = 0; k < this.#g.chunks; k++) {
      const kind = this.#kinds[k];
      if (kind === CHUNK_RUN) {
        runChunks++;
        const run = this.#runs[k]!;
        objects += RUNS[run.cls].blocks - run.free;
      } else if (kind === CHUNK_HUGE) {
        hugeChunks += this.#huge[k];
        objects++;
      }
    }
    return {
      chunks: this.#g.chunks,
      freeChunks: this.#freeChunks,
      runChunks,
      hugeChunks,
      objects,
    };
  }

  /** The media (for the headers of blocks). */
  get media(): ObjMedia {
    return this.#media;
  }
}
