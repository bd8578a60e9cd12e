// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode Source}: what a mapping maps (a file, an fd, or anonymous
 * memory), with libpmem2's RAS queries.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import {
  check,
  cString,
  fromCell,
  isCell,
  native,
  newCell,
  type Ptr,
} from "../ffi/lib.ts";
import {
  checkFlag,
  checkMode,
  checkPath,
  checkRange,
  checkSize,
  notConstructible,
  readOptions,
} from "../ffi/validate.ts";

const AP_OPEN_CREATE = 1;
const AP_OPEN_SPARSE = 2;
const AP_OPEN_READONLY = 4;
const AP_OPEN_EXCLUSIVE = 8;
const PMEM2_E_NO_BAD_BLOCK_FOUND = -100029;

/**
 * Options of {@linkcode Source.open}. An option not listed here is refused,
 * with a `TypeError` naming it and the option it likely stands for.
 */
export interface SourceOpenOptions {
  /**
   * Create the file if missing and extend it to at least this many bytes.
   * @default 0 (the file must exist and is used as it is)
   */
  size?: number;
  /** Create the file when it is missing. @default true when `size` > 0 */
  create?: boolean;
  /** Fail if the file already exists. @default false */
  exclusive?: boolean;
  /**
   * Extend with `ftruncate` (sparse) instead of `posix_fallocate`. A full
   * disk then shows up as SIGBUS on first touch, so only tests want it.
   * @default false
   */
  sparse?: boolean;
  /** Open read-only (map with `protection: "read"`). @default false */
  readOnly?: boolean;
  /** Permission bits of a created file. @default 0o644 */
  mode?: number;
}

/** A bad block range of a source, in bytes from its start. */
export interface BadBlock {
  /** Offset of the range. */
  offset: number;
  /** Length of the range. */
  length: number;
}

let handleOf: (source: Source, op: string) => Ptr;
let createdOf: (source: Source) => boolean;

/**
 * The native handle of an open source (for `Mapping.map`). Internal.
 *
 * @throws {ClosedError} when the source is closed
 */
export function sourceHandle(source: Source, op: string): Ptr {
  return handleOf(source, op);
}

/**
 * Whether {@linkcode Source.open} created the file of `source` (so that a
 * mapping of it that fails removes it again). Internal (`mapFile`).
 */
export function sourceCreated(source: Source): boolean {
  return createdOf(source);
}

/**
 * The source of a mapping: a file (by path or fd) or anonymous memory.
 * A mapping copies what it needs, so the source may be closed once mapped.
 *
 * @example Usage
 * ```ts
 * import { Source } from "@asyncpmem/asyncpmem/pmem2";
 * import assert from "node:assert/strict";
 *
 * using src = Source.fromAnon(1 << 20);
 * assert.equal(src.size, 1 << 20);
 * assert.equal(src.alignment, 4096);
 * ```
 */
export class Source implements Disposable {
  #cell: BigUint64Array;
  #handle: Ptr | null;
  #out = new Float64Array(1);
  /** Whether its open created the file. */
  #created: boolean;

  private constructor(cell: BigUint64Array, created = false) {
    if (!isCell(cell)) {
      notConstructible(
        "Source",
        "use Source.open(), Source.fromFd() or Source.fromAnon()",
      );
    }
    this.#cell = cell;
    this.#handle = fromCell(cell);
    this.#created = created;
  }

  /**
   * Open (or create and size) a file as a source.
   *
   * @param path the file
   * @param options creation and open options
   * @throws {TypeError} for an option of the wrong type (a flag that is
   *   no boolean), or a key that is none of {@linkcode SourceOpenOptions}'s
   * @throws {RangeError} for a size or mode out of range
   * @throws {PmemError} when the file cannot be opened or sized
   */
  static open(path: string, options: SourceOpenOptions = {}): Source {
    checkPath(path, "open", "source");
    options = readOptions(options, [
      "size",
      "create",
      "exclusive",
      "sparse",
      "readOnly",
      "mode",
    ], "open source");
    const size = checkSize(options.size ?? 0, "size", "open source");
    const what = "open source";
    let flags = 0;
    if (checkFlag(options.create, "create", what) ?? size > 0) {
      flags |= AP_OPEN_CREATE;
    }
    if (checkFlag(options.exclusive, "exclusive", what)) {
      flags |= AP_OPEN_EXCLUSIVE | AP_OPEN_CREATE;
    }
    if (checkFlag(options.sparse, "sparse", what)) flags |= AP_OPEN_SPARSE;
    if (checkFlag(options.readOnly, "readOnly", what)) {
      flags |= AP_OPEN_READONLY;
    }
    const mode = checkMode(options.mode, what);
    const cell = newCell();
    const p = cString(path);
    // 1 when the shim created the file
    const rc = check(
      native.ap_source_open(cell, p, p.byteLength, size, flags, mode),
      "open",
    );
    return new Source(cell, rc === 1);
  }

