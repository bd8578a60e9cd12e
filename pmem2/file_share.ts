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
 * An open belongs to the thread that made it. When a thread ends with an
 * open it never closed (a Worker terminated before it closed its pool),
 * the open ends with it: it no longer keeps the share, so the last close
 * of the others still unlocks the file and frees the block. What the
 * ended open held in the block it holds for good; each open has a
 * {@linkcode FileShare.token} that it may write into the words it holds,
 * and {@linkcode FileShare.ended} tells the others when its thread ended.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
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

/** Opens of one share with a token at most (a later one has none). */
const SLOTS = 1024;
/** int32 words of the status block: counters, then one per slot. */
const STATUS_HEAD = 16;
/** Status word: opens that ended with their thread. */
const ST_ENDED = 0;
/** Status word: the token of the open that created the share. */
const ST_CREATOR = 1;
/** A slot's state: its open is open. */
const SLOT_OPEN = 1;
/** A slot's state: its open's thread ended before it closed. */
const SLOT_ENDED = 2;
/**
 * The generations of a slot (share.c: a slot's word is its generation
 * << 2 | its state): a slot is taken again once its open closed, or, when
 * none is free, once it ended, in a new generation, which an open's token
 * carries (`slot + 1 + SLOTS * generation`, below 2^28).
 */
const GEN_MASK = 0x3ffff;
/** Tokens are below it. */
const TOKEN_END = 1 + SLOTS * (GEN_MASK + 1);

/**
 * The share of each open's memory and parts (see {@linkcode FileShare.of}),
 * and where each starts in the memory.
 */
const owners = new WeakMap<ArrayBuffer, { share: FileShare; base: number }>();

