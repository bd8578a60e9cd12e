// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The root object of a pool ({@linkcode ObjectPool.root}): allocated
 * zeroed by the first call, grown by a call that asks for more bytes (a
 * new object with the old bytes, in one transaction with the state
 * page's record of it), and, outside a transaction, applied first when
 * an asynchronous transaction made or grew it. Internal to `obj/`.
 *
 * @module
 */
import type { Engine } from "./engine.ts";
import { newHandle, type ObjectHandle } from "./handle.ts";
import { ROOT_OFFSET_AT, TYPE_ROOT } from "./layout.ts";
import { checkNumber, numberText } from "./object_bytes.ts";
import type { ObjectPool } from "./pool.ts";
import { txHooks } from "./tx.ts";

/**
 * The root object of `pool` (its engine `e`) of at least `size` bytes:
 * what {@linkcode ObjectPool.root} does. Internal.
 *
 * @throws {TypeError} for a size that is not a number
 * @throws {RangeError} for a size that is not an integer in [1, 2^31)
 * @throws {OutOfSpaceError} when the heap, or the redo log, has no room
 *   for the root at its new size (nothing changed)
 */
export function rootObject(
  pool: ObjectPool,
  e: Engine,
  size: number,
): ObjectHandle {
  e.live("root");
  if (!Number.isInteger(size) || size < 1 || size >= 2 ** 31) {
    checkNumber(size, "get the root: size");
    throw new RangeError(
      `Cannot get the root: size must be an integer in [1, 2^31), got ${
        numberText(size)
      }`,
    );
  }
  const s = e.state;
  if (s.rootOffset !== 0 && s.rootSize >= size) {
    // outside a transaction, a root an asynchronous transaction made
    // (grew) and that is not applied yet is applied first: the pool's
    // reads see only what is applied, and the handle must work for them
    if (
      e.current === undefined &&
      e.genAt(s.rootOffset, false) !== e.genAt(s.rootOffset)
    ) {
      e.seal();
      e.drain();
      e.live("root");
    }
    return rootHandle(e);
  }
  pool.tx((tx) => {
    const old = s.rootOffset !== 0 ? rootHandle(e) : undefined;
    const o = txHooks.allocInternal(tx, size, TYPE_ROOT);
    if (old !== undefined) {
      tx.write(o, 0, tx.read(old, 0, old.size));
      txHooks.freeInternal(tx, old.offset);
    }
    const b = new Uint8Array(16);
    const dv = new DataView(b.buffer);
    dv.setBigUint64(0, BigInt(o.offset), true);
    dv.setBigUint64(8, BigInt(size), true);
    txHooks.writeState(tx, ROOT_OFFSET_AT, b);
    const before = { offset: s.rootOffset, size: s.rootSize };
    s.rootOffset = o.offset;
    s.rootSize = size;
    txHooks.onAbort(tx, () => {
      s.rootOffset = before.offset;
      s.rootSize = before.size;
    });
  });
  return rootHandle(e);
}

/** A handle to the root object of the pool of `e` (one exists). */
function rootHandle(e: Engine): ObjectHandle {
  const offset = e.state.rootOffset;
  return newHandle(
    e.token,
    offset,
    e.state.rootSize,
    TYPE_ROOT,
    e.genAt(offset),
  );
}
