// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// FileLock, the exclusive lock of a libpmemlog log and of an object pool:
// it excludes every other open, in this process and in others, and it
// ends with the thread that took it. Each scenario runs in a child
// process, so a lock that never lets go fails the test instead of the
// runner.
import { assert, runScript, tempDir, test } from "./_harness.ts";

// Bug: PmemLog and ObjectPool held a FileLock, an flock on a descriptor of
// their own. A Worker terminated before it closed one left the descriptor
// open, and the file locked until the process exited: every later open
// in the process failed with EAGAIN. A FileLock now lives in the file's
// process-wide share, whose opens end with their thread.
test(
  "a log or an object pool that a terminated Worker had open opens again in the process",
  () => {
    const r = runScript(
      `
    import { writeFileSync } from "node:fs";
    import { PmemLog } from "@root/stream/mod.ts";
    import { ObjectPool } from "@root/obj/mod.ts";
    import { FileLock } from "@root/pmem2/file_lock.ts";
    import { ask, startWorker } from "@root/tests/workers/jobs.ts";
    const dir = ${JSON.stringify(tempDir())};
    const code = (f) => {
      try { f(); return 0; } catch (e) { return e.code ?? String(e); }
    };
    const opens = {
      log: (p) => PmemLog.open(p),
      obj: (p) => ObjectPool.open(p, { layout: "app" }),
      lock: (p) => FileLock.acquire(p),
    };
    const reopen = (kind, path) => code(() => opens[kind](path)[Symbol.dispose]());
    PmemLog.create(dir + "/log", { poolSize: 2 << 20 }).close();
    ObjectPool.create(dir + "/obj", { size: 8 << 20, layout: "app" }).close();
    writeFileSync(dir + "/lock", "x");
    for (const kind of ["log", "obj", "lock"]) {
      const path = dir + "/" + kind;
      const w = await startWorker("@root/tests/workers/lock_worker.ts");
      await ask(w, { kind, path });
      const held = reopen(kind, path);
      w.terminate();
      const t0 = performance.now();
      let after = held;
      while (after !== 0 && performance.now() - t0 < 10000) {
        await new Promise((r) => setTimeout(r, 10));
        after = reopen(kind, path);
      }
      let data = "";
      if (kind === "log") {
        using log = PmemLog.open(path);
        log.walk(0, (c) => { data = Array.from(c).join(","); return true; });
      }
      console.log([kind, held, after, data].join(" ").trim());
    }
  `,
      60_000,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout.trim(),
      ["log -11 0 7,7", "obj -11 0", "lock -11 0"].join("\n"),
      r.stderr,
    );
  },
  { timeout: 90_000 },
);
