// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The crash simulator's parts on a plain mapping: tracer, persistence
// models, subset engines, scratch images, ledger, payloads.
import { mapFile } from "../mod.ts";
import { Ledger, opLabel, parseLabel, ZERO } from "./crash/ledger.ts";
import { CACHE_LINE, crashPoints, PAGE } from "./crash/model.ts";
import { Payloads } from "./crash/payload.ts";
import { ScratchImage } from "./crash/scratch.ts";
import { subsets } from "./crash/subsets.ts";
import { CrashTracer, type TraceEvent } from "./crash/tracer.ts";
import { u32View, type Words } from "./crash/words.ts";
import { assert, rng, tempPath, test } from "./_harness.ts";
import { mark, setTracer } from "../testing/mod.ts";

/** The (word index → low u32) pairs of a word list. */
function pairs(words: Words): [number, number][] {
  return Array.from({ length: words.length }, (_, i) => [
    words.index(i),
    words.lo(i),
  ]);
}

/** A traced 64 KiB mapping; `run` stores and persists through `u32`. */
function traced(
  flushGranularity: number,
  run: (
    map: ReturnType<typeof mapFile>,
    u32: Uint32Array,
    t: CrashTracer,
  ) => void,
): TraceEvent[] {
  using map = mapFile(tempPath(), { size: 65536 });
  const tracer = new CrashTracer({
    live: map.view(),
    shadow: map.view().slice(),
    flushGranularity,
  });
  setTracer(map, tracer);
  run(map, u32View(map.view()), tracer);
  return tracer.finish();
}

test("`CrashTracer` records each flush's stores, raw view stores included, and what stays dirty", () => {
  const events = traced(64, (map, u32) => {
    u32[0] = 1; // word 0, line 0
    u32[24] = 7; // word 12, line 1: not flushed below
    map.persist(0, 8);
    map.persist(200, 8); // a clean line
    map.memcpy(4096, new Uint8Array(16).fill(9));
    mark(map, "done");
  });
  assert.deepEqual(events.map((e) => e.kind), [
    "flush",
    "drain",
    "flush",
    "drain",
    "flush",
    "drain",
    "mark",
    "end",
  ]);
  const [first, , clean, , copy] = events;
  assert.ok(first.kind === "flush" && clean.kind === "flush");
  assert.ok(copy.kind === "flush");
  assert.deepEqual(pairs(first.stores), [[0, 1]]);
  assert.equal(first.cleanLines, 0);
  assert.deepEqual(pairs(first.dirty), [[12, 7]]);
  assert.equal(clean.stores.length, 0);
  assert.equal(clean.cleanLines, 1);
  assert.deepEqual(pairs(copy.stores), [[512, 0x09090909], [513, 0x09090909]]);
  assert.deepEqual(pairs(events[7].dirty), [[12, 7]]);
});

test("`crashPoints()` keeps flushed words pending until the fence and offers dirty ones for eviction", () => {
  const events = traced(64, (map, u32) => {
    u32[0] = 1; // word 0
    u32[32] = 2; // word 16, another line
    map.flush(0, 8);
    map.drain();
    map.persist(128, 8);
  });
  const points = [...crashPoints(events, CACHE_LINE)];
  const afterFlush = points[1];
  assert.deepEqual(
    afterFlush.pending.map((u) => [u.flushed, pairs(u.words)]),
    [[true, [[0, 1]]], [false, [[16, 2]]]],
  );
  const afterDrain = points[2];
  assert.equal(afterDrain.fences, 1);
  assert.deepEqual(afterDrain.fenced.map(pairs), [[[0, 1]]]);
  assert.deepEqual(
    afterDrain.pending.map((u) => [u.flushed, pairs(u.words)]),
    [[false, [[16, 2]]]],
  );
  const last = points[points.length - 1];
  assert.equal(last.fences, 2);
  assert.deepEqual(last.pending, []);
});

test("`crashPoints()` under PAGE groups words by sector and rewrites a sector whole", () => {
  const events = traced(4096, (map, u32) => {
    u32[0] = 1; // word 0, sector 0
    u32[2] = 2; // word 1, sector 0
    u32[128] = 3; // word 64, sector 1
    map.flush(0, 8); // msync writes the whole page
    u32[2] = 5; // word 1 again
    map.flush(0, 8);
    map.drain();
  });
  const points = [...crashPoints(events, PAGE)];
  const first = points[1].pending.map((u) => pairs(u.words));
  assert.deepEqual(first, [[[0, 1], [1, 2]], [[64, 3]]]);
  // the second writeback of sector 0 carries word 0 from the first
  const second = points[2].pending.map((u) => pairs(u.words));
  assert.deepEqual(second, [[[0, 1], [1, 2]], [[64, 3]], [[0, 1], [1, 5]]]);
});

