// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The log store after a persist that failed (the media's EIO): the commit
// pass clears the ring slots of the entries it persists before the
// persist, so a retry finds them again from the slots' data, which no
// reservation reuses until the persisted timestamp passes them. A retry,
// or a close and a reopen, must make every committed entry durable and
// whole, and the persisted timestamp must never claim an entry before
// its persist succeeded.
import { readFileSync, writeFileSync } from "node:fs";
import { LogStream } from "../stream/mod.ts";
import { openStreamWith } from "../stream/stream.ts";
import { SETTLED_AT, slotOffset } from "../stream/layout.ts";
import { failingAt, fencedImage, tracedRun } from "./crash/kill_image.ts";
import { assert, tempPath, test } from "./_harness.ts";

const bytes = (n: number, x: number) => new Uint8Array(n).fill(x);

/** A stream with one region (entries at its start): the file, its offset. */
function streamWithRegion(): { path: string; base: Uint8Array; at: number } {
  const path = tempPath();
  const s = LogStream.create(path, {
    size: 256 * 1024,
    blockSize: 4096,
    maxInFlight: 4,
  });
  s.allocateRegion(16384);
  s.close();
  const base = readFileSync(path);
  const dv = new DataView(base.buffer, base.byteOffset, base.byteLength);
  return { path, base, at: Number(dv.getBigUint64(slotOffset(0) + 8, true)) };
}

/**
 * Run `body` on the stream at `path` (media `base`) with flushes over
 * file offset `at` failing while `armed.on`; then the power fails: the
 * entries (`timestamp:first byte`) of the fenced image, reopened.
 */
function afterPowerFailure(
  path: string,
  base: Uint8Array,
  at: number,
  body: (s: LogStream, armed: { on: boolean }) => void,
): string {
  const armed = { on: false };
  const events = tracedRun(
    path,
    base,
    (tracer) =>
      openStreamWith(path, {}, {
        tracer: failingAt(tracer, at, () => armed.on),
      }),
    (s) => body(s, armed),
  );
  const crashed = tempPath("crashed");
  writeFileSync(crashed, fencedImage(base, events));
  using s = LogStream.open(crashed);
  return [...s.entries(s.regions()[0])]
    .map((e) => e.timestamp + ":" + e.data[0] + "x" + e.data.length).join(
      ",",
    );
}

/** The error a call throws (its message), or "none". */
function thrown(f: () => unknown): string {
  try {
    f();
    return "none";
  } catch (e) {
    return (e as Error).message;
  }
}

test("publishes whose persist failed: a later persist makes their committed entries durable, and persistedTimestamp waits for it", () => {
  const { path, base, at } = streamWithRegion();
  const seen: Record<string, unknown> = {};
  const entries = afterPowerFailure(path, base, at, (s, armed) => {
    const r = s.regions()[0];
    const levels = () => s.committedTimestamp + "/" + s.persistedTimestamp;
    const put = (n: number, v: number) => {
      const res = s.reserve(r, n);
      res.data.fill(v);
      return res;
    };
    const a = put(40, 0x11);
    const b = put(40, 0x22); // in flight: a's publish takes the commit pass
    armed.on = true;
    seen.a = thrown(() => s.publish(a)) + " " + levels();
    seen.b = thrown(() => s.publish(b)) + " " + levels();
    const c = put(16, 0x33);
    const d = put(16, 0x44);
    seen.c = thrown(() => s.publish(c)) + " " + levels();
    // the ring (4) is full past the persisted timestamp: a fifth waits
    // for a persist, which fails, rather than reuse a's slot
    seen.e = thrown(() => s.reserve(r, 16)) + " " + levels();
    armed.on = false;
    seen.d = s.publish(d) + " " + levels();
    seen.f = s.append(r, bytes(24, 0x55)) + " " + levels();
  });
  const eio = "injected EIO: a flush failed";
  assert.deepEqual(seen, {
    a: eio + " 0/0",
    b: eio + " 2/0",
    c: eio + " 3/0",
    e: eio + " 3/0",
    d: "4 4/4",
    f: "5 5/5",
  });
  assert.equal(entries, "1:17x40,2:34x40,3:51x16,4:68x16,5:85x24");
});

test("publishes whose persist failed, then a close and a reopen: their committed entries are durable and whole", () => {
  const { path, base, at } = streamWithRegion();
  const seen: Record<string, unknown> = {};
  const entries = afterPowerFailure(path, base, at, (s, armed) => {
    const r = s.regions()[0];
    const levels = () => s.committedTimestamp + "/" + s.persistedTimestamp;
    const a = s.reserve(r, 40);
    a.data.fill(0x11);
    const b = s.reserve(r, 8);
    b.data.fill(0x22);
    armed.on = true;
    // a alone (its own persist), then b (the commit pass's: a's and b's)
    seen.a = thrown(() => s.publish(a)) + " " + levels();
    seen.b = thrown(() => s.publish(b)) + " " + levels();
    armed.on = false;
    // the close persists them
  });
  const eio = "injected EIO: a flush failed";
  assert.deepEqual(seen, { a: eio + " 0/0", b: eio + " 2/0" });
  assert.equal(entries, "1:17x40,2:34x8");
});

