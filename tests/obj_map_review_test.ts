// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// PersistentMap under review: each test is the probe that found a bug
// (red before its fix on at least one runtime), kept as a regression
// test, or (said so at the test) a probe of a risk the review named that
// found none, kept as its guard.
import { join } from "node:path";
import { ClosedError } from "../errors/mod.ts";
import { waitAll } from "../future/mod.ts";
import type { Future } from "../future/future.ts";
import {
  CorruptPoolError,
  MAX_VALUE,
  ObjectPool,
  PersistentMap,
} from "../obj/mod.ts";
import { CACHE_LINE, PAGE, type PersistenceModel } from "./crash/model.ts";
import type { CrashMover } from "./crash/movers.ts";
import {
  checkObjTrace,
  emptyObjReport,
  formatObjReport,
  OBJ_CI_SUBSETS,
  type ObjTrace,
  traceObjWorkload,
} from "./crash/obj_sweep.ts";
import { fingerprint, type ModelState } from "./crash/obj_workload.ts";
import { xorshift } from "./crash/random.ts";
import {
  assert,
  moverTest,
  patch,
  peek,
  tempDir,
  tempPath,
  test,
} from "./_harness.ts";

const MiB = 1 << 20;
/** File offset of catalog slot `i` (the state page's catalog). */
const catalogSlot = (i: number) => 4096 + 128 + 128 * i;

/** A Uint8Array whose buffer was transferred away (it reads as empty). */
function detached(): Uint8Array {
  const u = Uint8Array.of(1, 2, 3);
  structuredClone(u.buffer, { transfer: [u.buffer] });
  return u;
}

// A detached array reads as empty: as a key it was the empty bytes key,
// so `get`, `has` and `delete` of a view of a closed pool answered for
// (and deleted) the empty key's entry, and `set` overwrote it; as a value
// it failed with the engine's own TypeError from deep in the staging.
// Both are refused at the call, as the mover and the mappings refuse a
// detached array (ClosedError), and nothing changes.
/** A detached array's refusal: a bad argument, not a closed store. */
const badArgument = (e: unknown): boolean =>
  e instanceof TypeError && !(e instanceof ClosedError) &&
  /is detached/.test(e.message);

test("a detached key or value is refused with TypeError (a bad argument, not ClosedError) and the empty key's entry is untouched", () => {
  using pool = ObjectPool.create(tempPath(), { size: 16 * MiB, layout: "kv" });
  using m = PersistentMap.open(pool, "m");
  m.set(new Uint8Array(0), "empty key");
  m.set("k", "v");
  const closedView = (() => {
    using other = ObjectPool.create(tempPath("other"), {
      size: 8 * MiB,
      layout: "kv",
    });
    return other.view(other.root(8));
  })();
  for (const key of [detached(), closedView]) {
    assert.throws(() => m.get(key), badArgument);
    assert.throws(() => m.has(key), badArgument);
    assert.throws(() => m.delete(key), badArgument);
    assert.throws(() => m.set(key, "x"), badArgument);
    assert.throws(() => m.setAsync(key, "x"), badArgument);
    assert.throws(() => m.deleteAsync(key), badArgument);
    assert.throws(() => m.batch([{ delete: key }]), badArgument);
    assert.throws(() => m.set("k", key), badArgument);
    assert.throws(() => m.setAsync("k", key), badArgument);
    assert.throws(() => m.batch([{ set: ["k", key] }]), badArgument);
  }
  assert.equal(m.size, 2);
  assert.equal(m.get(new Uint8Array(0)), "empty key");
  assert.equal(m.get("k"), "v");
  // an empty array that is not detached is the empty key still
  assert.equal(m.delete(new Uint8Array(new ArrayBuffer(4), 4)), true);
  assert.equal(m.size, 1);
});

// Transaction.write of a detached array (its buffer transferred, or a view
// of a closed pool) read it as empty: the write "succeeded" and wrote
// nothing, and the transaction committed without the caller's bytes.
test("tx.write and txAsync's write of a detached array fail with TypeError (a bad argument, not ClosedError) and the transaction changes nothing", async () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "kv" });
  const root = pool.root(64);
  const closedView = (() => {
    using other = ObjectPool.create(tempPath("other"), {
      size: 8 * MiB,
      layout: "kv",
    });
    return other.view(other.root(8));
  })();
  for (const bytes of [detached(), closedView]) {
    assert.throws(
      () =>
        pool.tx((tx) => {
          tx.setU64(root, 8, 7);
          tx.write(root, 0, bytes);
        }),
      badArgument,
    );
    await assert.rejects(
      pool.txAsync((tx) => {
        tx.setU64(root, 8, 7);
        tx.write(root, 0, bytes);
      }),
      badArgument,
    );
    const o = pool.tx((tx) => tx.alloc(16));
    assert.throws(() => pool.tx((tx) => tx.write(o, 0, bytes)), badArgument);
  }
  assert.equal(pool.getU64(root, 8), 0);
});

