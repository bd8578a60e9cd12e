// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The pmemcheck-style lint: what it reports, and that the block store's
// write and recovery paths store nothing they do not flush and fence.
import { join } from "node:path";
import { BlockPool, MIN_POOL_SIZE, poolGeometry } from "../blk/mod.ts";
import { mapFile } from "../mod.ts";
import { lint, summarize } from "./crash/lint.ts";
import { CACHE_LINE } from "./crash/model.ts";
import { poolRegions, regionName } from "./crash/regions.ts";
import { recordTrace } from "./crash/record.ts";
import { CrashTracer } from "./crash/tracer.ts";
import { u32View } from "./crash/words.ts";
import { WORKLOADS } from "./crash/workload.ts";
import { assert, tempDir, tempPath, test } from "./_harness.ts";
import { openBlockPool, setTracer } from "../testing/mod.ts";

test("`lint()` reports unflushed, unfenced, redundant and overwritten stores", () => {
  using map = mapFile(tempPath(), { size: 65536 });
  const tracer = new CrashTracer({
    live: map.view(),
    shadow: map.view().slice(),
    flushGranularity: 64,
  });
  setTracer(map, tracer);
  const u32 = u32View(map.view());
  u32[0] = 1;
  map.persist(0, 8); // fine
  map.persist(0, 8); // nothing new: a redundant flush
  u32[32] = 2;
  map.flush(128, 8);
  u32[32] = 3;
  map.flush(128, 8); // the same word again before a fence
  map.drain();
  u32[64] = 4; // word 32: never flushed
  u32[96] = 5;
  map.flush(384, 4); // flushed, never fenced
  const report = lint(tracer.finish(), (at) => `byte ${at}`);
  const brief = (rule: keyof typeof report) =>
    report[rule].map((f) => [f.offset, f.length, f.place]);
  assert.deepEqual(brief("redundant-flush"), [[0, 8, "byte 0"]]);
  assert.deepEqual(brief("overwritten"), [[128, 8, "byte 128"]]);
  assert.deepEqual(brief("unflushed"), [[256, 8, "byte 256"]]);
  assert.deepEqual(brief("unfenced"), [[384, 4, "byte 384"]]);
  assert.deepEqual(summarize(report), [
    "unflushed: 1 × byte N",
    "unfenced: 1 × byte N",
    "redundant-flush: 1 × byte N",
    "overwritten: 1 × byte N",
  ]);
});

test("the block store's write paths leave no store unflushed or unfenced", () => {
  const dir = tempDir();
  for (const w of WORKLOADS) {
    // at cache-line resolution, whatever this process's mapping granularity
    const trace = recordTrace(w, CACHE_LINE, 5, 30, join(dir, "pool"));
    const regions = poolRegions(MIN_POOL_SIZE, w.blockSize);
    const report = lint(trace.events, (at) => regionName(regions, at));
    const lines = summarize(report);
    console.log(`${w.name}: ${lines.join("; ") || "clean"}`);
    assert.deepEqual(report.unflushed, [], w.name);
    assert.deepEqual(report.unfenced, [], w.name);
    assert.deepEqual(report.overwritten, [], w.name);
    // Redundant flushes are reported, not failed: at create the info
    // blocks' zero tails are written back; on page granularity a group
    // commit flushes whole pages of flog slots and map entries; and close
    // flushes deferred map entries that a later flush of their line wrote
    // back already.
  }
});

test("recovery flushes and fences everything it stores", () => {
  const path = tempPath();
  const blockSize = 512;
  const lbas = [3, 700, 5000];
  {
    using pool = BlockPool.create(path, {
      blockSize,
      poolSize: MIN_POOL_SIZE,
    });
    for (const lba of lbas) pool.write(lba, new Uint8Array(blockSize).fill(1));
  }
  // undo the map entries: each write is then committed only in its flog
  const g = poolGeometry(MIN_POOL_SIZE, blockSize).arenas[0];
  {
    using map = mapFile(path);
    const u32 = u32View(map.view());
    for (const lba of lbas) u32[(8192 + g.mapOff + lba * 4) / 4] = 0;
    map.persist(0, map.size);
  }
  using probe = mapFile(path);
  const tracer = new CrashTracer({
    live: probe.view(),
    shadow: probe.view().slice(),
    flushGranularity: 64,
  });
  {
    using pool = openBlockPool(path, { tracer });
    assert.equal(pool.check().repaired.length, lbas.length);
    for (const lba of lbas) assert.equal(pool.read(lba)[0], 1);
  }
  const regions = poolRegions(MIN_POOL_SIZE, blockSize);
  const report = lint(tracer.finish(), (at) => regionName(regions, at));
  assert.deepEqual(report.unflushed, []);
  assert.deepEqual(report.unfenced, []);
  assert.deepEqual(report.overwritten, []);
  // one flush of clean lines on purpose: the whole flog, persisted before
  // recovery acts on it (after a kill it may hold stores the dead process
  // never persisted, and which lines are dirty is not known)
  assert.deepEqual(
    report["redundant-flush"].map((f) => [f.place, f.length]),
    [["arena 0 flog slot 0", 256 * 64]],
  );
});
