// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Pools at and past 4 GiB: a block pool of exactly 4 GiB failed every
// write on Deno (its one u32 view had `length >>> 2` = 0 words, so the
// flogs read as invalid), and a log stream past 4 GiB lost its entries
// (`offset >>> 2` wrapped); both now use the even windows there.
import { BlockPool } from "../blk/mod.ts";
import { LogStream } from "../stream/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";

const GiB = 2 ** 30;
const MiB = 2 ** 20;

test("a block pool of exactly 4 GiB writes, reads and reopens", () => {
  const path = tempPath();
  {
    using pool = BlockPool.create(path, { blockSize: 4096, poolSize: 4 * GiB });
    pool.write(5, new Uint8Array(4096).fill(7));
    assert.equal(pool.read(5)[4095], 7);
    assert.equal(pool.check().consistent, true);
  }
  using pool = BlockPool.open(path);
  assert.equal(pool.read(5)[0], 7);
});

test("a log stream past 4 GiB keeps entries of regions past 4 GiB", () => {
  const path = tempPath();
  const text = (s: LogStream, k: number) =>
    [...s.entries(s.regions()[k])].map((e) => new TextDecoder().decode(e.data));
  let last: number;
  {
    using s = LogStream.create(path, { size: 4 * GiB + MiB });
    const regions = [];
    while (s.regions().length < 16) {
      try {
        regions.push(s.allocateRegion(256 * MiB));
      } catch {
        break;
      }
    }
    last = regions.length - 1;
    s.append(regions[last], new TextEncoder().encode("past 4 GiB"));
    assert.deepEqual(text(s, last), ["past 4 GiB"]);
  }
  using s = LogStream.open(path);
  assert.deepEqual(text(s, last), ["past 4 GiB"]);
});
