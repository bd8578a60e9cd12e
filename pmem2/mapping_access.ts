// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What the rest of the library reaches inside a {@linkcode Mapping}
 * without it being public: its readers, its own buffers, its tracer, its
 * native handle and, for tests, its copies and buffers. `Mapping` grants
 * the access to its `#private` state once, from its static block
 * ({@linkcode grantAccess}); none of this is exported by `pmem2/mod.ts`.
 *
 * @module
 */
import type { Ptr } from "../ffi/lib.ts";
import type { DurableCopies } from "./durable_copies.ts";
import type { Mapping } from "./mapping.ts";
import type { PersistTracer } from "./tracer.ts";
import type { ViewBuffers } from "./view_buffers.ts";

/** Something a mapping closes before it unmaps (a reader). */
export interface Closable {
  /** Close it (the mapping is closing). */
  close(): void;
}

/** The reach into a mapping's `#private` state that `Mapping` grants. */
export interface MappingAccess {
  /** Register a reader; the mapping's address. */
  attachReader(map: Mapping, reader: Closable): Ptr;
  /** Attach or detach a tracer. */
  attachTracer(map: Mapping, tracer: PersistTracer | undefined): void;
  /** The tracer attached, if any. */
  tracerOf(map: Mapping): PersistTracer | undefined;
  /** The native handle of an open mapping. */
  handleOf(map: Mapping): Ptr;
  /** The buffers its views are made from. */
  buffersOf(map: Mapping): ViewBuffers;
  /** A buffer of its own over a range (`ViewBuffers.own`). */
  ownBufferOf(map: Mapping, offset: number, length: number): ArrayBuffer;
  /** Its asynchronous copies. */
  copiesOf(map: Mapping): DurableCopies;
}

// each held in a variable of its own: the functions below call them as
// mapping.ts's own variables were called, with no object in between
let attachReader: MappingAccess["attachReader"];
let attachTracer: MappingAccess["attachTracer"];
let tracerOf: MappingAccess["tracerOf"];
let handleOf: MappingAccess["handleOf"];
let buffersOf: MappingAccess["buffersOf"];
let ownBufferOf: MappingAccess["ownBufferOf"];
let copiesOf: MappingAccess["copiesOf"];

/**
 * Take the access `Mapping`'s static block grants. Once only: a second
 * grant is refused, so no other module replaces what the functions below
 * reach.
 *
 * @throws {Error} when the access was granted already
 */
export function grantAccess(access: MappingAccess): void {
  if (attachReader !== undefined) {
    throw new Error("Cannot grant mapping access: it was granted already");
  }
  ({
    attachReader,
    attachTracer,
    tracerOf,
    handleOf,
    buffersOf,
    ownBufferOf,
    copiesOf,
  } = access);
}

/**
 * Register a reader with an open mapping, which closes it on its own
 * close; returns the mapping's address. Internal (`reader.ts`).
 *
 * @throws {ClosedError} when the mapping is closed
 */
export function registerReader(map: Mapping, reader: Closable): Ptr {
  return attachReader(map, reader);
}

/**
 * A view of `[offset, offset + length)` (a range the caller checked) over
 * a buffer of its own, which no view the mapping hands out shares (see
 * `ViewBuffers.own`): what a store keeps of its mapping, so that a
 * transfer of a view it handed out does not detach it. Internal (the
 * stores' media).
 *
 * @throws {ClosedError} when the mapping is closed
 * @throws {PmemError} code -13 (EACCES) unless it is read-write
 */
export function ownView(
  map: Mapping,
  offset: number,
  length: number,
): Uint8Array {
  return new Uint8Array(ownBufferOf(map, offset, length), 0, length);
}

/**
 * The asynchronous copies a mapping's close() would wait for (started,
 * not settled, as far as the mapping knows). Internal: for tests.
 */
export function trackedCopies(map: Mapping): number {
  return copiesOf(map).tracked;
}

/**
 * Whether a buffer over the whole of a mapping was made for its views.
 * Internal: for tests that check a large store on Bun reaches its file
 * through windows only (`VIEW_WINDOWS`).
 */
export function hasWholeBuffer(map: Mapping): boolean {
  return buffersOf(map).whole !== null;
}

/**
 * Bytes of the buffers made for a mapping's views since it was mapped
 * (each counted once, when made: what Bun counts as allocated memory).
 * Internal: for tests that check a store's open views little of its
 * mapping on Bun (`VIEW_WINDOWS.piece`).
 */
export function viewedBytes(map: Mapping): number {
  return buffersOf(map).made;
}

/**
 * The native handle of an open mapping. Internal: for tests that check
 * the shim's own refusals, and for native calls that store and persist
 * in one (each reports to the tracer with {@linkcode traceDurable}).
 *
 * @throws {ClosedError} when the mapping is closed
 */
export function nativeHandleOf(map: Mapping): Ptr {
  return handleOf(map);
}

/**
 * Attach (or with `undefined`, detach) a {@linkcode PersistTracer} to a
 * mapping's persistence funnel. Internal: tests reach it through the
 * testing entry point.
 */
export function setMappingTracer(
  map: Mapping,
  tracer: PersistTracer | undefined,
): void {
  attachTracer(map, tracer);
}

/**
 * Report to a mapping's tracer, if it has one, that `[offset, offset +
 * length)` was stored and made durable by a native call of its own (a
 * flush and a drain, as {@linkcode Mapping.persist} reports). Internal:
 * for the log store's one-call append, which keeps the funnel's record.
 */
export function traceDurable(
  map: Mapping,
  offset: number,
  length: number,
): void {
  const t = tracerOf(map);
  if (t === undefined) return;
  t.flush(offset, length);
  t.drain();
}

/** Record a labelled point with a mapping's tracer, if it has one. */
export function markMapping(map: Mapping, label: string): void {
  tracerOf(map)?.mark?.(label);
}
