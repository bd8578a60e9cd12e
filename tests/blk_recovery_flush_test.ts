// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The block store's recovery after a crash of the process alone (a kill):
// the next open reads the flog entry and the map entry the dead writer
// stored, which may never have been persisted (still in the CPU caches,
// or the page cache). Recovery trusts them: it rolls the map forward to a
// flog entry, and hands the entry's old block out as the lane's free
// block. What it trusts it must make durable before it builds on it:
// else a power failure right after brings the older flog entry or map
// entry back, and a block is both mapped and free (a later write
// overwrites live data).
import { readFileSync, writeFileSync } from "node:fs";
import type { BlockPool } from "../blk/mod.ts";
import { createPoolWith, openPoolWith } from "../blk/pool_access.ts";
import { decodeBttInfo, INFO_FLAG_ERROR } from "../blk/layout.ts";
import { BadBlockError } from "../errors/mod.ts";
import { SDS_OFFSET } from "../pmdk/pool_header.ts";
import type { CrashTracer, TraceEvent } from "./crash/tracer.ts";
import {
  failingAt,
  fencedImage,
  killImage,
  tracedRun,
} from "./crash/kill_image.ts";
import { deadOpenerScript } from "./dead_opener.ts";
import { assert, tempPath, test } from "./_harness.ts";

const BS = 512;
const BTT = 8192;
/** One lane: a freed block is reused by the next write at once. */
const HOOKS = { lanes: 1 };

const POOL_SIZE = 16 * 2 ** 20 + 8192;

const block = (x: number) => new Uint8Array(BS).fill(x);

const u32At = (b: Uint8Array, at: number) =>
  new DataView(b.buffer, b.byteOffset).getUint32(at, true);

/** Whether `a` and `b` hold the same `length` bytes at `at`. */
const sameBytes = (a: Uint8Array, b: Uint8Array, at: number, length: number) =>
  a.subarray(at, at + length).every((x, i) => x === b[at + i]);

/** Run `body` on the pool at `path`, traced from `durable` (the media). */
function traced(
  path: string,
  durable: Uint8Array,
  body: (pool: BlockPool) => void,
): TraceEvent[] {
  return tracedRun(
    path,
    durable,
    (tracer) => openPoolWith(path, {}, { ...HOOKS, tracer }),
    body,
  );
}

/** Block 64: its map entry is on a cache line other than block 0's. */
const OTHER = 64;

/** What a kill leaves: the pool, what the next open sees, what the media holds. */
interface Killed {
  path: string;
  visible: Uint8Array;
  durable: Uint8Array;
}

/**
 * An update of block 0 (`update`; a write of 0x22 over 0x11 unless
 * given), traced, then a kill at the first crash point where the word
 * the update changed among `words` (arena offsets) is visible with the
 * value it has at the end, but not durable: the image the next open sees
 * and the one the media holds.
 */
function killedWrite(
  words: (info: { flogOff: number; mapOff: number }) => number[],
  update: (pool: BlockPool) => void = (p) => p.write(0, block(0x22)),
): Killed {
  const path = tempPath();
  createPoolWith(path, { blockSize: BS, poolSize: POOL_SIZE }, HOOKS).close();
  using pool = openPoolWith(path, {}, HOOKS);
  pool.write(0, block(0x11));
  pool.write(OTHER, block(0x44));
  pool.close();
  const base = readFileSync(path);
  const info = decodeBttInfo(base.subarray(BTT, BTT + 4096));
  const events = traced(path, base, update);
  const after = readFileSync(path);
  const at = words(info).map((w) => BTT + w).find((w) =>
    u32At(after, w) !== u32At(base, w)
  );
  assert.ok(at !== undefined, "the write changed none of the words");
  const end = u32At(after, at);

  const killed = killImage(
    base,
    events,
    (visible, durable) =>
      u32At(visible, at) === end && u32At(durable, at) !== end,
  );
  if (killed !== undefined) return { path, ...killed };
  throw new Error("no crash point with the word visible and not durable");
}

/**
 * The kill's image reopened (traced), `after` run on it, then a power
 * failure: the media keeps only what was fenced. Every block must still
 * read as one of the values written to it (block 64: `expectOther`), and
 * writes of other blocks must not change block 0.
 */