  /**
   * Wrap an open file descriptor (`O_RDONLY` or `O_RDWR`); the caller
   * keeps ownership of the fd.
   */
  static fromFd(fd: number): Source {
    if (typeof fd !== "number") {
      throw new TypeError("Cannot wrap fd: it must be a number");
    }
    if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
      throw new RangeError(
        `Cannot wrap fd: it must be a non-negative integer, got ${fd}`,
      );
    }
    const cell = newCell();
    // + 0: -0 as 0, which Deno's FFI takes for an i32 (see checkByte)
    check(native.ap_source_from_fd(cell, fd + 0), "fromFd");
    return new Source(cell);
  }

  /** Anonymous memory of `size` bytes (store granularity BYTE). */
  static fromAnon(size: number): Source {
    checkSize(size, "size", "create anonymous source");
    const cell = newCell();
    check(native.ap_source_from_anon(cell, size), "fromAnon");
    return new Source(cell);
  }

  #live(op: string): Ptr {
    if (this.#handle === null) throw new ClosedError("Source", op);
    return this.#handle;
  }

  static {
    handleOf = (source, op) => source.#live(op);
    createdOf = (source) => source.#created;
  }

  /** Whether {@linkcode Source.close} has run. */
  get closed(): boolean {
    return this.#handle === null;
  }

  /** The size in bytes (a file's current size). */
  get size(): number {
    check(native.ap_source_size(this.#live("size"), this.#out), "size");
    return this.#out[0];
  }

  /** The required alignment of map offsets and lengths. */
  get alignment(): number {
    check(
      native.ap_source_alignment(this.#live("alignment"), this.#out),
      "alignment",
    );
    return this.#out[0];
  }

  /** The file descriptor (throws `PmemError` for anonymous sources). */
  get fd(): number {
    return check(native.ap_source_fd(this.#live("fd")), "fd");
  }

  /**
   * The device's unsafe shutdown count.
   * @throws {NotSupportedError} on non-DAX files and anonymous memory
   */
  deviceUsc(): number {
    check(
      native.ap_source_device_usc(this.#live("deviceUsc"), this.#out),
      "deviceUsc",
    );
    return this.#out[0];
  }

  /**
   * The device's id string.
   * @throws {NotSupportedError} on non-DAX files and anonymous memory
   */
  deviceId(): string {
    const h = this.#live("deviceId");
    const len = new Uint32Array(1);
    check(native.ap_source_device_id(h, null, 0, len), "deviceId");
    const buf = new Uint8Array(len[0] + 1);
    check(native.ap_source_device_id(h, buf, buf.byteLength, len), "deviceId");
    const end = buf.indexOf(0);
    return new TextDecoder().decode(buf.subarray(0, end < 0 ? len[0] : end));
  }

  /**
   * The NUMA node of the device.
   * @throws {PmemError} when the file is not on a DAX region
   */
  numaNode(): number {
    const out = new Int32Array(1);
    check(native.ap_source_numa_node(this.#live("numaNode"), out), "numaNode");
    return out[0];
  }

  /**
   * Every known bad block (empty on healthy or non-DAX storage).
   * @throws {NotSupportedError} for anonymous sources
   */
  badBlocks(): BadBlock[] {
    const h = this.#live("badBlocks");
    let cap = 16;
    for (;;) {
      const out = new Float64Array(cap * 2);
      const n = native.ap_badblocks(h, out, cap);
      if (n === PMEM2_E_NO_BAD_BLOCK_FOUND) return [];
      check(n, "badBlocks");
      if (n <= cap) {
        const list: BadBlock[] = [];
        for (let i = 0; i < n; i++) {
          list.push({ offset: out[2 * i], length: out[2 * i + 1] });
        }
        return list;
      }
      cap = n;
    }
  }

  /**
   * Clear one bad block range (as returned by {@linkcode Source.badBlocks}).
   *
   * @throws {RangeError} for a range that is not made of non-negative
   *   integers or leaves the file
   */
  clearBadBlock(block: BadBlock): void {
    const offset = block?.offset, length = block?.length;
    // the types first, before any native call
    checkRange(offset, length, Number.MAX_SAFE_INTEGER, "clear bad block");
    const h = this.#live("clearBadBlock");
    // then the file's end: libpmem2 reallocates the range with
    // fallocate(KEEP_SIZE), which past the end allocates storage the file
    // never shows (on tmpfs, memory), as much as asked for
    check(native.ap_source_size(h, this.#out), "clearBadBlock");
    checkRange(offset, length, this.#out[0], "clear bad block");
    check(
      native.ap_badblock_clear(h, offset as number, length as number),
      "clearBadBlock",
    );
  }

  /** Release the source (and its fd when it opened one). Idempotent. */
  close(): void {
    if (this.#handle === null) return;
    this.#handle = null;
    native.ap_source_delete(this.#cell);
  }

  /** Same as {@linkcode Source.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
