// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
import { readFileSync } from "node:fs";
import {
  ClosedError,
  CpuMover,
  type Future,
  type FutureOptions,
  mapFile,
  MemFlags,
  PmemError,
  type Vdm,
  VdmFlags,
  wait,
  waitAll,
} from "../mod.ts";
import { assert, moverTest, rng, tempPath, test } from "./_harness.ts";
import { mark, setTracer, type WriteBack, writeBacks } from "../testing/mod.ts";

/** Whether `[offset, offset + length)` is covered by durable write-backs. */
function durable(notes: WriteBack[], offset: number, length: number): boolean {
  const spans: [number, number][] = [];
  let flushed: [number, number][] = [];
  for (const n of notes) {
    if (n.kind === "durable") spans.push([n.offset, n.offset + n.length]);
    else if (n.kind === "flushed") {
      flushed.push([n.offset, n.offset + n.length]);
    } else {
      spans.push(...flushed); // a drain makes the flushed ranges durable
      flushed = [];
    }
  }
  spans.sort((a, b) => a[0] - b[0]);
  let covered = offset;
  for (const [s, e] of spans) {
    if (s > covered) break;
    covered = Math.max(covered, e);
  }
  return covered >= offset + length;
}

moverTest(
  "memcpyAsync/memmoveAsync/memsetAsync are durable when they resolve",
  async (mover, kind) => {
    const path = tempPath();
    const ref = new Uint8Array(1 << 20);
    const rand = rng(7);
    {
      using map = mapFile(path, { size: 1 << 20, mover });
      assert.equal(map.mover, mover);
      for (let i = 0; i < 200; i++) {
        const len = 1 + Math.floor(rand() * 40000);
        const dst = Math.floor(rand() * ((1 << 20) - len));
        const op = i % 3;
        const { count } = writeBacks(map);
        if (op === 0) {
          const data = new Uint8Array(len).map(() => rand() * 256);
          ref.set(data, dst);
          await map.memcpyAsync(dst, data);
        } else if (op === 1) {
          const src = Math.floor(rand() * ((1 << 20) - len));
          ref.copyWithin(dst, src, src + len);
          await map.memmoveAsync(dst, src, len);
        } else {
          ref.fill(i & 255, dst, dst + len);
          wait(map.memsetAsync(dst, i & 255, len));
        }
        // the file reads the same persisted or not: the shim's record of
        // what was written back says whether the range is durable
        const { notes } = writeBacks(map, count);
        assert.ok(
          durable(notes, dst, len),
          `${kind.name}: op ${i} resolved with [${dst}, ${
            dst + len
          }) not durable: ${JSON.stringify(notes)}`,
        );
      }
      assert.deepEqual(map.view(), ref);
    }
    assert.deepEqual(new Uint8Array(readFileSync(path)), ref);
  },
);

moverTest("async copies honour every PMEM2_F_MEM flag", async (mover) => {
  using map = mapFile(tempPath(), { size: 1 << 20, mover });
  const data = new Uint8Array(100_000).map((_, i) => i & 255);
  for (
    const flags of [
      0,
      MemFlags.NODRAIN,
      MemFlags.NONTEMPORAL,
      MemFlags.TEMPORAL,
      MemFlags.WC,
      MemFlags.WB,
      MemFlags.NOFLUSH,
      MemFlags.NODRAIN | MemFlags.NONTEMPORAL,
    ]
  ) {
    await map.memsetAsync(0, 0, 300_000, flags);
    await map.memcpyAsync(1000, data, flags);
    await map.memmoveAsync(2000, 1000, 100_000, flags);
    assert.deepEqual(map.view(2000, 100_000), data, `flags ${flags}`);
    if (flags & MemFlags.NODRAIN) map.drain();
  }
  assert.throws(() => map.memcpyAsync(0, data, 64), RangeError);
  assert.throws(
    () => map.memcpyAsync(0, data, MemFlags.TEMPORAL | MemFlags.NONTEMPORAL),
    RangeError,
  );
  assert.throws(() => map.memsetAsync(0, 300, 1), RangeError);
  assert.throws(() => map.memcpyAsync((1 << 20) - 10, data), RangeError);
  assert.throws(() => map.memmoveAsync(0, (1 << 20) - 10, 11), RangeError);
  assert.throws(
    () => map.memcpyAsync(0, "x" as unknown as Uint8Array),
    TypeError,
  );
});

