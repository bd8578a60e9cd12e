// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Edges of `pmem2/` found by a fifth review: each test exposed a bug
 * (named in its comment) or checks an edge found sound.
 */
import { closeSync, openSync } from "node:fs";
import {
  ClosedError,
  FileLock,
  mapFile,
  Mapping,
  MemFlags,
  PmemError,
  Source,
} from "../mod.ts";
import { BlockPool } from "../blk/mod.ts";
import { setMappingTracer } from "../pmem2/mapping_access.ts";
import { assert, moverTest, tempPath, test } from "./_harness.ts";

/** `n` bytes of a pattern that no shift by a few bytes repeats. */
function pattern(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = (i * 7 + (i >> 8)) & 255;
  return bytes;
}

// Bug: memcpyAsync and memcpyManyAsync of a view of the same mapping
// whose range overlaps the destination handed the mover a memcpy, whose
// ranges must not overlap (the Vdm contract): a device mover copies a
// large one in ascending chunks, on several threads, so with the
// destination above the source the later chunks read bytes the earlier
// ones had overwritten (a 64 KiB copy 1000 bytes up came out corrupt on
// the ThreadMover with 4 KiB transfers), where the synchronous memcpy
// copies as memmove. An overlapping source is now moved as a memmove.
moverTest(
  "memcpyAsync and memcpyManyAsync of an overlapping view of the mapping copy as memmove",
  async (mover) => {
    // 80 MiB: on Bun, views of windows of 4 MiB every 2 MiB, so the
    // source and the destination may be views of two buffers
    using map = mapFile(tempPath(), { size: 80 << 20, sparse: true, mover });
    const n = 64 << 10;
    const init = pattern(n + 8192);
    const at = (2 << 20) - 30000;
    for (const [dst, src] of [[1000, 0], [0, 1000], [4096, 0], [8192, 4096]]) {
      for (const many of [false, true]) {
        map.memcpy(at, init);
        const want = init.slice(src, src + n);
        const view = map.view(at + src, n);
        if (many) {
          await map.memcpyManyAsync([{ offset: at + dst, data: view }]);
        } else await map.memcpyAsync(at + dst, view);
        const got = new Uint8Array(n);
        map.read(at + dst, got);
        assert.ok(
          got.every((v, i) => v === want[i]),
          `${many ? "memcpyManyAsync" : "memcpyAsync"} ${src} -> ${dst}`,
        );
      }
    }
  },
);

// Bug: on a mapping of byte granularity (eADR; an anonymous source, a
// private mapping) the asynchronous copies reported nothing to the
// persistence funnel's tracer, where the synchronous ones report a flush
// and a drain of their range (a flush alone with NODRAIN) and a persist
// is reported on every granularity: a tracer saw the bytes of every
// memcpyAsync, memmoveAsync, memsetAsync and memcpyManyAsync as never
// made durable. They now report as the synchronous copies do.
moverTest(
  "async copies on a byte-granularity mapping report to the tracer as the synchronous ones",
  async (mover) => {
    using anon = Source.fromAnon(1 << 16);
    using map = Mapping.map(anon, { granularity: "byte", mover });
    assert.equal(map.granularity, "byte");
    const events: string[] = [];
    setMappingTracer(map, {
      flush: (offset, length) => events.push(`flush ${offset}+${length}`),
      drain: () => events.push("drain"),
    });
    const data = new Uint8Array(100).fill(7);
    for (const flags of [0, MemFlags.NODRAIN, MemFlags.NOFLUSH]) {
      events.length = 0;
      map.memcpy(64, data, flags);
      map.memmove(4096, 64, 100, flags);
      map.memset(8192, 1, 100, flags);
      const want = [...events];
      assert.equal(
        want.length,
        flags === MemFlags.NOFLUSH ? 0 : flags === 0 ? 6 : 3,
      );
      events.length = 0;
      await map.memcpyAsync(64, data, flags);
      await map.memmoveAsync(4096, 64, 100, flags);
      await map.memsetAsync(8192, 1, 100, flags);
      assert.deepEqual(events, want, `flags ${flags}`);
    }
    events.length = 0;
    await map.memcpyManyAsync([
      { offset: 0, data },
      { offset: 1000, data: data.subarray(0, 10) },
    ]);
    assert.deepEqual(events, ["flush 0+100", "flush 1000+10", "drain"]);
    assert.equal(map.view(1009, 1)[0], 7);
  },
);

// Bug: persistRanges read each range's offset and length once to check
// them and again to persist them on its sparse path (ranges far apart,
// or any granularity below page): a range whose properties answer a
// second read otherwise (getters, a proxy) had one range checked and
// another flushed, so the checked bytes were silently left unpersisted
// (or a NaN thrown as a RangeError after some ranges were flushed, with
// no drain). Each range is now read once, as memcpyManyAsync reads its
// entries.
test("persistRanges persists the ranges it checked, each read once", () => {
  const size = 2 ** 31 + 2 ** 20;
  using map = mapFile(tempPath(), { size, sparse: true });
  const flushed: string[] = [];
  setMappingTracer(map, {
    flush: (offset, length) => flushed.push(`${offset}+${length}`),
    drain: () => flushed.push("drain"),
  });
  const far = 2 ** 31;
  let reads = 0;
  const shifty = {
    get offset() {
      return reads++ === 0 ? far : 8192;
    },
    length: 100,
  };
  // far apart: more than 1 GiB and 8 times their length, one flush each
  map.persistRanges([{ offset: 0, length: 10 }, shifty]);
  assert.equal(reads, 1);
  assert.deepEqual(flushed, ["0+4096", `${far}+4096`, "drain"]);
});