function reopenThenPowerFail(
  killed: Killed,
  after: (pool: BlockPool) => void,
  expectOther: number,
): void {
  writeFileSync(killed.path, killed.visible);
  const events = traced(killed.path, killed.durable, after);
  writeFileSync(killed.path, fencedImage(killed.durable, events));
  using pool = openPoolWith(killed.path, {}, HOOKS);
  const zero = pool.read(0)[0];
  assert.ok(zero === 0x11 || zero === 0x22, `block 0 reads ${zero}`);
  // the lane's free block must be no block in use: writes through it
  // leave block 0 alone
  for (let lba = 2; lba < 6; lba++) pool.write(lba, block(0x77));
  assert.equal(
    pool.read(0)[0],
    zero,
    "block 0 was overwritten by a later write: its block was also the lane's free block, after a power failure following the recovery of a kill",
  );
  assert.equal(pool.read(OTHER)[0], expectOther);
}

test(
  "blk recovery after a kill makes the flog entry it rolls forward durable before the map entry",
  () => {
    // the commit's second half {new_map, seq} visible, not persisted
    const killed = killedWrite((i) => [i.flogOff + 12, i.flogOff + 28]);
    reopenThenPowerFail(killed, () => {}, 0x44);
  },
);

test(
  "blk recovery after a kill makes the map entry it trusts durable before the lane's free block is reused",
  () => {
    // the flog committed and durable, the map entry stored, not persisted
    const killed = killedWrite((i) => [i.mapOff]);
    // an acknowledged write after the reopen, through the lane whose free
    // block is the old block of block 0
    reopenThenPowerFail(killed, (p) => p.write(OTHER, block(0x55)), 0x55);
  },
);

/** Block 0 as a read sees it: its first byte, or "error" (`setError`). */
function readState(pool: BlockPool): number | string {
  try {
    return pool.read(0)[0];
  } catch (e) {
    if (e instanceof BadBlockError) return "error";
    throw e;
  }
}

// A setZero or setError stores its map entry and persists it, with no
// flog entry: killed between the two, the next open reads the new entry
// (the block reads as zeros, or fails), and recovery knows nothing of it.
for (const [op, expected] of [["setZero", 0], ["setError", "error"]] as const) {
  test(
    `blk recovery after a kill makes the map entry of a ${op} durable before the pool reads it`,
    () => {
      const killed = killedWrite((i) => [i.mapOff], (p) => p[op](0));
      writeFileSync(killed.path, killed.visible);
      const seen = { state: "unread" as number | string };
      const events = traced(
        killed.path,
        killed.durable,
        (p) => seen.state = readState(p),
      );
      assert.equal(
        seen.state,
        expected,
        `the reopen read block 0 before ${op}`,
      );
      // a power failure: the media keeps only what was fenced
      writeFileSync(killed.path, fencedImage(killed.durable, events));
      using pool = openPoolWith(killed.path, {}, HOOKS);
      assert.equal(
        readState(pool),
        expected,
        `block 0 read as ${op} left it after the reopen, and as before it after a power failure`,
      );
    },
  );
}

// An open after a kill that fails once it marked the pool open (a block
// size the pool does not have; a persist of its recovery that fails) made
// nothing durable of what the kill left, and marked the pool clean: the
// next open then trusted the setZero's entry it read, and a power failure
// after it brought the old one back.
for (
  const [why, open] of [
    [
      "a wrong block size",
      (path: string) => openPoolWith(path, { blockSize: 2 * BS }, HOOKS),
    ],
    [
      "a failed persist in its recovery",
      (path: string) =>
        openPoolWith(path, {}, {
          ...HOOKS,
          tracer: {
            flush(offset: number) {
              if (offset >= BTT + 4096) throw new Error("injected EIO");
            },
            drain() {},
          },
        }),
    ],
  ] as const
) {
  test(
    `blk open after a kill that fails for ${why} leaves the shutdown state dirty`,
    () => {
      const killed = killedWrite((i) => [i.mapOff], (p) => p.setZero(0));
      writeFileSync(killed.path, killed.visible);
      assert.throws(() => open(killed.path));
      // (it persisted the header alone)
      const durable = new Uint8Array(killed.durable);
      durable.set(readFileSync(killed.path).subarray(0, 4096));
      const seen = { state: "unread" as number | string };
      const reopened = traced(
        killed.path,
        durable,
        (p) => seen.state = readState(p),
      );
      assert.equal(seen.state, 0, "the reopen read block 0 before setZero");
      // a power failure: the media keeps only what was fenced
      writeFileSync(killed.path, fencedImage(durable, reopened));
      using pool = openPoolWith(killed.path, {}, HOOKS);
      assert.equal(
        readState(pool),
        0,
        "block 0 read as setZero left it after the reopen, and as before it after a power failure",
      );
    },
  );
}

