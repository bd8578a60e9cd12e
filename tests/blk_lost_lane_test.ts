// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// A Worker's testing tracer closes its BlockPool at the commit point of a
// write while another thread has the pool open, and spoils what the close
// needs to recover the write's lane (`lost_lane_worker.ts`): its flog
// slot, or the persists. The lane stays out until the pool is opened
// again; the other thread is never left waiting for it: its writes go on
// with the lanes left, or fail with a typed error, and a reopen reports
// the damage. Each scenario runs in a child process, so a hang fails the
// test instead of the runner.
import { assert, runScript, tempPath, test } from "./_harness.ts";
import type { LaneSpoil } from "./workers/lost_lane_worker.ts";

/** One scenario: how the close's recovery is spoilt, and the lanes. */
interface Scenario {
  spoil: LaneSpoil;
  /** Lanes of the pool's arena. */
  lanes: number;
  /** The blocks of the Worker's write (a writeMany for more than one). */
  lbas?: number[];
}

/**
 * Run `s` in a child: a pool (block i holds i) open in the child's main
 * thread, the Worker's write of block 3 (or of `lbas`) with 99 closed at
 * its commit point, a lane's recovery spoilt; then the main thread writes
 * block 3, a group of 4 blocks (as many as the lanes, or more), 4
 * asynchronous writes at once and 12 plain writes, checks, closes and
 * opens the pool again. A write still pending after 5 s reads "hang",
 * and the child reports at once (a close would wait for it).
 */
function lostLane(s: Scenario): Record<string, unknown> {
  const path = tempPath();
  const r = runScript(
    `
    import { BlockPool } from "@root/blk/mod.ts";
    import { createBlockPool } from "@root/testing/mod.ts";
    import { ask, startWorker } from "@root/tests/workers/jobs.ts";
    import process from "node:process";
    const path = ${JSON.stringify(path)};
    const lbas = ${JSON.stringify(s.lbas ?? [3])};
    const block = (v) => new Uint8Array(512).fill(v);
    const out = {};
    const report = () => {
      console.log(JSON.stringify(out));
      process.exit(0);
    };
    const code = (f) => {
      try { f(); return 0; } catch (e) { return e.code ?? String(e); }
    };
    const settled = (p) => Promise.race([
      p.then(() => 0, (e) => e.code ?? String(e)),
      new Promise((r) => setTimeout(() => r("hang"), 5000)),
    ]);
    const pool = createBlockPool(path, {
      blockSize: 512,
      poolSize: 32 << 20,
      lanes: ${s.lanes},
    });
    for (let lba = 0; lba < 16; lba++) pool.write(lba, block(lba));
    const w = await startWorker("@root/tests/workers/lost_lane_worker.ts");
    out.worker = await ask(w, { path, lbas, value: 99, spoil: "${s.spoil}" });
    // the block whose stripe the closed write held
    out.write = code(() => pool.write(3, block(55)));
    // a group as large as the arena's lanes (or larger)
    out.group = await settled(pool.writeMany(
      [10, 11, 12, 13].map((lba) => ({ lba, data: block(lba + 100) })),
    ));
    if (out.group === "hang") report();
    out.async = await settled(Promise.all([4, 5, 6, 7].map((lba) =>
      pool.writeAsync(lba, block(lba + 100))
    )));
    if (out.async === "hang") report();
    out.writes = code(() => {
      for (let i = 0; i < 12; i++) pool.write(i % 8, block(i));
    });
    out.read = [10, 13, 0, 3].map((lba) => pool.read(lba)[0]);
    out.problems = pool.check().problems;
    w.terminate();
    pool.close();
    try {
      using again = BlockPool.open(path);
      out.again = again.check().problems;
      out.againWrite = code(() => again.write(1, block(1)));
    } catch (e) {
      out.again = e.code + " " + e.message;
    }
    report();
    `,
    60_000,
  );
  assert.equal(
    r.status,
    0,
    `status ${r.status} ${r.signal}: ${r.stdout}${r.stderr}`,
  );
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!);
}

/** The Worker's reply in every scenario: its write cut short by its close. */
const CLOSED_AT_COMMIT = {
  outcome: "ClosedError write",
  closedAtStep: true,
  closed: true,
};

