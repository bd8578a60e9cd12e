// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The object store under a second review: each test is the probe that
// found a bug (red before its fix on at least one runtime), kept as a
// regression test.
import { ClosedError } from "../errors/mod.ts";
import { ThreadMover } from "../mover/mod.ts";
import {
  CorruptPoolError,
  ObjectPool,
  PersistentMap,
  StaleObjectError,
  type Transaction,
} from "../obj/mod.ts";
import { assert, patch, peek, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;
/** File offset of catalog slot `i` (the state page's catalog). */
const catalogSlot = (i: number) => 4096 + 128 + 128 * i;

// Two catalog slots that point at one descriptor (a damaged state page)
// were opened as two maps over the same objects: a set through one freed
// the node the other's index still pointed at, and the other's `get` then
// read another node's bytes as its value (garbage, no error). The open
// checked each slot alone; it now refuses a descriptor (or a name) that
// two slots share.
test("two catalog slots naming one map object are a CorruptPoolError naming the second slot", () => {
  const path = tempPath();
  {
    using pool = ObjectPool.create(path, { size: 8 * MiB, layout: "kv" });
    using a = PersistentMap.open(pool, "a");
    a.set("k", "value");
    PersistentMap.open(pool, "b").close();
    PersistentMap.open(pool, "c").close();
  }
  const slot0 = peek(path, catalogSlot(0), 128);
  const slot2 = peek(path, catalogSlot(2), 128);
  // slot 2 ("c") points at slot 0's descriptor
  patch(path, catalogSlot(2) + 112, slot0.subarray(112, 120));
  assert.throws(
    () => ObjectPool.open(path, { layout: "kv" }),
    (e) =>
      e instanceof CorruptPoolError && e.structure === "catalog slot 2" &&
      /catalog slot 0/.test(e.message),
  );
  // slot 2 named like slot 1, at its own descriptor
  patch(path, catalogSlot(2), peek(path, catalogSlot(1), 112));
  patch(path, catalogSlot(2) + 112, slot2.subarray(112, 120));
  assert.throws(
    () => ObjectPool.open(path, { layout: "kv" }),
    (e) =>
      e instanceof CorruptPoolError && e.structure === "catalog slot 2" &&
      /"b"/.test(e.message),
  );
  // whole again: it opens
  patch(path, catalogSlot(2), slot2);
  using pool = ObjectPool.open(path, { layout: "kv" });
  using a = PersistentMap.open(pool, "a");
  assert.equal(a.get("k"), "value");
});

// A directory pointer that leads to a leaf another pointer leads to (a
// damaged directory) made two slot ranges one: with the leaf empty, the
// map opened, and sets of new keys in either range overwrote each
// other's slots (a node lost at the next open, its key gone). The load
// only checked each leaf's type; it now refuses a leaf or directory
// reached twice.
test("a map whose directory leads to one leaf twice is a CorruptPoolError naming the second", () => {
  const path = tempPath();
  {
    using pool = ObjectPool.create(path, { size: 16 * MiB, layout: "kv" });
    using m = PersistentMap.open(pool, "m");
    // 3 leaves of 508 slots: the first full, the others emptied
    pool.tx(() => {
      for (let i = 0; i < 1017; i++) m.set(`k${i}`, "v");
    });
    pool.tx(() => {
      for (let i = 508; i < 1017; i++) m.delete(`k${i}`);
    });
  }
  const u64 = (at: number) =>
    Number(new DataView(peek(path, at, 8).buffer).getBigUint64(0, true));
  const dir = u64(u64(catalogSlot(0) + 112) + 16);
  // the directory's third pointer leads to the second leaf
  patch(path, dir + 16, peek(path, dir + 8, 8));
  using pool = ObjectPool.open(path, { layout: "kv" });
  assert.throws(
    () => PersistentMap.open(pool, "m"),
    (e) =>
      e instanceof CorruptPoolError && e.structure === `the map "m": leaf 2` &&
      /leaf 1/.test(e.message),
  );
});

// A string key or value that began with U+FEFF (a byte order mark) lost
// it when read back: TextDecoder's default drops a leading BOM, so `get`
// gave the value without it, `keys()` the key without it, and at the next
// open the key was indexed without it: another key, and with the same
// key also set without the BOM, a map that no longer opened ("its key is
// in another slot too"). The map decodes with `ignoreBOM` now.
test("string keys and values that begin with U+FEFF read back whole, before and after a reopen", () => {
  const path = tempPath();
  const entries = [["\uFEFFk", "\uFEFFv"], ["k", "plain"], [
    "\uFEFF",
    "\uFEFF",
  ]];
  {
    using pool = ObjectPool.create(path, { size: 8 * MiB, layout: "kv" });
    using m = PersistentMap.open(pool, "m");
    for (const [k, v] of entries) m.set(k, v);
    assert.equal(m.get("\uFEFFk"), "\uFEFFv");
    assert.deepEqual([...m.entries()].sort(), [...entries].sort());
  }
  using pool = ObjectPool.open(path, { layout: "kv" });
  using m = PersistentMap.open(pool, "m");
  assert.deepEqual([...m.entries()].sort(), [...entries].sort());
  assert.equal(m.get("\uFEFFk"), "\uFEFFv");
  assert.equal(m.get("k"), "plain");
});

// A layout or map name that began with U+FEFF lost it when read from the
// pool (TextDecoder's default drops a leading BOM): a pool created with
// such a layout never opened again (a LayoutMismatchError against its
// own layout), and such a map was read back as another name, so opening
// it by its name made a new, empty map.
test("a layout and a map name that begin with U+FEFF are kept: the pool and the map open again", () => {
  const path = tempPath();
  {
    using pool = ObjectPool.create(path, {
      size: 8 * MiB,
      layout: "\uFEFFapp",
    });
    using m = PersistentMap.open(pool, "\uFEFFm");
    m.set("a", "1");
  }
  using pool = ObjectPool.open(path, { layout: "\uFEFFapp" });
  assert.equal(pool.layout, "\uFEFFapp");
  using m = PersistentMap.open(pool, "\uFEFFm");
  assert.equal(m.get("a"), "1");
  using other = PersistentMap.open(pool, "m");
  assert.equal(other.size, 0);
});

// A group of asynchronous transactions is applied partly by a mover batch
// (its long copies and fills) and partly on the thread (its short
// entries, at once). Between the batch's start and its end, reads outside
// a transaction saw the group half applied: a transaction's 32-byte write
// done and its 1 MiB write not (or in part), an object it freed already
// stale, a pointer it set already leading to an object whose data was
// still being copied. Such a read now waits for the batch in flight: it
// sees the group whole (applied), never a part of it.
test("reads outside a transaction never see a group of `txAsync` half applied by its mover batch", async () => {
  // a batch of many small transfers on two threads: in flight for a while
  using mover = new ThreadMover({
    threads: 2,
    inlineThreshold: 0,
    maxTransfer: 4096,
    queueSize: 4,
  });
  using pool = ObjectPool.create(tempPath(), {
    size: 32 * MiB,
    layout: "a",
    logSize: 8 * MiB,
    mover,
  });
  const big = MiB;
  const o = pool.tx((tx) => tx.alloc(64 + big));
  let inFlight = 0;
  for (let r = 1; r <= 5; r++) {
    const x = pool.tx((tx) => tx.alloc(100));
    const f = pool.txAsync((tx) => {
      tx.write(o, 0, new Uint8Array(32).fill(r)); // short: on the thread
      tx.write(o, 64, new Uint8Array(big).fill(r)); // long: by the mover
      tx.free(x);
    });
    if (f.poll() !== "complete") inFlight++;
    // all of it or none of it
    const head = pool.read(o, 0, 1)[0];
    const tail = pool.read(o, 64 + big - 1, 1)[0];
    assert.equal(tail, head, `round ${r}: the long write and the short one`);
    assert.ok(
      pool.read(o, 64, big).every((b) => b === head),
      `round ${r}: the long write whole`,
    );
    if (head === r) {
      assert.throws(() => pool.read(x), StaleObjectError);
    } else assert.equal(pool.read(x).length, 100);
    await f;
  }
  // the test means something only if a batch was caught in flight
  assert.ok(inFlight > 0, "no batch was in flight after its first poll");
});

// A `pool.tx` whose callback returns a promise (an async function) is
// refused, with nothing committed, because the part after its first
// `await` would run after the commit. Nested in another transaction's
// callback, the check was skipped: the outer transaction committed what
// the async callback staged before its `await`, and what it did after
// failed on its own (a closed transaction): half a transaction durable.
// A nested callback's promise now dooms the outer transaction too.
test("a nested `pool.tx` whose callback returns a promise is a TypeError and dooms the outer transaction, as at the top level", async () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "a" });
  const root = pool.root(64);
  let late: unknown;
  const nested = async (tx: Transaction) => {
    tx.setU64(root, 0, 1);
    await null;
    try {
      tx.setU64(root, 8, 2);
    } catch (e) {
      late = e;
    }
  };
  assert.throws(
    () =>
      pool.tx(() => {
        pool.tx(nested);
      }),
    (e) => e instanceof TypeError && /promise/.test(e.message),
  );
  await pool.txAsync(() => {
    pool.tx(nested);
  }).then(
    () => assert.fail("the asynchronous transaction committed"),
    (e) => assert.ok(e instanceof TypeError && /promise/.test(e.message)),
  );
  await new Promise((r) => setTimeout(r, 0));
  assert.ok(late instanceof ClosedError);
  assert.equal(pool.getU64(root, 0), 0);
  assert.equal(pool.getU64(root, 8), 0);
  // the top level, for comparison
  assert.throws(() => pool.tx(nested), TypeError);
  assert.equal(pool.getU64(root, 0), 0);
});

