// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode BlockPool}: libpmemblk's failure-atomic block store over a
 * pmem2 mapping, byte-compatible with libpmemblk 1.12.1 pools.
 *
 * @module
 */
import { isBytes, notConstructible } from "../ffi/validate.ts";
import type { CheckReport } from "./check.ts";
import type { BlockPoolInfo } from "./info.ts";
import { MAP_ERROR, MAP_ZERO } from "./layout.ts";
import { hasRoom } from "../pmem2/reader.ts";
import {
  abandonPoolFile,
  createPoolFile,
  openPoolFile,
  type PoolFile,
} from "./open.ts";
import { type Btt, layOutBtt, loadBtt } from "./btt.ts";
import { poolReady } from "./join.ts";
import type { Future, FutureOptions } from "../future/future.ts";
import type {
  BlockPoolCreateOptions,
  BlockPoolOpenOptions,
  BlockWrite,
  ProgressOptions,
} from "./options.ts";
import { PoolCore } from "./pool_core.ts";
import { checkOpenPool, openPoolInfo } from "./pool_scans.ts";
import { readAsyncOf, writeAsyncOf, writeManyOf } from "./pool_async.ts";

/**
 * A pool over a pool file just created or opened, with its BTT laid out
 * or loaded (a failure gives the file up), and the state of an open
 * pool: granted by the class's static block; `blk/pool_access.ts` uses
 * them. Internal.
 */
export let poolOver: (
  file: PoolFile,
  btt: (file: PoolFile) => Btt,
) => BlockPool;
/** See {@linkcode poolOver}. Internal. */
export let coreOf: (pool: BlockPool) => PoolCore;

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
  /** The open pool's state; its synchronous operations run there. */
  readonly #core: PoolCore;

  private constructor(core: PoolCore) {
    if (core === undefined) {
      notConstructible(
        "BlockPool",
        "use BlockPool.open() or BlockPool.create()",
      );
    }
    this.#core = core;
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
    poolOver = (file, btt) => BlockPool.#over(file, btt);
    coreOf = (pool) => pool.#core;
  }

  /**
   * The pool over a file just created or opened, with its BTT laid out
   * (`layOutBtt`) or loaded (`loadBtt`); a failure gives the file up.
   */
  static #over(file: PoolFile, btt: (file: PoolFile) => Btt): BlockPool {
    try {
      const pool = new BlockPool(new PoolCore(file, btt(file)));
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

  /** Whether {@linkcode BlockPool.close} has run. */
  get closed(): boolean {
    return this.#core.closed;
  }

  /** Bytes per block (as given at create). */
  get blockSize(): number {
    this.#core.live("blockSize");
    return this.#core.blockSize;
  }

  /** Number of blocks; valid LBAs are `0 .. blockCount - 1`. */
  get blockCount(): number {
    this.#core.live("blockCount");
    return this.#core.blockCount;
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
    this.#core.write(lba, data);
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
    const core = this.#core;
    const media = core.live("read");
    const size = core.blockSize;
    const only = core.only;
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
      lba < core.blockCount &&
      (into === undefined ||
        (isBytes(into) && hasRoom(into, size)))
    ) {
      const out = into ?? new Uint8Array(size);
      if (only.read(lba, out, size)) return out;
    }
    return core.readChecked(media, lba, into);
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
    return this.#core.readMany(lbas, into);
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
    this.#core.setFlag(lba, MAP_ZERO, "setZero");
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
    this.#core.setFlag(lba, MAP_ERROR, "setError");
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
    return writeAsyncOf(this.#core, lba, data, options);
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
    return writeManyOf(this.#core, entries, options);
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
    return readAsyncOf(this.#core, lba, into, options);
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
    return checkOpenPool(this.#core, options);
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
    return openPoolInfo(this.#core, options);
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
    this.#core.close();
  }

  /** Same as {@linkcode BlockPool.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