/**
 * An open of a file's process-wide share.
 *
 * @example Usage
 * ```ts
 * import { FileShare } from "./file_share.ts";
 * import assert from "node:assert/strict";
 * import { mkdtempSync, writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "data");
 * writeFileSync(path, ""); // an existing file
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
  #address: Ptr;
  #size: number;
  /** The buffer over all of the memory, once asked for. */
  #memory: ArrayBuffer | null = null;
  /** The buffers over parts of it ({@linkcode FileShare.part}). */
  #parts: ArrayBuffer[] = [];
  #path: string;
  /** The status words the native side keeps after the memory. */
  #status: Int32Array;
  #token: number;

  private constructor(handle: Ptr, first: boolean, size: number, path: string) {
    this.#handle = handle;
    this.#first = first;
    this.#path = path;
    const address = native.ap_share_address(handle) as Ptr;
    this.#address = address;
    this.#size = size;
    // (share.c: the status words start at the next multiple of 64 bytes;
    // the handle's first int32 is the open's slot, -1 for none)
    this.#status = new Int32Array(
      backend.view(
        address,
        (STATUS_HEAD + SLOTS) * 4,
        Math.ceil(size / 64) * 64,
      ),
    );
    const slot = new Int32Array(backend.view(handle, 4))[0];
    // (its generation stays while this open is open)
    this.#token = slot < 0 ? 0 : slot + 1 +
      SLOTS * ((this.#status[STATUS_HEAD + slot] >>> 2) & GEN_MASK);
  }

  /**
   * The open whose {@linkcode FileShare.memory} (or one of whose
   * {@linkcode FileShare.part}s) `memory` is, while it is open (views of
   * the memory have it as their `buffer`).
   */
  static of(memory: ArrayBufferLike): FileShare | undefined {
    const share = owners.get(memory as ArrayBuffer)?.share;
    return share === undefined || share.closed ? undefined : share;
  }

  /**
   * Where `buffer` (this open's memory or a part of it) starts in the
   * memory, or -1 when it is neither.
   */
  baseOf(buffer: ArrayBufferLike): number {
    const owner = owners.get(buffer as ArrayBuffer);
    return owner?.share === this ? owner.base : -1;
  }

  /**
   * Open the share of `path`, creating it (and locking the file) when no
   * other open in this process holds it. The file is opened read-only to
   * be locked, or write-only when its mode lets the caller write but not
   * read it (a store created with mode 0o200, as libpmemlog allows).
   *
   * @param path the file (it must exist)
   * @param size bytes of shared memory; every open must ask for the same
   * @param op the operation named in errors @default "open"
   * @throws {PmemError} code -11 (EAGAIN) when another process (or an
   *   exclusive lock in this one) holds the file, or when the share exists
   *   with another size (the file is open in this process as something
   *   else: a store of another kind, a FileLock); -2 when it is missing;
   *   -13 (EACCES) when the caller may neither read nor write it
   */
  static open(path: string, size: number, op = "open"): FileShare {
    if (typeof path !== "string") {
      throw new TypeError(`Cannot ${op}: path must be a string`);
    }
    checkSize(size, "size", op);
    if (size === 0) throw new RangeError(`Cannot ${op}: size must be > 0`);
    const cell = newCell();
    const p = cString(path);
    // -EAGAIN with the shim's message, which says where the file is
    // open: another process (or another lock of its own), or this
    // process as something else (a share of another size)
    const rc = check(native.ap_share_open(cell, p, p.byteLength, size), op);
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
   * This open's number among the share's opens (never 0, below 2^28), or
   * 0 when 1024 others are open. No other open of the share has it while
   * this one is open, nor after its thread ended without closing it (its
   * slot, taken again, gives a later open another number): a lock word
   * holding it names this open.
   */
  get token(): number {
    return this.#token;
  }

  /**
   * Whether the open with `token` ended with its thread before it closed
   * (false for 0 and other numbers no open has, and after this open
   * closed). True too once a later open took its slot again: that open
   * is gone, and one that closed let go of what it held. (A slot's
   * generation wraps after 2^18 takes: a token left in a word that long
   * reads as that of whoever has the slot then.)
   */
  ended(token: number): boolean {
    const word = this.#slotWord(token);
    if (word === undefined) return false;
    // its slot was taken again: the open closed or ended (a closed one
    // let go of what it held)
    if (((word >>> 2) & GEN_MASK) !== Math.floor((token - 1) / SLOTS)) {
      return true;
    }
    return (word & 3) === SLOT_ENDED;
  }

  /**
   * Whether the open with `token` is open: not closed, and its thread
   * has not ended (false for 0 and other numbers no open has, and after
   * this open closed).
   */
  live(token: number): boolean {
    const word = this.#slotWord(token);
    return word !== undefined &&
      word === (((Math.floor((token - 1) / SLOTS) << 2) | SLOT_OPEN) >>> 0);
  }

  /** The word of the slot of `token`; undefined for no token's, or closed. */
  #slotWord(token: number): number | undefined {
    if (
      this.#handle === null || !Number.isInteger(token) || token < 1 ||
      token >= TOKEN_END
    ) {
      return undefined;
    }
    return Atomics.load(this.#status, STATUS_HEAD + (token - 1) % SLOTS) >>> 0;
  }

  /** Opens of the share that ended with their thread (0 after close). */
  get endedOpens(): number {
    return this.#handle === null ? 0 : Atomics.load(this.#status, ST_ENDED);
  }

  /** Whether the open that created the share ended with its thread. */
  get creatorEnded(): boolean {
    return this.#handle !== null &&
      this.ended(Atomics.load(this.#status, ST_CREATOR));
  }

  /**
   * The shared memory. It detaches (length 0) when this open closes,
   * even while other opens keep the share.
   *
   * @throws {ClosedError} after {@linkcode FileShare.close}
   */
  get memory(): ArrayBuffer {
    if (this.#handle === null) throw new ClosedError("FileShare", "memory");
    if (this.#memory === null) {
      this.#memory = backend.view(this.#address, this.#size);
      owners.set(this.#memory, { share: this, base: 0 });
    }
    return this.#memory;
  }

  /**
   * A buffer over `[offset, offset + length)` of the shared memory, made
   * for the caller; it detaches when this open closes, as the memory
   * does. Bun counts a buffer's whole length as allocated memory when it
   * is made: an opener that uses little of a large share (a block pool's
   * arena words, not every opener's read ledger) views just that.
   *
   * @throws {ClosedError} after {@linkcode FileShare.close}
   * @throws {RangeError} when the range leaves the memory
   */
  part(offset: number, length: number): ArrayBuffer {
    if (this.#handle === null) throw new ClosedError("FileShare", "part");
    if (
      !Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 ||
      length <= 0 || offset + length > this.#size
    ) {
      throw new RangeError(
        `Cannot view [${offset}, ${
          offset + length
        }) of a share of ${this.#size} bytes`,
      );
    }
    const buf = backend.view(this.#address, length, offset);
    owners.set(buf, { share: this, base: offset });
    this.#parts.push(buf);
    return buf;
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
    const bufs = this.#parts;
    if (this.#memory !== null) bufs.push(this.#memory);
    this.#parts = [];
    for (const buf of bufs) {
      owners.delete(buf);
      // (a buffer transferred away is detached here already: transfer
      // would throw, and the open would never leave the share)
      if (!buf.detached) buf.transfer(0);
    }
    this.#status = new Int32Array(0);
    return check(native.ap_share_close(h), "close");
  }

  /** Same as {@linkcode FileShare.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * What the lock words of an open hold: its share's token, or, without
 * one (a private state, or a share whose slots are all taken), the given
 * number, apart from every share token: {@linkcode FileShare.ended} is
 * false for it, so no other open takes its holder for ended.
 *
 * @param share the open's share (undefined: a private state)
 * @param token the number to use without a share token (below 2^29:
 *   `blk/shared.ts` marks a read-only hold of the layout lock with bit 29)
 */
export function lockToken(
  share: FileShare | undefined,
  token: number,
): number {
  if (share === undefined) return token;
  return share.token !== 0 ? share.token : (NO_SLOT | token);
}

/** Set in the lock tokens of opens without a share token. */
const NO_SLOT = 0x40000000;
