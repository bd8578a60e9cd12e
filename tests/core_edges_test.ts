// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Edges of the core layers (futures, movers, pmem2) found by a review:
 * each test either exposed a bug (named in its comment) or pins a
 * contract no other test held.
 */
import { ClosedError, mapFile, MemFlags, VdmFlags } from "../mod.ts";
import { assert, moverTest, runScript, tempPath, test } from "./_harness.ts";

// ---- flags ----

// Bug: the flag checks tested `flags & ~VALID`, and `&` sees only the low
// 32 bits: 2^32 + 1 passed as DURABLE (the mover then threw
// NotSupportedError "flags 0x0"), and a mapping handed 2^32 + 1 to the
// shim's u32 (Bun truncated it to NODRAIN, Deno's FFI threw its own
// TypeError). Both are unknown bits: a RangeError before any native call.
moverTest("flags beyond 32 bits are unknown flags (RangeError)", (mover) => {
  const dst = new Uint8Array(64);
  const src = new Uint8Array(64);
  for (const flags of [2 ** 32, 2 ** 32 + VdmFlags.DURABLE, 2 ** 40]) {
    assert.throws(() => mover.memcpy(dst, src, flags), RangeError);
    assert.throws(() => mover.memset(dst, 1, flags), RangeError);
    assert.throws(() => mover.flush(dst, flags), RangeError);
    assert.throws(
      () => mover.batch([{ op: "memmove", dst, src, flags }]),
      RangeError,
    );
  }
  assert.equal(mover.supports(2 ** 32 + VdmFlags.DURABLE), false);
});

test("a mapping refuses PMEM2_F_MEM flags beyond 32 bits (RangeError)", () => {
  using map = mapFile(tempPath(), { size: 1 << 16 });
  const src = new Uint8Array(8).fill(1);
  for (const flags of [2 ** 32, 2 ** 32 + MemFlags.NODRAIN]) {
    assert.throws(() => map.memcpy(0, src, flags), RangeError);
    assert.throws(() => map.memmove(0, 8, 8, flags), RangeError);
    assert.throws(() => map.memset(0, 1, 8, flags), RangeError);
    assert.throws(() => map.memcpyAsync(0, src, flags), RangeError);
    assert.throws(() => map.memsetAsync(0, 1, 8, flags), RangeError);
  }
  assert.equal(map.view(0, 1)[0], 0); // nothing was written
});
