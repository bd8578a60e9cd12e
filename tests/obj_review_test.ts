// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The object store under review: each test is the probe that found a
// bug (red before its fix on at least one runtime), kept as a regression
// test.
import { closeSync, openSync, readSync } from "node:fs";
import { OutOfSpaceError } from "../errors/mod.ts";
import { wait } from "../future/mod.ts";
import {
  checkObjectPool,
  CorruptPoolError,
  type ObjectHandle,
  ObjectPool,
  type Transaction,
} from "../obj/mod.ts";
import { crc32c } from "../pmem2/crc32c.ts";
import { createObjectPool } from "../testing/mod.ts";
import { assert, patch, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;

// 60 000 bytes and a header take a block of the 64 KiB class: 3 a run
const BIG_BLOCK = 60_000;

// An allocation or a free logs several entries (bitmap word, chunk table
// entry, object header, fill). The heap changed its volatile state and
// noted the change for the abort only after logging it, so a log out of
// room half-way left the change unnoted: an aborted free left the block
// free in memory (the next allocation handed out a live object again),
// an aborted allocation that made a run left the run in memory only (the
// objects allocated in it later were gone after a reopen), and a callback
// that caught the OutOfSpaceError committed half a free or allocation (a
// block without a header, a chunk without an object). Each operation is
// now all or nothing, whatever room the log has left.
test(
  "an allocation or a free that finds the log out of room half-way changes nothing, whether the callback rethrows or catches the error",
  () => {
    const logSize = 256 * 1024;
    const maxRecord = Math.floor(logSize * 3 / 8 / 8) * 8;
    // the first bytes of an object (a whole large one would need a record
    // of its own size)
    const fill = (o: ObjectHandle, seed: number) =>
      new Uint8Array(Math.min(o.size, 1024)).map((_, i) => (i + seed) & 255);
    // each case: what the pool holds first, and one operation on it
    const cases: Record<
      string,
      (
        pool: ObjectPool,
      ) => { held: ObjectHandle[]; op: (tx: Transaction) => unknown }
    > = {
      "alloc in a run": (pool) => ({
        held: [pool.tx((tx) => tx.alloc(100))],
        op: (tx) => tx.alloc(100),
      }),
      "alloc making a run": () => ({ held: [], op: (tx) => tx.alloc(1000) }),
      "alloc of chunks": () => ({ held: [], op: (tx) => tx.alloc(100_000) }),
      "free in a run": (pool) => {
        const held = pool.tx((tx) => [tx.alloc(100), tx.alloc(100)]);
        return { held, op: (tx) => tx.free(held[1]) };
      },
      "free emptying a run": (pool) => {
        // two runs of the 64 KiB class (3 blocks each), both with room:
        // freeing the second's only object gives its chunk back
        const held = pool.tx((tx) =>
          [0, 1, 2, 3].map(() => tx.alloc(BIG_BLOCK))
        );
        pool.tx((tx) => tx.free(held[2]));
        return {
          held: [held[0], held[1], held[3]],
          op: (tx) => tx.free(held[3]),
        };
      },
      "free of chunks": (pool) => {
        const held = [pool.tx((tx) => tx.alloc(100_000))];
        return { held, op: (tx) => tx.free(held[0]) };
      },
      "alloc, write and free": () => ({
        held: [],
        op: (tx) => {
          const o = tx.alloc(100);
          tx.write(o, 0, new Uint8Array(100).fill(1));
          tx.free(o);
        },
      }),
    };
    for (const [name, setUp] of Object.entries(cases)) {
      for (let room = 0; room <= 96; room += 8) {
        for (const caught of [false, true]) {
          const what = `${name}, ${room} bytes of log left, ${
            caught ? "caught" : "rethrown"
          }`;
          const path = tempPath(
            `p-${name.replaceAll(" ", "-")}-${room}-${caught}`,
          );
          const pool = ObjectPool.create(path, {
            size: 8 * MiB,
            layout: "a",
            logSize,
          });
          // a filler whose log entry leaves `room` bytes of the record
          const filler = pool.tx((tx) => tx.alloc(maxRecord));
          const { held, op } = setUp(pool);
          for (const [i, o] of held.entries()) {
            pool.tx((tx) => tx.write(o, 0, fill(o, i)));
          }
          let made: unknown;
          let opFailed = false;
          let committed = true;
          try {
            pool.tx((tx) => {
              tx.write(filler, 0, new Uint8Array(maxRecord - room - 32 - 16));
              try {
                made = op(tx);
              } catch (e) {
                assert.ok(e instanceof OutOfSpaceError, `${what}: ${e}`);
                opFailed = true;
                if (!caught) throw e;
              }
            });
          } catch (e) {
            assert.ok(e instanceof OutOfSpaceError, `${what}: ${e}`);
            committed = false;
          }
          // the objects held after it, with the bytes each must have
          const freed = !opFailed && committed && name.startsWith("free")
            ? held[held.length - 1]
            : undefined;
          const live = held.filter((o) => o !== freed);
          if (!opFailed && committed && made !== undefined) {
            live.push(made as ObjectHandle);
          }
          const expect = (p: ObjectPool) => {
            for (const [i, o] of held.entries()) {
              if (o === freed) continue;
              const want = fill(o, i);
              assert.deepEqual(
                p.read(p.object(o.offset), 0, want.length),
                want,
                what,
              );
            }
            assert.deepEqual(
              checkObjectPool(p, {
                live: [filler, ...live].map((o) => o.offset),
              }).problems,
              [],
              what,
            );
          };
          expect(pool);
          // new objects of every kind never land on a live one
          const more = pool.tx((tx) =>
            [100, 1000, BIG_BLOCK, 100_000].map((n) => tx.alloc(n))
          );
          for (const o of more) pool.tx((tx) => tx.write(o, 0, fill(o, 99)));
          live.push(...more);
          expect(pool);
          // the heap in memory is the heap on media
          const heap = pool.stats().heap;
          pool.close();
          using again = ObjectPool.open(path, { layout: "a" });
          assert.deepEqual(again.stats().heap, heap, what);
          expect(again);
        }
      }
    }
  },
  { timeout: 30_000 },
); // (Bun under load passed 2.7 s of its 5 s default)

// A future polled inside a transaction's callback seals its group: when
// that is the running transaction's own group (`wait` on an earlier
// `txAsync` inside a `txAsync` callback), the seal committed what the
// running transaction had staged so far, and its abort afterwards could
// not take it back: the writes of a transaction that threw were durable,
// with an allocation whose header was never logged.
test("`wait` in a `txAsync` callback on a transaction staged with it completes that one, and fails the running one with nothing of it committed", async () => {
  const path = tempPath();
  {
    using pool = ObjectPool.create(path, { size: 8 * MiB, layout: "a" });
    const root = pool.root(64);
    const before = pool.stats().heap;
    const first = pool.txAsync((tx) => {
      tx.setU64(root, 0, 1);
      return "first";
    });
    let after: unknown;
    const second = pool.txAsync((tx) => {
      tx.setU64(root, 8, 2);
      tx.setU64(root, 16, tx.alloc(100).offset);
      assert.equal(wait(first), "first");
      try {
        tx.setU64(root, 24, 3);
      } catch (e) {
        after = e;
      }
      return "second";
    });
    const third = pool.txAsync((tx) => {
      tx.setU64(root, 32, 4);
      throw new Error("third aborts");
    });
    const fourth = pool.txAsync((tx) => tx.setU64(root, 40, 5));
    assert.ok(after instanceof TypeError, `${after}`);
    await assert.rejects(
      async () => await second,
      (e) => e instanceof TypeError && /waited for/.test(e.message),
    );
    await assert.rejects(async () => await third, /third aborts/);
    assert.equal(await first, "first");
    await fourth;
    assert.deepEqual(
      [0, 8, 16, 24, 32, 40].map((o) => pool.getU64(root, o)),
      [1, 0, 0, 0, 0, 5],
    );
    assert.deepEqual(pool.stats().heap, before);
    assert.deepEqual(checkObjectPool(pool).problems, []);
  }
  using pool = ObjectPool.open(path, { layout: "a" });
  const root = pool.root(64);
  assert.deepEqual(
    [0, 8, 16, 24, 32, 40].map((o) => pool.getU64(root, o)),
    [1, 0, 0, 0, 0, 5],
  );
  assert.deepEqual(checkObjectPool(pool).problems, []);
});

// `readonly` binds TypeScript only: a handle's size could be raised and
// its type changed, and the range checks and `free` trusted them.
test("a handle cannot be changed: its size and type stay what the pool made, so its range and kind checks hold", () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "a" });
  const root = pool.root(16);
  const [o, next] = pool.tx((tx) => [tx.alloc(100), tx.alloc(100)]);
  assert.ok(Object.isFrozen(o));
  assert.throws(() => {
    (o as { size: number }).size = 1 << 20;
  }, TypeError);
  assert.throws(() => {
    (root as { type: number }).type = 0;
  }, TypeError);
  assert.throws(
    () => Object.defineProperty(o, "size", { value: 1 << 20 }),
    TypeError,
  );
  assert.equal(o.size, 100);
  assert.throws(
    () => pool.tx((tx) => tx.write(o, 0, new Uint8Array(5000))),
    RangeError,
  );
  assert.throws(() => pool.read(o, 0, 5000), RangeError);
  assert.throws(() => pool.tx((tx) => tx.free(root)), TypeError);
  assert.equal(pool.read(next).length, 100);
  assert.deepEqual(checkObjectPool(pool).problems, []);
});

