// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// A store's file lock held elsewhere for a moment (a child forked by another
// thread keeps the descriptors until its exec) is waited for briefly; one
// held for longer is refused, as libpmemblk refuses a second process.
import { spawn } from "node:child_process";
import { BlockPool, PmemError } from "../mod.ts";
import { assert, tempPath, test } from "./_harness.ts";

/** Hold `path`'s flock in a child for `seconds`; resolves once it holds it. */
function holdLock(path: string, seconds: number) {
  const child = spawn("flock", [
    "-x",
    path,
    "-c",
    `echo locked; sleep ${seconds}`,
  ]);
  const held = new Promise<void>((resolve, reject) => {
    child.stdout.on("data", () => resolve());
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`flock exited ${code}`)));
  });
  const ended = new Promise<void>((resolve) =>
    child.on("exit", () => resolve())
  );
  return { child, held, ended };
}

test("an open waits a moment for a lock held elsewhere, and refuses one held for longer", async () => {
  const path = tempPath();
  BlockPool.create(path, { blockSize: 512, poolSize: 32 << 20 }).close();
  {
    // released 30 ms after it was taken: the open went on at once before
    // and failed with "open in another process"
    const h = holdLock(path, 0.03);
    await h.held;
    using pool = BlockPool.open(path);
    assert.equal(pool.blockSize, 512);
    await h.ended;
  }
  {
    const h = holdLock(path, 5);
    await h.held;
    const t = performance.now();
    try {
      assert.throws(
        () => BlockPool.open(path),
        (e) => e instanceof PmemError && /already open/.test(e.message),
      );
      assert.ok(performance.now() - t >= 90, "refused without waiting");
    } finally {
      h.child.kill();
      await h.ended;
    }
  }
});
