// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A user array detached after an `*Async` call, before its future's first
 * poll, is the caller's error, as it is at the call: a `TypeError` naming
 * the argument, from every public entry point whose future copies from or
 * into a user array. `ClosedError` stays for a closed mover, mapping or
 * store (the views of a mapping closed meanwhile included).
 *
 * @module
 */
import {
  BlockPool,
  ClosedError,
  LogStream,
  mapFile,
  ObjectPool,
  PersistentMap,
  type Vdm,
} from "../mod.ts";
import { assert, moverTest, tempPath } from "./_harness.ts";

/** An array of `n` bytes and the transfer that detaches it. */
function detachable(n: number): [Uint8Array, () => void] {
  const buf = new ArrayBuffer(n);
  return [new Uint8Array(buf).fill(3), () => void buf.transfer()];
}

/**
 * Assert that the future `call` makes fails, once its array is detached
 * after the call, with the TypeError of the shared check naming `name`.
 */
async function detachedAfterCall(
  n: number,
  call: (bytes: Uint8Array) => PromiseLike<unknown>,
  name: string,
  op: string,
): Promise<void> {
  const [bytes, detach] = detachable(n);
  const future = call(bytes);
  detach();
  await assert.rejects(
    async () => await future,
    (e) =>
      e instanceof TypeError && !(e instanceof ClosedError) &&
      e.message.startsWith(`Cannot ${op}: ${name} is detached`),
  );
}

/** Whether `e` is a TypeError, no ClosedError, whose message matches. */
function typeError(e: unknown, message: RegExp): boolean {
  return e instanceof TypeError && !(e instanceof ClosedError) &&
    message.test(e.message);
}

moverTest(
  "a mover's futures whose array was detached after the call fail with `TypeError`, not `ClosedError`",
  async (mover: Vdm) => {
    const dst = () => new Uint8Array(64);
    await detachedAfterCall(64, (s) => mover.memcpy(dst(), s), "src", "memcpy");
    await detachedAfterCall(64, (d) => mover.memcpy(d, dst()), "dst", "memcpy");
    await detachedAfterCall(
      64,
      (s) => mover.memmove(dst(), s),
      "src",
      "memmove",
    );
    await detachedAfterCall(64, (d) => mover.memset(d, 1), "dst", "memset");
    await detachedAfterCall(64, (d) => mover.flush(d), "dst", "flush");
    await detachedAfterCall(
      64,
      (s) => mover.batch([{ op: "memcpy", dst: dst(), src: s }]),
      "src",
      "memcpy",
    );
  },
);

moverTest(
  "a mapping's async copies whose source was detached after the call fail with `TypeError`; its close gives `ClosedError`",
  async (mover: Vdm) => {
    using map = mapFile(tempPath(), { size: 1 << 16, mover });
    await detachedAfterCall(
      64,
      (s) => map.memcpyAsync(0, s),
      "src",
      "memcpyAsync",
    );
    await detachedAfterCall(
      64,
      (s) =>
        map.memcpyManyAsync([{ offset: 0, data: new Uint8Array(8) }, {
          offset: 64,
          data: s,
        }]),
      "data",
      "memcpyManyAsync",
    );
    // a mover's copy into a view of a mapping closed meanwhile, and the
    // mapping's own copy: the mapping is closed
    const other = mapFile(tempPath(), { size: 1 << 16, mover });
    const into = mover.memcpy(other.view(0, 64), new Uint8Array(64));
    const own = other.memcpyAsync(0, new Uint8Array(64));
    other.close();
    await assert.rejects(async () => await into, ClosedError);
    await assert.rejects(async () => await own, ClosedError);
  },
);

moverTest(
  "a block pool's async writes and reads whose array was detached after the call fail with `TypeError`",
  async (mover: Vdm) => {
    using pool = BlockPool.create(tempPath(), {
      poolSize: 1 << 25,
      blockSize: 512,
      mover,
    });
    await detachedAfterCall(
      512,
      (d) => pool.writeAsync(1, d),
      "data",
      "writeAsync",
    );
    await detachedAfterCall(
      512,
      (d) => pool.writeMany([{ lba: 1, data: d }]),
      "data",
      "writeMany",
    );
    await detachedAfterCall(
      512,
      (into) => pool.readAsync(1, into),
      "into",
      "readAsync",
    );
    assert.equal(pool.check().consistent, true);
    // a pool closed meanwhile is still closed
    const other = BlockPool.create(tempPath(), {
      poolSize: 1 << 25,
      blockSize: 512,
      mover,
    });
    const w = other.writeAsync(1, new Uint8Array(512));
    other.close();
    await assert.rejects(async () => await w, ClosedError);
  },
);

moverTest(
  "`LogStream.appendAsync()` of data detached after the call fails with the `TypeError` it gives at the call",
  async (mover: Vdm) => {
    using s = LogStream.create(tempPath(), { size: 1 << 20, mover });
    const r = s.allocateRegion(4096);
    const [gone, detach] = detachable(8);
    assert.throws(
      () => s.appendAsync(r, (detach(), gone)),
      (e) => typeError(e, /^Cannot appendAsync: data/),
    );
    const [data, later] = detachable(8);
    const f = s.appendAsync(r, data);
    later();
    await assert.rejects(
      f,
      new TypeError(
        "Cannot appendAsync: data's buffer is detached (transferred); nothing was written",
      ),
    );
  },
);

moverTest(
  "`txAsync()` and `PersistentMap.setAsync()` copy their arrays at the call or refuse them detached with `TypeError`",
  async (mover: Vdm) => {
    using pool = ObjectPool.create(tempPath(), {
      size: 8 << 20,
      layout: "detached",
      mover,
    });
    const root = pool.root(64);
    // copied at the call: a later detach changes nothing
    let [bytes, detach] = detachable(8);
    const tx = pool.txAsync((t) => t.write(root, 0, bytes));
    detach();
    await tx;
    assert.deepEqual([...pool.read(root, 0, 8)], Array(8).fill(3));
    // with a signal the callback runs at the first poll: its write sees
    // the detached array, the caller's error
    [bytes, detach] = detachable(8);
    const late = pool.txAsync((t) => t.write(root, 8, bytes), {
      signal: new AbortController().signal,
    });
    detach();
    await assert.rejects(
      async () => await late,
      (e) => typeError(e, /^Cannot write: bytes is detached/),
    );
    const map = PersistentMap.open(pool, "m");
    for (const signal of [undefined, new AbortController().signal]) {
      const [key, k] = detachable(4);
      const [value, v] = detachable(8);
      const set = map.setAsync(key, value, { signal });
      k();
      v();
      await set;
      assert.deepEqual(
        [...map.get(Uint8Array.of(3, 3, 3, 3))!],
        Array(8).fill(3),
      );
    }
  },
);
