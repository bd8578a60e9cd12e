// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Byte compatibility of PmemLog with libpmemlog 1.12.1 and pmempool, both
// ways: the migration path off the discontinued library.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decodePoolHeader, encodePoolHeader } from "../pmdk/pool_header.ts";
import { PmemError } from "../errors/mod.ts";
import { PmemLog } from "../stream/mod.ts";
import { PMEMPOOL_SKIP, pmempoolCheck } from "./c/blkutil.ts";
import {
  applyLogSpec,
  LIBPMEMLOG_SKIP,
  logContents,
  type LogOp,
  logPattern,
  logutil,
  logutilPath,
  writeLogSpec,
} from "./c/logutil.ts";
import { assert, peek, rng, tempDir, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;
const skip = LIBPMEMLOG_SKIP || PMEMPOOL_SKIP;

function randomOps(count: number, seed: number, rewind = false): LogOp[] {
  const rand = rng(seed);
  const ops: LogOp[] = [];
  for (let i = 0; i < count; i++) {
    const r = rand();
    const len = Math.floor(rand() * 3000);
    if (rewind && r < 0.03) ops.push({ op: "R" });
    else if (r < 0.7) ops.push({ op: "A", seed: seed * 1000 + i, len });
    else {
      ops.push({
        op: "V",
        seed: seed * 1000 + i,
        len,
        seed2: seed * 1000 + i + 500,
        len2: Math.floor(rand() * 100),
      });
    }
  }
  return ops;
}

/** What a log holds, as libpmemlog dumps it. */
function libpmemlogContents(path: string): { data: Uint8Array; tell: number } {
  const out = join(tempDir(), "dump");
  const r = logutil("dump", path, out);
  assert.equal(r.status, 0, r.stderr);
  return {
    data: new Uint8Array(readFileSync(out)),
    tell: Number(/tell (\d+)/.exec(r.stdout)![1]),
  };
}

function apply(log: PmemLog, ops: LogOp[]): void {
  for (const o of ops) {
    if (o.op === "R") log.rewind();
    else if (o.op === "A") log.append(logPattern(o.seed, o.len));
    else log.appendv([logPattern(o.seed, o.len), logPattern(o.seed2, o.len2)]);
  }
}

test(
  "`PmemLog.open()` reads and extends logs that libpmemlog created and wrote",
  () => {
    const path = tempPath();
    const created = logutil("create", path, `${4 * MiB}`);
    assert.equal(created.status, 0, created.stderr);
    const ops = randomOps(300, 1, true);
    assert.equal(logutil("apply", path, writeLogSpec(ops)).status, 0);
    const expected = applyLogSpec(new Uint8Array(0), ops);
    {
      using log = PmemLog.open(path);
      assert.equal(log.nbyte(), Number(/nbyte (\d+)/.exec(created.stdout)![1]));
      assert.equal(log.tell(), expected.length);
      assert.deepEqual(logContents(log), expected);
      const more = randomOps(50, 2);
      apply(log, more);
      expected.set([]); // (kept for clarity: libpmemlog now reads ours)
      const both = applyLogSpec(expected, more);
      assert.deepEqual(logContents(log), both);
    }
    const back = libpmemlogContents(path);
    assert.equal(back.tell, back.data.length);
    assert.equal(pmempoolCheck(path).status, 0, pmempoolCheck(path).stdout);
  },
  { skip },
);

test(
  "logs `PmemLog` writes open in libpmemlog and pass `pmempool check`",
  async () => {
    const path = tempPath();
    const ops = randomOps(200, 3, true);
    {
      using log = PmemLog.create(path, { poolSize: 3 * MiB });
      apply(log, ops);
      await log.appendAsync(logPattern(9, 77));
    }
    const expected = applyLogSpec(applyLogSpec(new Uint8Array(0), ops), [
      { op: "A", seed: 9, len: 77 },
    ]);
    const got = libpmemlogContents(path);
    assert.equal(got.tell, expected.length);
    assert.deepEqual(got.data, expected);
    const check = pmempoolCheck(path);
    assert.equal(check.status, 0, check.stdout);
    assert.match(check.stdout, /consistent/);
    // libpmemlog walks ours in the same chunks
    const walk = logutil("walk", path, "100");
    const chunks = walk.stdout.trim().split("\n").map(Number);
    assert.ok(chunks.length > 1);
    assert.ok(chunks.slice(0, -1).every((n) => n === 100));
    assert.equal(chunks.reduce((a, b) => a + b, 0), expected.length);
    // libpmemlog appends after ours, and ours reads them back
    const spec = writeLogSpec([{ op: "A", seed: 5, len: 10 }]);
    assert.equal(logutil("apply", path, spec).status, 0);
    using log = PmemLog.open(path);
    const all = applyLogSpec(expected, [{ op: "A", seed: 5, len: 10 }]);
    assert.deepEqual(logContents(log), all);
  },
  { skip },
);

test("the pool header `PmemLog` writes has libpmemlog's fields and checksum", () => {
  const path = tempPath();
  PmemLog.create(path, { poolSize: 2 * MiB }).close();
  const header = peek(path, 0, 4096);
  const h = decodePoolHeader(header);
  assert.equal(h.signature, "PMEMLOG\0");
  assert.equal(h.major, 1);
  assert.equal(h.incompat, 6);
  assert.deepEqual(encodePoolHeader(h), header);
  const desc = new DataView(peek(path, 4096, 24).buffer);
  assert.equal(desc.getBigUint64(0, true), 8192n);
  assert.equal(desc.getBigUint64(8, true), BigInt(2 * MiB));
  assert.equal(desc.getBigUint64(16, true), 8192n);
});

test(
  "an open log excludes libpmemlog, and libpmemlog's open excludes `PmemLog`",
  async () => {
    const path = tempPath();
    assert.equal(logutil("create", path, `${2 * MiB}`).status, 0);
    {
      using _log = PmemLog.open(path);
      assert.match(logutil("open", path).stdout, /errno 11/);
    }
    const holder = spawn(logutilPath(), ["hold", path]);
    await new Promise<void>((resolve) =>
      holder.stdout.once("data", () => resolve())
    );
    try {
      assert.throws(
        () => PmemLog.open(path),
        (e) => e instanceof PmemError && e.code === -11,
      );
    } finally {
      holder.stdin.end("\n");
      await new Promise((resolve) => holder.on("close", resolve));
    }
    using log = PmemLog.open(path);
    assert.equal(log.tell(), 0);
  },
  { skip: LIBPMEMLOG_SKIP },
);
