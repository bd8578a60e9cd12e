// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// A Worker's testing tracer closes its BlockPool in the middle of a write
// while another thread has the pool open (`close_commit_worker.ts`): the
// close gives back the lane and the stripe the write held in the pool's
// shared state (recovering the lane from its flog slot, as the openers
// that go on recover those of an ended Worker), so the other thread's
// writes of those blocks go on, and every block reads whole. Each scenario
// runs in a child process, so a hang fails the test instead of the runner.
import { assert, lastJsonLine, runScript, tempPath, test } from "./_harness.ts";
import type {
  CloseInCommitJob,
  CloseStep,
} from "./workers/close_commit_worker.ts";

/** One scenario: how the Worker writes, and where it closes. */
interface Scenario {
  op: CloseInCommitJob["op"];
  step: CloseStep;
  lbas: number[];
}

const SCENARIOS: Scenario[] = [
  { op: "write", step: "data", lbas: [3] },
  { op: "write", step: "flogTail", lbas: [3] },
  { op: "writeAsync", step: "data", lbas: [3] },
  { op: "writeAsync", step: "flogTail", lbas: [3] },
  { op: "writeMany", step: "flogTail", lbas: [3, 5, 6] },
  { op: "setError", step: "map", lbas: [3] },
];

/**
 * Run `scenario` in a child: a pool of 4 lanes (block i holds i) open in
 * the child's main thread, the Worker's write of `lbas` with 99 closed at
 * the step; then the main thread writes those blocks and every lane.
 */
function closeInWorker(s: Scenario): Record<string, unknown> {
  const path = tempPath();
  const r = runScript(
    `
    import { BlockPool } from "@root/blk/mod.ts";
    import { createBlockPool } from "@root/testing/mod.ts";
    import { ask, startWorker } from "@root/tests/workers/jobs.ts";
    import process from "node:process";
    const path = ${JSON.stringify(path)};
    const lbas = ${JSON.stringify(s.lbas)};
    const block = (v) => new Uint8Array(512).fill(v);
    const code = (f) => {
      try { f(); return 0; } catch (e) { return e.code ?? String(e); }
    };
    const asyncCode = async (p) => {
      try { await p; return 0; } catch (e) { return e.code ?? String(e); }
    };
    const whole = (p, lba) => {
      try {
        const b = p.read(lba);
        return b.every((x) => x === b[0]) ? b[0] : "torn";
      } catch (e) {
        return e.name;
      }
    };
    const out = {};
    const pool = createBlockPool(path, {
      blockSize: 512,
      poolSize: 32 << 20,
      lanes: 4,
    });
    for (let lba = 0; lba < 8; lba++) pool.write(lba, block(lba));
    const w = await startWorker("@root/tests/workers/close_commit_worker.ts");
    out.worker = await ask(w, {
      path, op: "${s.op}", lbas, value: 99, step: "${s.step}",
    });
    out.seen = lbas.map((lba) => whole(pool, lba));
    // the blocks (and their stripes) the closed write held
    out.write = code(() => pool.write(lbas[0], block(55)));
    out.writeMany = await asyncCode(pool.writeMany(
      lbas.map((lba) => ({ lba, data: block(66) })),
    ));
    out.after = lbas.map((lba) => whole(pool, lba));
    // every lane goes round: 40 writes, then a group of all 4 at once
    out.writes = code(() => {
      for (let i = 0; i < 40; i++) pool.write(i % 8, block(i));
    });
    out.group = await asyncCode(pool.writeMany(
      [10, 11, 12, 13].map((lba) => ({ lba, data: block(lba) })),
    ));
    out.problems = pool.check().problems;
    w.terminate();
    pool.close();
    {
      using again = BlockPool.open(path);
      out.again = again.check().problems;
      out.readAgain = [7, 10, 13].map((lba) => whole(again, lba));
    }
    console.log(JSON.stringify(out));
    process.exit(0);
    `,
    30_000,
  );
  return lastJsonLine(r);
}

// Bug: the close left the write's lane (and, from its commit on, its
// block's stripe) taken in the shared state under the closed open's
// token; the open no longer counted as live nor as ended, so the other
// thread's next write of the block (or of any block of the stripe, or
// needing every lane) waited for them for good.
for (const s of SCENARIOS) {
  test(
    `a Worker's tracer closes its BlockPool during ${s.op}() at ${s.step}: the other thread's writes go on, blocks whole`,
    () => {
      const out = closeInWorker(s);
      assert.deepEqual(out.worker, {
        outcome: `ClosedError ${s.op}`,
        closedAtStep: true,
        closed: true,
      });
      // before its commit point the write is not done; at it (the entry
      // stored, its persist cut short) the close finishes it, as the
      // recovery of an ended Worker's commit would (block i held i); a
      // setError's map entry was stored before its persist
      assert.deepEqual(
        out.seen,
        s.step === "data"
          ? s.lbas
          : s.lbas.map(() => s.op === "setError" ? "BadBlockError" : 99),
      );
      assert.equal(out.write, 0);
      assert.equal(out.writeMany, 0);
      assert.deepEqual(out.after, s.lbas.map(() => 66));
      assert.equal(out.writes, 0);
      assert.equal(out.group, 0);
      assert.deepEqual(out.problems, []);
      assert.deepEqual(out.again, []);
      assert.deepEqual(out.readAgain, [39, 10, 13]);
    },
    { timeout: 60_000 },
  );
}

// Bug: a tracer that closed a pool in the middle of laying out its BTT
// (the first write of a pool made without one, as libpmemblk makes them)
// left the layout lock held by the closed open: another open of the pool
// in the process waited for it for good at its own first write.
test(
  "a tracer that closes a BlockPool while its first write lays the BTT out: another open lays it out and writes",
  () => {
    const r = runScript(
      `
    import { BlockPool } from "@root/blk/mod.ts";
    import { openBlockPool } from "@root/testing/mod.ts";
    import { unformatted } from "@root/tests/blk_fixtures.ts";
    import process from "node:process";
    const block = (v) => new Uint8Array(512).fill(v);
    let events = 0;
    let at = 0;
    let close = () => {};
    const event = () => { if (++events === at) close(); };
    const tracer = { flush: event, drain: event };
    const out = { n: 0, runs: [] };
    {
      const path = unformatted();
      using a = openBlockPool(path, { tracer });
      events = 0;
      a.write(3, block(1));
      out.n = events; // (not the close's)
    }
    for (at = 1; at <= out.n; at++) {
      const path = unformatted();
      const a = openBlockPool(path, { tracer });
      const b = BlockPool.open(path);
      close = () => a.close();
      events = 0;
      const run = { at };
      try {
        a.write(3, block(1));
        run.a = "ok";
      } catch (e) {
        run.a = e.name + " " + e.op;
      }
      close = () => {};
      b.write(3, block(7));
      run.b = b.read(3)[0];
      run.problems = b.check().problems;
      b.close();
      using again = BlockPool.open(path);
      run.again = again.check().problems;
      run.read = again.read(3)[0];
      out.runs.push(run);
    }
    console.log(JSON.stringify(out));
    process.exit(0);
    `,
      30_000,
    );
    const out = lastJsonLine(r);
    assert.ok(out.n >= 2, `${out.n} events`);
    for (const run of out.runs) {
      const at = `closed at event ${run.at} of ${out.n}`;
      assert.equal(run.a, "ClosedError write", at);
      assert.equal(run.b, 7, at);
      assert.deepEqual(run.problems, [], at);
      assert.deepEqual(run.again, [], at);
      assert.equal(run.read, 7, at);
    }
  },
  { timeout: 60_000 },
);
