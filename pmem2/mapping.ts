// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode Mapping}: a mapped source with zero-copy views, persistence
 * and libpmem2's durable copy functions; `mapFile` (`map_file.ts`) opens
 * one from a path.
 *
 * @module
 */
import { ClosedError, PmemError } from "../errors/mod.ts";
import { check, fromCell, isCell, native, type Ptr } from "../ffi/lib.ts";
import {
  byteLengthOf,
  checkAttached,
  checkByte,
  checkBytes,
  checkRange,
  checkSize,
  holds,
  isBytes,
  notConstructible,
} from "../ffi/validate.ts";
import { PointerCache } from "../ffi/pointer_cache.ts";
import {
  type Granularity,
  granularityName,
  type MapConfig,
  type Protection,
} from "./config.ts";
import { checkMemFlags, MemFlags } from "./flags.ts";
import { waitAll } from "../future/blocking.ts";
import type { Future, FutureOptions } from "../future/future.ts";
import type { Vdm } from "../mover/vdm.ts";
import { DurableCopies } from "./durable_copies.ts";
import { flushSpans } from "./flush_spans.ts";
import { badRead, copyOut } from "./read.ts";
import { ViewBuffers } from "./view_buffers.ts";
import { mapSource } from "./map_source.ts";
import type { Source } from "./source.ts";
import type { PersistTracer } from "./tracer.ts";
import { type Closable, grantAccess } from "./mapping_access.ts";
import { EACCES } from "../errors/errno.ts";

/**
 * A mapping of a {@linkcode Source}. Views are `Uint8Array`s straight over
 * the mapped memory; writes through them become durable after
 * {@linkcode Mapping.persist} (or flush + drain). `close()` detaches every
 * view it handed out before unmapping, so a stale view reads `undefined`
 * instead of touching unmapped memory.
 *
 * The mapped length is fixed when the mapping is made. A file truncated
 * below it while mapped (by this process or another: the stores' `flock`
 * keeps other opens out, not `truncate`) leaves the pages past its new
 * end without backing, and any access to them (a view's load or store,
 * a copy, a read, a persist) kills the process with SIGBUS: nothing in
 * the mapping can check the file's size on every access. Don't shrink a
 * file that is mapped.
 *
 * @example Usage
 * ```ts
 * import { mapFile } from "@asyncpmem/asyncpmem";
 * import assert from "node:assert/strict";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "data");
 * using map = mapFile(path, { size: 1 << 20 });
 * map.memcpy(0, new TextEncoder().encode("hello"));  // durable on return
 * const v = map.view(0, 5);
 * v[0] = 72;                                           // "Hello"
 * map.persist(0, 1);
 * assert.equal(new TextDecoder().decode(map.view(0, 5)), "Hello");
 * ```
 */
export class Mapping implements Disposable {
  #cell: BigUint64Array;
  #handle: Ptr | null;
  #address: Ptr;
  #size: number;
  #granularity: Granularity;
  #required: Granularity;
  #protection: Protection;
  #buffers: ViewBuffers;
  #mover: Vdm;
  /** The asynchronous copies (close() waits for those running). */
  #copies: DurableCopies;
  /** The pointer of the array `read` copies into, when it is reused. */
  #readInto = new PointerCache();
  /** Readers made for this mapping, closed before it unmaps. */
  #readers: Closable[] = [];
  #tracer: PersistTracer | undefined;

