// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The log stream's kill test: a child process appends to a stream
 * (synchronous appends, batches of asynchronous ones through a thread
 * mover, reserve/publish and cancel, truncations) and prints each
 * operation's labels; the parent SIGKILLs it at a random moment, reopens
 * the stream and judges it with a {@linkcode StreamLedger}: every
 * acknowledged entry is there, whole, with no gap and nothing reordered.
 *
 * A kill is a process crash: stores stay in the page cache whether
 * persisted or not, so any entry in flight may show; the crash sweep
 * covers lost stores.
 *
 * The child side is `stream_kill.ts --child PATH SEED FIRST_OP`.
 *
 * @module
 */
import { rmSync, writeSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { ThreadMover } from "../../mover/mod.ts";
import { LogStream } from "../../stream/mod.ts";
import { describeError } from "./checker.ts";
import { killWriter, startChild } from "./child.ts";
import { pick, xorshift } from "./random.ts";
import { readVisible } from "./stream_checker.ts";
import { StreamLedger } from "./stream_ledger.ts";
import { regionKey, STREAM_OPTIONS, StreamDriver } from "./stream_workload.ts";

/** Op numbers of round r start at r × this. */
const OPS_PER_ROUND = 10_000_000;

/** What the kill rounds did and found. */
export interface StreamKillReport {
  kills: number;
  /** Entries acknowledged before the kills. */
  acknowledged: number;
  /** Entries issued and not acknowledged at the kills. */
  inFlight: number;
  /** Reopens whose recovery wrote. */
  recovered: number;
  problems: string[];
}

/** Print a kill report for people. */
export function formatStreamKillReport(r: StreamKillReport): string {
  return [
    `stream kill: ${r.kills} writers killed, ${r.acknowledged} entries acknowledged, ${r.inFlight} in flight at the kills, ${r.recovered} reopens recovered, ${r.problems.length} problems`,
    ...r.problems.map((p) => `  PROBLEM ${p}`),
  ].join("\n");
}

/** The child: append until killed (30 s at most), printing labels. */
async function writer(path: string, seed: number, firstOp: number) {
  using mover = new ThreadMover({ threads: 2 });
  using s = LogStream.open(path, { mover });
  const rand = xorshift(seed);
  const d = new StreamDriver(
    s,
    (label) => writeSync(1, `${label}\n`),
    rand,
    firstOp,
  );
  writeSync(1, "ready\n");
  const deadline = performance.now() + 30_000;
  while (performance.now() < deadline) {
    const rs = d.regions();
    const r = rs[pick(rand, rs.length)];
    const x = rand();
    if (x < 0.4) d.append(r);
    else if (x < 0.75) {
      d.appendAsync(rs, 1 + pick(rand, 8), { committed: x < 0.45 });
    } else if (x < 0.9) d.reserve(r, x < 0.78);
    else d.truncate(r, rand());
    // let the event loop run now and then (the parent's kill is a signal)
    if (x > 0.98) await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

/**
 * Run kill rounds on a new stream at `path` (removed afterwards).
 *
 * @param rounds children to kill
 * @param seed the first child's seed
 */
export async function streamKillRounds(
  path: string,
  rounds: number,
  seed: number,
): Promise<StreamKillReport> {
  const report: StreamKillReport = {
    kills: 0,
    acknowledged: 0,
    inFlight: 0,
    recovered: 0,
    problems: [],
  };
  try {
    const ledger = new StreamLedger();
    // a process crash loses no store: anything issued may show
    ledger.committed = Infinity;
    {
      using s = LogStream.create(path, STREAM_OPTIONS);
      for (const size of [16384, 32768, 8192]) {
        ledger.addRegion(regionKey(s.allocateRegion(size)));
      }
    }
    const rand = xorshift(seed ^ 0x4b111);
    const self = fileURLToPath(import.meta.url);
    for (let round = 1; round <= rounds; round++) {
      const child = startChild(self, [
        "--child",
        path,
        String(seed + round),
        String(round * OPS_PER_ROUND),
      ]);
      // a random moment: 0 to 150 ms of writing
      const { end, problem } = await killWriter(child, rand() * 150);
      if (problem !== undefined) {
        report.problems.push(`round ${round}: ${problem}`);
        break;
      }
      report.kills++;
      const lines = end.stdout.split("\n");
      lines.pop(); // the last line may be cut by the kill
      const issued = new Set<string>();
      for (const line of lines) {
        if (!ledger.record(line)) continue;
        const w = line.split(" ");
        if (w[1] !== "entry") continue;
        if (w[0] === "I") issued.add(w[2]);
        if (w[0] === "A") {
          report.acknowledged++;
          issued.delete(w[2]);
        }
      }
      report.inFlight += issued.size;
      try {
        using s = LogStream.open(path);
        if (s.recovery.wrote) report.recovered++;
        const visible = readVisible(
          s,
          (op) => ledger.entry(op)?.length ?? null,
        );
        const problems = ledger.judge(visible);
        if (problems.length > 0) {
          report.problems.push(`after kill ${round}: ${problems.join(" | ")}`);
          break;
        }
        ledger.resolve(visible);
      } catch (e) {
        report.problems.push(
          `after kill ${round}: reopen failed: ${describeError(e)}`,
        );
        break;
      }
    }
  } finally {
    rmSync(path, { force: true });
  }
  return report;
}

if (import.meta.main) {
  const [flag, path, seed, first] = process.argv.slice(2);
  if (flag !== "--child") {
    throw new Error("Usage: stream_kill.ts --child PATH SEED FIRST_OP");
  }
  await writer(path, Number(seed), Number(first));
}