// A catalog slot's kind word was read and never checked: a slot of any
// kind (damage, or a later version's kind of object) opened as a map,
// and the next set wrote through it. A kind other than a map's is now a
// CorruptPoolError naming the slot.
test("a catalog slot whose kind is not a map's is a CorruptPoolError naming the slot", () => {
  const path = tempPath();
  {
    using pool = ObjectPool.create(path, { size: 8 * MiB, layout: "kv" });
    using a = PersistentMap.open(pool, "a");
    a.set("k", "value");
    PersistentMap.open(pool, "b").close();
  }
  const kindAt = catalogSlot(1) + 120;
  const kind = peek(path, kindAt, 4);
  assert.deepEqual([...kind], [1, 0, 0, 0], "a map's kind is 1");
  for (const bad of [0, 2, 0xffffffff]) {
    patch(path, kindAt, new Uint8Array(new Uint32Array([bad]).buffer));
    assert.throws(
      () => ObjectPool.open(path, { layout: "kv" }),
      (e) =>
        e instanceof CorruptPoolError && e.structure === "catalog slot 1" &&
        new RegExp(`kind ${bad} `).test(e.message),
      `kind ${bad}`,
    );
  }
  patch(path, kindAt, kind);
  using pool = ObjectPool.open(path, { layout: "kv" });
  using a = PersistentMap.open(pool, "a");
  assert.equal(a.get("k"), "value");
});

