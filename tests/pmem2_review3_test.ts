// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Edges of `pmem2/` found by a third review: each test exposed a bug
 * (named in its comment).
 */
import {
  ClosedError,
  mapFile,
  OutOfSpaceError,
  PmemError,
  ThreadMover,
} from "../mod.ts";
import { BlockPool } from "../blk/mod.ts";
import { LogStream } from "../stream/mod.ts";
import { trackedCopies } from "../pmem2/mapping_access.ts";
import { MappingReader } from "../pmem2/reader.ts";
import { assert, moverTest, tempPath, test } from "./_harness.ts";

// Bug: on Bun, a mapping above 4 GiB made a new ArrayBuffer for every
// view that no 4 MiB window holds, and kept each one (to detach it at
// close) until the mapping closed: a loop of such views grew the process
// by ~250 bytes a view for as long as the mapping lived (100 000 views of
// 4 MiB: +25 MB of RSS, never given back). Such views now come from
// windows of their own size class, made once each, as the small ones do.
test("views of a mapping above 4 GiB reuse their buffers, one per window", () => {
  const size = 5 * 2 ** 30;
  const map = mapFile(tempPath(), { size, sparse: true });
  // ranges across a 4 MiB window's end, of a few sizes, in both halves
  const ranges = [
    [1 << 20, 4 << 20],
    [2 ** 32 - (3 << 20), 5 << 20],
    [2 ** 32 + 12345, 40 << 20],
    [size - (9 << 20), 9 << 20],
    [2 ** 31 - 4096, 2 ** 31],
  ];
  const views: Uint8Array[] = [];
  for (const [offset, length] of ranges) {
    const a = map.view(offset, length);
    const b = map.view(offset, length);
    assert.equal(a.length, length);
    // (ok, not equal: a failure would print both buffers)
    assert.ok(a.buffer === b.buffer, `view(${offset}, ${length})`);
    a[length - 1] = 0x5a;
    assert.equal(b[length - 1], 0x5a);
    const into = new Uint8Array(1);
    map.read(offset + length - 1, into);
    assert.equal(into[0], 0x5a);
    views.push(a);
  }
  map.close();
  for (const v of views) assert.equal(v.length, 0);
});

// Bug: a MappingReader (the block store's native reads) over a mapping
// with protection "none" was made, and its first read faulted the process
// (SIGSEGV). The mapping now refuses the reader, as it refuses a flush.
test("a MappingReader over a mapping without access is refused, not a fault", () => {
  const path = tempPath();
  mapFile(path, { size: 1 << 16 }).close();
  using map = mapFile(path, { protection: "none" });
  assert.throws(
    () => new MappingReader(map),
    (e) => e instanceof PmemError && e.code === -13,
  );
});

// Bug: every memcpyAsync (memmove, memset, memcpyMany) future was kept by
// its mapping from its creation, so close() could wait for it, and only
// settled ones were swept out: futures made and dropped without a poll
// (lazy: they never started) stayed, with their source arrays, until the
// mapping closed. A future is now kept from its first poll to its end.
test("async copies never polled are not kept by their mapping; started ones are, until they settle", async () => {
  using mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
  const path = tempPath();
  using map = mapFile(path, { size: 1 << 20, mover });
  const src = new Uint8Array(4096).fill(3);
  for (let i = 0; i < 1000; i++) {
    map.memcpyAsync(0, src);
    map.memsetAsync(0, 1, 64);
    map.memcpyManyAsync([{ offset: 8192, data: src }]);
  }
  assert.equal(trackedCopies(map), 0);
  const started = map.memcpyAsync(4096, src);
  started.poll();
  assert.equal(started.state, "running");
  assert.equal(trackedCopies(map), 1);
  await started;
  assert.equal(trackedCopies(map), 0);
  assert.equal(map.view(4096 + 4095, 1)[0], 3);
  // close() still waits for a copy that was started and then dropped
  map.memcpyAsync(0, new Uint8Array(1 << 19).fill(5)).poll();
  map.close();
  using again = mapFile(path);
  assert.equal(again.view((1 << 19) - 1, 1)[0], 5);
});

// Bug (found by the movers review): a mapping's memcpy, memcpyAsync and
// memcpyManyAsync of a view whose buffer was transferred (or of a closed
// mapping's view) copied 0 bytes and succeeded: a detached view reads as
// empty. The movers refuse such views at the call; so do these now.
moverTest(
  "a mapping's copies refuse a detached source with TypeError (a bad argument, not ClosedError)",
  async (mover) => {
    using map = mapFile(tempPath(), { size: 1 << 16, mover });
    const buffer = new ArrayBuffer(16);
    const src = new Uint8Array(buffer);
    buffer.transfer();
    const closed = (e: unknown) =>
      e instanceof TypeError && !(e instanceof ClosedError);
    assert.throws(() => map.memcpy(0, src), closed);
    assert.throws(() => map.memcpyAsync(0, src), closed);
    assert.throws(
      () => map.memcpyManyAsync([{ offset: 0, data: src }]),
      closed,
    );
    // an empty view that is not detached is still an empty copy
    map.memcpy(0, new Uint8Array(0));
    await map.memcpyAsync(0, new Uint8Array(0));
  },
);

// Bug (found by the CLI review): a pool asked for more than its file
// system's free space was allocated (posix_fallocate) until the file
// system was full, and only then refused: on tmpfs, `create blk` of 9 PB
// filled /dev/shm (20 GB) for about a minute, failing every other writer.
// The free space is asked first.
test("a pool larger than the free space is refused before any of it is allocated", () => {
  const big = 2 ** 44; // 16 TiB
  const refused = (e: unknown) =>
    e instanceof OutOfSpaceError && e.op === "create" &&
    /bytes are free on its file system/.test(e.message);
  assert.throws(
    () => BlockPool.create(tempPath(), { blockSize: 512, poolSize: big }),
    refused,
  );
  assert.throws(() => LogStream.create(tempPath(), { size: big }), refused);
});
