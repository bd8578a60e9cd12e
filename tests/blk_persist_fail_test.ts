// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The block store when a persist fails (msync's EIO; here a tracer's
// flush that throws where the media would): the arena refuses writes, the
// caller gets a PmemError, and the header's shutdown state stays dirty at
// close, so the next open makes durable what it finds (a store that
// failed to persist may be visible and not durable). Marked clean, the
// next open trusts the media to hold what it reads, and a power failure
// after it takes such a store back.
import { readFileSync, writeFileSync } from "node:fs";
import type { BlockPool } from "../blk/mod.ts";
import { createPoolWith, openPoolWith } from "../blk/pool_access.ts";
import { decodeBttInfo, MAP_ENTRY_SIZE } from "../blk/layout.ts";
import { BadBlockError, PmemError } from "../errors/mod.ts";
import { closedCleanly } from "../pmdk/pool_header.ts";
import type { PersistTracer } from "../pmem2/tracer.ts";
import { failingAt, fencedImage, tracedRun } from "./crash/kill_image.ts";
import { assert, tempPath, test } from "./_harness.ts";

const BS = 512;
const BTT = 8192;
/** One lane: the pool's map entries stay pending until the close. */
const HOOKS = { lanes: 1 };
const POOL_SIZE = 16 * 2 ** 20 + 8192;

/** Block 64: its map entry is on a cache line other than block 0's. */
const OTHER = 64;

const block = (x: number) => new Uint8Array(BS).fill(x);

/** A new pool at a fresh path, and the file offset of block `lba`'s map entry. */
function newPool(lba: number): { path: string; entry: number } {
  const path = tempPath();
  createPoolWith(path, { blockSize: BS, poolSize: POOL_SIZE }, HOOKS).close();
  const info = decodeBttInfo(readFileSync(path).subarray(BTT, BTT + 4096));
  return { path, entry: BTT + info.mapOff + lba * MAP_ENTRY_SIZE };
}

const NO_TRACER: PersistTracer = { flush() {}, drain() {} };

/** Whether the pool file at `path` says it was closed cleanly. */
const clean = (path: string) =>
  closedCleanly(readFileSync(path).subarray(0, 4096));

// The close persists the map entries its writes left pending: when that
// persist failed, it threw, and still marked the pool clean.
test("blk close whose map persist fails leaves the shutdown state dirty", () => {
  const { path, entry } = newPool(0);
  let armed = false;
  const pool = openPoolWith(path, {}, {
    ...HOOKS,
    tracer: failingAt(NO_TRACER, entry, () => armed),
  });
  pool.write(0, block(0x22)); // its map entry pending
  armed = true;
  assert.throws(
    () => pool.close(),
    (e) => e instanceof PmemError && e.code === -5,
  );
  assert.equal(clean(path), false, "marked clean after a failed persist");
  using reopened = openPoolWith(path, {}, HOOKS);
  assert.equal(reopened.read(0)[0], 0x22);
});

// The same when another open of the pool in the process closes last: the
// failure is the pool's, not the open's that saw it.
test(
  "blk close after another opener's failed map persist leaves the shutdown state dirty",
  () => {
    const { path, entry } = newPool(0);
    let armed = false;
    const first = openPoolWith(path, {}, {
      ...HOOKS,
      tracer: failingAt(NO_TRACER, entry, () => armed),
    });
    const last = openPoolWith(path, {}, HOOKS);
    first.write(0, block(0x22));
    armed = true;
    assert.throws(() => first.close(), /cannot persist map entries/);
    armed = false;
    last.close();
    assert.equal(clean(path), false, "marked clean after a failed persist");
  },
);

// A write whose flog persist fails fails the arena (the flog on the media
// may differ from what the pool goes by): the close after it marked the
// pool clean, so the next open trusted the flog and map it read.
test("blk close after a write's failed flog persist leaves the shutdown state dirty", () => {
  const { path } = newPool(0);
  const info = decodeBttInfo(readFileSync(path).subarray(BTT, BTT + 4096));
  let armed = false;
  {
    using pool = openPoolWith(path, {}, {
      ...HOOKS,
      tracer: failingAt(NO_TRACER, BTT + info.flogOff, () => armed),
    });
    pool.write(0, block(0x11));
    armed = true;
    assert.throws(() => pool.write(0, block(0x22)), /cannot persist the flog/);
    armed = false;
  }
  assert.equal(clean(path), false, "marked clean after a failed persist");
});

/** Block `lba` as a read sees it: its first byte, or "error" (`setError`). */
function readState(pool: BlockPool, lba: number): number | string {
  try {
    return pool.read(lba)[0];
  } catch (e) {
    if (e instanceof BadBlockError) return "error";
    throw e;
  }
}

// A setZero or setError stores its map entry, then persists it: when that
// persist failed, the media's error went to the caller as it was, the
// arena kept taking writes, and the close marked the pool clean, so the
// next open read the new entry without making it durable, and a power
// failure after it brought the old one back.
for (const [op, expected] of [["setZero", 0], ["setError", "error"]] as const) {
  test(
    `blk ${op} whose persist fails fails the arena, and the next open makes its entry durable`,
    () => {
      const { path, entry } = newPool(OTHER);
      {
        using pool = openPoolWith(path, {}, HOOKS);
        pool.write(OTHER, block(0x11));
        pool.write(0, block(0x22)); // the flog names block 0, not OTHER
      }
      const base = readFileSync(path);
      let armed = false;
      const events = tracedRun(
        path,
        base,
        (tracer) =>
          openPoolWith(path, {}, {
            ...HOOKS,
            tracer: failingAt(tracer, entry, () => armed && !(armed = false)),
          }),
        (p) => {
          armed = true;
          assert.throws(
            () => p[op](OTHER),
            (e) =>
              e instanceof PmemError && e.code === -5 &&
              e.op === op && /cannot persist/.test(e.message),
          );
          assert.match(p.info().arenas[0].error ?? "none", /failed to persist/);
          assert.throws(() => p.write(1, block(0x33)), /error state/);
        },
      );
      assert.equal(clean(path), false, "marked clean after a failed persist");
      const durable = fencedImage(base, events);
      const seen = { state: -1 as number | string };
      const reopened = tracedRun(
        path,
        durable,
        (tracer) => openPoolWith(path, {}, { ...HOOKS, tracer }),
        (p) => seen.state = readState(p, OTHER),
      );
      assert.equal(seen.state, expected, `the reopen read OTHER before ${op}`);
      // a power failure: the media keeps only what was fenced
      writeFileSync(path, fencedImage(durable, reopened));
      using pool = openPoolWith(path, {}, HOOKS);
      assert.equal(
        readState(pool, OTHER),
        expected,
        `the block read as ${op} left it after the reopen, and as before it after a power failure`,
      );
    },
  );
}
