// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The log store's native stores: the one-call append (`ap_log_append`
// behind `StreamMedia.writeEntry`) and the batched headers of a commit
// (`ap_log_headers` behind `writeHeaders`) store the bytes of the
// TypeScript path (data, header, terminator); the append's persist is
// reported to the mapping's tracer; the shim refuses bad ranges storing
// nothing.
import { PmemError, ShimCode } from "../errors/mod.ts";
import { mapFile } from "../pmem2/mod.ts";
import { setTracer } from "../testing/mod.ts";
import { StreamMedia } from "../stream/media.ts";
import { writeHeader } from "../stream/commit.ts";
import { ENTRY_HEADER, entryTotal, PAD_BIT } from "../stream/layout.ts";
import { assert, rng, tempPath, test } from "./_harness.ts";

const SIZE = 1 << 16;

test("`writeEntry` stores what the TypeScript path stores, and reports one persist", () => {
  const rand = rng(7);
  const one = mapFile(tempPath("one"), { size: SIZE });
  const two = mapFile(tempPath("two"), { size: SIZE });
  try {
    const fused = new StreamMedia(one);
    const plain = new StreamMedia(two);
    const events: string[] = [];
    setTracer(one, {
      flush: (o, l) => events.push(`flush ${o} ${l}`),
      drain: () => events.push("drain"),
    });
    const cases: [number, number, number][] = [
      [0, 1, 0],
      [1, 7, 8],
      [13, 2 ** 40 + 5, 24],
      [64, 3, 0],
      [1000, 2 ** 53 - 1, 16],
      [4096, 123456789, 0],
      [5000, 9, 40],
    ];
    let at = 64;
    for (const [length, ts, gap] of cases) {
      one.view().fill(0xee);
      two.view().fill(0xee);
      const data = new Uint8Array(length).map(() => (rand() * 256) & 0xff);
      const seed = (rand() * 2 ** 32) >>> 0;
      const next = at + entryTotal(length) + gap;
      events.length = 0;
      fused.writeEntry(at, data, ts, seed, next);
      plain.set(at + ENTRY_HEADER, data);
      writeHeader(plain, at, length, ts, seed);
      plain.zero(next, ENTRY_HEADER);
      assert.deepEqual(one.view(), two.view(), `entry of ${length} bytes`);
      assert.deepEqual(events, [`flush ${at} ${next + 16 - at}`, "drain"]);
      at += 8;
    }
  } finally {
    one.close();
    two.close();
  }
});

test("`writeEntry` refuses a header, terminator or timestamp out of range, storing nothing", () => {
  const map = mapFile(tempPath(), { size: SIZE });
  try {
    const media = new StreamMedia(map);
    map.view().fill(0xee);
    const data = new Uint8Array(100).fill(1);
    const bad: [number, number, number][] = [
      [60, 200, 1], // the entry is not 8-aligned
      [64, 64 + 16 + 96, 1], // the terminator overlaps the data
      [SIZE - 128, SIZE - 8, 1], // the terminator leaves the mapping
      [SIZE - 64, SIZE, 1], // the entry leaves the mapping
      [64, 200, -1], // a negative timestamp
      [64, 200, 1.5], // a fractional timestamp
      [64, 200, 2 ** 53], // beyond a safe integer
    ];
    for (const [at, next, ts] of bad) {
      assert.throws(
        () => media.writeEntry(at, data, ts, 0, next),
        (e: unknown) => e instanceof PmemError && e.code === ShimCode.RANGE,
        `at ${at} next ${next} ts ${ts}`,
      );
    }
    assert.deepEqual(map.view(), new Uint8Array(SIZE).fill(0xee));
  } finally {
    map.close();
  }
});

test("`writeHeaders` stores what `writeHeader` stores for each queued entry, padding included", () => {
  const rand = rng(11);
  const one = mapFile(tempPath("one"), { size: SIZE });
  const two = mapFile(tempPath("two"), { size: SIZE });
  try {
    const batched = new StreamMedia(one);
    const plain = new StreamMedia(two);
    const bytes = new Uint8Array(SIZE).map(() => (rand() * 256) & 0xff);
    one.view().set(bytes);
    two.view().set(bytes);
    const seed = (rand() * 2 ** 32) >>> 0;
    // more than the queue's first capacity (64), so it grows
    let at = 0;
    for (let i = 0; i < 100; i++) {
      const length = (i * 37) % 300;
      const word = i % 7 === 3 ? (PAD_BIT | length) >>> 0 : length;
      const ts = i % 5 === 0 ? 2 ** 45 + i : i + 1;
      batched.queueHeader(at, word, ts);
      writeHeader(plain, at, word, ts, seed);
      at += entryTotal(length);
    }
    batched.writeHeaders(seed);
    assert.deepEqual(one.view(), two.view());
    batched.writeHeaders(seed); // nothing queued: nothing stored
    assert.deepEqual(one.view(), two.view());
  } finally {
    one.close();
    two.close();
  }
});

test("`writeHeaders` refuses a header out of range, storing none of the batch", () => {
  const map = mapFile(tempPath(), { size: SIZE });
  try {
    const media = new StreamMedia(map);
    map.view().fill(0xee);
    const bad: [number, number, number][] = [
      [4, 8, 1], // not 8-aligned
      [SIZE - 16, 8, 1], // its data leaves the mapping
      [SIZE, (PAD_BIT | 8) >>> 0, 1], // a padding header past the end
      [64, 8, 0.5], // a fractional timestamp
      [64, 8.5, 1], // a fractional word
    ];
    for (const [at, word, ts] of bad) {
      media.queueHeader(0, 8, 1);
      media.queueHeader(at, word, ts);
      assert.throws(
        () => media.writeHeaders(0),
        (e: unknown) => e instanceof PmemError && e.code === ShimCode.RANGE,
        `at ${at} word ${word} ts ${ts}`,
      );
    }
    assert.deepEqual(map.view(), new Uint8Array(SIZE).fill(0xee));
  } finally {
    map.close();
  }
});