// Bug: a close that could not recover its write's lane (its flog slot
// naming a block beyond the arena: the arena still takes writes) left the
// lane taken under the closed open's token, which the other openers count
// neither as live nor as ended: a group of as many updates as the arena
// has lanes waited for it for good (and the pool's close then waited for
// that group). The lane is counted as lost now: the group goes on with the
// lanes left.
test(
  "a tracer closes a Worker's BlockPool at a commit point whose flog slot names a block beyond the arena: the other thread's group writes go on with the lanes left",
  () => {
    const { worker, problems, again, ...writes } = lostLane({
      spoil: "lba",
      lanes: 4,
    });
    assert.deepEqual(worker, CLOSED_AT_COMMIT);
    assert.deepEqual(
      writes,
      {
        write: 0,
        group: 0,
        async: 0,
        writes: 0,
        read: [110, 113, 8, 11],
      },
    );
    // check() names the slot; the reopen refuses the pool, naming it too
    assert.ok(
      (problems as string[]).some((p) =>
        /flog slot \d+ is out of range/.test(p)
      ),
    );
    assert.match(
      again as string,
      /^-22 .*the pool is corrupt: arena 0: flog slot \d+ names block 2147483647/,
    );
  },
  { timeout: 90_000 },
);

// Bug: with the arena's only lane so lost, a write waited 30 s and failed
// with EBUSY, and asynchronous writes waited for good: they fail at once
// with EOWNERDEAD (-130), as with the lanes an ended Worker left.
test(
  "a tracer closes a Worker's BlockPool at a commit point it cannot recover, on the arena's only lane: the other thread's writes fail at once with EOWNERDEAD",
  () => {
    const { worker, problems: _, again, ...writes } = lostLane({
      spoil: "lba",
      lanes: 1,
    });
    assert.deepEqual(worker, CLOSED_AT_COMMIT);
    assert.deepEqual(
      writes,
      {
        write: -130,
        group: -130,
        async: -130,
        writes: -130,
        read: [10, 13, 0, 3],
      },
    );
    assert.match(again as string, /^-22 .*flog slot 0 names block/);
  },
  { timeout: 90_000 },
);

// A close in the middle of a writeMany's commit, one of its lanes' flog
// slots spoilt: only that lane is lost; the others are recovered and go
// round again (with them all kept out, the other thread's writes would
// fail with EOWNERDEAD).
test(
  "a tracer closes a Worker's BlockPool in a writeMany's commit, one flog slot unrecoverable: its other lanes go round again",
  () => {
    const { worker, problems: _, again, ...writes } = lostLane({
      spoil: "lba",
      lanes: 3,
      lbas: [3, 5, 6],
    });
    assert.deepEqual(worker, {
      ...CLOSED_AT_COMMIT,
      outcome: "ClosedError writeMany",
    });
    assert.deepEqual(writes, {
      write: 0,
      group: 0,
      async: 0,
      writes: 0,
      read: [110, 113, 8, 11],
    });
    assert.match(again as string, /^-22 .*flog slot \d+ names block/);
  },
  { timeout: 90_000 },
);

// Covered: a slot with invalid sequence numbers, or a persist of the
// recovery that fails, makes the arena refuse writes (EIO) in every
// opener at once; check() and the reopen report it.
for (
  const [spoil, damage] of [
    ["seq", /flog slot \d+ has invalid sequence numbers/],
    ["persist", /error flag is set/],
  ] as const
) {
  test(
    `a tracer closes a Worker's BlockPool at a commit point it cannot recover (${spoil}): the other thread's writes fail at once with EIO`,
    () => {
      const { worker, problems, again, ...writes } = lostLane({
        spoil,
        lanes: 4,
      });
      assert.deepEqual(worker, CLOSED_AT_COMMIT);
      assert.deepEqual(
        writes,
        {
          write: -5,
          group: -5,
          async: -5,
          writes: -5,
          read: [10, 13, 0, 3],
          againWrite: -5,
        },
      );
      assert.ok((problems as string[]).length > 0);
      const found = again as string[];
      assert.ok(found.some((p) => damage.test(p)), found.join("; "));
    },
    { timeout: 90_000 },
  );
}
