// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The data movers crash traces run with: the ones users run, on the path
 * they run (a traced mapping keeps each mover's own durable path and
 * reports it at completion). The thread mover sends every copy to its
 * worker threads and splits them into small descriptors, so a trace's
 * block copies really are made by another thread while the program goes
 * on.
 *
 * @module
 */
import { CpuMover } from "../../mover/cpu.ts";
import { ThreadMover } from "../../mover/thread.ts";
import type { Vdm } from "../../mover/vdm.ts";

/** The movers of the crash suite, by name. */
export const CRASH_MOVERS = ["cpu", "threads"] as const;

/** A mover's name. */
export type CrashMover = typeof CRASH_MOVERS[number];

/** A fresh mover (the caller closes it). */
export function crashMover(name: CrashMover): Vdm {
  return name === "cpu" ? new CpuMover() : new ThreadMover({
    threads: 2,
    inlineThreshold: 0,
    maxTransfer: 1024,
  });
}

/** Parse a mover name given on a command line. */
export function parseCrashMover(name: string | undefined): CrashMover {
  const found = CRASH_MOVERS.find((m) => m === name);
  if (found === undefined) {
    throw new Error(
      `Unknown mover: ${name} (one of ${CRASH_MOVERS.join(", ")})`,
    );
  }
  return found;
}
