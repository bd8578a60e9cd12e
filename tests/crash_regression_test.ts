// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Crash images the simulator found wrong, kept as regression tests.
import { readFileSync } from "node:fs";
import { BlockPool, MIN_POOL_SIZE, poolGeometry } from "../blk/mod.ts";
import { mapFile } from "../mod.ts";
import { ImageChecker } from "./crash/checker.ts";
import { Ledger } from "./crash/ledger.ts";
import { CACHE_LINE } from "./crash/model.ts";
import { Payloads } from "./crash/payload.ts";
import { pmempoolCheck } from "./crash/pmempool.ts";
import { xorshift } from "./crash/random.ts";
import { requires } from "./_requires.ts";
import { poolRegions } from "./crash/regions.ts";
import { ScratchImage } from "./crash/scratch.ts";
import { u32View, Words } from "./crash/words.ts";
import { assert, tempPath, test } from "./_harness.ts";

const BLOCK_SIZE = 4096;
const MAP_NORMAL = 0xc000_0000;

/**
 * The image the first sweep failed on (workload "sync", seed 1, model
 * cache-line, after event 49, units [0]): a lane's first flog update
 * persisted its head {lba, old_map}, then the process crashed before the
 * commit {new_map, seq}. The lane's current entry is still its initial
 * one (old_map == new_map), which check() and `pmempool check` accept
 * only with an all-zero second entry, so the pool was reported
 * inconsistent after recovery, though nothing was lost.
 *
 * @returns the pool file (blocks 0..3 written) and the head's word
 */
function halfWrittenFirstUpdate(): { path: string; head: Words; at: number } {
  const path = tempPath();
  {
    using pool = BlockPool.create(path, {
      blockSize: BLOCK_SIZE,
      poolSize: MIN_POOL_SIZE,
    });
    const payloads = new Payloads(BLOCK_SIZE);
    for (let lba = 0; lba < 4; lba++) pool.write(lba, payloads.get(lba, 1));
  }
  // lanes are taken from 255 down: 255..252 wrote, 251 is next
  const g = poolGeometry(MIN_POOL_SIZE, BLOCK_SIZE).arenas[0];
  const at = 8192 + g.flogOff + 251 * 64 + 16; // its entry B
  const head = new Words();
  head.push(at / 8, 6, (6 | MAP_NORMAL) >>> 0); // {lba 6, old_map 6|NORMAL}
  return { path, head, at };
}

test(
  "`BlockPool.open()` clears a first flog update whose commit never persisted",
  () => {
    const { path, head, at } = halfWrittenFirstUpdate();
    {
      using map = mapFile(path);
      head.applyTo(u32View(map.view()));
      map.persist(0, map.size);
    }
    // libpmemblk leaves this state too; pmempool calls it inconsistent
    assert.match(pmempoolCheck(path).output, /invalid BTT Flog entry at 251/);
    {
      using pool = BlockPool.open(path);
      const report = pool.check();
      assert.deepEqual(report.problems, []);
      assert.deepEqual(report.repaired, [
        "arena 0: cleared the uncommitted first update of flog slot 251",
      ]);
      assert.deepEqual(pool.read(6), new Uint8Array(BLOCK_SIZE));
    }
    const bytes = readFileSync(path);
    assert.deepEqual(
      new Uint8Array(bytes.subarray(at, at + 16)),
      new Uint8Array(16),
    );
    const v = pmempoolCheck(path);
    assert.ok(v.consistent, v.output);
    using pool = BlockPool.open(path);
    assert.deepEqual(pool.check().repaired, []);
    pool.write(6, new Payloads(BLOCK_SIZE).get(6, 2));
    assert.deepEqual(pool.check().problems, []);
  },
  { skip: requires("pmempool") },
);

test("the crash checker passes the half-written first update image", () => {
  const { path, head } = halfWrittenFirstUpdate();
  const base = new Uint8Array(readFileSync(path));
  using scratch = new ScratchImage(tempPath("scratch"), base);
  const lbas = [0, 1, 2, 3, 4, 5, 6];
  const checker = new ImageChecker(scratch, {
    model: CACHE_LINE,
    payloads: new Payloads(BLOCK_SIZE),
    lbas,
    regions: poolRegions(MIN_POOL_SIZE, BLOCK_SIZE),
  });
  const ledger = new Ledger(new Map([[0, 1], [1, 1], [2, 1], [3, 1]]));
  ledger.issue({ op: "write", lba: 6, version: 2 }); // in flight
  const outcome = checker.check([head], ledger, {
    mayRefuse: false,
    pmempool: true,
    recoveryImages: 8,
    rand: xorshift(8),
  });
  assert.deepEqual(outcome.problems, []);
  assert.equal(outcome.recovered, true);
  // the clearing stores one word: a crash in it leaves this image or the
  // cleared one, both checked already
  assert.equal(outcome.recoveryImages, 0);
  assert.ok(scratch.verify(), "the checker undid its image");
}, { skip: requires("pmempool") });
