// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Kill, then recover, then a power failure, for every store
// (`tests/crash/kill_power.ts`): a killed process leaves stores visible
// that the media never got; the next open's recovery reads them and
// builds on them (acknowledges new work, repairs from them, marks the
// pool open); a power failure after it must still leave a state that
// what was acknowledged explains -- before the kill and after the
// recovery -- and what the reopen read. The bug class of the stores'
// *_recovery_flush tests, found there by hand-built images, swept here.
//
// Bounds (fixed seeds; about 11 s of CPU per runtime for the file, user
// and system, 7 of them blk's; 15-20 s of wall time on a loaded 2-CPU
// machine): one trace per workload and mover (blk: every workload, the
// crash sweep's movers in turn; the stream: every workload on every
// mover; PmemLog and obj: one trace per mover). Kills per trace: two
// after the create (one after an unfenced flush, one after stores not
// flushed yet; obj one), and in a create six (blk: all its unfenced
// points) or two. Per kill: every crash point of the reopen's recovery
// (up to ten), four (blk: two) sampled after it, and its end, with a few
// subsets of each (`POWER_SUBSETS`). The model is the one this process's
// mappings have (`modelHere`): page on a file system;
// `PMEM2_FORCE_GRANULARITY=CACHE_LINE` walks the cache-line model (green
// too), and the stream is swept in it by a child as well. The stream's
// sweeps found its open trusting a header that a killed create (page
// model) or bound raise (cache-line model) had not made durable.
// Red with a fix undone, on Deno and Bun: the block store's header
// persist of an unclean open (ea12138), PmemLog's persist of the write
// offset it trusts (40b436e, in its current form), the object store's
// persist of the records it replays (49c95be), and the stream's header
// persist at its first open (both stream tests that name it).
import {
  emptyKillPowerReport,
  formatKillPowerReport,
  type KillPowerReport,
  modelHere,
} from "./crash/kill_power.ts";
import { killPowerBlk } from "./crash/kill_power_blk.ts";
import { killPowerObj } from "./crash/kill_power_obj.ts";
import { killPowerPmemLog } from "./crash/kill_power_pmemlog.ts";
import { streamKillPowerSweep } from "./crash/kill_power_stream.ts";
import { startChild } from "./crash/child.ts";
import { CACHE_LINE } from "./crash/model.ts";
import { CRASH_MOVERS } from "./crash/movers.ts";
import { WORKLOADS } from "./crash/workload.ts";
import { assert, tempDir, test } from "./_harness.ts";

/** Run `body` with a fresh report and options, print it, check it. */
function sweep(
  title: string,
  atLeast: { kills: number; afterRead: number },
  body: (
    options: { model: ReturnType<typeof modelHere>; dir: string },
    report: KillPowerReport,
  ) => void,
): void {
  const dir = tempDir();
  const model = modelHere(dir);
  const report = emptyKillPowerReport(model);
  const started = performance.now();
  body({ model, dir }, report);
  report.ms = performance.now() - started;
  console.log(formatKillPowerReport(title, report));
  assert.deepEqual(report.examples, []);
  assert.equal(report.problems, 0);
  assert.ok(report.kills >= atLeast.kills, `only ${report.kills} kills`);
  assert.ok(
    report.afterRead >= atLeast.afterRead,
    `only ${report.afterRead} power failures after a reopen read the store`,
  );
}

test(
  "kill, recover, power failure: a block pool keeps every write acknowledged before the kill and after the recovery",
  () =>
    sweep("blk kill-power", { kills: 8, afterRead: 20 }, (o, report) => {
      WORKLOADS.forEach((w, k) =>
        killPowerBlk(w, CRASH_MOVERS[k % CRASH_MOVERS.length], {
          ...o,
          seed: 1 + k,
          ops: 12,
          kills: 2,
          createKills: 6,
          points: 2,
        }, report)
      );
    }),
);

test(
  "kill, recover, power failure: a log stream keeps every entry acknowledged before the kill and after the recovery",
  () =>
    sweep(
      "stream kill-power",
      { kills: 8, afterRead: 20 },
      (o, report) => streamKillPowerSweep(0, o, report),
    ),
);

test(
  "kill, recover, power failure, cache-line model: a log stream's open after a kill makes the bound durable before it settles on it",
  async () => {
    // A process killed after the stream raised its bound R and before
    // the fence: the next open settles W = R, and W reaches the media on
    // its own; a power failure keeping W and not R left a header the
    // open refuses. A page holds both words, so only the cache-line
    // model shows it: a child whose mappings have it sweeps the stream.
    const dir = tempDir();
    const r = await startChild(
      new URL("./crash/kill_power_stream.ts", import.meta.url).pathname,
      ["--create-kills", "2", "--dir", dir],
      { PMEM2_FORCE_GRANULARITY: CACHE_LINE.forceGranularity },
    ).ended;
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as KillPowerReport;
    console.log(
      formatKillPowerReport("stream kill-power (cache line)", report),
    );
    assert.deepEqual(report.models, [CACHE_LINE.name]);
    assert.deepEqual(report.examples, []);
    assert.equal(report.problems, 0);
    assert.ok(report.kills >= 8, `only ${report.kills} kills`);
    assert.ok(
      report.afterRead >= 20,
      `only ${report.afterRead} power failures after a reopen read the store`,
    );
  },
);

test(
  "kill, recover, power failure: a log stream whose create was killed keeps what the open after it acknowledged",
  () =>
    sweep(
      "stream kill-power",
      { kills: 8, afterRead: 20 },
      (o, report) => streamKillPowerSweep(2, o, report),
    ),
);

test(
  "kill, recover, power failure: a PmemLog keeps every append acknowledged before the kill and after the recovery",
  () =>
    sweep("PmemLog kill-power", { kills: 6, afterRead: 15 }, (o, report) => {
      CRASH_MOVERS.forEach((mover, k) =>
        killPowerPmemLog(mover, {
          ...o,
          seed: 1 + k,
          ops: 12,
          kills: 2,
          createKills: 2,
          points: 4,
        }, report)
      );
    }),
);

test(
  "kill, recover, power failure: an object pool keeps every transaction acknowledged before the kill and after the recovery",
  () =>
    sweep("obj kill-power", { kills: 4, afterRead: 15 }, (o, report) => {
      CRASH_MOVERS.forEach((mover, k) =>
        killPowerObj(mover, {
          ...o,
          seed: 1 + k,
          ops: 10,
          kills: 1,
          createKills: 2,
          points: 4,
        }, report)
      );
    }),
);
