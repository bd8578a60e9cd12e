// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Fourth review of the data movers and the executor: the cache hint of a
 * fill, and a mapping that would map no byte.
 */
import { existsSync, writeFileSync } from "node:fs";
import { mapFile, Mapping, PmemError, Source } from "../mod.ts";
import { assert, tempPath, test } from "./_harness.ts";

// Bug: a mapping whose range holds no byte (offset at the end of the
// source, the length left to "the rest") reached libpmem2, whose mmap of 0
// bytes failed with PmemError -22 "mmap: Invalid argument", which names
// neither the offset nor the size. It is a RangeError before the shim now,
// and mapFile still removes a file it created for it.
test("`Mapping.map()` at an offset equal to the source's size is a RangeError before libpmem2", () => {
  const path = tempPath();
  {
    using src = Source.open(path, { size: 8192 });
    assert.throws(
      () => Mapping.map(src, { offset: 8192 }),
      (e: unknown) =>
        e instanceof RangeError &&
        /Cannot map: offset 8192 is the end of the source \(8192 bytes\)/
          .test(e.message),
    );
    // a range that holds a byte still maps
    using m = Mapping.map(src, { offset: 4096 });
    assert.equal(m.size, 4096);
  }
  const made = tempPath("made");
  assert.throws(() => mapFile(made, { size: 8192, offset: 8192 }), RangeError);
  assert.equal(existsSync(made), false);
  // an empty file stays libpmem2's PMEM2_E_SOURCE_EMPTY (a clear code)
  const empty = tempPath("empty");
  writeFileSync(empty, new Uint8Array(0));
  assert.throws(
    () => mapFile(empty),
    (e: unknown) => e instanceof PmemError && e.code === -100018,
  );
});
