// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The block pool as one user in one thread uses it, from a third review:
// each test failed before the fix it names.
import { existsSync } from "node:fs";
import { ClosedError } from "../errors/mod.ts";
import { BlockPool } from "../blk/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";
import { unformatted } from "./blk_fixtures.ts";

const MiB = 1 << 20;

/** Assert that `call` throws a ClosedError of `op`. */
function assertClosed(call: () => unknown, op: string): void {
  assert.throws(call, (e: unknown) => {
    assert.ok(e instanceof ClosedError, `${op}: ${e}`);
    assert.equal(e.op, op);
    return true;
  });
}

test("an argument whose check closes the pool makes write(), check() and info() throw ClosedError", () => {
  // Reading `data.byteLength` (an own getter) or `options.onProgress` runs
  // the caller's code, which may close the pool. The calls went on with
  // the pool closed and failed on its freed shared state with the engine's
  // TypeError about a detached ArrayBuffer, not the ClosedError promised
  // for use after close.
  for (const laidOut of [true, false]) {
    const path = laidOut ? tempPath() : unformatted();
    const open = () =>
      laidOut
        ? BlockPool.create(path, { blockSize: 512, poolSize: 32 * MiB })
        : BlockPool.open(path);
    let pool = open();
    const data = new Uint8Array(512).fill(7);
    Object.defineProperty(data, "byteLength", {
      get() {
        pool.close();
        return 512;
      },
    });
    assertClosed(() => pool.write(2, data), "write");
    const closing = {
      get onProgress() {
        pool.close();
        return undefined;
      },
    };
    pool = BlockPool.open(path);
    assertClosed(() => pool.check(closing), "check");
    pool = BlockPool.open(path);
    assertClosed(() => pool.info(closing), "info");
    // nothing was written, and the pool opens clean
    using after = BlockPool.open(path);
    assert.deepEqual(after.read(2), new Uint8Array(512));
    assert.deepEqual(after.check().problems, []);
  }
});

// Bug: a create or open with a mover that is no Vdm threw its TypeError
// from the mapping, after the file was created and its space allocated
// (and removed again): now before anything native, as the log and object
// stores do.
test("a block pool's create or open with a mover that is no Vdm is a TypeError before any file is made", () => {
  const path = tempPath();
  // (null is no mover: the default one, as in Mapping.map)
  for (const mover of [{}, 5, "cpu"]) {
    assert.throws(
      () =>
        BlockPool.create(path, {
          blockSize: 512,
          poolSize: 32 << 20,
          mover: mover as never,
        }),
      /Cannot create pool: mover must implement Vdm/,
    );
    assert.equal(existsSync(path), false);
  }
  BlockPool.create(path, { blockSize: 512, poolSize: 32 << 20 }).close();
  assert.throws(
    () => BlockPool.open(path, { mover: {} as never }),
    /Cannot open pool: mover must implement Vdm/,
  );
});
