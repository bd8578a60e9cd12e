// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The object store's recovery after a crash of the process alone (a
// kill): the next open reads log records the dead process sealed but
// never persisted (still in the CPU caches, or the page cache), replays
// them into their homes and checkpoints. The records it replays it must
// make durable before it applies them: else a power failure during the
// replay keeps some of a transaction's homes and loses the record that
// would finish the others.
import { readFileSync, writeFileSync } from "node:fs";
import { ObjectPool } from "../obj/mod.ts";
import { openPoolWith } from "../obj/pool_access.ts";
import { CACHE_LINE, crashPoints } from "./crash/model.ts";
import type { TraceEvent } from "./crash/tracer.ts";
import { u32View } from "./crash/words.ts";
import { killImage, tracedRun } from "./crash/kill_image.ts";
import { logPool } from "./crash/obj_log_pool.ts";
import { copyBytes } from "./crash/spare_buffers.ts";
import { assert, tempPath, test } from "./_harness.ts";

const LAYOUT = "killrec";

/** Run `fn` on the pool at `path` (as it is), traced from `durable`. */
function traced(
  path: string,
  durable: Uint8Array,
  fn: (p: ObjectPool) => void,
): TraceEvent[] {
  return tracedRun(
    path,
    durable,
    (tracer) => openPoolWith(path, { layout: LAYOUT }, { tracer }),
    fn,
  );
}

test(
  "obj recovery after a kill makes the records it replays durable before applying them",
  () => {
    const path = tempPath();
    const { base, root, rec } = logPool(path, LAYOUT); // rec: its CRC word
    const word = (n: number) => new Uint8Array(8).fill(n);

    // traced: a transaction of two writes on two pages, then the process
    // dies before the fence that seals its record, its stores visible
    const events = traced(path, base, (p) => {
      const r = p.object(root.offset);
      p.tx((tx) => {
        tx.write(r, 0, word(1));
        tx.write(r, 4096, word(2));
      });
    });
    const crc = (b: Uint8Array) =>
      new DataView(b.buffer, b.byteOffset).getUint32(rec, true);
    const sealed = crc(readFileSync(path));
    const killed = killImage(
      base,
      events,
      (visible, durable) => crc(visible) === sealed && crc(durable) !== sealed,
    );
    assert.ok(killed !== undefined, "no crash point before the record's fence");

    // the next open sees the record and replays it
    writeFileSync(path, killed.visible);
    const reopen = traced(path, killed.durable, (p) => {
      const r = p.object(root.offset);
      assert.deepEqual(
        [p.read(r, 0, 1)[0], p.read(r, 4096, 1)[0]],
        [1, 2],
        "recovery replayed the record it read",
      );
    });

    // a power failure at any point of that open: what was fenced, and any
    // one unit still pending; the transaction is all there or not at all
    const image = copyBytes(killed.durable);
    const image32 = u32View(image);
    // one crashed image refilled per try, not a fresh 8 MiB array each
    const crashed = new Uint8Array(image.length);
    const crashed32 = u32View(crashed);
    let tried = 0;
    for (const p of crashPoints(reopen, CACHE_LINE)) {
      for (const w of p.fenced) w.applyTo(image32);
      for (const u of [undefined, ...p.pending]) {
        crashed.set(image);
        u?.words.applyTo(crashed32);
        writeFileSync(path, crashed);
        const q = ObjectPool.open(path, { layout: LAYOUT });
        try {
          const r = q.object(root.offset);
          const seen = [q.read(r, 0, 1)[0], q.read(r, 4096, 1)[0]].join();
          assert.ok(
            seen === "0,0" || seen === "1,2",
            `a power failure during the recovery of a kill left half a transaction (${seen}), its record lost`,
          );
        } finally {
          q.close();
        }
        tried++;
      }
    }
    assert.ok(tried > 1);
  },
);
