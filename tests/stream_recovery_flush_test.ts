// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The log store's recovery after a crash of the process alone (a kill):
// the next open reads stores the dead process made but never persisted
// (still in the CPU caches, or the page cache), and recovery keeps what
// it reads. What it keeps it must make durable before it settles W over
// it and hands the stream out: else a power failure right after loses a
// kept entry, and with it every later entry of its region, acknowledged
// appends included.
import { readFileSync, writeFileSync } from "node:fs";
import { LogStream } from "../stream/mod.ts";
import { openStreamWith } from "../stream/stream.ts";
import { SLOT_SIZE, slotOffset } from "../stream/layout.ts";
import type { TraceEvent } from "./crash/tracer.ts";
import { fencedImage, killImage, tracedRun } from "./crash/kill_image.ts";
import { assert, tempPath, test } from "./_harness.ts";

const bytes = (n: number, x: number) => new Uint8Array(n).fill(x);

/** Run `body` on the stream at `path`, traced from `durable` (the media). */
function traced(
  path: string,
  durable: Uint8Array,
  body: (s: LogStream) => void,
): TraceEvent[] {
  return tracedRun(
    path,
    durable,
    (tracer) => openStreamWith(path, {}, { tracer }),
    body,
  );
}

test(
  "recovery after a kill makes the entries it keeps durable before anything builds on them",
  () => {
    const path = tempPath();
    let s = LogStream.create(path, { size: 256 * 1024, blockSize: 4096 });
    s.append(s.allocateRegion(8192), bytes(40, 0x11));
    s.close();
    const base = readFileSync(path);
    const dv = new DataView(base.buffer, base.byteOffset, base.byteLength);
    const region = Number(dv.getBigUint64(slotOffset(0) + 8, true));
    assert.equal(dv.getUint32(slotOffset(0), true), 1); // slot 0 allocated
    assert.ok(SLOT_SIZE > 0);
    // the entry the killed process appends: right after the first (16 +
    // 40 bytes), its header on a cache line of its own
    const at = region + 56;

    // traced: a second entry appended, then the process dies before the
    // fence that makes it durable, its stores all still visible
    let t1 = 0;
    const events = traced(path, base, (s) => {
      t1 = s.append(s.regions()[0], bytes(200, 0x22));
    });

    const ts = (b: Uint8Array) =>
      new DataView(b.buffer, b.byteOffset).getUint32(at + 8, true);
    const killed = killImage(
      base,
      events,
      (visible, durable) => ts(visible) === t1 && ts(durable) !== t1,
    );
    assert.ok(killed !== undefined, "no crash point before the entry's fence");

    // the next open sees what the dead process stored, the media holds
    // only what was fenced; the reopened stream keeps the entry, and an
    // append after it is acknowledged
    const crashed = tempPath("crashed");
    writeFileSync(crashed, killed.visible);
    const events2 = traced(crashed, killed.durable, (s) => {
      const r = s.regions()[0];
      assert.deepEqual(
        [...s.entries(r)].map((e) => e.data[0]),
        [0x11, 0x22],
        "recovery kept the entry it read",
      );
      const t2 = s.append(r, bytes(64, 0x33));
      assert.ok(s.persistedTimestamp >= t2);
    });

    // then the power fails: what was fenced survives, and the appends
    // acknowledged as persisted must be there
    writeFileSync(crashed, fencedImage(killed.durable, events2));
    s = LogStream.open(crashed);
    try {
      assert.deepEqual(
        [...s.entries(s.regions()[0])].map((e) => e.data[0]),
        [0x11, 0x22, 0x33],
        "an entry recovery kept, and the acknowledged append after it, were lost at a power failure after the recovery",
      );
    } finally {
      s.close();
    }
  },
);

test(
  "recovery after a kill makes the region table it trusts durable before anything builds on it",
  () => {
    const path = tempPath();
    let s = LogStream.create(path, { size: 256 * 1024, blockSize: 4096 });
    s.close();
    const base = readFileSync(path);

    // traced: a region allocated, then the process dies before the fence
    // that makes its slot's state word durable, the word still visible
    const events = traced(path, base, (s) => {
      s.allocateRegion(8192);
    });

    const state = (b: Uint8Array) =>
      new DataView(b.buffer, b.byteOffset).getUint32(slotOffset(0), true);
    const killed = killImage(
      base,
      events,
      (visible, durable) => state(visible) === 1 && state(durable) === 0,
    );
    assert.ok(killed !== undefined, "no crash point before the slot's fence");

    // the next open sees the region; an append to it is acknowledged
    const crashed = tempPath("crashed");
    writeFileSync(crashed, killed.visible);
    const events2 = traced(crashed, killed.durable, (s) => {
      assert.equal(s.regions().length, 1, "recovery kept the region it read");
      const t = s.append(s.regions()[0], bytes(64, 0x44));
      assert.ok(s.persistedTimestamp >= t);
    });

    // then the power fails: the acknowledged append must be there
    writeFileSync(crashed, fencedImage(killed.durable, events2));
    s = LogStream.open(crashed);
    try {
      const regions = s.regions();
      assert.equal(
        regions.length,
        1,
        "the region recovery kept, with an acknowledged append, was lost at a power failure after the recovery",
      );
      assert.deepEqual([...s.entries(regions[0])].map((e) => e.data[0]), [
        0x44,
      ]);
    } finally {
      s.close();
    }
  },
);
