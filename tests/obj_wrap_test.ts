// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The object store's redo log where a record moves to the next lap of the
// ring (a WRAP record left where it started): no crash may keep the moved
// record but not its WRAP, or the record, lost at recovery, came back once
// later records reached the lap's start.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { type ObjectHandle, ObjectPool } from "../obj/mod.ts";
import { openPoolWith } from "../obj/pool_access.ts";
import {
  CHECKPOINT_AT,
  LOG_OFFSET,
  MIN_LOG_SIZE,
  RECORD_HEADER,
  WRAP,
} from "../obj/layout.ts";
import { mapFile, type Mapping } from "../pmem2/mod.ts";
import { CACHE_LINE, crashPoints } from "./crash/model.ts";
import { copyBytes } from "./crash/spare_buffers.ts";
import { CrashTracer } from "./crash/tracer.ts";
import { u32View } from "./crash/words.ts";
import { assert, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;
const RING = MIN_LOG_SIZE;
const LAYOUT = "wrap";
/** Bytes of a record holding one write of `n` bytes (n a multiple of 8). */
const recordOf = (n: number) => RECORD_HEADER + 16 + n;
/** Bytes the transaction that moves to the next lap writes (0xab). */
const MOVED = 16384;
/** Where the transaction after the crash writes (0x44). */
const LATER = 32768;

function u64(b: Uint8Array, at: number): number {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 2 ** 32;
}

/**
 * A closed pool whose log head (and checkpoint) lies within 12000 bytes
 * of the ring's end: the head's position, and the root.
 */
function nearTheEnd(path: string): { head: number; root: ObjectHandle } {
  const pool = ObjectPool.create(path, {
    size: 8 * MiB,
    layout: LAYOUT,
    logSize: RING,
  });
  try {
    const root = pool.root(64 << 10);
    pool.flush();
    let head = u64(readFileSync(path), CHECKPOINT_AT);
    while (RING - head % RING > 12000) {
      pool.tx((tx) => tx.write(root, 0, new Uint8Array(8192).fill(1)));
      pool.flush();
      head = u64(readFileSync(path), CHECKPOINT_AT);
    }
    return { head, root };
  } finally {
    pool.close();
  }
}

test(
  "a crash that keeps a record moved to the next lap but not its WRAP never revives it later",
  () => {
    const path = tempPath();
    const { head, root } = nearTheEnd(path);
    const left = RING - head % RING;
    const wrapAt = LOG_OFFSET + head % RING;
    // a transaction whose record does not fit before the ring's end: it
    // moves to the ring's start, a WRAP record where it began; traced
    const before = readFileSync(path);
    let probe: Mapping | undefined;
    const tracer = new CrashTracer({
      live: () => (probe = mapFile(path)).view(),
      shadow: copyBytes(before),
      flushGranularity: CACHE_LINE.flushGranularity,
    });
    assert.ok(recordOf(MOVED) > left);
    const pool = openPoolWith(path, { layout: LAYOUT }, { tracer });
    try {
      const r = pool.object(root.offset);
      pool.tx((tx) => tx.write(r, 0, new Uint8Array(MOVED).fill(0xab)));
      assert.equal(
        new DataView(probe!.view().buffer).getUint32(wrapAt + 4, true),
        WRAP,
      );
    } finally {
      pool.close();
    }
    const events = tracer.finish();
    probe?.close();

    // every crash point, with every store pending there persisted but the
    // WRAP record's words: then a transaction acknowledged whose record ends
    // exactly at the ring's end, a clean close (the checkpoint at the lap's
    // start) and a reopen must show the moved transaction as the crash's
    // recovery did
    const durable = copyBytes(before);
    const durable32 = u32View(durable);
    // one image refilled per crash point, not a fresh 8 MiB array each
    const image = new Uint8Array(durable.length);
    const image32 = u32View(image);
    const lo = wrapAt / 8, hi = (wrapAt + RECORD_HEADER) / 8;
    const crashed = tempPath();
    let images = 0;
    try {
      for (const p of crashPoints(events, CACHE_LINE)) {
        for (const w of p.fenced) w.applyTo(durable32);
        image.set(durable);
        for (const u of p.pending) {
          let wrap = false;
          for (let i = 0; i < u.words.length && !wrap; i++) {
            wrap = u.words.index(i) >= lo && u.words.index(i) < hi;
          }
          if (!wrap) u.words.applyTo(image32);
        }
        writeFileSync(crashed, image);
        images++;
        let p1 = ObjectPool.open(crashed, { layout: LAYOUT });
        let moved: boolean;
        try {
          const r = p1.object(root.offset);
          moved = p1.read(r, 0, 1)[0] === 0xab;
          p1.tx((tx) =>
            tx.write(r, LATER, new Uint8Array(left - recordOf(0)).fill(0x44))
          );
        } finally {
          p1.close();
        }
        p1 = ObjectPool.open(crashed, { layout: LAYOUT });
        try {
          const r = p1.object(root.offset);
          assert.equal(p1.read(r, LATER, 1)[0], 0x44);
          assert.equal(
            p1.read(r, 0, 1)[0] === 0xab,
            moved,
            `after event ${p.event}: the moved transaction was ${
              moved ? "there" : "lost"
            } at recovery, and ${
              moved ? "lost" : "there"
            } after a clean reopen`,
          );
        } finally {
          p1.close();
        }
      }
    } finally {
      rmSync(crashed, { force: true });
      rmSync(path, { force: true });
    }
    assert.ok(images > 2);
  },
  { timeout: 60_000 },
);