// Bug: an append with nothing else in flight stores its entry (data,
// header, terminator) and persists it under both locks; when that
// persist failed, it threw with its header stored and its timestamp not
// counted: the next append, to another region, took the same timestamp,
// and a close and a reopen found both entries, the one whose append
// threw included (a duplicate timestamp). The failed append's timestamp
// now counts, committed as padding by the next commit pass.
test("an append alone whose persist failed leaves no entry and no timestamp given twice, kept by a reopen", () => {
  const path = tempPath();
  {
    using s = LogStream.create(path, { size: 256 * 1024, blockSize: 4096 });
    s.allocateRegion(16384);
    s.allocateRegion(16384);
  }
  const base = readFileSync(path);
  const dv = new DataView(base.buffer, base.byteOffset, base.byteLength);
  const at = Number(dv.getBigUint64(slotOffset(0) + 8, true));
  const seen: Record<string, unknown> = {};
  const show = (s: LogStream) =>
    s.regions().map((r) =>
      [...s.entries(r)].map((e) => e.timestamp + ":" + e.data[0]).join(",")
    ).join(" | ");
  const armed = { on: false };
  const events = tracedRun(
    path,
    base,
    (tracer) =>
      openStreamWith(path, {}, {
        tracer: failingAt(tracer, at, () => armed.on),
      }),
    (s) => {
      const [r0, r1] = s.regions();
      armed.on = true;
      seen.failed = thrown(() => s.append(r0, bytes(40, 0x11)));
      armed.on = false;
      seen.next = s.append(r1, bytes(40, 0x22));
      seen.entries = show(s);
      seen.levels = s.committedTimestamp + "/" + s.persistedTimestamp;
    },
  );
  {
    using s = LogStream.open(path);
    seen.reopened = show(s);
  }
  writeFileSync(path, fencedImage(base, events));
  using s = LogStream.open(path);
  seen.durable = show(s);
  seen.after = s.append(s.regions()[0], bytes(8, 0x33));
  assert.deepEqual(seen, {
    failed: "injected EIO: a flush failed",
    next: 2,
    entries: " | 2:34",
    levels: "2/2",
    reopened: " | 2:34",
    durable: " | 2:34",
    after: 3,
  });
});

// Bug: a freeRegion whose settling of the region's entries failed (the
// persist of the settled timestamp W) threw with the region still marked
// as being freed: missing from regions(), its handle refused as freed,
// and never freed nor allocatable again until a reopen (which found it
// allocated). The free is now rolled back when its settling throws.
test("a freeRegion whose settling persist failed leaves the region allocated, and a retry frees it", () => {
  const path = tempPath();
  {
    using s = LogStream.create(path, { size: 256 * 1024, blockSize: 4096 });
    s.allocateRegion(16384);
  }
  const armed = { on: false };
  const noTracer = { flush() {}, drain() {} };
  using s = openStreamWith(path, {}, {
    tracer: failingAt(noTracer, SETTLED_AT, () => armed.on),
  });
  const r = s.regions()[0];
  const seen: Record<string, unknown> = {};
  seen.append = s.append(r, bytes(8, 0x11));
  armed.on = true;
  seen.free = thrown(() => s.freeRegion(r));
  armed.on = false;
  seen.regions = s.regions().length;
  seen.again = s.append(r, bytes(8, 0x22));
  seen.retry = thrown(() => s.freeRegion(r));
  seen.after = s.regions().length;
  assert.deepEqual(seen, {
    append: 1,
    free: "injected EIO: a flush failed",
    regions: 1,
    again: 2,
    retry: "none",
    after: 0,
  });
});