/** One flushed word, as a unit's words. */
function u32Words(): Words {
  return traced(64, (map, u32) => {
    u32[0] = 1;
    map.persist(0, 8);
  }).find((e) => e.kind === "flush")!.stores;
}

test("`subsets()` is exhaustive below its limit, else prefixes and seeded random subsets", () => {
  const unit = (flushed: boolean) => ({ words: u32Words(), flushed });
  const few = [unit(true), unit(true), unit(false)];
  const options = { exhaustiveLimit: 4, prefixes: 5, random: 3, evict: 0.3 };
  const all = [...subsets(few, rng(1), options)];
  assert.equal(all.length, 8);
  assert.ok(all.every((s) => s.kind === "exhaustive"));
  const many = [...Array.from({ length: 20 }, () => unit(true)), unit(false)];
  const a = [...subsets(many, rng(7), options)];
  const prefixes = a.filter((s) => s.kind === "prefix");
  assert.equal(prefixes.length, 5);
  assert.deepEqual(prefixes[0].units, []);
  assert.deepEqual(prefixes[4].units.length, 20);
  assert.ok(prefixes.every((s) => !s.units.includes(20)), "no eviction");
  assert.equal(a.filter((s) => s.kind === "random").length, 3);
  assert.deepEqual(a, [...subsets(many, rng(7), options)]);
});

test("`ScratchImage` stores and undoes images; equal images have equal fingerprints", () => {
  const rand = rng(3);
  const base = new Uint8Array(65536).map(() => Math.floor(rand() * 256));
  using scratch = new ScratchImage(tempPath(), base);
  const stores = traced(64, (map, u32) => {
    u32[10] = 0xaaaa;
    u32[20] = 0xbbbb;
    map.persist(0, 128);
  }).find((e) => e.kind === "flush")!.stores;
  const fp0 = scratch.fingerprint([]);
  const fp = scratch.fingerprint([stores]);
  assert.notEqual(fp, fp0);
  scratch.apply(stores);
  assert.equal(u32View(scratch.live)[10], 0xaaaa);
  scratch.revert();
  assert.ok(scratch.verify());
  assert.equal(scratch.fingerprint([]), fp0);
  scratch.commit(stores);
  assert.equal(scratch.fingerprint([]), fp, "durable now: the same image");
  assert.equal(
    scratch.fingerprint([stores]),
    fp,
    "storing it again is a no-op",
  );
  scratch.live[7] ^= 1; // a stray store behind the bookkeeping
  assert.equal(scratch.verify(), false);
  assert.ok(scratch.verify(), "verify() repaired it");
});

test("`Ledger` allows the acknowledged state or one in flight, in issue order", () => {
  const w = (version: number) => ({ op: "write" as const, lba: 5, version });
  const ledger = new Ledger(new Map([[5, 1]]));
  assert.deepEqual(ledger.allowed(5), [1]);
  assert.deepEqual(ledger.allowed(6), [ZERO]);
  ledger.issue(w(2));
  ledger.issue(w(3));
  assert.deepEqual(ledger.allowed(5), [1, 2, 3]);
  assert.ok(ledger.record(opLabel("ack", w(3))));
  assert.deepEqual(ledger.allowed(5), [3], "the ack retired version 2");
  ledger.ack(w(2)); // its acknowledgement, seen late
  assert.deepEqual(ledger.allowed(5), [3]);
  ledger.record("issue error 5");
  assert.deepEqual(ledger.allowed(5), [3, -1]);
  assert.throws(() => ledger.ack(w(9)), /not issued/);
  assert.equal(ledger.record("warmed up"), false);
  assert.deepEqual(parseLabel("ack zero 4"), {
    phase: "ack",
    op: { op: "zero", lba: 4, version: 0 },
  });
  assert.equal(parseLabel("ack zero 4 5"), null);
});

test("`Payloads.decode()` tells whole, zero and torn blocks apart", () => {
  const p = new Payloads(4096);
  assert.deepEqual(p.decode(p.get(7, 3)), {
    kind: "version",
    lba: 7,
    version: 3,
  });
  assert.deepEqual(p.decode(new Uint8Array(4096)), { kind: "zero" });
  const mixed = p.get(7, 3).slice();
  mixed.set(p.get(7, 4).subarray(2048), 2048); // two sectors' worth of v4
  assert.equal(p.decode(mixed).kind, "torn");
  const flipped = p.get(7, 3).slice();
  flipped[4095] ^= 1;
  assert.equal(p.decode(flipped).kind, "torn");
  assert.throws(() => new Payloads(8), RangeError);
});
