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

// Bug: a Worker terminated with appends copying on its ThreadMover left the
// mover's engine threads running for good, and the log's lock went with
// the Worker's thread while they still copied: copies queued before the
// end could land under the next opener's appends (the PmemLog review saw
// a 100 MiB append of the next opener zeroed in places). A device now
// ends with the thread that opened it, before that thread's locks go.
test(
  "a Worker terminated with copies queued on its ThreadMover stops the mover's engines before its log's lock goes",
  () => {
    const r = runScript(
      `
    import { readdirSync, readFileSync, writeFileSync } from "node:fs";
    import { PmemLog } from "@root/stream/mod.ts";
    import { ask, startWorker } from "@root/tests/workers/jobs.ts";
    const dir = ${JSON.stringify(tempDir())};
    const engines = () => readdirSync("/proc/self/task").filter((t) => {
      try {
        return readFileSync("/proc/self/task/" + t + "/comm", "utf8") === "ap-engine\\n";
      } catch { return false; }
    }).length;
    const path = dir + "/log";
    const srcSize = 32 << 20;
    PmemLog.create(path, { poolSize: 96 << 20 }).close();
    writeFileSync(dir + "/src", new Uint8Array(srcSize).fill(0xee));
    const before = engines();
    const w = await startWorker("@root/tests/workers/lock_worker.ts");
    await ask(w, { kind: "mover", path, src: dir + "/src", srcSize });
    // each engine names itself when it first runs
    let during = engines();
    for (let i = 0; i < 500 && during < 2; i++) {
      await new Promise((r) => setTimeout(r, 5));
      during = engines();
    }
    w.terminate();
    let log;
    const t0 = performance.now();
    while (log === undefined && performance.now() - t0 < 10000) {
      try { log = PmemLog.open(path); }
      catch { await new Promise((r) => setTimeout(r, 2)); }
    }
    const atReopen = engines();
    // what the next opener writes stays (no late copy lands over it)
    const mine = new Uint8Array(8 << 20).fill(0x11);
    const at = log.tell();
    log.append(mine);
    await new Promise((r) => setTimeout(r, 300));
    let tail = 0;
    log.walk(0, (c) => { tail = c.subarray(at - 0).every((b) => b === 0x11) ? 1 : 0; return true; });
    log.close();
    console.log(before, during, atReopen, at, tail);
  `,
      60_000,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "0 2 0 0 1", r.stderr);
  },
  { timeout: 90_000 },
);

// Bug: an open of a log stream that found every slot of the file's share
// taken (1024 opens in the process, those ended with their Workers never
// given back) stored token 1 in the lock words it held and the ring slots
// it reserved. When the open with slot 1 had ended with its Worker, every
// other open took such a holder for ended: a lock it held for a dead one
// (EOWNERDEAD), a reservation it held for one to void. It now stores a
// number apart from every share token, as the block store's opens do.
test(
  "a log stream open that gets no share slot is never taken for an ended one",
  () => {
    const r = runScript(
      `
    import { writeFileSync } from "node:fs";
    import { FileShare } from "@root/pmem2/file_share.ts";
    import { SharedState } from "@root/stream/shared.ts";
    import { ask, startWorker } from "@root/tests/workers/jobs.ts";
    const path = ${JSON.stringify(tempDir())} + "/s";
    writeFileSync(path, "x");
    const size = SharedState.bytes(1, 8);
    // slot 1: an open whose Worker ends without closing it
    const w = await startWorker("@root/tests/workers/lock_worker.ts");
    await ask(w, { kind: "share", path, srcSize: size });
    const kept = FileShare.open(path, size); // keeps the share alive
    w.terminate();
    const t0 = performance.now();
    while (!kept.ended(1) && performance.now() - t0 < 10000) {
      await new Promise((r) => setTimeout(r, 5));
    }
    const rest = [];
    for (let i = 0; i < 2000; i++) {
      const s = FileShare.open(path, size);
      if (s.token === 0) { rest.push(s); break; }
      rest.push(s);
    }
    const lone = rest[rest.length - 1];
    const state = new SharedState(lone.memory, 1, 8);
    console.log(kept.ended(1), lone.token, state.token !== 0, kept.ended(state.token));
    for (const s of rest) s.close();
    kept.close();
  `,
      60_000,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "true 0 true false", r.stderr);
  },
  { timeout: 90_000 },
);

// Probe: an object pool (or a libpmemlog log) that a Worker of this
// process held was refused here with "cannot lock '…': the pool is
// already open", the words a second process gets too: nothing said the
// holder was in this process, nor that these stores open once per
// process (unlike a BlockPool or a LogStream, which Workers share).
test(
  "a log or an object pool a Worker holds is refused here as open in this process, not in another one",
  () => {
    const r = runScript(
      `
    import { PmemLog } from "@root/stream/mod.ts";
    import { ObjectPool } from "@root/obj/mod.ts";
    import { ask, startWorker } from "@root/tests/workers/jobs.ts";
    const dir = ${JSON.stringify(tempDir())};
    PmemLog.create(dir + "/log", { poolSize: 2 << 20 }).close();
    ObjectPool.create(dir + "/obj", { size: 8 << 20, layout: "app" }).close();
    const opens = {
      log: (p) => PmemLog.open(p),
      obj: (p) => ObjectPool.open(p, { layout: "app" }),
    };
    for (const kind of ["log", "obj"]) {
      const path = dir + "/" + kind;
      const w = await startWorker("@root/tests/workers/lock_worker.ts");
      await ask(w, { kind, path });
      try { opens[kind](path).close(); console.log(kind, "opened"); }
      catch (e) { console.log(kind, e.code, JSON.stringify(e.message)); }
      w.terminate();
    }
  `,
      60_000,
    );
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 2, r.stdout + r.stderr);
    for (const [i, kind] of ["log", "obj"].entries()) {
      assert.match(lines[i], new RegExp(`^${kind} -11 `), r.stdout);
      assert.match(lines[i], /already open in this process/, r.stdout);
      assert.match(lines[i], /once per process/, r.stdout);
      assert.doesNotMatch(lines[i], /another process/, r.stdout);
    }
  },
  { timeout: 90_000 },
);