// A close from inside a setZero, between the store of its map entry and
// the persist (a tracer's callback here; a Worker terminated there leaves
// the same to the others), leaves the entry stored and not persisted, and
// no flog entry names it. The last close marks the pool clean, so the
// next open persists no map either: it reads the block as zeros, and a
// power failure brings the old data back.
test(
  "blk close from inside a setZero makes its map entry durable before it releases the block's stripe",
  () => {
    const path = tempPath();
    createPoolWith(path, { blockSize: BS, poolSize: POOL_SIZE }, HOOKS).close();
    {
      using pool = openPoolWith(path, {}, HOOKS);
      pool.write(OTHER, block(0x11));
      pool.write(0, block(0x22)); // the flog names block 0, not OTHER
    }
    const base = readFileSync(path);
    const info = decodeBttInfo(base.subarray(BTT, BTT + 4096));
    const entry = BTT + info.mapOff + OTHER * 4;
    let closing: BlockPool | undefined;
    const events = tracedRun(
      path,
      base,
      (tracer) =>
        openPoolWith(path, {}, {
          ...HOOKS,
          tracer: {
            flush(offset, length) {
              if (closing && offset <= entry && entry < offset + length) {
                const pool = closing;
                closing = undefined;
                pool.close();
                return; // and the persist is refused: the pool is closed
              }
              tracer.flush(offset, length);
            },
            drain: () => tracer.drain(),
            mark: (label) => tracer.mark(label),
          },
        }),
      (p) => {
        closing = p;
        assert.throws(() => p.setZero(OTHER), /closed/);
      },
    );
    const durable = fencedImage(base, events);
    const seen = { state: -1 };
    const reopened = traced(
      path,
      durable,
      (p) => seen.state = p.read(OTHER)[0],
    );
    assert.equal(seen.state, 0, "the reopen read the setZero's entry");
    // a power failure: the media keeps only what was fenced
    writeFileSync(path, fencedImage(durable, reopened));
    using pool = openPoolWith(path, {}, HOOKS);
    assert.equal(
      pool.read(OTHER)[0],
      0,
      "the block read as zeros after the reopen, as before the setZero after a power failure",
    );
  },
);

// The same for a Worker terminated there: the others take its stripe
// over (LaneRecovery's recovery of an ended opener), and must make the
// map durable before they release it.
test(
  "blk openers that take over an ended Worker's stripe make the map durable (its setZero's entry may be stored, not persisted)",
  () => {
    const out = deadOpenerScript(`
      const { arena0Regions } = await import("@root/tests/workers/arena0.ts");
      const flushed = [];
      const pool = createBlockPool(path, {
        blockSize: 512,
        poolSize: 32 << 20,
        tracer: { flush: (at, length) => flushed.push([at, length]), drain() {} },
      });
      for (let lba = 0; lba < 8; lba++) pool.write(lba, block(lba));
      const w = await worker();
      await ask(w, { kind: "holdLock", path, lock: "stripe", pre: 3, zero: true });
      await end(w);
      const from = flushed.length;
      // (a block of the same stripe: its write waits for the stripe)
      out.write = code(() => pool.write(3 + 1024, block(33)));
      const entry = arena0Regions(path).map[0] + 3 * 4;
      out.persisted = flushed.slice(from)
        .some(([at, length]) => at <= entry && entry < at + length);
      out.read = pool.read(3)[0];
      pool.close();
    `);
    assert.deepEqual(out, { write: 0, persisted: true, read: 0 });
  },
  { timeout: 120_000 },
);

/** Whether the error flag is set in the info block at `at` of `bytes`. */
const flagged = (bytes: Uint8Array, at: number) =>
  (u32At(bytes, at + 48) & INFO_FLAG_ERROR) !== 0;

