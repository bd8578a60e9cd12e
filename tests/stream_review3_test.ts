// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Found by a third review of the log store, single thread (probes first,
// then these tests).
import { ClosedError } from "../errors/mod.ts";
import { LogStream } from "../stream/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;

test("`append()` through a freed handle whose slot now holds a smaller region is a ClosedError, as `appendAsync()` and `reserve()` give", () => {
  // Bug: the synchronous append checks its handle only under the lock,
  // after the entry's length was checked against the size of whatever
  // region its slot held now: an entry too big for the new region was a
  // RangeError naming that region's size, not the ClosedError of the
  // freed handle.
  using s = LogStream.create(tempPath(), { size: MiB });
  const r = s.allocateRegion(65536);
  s.freeRegion(r);
  const r2 = s.allocateRegion(4096);
  assert.equal(r2.id, r.id);
  const data = new Uint8Array(8000);
  for (
    const [name, f] of [
      ["append", () => s.append(r, data)],
      ["appendAsync", () => s.appendAsync(r, data)],
      ["reserve", () => s.reserve(r, data.length)],
    ] as const
  ) {
    assert.throws(
      f,
      (e) => e instanceof ClosedError && /region 0 \(freed\)/.test(e.message),
      name,
    );
  }
  assert.equal([...s.entries(r2)].length, 0);
  assert.equal(r2.used, 0);
});