// Found sound: overlapping moves, up and down by a little and by a lot,
// across a page's end and (on Bun) the 2 MiB and 4 MiB ends of the view
// windows of a mapping over 64 MiB, and ending at the mapping's end,
// synchronous with every flag and through every mover.
moverTest(
  "memmove and memmoveAsync of overlapping ranges across page and window ends",
  async (mover) => {
    const size = 80 << 20;
    using map = mapFile(tempPath(), { size, sparse: true, mover });
    const n = 20000;
    const init = pattern(3 * n);
    const places = [
      4096 - 3000,
      (2 << 20) - 7000,
      (4 << 20) - 11000,
      size - 2 * n,
    ];
    for (const base of places) {
      for (const shift of [1, 63, 4096, n - 1]) {
        for (const [dst, src] of [[base + shift, base], [base, base + shift]]) {
          const flagsList = [
            0,
            MemFlags.NONTEMPORAL,
            MemFlags.NODRAIN,
            MemFlags.NOFLUSH,
          ];
          for (const flags of flagsList) {
            for (const async of [false, true]) {
              const lo = Math.min(dst, src);
              const room = Math.min(init.length, size - lo);
              map.memcpy(lo, init.subarray(0, room));
              if (async) await map.memmoveAsync(dst, src, n, flags);
              else map.memmove(dst, src, n, flags);
              const got = new Uint8Array(n);
              map.read(dst, got);
              const want = init.subarray(src - lo, src - lo + n);
              assert.ok(
                got.every((v, i) => v === want[i]),
                `${
                  async ? "memmoveAsync" : "memmove"
                } ${src} -> ${dst} flags ${flags}`,
              );
            }
          }
        }
      }
    }
  },
);

// Found sound: a copy into one mapping from a view of another that
// closes while the copy runs touches no unmapped memory: the pieces the
// mover had taken finish (its device holds the source's mapping until
// they do), the rest fail with ClosedError, and the source's close does
// not wait for a copy that is not its own.
moverTest(
  "a copy whose source mapping closes while it runs finishes or fails with ClosedError",
  async (mover) => {
    using dst = mapFile(tempPath("dst"), { size: 8 << 20, mover });
    const src = mapFile(tempPath("src"), { size: 8 << 20 });
    src.memset(0, 0x5a, 8 << 20);
    const copy = dst.memcpyAsync(0, src.view(0, 8 << 20));
    copy.poll();
    src.close();
    try {
      await copy;
      assert.equal(dst.view((8 << 20) - 1, 1)[0], 0x5a);
    } catch (e) {
      assert.ok(e instanceof ClosedError, String(e));
    }
    // the destination is whole and usable
    await dst.memsetAsync(0, 1, 4096);
    assert.equal(dst.view(4095, 1)[0], 1);
  },
);

// Bug: Source.fromFd of a character device that is not device DAX
// (/dev/null) failed with "pmem2_source_from_fd failed (code -100005)":
// libpmem2 sets no message for it, and only Source.open supplied one.
// Both now say what is wrong with the file.
test("Source.fromFd of a character device that is not DAX says why", () => {
  const fd = openSync("/dev/null", "r");
  try {
    assert.throws(
      () => Source.fromFd(fd),
      (e: unknown) =>
        e instanceof PmemError && e.code === -100005 &&
        /not a regular file or a device DAX character device/.test(e.message),
    );
  } finally {
    closeSync(fd);
  }
});

// Bug: a FileLock (and any open of a file's process-wide share) refused
// because the file is open in this process as something else (a block
// pool, whose share has another size) said "it is open in another
// process (or held by an exclusive lock)": FileShare.open put that one
// message on every EAGAIN, and the shim's, which tells the two apart,
// went to `cause`. It now says the file is open in this process.
test("a FileLock refused by a pool open in this process says where it is open", () => {
  const path = tempPath();
  using pool = BlockPool.create(path, { blockSize: 512, poolSize: 32 << 20 });
  assert.throws(
    () => FileLock.acquire(path),
    (e: unknown) =>
      e instanceof PmemError && e.code === -11 && e.errno === 11 &&
      /open in this process/.test(e.message) &&
      !/another process/.test(e.message),
  );
  assert.equal(pool.closed, false);
});

// A block pool's open refused because the file is open in this process as
// something else (a FileLock, a log) said "the pool is already open in
// another process": joinPool put that on every EAGAIN of the share.
test("a BlockPool open refused by a FileLock of this process says the file is open in this process", () => {
  const path = tempPath();
  {
    using _pool = BlockPool.create(path, {
      blockSize: 512,
      poolSize: 32 << 20,
    });
  }
  using lock = FileLock.acquire(path);
  assert.throws(
    () => BlockPool.open(path),
    (e: unknown) =>
      e instanceof PmemError && e.code === -11 &&
      /in this process/.test(e.message) &&
      !/another process/.test(e.message),
  );
  void lock;
});