// A bytes value over MAX_VALUE was refused only inside the transaction:
// setAsync and batch returned a future that failed, and a set inside
// pool.tx doomed the enclosing transaction, where a key too long throws
// at the call. (The array is never touched: calloc'd, it takes no memory.)
test("a bytes value over MAX_VALUE is a RangeError at the call of set, setAsync and batch", () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "kv" });
  using m = PersistentMap.open(pool, "m");
  const huge = new Uint8Array(MAX_VALUE + 1);
  assert.throws(() => m.set("k", huge), RangeError);
  assert.throws(() => m.setAsync("k", huge), RangeError);
  assert.throws(() => m.batch([{ set: ["k", huge] }]), RangeError);
  pool.tx(() => {
    assert.throws(() => m.set("k", huge), RangeError);
    m.set("k", "v"); // the enclosing transaction is not doomed
  });
  assert.equal(m.get("k"), "v");
});

// A map descriptor's version word (u32 at 4, written as 1) was never
// read: a descriptor of another version (a later format's, or damage)
// was loaded and written to as this one, as the catalog refuses to do
// with a slot of an unknown kind. The load now refuses it.
test("a map whose descriptor has another version than 1 is a CorruptPoolError, and opens again once mended", () => {
  const path = tempPath();
  {
    using pool = ObjectPool.create(path, { size: 8 * MiB, layout: "kv" });
    using m = PersistentMap.open(pool, "m");
    m.set("k", "v");
  }
  const desc = Number(
    new DataView(peek(path, catalogSlot(0) + 112, 8).buffer).getBigUint64(
      0,
      true,
    ),
  );
  assert.deepEqual(peek(path, desc + 4, 4), Uint8Array.of(1, 0, 0, 0));
  for (const version of [2, 0]) {
    patch(path, desc + 4, Uint8Array.of(version, 0, 0, 0));
    using pool = ObjectPool.open(path, { layout: "kv" });
    assert.throws(
      () => PersistentMap.open(pool, "m"),
      (e) =>
        e instanceof CorruptPoolError &&
        e.structure === `the map "m": its descriptor` &&
        new RegExp(`version ${version}`).test(e.message),
    );
  }
  patch(path, desc + 4, Uint8Array.of(1, 0, 0, 0));
  using pool = ObjectPool.open(path, { layout: "kv" });
  using m = PersistentMap.open(pool, "m");
  assert.equal(m.get("k"), "v");
});

// Probed, found sound: the bytes of a key or value are taken when the
// operation is staged (at the call), so arrays changed after the call and
// a view of the pool's own root changed by a later transaction are
// stored as they were at the call, small values and ones too large to be
// built in the log alike.
moverTest(
  "arrays changed after `setAsync` or `batch` returns, and a view of the pool changed later, are stored as they were at the call",
  async (mover) => {
    const path = tempPath();
    const fill = (n: number, b: number) => new Uint8Array(n).fill(b);
    {
      using pool = ObjectPool.create(path, {
        size: 32 * MiB,
        layout: "kv",
        mover,
      });
      using m = PersistentMap.open(pool, "m");
      const root = pool.root(4096);
      pool.tx((tx) => tx.write(root, 0, fill(4096, 7)));
      const key = Uint8Array.of(1, 2, 3);
      const small = fill(100, 1);
      const big = fill(100_000, 2);
      const view = pool.view(root);
      const fs = [
        m.setAsync(key, small),
        m.setAsync("big", big),
        m.batch([{ set: ["view", view] }, { set: [key, small] }]),
      ];
      key.fill(9);
      small.fill(9);
      big.fill(9);
      // a later transaction changes the root the view shows
      fs.push(pool.txAsync((tx) => tx.write(root, 0, fill(4096, 8))));
      for (const f of fs) await f;
      assert.deepEqual(m.get(Uint8Array.of(1, 2, 3)), fill(100, 1));
      assert.equal(m.get(key), undefined);
      assert.deepEqual(m.get("big"), fill(100_000, 2));
      assert.deepEqual(m.get("view"), fill(4096, 7));
      assert.deepEqual(pool.read(root, 0, 4096), fill(4096, 8));
    }
    using pool = ObjectPool.open(path, { layout: "kv", mover });
    using m = PersistentMap.open(pool, "m");
    assert.equal(m.size, 3);
    assert.deepEqual(m.get(Uint8Array.of(1, 2, 3)), fill(100, 1));
    assert.deepEqual(m.get("big"), fill(100_000, 2));
    assert.deepEqual(m.get("view"), fill(4096, 7));
  },
);