  private constructor(
    cell: BigUint64Array,
    required: Granularity,
    protection: Protection,
    mover: Vdm,
  ) {
    if (!isCell(cell)) {
      notConstructible("Mapping", "use Mapping.map() or mapFile()");
    }
    this.#mover = mover;
    this.#cell = cell;
    this.#handle = fromCell(cell);
    this.#address = native.ap_map_address(this.#handle) as Ptr;
    this.#size = native.ap_map_size(this.#handle);
    this.#granularity = granularityName(
      native.ap_map_granularity(this.#handle),
    );
    this.#required = required;
    this.#protection = protection;
    this.#buffers = new ViewBuffers(this.#address, this.#size);
    this.#copies = new DurableCopies({
      mover,
      granularity: this.#granularity,
      size: this.#size,
      tracer: () => this.#tracer,
      view: (offset, length) => this.view(offset, length),
      offsetOf: (view) => this.#buffers.offsetOf(view),
      persist: (offset, length) => this.persist(offset, length),
      flush: (offset, length) => this.flush(offset, length),
      persistRanges: (ranges) => this.persistRanges(ranges),
    });
  }

  /**
   * Map a source.
   *
   * @param source an open source (it may be closed afterwards)
   * @param config granularity, range, sharing, protection
   * @throws {RangeError} when the range holds no byte: `offset` is the
   *   size of a source that is not empty and `length` 0, "to the end"
   * @throws {PmemError} with code `PMEM2_E_GRANULARITY_NOT_SUPPORTED` when
   *   a finer granularity than the storage offers is required; with
   *   `AP_E_BUSY` when 1024 mappings are live in the process (the shim's
   *   table of mappings, which asynchronous copies reference, is full)
   */
  static map(source: Source, config: MapConfig = {}): Mapping {
    const m = mapSource(source, config);
    return new Mapping(m.cell, m.required, m.protection, m.mover);
  }

  #live(op: string): Ptr {
    if (this.#handle === null) throw new ClosedError("Mapping", op);
    return this.#handle;
  }

  /**
   * The handle, for an operation that writes (or, like a view, may be
   * written through): JavaScript has no read-only byte arrays, so a
   * mapping without write access hands out no views and takes no writes
   * rather than let a store fault the process.
   *
   * @throws {PmemError} code -13 (EACCES) unless mapped read-write
   */
  #writable(op: string): Ptr {
    const h = this.#live(op);
    if (this.#protection !== "read-write") this.#denied(op);
    return h;
  }

  /**
   * The handle, for a flush of the mapping's memory: refused without any
   * access (protection "none"), before the tracer hears of it. Flushing
   * cache lines of a page that cannot be read faults the process (the
   * shim refuses too).
   *
   * @throws {PmemError} code -13 (EACCES) with protection "none"
   */
  #flushable(op: string): Ptr {
    const h = this.#live(op);
    if (this.#protection === "none") this.#denied(op);
    return h;
  }

  #denied(op: string): never {
    const what = this.#protection === "read"
      ? 'read-only (protection "read"): copy bytes out with read()'
      : 'not accessible (protection "none")';
    throw new PmemError(op, -EACCES, `the mapping is ${what}`);
  }

  /** Whether {@linkcode Mapping.close} has run. */
  get closed(): boolean {
    return this.#handle === null;
  }

  /** The mapped length in bytes. */
  get size(): number {
    this.#live("size");
    return this.#size;
  }

  /** The effective store granularity. */
  get granularity(): Granularity {
    this.#live("granularity");
    return this.#granularity;
  }

  /** The granularity that was required when mapping. */
  get requiredGranularity(): Granularity {
    return this.#required;
  }

  /** The data mover of the asynchronous operations. */
  get mover(): Vdm {
    return this.#mover;
  }

  /** Report the funnel events of a durable copy with `flags`. */
  #traceCopy(offset: number, length: number, flags: number): void {
    const t = this.#tracer;
    if (t === undefined || (flags & MemFlags.NOFLUSH)) return;
    t.flush(offset, length);
    if (!(flags & MemFlags.NODRAIN)) t.drain();
  }

  /**
   * A zero-copy `Uint8Array` over `[offset, offset+length)` of the mapping.
   * It detaches (length 0) when the mapping closes (one that cannot be
   * detached then keeps the memory mapped: see {@linkcode Mapping.close}).
   * A mapping without write access gives no views (a store through one
   * would fault the process): copy out of it with {@linkcode Mapping.read}.
   *
   * @param offset start of the view @default 0
   * @param length bytes @default to the end of the mapping
   * @throws {PmemError} code -13 (EACCES) on a mapping that is not
   *   read-write
   * @throws {RangeError} when the range leaves the mapping, and on Bun for
   *   a view of more than 4 GiB (its limit for one buffer of native memory;
   *   `view()` of a larger mapping so throws there: view it in parts)
   */
  view(offset = 0, length?: number): Uint8Array {
    this.#writable("view");
    // the offset is checked before the default length's arithmetic, which
    // a bigint would fail with the engine's own message
    const len = length ??
      Math.max(0, this.#size - checkSize(offset, "offset", "view"));
    checkRange(offset, len, this.#size, "view");
    const whole = this.#buffers.whole;
    if (whole !== null) {
      try {
        return new Uint8Array(whole, offset, len);
      } catch {
        // (the range is checked) its buffer was transferred: bufferFor
        // makes a new one
      }
    }
    const [buf, base] = this.#buffers.bufferFor(offset, len);
    return new Uint8Array(buf, offset - base, len);
  }

  /**
   * Copy `length` bytes at `offset` of the mapping into the start of
   * `into`: one native memcpy, cheaper than a view's `set` for small
   * random reads. The checks of the valid case are one chain of tests,
   * and an array read into again and again is passed by its pointer on
   * Deno (short paths matter to random reads: see `reader.ts`).
   *
   * @param length bytes @default `into.byteLength`
   * @throws {TypeError} when `into` is not a Uint8Array or `offset` or
   *   `length` not a number
   * @throws {RangeError} when the range leaves the mapping, does not fit
   *   `into`, or is not made of non-negative integers
   * @throws {TypeError} when `into` is detached (a view of a closed
   *   mapping, or its buffer transferred) and `length` is not given
   */
  read(
    offset: number,
    into: Uint8Array,
    // (no getter of a value that is no Uint8Array runs: a Proxy's threw
    // the engine's TypeError before the check below could name `into`)
    length: number = isBytes(into) ? into.byteLength : 0,
  ): void {
    this.#live("read");
    if (this.#protection === "none") this.#denied("read");
    // the integer tests before `offset + length`: a bigint passes `>= 0`,
    // and the sum of a bigint and a number throws the engine's own
    // TypeError ("Cannot mix BigInt ...") instead of the one named here
    // `holds`, not `into.byteLength`: that is a property an array can
    // have of its own (or a subclass a getter for), and the native copy
    // writes `length` bytes
    if (
      !isBytes(into) || !Number.isInteger(offset) ||
      !Number.isInteger(length) || !(offset >= 0 && length >= 0) ||
      offset + length > this.#size || (length !== 0 && !holds(into, length))
    ) {
      badRead(offset, into, length, this.#size);
    }
    // a view of a closed mapping reads as empty: a read of its length (0)
    // into it succeeded, as if it were an empty array and nothing was
    // asked for (an explicit length of 0 asks for nothing, and gets it)
    if (length === 0 && arguments[2] === undefined) {
      checkAttached(into, "into", "read");
    }
    copyOut(this.#address, this.#size, this.#readInto, offset, into, length);
  }

  static {
    grantAccess({
      attachReader: (map, reader) => {
        map.#flushable("read"); // a read of no-access pages faults
        map.#readers.push(reader);
        return map.#address;
      },
      attachTracer: (map, tracer) => {
        map.#live("setTracer");
        map.#tracer = tracer;
      },
      tracerOf: (map) => map.#tracer,
      handleOf: (map) => map.#live("handle"),
      buffersOf: (map) => map.#buffers,
      ownBufferOf: (map, offset, length) => {
        map.#writable("view");
        return map.#buffers.own(offset, length);
      },
      copiesOf: (map) => map.#copies,
    });
  }

  /**
   * Flush and drain a range: it is durable when this returns.
   *
   * @throws {PmemError} code -13 (EACCES) on a mapping with protection
   *   `"none"` (a cache-line flush of a page without access faults)
   */
  persist(offset: number, length: number): void {
    this.#flushable("persist");
    checkRange(offset, length, this.#size, "persist");
    if (this.#tracer) {
      this.#tracer.flush(offset, length);
      this.#tracer.drain();
    }
    // the handle after the tracer ran: it may have closed the mapping
    check(
      native.ap_map_persist(this.#live("persist"), offset, length),
      "persist",
    );
  }

  /**
   * Flush a range (durable after the next {@linkcode Mapping.drain}).
   *
   * @throws {PmemError} code -13 (EACCES) on a mapping with protection
   *   `"none"`
   */
  flush(offset: number, length: number): void {
    this.#flushable("flush");
    checkRange(offset, length, this.#size, "flush");
    this.#tracer?.flush(offset, length);
    // the handle after the tracer ran: it may have closed the mapping
    check(native.ap_map_flush(this.#live("flush"), offset, length), "flush");
  }

  /** Wait for earlier flushes to reach the persistence domain. */
  drain(): void {
    this.#live("drain");
    this.#tracer?.drain();
    // the handle after the tracer ran: it may have closed the mapping
    check(native.ap_map_drain(this.#live("drain")), "drain");
  }

  /**
   * Flush a range through to the media (beyond the ADR domain where the
   * platform has one; on a page-granularity file, an msync of its pages,
   * as libpmem2's deep flush of a file mapped without `MAP_SYNC`).
   *
   * @throws {PmemError} code -13 (EACCES) on a mapping with protection
   *   `"none"`
   */
  deepFlush(offset: number, length: number): void {
    const h = this.#flushable("deepFlush");
    checkRange(offset, length, this.#size, "deepFlush");
    check(native.ap_map_deep_flush(h, offset, length), "deepFlush");
  }

  /**
   * Copy `src` to `dstOffset`, durable on return unless `flags` say
   * otherwise ({@linkcode MemFlags}). `src` may be a view of this mapping
   * that overlaps the destination: the bytes are moved, as memmove moves.
   */
  memcpy(dstOffset: number, src: Uint8Array, flags = 0): void {
    const h = this.#writable("memcpy");
    checkAttached(checkBytes(src, "src", "memcpy"), "src", "memcpy");
    // the engine's length: the shim copies this many bytes out of `src`
    const n = byteLengthOf(src);
    checkRange(dstOffset, n, this.#size, "memcpy");
    flags = checkMemFlags(flags, "memcpy");
    check(native.ap_map_memcpy(h, dstOffset, src, n, n, flags), "memcpy");
    this.#traceCopy(dstOffset, n, flags);
  }

  /** Move `length` bytes inside the mapping (ranges may overlap). */
  memmove(
    dstOffset: number,
    srcOffset: number,
    length: number,
    flags = 0,
  ): void {
    const h = this.#writable("memmove");
    checkRange(dstOffset, length, this.#size, "memmove");
    checkRange(srcOffset, length, this.#size, "memmove");
    flags = checkMemFlags(flags, "memmove");
    check(
      native.ap_map_memmove(h, dstOffset, srcOffset, length, flags),
      "memmove",
    );
    this.#traceCopy(dstOffset, length, flags);
  }

  /** Fill `length` bytes at `dstOffset` with the byte `value`. */
  memset(dstOffset: number, value: number, length: number, flags = 0): void {
    const h = this.#writable("memset");
    value = checkByte(value, "value", "memset");
    checkRange(dstOffset, length, this.#size, "memset");
    flags = checkMemFlags(flags, "memset");
    check(native.ap_map_memset(h, dstOffset, value, length, flags), "memset");
    this.#traceCopy(dstOffset, length, flags);
  }

  /**
   * Copy `src` to `dstOffset` through the mapping's mover. The future
   * completes only when the bytes are durable (unless `flags` include
   * NOFLUSH): the mover writes durably when it can, else a persist step is
   * chained after the copy. NONTEMPORAL/WC ask the mover not to leave the
   * destination in cache; NODRAIN makes the last step a flush. A `src`
   * that is a view of this mapping overlapping the destination is moved
   * (the mover's memmove), as memcpy moves it; `src` is read when the
   * copy runs, not at the call: detached by then, the copy fails with a
   * `TypeError`, shrunk (its buffer resized) with a `RangeError`.
   *
   * @example Usage
   * ```ts
   * import { mapFile, ThreadMover } from "@asyncpmem/asyncpmem";
   * import assert from "node:assert/strict";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   *
   * using mover = new ThreadMover({ threads: 2 });
   * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "data");
   * using map = mapFile(path, { size: 1 << 20, mover });
   * await map.memcpyAsync(4096, new Uint8Array(64 << 10).fill(1));
   * assert.equal(map.view(4096 + 100, 1)[0], 1);
   * ```
   */
  memcpyAsync(
    dstOffset: number,
    src: Uint8Array,
    flags = 0,
    options?: FutureOptions,
  ): Future<void> {
    this.#writable("memcpyAsync");
    return this.#copies.memcpy(dstOffset, src, flags, options);
  }

  /** {@linkcode Mapping.memmove} through the mover; see memcpyAsync. */
  memmoveAsync(
    dstOffset: number,
    srcOffset: number,
    length: number,
    flags = 0,
    options?: FutureOptions,
  ): Future<void> {
    this.#writable("memmoveAsync");
    return this.#copies.memmove(dstOffset, srcOffset, length, flags, options);
  }

  /** {@linkcode Mapping.memset} through the mover; see memcpyAsync. */
  memsetAsync(
    dstOffset: number,
    value: number,
    length: number,
    flags = 0,
    options?: FutureOptions,
  ): Future<void> {
    this.#writable("memsetAsync");
    return this.#copies.memset(dstOffset, value, length, flags, options);
  }

  /**
   * Make several ranges durable with one fence: each is flushed (ranges
   * sharing a page on page-granularity maps, or a cache line otherwise,
   * are flushed once), then a single drain. On page granularity, ranges
   * whose span is at most 1 GiB (or 8 times their total length) are
   * persisted with one msync over the span: its cost hardly depends on the
   * length (see `bench/NOTES.md`), and only dirty pages are written.
   * The group-commit primitive.
   *
   * @throws {PmemError} code -13 (EACCES), op `"persistRanges"`, on a
   *   mapping with protection `"none"`, whatever the ranges (none, or
   *   only empty ones, included): as {@linkcode Mapping.persist}, the call
   *   is refused, not judged by how much it would have flushed
   */
  persistRanges(ranges: readonly { offset: number; length: number }[]): void {
    this.#flushable("persistRanges");
    const spans = flushSpans(ranges, this.#size, this.#granularity);
    for (let i = 0; i < spans.length; i += 2) {
      this.flush(spans[i], spans[i + 1]);
    }
    this.drain();
  }

  /**
   * Copy several buffers into the mapping as one batch of the mover
   * (`Vdm.batch`), complete when all are durable (see memcpyAsync). An
   * entry whose data overlaps its own destination is moved; entries
   * whose destinations overlap each other (or one's data another's
   * destination) leave an unspecified result, as the batch runs them in
   * no set order.
   *
   * @param entries destination offsets and the bytes to put there
   */
  memcpyManyAsync(
    entries: readonly { offset: number; data: Uint8Array }[],
    options?: FutureOptions,
  ): Future<void> {
    this.#writable("memcpyManyAsync");
    return this.#copies.memcpyMany(entries, options);
  }

  /**
   * Unmap. Idempotent. In-flight asynchronous operations finish first,
   * every view handed out is detached, then the memory is unmapped —
   * unless the buffer of a view was transferred (`transfer()`,
   * `postMessage` with a transfer list): the buffer it moved to cannot be
   * detached from here, so the memory then stays mapped until the
   * process ends rather than be freed under it. So too when the runtime
   * will not detach a view's buffer: on Bun, while an asynchronous
   * node:fs write of a view runs (`fs/promises.writeFile`, `fs.write`
   * with a callback), which pins it; such a view keeps reading the
   * memory after the close.
   *
   * A mapping never closed stays mapped until the process ends, also
   * when the Worker that made it ends: a view of it may have been
   * transferred to another thread, which keeps using it. So a Worker
   * closes its mappings (and pools) before it is terminated.
   */
  close(): void {
    if (this.#handle === null) return;
    const running = this.#copies.takeRunning();
    try {
      waitAll(running);
    } catch {
      // their own futures report failures; closing goes on
    }
    this.#handle = null;
    this.#readInto.clear();
    for (const reader of this.#readers) reader.close();
    this.#readers = [];
    if (this.#buffers.detachAll()) {
      check(native.ap_map_delete(this.#cell), "close");
    }
  }

  /** Same as {@linkcode Mapping.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
