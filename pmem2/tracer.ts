// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The hook behind a mapping's persistence funnel. Every flush, persist,
 * drain and durable copy of a {@linkcode Mapping} reports here when a
 * tracer is attached, so a test can record what became durable and when
 * (the crash simulator and the pmemcheck-style lint are built on it).
 *
 * @module
 */

/**
 * Receives a mapping's persistence events, in program order. Stores are
 * not reported one by one: the data of a range is in place when its flush
 * is reported, so a tracer diffs it against its own shadow copy.
 */
export interface PersistTracer {
  /**
   * `[offset, offset+length)` is being written back (it becomes durable at
   * the next {@linkcode PersistTracer.drain}).
   */
  flush(offset: number, length: number): void;
  /** A fence: every range flushed before it is now durable. */
  drain(): void;
  /** A labelled point in the program, e.g. "write 7 acknowledged". */
  mark?(label: string): void;
}
