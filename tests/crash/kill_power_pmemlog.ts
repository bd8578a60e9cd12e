// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Kill, recover, power failure (`kill_power.ts`) over a PmemLog trace
 * (`pmemlog_record.ts`): at sampled crash points (one in the create,
 * the others after it) the process is killed, the log opened on what it
 * left visible (traced), read back whole, one more append acknowledged,
 * the log closed; then each sampled power failure during or after that
 * open is opened and its contents judged: before the read, as a crash
 * at the kill allows (a log whose create was killed may be refused); once read, exactly what the open read (a power
 * failure must not take back what `tell` and `walk` reported), with the
 * append after it once acknowledged. An open that stores something it
 * never flushes is a problem too.
 *
 * @module
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { openPmemLogWith, type PmemLog } from "../../stream/pmemlog.ts";
import { closeNoting, describeError, isTypedError } from "./checker.ts";
import { tracedRun } from "./kill_image.ts";
import {
  checkPowerFailures,
  type KillPowerOptions,
  type KillPowerReport,
  READ_BACK,
  sampledKills,
} from "./kill_power.ts";
import { type CrashMover, crashMover } from "./movers.ts";
import {
  entryBytes,
  LOG_CREATED,
  logContents,
  PmemLogLedger,
  recordPmemLogTrace,
} from "./pmemlog_record.ts";
import { xorshift } from "./random.ts";
import { finishOpen, recoveryTracer } from "./recovery_crash.ts";
import type { ScratchImage } from "./scratch.ts";
import { countTrace, traceProblems } from "./sweep_report.ts";
import type { TraceEvent } from "./tracer.ts";
import type { Words } from "./words.ts";

/** Op numbers of the appends after a kill (the workload's stay below). */
const AFTER_KILL = 0x6000_0000;

/**
 * Record the PmemLog workload with `mover`, kill it at sampled crash
 * points and check power failures after each kill's open, adding to
 * `report`.
 */
export function killPowerPmemLog(
  mover: CrashMover,
  options: KillPowerOptions,
  report: KillPowerReport,
): void {
  const trace = recordPmemLogTrace(
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
  const created = trace.events.findIndex((e) =>
    e.kind === "mark" && e.label === LOG_CREATED
  );
  let ledger: PmemLogLedger | undefined;
  const kills = sampledKills(trace.base, trace.events, {
    model: options.model,
    rand,
    ranges: [
      { from: 0, to: created, count: options.createKills },
      { from: created, to: trace.events.length, count: options.kills },
    ],
    mark(label) {
      if (label === LOG_CREATED) ledger = new PmemLogLedger();
      else ledger!.record(label);
    },
  });
  for (const kill of kills) {
    const atKill = ledger?.copy();
    const after = entryBytes(AFTER_KILL + report.kills, 64);
    writeFileSync(path, kill.visible);
    let read: Uint8Array | undefined;
    let events: TraceEvent[];
    const vdm = crashMover(mover);
    try {
      events = tracedRun(path, kill.durable, (tracer) => {
        const log = openPmemLogWith(path, { mover: vdm }, { tracer });
        return { log, tracer, close: () => log.close() };
      }, ({ log, tracer }) => {
        read = logContents(log);
        tracer.mark(READ_BACK);
        tracer.mark(`I append ${AFTER_KILL + report.kills} ${after.length}`);
        log.append(after);
        tracer.mark(`A append ${AFTER_KILL + report.kills}`);
      }, options.model);
    } catch (e) {
      if (atKill === undefined && isTypedError(e)) {
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
    // a killed create the open took: the log it read is empty
    let now = atKill ?? new PmemLogLedger();
    // a log whose create was killed may be gone, until it was read
    let mayRefuse = atKill === undefined;
    const wrong = now.judge(shown);
    if (wrong !== null) {
      fail(kill.event, [], [`the open after the kill: ${wrong}`]);
      continue;
    }
    const reopened = {
      durable: kill.durable,
      events,
      mark(label: string) {
        // what the open read was handed out: acknowledged from here on
        if (label === READ_BACK) {
          now = new PmemLogLedger(shown);
          mayRefuse = false;
        } else now.record(label);
      },
    };
    checkPowerFailures(
      reopened,
      options,
      rand,
      report,
      (scratch) => (image) =>
        checkImage(scratch, options, image, now, mayRefuse),
      (units, problems) => fail(kill.event, units, problems),
    );
  }
}

/**
 * Open the durable image with `image` stored over it on the scratch
 * file (traced, to undo the open's stores), judge its contents, undo.
 */
function checkImage(
  scratch: ScratchImage,
  options: KillPowerOptions,
  image: readonly Words[],
  ledger: PmemLogLedger,
  mayRefuse: boolean,
): string[] {
  const problems: string[] = [];
  const tracer = recoveryTracer(scratch, options.model);
  try {
    for (const w of image) scratch.apply(w);
    let log: PmemLog | undefined;
    try {
      log = openPmemLogWith(scratch.path, {}, { tracer });
      const wrong = ledger.judge(logContents(log));
      if (wrong !== null) problems.push(wrong);
    } catch (e) {
      if (!mayRefuse || !isTypedError(e)) {
        problems.push(`open failed: ${describeError(e)}`);
      }
    } finally {
      if (log !== undefined) closeNoting(log, problems);
    }
    finishOpen(tracer, scratch, problems);
    return problems;
  } finally {
    scratch.revert();
  }
}