// The largest pool, 4 GiB: the media sized its word views and its table
// of dirty pages with shifts, which take a number mod 2^32. On Deno (one
// view of the pool) `create` failed with a CorruptPoolError of chunk
// table entry 0; on Bun the table had one page, so no checkpoint
// persisted an object's page (the log was emptied all the same).
test("a pool of 4 GiB, the largest, is created, and its checkpoints persist the pages stored to", () => {
  const path = tempPath();
  const flushed: [number, number][] = [];
  let o: ObjectHandle;
  {
    using pool = createObjectPool(path, {
      size: 2 ** 32,
      layout: "a",
      tracer: { flush: (at, n) => void flushed.push([at, n]), drain() {} },
    });
    assert.equal(pool.size, 2 ** 32);
    o = pool.tx((tx) => {
      const o = tx.alloc(100);
      tx.write(o, 0, new Uint8Array(100).fill(7));
      return o;
    });
    flushed.length = 0;
    pool.flush();
    assert.ok(
      flushed.some(([at, n]) => at <= o.offset && o.offset + 100 <= at + n),
      `the checkpoint persisted ${JSON.stringify(flushed)}`,
    );
  }
  using pool = ObjectPool.open(path, { layout: "a" });
  assert.deepEqual(
    pool.read(pool.object(o.offset)),
    new Uint8Array(100).fill(7),
  );
});

