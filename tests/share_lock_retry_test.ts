// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// A store's file lock held elsewhere for a moment (a child forked by another
// thread keeps the descriptors until its exec) is waited for briefly; one
// held for longer is refused, as libpmemblk refuses a second process.
import { spawn } from "node:child_process";
import { readlinkSync } from "node:fs";
import { BlockPool, PmemError } from "../mod.ts";
import { assert, tempPath, test } from "./_harness.ts";
import { ask, startWorker } from "./workers/jobs.ts";

const HOLDER = new URL("./workers/release_worker.ts", import.meta.url).href;

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
    // held when the open begins, released once the open waits for it:
    // the open went on at once before and failed with "open in another
    // process". Not a child that lets go after 30 ms: on a loaded machine
    // its hold outlasted the open's 100 ms wait (the child not run in
    // time), or ended before the open began. A Worker holds it on a
    // descriptor of its own and lets go once this thread sleeps in the
    // open's wait.
    const words = new Int32Array(new SharedArrayBuffer(8));
    const w = await startWorker(HOLDER);
    try {
      const released = ask(w, {
        path,
        thread: readlinkSync("/proc/thread-self"), // this one
        words: words.buffer,
      });
      // (a Worker that failed ends the wait too, and its error the test)
      let answered = false;
      released.then(() => answered = true, () => answered = true);
      while (!answered && Atomics.load(words, 1) === 0) {
        await new Promise((r) => setTimeout(r, 1));
      }
      Atomics.store(words, 0, 1);
      Atomics.notify(words, 0);
      using pool = BlockPool.open(path);
      assert.equal(pool.blockSize, 512);
      await released;
    } finally {
      Atomics.store(words, 0, 2);
      w.terminate();
    }
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