// A persist that fails makes the arena refuse writes, and sets the error
// flag in its info blocks (markInfoError: the primary, then the backup):
// killed with the primary's new flag visible but not durable, the next
// open finds the primary valid and the backup different, and copies the
// primary to the backup. The flag is all that is left of the failure.
test(
  "blk open after a kill in markInfoError makes the primary info block durable before copying it to the backup",
  () => {
    const path = tempPath();
    createPoolWith(path, { blockSize: BS, poolSize: POOL_SIZE }, HOOKS).close();
    {
      using pool = openPoolWith(path, {}, HOOKS);
      pool.write(0, block(0x11));
    }
    const base = readFileSync(path);
    const info = decodeBttInfo(base.subarray(BTT, BTT + 4096));
    const flog = BTT + info.flogOff; // lane 0's slot
    // the flog persist of the next write fails (the tracer throws where
    // the media would)
    let armed = false;
    const events = tracedRun(
      path,
      base,
      (tracer) =>
        openPoolWith(path, {}, {
          ...HOOKS,
          tracer: failingAt(tracer, flog, () => armed && !(armed = false)),
        }),
      (p) => {
        armed = true;
        assert.throws(() => p.write(0, block(0x22)), /cannot persist the flog/);
      },
    );
    const after = readFileSync(path);
    const backup = BTT + info.infoOff;
    assert.ok(flagged(after, BTT) && flagged(after, backup));
    const killed = killImage(
      base,
      events,
      (visible, durable) =>
        sameBytes(visible, after, BTT, 4096) && !flagged(durable, BTT),
    );
    assert.ok(killed, "no crash point with the primary's flag not durable");
    writeFileSync(path, killed.visible);
    const seen = { error: null as string | null };
    const reopened = traced(
      path,
      killed.durable,
      (p) => seen.error = p.info().arenas[0].error,
    );
    assert.match(seen.error ?? "none", /error flag/);
    // a power failure: the media keeps only what was fenced
    writeFileSync(path, fencedImage(killed.durable, reopened));
    using pool = openPoolWith(path, {}, HOOKS);
    assert.match(
      pool.info().arenas[0].error ?? "none",
      /error flag/,
      "the error flag the reopen went by was lost in a power failure after it",
    );
    assert.throws(() => pool.write(1, block(0x33)), /error state/);
  },
);

// Killed in create with the pool header stored but not fenced, the next
// open finds a valid header, lays the BTT out and acknowledges writes: a
// power failure then takes the header, and the pool with them.
test(
  "blk open after a kill in create makes the pool header durable before building on it",
  () => {
    const path = tempPath();
    writeFileSync(path, new Uint8Array(POOL_SIZE));
    const base = readFileSync(path);
    const events = tracedRun(
      path,
      base,
      (tracer) => createPoolWith(path, { blockSize: BS }, { ...HOOKS, tracer }),
      () => {},
    );
    const after = readFileSync(path);
    const killed = killImage(
      base,
      events,
      (visible, durable) =>
        sameBytes(visible, after, 0, 2048) && u32At(durable, 0) === 0,
    );
    assert.ok(killed, "no crash point with the header visible, not durable");
    writeFileSync(path, killed.visible);
    const reopened = traced(
      path,
      killed.durable,
      (p) => p.write(0, block(0x22)),
    );
    // a power failure: the media keeps only what was fenced
    writeFileSync(path, fencedImage(killed.durable, reopened));
    using pool = openPoolWith(path, {}, HOOKS);
    assert.equal(pool.read(0)[0], 0x22);
  },
);

// Killed in an open with the dirty shutdown state stored but not fenced,
// the next open finds the state dirty already and stores nothing: while
// that pool is open, the media must still say so, else an ADR failure
// then goes unnoticed by the open after it.
test(
  "blk open after a kill in markOpen makes the dirty shutdown state durable while the pool is open",
  () => {
    const path = tempPath();
    createPoolWith(path, { blockSize: BS, poolSize: POOL_SIZE }, HOOKS).close();
    const base = readFileSync(path);
    const dirty = SDS_OFFSET + 16; // the state's dirty flag
    const events = traced(path, base, () => {});
    const killed = killImage(
      base,
      events,
      (visible, durable) => visible[dirty] === 1 && durable[dirty] === 0,
    );
    assert.ok(killed, "no crash point with the dirty flag not durable");
    writeFileSync(path, killed.visible);
    let tracer: CrashTracer | undefined;
    const reopened = tracedRun(
      path,
      killed.durable,
      (t) => openPoolWith(path, {}, { ...HOOKS, tracer: tracer = t }),
      () => tracer?.mark("open"),
    );
    const open = reopened.findIndex((e) =>
      e.kind === "mark" && e.label === "open"
    );
    assert.ok(open >= 0);
    // a power failure while the pool is open
    const media = fencedImage(killed.durable, reopened.slice(0, open + 1));
    assert.equal(media[dirty], 1, "the media says the open pool is closed");
  },
);

// What the pool's first opener in the process trusted it made durable; a
// later opener (another Worker, or this isolate again) finds the shutdown
// state dirty, the first opener's, and must not take it for a kill's.
test("a later opener of a pool in the process flushes nothing at open", () => {
  const path = tempPath();
  createPoolWith(path, { blockSize: BS, poolSize: POOL_SIZE }, HOOKS).close();
  using _first = openPoolWith(path, {}, HOOKS);
  const flushed: number[] = [];
  const tracer = { flush: (at: number) => flushed.push(at), drain() {} };
  using _later = openPoolWith(path, {}, { ...HOOKS, tracer });
  assert.deepEqual(flushed, []);
});
