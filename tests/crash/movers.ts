// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The data movers crash traces run with: the ones users run, on the path
 * they run (a traced mapping keeps each mover's own durable path and
 * reports it at completion). The thread mover sends every copy to its
 * worker threads and splits them into small descriptors, so a trace's
 * block copies really are made by another thread while the program goes
 * on; the DSA mover does the same through a test portal (the hardware
 * path — portal, credits, the watcher thread — over the software device).
 *
 * @module
 */
import { CpuMover } from "../../mover/cpu.ts";
import { ThreadMover } from "../../mover/thread.ts";
import { openTestPortal } from "../../testing/mod.ts";
import type { Vdm } from "../../mover/vdm.ts";

/** Every mover a crash trace can run with, by name. */
const FACTORIES = {
  cpu: (): Vdm => new CpuMover(),
  threads: (): Vdm =>
    new ThreadMover({ threads: 2, inlineThreshold: 0, maxTransfer: 1024 }),
  /** Tiny queue, records and descriptors: back-pressure on every trace. */
  "threads-tight": (): Vdm =>
    new ThreadMover({
      threads: 2,
      inlineThreshold: 0,
      maxTransfer: 256,
      queueSize: 4,
      records: 8,
      batchLists: 2,
    }),
  dsa: (): Vdm =>
    openTestPortal({
      mode: "dedicated",
      inlineThreshold: 0,
      maxTransfer: 1024,
    }),
} as const;

/** A mover's name. */
export type CrashMover = keyof typeof FACTORIES;

/** The movers of the block store's crash suite. */
export const CRASH_MOVERS: readonly CrashMover[] = ["cpu", "threads", "dsa"];

/** The movers of the log store's crash suite (its copies are small). */
export const STREAM_CRASH_MOVERS: readonly CrashMover[] = [
  "cpu",
  "threads",
  "threads-tight",
  "dsa",
];

/** A fresh mover (the caller closes it). */
export function crashMover(name: CrashMover): Vdm {
  return FACTORIES[name]();
}

/** Parse a mover name given on a command line. */
export function parseCrashMover(name: string | undefined): CrashMover {
  if (name === undefined || !Object.hasOwn(FACTORIES, name)) {
    throw new Error(
      `Unknown mover: ${name} (one of ${Object.keys(FACTORIES).join(", ")})`,
    );
  }
  return name as CrashMover;
}
