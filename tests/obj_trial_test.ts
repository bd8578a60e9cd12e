// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The durable map's errors as a new user meets them: a full pool's
// OutOfSpaceError names the map's call, not the allocation inside it.
import { OutOfSpaceError } from "../errors/mod.ts";
import { ObjectPool, PersistentMap } from "../obj/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";

test("a map operation on a full pool fails with an OutOfSpaceError naming the operation, and changes nothing", async () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 << 20, layout: "t" });
  using m = PersistentMap.open(pool, "m");
  m.set("kept", "1");
  const big = new Uint8Array(7 << 20);
  const named = (op: string) => (e: unknown) =>
    e instanceof OutOfSpaceError && e.op === op && e.code === -28 &&
    e.message.startsWith(`${op}: `);
  // they said op "alloc" ("alloc: the pool has no 29 contiguous free
  // chunks"), a call the map's user never made
  assert.throws(() => m.set("big", big), named("set"));
  await assert.rejects(
    async () => await m.setAsync("big", big),
    named("setAsync"),
  );
  await assert.rejects(
    async () =>
      await m.setAsync("big", big, { signal: new AbortController().signal }),
    named("setAsync"),
  );
  await assert.rejects(
    async () => await m.batch([{ set: ["a", "2"] }, { set: ["big", big] }]),
    named("batch"),
  );
  await assert.rejects(
    async () =>
      await m.batch([{ set: ["a", "2"] }, { set: ["big", big] }], {
        signal: new AbortController().signal,
      }),
    named("batch"),
  );
  assert.deepEqual([...m.entries()], [["kept", "1"]]);
  // inside the caller's own transaction too (it joins it)
  assert.throws(() => pool.tx(() => m.set("big", big)), named("set"));
  assert.deepEqual([...m.entries()], [["kept", "1"]]);
});

// Bug: inside a transaction's callback the map's reads saw only completed
// operations, not the transaction's own sets and deletes (nor those of
// the transactions staged before it), though reads in a transaction see
// them everywhere else: a read-modify-write of one key done twice in one
// `pool.tx` lost the first update (a counter bumped three times read 1).
test("inside a transaction the map's reads see what it and the transactions staged before it set and deleted", async () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 << 20, layout: "t" });
  using m = PersistentMap.open(pool, "m");
  m.set("count", "0");
  m.set("gone", "x");
  const bin = Uint8Array.of(1, 2, 3);
  const earlier = m.setAsync("early", "staged"); // staged, not applied
  const seen = pool.tx(() => {
    for (let i = 0; i < 3; i++) {
      m.set("count", String(Number(m.get("count")) + 1));
    }
    m.set(bin, Uint8Array.of(9));
    m.set("big", "v".repeat(100_000)); // a node too large for the log's copy
    const deleted = m.delete("gone");
    return {
      count: m.get("count"),
      bin: m.get(bin),
      big: (m.get("big") as string | undefined)?.length,
      early: m.get("early"),
      gone: m.has("gone"),
      deleted,
      size: m.size,
      keys: [...m.keys()].map(String).sort(),
    };
  });
  await earlier;
  assert.deepEqual(seen, {
    count: "3",
    bin: Uint8Array.of(9),
    big: 100_000,
    early: "staged",
    gone: false,
    deleted: true,
    size: 4,
    keys: ["1,2,3", "big", "count", "early"].sort(),
  });
  assert.equal(m.get("count"), "3");
  assert.equal(m.size, 4);
  // outside a transaction, an operation not yet completed stays unseen
  const later = m.setAsync("later", "1");
  assert.equal(m.has("later"), false);
  assert.equal(m.size, 4);
  await later;
  // an aborted transaction's reads saw its writes; afterwards nothing
  assert.throws(() =>
    pool.tx(() => {
      m.delete("count");
      m.set("new", "1");
      assert.equal(m.size, 5);
      assert.equal(m.has("count"), false);
      throw new Error("abort");
    }), /abort/);
  assert.equal(m.size, 5);
  assert.equal(m.get("count"), "3");
  assert.equal(m.has("new"), false);
  pool.tx(() => assert.equal(m.size, 5));
});

// Bug: the pool's internal hooks were public methods of the exported
// Transaction (documented "Internal", listed by `deno doc`): a user's
// `tx.writeState(0, new Uint8Array(64))` wiped the pool header (the next
// open: "not an object pool"), `tx.freeInternal` freed a map's node and
// `tx.beginInternalWrites()` let `tx.write` reach a map's structure.
test("a Transaction has only its public methods: the pool's internal hooks are not reachable from it", () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 << 20, layout: "t" });
  const members = pool.tx((tx) =>
    Reflect.ownKeys(Object.getPrototypeOf(tx)).map(String).sort()
  );
  assert.deepEqual(members, [
    "alloc",
    "constructor",
    "free",
    "getBigU64",
    "getU32",
    "getU64",
    "object",
    "read",
    "setU32",
    "setU64",
    "write",
  ]);
});
