// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// PersistentMap under review: each test is the probe that found a bug
// (red before its fix on at least one runtime), kept as a regression
// test.
import { ClosedError } from "../errors/mod.ts";
import { ObjectPool, PersistentMap } from "../obj/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;

/** A Uint8Array whose buffer was transferred away (it reads as empty). */
function detached(): Uint8Array {
  const u = Uint8Array.of(1, 2, 3);
  structuredClone(u.buffer, { transfer: [u.buffer] });
  return u;
}

// A detached array reads as empty: as a key it was the empty bytes key,
// so `get`, `has` and `delete` of a view of a closed pool answered for
// (and deleted) the empty key's entry, and `set` overwrote it; as a value
// it failed with the engine's own TypeError from deep in the staging.
// Both are refused at the call, as the mover and the mappings refuse a
// detached array (ClosedError), and nothing changes.
test("a detached key or value is refused with ClosedError and the empty key's entry is untouched", () => {
  using pool = ObjectPool.create(tempPath(), { size: 16 * MiB, layout: "kv" });
  using m = PersistentMap.open(pool, "m");
  m.set(new Uint8Array(0), "empty key");
  m.set("k", "v");
  const closedView = (() => {
    using other = ObjectPool.create(tempPath("other"), {
      size: 8 * MiB,
      layout: "kv",
    });
    return other.view(other.root(8));
  })();
  for (const key of [detached(), closedView]) {
    assert.throws(() => m.get(key), ClosedError);
    assert.throws(() => m.has(key), ClosedError);
    assert.throws(() => m.delete(key), ClosedError);
    assert.throws(() => m.set(key, "x"), ClosedError);
    assert.throws(() => m.setAsync(key, "x"), ClosedError);
    assert.throws(() => m.deleteAsync(key), ClosedError);
    assert.throws(() => m.batch([{ delete: key }]), ClosedError);
    assert.throws(() => m.set("k", key), ClosedError);
    assert.throws(() => m.setAsync("k", key), ClosedError);
    assert.throws(() => m.batch([{ set: ["k", key] }]), ClosedError);
  }
  assert.equal(m.size, 2);
  assert.equal(m.get(new Uint8Array(0)), "empty key");
  assert.equal(m.get("k"), "v");
  // an empty array that is not detached is the empty key still
  assert.equal(m.delete(new Uint8Array(new ArrayBuffer(4), 4)), true);
  assert.equal(m.size, 1);
});
