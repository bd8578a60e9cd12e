// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode FileShare}: one process's exclusive hold on a file, shared by
 * every open of the file in the process, JavaScript Workers included,
 * together with a block of native memory they all see.
 *
 * A Worker cannot receive a mapping or an object of another isolate: it
 * opens the file by path. The first open in the process locks the file
 * (`flock`, as libpmemblk and libpmemlog do, so another process or those
 * libraries are refused with EAGAIN) and gets a zeroed block of shared
 * memory; later opens of the same file in the process join the share and
 * see the same block, where the openers coordinate with `Atomics` on
 * views of it. The last close unlocks the file and frees the block.
 *
 * @module
 */
import { ClosedError, PmemError } from "../errors/mod.ts";
import {
  backend,
  check,
  cString,
  fromCell,
  native,
  newCell,
  type Ptr,
} from "../ffi/lib.ts";
import { checkSize } from "../ffi/validate.ts";

const EAGAIN = 11;

/**
 * An open of a file's process-wide share.
 *
 * @example Usage
 * ```ts
 * import { FileShare } from "./file_share.ts";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * using a = FileShare.open(path, 64);
 * using b = FileShare.open(path, 64); // a second open in this process
 * assert.equal(a.first, true);
 * assert.equal(b.first, false);
 * Atomics.add(new Int32Array(a.memory), 0, 5);
 * assert.equal(Atomics.load(new Int32Array(b.memory), 0), 5);
 * ```
 */
export class FileShare implements Disposable {
  #handle: Ptr | null;
  #first: boolean;
  #memory: ArrayBuffer;
  #path: string;

  private constructor(handle: Ptr, first: boolean, size: number, path: string) {
    this.#handle = handle;
    this.#first = first;
    this.#path = path;
    const address = native.ap_share_address(handle) as Ptr;
    this.#memory = backend.view(address, size);
  }

  /**
   * Open the share of `path`, creating it (and locking the file) when no
   * other open in this process holds it.
   *
   * @param path the file (it must exist)
   * @param size bytes of shared memory; every open must ask for the same
   * @param op the operation named in errors @default "open"
   * @throws {PmemError} code -11 (EAGAIN) when another process (or an
   *   exclusive lock in this one) holds the file; -2 when it is missing;
   *   `AP_E_INVALID_ARG` when the share exists with another size
   */
  static open(path: string, size: number, op = "open"): FileShare {
    if (typeof path !== "string") {
      throw new TypeError(`Cannot ${op}: path must be a string`);
    }
    checkSize(size, "size", op);
    if (size === 0) throw new RangeError(`Cannot ${op}: size must be > 0`);
    const cell = newCell();
    const p = cString(path);
    const rc = native.ap_share_open(cell, p, p.byteLength, size);
    if (rc === -EAGAIN) {
      let cause: unknown;
      try {
        check(rc, op);
      } catch (e) {
        cause = e;
      }
      throw new PmemError(
        op,
        -EAGAIN,
        `cannot lock '${path}': it is open in another process (or held by an exclusive lock)`,
        { errno: EAGAIN, cause },
      );
    }
    check(rc, op);
    return new FileShare(fromCell(cell), rc === 1, size, path);
  }

  /** Whether this open created the share (the others joined it). */
  get first(): boolean {
    return this.#first;
  }

  /** The file. */
  get path(): string {
    return this.#path;
  }

  /** Whether {@linkcode FileShare.close} has run. */
  get closed(): boolean {
    return this.#handle === null;
  }

  /**
   * The shared memory. It detaches (length 0) when this open closes,
   * even while other opens keep the share.
   *
   * @throws {ClosedError} after {@linkcode FileShare.close}
   */
  get memory(): ArrayBuffer {
    if (this.#handle === null) throw new ClosedError("FileShare", "memory");
    return this.#memory;
  }

  /**
   * Leave the share; the last open unlocks the file and frees the memory.
   * Idempotent.
   *
   * @returns the opens of the share left in this process (0 once it is
   *   gone; also 0 for a second close)
   */
  close(): number {
    const h = this.#handle;
    if (h === null) return 0;
    this.#handle = null;
    this.#memory.transfer(0);
    return check(native.ap_share_close(h), "close");
  }

  /** Same as {@linkcode FileShare.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
