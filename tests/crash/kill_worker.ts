// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A writer Worker of the kill test (`kill.ts`): it opens the pool by path
 * and writes its own blocks, printing each operation to standard output
 * when issued and when acknowledged, until the process is killed. It
 * posts "loaded" once its handler is set (a message sent before may be
 * lost on Bun), and "ready" once its pool is open.
 *
 * @module
 */
import { writeSync } from "node:fs";
import { BlockPool } from "../../blk/mod.ts";
import { opLabel } from "./ledger.ts";
import { type CrashMover, crashMover } from "./movers.ts";
import { Payloads } from "./payload.ts";
import { xorshift } from "./random.ts";
import { Driver, type Recorder } from "./workload.ts";
import { writeLoop } from "./kill_loop.ts";

/** What a writer Worker is given. */
export interface KillWorkerJob {
  path: string;
  seed: number;
  /** The first payload version (versions stay unique across writers). */
  firstVersion: number;
  mover: CrashMover;
  /** Its blocks (no other writer writes them). */
  lbas: number[];
  blockSize: number;
}

// deno-lint-ignore no-explicit-any
const self_ = globalThis as any;

self_.onmessage = (e: MessageEvent<KillWorkerJob>) => {
  const job = e.data;
  // one write() per line: lines of several writers never interleave
  const print: Recorder = {
    issue: (op) => writeSync(1, `${opLabel("issue", op)}\n`),
    ack: (op) => writeSync(1, `${opLabel("ack", op)}\n`),
  };
  const mover = crashMover(job.mover);
  const pool = BlockPool.open(job.path, { mover });
  const rand = xorshift(job.seed);
  const d = new Driver(
    pool,
    print,
    new Payloads(job.blockSize),
    rand,
    job.firstVersion,
  );
  self_.postMessage("ready");
  writeLoop(d, rand, job.lbas);
};
self_.postMessage("loaded");
