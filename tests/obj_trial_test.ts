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
