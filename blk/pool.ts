// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode BlockPool}: libpmemblk's failure-atomic block store over a
 * pmem2 mapping, byte-compatible with libpmemblk 1.12.1 pools.
 *
 * @module
 */
import { isBytes, notConstructible } from "../ffi/validate.ts";
import { ClosedError, PmemError } from "../errors/mod.ts";
import type { Mapping } from "../pmem2/mapping.ts";
import type { Arena, ArenaPlace } from "./arena.ts";
import { checkPool, type CheckReport, holdingCheckLocks } from "./check.ts";
import { type BlockPoolInfo, poolInfo } from "./info.ts";
import { MAP_ERROR, MAP_ZERO } from "./layout.ts";
import type { Media } from "./media.ts";
import { hasRoom, type IndexedReader } from "../pmem2/reader.ts";
import {
  abandonPoolFile,
  createPoolFile,
  openPoolFile,
  type PoolFile,
  type PoolTestHooks,
} from "./open.ts";
import { type Btt, layOutBtt, loadBtt } from "./btt.ts";
import { leavePool, poolReady } from "./join.ts";
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
import {
  addIsolateAccess,
  type PoolAccess,
  WriteGroupFuture,
} from "./async_io.ts";
import { leaveShared, settleInFlight } from "./close.ts";
import { WriteScheduler } from "./write_scheduler.ts";
import { ReadFuture, ReadScheduler } from "./async_read.ts";
import {
  checkFutureOptions,
  type Future,
  type FutureOptions,
} from "../future/future.ts";
import { FutureRegistry } from "../future/registry.ts";
import {
  type BlockPoolCreateOptions,
  type BlockPoolOpenOptions,
  type BlockWrite,
  byteLengthOf,
  checkBlockData,
  checkInto,
  checkLba,
  checkProgress,
  checkWrites,
  goneTyped,
  type ProgressOptions,
} from "./options.ts";
import { EROFS } from "../errors/errno.ts";

/**
 * `BlockPool.create` and `BlockPool.open` with test hooks, the
 * mapping and the operations in flight of an open pool: granted by the
 * class's static block; `blk/pool_access.ts` uses them. Internal.
 */
export let createWith: (
  path: string,
  options: BlockPoolCreateOptions,
  hooks: PoolTestHooks,
) => BlockPool;
/** See {@linkcode createWith}. Internal. */
export let openWith: (
  path: string,
  options: BlockPoolOpenOptions,
  hooks: PoolTestHooks,
) => BlockPool;
/** See {@linkcode createWith}. Internal. */
export let mappingOf: (pool: BlockPool) => Mapping;
/** See {@linkcode createWith}. Internal. */
export let inflightOf: (pool: BlockPool) => FutureRegistry;

/** Blocks committed together at most by one group of `writeMany`. */
const GROUP_SIZE = 64;

