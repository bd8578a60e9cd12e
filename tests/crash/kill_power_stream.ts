// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Kill, recover, power failure (`kill_power.ts`) over a log-stream
 * workload's trace (`stream_record.ts`): the process is killed at a
 * sampled crash point, the stream opened on what it left visible (its
 * recovery traced), every region read back, one more append
 * acknowledged as persisted, the stream closed; then sampled power
 * failures during or after that open are opened by the sweep's
 * {@linkcode StreamImageChecker} and judged by the trace's
 * {@linkcode StreamLedger}: before the read, as a crash at the kill;
 * once read, what the open showed is what was acknowledged
 * (`StreamLedger.resolve`), and the append after it too.

 *
 * @module
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { openStreamWith } from "../../stream/stream.ts";
import { describeError, isTypedError } from "./checker.ts";
import { tracedRun } from "./kill_image.ts";
import {
  checkPowerFailures,
  emptyKillPowerReport,
  type KillPowerOptions,
  type KillPowerReport,
  modelHere,
  READ_BACK,
  sampledKills,
} from "./kill_power.ts";
import type { PersistenceModel } from "./model.ts";
import { crashMover, parseCrashMover, STREAM_CRASH_MOVERS } from "./movers.ts";
import { xorshift } from "./random.ts";
import { readVisible, StreamImageChecker } from "./stream_checker.ts";
import { StreamLedger, type Visible } from "./stream_ledger.ts";
import { CREATED_MARK, recordStreamTrace } from "./stream_record.ts";
import {
  STREAM_WORKLOADS,
  StreamDriver,
  type StreamWorkload,
} from "./stream_workload.ts";
import { countTrace, traceProblems } from "./sweep_report.ts";
import type { TraceEvent } from "./tracer.ts";

/** The ledger of a stream whose create was not acknowledged. */
function uncreated(): StreamLedger {
  const ledger = new StreamLedger();
  ledger.created = false;
  return ledger;
}

/** The region a stream without one gets after a kill. */
const REGION_SIZE = 16384;

/** Op numbers of the appends after a kill (the workloads' stay below). */
const AFTER_KILL = 0x6000_0000;

/**
 * Record workload `w` with `mover`, kill it at sampled crash points
 * (`createKills` in its create, each with a ledger of its own: nothing
 * was acknowledged yet; `kills` after it, each with a copy of the
 * trace's) and check power failures after each kill's open, adding to
 * `report`.
 */
export function killPowerStream(
  w: StreamWorkload,
  mover: string,
  options: KillPowerOptions,
  report: KillPowerReport,
): void {
  const trace = recordStreamTrace(
    w,
    options.model,
    options.seed,
    options.ops,
    join(options.dir, "trace"),
    mover,
  );
  countTrace(report, trace);
  const rand = xorshift(options.seed ^ 0x6b111);
  const fail = traceProblems(report, trace);
  const path = join(options.dir, "killed");
  const end = trace.events.length;
  const created = trace.events.findIndex((e) =>
    e.kind === "mark" && e.label === CREATED_MARK
  );
  const kills = sampledKills(trace.base, trace.events, {
    model: options.model,
    rand,
    ranges: [
      { from: 0, to: created, count: options.createKills },
      { from: Math.max(0, created), to: end, count: options.kills },
    ],
    mark(label) {
      if (label === CREATED_MARK) trace.ledger.created = true;
      else trace.ledger.record(label);
    },
  });
  for (const kill of kills) {
    const ledger = kill.event < created ? uncreated() : trace.ledger.copy();
    const lengthOf = (op: number) => ledger.entry(op)?.length ?? null;
    writeFileSync(path, kill.visible);
    let read: Visible | undefined;
    let events: TraceEvent[];
    const vdm = crashMover(parseCrashMover(mover));
    try {
      events = tracedRun(path, kill.durable, (tracer) => {
        const s = openStreamWith(path, { mover: vdm }, { tracer });
        return { s, tracer, close: () => s.close() };
      }, ({ s, tracer }) => {
        read = readVisible(s, lengthOf);
        tracer.mark(READ_BACK);
        const d = new StreamDriver(s, (l) => tracer.mark(l), rand, AFTER_KILL);
        const r = d.regions()[0] ?? d.allocate(REGION_SIZE);
        if (r !== null) d.append(r);
      }, options.model);
    } catch (e) {
      if (!ledger.created && isTypedError(e)) {
        report.refused++;
        continue;
      }
      fail(kill.event, [], [`the open after the kill: ${describeError(e)}`]);
      continue;
    } finally {
      vdm.close();
    }
    report.kills++;
    const shown = read!;
    const wrong = ledger.judge(shown);
    if (wrong.length > 0) {
      fail(kill.event, [], wrong.map((p) => `the open after the kill: ${p}`));
      continue;
    }
    // a stream whose create was killed may be gone, until it was read
    let mayRefuse = !ledger.created;
    const reopened = {
      durable: kill.durable,
      events,
      mark(label: string) {
        // what the open showed was handed out: acknowledged from here on
        if (label === READ_BACK) {
          ledger.resolve(shown);
          mayRefuse = false;
        } else ledger.record(label);
      },
    };
    checkPowerFailures(reopened, options, rand, report, (scratch) => {
      const checker = new StreamImageChecker(scratch, options.model);
      return (image) =>
        checker.check(image, ledger, {
          mayRefuse,
          probe: false,
          recoveryImages: 0,
          rand,
        }).problems;
    }, (units, problems) => fail(kill.event, units, problems));
  }
}

/**
 * The stream's kill-power sweep: every workload on every mover, killed
 * twice after its create (and `createKills` times in it).
 */
export function streamKillPowerSweep(
  createKills: number,
  options: { model: PersistenceModel; dir: string },
  report: KillPowerReport,
): void {
  STREAM_WORKLOADS.forEach((w, k) => {
    for (let m = 0; m < STREAM_CRASH_MOVERS.length; m++) {
      killPowerStream(w, STREAM_CRASH_MOVERS[m], {
        ...options,
        seed: 1 + 8 * k + m,
        ops: 12,
        kills: 2,
        createKills,
        points: 4,
      }, report);
    }
  });
}

// The child side (`kill_power_test.ts` runs it with
// PMEM2_FORCE_GRANULARITY=CACHE_LINE: the model is the mappings' own,
// set when a mapping is made, and Bun does not pass later `process.env`
// changes to native code): `--create-kills N --dir D`, prints the report.
if (import.meta.main) {
  const args = process.argv.slice(2);
  const value = (name: string) => args[args.indexOf(name) + 1];
  const dir = value("--dir");
  const model = modelHere(dir);
  const report = emptyKillPowerReport(model);
  const started = performance.now();
  streamKillPowerSweep(Number(value("--create-kills")), { model, dir }, report);
  report.ms = performance.now() - started;
  console.log(JSON.stringify(report));
}
