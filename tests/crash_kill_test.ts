// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// A real process crash: a writer SIGKILLed at random moments.
import { formatKillReport, killRounds } from "./crash/kill.ts";
import { assert, tempPath, test } from "./_harness.ts";
import { requires } from "./_requires.ts";

test(
  "writers SIGKILLed at random moments, alone or in two Workers, leave every acknowledged write whole",
  async () => {
    const report = await killRounds(tempPath(), 9, 11, { pmempool: true });
    console.log(formatKillReport(report));
    assert.deepEqual(report.problems, []);
    assert.equal(report.kills, 9);
    assert.equal(report.workerRounds, 4);
    assert.deepEqual(report.movers, { cpu: 3, threads: 3, dsa: 3 });
    assert.equal(report.pmempoolRuns, 9);
    assert.ok(report.acknowledged > 100, `${report.acknowledged} acknowledged`);
  },
  { timeout: 180_000, skip: requires("pmempool") },
);