/**
 * A pool of fixed-size blocks, each written failure-atomically: after a
 * crash a block holds its old or its new content, never a mix.
 *
 * The on-media format is libpmemblk 1.12.1's (a PMDK pool header, the
 * pmemblk descriptor, and a BTT of 512 GiB arenas), so pools move freely
 * between this class, libpmemblk and `pmempool`. Every call is durable on
 * return.
 *
 * Differences from libpmemblk:
 * - the BTT is laid out at create (libpmemblk waits for the first write;
 *   pools it created without a layout still open, and get one on their
 *   first `write` or `setError`);
 * - a corrupt primary info block is replaced by its backup at open
 *   (libpmemblk would treat the pool as empty), and a pool with both
 *   copies corrupt, or with a non-empty map but no info block, refuses
 *   to open instead of being laid out again;
 * - all 256 lanes of an arena are used, taken oldest first from a ring of
 *   idle lanes;
 * - `readMany` reads many blocks in one call, and asynchronous reads and
 *   writes polled together are copied and committed together.
 *
 * Like libpmemblk's handle, a pool serves several threads: each Worker of
 * a process opens the file itself (`BlockPool.open(path)`; a Worker cannot
 * be handed a pool) and gets a `BlockPool` over the same pool, whose
 * coordination state (lanes, free blocks, read tracking, per-block commit
 * order) lives in memory shared by the process's openers; several opens
 * in one isolate share it the same way. The file is locked while any
 * opener in the process has it open (`flock`, as libpmemblk does): an open
 * in another process, libpmemblk included, fails with a `PmemError` of
 * code -11 (EAGAIN), and so does any open in this process while a
 * read-only open holds it. A Worker should close its pools before it is
 * terminated: one that does not keeps what it held (its lanes, and a
 * commit lock of a block, whose writes then fail with a `PmemError` of
 * code -130, EOWNERDEAD; while it keeps lanes, group writes go in groups
 * of the lanes left, and with none left every write fails so); once every
 * other opener in the process has closed the pool, the next open recovers
 * it as after a crash.
 *
 * @example Usage
 * ```ts
 * import { BlockPool } from "@asyncpmem/asyncpmem/blk";
 * import assert from "node:assert/strict";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool");
 * {
 *   using pool = BlockPool.create(path, { blockSize: 4096, poolSize: 32 << 20 });
 *   pool.write(7, new Uint8Array(4096).fill(0xab));
 * }
 * using pool = BlockPool.open(path, { blockSize: 4096 });
 * assert.equal(pool.read(7)[100], 0xab);
 * assert.deepEqual(pool.read(8), new Uint8Array(4096));
 * ```
 */
export class BlockPool implements Disposable {
  #file: PoolFile;
  #map: Mapping | null;
  #media: Media;
  #blockSize: number;
  #blockCount = 0;
  #readOnly: string | null;
  #places: ArenaPlace[] = [];
  #arenas: Arena[] = [];
  /**
   * The native reader of the pool's arena when it has exactly one (the
   * read fast path's).
   */
  #only: IndexedReader | undefined;
  #repaired: string[] = [];
  #inflight = new FutureRegistry();
  #access: PoolAccess;
  /** The shared control words (openers of the pool in this process). */
  #control: Int32Array;
  /** What its synchronous updates need. */
  #sync: SyncUpdateContext;
  /**
   * The long read whose progress callback may run now (its callback may
   * call us), with why it refuses updates and checks there:
   * see {@linkcode BlockPool.check}, {@linkcode BlockPool.info}.
   */
  #inProgress: string | undefined;
  /** The map of a close asked for in a progress callback, run after it. */
  #closeAfterProgress: Mapping | undefined;
  /**
   * Synchronous updates of this pool running now (a close from code one
   * runs, a testing tracer's callback, comes from inside it).
   */
  #updating = 0;
  /** Whether {@linkcode BlockPool.close} runs now. */
  #closing = false;