// A log record, its CRC valid, whose entry claims 2^31 bytes: the payload
// was rounded up with `& ~7`, negative from 2^31 - 7 on, so the parse let
// the entry through, and recovery copied 2 GiB before failing with an
// untyped RangeError (a pool over 2 GiB, where the target range fits).
test("a log record whose entry claims 2^31 bytes is a CorruptPoolError naming the record", () => {
  const path = tempPath();
  ObjectPool.create(path, { size: 2 ** 32, layout: "a" }).close();
  const head = new Uint8Array(8192);
  const fd = openSync(path, "r");
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const dv = new DataView(head.buffer);
  const seed = dv.getUint32(72, true);
  const logSize = Number(dv.getBigUint64(40, true));
  const checkpoint = Number(dv.getBigUint64(4096, true));
  // at the checkpoint: one COPY of 2^31 bytes to 2^31, and no payload
  const rec = new Uint8Array(48);
  const rv = new DataView(rec.buffer);
  rv.setUint32(4, 1, true); // a record
  rv.setBigUint64(8, BigInt(checkpoint), true);
  rv.setUint32(16, rec.length, true);
  rv.setUint32(20, 1, true); // one entry
  rv.setUint32(32, 1, true); // COPY
  rv.setUint32(36, 2 ** 31, true);
  rv.setBigUint64(40, 2n ** 31n, true);
  rv.setUint32(0, crc32c(rec, 4, rec.length - 4, seed), true);
  patch(path, 8192 + checkpoint % logSize, rec);
  assert.throws(
    () => ObjectPool.open(path, { layout: "a" }),
    (e) =>
      e instanceof CorruptPoolError &&
      e.structure === `the log record at position ${checkpoint}` &&
      /entry 0 lies past its end/.test(e.message),
  );
});

// In a pool over 2 GiB, the checkpoint made each dirty range's offset
// with `page << 12`, an int32: negative past 2 GiB, so the first
// checkpoint after a store there threw and the pool stopped (EIO).
test("a checkpoint of a pool over 2 GiB persists the pages stored to past 2 GiB", () => {
  const path = tempPath();
  const flushed: [number, number][] = [];
  let high: ObjectHandle;
  {
    using pool = createObjectPool(path, {
      size: 2 ** 32,
      layout: "a",
      tracer: { flush: (at, n) => void flushed.push([at, n]), drain() {} },
    });
    // an aborted allocation of 2 GiB moves the heap's first-fit hint past
    // it, at no cost: the next new run lies past 2 GiB
    assert.throws(() =>
      pool.tx((tx) => {
        tx.alloc(2 ** 31 - 1);
        throw new Error("abort");
      }), /abort/);
    high = pool.tx((tx) => {
      const h = tx.alloc(5000);
      tx.write(h, 0, new Uint8Array(5000).fill(9));
      return h;
    });
    assert.ok(high.offset > 2 ** 31, `${high.offset}`);
    flushed.length = 0;
    pool.flush();
    assert.ok(
      flushed.some(([at, n]) =>
        at <= high.offset && high.offset + 5000 <= at + n
      ),
      `the checkpoint persisted ${JSON.stringify(flushed)}`,
    );
  }
  using pool = ObjectPool.open(path, { layout: "a" });
  assert.deepEqual(
    pool.read(pool.object(high.offset)),
    new Uint8Array(5000).fill(9),
  );
});