moverTest(
  "many async copies in flight, then close() waits for them",
  async (mover) => {
    const path = tempPath();
    const map = mapFile(path, { size: 8 << 20, mover });
    const chunk = new Uint8Array(256 << 10).fill(0x77);
    const fs: Future<void>[] = [];
    for (let i = 0; i < 32; i++) {
      fs.push(
        map.memcpyAsync(i * chunk.length, chunk),
      );
    }
    for (const f of fs) f.poll(); // started (as far as resources allow), not awaited
    const started = fs.map((f) => f.state !== "idle");
    assert.ok(started[0]);
    map.close();
    const bytes = readFileSync(path);
    for (let i = 0; i < fs.length; i++) {
      if (started[i]) {
        assert.equal(fs[i].state, "complete"); // close waited for it
        assert.equal(bytes[(i + 1) * chunk.length - 1], 0x77);
      } else {
        await assert.rejects(async () => await fs[i], PmemError); // never ran
      }
    }
    assert.throws(() => map.memcpyAsync(0, chunk), ClosedError);
  },
);

moverTest(
  "a future built before close() and polled after it fails cleanly",
  async (mover) => {
    const map = mapFile(tempPath(), { size: 1 << 20, mover });
    const f = map.memsetAsync(0, 1, 1 << 20);
    map.close();
    await assert.rejects(
      async () => await f,
      (e: unknown) => e instanceof ClosedError && /detached/.test(e.message),
    );
  },
);

/** A mover that is not durable: the mapping must chain a persist step. */
class RecordingMover implements Vdm {
  readonly inner = new CpuMover();
  readonly seen: number[] = [];
  readonly name = "recording";
  readonly capabilities = VdmFlags.NO_CACHE_HINT;
  supports(flags: number): boolean {
    return (flags & this.capabilities) === flags;
  }
  get closed(): boolean {
    return this.inner.closed;
  }
  memcpy(
    d: Uint8Array,
    s: Uint8Array,
    flags = 0,
    o?: FutureOptions,
  ): Future<void> {
    this.seen.push(flags);
    return this.inner.memcpy(d, s, flags, o);
  }
  memmove(
    d: Uint8Array,
    s: Uint8Array,
    flags = 0,
    o?: FutureOptions,
  ): Future<void> {
    this.seen.push(flags);
    return this.inner.memmove(d, s, flags, o);
  }
  memset(d: Uint8Array, v: number, flags = 0, o?: FutureOptions): Future<void> {
    this.seen.push(flags);
    return this.inner.memset(d, v, flags, o);
  }
  flush(d: Uint8Array, flags = 0, o?: FutureOptions): Future<void> {
    return this.inner.flush(d, flags, o);
  }
  batch(): Future<void> {
    throw new Error("unused");
  }
  close(): void {
    this.inner.close();
  }
  [Symbol.dispose](): void {
    this.close();
  }
}

test("a mover that cannot write durably gets a chained persist step", async () => {
  using mover = new RecordingMover();
  const path = tempPath();
  {
    using map = mapFile(path, { size: 65536, mover });
    await map.memcpyAsync(0, new Uint8Array([1, 2, 3]));
    await map.memsetAsync(10, 9, 5, MemFlags.NONTEMPORAL);
    await map.memmoveAsync(20, 0, 3, MemFlags.NODRAIN);
    map.drain();
  }
  assert.deepEqual(mover.seen, [0, VdmFlags.NO_CACHE_HINT, 0]);
  const bytes = readFileSync(path);
  assert.deepEqual([...bytes.subarray(0, 3)], [1, 2, 3]);
  assert.equal(bytes[14], 9);
  assert.deepEqual([...bytes.subarray(20, 23)], [1, 2, 3]);
});

