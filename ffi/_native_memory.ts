// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Which ArrayBuffers lie over native memory (mappings, shares, device
 * arenas) rather than a JavaScript heap: the runtime never frees those,
 * not even when the Worker that made the view ends, so native threads
 * may go on writing through their addresses. Each backend's `view`
 * records its buffers here.
 *
 * @module
 */

const nativeBuffers = new WeakSet<ArrayBufferLike>();

/** Record `buffer` as a view of native memory; returns it. */
export function markNative<T extends ArrayBufferLike>(buffer: T): T {
  nativeBuffers.add(buffer);
  return buffer;
}

/** Whether `buffer` is a view of native memory made by a backend. */
export function isNativeBuffer(buffer: ArrayBufferLike): boolean {
  return nativeBuffers.has(buffer);
}
