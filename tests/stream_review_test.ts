// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Found by a review of the log store (probes first, then these tests):
// durable entries cut at open, a region that cannot take back what it
// took once, handles checked outside the lock, views a close leaves
// attached, and two libpmemlog differences.
import { readFileSync } from "node:fs";
import { OutOfSpaceError, PmemError } from "../errors/mod.ts";
import { LogStream, PmemLog, type Region } from "../stream/mod.ts";
import { streamCore } from "../stream/open.ts";
import { settle } from "../stream/progress.ts";
import { allocateSlot, beginFree, finishFree } from "../stream/table.ts";
import type { Job } from "./workers/stream_worker.ts";
import { assert, patch, tempPath, test } from "./_harness.ts";
import { ask, startWorker } from "./workers/jobs.ts";

const MiB = 1 << 20;
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const WORKER = new URL("./workers/stream_worker.ts", import.meta.url).href;

function texts(s: LogStream, r: Region): string[] {
  return [...s.entries(r)].map((e) => dec(e.data));
}

test("a durable entry whose timestamp was damaged is refused at open, not cut", () => {
  // A crash leaves a header's timestamp word 0 or the new timestamp, which
  // is above W and at most R. After a clean close W = R, so a header that
  // claims a timestamp above R, or one not above the entry before it, is
  // damage: open cut the region there (zeroing the header) and dropped
  // every later durable entry of the region without a word.
  const path = tempPath();
  let second: number;
  {
    using s = LogStream.create(path, { size: 2 * MiB });
    const r = s.allocateRegion(8192);
    for (const t of ["A-entry", "B-entry", "C-entry", "D-entry"]) {
      s.append(r, enc(t));
    }
    second = [...s.entries(r)][1].data.byteOffset - 16;
  }
  const good = readFileSync(path);
  const cases: [string, Uint8Array][] = [
    // timestamp 2 + 2^40: above the bound R (4)
    ["above R", new Uint8Array([2, 0, 0, 0, 0, 1, 0, 0])],
    // timestamp 1: not above the entry before it
    ["not rising", new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0])],
  ];
  for (const [name, ts] of cases) {
    patch(path, 0, good);
    patch(path, second + 8, ts);
    const damaged = readFileSync(path);
    assert.throws(
      () => LogStream.open(path),
      (e) =>
        e instanceof PmemError && e.code === -22 &&
        /region 0 is corrupt/.test(e.message) &&
        e.message.includes(`file offset ${second}`),
      name,
    );
    assert.ok(readFileSync(path).equals(damaged), `${name}: file left alone`);
  }
});

test("a region emptied by `truncate()` takes again an entry it took before", () => {
  // The entry after the last one went to the next pass behind a padding
  // entry, and the padding, the entry and the terminator needed more
  // than the region: an empty region refused it for good ("full ...
  // 4080 are free"), though it took the same append when new.
  using s = LogStream.create(tempPath(), { size: MiB });
  const r = s.allocateRegion(4096);
  for (let i = 0; i < 3; i++) {
    const ts = s.append(r, new Uint8Array(3000).fill(i));
    assert.equal(s.truncate(r, ts), 1, `pass ${i}`);
    assert.equal(r.used, 0);
  }
  const res = s.reserve(r, 3000);
  s.publish(res);
  assert.equal([...s.entries(r)].length, 1);
});

/**
 * Have a Worker truncate or free region `r` while this thread holds the
 * reserve lock, and, once the Worker waits for the lock, free `r` and
 * allocate its slot again, as another thread that took the lock first
 * would. Returns what the Worker's call returned and the new region.
 */
async function staleHandle(
  s: LogStream,
  path: string,
  r: Region,
  kind: "truncate" | "free",
  upto: number,
): Promise<{ result: unknown; fresh: Region }> {
  const core = streamCore(s);
  const sh = core.shared;
  const size = r.size;
  const w = await startWorker(WORKER);
  try {
    const reached = new SharedArrayBuffer(4);
    sh.lockReserve("test");
    let result: Promise<unknown>;
    let k: number;
    try {
      const job: Job = {
        kind,
        path,
        region: r.id,
        generation: r.generation,
        upto,
        reached,
      };
      result = ask<unknown>(w, job);
      while (Atomics.load(new Int32Array(reached), 0) === 0) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      // long enough for the Worker to scan, settle and wait for the lock
      await new Promise((resolve) => setTimeout(resolve, 200));
      beginFree(sh, r.id);
      settle(core, sh.lastTs(r.id), "test");
      finishFree(core.media, sh, r.id);
      k = allocateSlot(core.media, sh, core.geometry, size, "test");
    } finally {
      sh.unlockReserve();
    }
    const fresh = s.regions().find((x) => x.id === k)!;
    return { result: await result, fresh };
  } finally {
    w.terminate();
  }
}

test("`truncate()` through a handle whose region was freed and allocated again meanwhile leaves the new region alone", async () => {
  // the handle was checked before the lock was taken, and the head was
  // stored under it without a second look: the new region's head jumped
  // past its entries (`used` went negative)
  const path = tempPath();
  using s = LogStream.create(path, { size: 4 * MiB });
  const r = s.allocateRegion(MiB);
  let last = 0;
  for (let i = 0; i < 100; i++) last = s.append(r, new Uint8Array(40));
  const { result, fresh } = await staleHandle(s, path, r, "truncate", last);
  assert.equal(result, "ClosedError");
  assert.equal(fresh.used, 0);
  const ts = s.append(fresh, enc("new"));
  assert.deepEqual([...s.entries(fresh)].map((e) => e.timestamp), [ts]);
});

test("`freeRegion()` through a handle whose region was freed and allocated again meanwhile leaves the new region alone", async () => {
  const path = tempPath();
  using s = LogStream.create(path, { size: 4 * MiB });
  const r = s.allocateRegion(MiB);
  s.append(r, enc("old"));
  const { result, fresh } = await staleHandle(s, path, r, "free", 0);
  assert.equal(result, "ClosedError");
  assert.equal(fresh.freed, false);
  s.append(fresh, enc("new"));
  assert.deepEqual(texts(s, fresh), ["new"]);
});

test("`PmemLog.walk()` whose callback rewinds and appends yields none of the new bytes", () => {
  // the walk stopped at the write offset, but a rewind followed by
  // appends moved it back up: the walk went on with the new log's bytes
  // after the old log's first chunk
  using log = PmemLog.create(tempPath(), { poolSize: 2 * MiB });
  log.append(enc("0123456789"));
  const chunks: string[] = [];
  log.walk(4, (chunk) => {
    chunks.push(dec(chunk));
    if (chunks.length === 1) {
      log.rewind();
      log.append(enc("abcdefghijklm"));
    }
    return true;
  });
  assert.deepEqual(chunks, ["0123"]);
  assert.equal(log.tell(), 13);
});

test("`PmemLog.appendv([])` on a full log fails as libpmemlog's does", () => {
  // pmemlog_appendv checks for room before it looks at the vector:
  // ENOSPC with iovcnt 0 on a full log (libpmemlog 1.12.1, checked)
  using log = PmemLog.create(tempPath(), { poolSize: 2 * MiB });
  log.appendv([]); // not full: nothing happens, as in libpmemlog
  log.append(new Uint8Array(log.nbyte()));
  assert.throws(
    () => log.appendv([]),
    (e) => e instanceof OutOfSpaceError && e.op === "appendv",
  );
});
