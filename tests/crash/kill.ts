// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The real kill test: a child process writes to a pool (synchronous
 * writes, groups of `writeAsync`, `writeMany` batches, `setZero`) and
 * prints each operation when issued and when acknowledged; the parent
 * SIGKILLs it at a random moment, reopens the pool and checks it: the
 * pool is consistent (ours and `pmempool check`), and every block holds
 * its latest acknowledged state or one that was in flight, whole.
 *
 * A kill is a process crash, not a power failure: stores the child made
 * stay in the page cache whether or not they were flushed. The crash
 * sweep covers lost stores; this test covers real interleavings at any
 * instruction, async machinery included.
 *
 * Every other round the writer is a process whose writing is done by two
 * Workers, each with the pool open (one `BlockPool` each, sharing the
 * pool's coordination state) and blocks of its own (the ledger needs each
 * block's updates in issue order, which only one writer gives); their
 * lines interleave on the process's output.
 *
 * The child side is `kill.ts --child POOL SEED FIRST_VERSION MOVER
 * WORKERS`.
 *
 * @module
 */
import { rmSync, writeSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { BlockPool, MIN_POOL_SIZE } from "../../blk/mod.ts";
import { killWriter, startChild } from "./child.ts";
import { compareWithLedger, describeError, readBlocks } from "./checker.ts";
import { Ledger, opLabel } from "./ledger.ts";
import { Payloads } from "./payload.ts";
import { pmempoolCheck } from "./pmempool.ts";
import {
  CRASH_MOVERS,
  type CrashMover,
  crashMover,
  parseCrashMover,
} from "./movers.ts";
import { xorshift } from "./random.ts";
import { Driver, type Recorder } from "./workload.ts";
import { writeLoop } from "./kill_loop.ts";
import type { KillWorkerJob } from "./kill_worker.ts";

/** Block size of the kill test's pool. */
const BLOCK_SIZE = 4096;
/** The blocks the child writes. */
const LBAS = Array.from({ length: 48 }, (_, i) => i);
/** Versions of round r start at r × this (so every write is unique). */
const VERSIONS_PER_ROUND = 10_000_000;

/** What the kill rounds did and found. */
export interface KillReport {
  /** Children killed. */
  kills: number;
  /** Operations acknowledged before the kills. */
  acknowledged: number;
  /** Operations in flight at the kills (issued, not acknowledged). */
  inFlight: number;
  /** Reopens whose recovery finished an interrupted update. */
  recovered: number;
  /** `pmempool check` runs. */
  pmempoolRuns: number;
  /** Writers killed, by the data mover they wrote with. */
  movers: Record<string, number>;
  /** Kills of a process whose writing was done by two Workers. */
  workerRounds: number;
  /** What was wrong, per round. */
  problems: string[];
}

/** Options of {@linkcode killRounds}. */
export interface KillOptions {
  /** Run `pmempool check` after every kill. */
  pmempool: boolean;
}

/** Print a kill report for people. */
export function formatKillReport(r: KillReport): string {
  return [
    `kill: ${r.kills} writers killed (${
      Object.entries(r.movers).map(([m, n]) => `${m} ${n}`).join(", ")
    }; ${r.workerRounds} of them writing from 2 Workers), ${r.acknowledged} operations acknowledged, ${r.inFlight} in flight at the kills, ${r.recovered} reopens finished an update, ${r.pmempoolRuns} pmempool checks, ${r.problems.length} problems`,
    ...r.problems.map((p) => `  PROBLEM ${p}`),
  ].join("\n");
}

/** The child: write until killed (30 s at most), printing each operation. */
function writer(
  path: string,
  seed: number,
  firstVersion: number,
  moverName: CrashMover,
): void {
  const print: Recorder = {
    issue: (op) => writeSync(1, `${opLabel("issue", op)}\n`),
    ack: (op) => writeSync(1, `${opLabel("ack", op)}\n`),
  };
  using mover = crashMover(moverName);
  using pool = BlockPool.open(path, { mover });
  const rand = xorshift(seed);
  const d = new Driver(
    pool,
    print,
    new Payloads(BLOCK_SIZE),
    rand,
    firstVersion,
  );
  writeSync(1, "ready\n");
  writeLoop(d, rand, LBAS);
}

/**
 * The child of a Workers round: `count` writer Workers, each on its own
 * blocks (every `count`-th) and versions; "ready" once all have the pool
 * open. The process then waits to be killed.
 */
async function workers(
  path: string,
  seed: number,
  firstVersion: number,
  mover: CrashMover,
  count: number,
): Promise<void> {
  const url = new URL("./kill_worker.ts", import.meta.url).href;
  const started = Array.from({ length: count }, (_, k) => {
    const w = new Worker(url, { type: "module" });
    const job: KillWorkerJob = {
      path,
      seed: seed * 31 + k,
      firstVersion: firstVersion + k * (VERSIONS_PER_ROUND / count),
      mover,
      lbas: LBAS.filter((lba) => lba % count === k),
      blockSize: BLOCK_SIZE,
    };
    return new Promise<Worker>((resolve, reject) => {
      w.onerror = (e) => reject(new Error(`kill worker: ${e.message}`));
      w.onmessage = (e) => {
        if (e.data === "loaded") w.postMessage(job);
        else resolve(w);
      };
    });
  });
  await Promise.all(started);
  writeSync(1, "ready\n");
  await new Promise((r) => setTimeout(r, 30_000)); // an orphan stops
  process.exit(0);
}

/**
 * Run kill rounds on a new pool at `path` (removed afterwards).
 *
 * @param path where the pool goes
 * @param rounds children to kill
 * @param seed the first child's seed
 */
export async function killRounds(
  path: string,
  rounds: number,
  seed: number,
  options: KillOptions,
): Promise<KillReport> {
  const report: KillReport = {
    kills: 0,
    acknowledged: 0,
    inFlight: 0,
    recovered: 0,
    pmempoolRuns: 0,
    movers: {},
    workerRounds: 0,
    problems: [],
  };
  try {
    await runRounds(path, rounds, seed, options, report);
  } finally {
    rmSync(path, { force: true });
  }
  return report;
}

/** The rounds of {@linkcode killRounds}, adding to its report. */
async function runRounds(
  path: string,
  rounds: number,
  seed: number,
  options: KillOptions,
  report: KillReport,
): Promise<void> {
  const payloads = new Payloads(BLOCK_SIZE);
  const rand = xorshift(seed ^ 0x4b111);
  BlockPool.create(path, { blockSize: BLOCK_SIZE, poolSize: MIN_POOL_SIZE })
    .close();
  let states = new Map<number, number>();
  const self = fileURLToPath(import.meta.url);
  for (let round = 1; round <= rounds; round++) {
    // the writers take the movers in turn: the production paths
    const mover = CRASH_MOVERS[round % CRASH_MOVERS.length];
    report.movers[mover] = (report.movers[mover] ?? 0) + 1;
    // every other pair of rounds, the writing is done by two Workers
    const count = round % 4 < 2 ? 1 : 2;
    if (count > 1) report.workerRounds++;
    const child = startChild(self, [
      "--child",
      path,
      String(seed + round),
      String(round * VERSIONS_PER_ROUND),
      mover,
      String(count),
    ]);
    // a random moment: 0 to 150 ms of writing
    const { end, problem } = await killWriter(child, rand() * 150);
    if (problem !== undefined) {
      report.problems.push(`round ${round}: ${problem}`);
      break;
    }
    report.kills++;
    const ledger = new Ledger(states);
    const lines = end.stdout.split("\n");
    lines.pop(); // the last line may be cut by the kill
    let issued = 0;
    let acked = 0;
    for (const line of lines) {
      if (!ledger.record(line)) continue;
      if (line.startsWith("ack ")) acked++;
      else issued++;
    }
    report.acknowledged += acked;
    report.inFlight += issued - acked;
    const verdict = verify(path, ledger, payloads, options, report);
    if (verdict === null) break;
    states = verdict;
  }
}

/**
 * Reopen the pool and check it against the ledger.
 *
 * @returns every block's state, or null after a problem (recorded)
 */
function verify(
  path: string,
  ledger: Ledger,
  payloads: Payloads,
  options: KillOptions,
  report: KillReport,
): Map<number, number> | null {
  const problems: string[] = [];
  const states = new Map<number, number>();
  try {
    using pool = BlockPool.open(path);
    const check = pool.check();
    if (!check.consistent) {
      problems.push(`check(): ${check.problems.join("; ")}`);
    }
    if (check.repaired.length > 0) report.recovered++;
    const observed = readBlocks(pool, LBAS, payloads);
    problems.push(...compareWithLedger(observed, ledger));
    for (const [lba, o] of observed) {
      if (typeof o === "number") states.set(lba, o);
    }
  } catch (e) {
    problems.push(`reopen failed: ${describeError(e)}`);
  }
  if (options.pmempool) {
    report.pmempoolRuns++;
    const v = pmempoolCheck(path);
    if (!v.consistent) problems.push(`pmempool check: ${v.output}`);
  }
  if (problems.length === 0) return states;
  report.problems.push(`after kill ${report.kills}: ${problems.join(" | ")}`);
  return null;
}

if (import.meta.main) {
  const [flag, path, seed, first, mover, count] = process.argv.slice(2);
  if (flag !== "--child") {
    throw new Error(
      "Usage: kill.ts --child POOL SEED FIRST_VERSION MOVER WORKERS",
    );
  }
  const n = Number(count ?? 1);
  if (n > 1) {
    await workers(path, Number(seed), Number(first), parseCrashMover(mover), n);
  } else writer(path, Number(seed), Number(first), parseCrashMover(mover));
}