// Bug: a freeRegion whose clearing of the region's slot failed (the
// persist of the slot's state word, after its entries were settled)
// threw with the region still marked as being freed: missing from
// regions(), its handle refused as freed, its slot and space never
// allocatable again until a reopen. The cleared word is now set back
// and persisted (so a later allocation of its space never overlaps a
// slot that reaches the media allocated) and the free rolled back.
test("a freeRegion whose clearing persist failed leaves the region allocated, and a retry frees it", () => {
  const path = tempPath();
  {
    using s = LogStream.create(path, { size: 256 * 1024, blockSize: 4096 });
    s.allocateRegion(16384);
  }
  // the first flush of slot 0's state word fails, the next ones do not
  const armed = { on: false };
  const once = () => armed.on && !(armed.on = false);
  const noTracer = { flush() {}, drain() {} };
  const seen: Record<string, unknown> = {};
  {
    using s = openStreamWith(path, {}, {
      tracer: failingAt(noTracer, slotOffset(0), once),
    });
    const r = s.regions()[0];
    seen.append = s.append(r, bytes(8, 0x11));
    armed.on = true;
    seen.free = thrown(() => s.freeRegion(r));
    seen.regions = s.regions().length;
    seen.again = thrown(() => s.append(r, bytes(8, 0x22)));
    seen.entries = thrown(() => {
      seen.data = [...s.entries(r)].map((e) => e.data[0]).join(",");
    });
    seen.retry = thrown(() => s.freeRegion(r));
    seen.after = s.regions().length;
    seen.other = s.allocateRegion(16384).id;
  }
  using s = LogStream.open(path);
  seen.reopened = s.regions().map((r) => r.id).join(",");
  assert.deepEqual(seen, {
    append: 1,
    free: "injected EIO: a flush failed",
    regions: 1,
    again: "none",
    entries: "none",
    data: "17,34",
    retry: "none",
    after: 0,
    other: 0,
    reopened: "0",
  });
});

// Bug: an append alone whose persist failed gave its timestamp up as
// padding left for the next commit pass: until some later append made
// one, its region read as having appends in flight, and freeRegion
// failed with EBUSY ("wait for them first": for nothing the caller could
// name), while committedTimestamp stayed behind. The padding is now
// committed at once, as a cancelled reservation's is.
test("an append alone whose persist failed leaves no append in flight: its region frees at once", () => {
  const path = tempPath();
  {
    using s = LogStream.create(path, { size: 256 * 1024, blockSize: 4096 });
    s.allocateRegion(16384);
    s.allocateRegion(16384);
  }
  const base = readFileSync(path);
  const dv = new DataView(base.buffer, base.byteOffset, base.byteLength);
  const at = Number(dv.getBigUint64(slotOffset(0) + 8, true));
  const armed = { on: false };
  const noTracer = { flush() {}, drain() {} };
  const seen: Record<string, unknown> = {};
  {
    using s = openStreamWith(path, {}, {
      tracer: failingAt(noTracer, at, () => armed.on),
    });
    const [r0, r1] = s.regions();
    armed.on = true;
    seen.failed = thrown(() => s.append(r0, bytes(40, 0x11)));
    armed.on = false;
    seen.committed = s.committedTimestamp;
    seen.free = thrown(() => s.freeRegion(r0));
    seen.next = s.append(r1, bytes(8, 0x22));
    seen.levels = s.committedTimestamp + "/" + s.persistedTimestamp;
  }
  using s = LogStream.open(path);
  seen.reopened = s.regions().map((r) =>
    r.id + ":" + [...s.entries(r)].map((e) => e.timestamp).join(",")
  ).join(" ");
  assert.deepEqual(seen, {
    failed: "injected EIO: a flush failed",
    committed: 1,
    free: "none",
    next: 2,
    levels: "2/2",
    reopened: "1:2",
  });
});

// Bug: an allocateRegion whose persist of the slot's state word failed
// threw with the word stored allocated in the mapping and the slot free
// in the mirror: a later allocation placed another region over its space
// (through another slot, once a lower one was freed), and the next open
// refused the stream as corrupt (regions overlap). The word is now set
// back to free and persisted.
test("an allocateRegion whose persist of the slot failed leaves no region a later one overlaps", () => {
  const path = tempPath();
  {
    using s = LogStream.create(path, { size: 256 * 1024, blockSize: 4096 });
    s.allocateRegion(16384);
  }
  // the first flush of slot 1's state word fails, the next ones do not
  const armed = { on: false };
  const once = () => armed.on && !(armed.on = false);
  const noTracer = { flush() {}, drain() {} };
  const seen: Record<string, unknown> = {};
  {
    using s = openStreamWith(path, {}, {
      tracer: failingAt(noTracer, slotOffset(1), once),
    });
    armed.on = true;
    seen.failed = thrown(() => s.allocateRegion(16384));
    seen.regions = s.regions().length;
    s.freeRegion(s.regions()[0]);
    const r = s.allocateRegion(32768);
    seen.allocated = r.id + ":" + r.size;
  }
  seen.reopened = thrown(() => {
    using s = LogStream.open(path);
    seen.listed = s.regions().map((r) => r.id + ":" + r.size).join(",");
  });
  assert.deepEqual(seen, {
    failed: "injected EIO: a flush failed",
    regions: 1,
    allocated: "0:32768",
    reopened: "none",
    listed: "0:32768",
  });
});
