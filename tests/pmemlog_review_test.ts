// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Found by a review of PmemLog (probes first, then these tests): its
// appends, with arrays that change under them, data whose bytes are
// gone, options read twice and persists that fail.
import { readFileSync } from "node:fs";
import { logContents } from "./c/logutil.ts";
import { CpuMover } from "../mod.ts";
import { ClosedError, PmemError } from "../errors/mod.ts";
import { Mapping } from "../pmem2/mapping.ts";
import { closedCleanly } from "../pmdk/pool_header.ts";
import { LogStream, PmemLog } from "../stream/mod.ts";
import { BlockPool } from "../blk/mod.ts";
import { ObjectPool } from "../obj/mod.ts";
import { bufferOf } from "../ffi/validate.ts";
import { assert, moverTest, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;

// Bug: `appendv` read its array twice, once to check and count the bytes
// and once to copy them. An array whose element changed between the reads
// (a getter, a Proxy) threw in the copy after the place was taken: the
// log's cursor stayed past it, so the next append left a hole of stale
// bytes in the log; or its copy went past the bytes counted.
test("`appendv()` reads its array once: a failed one leaves no hole, a changing one no stray bytes", () => {
  using log = PmemLog.create(tempPath(), { poolSize: 2 * MiB });
  log.append(new Uint8Array([1]));
  let reads = 0;
  const changing = new Proxy([new Uint8Array([2])], {
    get(target, key, receiver) {
      if (key === "0" && reads++ > 0) return "not bytes";
      return Reflect.get(target, key, receiver);
    },
  });
  try {
    log.appendv(changing);
  } catch (e) {
    // one read: the append succeeds; else it must fail as a TypeError
    assert.ok(e instanceof TypeError, String(e));
  }
  log.append(new Uint8Array([3]));
  const got = Array.from(logContents(log));
  assert.ok(
    JSON.stringify(got) === "[1,2,3]" || JSON.stringify(got) === "[1,3]",
    `the log holds ${JSON.stringify(got)}`,
  );
  assert.equal(log.tell(), got.length);
  // an element that grows between the reads
  let grows = 0;
  const growing = new Proxy([new Uint8Array([4])], {
    get(target, key, receiver) {
      if (key === "0" && grows++ > 0) return new Uint8Array(64).fill(9);
      return Reflect.get(target, key, receiver);
    },
  });
  const before = log.tell();
  try {
    log.appendv(growing);
  } catch (e) {
    assert.ok(e instanceof TypeError, String(e));
  }
  log.append(new Uint8Array([5]));
  const after = Array.from(logContents(log)).slice(before);
  assert.ok(
    JSON.stringify(after) === "[4,5]" || JSON.stringify(after) === "[5]",
    `appended ${JSON.stringify(after.slice(0, 8))}...`,
  );
});

// Bug: data whose bytes were gone read as empty and was appended as
// nothing, reporting success: a fixed-length view of a resizable buffer
// shrunk below it (the engine's length is then 0, as for a detached
// buffer, which was refused), or a subclass whose `buffer` getter hid
// that its buffer was detached. Both now fail as detached data does.
moverTest(
  "`append()`, `appendv()` and `appendAsync()` refuse data whose buffer shrank below it",
  async (mover) => {
    using log = PmemLog.create(tempPath(), { poolSize: 2 * MiB, mover });
    const shrunk = () => {
      const rab = new ArrayBuffer(16, { maxByteLength: 64 });
      const view = new Uint8Array(rab, 8, 8).fill(7);
      return { rab, view };
    };
    const gone = (op: string) => (e: unknown) =>
      e instanceof TypeError && e.message.startsWith(`Cannot ${op}: data`) &&
      /nothing was written/.test(e.message);
    const a = shrunk();
    a.rab.resize(4);
    assert.throws(() => log.append(a.view), gone("append"));
    assert.throws(
      () => log.appendv([new Uint8Array(1), a.view]),
      gone("appendv"),
    );
    assert.throws(() => log.appendAsync(a.view), gone("appendAsync"));
    // shrunk after the call, before its place is taken
    const b = shrunk();
    const f = log.appendAsync(b.view);
    b.rab.resize(0);
    await assert.rejects(async () => await f, gone("appendAsync"));
    // a subclass whose buffer getter hides the detached one
    class Hiding extends Uint8Array {
      override get buffer(): ArrayBuffer {
        return new ArrayBuffer(8);
      }
    }
    const h = new Hiding(8);
    structuredClone(bufferOf(h), { transfer: [bufferOf(h) as ArrayBuffer] });
    assert.throws(() => log.append(h), gone("append"));
    assert.equal(log.tell(), 0);
    assert.equal(logContents(log).length, 0);
  },
);

// Bug: `appendv` took the log's media before it read the array: an
// array whose iterator closed the log (user code) had the copy run on
// the closed media, and it failed with the engine's TypeError ("Cannot
// read properties of undefined") instead of a ClosedError.
test("`appendv()` whose array closes the log fails with `ClosedError`", () => {
  const path = tempPath();
  const log = PmemLog.create(path, { poolSize: 2 * MiB });
  const data = [new Uint8Array(4)];
  Object.defineProperty(data, Symbol.iterator, {
    *value() {
      log.close();
      yield new Uint8Array(4).fill(1);
    },
  });
  assert.throws(
    () => log.appendv(data),
    (e) => e instanceof ClosedError && e.op === "appendv",
  );
  using again = PmemLog.open(path);
  assert.equal(again.tell(), 0);
});

// Bug: `create` and `open` read `options.mover` three times (to check
// it, to map the file, to keep it): options whose getter gave another
// value later left `log.mover` a value never checked (a number), and
// `appendAsync` quietly copied on the calling thread instead.
test("`PmemLog.create()` and `open()` read their mover option once", () => {
  const path = tempPath();
  using mover = new CpuMover();
  // (open takes no poolSize: an option it does not know is refused)
  const once = <T extends object>(options: T) => {
    let reads = 0;
    return Object.defineProperty(options, "mover", {
      enumerable: true,
      get: () => reads++ === 0 ? mover : 42 as unknown as CpuMover,
    }) as T & { mover: CpuMover };
  };
  {
    using log = PmemLog.create(path, once({ poolSize: 2 * MiB }));
    assert.equal(log.mover, mover);
  }
  using log = PmemLog.open(path, once({}));
  assert.equal(log.mover, mover);
});

// Bug: an asynchronous append whose commit failed (a persist threw, e.g.
// msync's EIO) was rejected, but its place stayed taken: the next
// commit persisted from the durable write offset on and made the failed
// bytes part of the log, under appends whose offsets counted on them. A
// synchronous append whose write offset failed to persist left the
// offset stored, so `tell()` counted it. A failed commit now fails the
// appends placed after it too, and gives their places and the offset
// back.
moverTest(
  "an append whose persist fails stays out of the log, and later appends do not bring it back",
  async (mover) => {
    using log = PmemLog.create(tempPath(), { poolSize: 2 * MiB, mover });
    log.append(new Uint8Array([1]));
    const persist = Mapping.prototype.persist;
    // the next persist of data (`data`) or of the write offset fails
    let fail: "data" | "offset" | null = null;
    Mapping.prototype.persist = function (
      this: Mapping,
      offset: number,
      length: number,
    ) {
      if (fail !== null && (fail === "data") === (offset >= 8192)) {
        fail = null;
        throw new PmemError("persist", -5, "injected EIO", { errno: 5 });
      }
      return persist.call(this, offset, length);
    };
    try {
      for (const where of ["data", "offset"] as const) {
        fail = where;
        // placed together (both polled), committed together
        const failed = [2, 3].map((v) =>
          log.appendAsync(new Uint8Array([v, v]))
        );
        for (const f of failed) f.poll();
        for (const f of failed) {
          await assert.rejects(async () => await f, /injected EIO/, where);
        }
        assert.equal(log.tell(), 1, where);
        fail = where;
        assert.throws(() => log.append(new Uint8Array([4])), /injected EIO/);
        assert.equal(log.tell(), 1, where);
      }
      assert.equal(await log.appendAsync(new Uint8Array([5])), 1);
      log.append(new Uint8Array([6]));
    } finally {
      Mapping.prototype.persist = persist;
    }
    assert.deepEqual(Array.from(logContents(log)), [1, 5, 6]);
  },
);

// Bug: a PmemLog whose append or rewind failed to persist (msync's EIO)
// still marked its header's shutdown state clean at close: a failed
// persist may leave stores visible that the media lacks (the write
// offset put back, and never persisted), and the clean state told the
// next open after an ADR failure that the media held them. The close now
// leaves the state dirty after a failed persist.
for (const op of ["append", "appendAsync", "rewind"] as const) {
  test(`a PmemLog whose ${op} failed to persist leaves its shutdown state dirty at close`, async () => {
    const path = tempPath();
    const log = PmemLog.create(path, { poolSize: 2 * MiB });
    log.append(new Uint8Array([1]));
    const persist = Mapping.prototype.persist;
    let fail = true;
    Mapping.prototype.persist = function (
      this: Mapping,
      offset: number,
      length: number,
    ) {
      if (fail) {
        fail = false;
        throw new PmemError("persist", -5, "injected EIO", { errno: 5 });
      }
      return persist.call(this, offset, length);
    };
    try {
      const data = new Uint8Array([2]);
      if (op === "append") assert.throws(() => log.append(data), /EIO/);
      if (op === "rewind") assert.throws(() => log.rewind(), /EIO/);
      if (op === "appendAsync") {
        await assert.rejects(async () => await log.appendAsync(data), /EIO/);
      }
    } finally {
      Mapping.prototype.persist = persist;
    }
    log.close();
    const header = new Uint8Array(readFileSync(path).subarray(0, 4096));
    assert.equal(
      closedCleanly(header),
      false,
      "marked clean after a failed persist",
    );
    // and a log whose persists all succeeded is clean after its close
    PmemLog.open(path).close();
    assert.equal(closedCleanly(readFileSync(path).subarray(0, 4096)), true);
  });
}

// Bug (found by the PmemLog review): PmemLog.create of a missing file
// without a poolSize (libpmemlog's "use the file as it is") failed naming
// "open", and opening a character device that is not device DAX said only
// "pmem2_source_from_fd failed (code -100005)", libpmem2 giving no message
// for PMEM2_E_INVALID_FILE_TYPE.
test("create names create for a file it must find, and a file of the wrong type is named", () => {
  assert.throws(
    () => PmemLog.create(tempPath(), {}),
    (e) => e instanceof PmemError && e.op === "create" && e.code === -2,
  );
  const opens: (() => unknown)[] = [
    () => PmemLog.open("/dev/zero"),
    () => LogStream.open("/dev/zero"),
    () => BlockPool.open("/dev/zero"),
    () => ObjectPool.open("/dev/zero", { layout: "x" }),
  ];
  for (const open of opens) {
    assert.throws(
      open,
      (e) =>
        e instanceof PmemError && e.code === -100005 &&
        /'\/dev\/zero': not a regular file or a device DAX/.test(e.message),
    );
  }
});
