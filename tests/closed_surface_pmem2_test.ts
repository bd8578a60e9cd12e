// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Use after `close()` throws ClosedError and touches no unmapped memory:
 * every member of a closed Mapping, Source and FileLock, and of
 * each closed mover (the check itself, and the fixtures: `_closed_surface.ts`).
 *
 * @module
 */
import {
  CpuMover,
  DsaMover,
  FileLock,
  mapFile,
  type Mapping,
  Source,
  ThreadMover,
  type Vdm,
} from "../mod.ts";
import type { CheckedOp } from "../mover/mod.ts";
import { openTestPortal } from "../testing/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";
import {
  type Any,
  type Calls,
  checkClosedSurface,
  membersOf,
} from "./_closed_surface.ts";

// ---- pmem2 ----

const MAPPING_CALLS: Calls<Mapping> = {
  size: (m) => m.size,
  granularity: (m) => m.granularity,
  view: (m) => m.view(0, 1),
  read: (m) => m.read(0, new Uint8Array(1)),
  persist: (m) => m.persist(0, 1),
  flush: (m) => m.flush(0, 1),
  drain: (m) => m.drain(),
  deepFlush: (m) => m.deepFlush(0, 1),
  memcpy: (m) => m.memcpy(0, new Uint8Array(1)),
  memmove: (m) => m.memmove(0, 1, 1),
  memset: (m) => m.memset(0, 1, 1),
  memcpyAsync: (m) => m.memcpyAsync(0, new Uint8Array(1)),
  memmoveAsync: (m) => m.memmoveAsync(0, 1, 1),
  memsetAsync: (m) => m.memsetAsync(0, 1, 1),
  persistRanges: (m) => m.persistRanges([{ offset: 0, length: 1 }]),
  memcpyManyAsync: (m) =>
    m.memcpyManyAsync([{ offset: 0, data: new Uint8Array(1) }]),
};

test("every member of a closed Mapping and Source throws ClosedError", async () => {
  await checkClosedSurface("Mapping", () => {
    const map = mapFile(tempPath(), { size: 65536 });
    return { obj: map, close: () => map.close(), calls: MAPPING_CALLS };
  }, {
    allowed: {
      mover: "the mover given at map time, a JS object: no memory behind it",
      requiredGranularity: "the granularity asked for at map time: a JS value",
    },
  });
  await checkClosedSurface("Source", () => {
    const src = Source.open(tempPath(), { size: 4096 });
    return { obj: src, close: () => src.close(), calls: SOURCE_CALLS };
  });
});

const SOURCE_CALLS: Calls<Source> = {
  size: (s) => s.size,
  alignment: (s) => s.alignment,
  fd: (s) => s.fd,
  deviceUsc: (s) => s.deviceUsc(),
  deviceId: (s) => s.deviceId(),
  numaNode: (s) => s.numaNode(),
  badBlocks: (s) => s.badBlocks(),
  clearBadBlock: (s) => s.clearBadBlock({ offset: 0, length: 0 }),
};

test("a released FileLock: release() twice and dispose are no-ops", () => {
  const path = tempPath();
  mapFile(path, { size: 4096 }).close();
  const lock = FileLock.acquire(path);
  assert.deepEqual(membersOf(lock).sort(), ["release", "released"]);
  lock.release();
  lock.release();
  lock[Symbol.dispose]();
  assert.equal(lock.released, true);
  // and the lock is free again
  FileLock.acquire(path).release();
});

// ---- movers ----

function checkedOp(dst: Uint8Array, src: Uint8Array): CheckedOp {
  return {
    op: "memcpy",
    dst,
    dstOffset: 0,
    src,
    srcOffset: 0,
    value: 0,
    length: dst.length,
    flags: 0,
  };
}

/** Protected members reach JS too: a subclass may call them after close. */
function moverCalls(): Calls<Any> {
  const dst = new Uint8Array(64);
  const src = new Uint8Array(64).fill(7);
  return {
    memcpy: (m) => m.memcpy(dst, src),
    memmove: (m) => m.memmove(dst, src),
    memset: (m) => m.memset(dst, 1),
    flush: (m) => m.flush(dst),
    batch: (m) => m.batch([{ op: "memcpy", dst, src }]),
    run: (m) => m.run(checkedOp(dst, src), undefined),
    runBatch: (m) => m.runBatch([checkedOp(dst, src)], undefined),
  };
}

/** Constants of a mover's kind, fixed at construction: no memory behind them. */
const MOVER_CONSTANTS: Record<string, string> = {
  name: "the mover's kind, a JS string",
  capabilities: "the flags it honours, a JS number",
  supports: "a bitwise test of those flags",
  takesDstOffset: "a protected constant of the class",
  takesSrcOffset: "a protected constant of the class",
};
const DEVICE_CONSTANTS: Record<string, string> = {
  ...MOVER_CONSTANTS,
  sharesWithPoller: "a protected constant of the class",
  info: "the configuration read once at open, a JS object",
};

test("every member of a closed mover throws ClosedError", async () => {
  const movers: [string, () => Vdm, Record<string, string>][] = [
    ["CpuMover", () => new CpuMover(), {
      ...MOVER_CONSTANTS,
      run: "",
      runBatch: "",
    }],
    ["ThreadMover", () => new ThreadMover({ threads: 1 }), DEVICE_CONSTANTS],
    ["DsaMover (test portal)", () => openTestPortal(), {
      ...DEVICE_CONSTANTS,
      queue: "the work queue's description, copied at open",
    }],
  ];
  for (const [name, create, allowed] of movers) {
    await checkClosedSurface(name, () => {
      const m = create();
      return {
        obj: m,
        close: () => m.close(),
        calls: moverCalls(),
      };
    }, { allowed });
  }
  // whichever mover openOrFallback chose, its close is the choice's
  await checkClosedSurface("DsaMover.openOrFallback's mover", () => {
    const choice = DsaMover.openOrFallback({ fallback: { threads: 1 } });
    return {
      obj: choice.mover,
      close: () => choice.close(),
      calls: moverCalls(),
    };
  }, {
    allowed: {
      ...DEVICE_CONSTANTS,
      ...(DsaMover.available() ? { queue: "copied at open" } : {}),
    },
  });
  const choice = DsaMover.openOrFallback({ fallback: { threads: 1 } });
  assert.equal(choice.closed, false);
  choice[Symbol.dispose]();
  assert.equal(choice.closed, true);
  choice.close();
  choice[Symbol.dispose]();
  assert.equal(choice.mover.closed, true);
});
