// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The object store's redo log after a torn record: recovery drops it, and
// no later crash may bring its header back over a new record that starts
// with the same bytes (the same transaction run again, and more).
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { ObjectPool } from "../obj/mod.ts";
import { openPoolWith } from "../obj/pool_access.ts";
import { CACHE_LINE, crashPoints } from "./crash/model.ts";
import type { TraceEvent } from "./crash/tracer.ts";
import { tracedRun } from "./crash/kill_image.ts";
import { logPool } from "./crash/obj_log_pool.ts";
import { copyBytes } from "./crash/spare_buffers.ts";
import { u32View } from "./crash/words.ts";
import { assert, tempPath, test } from "./_harness.ts";

const LAYOUT = "torn";

/**
 * Run `fn` on a pool opened over `base` (its durable image), traced: the
 * events.
 */
function traced(
  path: string,
  base: Uint8Array,
  fn: (p: ObjectPool) => void,
): TraceEvent[] {
  writeFileSync(path, base);
  return tracedRun(
    path,
    base,
    (tracer) => openPoolWith(path, { layout: LAYOUT }, { tracer }),
    fn,
  );
}

/**
 * The image of a crash just after the first flush that wrote the word at
 * `at`, before its fence: every store pending there persisted except the
 * words in [`lo`, `hi`).
 */
function crashAfterFlushOf(
  events: TraceEvent[],
  base: Uint8Array,
  at: number,
  lo: number,
  hi: number,
): Uint8Array {
  const durable = copyBytes(base);
  const durable32 = u32View(durable);
  for (const p of crashPoints(events, CACHE_LINE)) {
    for (const w of p.fenced) w.applyTo(durable32);
    const e = events[p.event];
    if (e?.kind !== "flush") continue;
    let hit = false;
    for (let i = 0; i < e.stores.length && !hit; i++) {
      hit = e.stores.index(i) === at / 8;
    }
    if (!hit) continue;
    const image = copyBytes(durable);
    const image32 = u32View(image);
    for (const u of p.pending) {
      let skip = false;
      for (let i = 0; i < u.words.length && !skip; i++) {
        const w = u.words.index(i) * 8;
        skip = w >= lo && w < hi;
      }
      if (!skip) u.words.applyTo(image32);
    }
    return image;
  }
  throw new Error(`no flush wrote the word at ${at}`);
}

test(
  "a torn record dropped at recovery cannot come back over a new record that begins with its bytes",
  () => {
    const path = tempPath();
    const { base, root, rec } = logPool(path, LAYOUT); // rec: its CRC word
    const word = (n: number) => new Uint8Array(8).fill(n);
    // a transaction of two writes (record: header 32 bytes, two entries of
    // 24), torn: its header's line persisted, its second entry's not
    const first = traced(path, base, (p) => {
      const r = p.object(root.offset);
      p.tx((tx) => {
        tx.write(r, 0, word(1));
        tx.write(r, 4096, word(2));
      });
    });
    const torn = crashAfterFlushOf(first, base, rec, rec + 64, rec + 80);
    writeFileSync(path, torn);
    let p = ObjectPool.open(path, { layout: LAYOUT });
    try {
      const r = p.object(root.offset);
      assert.equal(p.read(r, 0, 1)[0], 0, "the torn transaction was replayed");
    } finally {
      p.close();
    }
    const recovered = readFileSync(path);
    // the same transaction run again with a third write: a crash keeps all
    // of its record but its header's line
    const second = traced(path, recovered, (p) => {
      const r = p.object(root.offset);
      p.tx((tx) => {
        tx.write(r, 0, word(1));
        tx.write(r, 4096, word(2));
        tx.write(r, 8192, word(3));
      });
    });
    const image = crashAfterFlushOf(second, recovered, rec, rec, rec + 64);
    writeFileSync(path, image);
    p = ObjectPool.open(path, { layout: LAYOUT });
    try {
      const r = p.object(root.offset);
      const seen = [
        p.read(r, 0, 1)[0],
        p.read(r, 4096, 1)[0],
        p.read(r, 8192, 1)[0],
      ];
      assert.ok(
        seen.join() === "0,0,0" || seen.join() === "1,2,3",
        `the transaction is half there: ${seen.join()}`,
      );
    } finally {
      p.close();
      rmSync(path, { force: true });
    }
  },
  { timeout: 60_000 },
);
