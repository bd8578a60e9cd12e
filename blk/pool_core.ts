// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode PoolCore}: the state of an open `BlockPool` (its file,
 * mapping, arenas, operations in flight) and the rules every operation
 * of it follows: refused once closed, on a read-only pool, or inside a
 * progress callback of check() or info(); the BTT laid out or adopted on
 * first need; a close from code an update runs. The synchronous
 * operations run here (`pool.ts` documents them, and keeps the read's
 * fast path), `pool_scans.ts` runs check() and info(), and
 * `pool_async.ts` makes the futures. Internal to `blk/`.
 *
 * @module
 */
import { isBytes } from "../ffi/validate.ts";
import { ClosedError, PmemError } from "../errors/mod.ts";
import { EROFS } from "../errors/errno.ts";
import type { Mapping } from "../pmem2/mapping.ts";
import type { IndexedReader } from "../pmem2/reader.ts";
import { FutureRegistry } from "../future/registry.ts";
import type { Arena, ArenaPlace } from "./arena.ts";
import { MAP_ZERO } from "./layout.ts";
import type { Media } from "./media.ts";
import type { PoolFile } from "./open.ts";
import { type Btt, layOutBtt, loadBtt } from "./btt.ts";
import { leavePool } from "./join.ts";
import {
  arenaOf,
  giveLbas,
  readBlock,
  readManyInto,
  takeLbas,
} from "./reads.ts";
import {
  addIsolatePool,
  setFlagNow,
  type SyncUpdateContext,
  writeNow,
} from "./sync_update.ts";
import { addIsolateAccess, type PoolAccess } from "./async_io.ts";
import { leaveShared, settleInFlight } from "./close.ts";
import { WriteScheduler } from "./write_scheduler.ts";
import { ReadScheduler } from "./async_read.ts";
import {
  byteLengthOf,
  checkBlockData,
  checkInto,
  checkLba,
  goneTyped,
} from "./options.ts";

/** An open `BlockPool`'s state, and its synchronous operations. */
export class PoolCore {
  readonly #file: PoolFile;
  #map: Mapping | null;
  readonly #media: Media;
  readonly #blockSize: number;
  #blockCount = 0;
  readonly #readOnly: string | null;
  #places: ArenaPlace[] = [];
  #arenas: Arena[] = [];
  /**
   * The native reader of the pool's arena when it has exactly one (the
   * read fast path's).
   */
  #only: IndexedReader | undefined;
  readonly #repaired: string[] = [];
  readonly #inflight = new FutureRegistry();
  readonly #access: PoolAccess;
  /** The shared control words (openers of the pool in this process). */
  readonly #control: Int32Array;
  /** What its synchronous updates need. */
  readonly #sync: SyncUpdateContext;
  /**
   * The long read whose progress callback may run now (its callback may
   * call us), with why it refuses updates and checks there: see
   * `BlockPool.check`, `BlockPool.info`.
   */
  #inProgress: string | undefined;
  /** The map of a close asked for in a progress callback, run after it. */
  #closeAfterProgress: Mapping | undefined;
  /**
   * Synchronous updates of this pool running now (a close from code one
   * runs, a testing tracer's callback, comes from inside it).
   */
  #updating = 0;
  /** Whether {@linkcode PoolCore.close} runs now. */
  #closing = false;