  private constructor(file: PoolFile, btt: Btt) {
    if (file === undefined) {
      notConstructible(
        "BlockPool",
        "use BlockPool.open() or BlockPool.create()",
      );
    }
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
    this.#adopt(btt);
    this.#access = {
      map: file.map,
      writes: new WriteScheduler(
        this.#media,
        () => this.#outsideProgress("commit a write"),
      ),
      reads: new ReadScheduler(this.#media, file.blockSize),
      blockSize: file.blockSize,
      live: (op) => void this.#live(op),
      forUpdate: (lba, op) => this.#forUpdate(lba, op),
      track: (future) => this.#inflight.add(future),
      settled: (slot, future) => this.#inflight.remove(slot, future),
      control: this.#control,
      forRead: (lba) => {
        if (
          this.#arenas.length === 0 && !this.#adoptShared("readAsync")
        ) {
          return null;
        }
        return this.#arenaOf(lba);
      },
    };
    addIsolatePool(this.#inflight);
    addIsolateAccess(this.#access);
  }

  /**
   * Create a pool file (like `pmemblk_create`) and lay out its BTT.
   *
   * @param path the file; it must not exist unless `poolSize` is 0
   * @param options block size, pool size, mode
   * @returns the open pool
   * @throws {TypeError} when an argument has the wrong type, or an option
   *   is none of {@linkcode BlockPoolCreateOptions}'s
   * @throws {RangeError} when the block size or pool size is out of range,
   *   or the pool would hold fewer than 512 blocks per arena
   * @throws {PmemError} code -17 (EEXIST) when the file exists (or, with
   *   `poolSize` 0, is not empty); -2 (ENOENT) when, with `poolSize` 0,
   *   it does not exist (the message says to pass `poolSize`); other
   *   codes when the file cannot be created, sized or mapped
   */
  static create(path: string, options: BlockPoolCreateOptions): BlockPool {
    return BlockPool.#over(createPoolFile(path, options, {}), layOutBtt);
  }

  static {
    createWith = (path, options, hooks) =>
      BlockPool.#over(createPoolFile(path, options, hooks), layOutBtt);
    openWith = (path, options, hooks) =>
      BlockPool.#over(openPoolFile(path, options, hooks), loadBtt);
    mappingOf = (pool) => pool.#media.mapping;
    inflightOf = (pool) => pool.#inflight;
  }

  /**
   * The pool over a file just created or opened, with its BTT laid out
   * (`layOutBtt`) or loaded (`loadBtt`); a failure gives the file up.
   */
  static #over(file: PoolFile, btt: (file: PoolFile) => Btt): BlockPool {
    try {
      const pool = new BlockPool(file, btt(file));
      poolReady(file.join);
      return pool;
    } catch (e) {
      abandonPoolFile(file);
      throw e;
    }
  }

  /**
   * Open a pool file (like `pmemblk_open`): validate its headers and BTT,
   * and finish any write that a crash interrupted after its commit point.
   * When the pool is open in this process already (another Worker, or
   * this isolate), join it instead: the first opener did the recovery.
   *
   * @example Workers of one process
   * ```ts ignore
   * import { BlockPool } from "@asyncpmem/asyncpmem/blk";
   *
   * // main.ts: create the pool, then let Workers write to it
   * using pool = BlockPool.create("/dev/shm/shared.pmemblk", {
   *   blockSize: 4096,
   *   poolSize: 64 << 20,
   * });
   * new Worker(new URL("./writer.ts", import.meta.url), { type: "module" });
   *
   * // writer.ts: the Worker opens the same pool by its path
   * using mine = BlockPool.open("/dev/shm/shared.pmemblk");
   * mine.write(1, new Uint8Array(4096).fill(1));
   * ```
   *
   * @param path the pool file
   * @param options the expected block size
   * @returns the open pool
   * @throws {TypeError} when an argument has the wrong type
   * @throws {RangeError} when `blockSize` is out of range
   * @throws {PmemError} code -2 (ENOENT) when the file is missing; -11
   *   (EAGAIN) when the pool is open in another process (or read-only in
   *   this one); -22 (EINVAL) when the block size differs or the pool is
   *   corrupt (the message says what is wrong)
   */
  static open(path: string, options: BlockPoolOpenOptions = {}): BlockPool {
    return BlockPool.#over(openPoolFile(path, options, {}), loadBtt);
  }

  /** Take a BTT found or laid out for this pool's file. */
  #adopt(btt: Btt): void {
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
  #layOut(op: string): void {
    const shared = this.#file.join.shared;
    // (a hold that finds the BTT laid out only attaches: marked read-only,
    // it is taken over if this thread ends in it)
    shared.lockLayout(op);
    try {
      if (this.#arenas.length !== 0) return;
      this.#adopt(
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
  #adoptShared(op: string): boolean {
    if (this.#arenas.length !== 0) return true;
    if (!this.#file.join.shared.laidOut) return false;
    this.#layOut(op);
    return true;
  }

  #live(op: string): Media {
    if (this.#map === null) throw new ClosedError("BlockPool", op);
    return this.#media;
  }

  /**
   * Refuse what a progress callback of check() or info() cannot do:
   * check() holds the layout lock and every commit lock, so a check
   * would wait for them forever, and a commit in the middle of the scan
   * would show up as a block referenced twice. (A close there waits for
   * the scan's end: {@linkcode BlockPool.close}.)
   */
  #outsideProgress(op: string): void {
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
  #closeAfter(op: string): void {
    const map = this.#closeAfterProgress;
    if (map === undefined) return;
    if (this.#inProgress === undefined) {
      this.#closeAfterProgress = undefined;
      this.#map = map;
      this.close();
    }
    throw new ClosedError("BlockPool", op);
  }

  /** Whether {@linkcode BlockPool.close} has run. */
  get closed(): boolean {
    return this.#map === null;
  }

  /** Bytes per block (as given at create). */
  get blockSize(): number {
    this.#live("blockSize");
    return this.#blockSize;
  }

  /** Number of blocks; valid LBAs are `0 .. blockCount - 1`. */
  get blockCount(): number {
    this.#live("blockCount");
    return this.#blockCount;
  }

  #checkWritable(op: string): void {
    if (this.#readOnly !== null) {
      throw new PmemError(
        op,
        -EROFS,
        `'${this.#file.path}' is read-only (${this.#readOnly})`,
      );
    }
  }

  /** The arena of a pool-wide LBA (the BTT must be laid out). */
  #arenaOf(lba: number): Arena {
    return arenaOf(this.#arenas, lba);
  }

  /**
   * Write one block, failure-atomically and durably.
   *
   * @param lba the block, `0 .. blockCount - 1`
   * @param data exactly `blockSize` bytes
   * @throws {TypeError} when `lba` is not a number or `data` not a
   *   Uint8Array
   * @throws {RangeError} when `lba` is not an integer or out of range, or
   *   `data` has the wrong length
   * @throws {PmemError} code -5 (EIO) when the arena is in the error
   *   state; -30 (EROFS) on a read-only pool
   * @throws {ClosedError} after {@linkcode BlockPool.close}
   */
  write(lba: number, data: Uint8Array): void {
    this.#live("write");
    checkLba(lba, this.#blockCount, "write");
    checkBlockData(data, this.#blockSize, "write");
    // (reading data's byteLength may have run code that closed the pool)
    this.#live("write");
    this.#checkWritable("write");
    this.#outsideProgress("write");
    if (this.#arenas.length === 0) this.#layOut("write");
    const arena = this.#arenaOf(lba);
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

  /**
   * Read one block.
   *
   * A block never written, or set to zero, reads as zeros. In a loop,
   * pass `into`: a new array for every read costs the runtime more than
   * the read itself (or read many blocks at once with
   * {@linkcode BlockPool.readMany}).
   *
   * @param lba the block, `0 .. blockCount - 1`
   * @param into where to copy it (at least `blockSize` bytes; the first
   *   `blockSize` are written) @default a new Uint8Array
   * @returns `into`, or the new array
   * @throws {TypeError} when `lba` is not a number or `into` not a
   *   Uint8Array
   * @throws {RangeError} when `lba` is not an integer or out of range, or
   *   `into` too short
   * @throws {BadBlockError} when the block is in the error state
   * @throws {PmemError} code -22 when the block's map entry is corrupt
   * @throws {ClosedError} after {@linkcode BlockPool.close}
   */
  read(lba: number, into?: Uint8Array): Uint8Array {
    const media = this.#live("read");
    const size = this.#blockSize;
    const only = this.#only;
    // The common case (valid arguments, one arena, a block in the normal
    // state, no other opener) is one test here and one native call: a
    // loop of reads from random blocks runs at the speed of memory only
    // while the CPU can overlap one read's cache misses with the next,
    // which takes few instructions per read (see `ap_read_indexed`). Alone
    // in the process, nothing can take the block during the synchronous
    // copy; the native side reads the opener count before the lookup and
    // after the copy, and when another opener came, the general path
    // reads again, publishing the block. `into`'s room is checked as each
    // runtime compiles in (see `hasRoom`).
    if (
      only !== undefined && Number.isInteger(lba) && lba >= 0 &&
      lba < this.#blockCount &&
      (into === undefined ||
        (isBytes(into) && hasRoom(into, size)))
    ) {
      const out = into ?? new Uint8Array(size);
      if (only.read(lba, out, size)) return out;
    }
    return this.#readChecked(media, lba, into);
  }

  /**
   * Read many blocks into one array, block i at `i × blockSize`: every
   * block is looked up first, then all are copied in one native call, so
   * their cache misses overlap (much faster than a loop of
   * {@linkcode BlockPool.read} from random places). A block listed twice
   * is copied twice.
   *
   * @example Usage
   * ```ts
   * import { BlockPool } from "@asyncpmem/asyncpmem/blk";
   * import assert from "node:assert/strict";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   *
   * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool");
   * using pool = BlockPool.create(path, { blockSize: 512, poolSize: 32 << 20 });
   * pool.write(5, new Uint8Array(512).fill(5));
   * pool.write(9, new Uint8Array(512).fill(9));
   * const blocks = pool.readMany([9, 5, 100]);
   * assert.equal(blocks.length, 3 * 512);
   * assert.deepEqual([blocks[0], blocks[512], blocks[1024]], [9, 5, 0]);
   * ```
   *
   * @param lbas the blocks, each `0 .. blockCount - 1` (an array or a
   *   typed array of integers)
   * @param into where to copy them (at least `lbas.length × blockSize`
   *   bytes) @default a new Uint8Array
   * @returns `into`, or the new array
   * @throws {TypeError} when `lbas` is not an array of numbers or `into`
   *   not a Uint8Array
   * @throws {RangeError} when an LBA is not an integer or out of range, or
   *   `into` too short (a detached array has 0 bytes); nothing is read then
   * @throws {BadBlockError} when a block is in the error state; nothing is
   *   copied then
   * @throws {PmemError} code -22 when a block's map entry is corrupt
   * @throws {ClosedError} after {@linkcode BlockPool.close}
   */
  readMany(lbas: ArrayLike<number>, into?: Uint8Array): Uint8Array {
    this.#live("readMany");
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
      const media = this.#live("readMany");
      this.#adoptShared("readMany");
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

  /** `read` for any arguments and pool: checks, then the arena's read. */
  #readChecked(media: Media, lba: number, into?: Uint8Array): Uint8Array {
    checkLba(lba, this.#blockCount, "read");
    const size = this.#blockSize;
    const out = checkInto(into, size, "read") ?? new Uint8Array(size);
    if (this.#arenas.length === 0 && !this.#adoptShared("read")) {
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

  /**
   * Make a block read as zeros (metadata only; the block keeps its space).
   * Does nothing for a block that already reads as zeros.
   *
   * @param lba the block
   * @throws {TypeError} / {RangeError} for a bad `lba`
   * @throws {PmemError} code -5 (EIO) when the arena is in the error state,
   *   or when the map entry fails to persist (the arena then refuses
   *   writes, and the next open makes the entry durable)
   * @throws {ClosedError} after {@linkcode BlockPool.close}
   */
  setZero(lba: number): void {
    this.#setFlag(lba, MAP_ZERO, "setZero");
  }

  /**
   * Put a block in the error state: reads fail with
   * {@linkcode BadBlockError} until the next write of the block.
   *
   * @param lba the block
   * @throws {TypeError} / {RangeError} for a bad `lba`
   * @throws {PmemError} code -5 (EIO) when the arena is in the error state,
   *   or when the map entry fails to persist (as for `setZero`)
   * @throws {ClosedError} after {@linkcode BlockPool.close}
   */
  setError(lba: number): void {
    this.#setFlag(lba, MAP_ERROR, "setError");
  }

  #forUpdate(lba: number, op: string): Arena {
    this.#checkWritable(op);
    if (this.#arenas.length === 0) this.#layOut(op);
    const arena = this.#arenaOf(lba);
    arena.checkWritable(op);
    return arena;
  }

  /**
   * Write one block as a future: the data is copied into the lane's free
   * block by the pool's mover, then committed in one short synchronous
   * step together with every other update of the pool whose copy is done
   * (one persist for all their data, one for all their flog entries), so
   * many writes in flight share their fences. It resolves when the block
   * is durable. Nothing happens until it is polled or awaited; updates of
   * one block take effect in the order they start, and the future keeps
   * `data` alive until it settles. Do not transfer or shrink `data`'s
   * buffer before then: a write that has not started fails for it, but
   * once started, the mover (another thread, or a device) reads the
   * memory the buffer had, which the runtime may have freed meanwhile.
   *
   * @example Usage
   * ```ts
   * import { BlockPool } from "@asyncpmem/asyncpmem/blk";
   * import { all, ThreadMover } from "@asyncpmem/asyncpmem";
   * import assert from "node:assert/strict";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   *
   * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool");
   * using mover = new ThreadMover();
   * using pool = BlockPool.create(path, { blockSize: 4096, poolSize: 32 << 20, mover });
   * await all([1, 2, 3].map((lba) => pool.writeAsync(lba, new Uint8Array(4096).fill(lba))));
   * assert.equal((await pool.readAsync(2))[0], 2);
   * ```
   *
   * @throws {TypeError} / {RangeError} for a bad `lba` or `data`, at once
   */
  writeAsync(
    lba: number,
    data: Uint8Array,
    options?: FutureOptions,
  ): Future<void> {
    this.#live("writeAsync");
    checkLba(lba, this.#blockCount, "writeAsync");
    checkBlockData(data, this.#blockSize, "writeAsync");
    this.#checkWritable("writeAsync");
    return new WriteGroupFuture(
      this.#access,
      [lba],
      [data],
      1,
      "writeAsync",
      checkFutureOptions(options, "writeAsync"),
    );
  }

  /**
   * Write many blocks with group commit: the data of up to 64 blocks is
   * copied as one batch of the mover, then committed like
   * {@linkcode BlockPool.writeAsync}'s: one persist for all the data and
   * one for all the flog entries, instead of libpmemblk's four persists
   * per block. Every block stays failure-atomic; a block listed twice
   * gets its last entry. As for `writeAsync`, no entry's data may be
   * transferred or shrunk before the future settles.
   *
   * @throws {TypeError} / {RangeError} for a bad entry, at once
   */
  writeMany(
    entries: readonly BlockWrite[],
    options?: FutureOptions,
  ): Future<void> {
    this.#live("writeMany");
    this.#checkWritable("writeMany");
    const [lbas, data] = checkWrites(
      entries,
      this.#blockCount,
      this.#blockSize,
    );
    // a group takes a lane per block at once: never more than an arena
    // has, or it would wait for lanes forever
    let group = GROUP_SIZE;
    for (const a of this.#arenas) group = Math.min(group, a.lanes);
    return new WriteGroupFuture(
      this.#access,
      lbas,
      data,
      group,
      "writeMany",
      checkFutureOptions(options, "writeMany"),
    );
  }

  /**
   * Read one block as a future, copied by the pool's mover. The block is
   * published in the read-tracking table while it is copied, so no write
   * reuses it meanwhile. Do not transfer or shrink `into`'s buffer
   * before the future settles: a read that has not started fails for it,
   * but once started, the mover (another thread, or a device) writes to
   * the memory the buffer had, which the runtime may have freed
   * meanwhile.
   *
   * @param into where to copy it @default a new Uint8Array
   * @throws {TypeError} / {RangeError} for a bad `lba` or `into`, at once
   */
  readAsync(
    lba: number,
    into?: Uint8Array,
    options?: FutureOptions,
  ): Future<Uint8Array> {
    this.#live("readAsync");
    checkLba(lba, this.#blockCount, "readAsync");
    const size = this.#blockSize;
    return new ReadFuture(
      this.#access,
      lba,
      checkInto(into, size, "readAsync") ?? new Uint8Array(size),
      checkFutureOptions(options, "readAsync"),
    );
  }

  #setFlag(lba: number, flag: number, op: string): void {
    this.#live(op);
    checkLba(lba, this.#blockCount, op);
    this.#checkWritable(op);
    this.#outsideProgress(op);
    if (this.#arenas.length === 0 && !this.#adoptShared(op)) {
      if (flag === MAP_ZERO) return; // everything reads as zeros already
      this.#layOut(op);
    }
    const arena = this.#arenaOf(lba);
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
   * Check the pool's consistency: headers and info blocks valid, every
   * map entry inside its arena, every flog pair valid, every data block
   * referenced exactly once (by the map, or as a lane's free block).
   * Never throws for an inconsistency; it reports it.
   *
   * Other openers of the pool in this process (Workers) may go on
   * writing: their commits wait while the check runs (it holds every
   * block's stripe lock), so it never sees half of one, and a check that
   * follows lets a waiting commit through first (checks run back to back
   * do not starve writers). This opener's own
   * writes in flight commit their map and flog entries in one synchronous
   * step, so they never show half-done either; a progress callback that
   * waits for another Worker's writes waits forever. The callback may
   * read the pool; an update or check of it there throws a `TypeError`
   * (so does the commit of an asynchronous write it waits for, which
   * fails that write). A close there closes the pool at once for its
   * callers, and for good once the check has let go of its locks; the
   * check then fails with a `ClosedError`.
   *
   * @example Usage
   * ```ts
   * import { BlockPool } from "@asyncpmem/asyncpmem/blk";
   * import assert from "node:assert/strict";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   *
   * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool");
   * using pool = BlockPool.create(path, { blockSize: 512, poolSize: 32 << 20 });
   * pool.write(0, new Uint8Array(512).fill(1));
   * pool.setError(1);
   * const report = pool.check();
   * assert.equal(report.consistent, true);
   * assert.deepEqual(report.problems, []);
   * ```
   *
   * @param options a progress callback (the map is read block by block)
   * @returns the report
   * @throws {ClosedError} after {@linkcode BlockPool.close}, or when its
   *   progress callback closed the pool
   * @throws {TypeError} inside a check's progress callback
   * @throws {PmemError} -130 (EOWNERDEAD) when a Worker ended holding a
   *   block's commit lock (its commit may be half done)
   */
  check(options: ProgressOptions = {}): CheckReport {
    this.#live("check");
    const onProgress = checkProgress(options, "check");
    // (reading onProgress may have run code that closed the pool)
    const media = this.#live("check");
    this.#outsideProgress("check the pool");
    // Other openers (Workers) go on writing: a commit changes a flog entry
    // and then a map entry holding its block's stripe lock, and laying the
    // BTT out writes the arenas holding the layout lock. The check holds
    // all of them, so it never sees half of a commit (a block referenced
    // twice) or of a layout. This opener's own writes are between steps.
    const shared = this.#file.join.shared;
    // (marked read-only: one whose thread ends inside it is taken over)
    shared.lockLayout("check", true);
    let problems;
    this.#inProgress =
      "check()'s progress callback: the check holds the pool's locks";
    try {
      problems = holdingCheckLocks(
        shared,
        () => {
          if (this.#arenas.length === 0 && shared.laidOut) {
            this.#adopt(loadBtt(this.#file, true));
          }
          return this.#arenas;
        },
        () =>
          checkPool({
            media,
            blockSize: this.#blockSize,
            poolsetUuid: this.#file.poolsetUuid,
            rawSize: this.#file.geometry.rawSize,
            places: this.#places,
            arenas: this.#arenas,
            device: this.#file.device,
            onProgress,
          }),
      );
    } finally {
      this.#inProgress = undefined;
      shared.unlockLayout();
      this.#closeAfter("check");
    }
    return {
      consistent: problems.length === 0,
      problems,
      repaired: [...this.#repaired],
      formatted: this.#arenas.length > 0,
      arenas: this.#arenas.length,
      blockCount: this.#blockCount,
    };
  }

  /**
   * Describe the pool: its geometry, arenas and lanes, and how its blocks
   * are filled (written, zeroed, in the error state, never written), read
   * from the map without changing anything.
   *
   * @example Usage
   * ```ts
   * import { BlockPool } from "@asyncpmem/asyncpmem/blk";
   * import assert from "node:assert/strict";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   *
   * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool");
   * using pool = BlockPool.create(path, { blockSize: 512, poolSize: 32 << 20 });
   * pool.write(0, new Uint8Array(512).fill(1));
   * pool.setError(1);
   * const info = pool.info();
   * assert.equal(info.arenas.length, 1);
   * assert.equal(info.fill.written, 1);
   * assert.equal(info.fill.error, 1);
   * ```
   *
   * The progress callback may read the pool; an update or check of it
   * there throws a `TypeError`, and a close makes info() fail with a
   * `ClosedError`, as in {@linkcode BlockPool.check}'s.
   *
   * @param options a progress callback (the map is read block by block)
   * @throws {ClosedError} after {@linkcode BlockPool.close}, or when its
   *   progress callback closed the pool
   * @throws {TypeError} inside a check's or info's progress callback
   *   for an update or check
   */
  info(options: ProgressOptions = {}): BlockPoolInfo {
    this.#live("info");
    const onProgress = checkProgress(options, "info");
    // (reading onProgress may have run code that closed the pool)
    const media = this.#live("info");
    this.#adoptShared("info");
    // (an info() inside check()'s callback leaves check()'s rule on)
    const outer = this.#inProgress;
    this.#inProgress ??=
      "info()'s progress callback: info() reads the pool's map on after it";
    try {
      return poolInfo({
        path: this.#file.path,
        media,
        blockSize: this.#blockSize,
        blockCount: this.#blockCount,
        readOnly: this.#readOnly,
        places: this.#places,
        arenas: this.#arenas,
        onProgress,
      });
    } finally {
      this.#inProgress = outer;
      this.#closeAfter("info");
    }
  }

  /**
   * Close the pool: unmap it and release its lock. Every write was
   * already durable. Idempotent; later calls throw {@linkcode ClosedError}.
   * The operations in flight settle first: reads and writes complete.
   *
   * A close from code that an update of the pool runs (a testing
   * tracer's callback, at a flush or drain of the update) goes ahead:
   * the update stops there, as if its thread had ended, and fails with
   * the pool's `ClosedError` naming its op; so do the pool's other writes
   * in flight (their copies landed first), while its reads complete. The
   * close settles what the update held as the other openers settle an
   * ended opener's: a lane it had not yet committed through goes back
   * as it was, and one in the middle of its commit is recovered from its
   * flog slot, durably, as the pool's open would recover it after a crash
   * there. So a block such a write was writing reads wholly old or, when
   * the close came at its commit point (the flog entry stored, its
   * persist not yet run), wholly new: the write fails all the same, as
   * it never saw its commit durable (a caller treats it like a write a
   * crash interrupted: done or not). The other openers of the pool (its
   * Workers) find its lanes and stripes free, and its memory is unmapped
   * only after the update's last use of it, which it never touches again.
   * A BTT layout cut short so (the first write of a pool made without
   * one, as libpmemblk makes them) leaves its lock free: the next write
   * of any opener lays the BTT out again, whole.
   *
   * Inside the progress callback of {@linkcode BlockPool.check} or
   * {@linkcode BlockPool.info}, the pool reads as closed at once, and
   * closes when the scan ends (which then fails with a `ClosedError`):
   * the check holds locks the close would wait for, and both read the
   * map on after the callback.
   */
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

  /** Same as {@linkcode BlockPool.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
