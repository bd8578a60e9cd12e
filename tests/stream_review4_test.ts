// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Found by a fourth review of the log store (probes first, then these
// tests), and a fifth (close after an ended Worker, never-polled appends
// and freeRegion, cancelled reservations' room, detached sources).
import { ClosedError, PmemError } from "../errors/mod.ts";
import { BlockPool } from "../blk/mod.ts";
import { mapFile } from "../mod.ts";
import { ObjectPool, PersistentMap } from "../obj/mod.ts";
import { LogStream, PmemLog } from "../stream/mod.ts";
import { ThreadMover } from "../mover/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;

test("`appendAsync()` of a stale view overlapping the entry's own place, across a view window's end, stores the bytes the view held", async () => {
  // Bug: on Bun a stream over 64 MiB is stored through windows, and a
  // mover copies an entry across a window's end as one piece per window;
  // pieces run as separate copies, in any order or at once, so with data
  // that is a view of the mapping overlapping the entry's own place (an
  // entries() view kept across a truncate()) one piece overwrote bytes
  // another still had to read: the entry held wrong bytes from the
  // window's end on.
  using mover = new ThreadMover();
  using s = LogStream.create(tempPath(), { size: 128 * MiB, mover });
  const r = s.allocateRegion(120 * MiB);
  const lead = 2 * MiB - 16 - 8192 - 1000; // next entry spans 2 MiB
  const len = 3 * MiB;
  for (const shift of [1, -1, 4099, -4099]) {
    s.append(r, new Uint8Array(lead));
    const base = new Uint8Array(len + 16384);
    for (let i = 0; i < base.length; i++) base[i] = (i * 31 + (i >> 8)) & 255;
    s.append(r, base);
    const old = [...s.entries(r)].at(-1)!;
    s.truncate(r, old.timestamp + 1); // drop both: their place is reused
    s.append(r, new Uint8Array(lead));
    const src = old.data.subarray(8192 + shift, 8192 + shift + len);
    const want = base.slice(8192 + shift, 8192 + shift + len);
    await s.appendAsync(r, src);
    const got = [...s.entries(r)].at(-1)!.data;
    assert.equal(got.byteOffset, old.data.byteOffset, "the same place");
    assert.equal(got.length, len);
    let diff = -1;
    for (let i = 0; i < len; i++) {
      if (got[i] !== want[i]) {
        diff = i;
        break;
      }
    }
    assert.equal(diff, -1, `shift ${shift}: first wrong byte`);
    s.truncate(r, s.committedTimestamp + 1);
  }
});

test("`freeRegion()` reclaims the timestamps of `appendAsync()` futures never polled (dropped ones held it with EBUSY for good)", async () => {
  // Bug: appendAsync reserves its timestamp when it is called (its place
  // in the log's order, `f.timestamp`), and a future dropped without a
  // poll kept it reserved: freeRegion failed with EBUSY for good. A free
  // now fails this isolate's appends to the region whose copy has not
  // started (ClosedError, as an append made after the free) and commits
  // their timestamps as padding.
  using s = LogStream.create(tempPath(), { size: 4 * MiB });
  const r = s.allocateRegion(64 << 10);
  const other = s.allocateRegion(64 << 10);
  s.append(r, new Uint8Array(8).fill(1));
  s.appendAsync(r, new Uint8Array(8).fill(2)); // dropped, never polled
  const kept = s.appendAsync(r, new Uint8Array(8).fill(3)); // not polled
  const later = s.appendAsync(other, new Uint8Array(8).fill(4));
  s.freeRegion(r);
  assert.deepEqual(s.regions().map((x) => x.id), [other.id]);
  await assert.rejects(() => kept, ClosedError);
  assert.equal(await later, later.timestamp, "an append behind them commits");
  s.append(other, new Uint8Array(8).fill(5));
  assert.deepEqual([...s.entries(other)].map((e) => e.data[0]), [4, 5]);
  assert.equal(s.persistedTimestamp, s.committedTimestamp);

  // an append whose copy started is waited for, not reclaimed
  const r2 = s.allocateRegion(64 << 10);
  using mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
  using t = LogStream.open(s.path, { mover });
  const t2 = t.regions().find((x) => x.id === r2.id)!;
  const started = t.appendAsync(t2, new Uint8Array(4096));
  started.poll();
  started.poll();
  let busy: unknown;
  try {
    s.freeRegion(r2);
  } catch (e) {
    busy = e;
  }
  await started;
  if (busy !== undefined) {
    assert.ok(busy instanceof PmemError && busy.code === -16, String(busy));
    s.freeRegion(r2);
  }
  assert.deepEqual(s.regions().map((x) => x.id), [other.id]);
});

