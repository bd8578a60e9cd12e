// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Buffers of a pool's size, kept from one trace to the next. A sweep
 * copies its pool (16 MiB or more) a few times per trace: for the
 * tracer's shadow and for the scratch image's durable image and shadow.
 * A fresh buffer costs a page fault per page it is written to, and on
 * Bun, whose large buffers go back to the system when collected, every
 * time: a third of a Bun sweep's time went there.
 *
 * @module
 */

/**
 * A copy of `bytes` in a new array. Not `Uint8Array.from()`: given a
 * Node `Buffer` (what `readFileSync` returns) Bun walks its iterator
 * byte by byte, 5 s for a 16 MiB pool image; and not `slice()`, which on
 * a `Buffer` is a view, no copy.
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  return out;
}

/** Buffers no longer in use, at most {@linkcode KEPT}. */
const spare: Uint8Array[] = [];
/** A sweep's images are mostly of one size; a few are kept. */
const KEPT = 4;

/** A copy of `base`, in a spare buffer of its size when there is one. */
export function spareCopy(base: Uint8Array): Uint8Array {
  const i = spare.findIndex((b) => b.length === base.length);
  if (i < 0) return base.slice();
  const out = spare.splice(i, 1)[0];
  out.set(base);
  return out;
}

/**
 * Keep `buffers` for a later {@linkcode spareCopy}. The caller must not
 * use them again.
 */
export function recycle(...buffers: Uint8Array[]): void {
  spare.push(...buffers);
  if (spare.length > KEPT) spare.splice(0, spare.length - KEPT);
}