test("durable movers get DURABLE; NOFLUSH and byte granularity need no flush", async () => {
  const seen: number[] = [];
  class SpyMover extends CpuMover {
    override memcpy(d: Uint8Array, s: Uint8Array, f = 0): Future<void> {
      seen.push(f);
      return super.memcpy(d, s, f);
    }
  }
  const spy = new SpyMover();
  using map = mapFile(tempPath(), { size: 65536, mover: spy });
  await map.memcpyAsync(0, new Uint8Array(8));
  await map.memcpyAsync(0, new Uint8Array(8), MemFlags.NOFLUSH);
  await map.memcpyAsync(0, new Uint8Array(8), MemFlags.WC);
  assert.deepEqual(seen, [
    VdmFlags.DURABLE,
    0,
    VdmFlags.DURABLE | VdmFlags.NO_CACHE_HINT,
  ]);
  const { Source, Mapping } = await import("../mod.ts");
  using anon = Source.fromAnon(65536);
  using bytemap = Mapping.map(anon, { granularity: "byte", mover: spy });
  seen.length = 0;
  await bytemap.memcpyAsync(0, new Uint8Array(8));
  assert.deepEqual(seen, [0]);
  waitAll([bytemap.memcpyAsync(8, new Uint8Array(8))]);
  spy.close();
  assert.throws(
    () => mapFile(tempPath(), { size: 4096, mover: {} as Vdm }),
    TypeError,
  );
});

moverTest(
  "a tracer sees every persistence event of the funnel",
  async (mover) => {
    using map = mapFile(tempPath(), { size: 65536, mover });
    const events: string[] = [];
    setTracer(map, {
      flush: (o: number, n: number) => events.push(`flush ${o}+${n}`),
      drain: () => events.push("drain"),
      mark: (label: string) => events.push(`mark ${label}`),
    });
    map.persist(0, 8);
    map.flush(100, 4);
    map.drain();
    map.memcpy(200, new Uint8Array(16));
    map.memcpy(300, new Uint8Array(16), MemFlags.NOFLUSH);
    map.memset(400, 1, 10, MemFlags.NODRAIN);
    map.memmove(500, 200, 16);
    await map.memcpyAsync(600, new Uint8Array(32));
    mark(map, "ack");
    setTracer(map, undefined);
    map.persist(0, 1);
    assert.deepEqual(events, [
      "flush 0+8",
      "drain",
      "flush 100+4",
      "drain",
      "flush 200+16",
      "drain",
      "flush 400+10",
      "flush 500+16",
      "drain",
      "flush 600+32",
      "drain",
      "mark ack",
    ]);
  },
);

// Bug: the source's length was taken before the options were read, so an
// options getter that shrank a resizable source left a copy of nothing
// that resolved as if the bytes were durable (the movers themselves fail
// such a copy). Both copies now refuse it at the call.
moverTest(
  "memcpyAsync and memcpyManyAsync refuse a source its options' getter shrank",
  (mover) => {
    using map = mapFile(tempPath(), { size: 65536, mover });
    map.memset(0, 1, 8192);
    const shrinking = (): [Uint8Array, FutureOptions] => {
      const buf = new ArrayBuffer(4096, { maxByteLength: 8192 });
      const options = {
        get signal() {
          buf.resize(16);
          return undefined;
        },
      };
      return [new Uint8Array(buf, 0, 4096).fill(7), options];
    };
    const shrank = (e: unknown) =>
      e instanceof RangeError &&
      /Cannot memcpy(Many)?Async: (src|data) shrank from 4096 to 0 bytes/
        .test(e.message);
    {
      const [src, options] = shrinking();
      assert.throws(() => map.memcpyAsync(0, src, 0, options), shrank);
    }
    {
      const [data, options] = shrinking();
      assert.throws(
        () => map.memcpyManyAsync([{ offset: 4096, data }], options),
        shrank,
      );
    }
    assert.deepEqual([map.view(0, 1)[0], map.view(4096, 1)[0]], [1, 1]);
  },
);
