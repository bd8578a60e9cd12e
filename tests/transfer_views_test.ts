// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Zero-copy views a store hands out (a stream entry's data, a
 * reservation's, an object's view) may have their buffer transferred by
 * the program (`postMessage(data, [data.buffer])`, `buffer.transfer()`).
 * That must not break the store: its own views of the mapping are over
 * buffers no view handed out shares. Each test runs with a store that
 * fits one view and one above Bun's 64 MiB windows threshold.
 */
import { LogStream } from "../stream/mod.ts";
import { ObjectPool } from "../obj/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;
/** One view on both runtimes; windows on Bun (see VIEW_WINDOWS). */
const SIZES = [8 * MiB, 80 * MiB];

/** Transfer the buffer of `bytes`; the same bytes, in the new buffer. */
function transfer(bytes: Uint8Array): Uint8Array {
  const { byteOffset, byteLength } = bytes; // (read before: then 0)
  const moved = (bytes.buffer as ArrayBuffer).transfer();
  return new Uint8Array(moved, byteOffset, byteLength);
}

for (const size of SIZES) {
  test(`a log stream of ${size / MiB} MiB whose entry's buffer was transferred goes on working`, async () => {
    const path = tempPath();
    {
      using s = LogStream.create(path, { size });
      const r = s.allocateRegion(2 * MiB);
      s.append(r, Uint8Array.of(1, 2, 3));
      const [first] = [...s.entries(r)];
      const moved = transfer(first.data);
      assert.deepEqual([...moved], [1, 2, 3]); // it went with the data
      s.append(r, Uint8Array.of(4, 5));
      await s.appendAsync(r, Uint8Array.of(6));
      const res = s.reserve(r, 2);
      transfer(res.data); // a reservation's buffer, transferred
      s.cancel(res);
      const again = s.reserve(r, 1);
      again.data.set([7]);
      s.publish(again);
      const seen = [...s.entries(r)].map((e) => [...e.data]);
      assert.deepEqual(seen.slice(0, 3), [[1, 2, 3], [4, 5], [6]]);
      assert.deepEqual(seen.at(-1), [7]);
      s.truncate(r, s.committedTimestamp);
      assert.equal([...s.entries(r)].length, 0);
    }
    using s = LogStream.open(path);
    assert.equal(s.regions().length, 1);
  });

  test(`an object pool of ${size / MiB} MiB whose object's view was transferred goes on working`, () => {
    const path = tempPath();
    {
      using pool = ObjectPool.create(path, { size, layout: "t" });
      const root = pool.root(64);
      const o = pool.tx((tx) => {
        const o = tx.alloc(16);
        tx.write(o, 0, Uint8Array.of(9, 8, 7));
        tx.setU64(root, 0, o.offset);
        return o;
      });
      const moved = transfer(pool.view(o));
      assert.deepEqual([...moved.subarray(0, 3)], [9, 8, 7]);
      pool.tx((tx) => tx.write(o, 3, Uint8Array.of(6)));
      assert.deepEqual([...pool.read(o, 0, 4)], [9, 8, 7, 6]);
      assert.deepEqual([...pool.view(o).subarray(0, 4)], [9, 8, 7, 6]);
      assert.equal(pool.getU64(root, 0), o.offset);
    }
    using pool = ObjectPool.open(path, { layout: "t" });
    assert.equal(pool.getU64(pool.root(64), 0) > 0, true);
  });
}