/**
 * A traced map workload across a leaf's end (508 slots): a setup of 500
 * keys, then batches with a key set twice, set then deleted, deleted then
 * set, and deletes of absent keys, in groups and alone, a synchronous
 * transaction that grows the map and aborts, and sets across the end of
 * the second leaf's first slots freed by deletes.
 */
function recordMapTrace(
  model: PersistenceModel,
  seed: number,
  path: string,
  mover: CrashMover,
): ObjTrace {
  const rand = xorshift(seed);
  return traceObjWorkload(model, seed, path, mover, (pool, mark, base) => {
    const state: ModelState = { ...base.state, map: new Map() };
    const states = [...base.states];
    const m = PersistentMap.open(pool, "m");
    let operations = 0;
    // one transaction: its ops, staged by `run`, then the model's state
    const one = (ops: [string, string | null][], run: () => void) => {
      const k = states.length;
      mark(`issue ${k}`);
      run();
      for (const [key, v] of ops) {
        if (v === null) state.map.delete(key);
        else state.map.set(key, v);
      }
      states.push(fingerprint(state));
      operations++;
      return k;
    };
    const ack = (k: number) => mark(`ack ${k}`);
    const asBatch = (ops: [string, string | null][]) =>
      ops.map(([key, v]) => v === null ? { delete: key } : { set: [key, v] });
    const fill: [string, string | null][] = [];
    for (let i = 0; i < 500; i++) fill.push([`k${i}`, `v${i}`]);
    ack(one(fill, () =>
      pool.tx(() => {
        for (const [key, v] of fill) m.set(key, v!);
      })));
    let fresh = 0;
    for (let round = 0; round < 4; round++) {
      const fs: Future<unknown>[] = [];
      const ks: number[] = [];
      for (let b = 0; b < 3; b++) {
        const a = `n${fresh++}`;
        const old = `k${Math.floor(rand() * 500)}`;
        const ops: [string, string | null][] = [
          [a, `${a}.1`],
          [old, null],
          [`n${fresh++}`, "x".repeat(Math.floor(rand() * 300))],
          [a, `${a}.2`],
          [old, `${old}.again`],
          [`gone${round}`, null],
          [`n${fresh}`, "y"],
          [`n${fresh++}`, null],
        ];
        // a batch of its own, or a group of batches
        const f = m.batch(asBatch(ops) as never);
        const k = one(ops, () => {});
        if (rand() < 0.4) {
          waitAll([f]);
          ack(k);
        } else {
          fs.push(f);
          ks.push(k);
        }
      }
      waitAll(fs);
      for (const k of ks) ack(k);
      // grows the map (a fresh leaf when the free slots ran out), then
      // aborts: nothing of it is there
      try {
        pool.tx(() => {
          for (let i = 0; i < 12; i++) m.set(`abort${i}`, "z");
          throw new Error("abort");
        });
      } catch {
        // the model is unchanged
      }
      const d: [string, string | null][] = [[`k${round}`, null], [
        `s${round}`,
        "s",
      ]];
      ack(one(d, () =>
        pool.tx(() => {
          m.delete(d[0][0]);
          m.set(d[1][0], d[1][1]!);
        })));
    }
    assert.ok(m.size > 508, `${m.size} keys: the map never grew a leaf`);
    return { states, operations };
  });
}

// Probed, found sound: batches with duplicate keys across a leaf's end,
// in groups and alone, and a transaction that grows the map and aborts,
// are each all or nothing after any crash, and the heap holds exactly the
// map's objects.
test(
  "after any crash, map batches with duplicate keys and growth past a leaf are all or nothing, leak-free (both models, cpu and threads)",
  () => {
    const dir = tempDir();
    const report = emptyObjReport();
    let seed = 1;
    for (const model of [CACHE_LINE, PAGE]) {
      for (const mover of ["cpu", "threads"] as const) {
        checkObjTrace(
          recordMapTrace(model, seed++, join(dir, "trace"), mover),
          {
            subsets: OBJ_CI_SUBSETS,
            recoveryImages: 0,
            maxImages: 400,
            dir,
          },
          report,
        );
      }
    }
    console.log(formatObjReport(report));
    assert.deepEqual(report.examples, []);
    assert.equal(report.problems, 0);
    assert.ok(report.images >= 800, `only ${report.images} images`);
    assert.ok(report.recovered > 0, "no image replayed the log");
  },
  { timeout: 240_000 },
);
