// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode Progress}: a progress bar for long work (creating, checking
 * or zeroing a large pool), drawn on stderr only when stdout and stderr
 * are terminals, so piped or scripted output stays clean.
 *
 * @module
 */
import process from "node:process";
import { err } from "./output.ts";

const WIDTH = 30;
/** Redraw at most this often (ms): drawing costs more than counting. */
const EVERY_MS = 100;

/** A bar for one task, `done / total`. */
export class Progress {
  #label: string;
  #shown: boolean;
  #last = 0;
  #drawn = false;

  /**
   * @param label what is being done ("checking")
   * @param shown draw at all (default: when stdout and stderr are terminals)
   */
  constructor(label: string, shown = isInteractive()) {
    this.#label = label;
    this.#shown = shown;
  }

  /** Report progress; cheap when called often. */
  update(done: number, total: number): void {
    if (!this.#shown) return;
    const now = performance.now();
    if (done < total && now - this.#last < EVERY_MS) return;
    this.#last = now;
    const f = total > 0 ? Math.min(1, done / total) : 1;
    const bar = "#".repeat(Math.round(f * WIDTH)).padEnd(WIDTH, ".");
    err(
      `\r${this.#label} [${bar}] ${(f * 100).toFixed(0).padStart(3)}%`,
    );
    this.#drawn = true;
  }

  /** End the bar's line. */
  done(): void {
    if (this.#drawn) err("\n");
    this.#drawn = false;
  }
}

/** Whether a person is watching: stdout and stderr are terminals. */
export function isInteractive(): boolean {
  return process.stdout.isTTY === true && process.stderr.isTTY === true;
}