  /**
   * @param file the pool file, created or opened
   * @param btt its BTT, laid out or loaded
   */
  constructor(file: PoolFile, btt: Btt) {
    this.#file = file;
    this.#map = file.map;
    this.#media = file.media;
    this.#blockSize = file.blockSize;
    this.#readOnly = file.readOnly;
    this.#control = file.join.shared.control;
    this.#sync = {
      media: this.#media,
      control: this.#control,
      inflight: this.#inflight,
    };
    this.adopt(btt);
    this.#access = {
      map: file.map,
      writes: new WriteScheduler(
        this.#media,
        () => this.outsideProgress("commit a write"),
      ),
      reads: new ReadScheduler(this.#media, file.blockSize),
      blockSize: file.blockSize,
      live: (op) => void this.live(op),
      forUpdate: (lba, op) => this.#forUpdate(lba, op),
      track: (future) => this.#inflight.add(future),
      settled: (slot, future) => this.#inflight.remove(slot, future),
      control: this.#control,
      forRead: (lba) => {
        if (
          this.#arenas.length === 0 && !this.adoptShared("readAsync")
        ) {
          return null;
        }
        return arenaOf(this.#arenas, lba);
      },
    };
    addIsolatePool(this.#inflight);
    addIsolateAccess(this.#access);
  }

  /** The pool file. */
  get file(): PoolFile {
    return this.#file;
  }

  /** The pool's media (closed with the pool). */
  get media(): Media {
    return this.#media;
  }

  /** Bytes per block. */
  get blockSize(): number {
    return this.#blockSize;
  }

  /** Blocks of the pool (0 until a BTT is laid out or adopted). */
  get blockCount(): number {
    return this.#blockCount;
  }

  /** Why the pool is read-only, or null. */
  get readOnly(): string | null {
    return this.#readOnly;
  }

  /** The arenas' places (none before a layout). */
  get places(): ArenaPlace[] {
    return this.#places;
  }

  /** The arenas (none before a layout). */
  get arenas(): Arena[] {
    return this.#arenas;
  }

  /** The native reader of the only arena, if the pool has one arena. */
  get only(): IndexedReader | undefined {
    return this.#only;
  }

  /** What the open repaired, a line each. */
  get repaired(): readonly string[] {
    return this.#repaired;
  }

  /** The operations in flight (for close). */
  get inflight(): FutureRegistry {
    return this.#inflight;
  }

  /** What the pool's futures reach of it. */
  get access(): PoolAccess {
    return this.#access;
  }

  /** Whether the pool is closed (for its callers). */
  get closed(): boolean {
    return this.#map === null;
  }

  /**
   * The rule of the progress callback running now (see
   * {@linkcode PoolCore.outsideProgress}), or undefined.
   */
  get inProgress(): string | undefined {
    return this.#inProgress;
  }

  set inProgress(rule: string | undefined) {
    this.#inProgress = rule;
  }

  /** Take a BTT found or laid out for this pool's file. */
  adopt(btt: Btt): void {
    this.#places = btt.places;
    this.#arenas = btt.arenas;
    this.#only = btt.arenas.length === 1
      ? this.#media.indexed(btt.arenas[0].readDesc, this.#control)
      : undefined;
    this.#blockCount = btt.blockCount;
    for (const line of btt.repaired) this.#repaired.push(line);
  }

  /**
   * Lay out the BTT of a pool that has none (libpmemblk's first write),
   * under the share's layout lock: another opener may have laid it out
   * meanwhile, and then its arenas are taken instead. `op` is the
   * caller's operation, named by the error of a failed wait for the lock.
   */
  layOut(op: string): void {
    const shared = this.#file.join.shared;
    // (a hold that finds the BTT laid out only attaches: marked read-only,
    // it is taken over if this thread ends in it)
    shared.lockLayout(op);
    try {
      if (this.#arenas.length !== 0) return;
      this.adopt(
        shared.laidOut ? loadBtt(this.#file, true) : layOutBtt(this.#file),
      );
    } catch (e) {
      throw this.#closedDuring(e, op);
    } finally {
      // (a close from inside the layout let the lock go: see close())
      if (this.#map !== null) shared.unlockLayout();
    }
  }

  /**
   * Take the arenas another opener laid out since this one opened with
   * none; returns whether the pool has a layout now.
   */
  adoptShared(op: string): boolean {
    if (this.#arenas.length !== 0) return true;
    if (!this.#file.join.shared.laidOut) return false;
    this.layOut(op);
    return true;
  }

  /**
   * The media of the open pool.
   *
   * @throws {ClosedError} naming `op` once the pool is closed
   */
  live(op: string): Media {
    if (this.#map === null) throw new ClosedError("BlockPool", op);
    return this.#media;
  }

  /**
   * Refuse what a progress callback of check() or info() cannot do:
   * check() holds the layout lock and every commit lock, so a check
   * would wait for them forever, and a commit in the middle of the scan
   * would show up as a block referenced twice. (A close there waits for
   * the scan's end: {@linkcode PoolCore.close}.)
   */
  outsideProgress(op: string): void {
    if (this.#inProgress !== undefined) {
      throw new TypeError(`Cannot ${op} inside ${this.#inProgress}`);
    }
  }

  /**
   * The error of a synchronous update that failed: the pool's
   * `ClosedError` when code it ran (a testing tracer's callback) closed
   * the pool in its middle, else `e`. The closed mapping and media refuse
   * the update's next step (the close gave its lane and stripe back,
   * `LaneTable.leave`), with the mapping's `ClosedError` naming the
   * mapping's operation, or an engine `TypeError` of a view the close
   * detached: neither names the update.
   */
  #closedDuring(e: unknown, op: string): unknown {
    return this.#map === null ? new ClosedError("BlockPool", op) : e;
  }

  /**
   * As check() or info() (`op`) ends: when its progress callback closed
   * the pool, close it now (the outermost scan, its locks let go) and
   * throw ClosedError naming `op`. The close waited for the check's locks
   * (refused with a TypeError) and unmapped the map info() reads on.
   */
  closeAfter(op: string): void {
    const map = this.#closeAfterProgress;
    if (map === undefined) return;
    if (this.#inProgress === undefined) {
      this.#closeAfterProgress = undefined;
      this.#map = map;
      this.close();
    }
    throw new ClosedError("BlockPool", op);
  }

  /**
   * Refuse an update of a read-only pool.
   *
   * @throws {PmemError} code -30 (EROFS) naming `op`
   */
  checkWritable(op: string): void {
    if (this.#readOnly !== null) {
      throw new PmemError(
        op,
        -EROFS,
        `'${this.#file.path}' is read-only (${this.#readOnly})`,
      );
    }
  }

  /** The arena that an update `op` of `lba` goes to, laid out if need be. */
  #forUpdate(lba: number, op: string): Arena {
    this.checkWritable(op);
    if (this.#arenas.length === 0) this.layOut(op);
    const arena = arenaOf(this.#arenas, lba);
    arena.checkWritable(op);
    return arena;
  }

  /** `BlockPool.write`. */
  write(lba: number, data: Uint8Array): void {
    this.live("write");
    checkLba(lba, this.#blockCount, "write");
    checkBlockData(data, this.#blockSize, "write");
    // (reading data's byteLength may have run code that closed the pool)
    this.live("write");
    this.checkWritable("write");
    this.outsideProgress("write");
    if (this.#arenas.length === 0) this.layOut("write");
    const arena = arenaOf(this.#arenas, lba);
    arena.checkWritable("write");
    this.#updating++;
    try {
      writeNow(this.#sync, arena, lba - arena.firstLba, data);
    } catch (e) {
      throw this.#closedDuring(e, "write");
    } finally {
      this.#updating--;
    }
  }

  /** `BlockPool.setZero` (`MAP_ZERO`) and `BlockPool.setError`. */
  setFlag(lba: number, flag: number, op: string): void {
    this.live(op);
    checkLba(lba, this.#blockCount, op);
    this.checkWritable(op);
    this.outsideProgress(op);
    if (this.#arenas.length === 0 && !this.adoptShared(op)) {
      if (flag === MAP_ZERO) return; // everything reads as zeros already
      this.layOut(op);
    }
    const arena = arenaOf(this.#arenas, lba);
    arena.checkWritable(op);
    this.#updating++;
    try {
      setFlagNow(arena, lba - arena.firstLba, flag, op);
    } catch (e) {
      throw this.#closedDuring(e, op);
    } finally {
      this.#updating--;
    }
  }

  /**
   * `BlockPool.read` for any arguments and pool (off its fast path):
   * checks, then the arena's read.
   */
  readChecked(media: Media, lba: number, into?: Uint8Array): Uint8Array {
    checkLba(lba, this.#blockCount, "read");
    const size = this.#blockSize;
    const out = checkInto(into, size, "read") ?? new Uint8Array(size);
    if (this.#arenas.length === 0 && !this.adoptShared("read")) {
      if (into !== undefined) out.fill(0, 0, size);
      return out;
    }
    return readBlock(
      media,
      this.#arenas,
      this.#control,
      lba,
      out,
      into !== undefined,
    );
  }

  /** `BlockPool.readMany`. */
  readMany(lbas: ArrayLike<number>, into?: Uint8Array): Uint8Array {
    this.live("readMany");
    if (
      !Array.isArray(lbas) &&
      !(ArrayBuffer.isView(lbas) && !(lbas instanceof DataView) &&
        !(lbas instanceof BigInt64Array) && !(lbas instanceof BigUint64Array))
    ) {
      throw new TypeError(
        "Cannot readMany: lbas must be an array or a typed array of integers",
      );
    }
    // a typed array whose buffer went (transferred, or resized below it)
    // reads as empty: it stood for a list of no block
    if (!Array.isArray(lbas) && lbas.length === 0 && goneTyped(lbas)) {
      throw new TypeError(
        "Cannot readMany: lbas is detached or lies past the end of its buffer (transferred or resized)",
      );
    }
    const n = lbas.length;
    // The LBAs are read once, into an array of our own: reading `lbas`
    // may run code (a getter, a Proxy) that answers differently the next
    // time, or another thread may write a shared typed array, so the
    // lookups must use the values that were checked.
    const checked = takeLbas();
    try {
      for (let i = 0; i < n; i++) {
        checked[i] = checkLba(lbas[i], this.#blockCount, "readMany");
      }
      const bytes = n * this.#blockSize;
      if (into !== undefined && !isBytes(into)) {
        throw new TypeError("Cannot readMany: into must be a Uint8Array");
      }
      if (into !== undefined && byteLengthOf(into) < bytes) {
        throw new RangeError(
          `Cannot readMany: into has ${
            byteLengthOf(into)
          } bytes, ${n} blocks need ${bytes}`,
        );
      }
      const out = into ?? new Uint8Array(bytes);
      if (n === 0) return out;
      // (that code may have closed the pool)
      const media = this.live("readMany");
      this.adoptShared("readMany");
      readManyInto(
        {
          media,
          arenas: this.#arenas,
          control: this.#control,
          blockSize: this.#blockSize,
        },
        checked,
        n,
        out,
        into !== undefined,
      );
      return out;
    } finally {
      giveLbas(checked);
    }
  }

  /** `BlockPool.close`. */
  close(): void {
    const map = this.#map;
    // (a close from a tracer's callback during this close's own persists)
    if (map === null || this.#closing) return;
    if (this.#inProgress !== undefined) {
      // closed for its callers now, and by the scan as it ends
      this.#closeAfterProgress = map;
      this.#map = null;
      return;
    }
    this.#closing = true;
    settleInFlight(this.#inflight, this.#access, this.#updating > 0);
    const failure = leaveShared(this.#arenas, this.#file);
    this.#map = null;
    this.#media.close();
    this.#arenas = [];
    this.#only = undefined;
    this.#places = [];
    try {
      map.close();
    } finally {
      leavePool(this.#file.join, false);
    }
    if (failure !== undefined) throw failure;
  }
}
