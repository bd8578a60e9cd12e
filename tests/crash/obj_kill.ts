// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The object store's kill test: a child process runs the crash workload
 * (synchronous transactions and groups of asynchronous ones through a
 * thread mover) on a pool and prints "issue k" / "ack k"; the parent
 * SIGKILLs it at a random moment, reopens the pool and checks it shows
 * the state after some k between the last acknowledged and the last
 * issued, with a heap that holds exactly what that state reaches.
 *
 * A kill is a process crash: stores stay in the page cache whether
 * persisted or not; the crash sweep covers lost stores.
 *
 * The child side is `obj_kill.ts --child PATH SEED OPS`.
 *
 * @module
 */
import { rmSync, writeSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { ThreadMover } from "../../mover/mod.ts";
import { checkObjectPool, ObjectPool } from "../../obj/mod.ts";
import { describeError } from "./checker.ts";
import { startChild } from "./child.ts";
import { xorshift } from "./random.ts";
import {
  fingerprint,
  OBJ_OPTIONS,
  ObjDriver,
  observe,
  setup,
} from "./obj_workload.ts";

/** What the kill rounds did and found. */
export interface ObjKillReport {
  kills: number;
  /** Transactions acknowledged before the kills. */
  acknowledged: number;
  /** Reopens that replayed log records. */
  recovered: number;
  problems: string[];
}

/** Print a kill report for people. */
export function formatObjKillReport(r: ObjKillReport): string {
  return [
    `object kill: ${r.kills} writers killed, ${r.acknowledged} transactions acknowledged, ${r.recovered} reopens replayed the log, ${r.problems.length} problems`,
    ...r.problems.map((p) => `  PROBLEM ${p}`),
  ].join("\n");
}

/** The workload's states for `seed`, by running it on a scratch pool. */
function expectedStates(path: string, seed: number, ops: number): string[] {
  rmSync(path, { force: true });
  using pool = ObjectPool.create(path, OBJ_OPTIONS);
  const d = new ObjDriver(pool, () => {}, xorshift(seed), setup(pool));
  d.run(ops);
  pool.close();
  rmSync(path, { force: true });
  return d.states;
}

/** The child: run the workload, printing labels, then wait to be killed. */
function writer(path: string, seed: number, ops: number): void {
  using mover = new ThreadMover({ threads: 2 });
  using pool = ObjectPool.create(path, { ...OBJ_OPTIONS, mover });
  const base = setup(pool);
  writeSync(1, "ready\n");
  const d = new ObjDriver(
    pool,
    (label) => writeSync(1, `${label}\n`),
    xorshift(seed),
    base,
  );
  d.run(ops);
  writeSync(1, "done\n");
}

/** Kill `rounds` writers at random moments and check each pool. */
export async function objKillRounds(
  path: string,
  rounds: number,
  seed: number,
  ops = 1500,
): Promise<ObjKillReport> {
  const report: ObjKillReport = {
    kills: 0,
    acknowledged: 0,
    recovered: 0,
    problems: [],
  };
  const rand = xorshift(seed);
  for (let r = 0; r < rounds; r++) {
    const s = seed * 1000 + r;
    const states = expectedStates(`${path}.model`, s, ops);
    rmSync(path, { force: true });
    const child = startChild(fileURLToPath(import.meta.url), [
      "--child",
      path,
      String(s),
      String(ops),
    ]);
    await child.printed("ready");
    await new Promise((res) => setTimeout(res, 20 + rand() * 300));
    child.kill("SIGKILL");
    const ended = await child.ended;
    report.kills++;
    const out = ended.stdout;
    let acked = 0;
    let issued = 0;
    for (const line of out.split("\n")) {
      if (line.startsWith("ack ")) {
        acked = Math.max(acked, Number(line.slice(4)));
      }
      if (line.startsWith("issue ")) {
        issued = Math.max(issued, Number(line.slice(6)));
      }
    }
    report.acknowledged += acked;
    try {
      using pool = ObjectPool.open(path, { layout: OBJ_OPTIONS.layout });
      if (pool.recovery.records > 0) report.recovered++;
      const seen = observe(pool);
      const fp = fingerprint(seen.state);
      const hi = Math.max(issued, acked);
      if (!states.includes(fp)) {
        report.problems.push(`round ${r}: a state no prefix left`);
      } else if (!states.slice(acked, hi + 1).includes(fp)) {
        report.problems.push(
          `round ${r}: the pool shows the state after ${
            states.indexOf(fp)
          }; acknowledged ${acked}, issued ${issued}`,
        );
      }
      report.problems.push(
        ...checkObjectPool(pool, { live: seen.live }).problems.map((p) =>
          `round ${r}: ${p}`
        ),
      );
    } catch (e) {
      report.problems.push(`round ${r}: reopen failed: ${describeError(e)}`);
    }
  }
  rmSync(path, { force: true });
  return report;
}

if (import.meta.main && process.argv[2] === "--child") {
  writer(process.argv[3], Number(process.argv[4]), Number(process.argv[5]));
  // stay until killed
  await new Promise((res) => setTimeout(res, 30_000));
}
