// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Kill, recover, power failure (`kill_power.ts`) over a block workload's
 * trace (`record.ts`): at sampled crash points the process is killed,
 * the pool opened on what it left visible (its recovery traced), every
 * block read back, one more write acknowledged, the pool closed; then
 * sampled power failures during or after that open are opened by the
 * sweep's {@linkcode ImageChecker} and held to:
 *
 * - before the read: the states a crash at the kill allows (the ledger);
 * - once read: each block in the state the open after the kill read (a
 *   power failure must not take back what recovery handed out), and the
 *   write acknowledged after it whole;
 * - `check()` consistent, nothing torn (the checker's own checks).
 *
 * @module
 */
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { poolGeometry } from "../../blk/mod.ts";
import { openPoolWith } from "../../blk/pool_access.ts";
import {
  compareWithLedger,
  describeError,
  ImageChecker,
  isTypedError,
  type Observed,
  readBlocks,
} from "./checker.ts";
import { tracedRun } from "./kill_image.ts";
import {
  checkPowerFailures,
  type KillPowerOptions,
  type KillPowerReport,
  READ_BACK,
  sampledKills,
} from "./kill_power.ts";
import { ERROR, Ledger, opLabel, ZERO } from "./ledger.ts";
import { type CrashMover, crashMover } from "./movers.ts";
import { Payloads } from "./payload.ts";
import { xorshift } from "./random.ts";
import { CREATED, poolSizeOf, recordTrace, WARMED } from "./record.ts";
import { poolRegions } from "./regions.ts";
import { recycle } from "./spare_buffers.ts";
import { countTrace, traceProblems } from "./sweep_report.ts";
import type { TraceEvent } from "./tracer.ts";
import type { Workload } from "./workload.ts";

/**
 * A ledger allowing what `ledger` allows of `lbas` now (the ledger of
 * the kill, kept while the trace walks on).
 */
function ledgerNow(ledger: Ledger, lbas: readonly number[]): Ledger {
  const states = lbas.map((lba) => [lba, ledger.allowed(lba)] as const);
  const copy = new Ledger(new Map(states.map(([lba, s]) => [lba, s[0]])));
  for (const [lba, [, ...inFlight]] of states) {
    for (const s of inFlight) {
      const op = s === ZERO ? "zero" : s === ERROR ? "error" : "write";
      copy.issue({ op, lba, version: s });
    }
  }
  return copy;
}

/** A payload version no workload writes: the write after a kill's. */
const AFTER_KILL = 0x4000_0000;

/**
 * Record workload `w` with `mover`, then kill it at
 * sampled crash points and check power failures after each kill's
 * recovery, adding to `report`.
 */
export function killPowerBlk(
  w: Workload,
  mover: CrashMover,
  options: KillPowerOptions,
  report: KillPowerReport,
): void {
  const trace = recordTrace(
    w,
    options.model,
    options.seed,
    options.ops,
    join(options.dir, "trace"),
    {},
    mover,
  );
  countTrace(report, trace);
  const rand = xorshift(options.seed ^ 0x6b111);
  const payloads = new Payloads(w.blockSize);
  const lbas = [
    ...w.lbas,
    Math.max(...w.lbas) + 1,
    poolGeometry(poolSizeOf(w), w.blockSize).blockCount - 1,
  ];
  const fail = traceProblems(report, trace);
  const path = join(options.dir, "killed");
  let created = !w.fromCreate;
  const at = (label: string) =>
    trace.events.findIndex((e) => e.kind === "mark" && e.label === label);
  const end = trace.events.length;
  // a create's few events get kills of their own
  const ranges = w.fromCreate
    ? [
      { from: 0, to: at(CREATED), count: options.createKills },
      { from: at(CREATED), to: end, count: options.kills },
    ]
    : [{ from: w.warmup > 0 ? at(WARMED) : 0, to: end, count: options.kills }];
  const kills = sampledKills(trace.base, trace.events, {
    model: options.model,
    rand,
    ranges,
    mark(label) {
      if (label === CREATED) created = true;
      else if (label !== WARMED) trace.ledger.record(label);
    },
  });
  for (const kill of kills) {
    const atKill = ledgerNow(trace.ledger, lbas);
    const write = {
      op: "write" as const,
      lba: w.lbas[Math.floor(rand() * w.lbas.length)],
      version: AFTER_KILL + report.kills,
    };
    writeFileSync(path, kill.visible);
    let observed: Map<number, Observed> | undefined;
    let events: TraceEvent[];
    const vdm = crashMover(mover);
    try {
      events = tracedRun(path, kill.durable, (tracer) => {
        const pool = openPoolWith(path, { mover: vdm }, {
          tracer,
          lanes: w.lanes,
        });
        return {
          pool,
          tracer,
          close: () => pool.close(),
        };
      }, ({ pool, tracer }) => {
        observed = readBlocks(pool, lbas, payloads);
        tracer.mark(READ_BACK);
        tracer.mark(opLabel("issue", write));
        pool.write(write.lba, payloads.get(write.lba, write.version));
        tracer.mark(opLabel("ack", write));
      }, options.model);
    } catch (e) {
      if (!created && isTypedError(e)) {
        report.refused++;
        continue;
      }
      fail(kill.event, [], [`the open after the kill: ${describeError(e)}`]);
      continue;
    } finally {
      vdm.close();
    }
    report.kills++;
    const read = observed!;
    const wrong = compareWithLedger(read, atKill);
    if (wrong.length > 0) {
      fail(kill.event, [], wrong.map((p) => `the open after the kill: ${p}`));
      continue;
    }
    let ledger = atKill;
    // a pool whose create was killed may be gone, until it was read
    let mayRefuse = !created;
    const reopened = {
      durable: kill.durable,
      events,
      mark(label: string) {
        // from here on each block holds what the open read, and the
        // write after it is acknowledged once its mark is passed
        if (label === READ_BACK) {
          ledger = new Ledger(read as Map<number, number>);
          mayRefuse = false;
        } else ledger.record(label);
      },
    };
    checkPowerFailures(reopened, options, rand, report, (scratch) => {
      const checker = new ImageChecker(scratch, {
        model: options.model,
        payloads,
        lbas,
        regions: poolRegions(poolSizeOf(w), w.blockSize),
      });
      return (image) =>
        checker.check(image, ledger, {
          mayRefuse,
          pmempool: false,
          recoveryImages: 0,
          rand,
        }).problems;
    }, (units, problems) => fail(kill.event, units, problems));
  }
  recycle(trace.base);
}