// A map's methods after its pool closed threw ClosedError naming "use"
// (the pool's engine was asked for by a generic name), not the method
// the caller made; PersistentMap.open of a closed pool too.
test("a map used after its pool closed throws ClosedError naming the method", () => {
  const pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "kv" });
  const m = PersistentMap.open(pool, "m");
  m.set("k", "v");
  pool.close();
  const cases: [string, () => unknown][] = [
    ["get", () => m.get("k")],
    ["set", () => m.set("k", "w")],
    ["has", () => m.has("k")],
    ["size", () => m.size],
    ["open", () => PersistentMap.open(pool, "m")],
  ];
  for (const [op, call] of cases) {
    assert.throws(
      call,
      (e) => e instanceof ClosedError && e.op === op,
      op,
    );
  }
  m.close();
});

// Found by the object store review: pool.object(offset) hands out handles
// to a map's own objects (descriptor, directories, leaves, nodes), and a
// transaction's write, setU64 and setU32 took them, so a stray write broke
// the map (only free refused). They are refused now; the root, also the
// pool's type, stays the user's.
test("a transaction refuses writes to a map's own objects, and keeps writing the root", () => {
  const path = tempPath();
  using pool = ObjectPool.create(path, { size: 8 * MiB, layout: "kv" });
  const root = pool.root(64);
  using m = PersistentMap.open(pool, "m");
  m.set("k", "value");
  const desc = pool.object(
    Number(new DataView(peek(path, catalogSlot(0) + 112, 8).buffer)
      .getBigUint64(0, true)),
  );
  const refused = (e: unknown) =>
    e instanceof TypeError && /belongs to the pool/.test(e.message);
  for (
    const [op, f] of [
      ["write", (tx: Transaction) => tx.write(desc, 8, new Uint8Array(8))],
      ["setU64", (tx: Transaction) => tx.setU64(desc, 8, 1)],
      ["setU32", (tx: Transaction) => tx.setU32(desc, 0, 0)],
    ] as const
  ) {
    assert.throws(() => pool.tx(f), refused, op);
  }
  pool.tx((tx) => tx.setU64(root, 0, 7));
  assert.equal(pool.getU64(root, 0), 7);
  m.set("k2", "v2"); // the map's own writes go on
  assert.deepEqual([m.get("k"), m.get("k2")], ["value", "v2"]);
});