test("`cancel()` of a region's last reservation gives its room back (but an entry header), also after a reopen", () => {
  // Bug: a cancelled reservation was committed as padding as long as the
  // entry it reserved, so reserve-then-cancel cycles filled a region
  // until a truncate: here the 9th cycle of 8 KiB failed with
  // OutOfSpaceError in a 64 KiB region.
  const path = tempPath();
  {
    using s = LogStream.create(path, { size: 4 * MiB });
    const r = s.allocateRegion(64 << 10);
    s.append(r, new Uint8Array(8).fill(1));
    for (let i = 0; i < 100; i++) {
      const res = s.reserve(r, 8192);
      res.data.fill(0xee);
      s.cancel(res);
    }
    const big = new Uint8Array(56 << 10).fill(2);
    const ts = s.append(r, big);
    assert.equal(ts, 102, "the cancelled timestamps are padding: no gap");
    // not the last: the padding keeps its room, and the next entry follows
    const a = s.reserve(r, 64);
    const b = s.reserve(r, 64);
    s.cancel(a);
    b.data.fill(3);
    s.publish(b);
    const seen = [...s.entries(r)].map((e) => [e.timestamp, e.data.length]);
    assert.deepEqual(seen, [[1, 8], [102, 56 << 10], [104, 64]]);
  }
  using t = LogStream.open(path);
  const [r] = t.regions();
  const seen = [...t.entries(r)].map((e) => [e.timestamp, e.data[0]]);
  assert.deepEqual(seen, [[1, 1], [102, 2], [104, 3]]);
});

test("a detached source at the call is a bad argument at every entry point that takes one: TypeError (RangeError where the length is fixed), never ClosedError", async () => {
  // Bug: the stream and libpmemlog refused a detached array with a
  // TypeError, but a mapping's copies, the movers, the object store's
  // tx.write and a map's set refused it with ClosedError, which the
  // library throws for its own closed stores and mappings. One check
  // (`checkAttached`) now throws the TypeError. A block store's write
  // takes exactly one block, so a detached (0-byte) one is a RangeError
  // there, sync and async alike.
  const detached = () => {
    const a = new Uint8Array(4096);
    structuredClone(a.buffer, { transfer: [a.buffer] });
    return a;
  };
  const bad = (kind: typeof TypeError) => (e: unknown) =>
    e instanceof kind && !(e instanceof ClosedError) &&
    /detach|0 bytes/.test((e as Error).message);
  const typeErr = bad(TypeError);
  using mover = new ThreadMover({ threads: 1 });
  using map = mapFile(tempPath(), { size: 1 << 20, mover });
  assert.throws(() => map.memcpy(0, detached()), typeErr);
  assert.throws(() => map.memcpyAsync(0, detached()), typeErr);
  assert.throws(
    () => map.memcpyManyAsync([{ offset: 0, data: detached() }]),
    typeErr,
  );
  assert.throws(() => mover.memcpy(new Uint8Array(8), detached()), typeErr);
  assert.throws(() => mover.memmove(new Uint8Array(8), detached()), typeErr);
  using pool = BlockPool.create(tempPath(), {
    blockSize: 4096,
    poolSize: 32 * MiB,
    mover,
  });
  const rangeErr = bad(RangeError);
  assert.throws(() => pool.write(0, detached()), rangeErr);
  assert.throws(() => pool.writeAsync(0, detached()), rangeErr);
  assert.throws(() => pool.writeMany([{ lba: 0, data: detached() }]), rangeErr);
  // and the RangeError says why the array is empty
  assert.throws(() => pool.writeAsync(0, detached()), /0 bytes \(detached/);
  using s = LogStream.create(tempPath(), { size: 4 * MiB, mover });
  const r = s.allocateRegion(MiB);
  assert.throws(() => s.append(r, detached()), typeErr);
  assert.throws(() => s.appendAsync(r, detached()), typeErr);
  using log = PmemLog.create(tempPath(), { poolSize: 4 * MiB, mover });
  assert.throws(() => log.append(detached()), typeErr);
  assert.throws(() => log.appendAsync(detached()), typeErr);
  using objects = ObjectPool.create(tempPath(), {
    size: 16 * MiB,
    layout: "d",
    mover,
  });
  const root = objects.root(4096);
  assert.throws(
    () => objects.tx((tx) => tx.write(root, 0, detached())),
    typeErr,
  );
  await assert.rejects(
    async () => await objects.txAsync((tx) => tx.write(root, 0, detached())),
    typeErr,
  );
  using m = PersistentMap.open(objects, "m");
  assert.throws(() => m.set("k", detached()), typeErr);
  assert.throws(() => m.setAsync("k", detached()), typeErr);
  assert.throws(() => m.set(detached(), "v"), typeErr);
  // a closed mapping is still a ClosedError
  map.close();
  assert.throws(() => map.memcpyAsync(0, new Uint8Array(8)), ClosedError);
});
