// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Found by a third review of the log store, single thread (probes first,
// then these tests).
import { ClosedError } from "../errors/mod.ts";
import { LogStream } from "../stream/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;

test("`append()` through a freed handle whose slot now holds a smaller region is a ClosedError, as `appendAsync()` and `reserve()` give", () => {
  // Bug: the synchronous append checks its handle only under the lock,
  // after the entry's length was checked against the size of whatever
  // region its slot held now: an entry too big for the new region was a
  // RangeError naming that region's size, not the ClosedError of the
  // freed handle.
  using s = LogStream.create(tempPath(), { size: MiB });
  const r = s.allocateRegion(65536);
  s.freeRegion(r);
  const r2 = s.allocateRegion(4096);
  assert.equal(r2.id, r.id);
  const data = new Uint8Array(8000);
  for (
    const [name, f] of [
      ["append", () => s.append(r, data)],
      ["appendAsync", () => s.appendAsync(r, data)],
      ["reserve", () => s.reserve(r, data.length)],
    ] as const
  ) {
    assert.throws(
      f,
      (e) => e instanceof ClosedError && /region 0 \(freed\)/.test(e.message),
      name,
    );
  }
  assert.equal([...s.entries(r2)].length, 0);
  assert.equal(r2.used, 0);
});

/** `p`'s outcome, or "stuck" when it takes more than half a second. */
function soon<T>(p: Promise<T>): Promise<T | "stuck"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stuck = new Promise<"stuck">((resolve) => {
    timer = setTimeout(() => resolve("stuck"), 500);
  });
  return Promise.race([p, stuck]).finally(() => clearTimeout(timer));
}

test("`return()` on a `follow()` iterator waiting for an entry ends it at once, and the waiting `next()` with it", async () => {
  // Bug: follow() was an async generator, whose return() is queued behind
  // a next() in progress: with no new entry, both stayed pending (and the
  // follower kept polling on timers) until an append, a free of the
  // region or the stream's close, so a reader that gave up waiting
  // (next() raced against a timeout) could not stop it.
  using s = LogStream.create(tempPath(), { size: MiB });
  const r = s.allocateRegion(4096);
  s.append(r, Uint8Array.of(1));
  const it = s.follow(r);
  assert.equal((await it.next()).value?.data[0], 1);
  const waiting = it.next();
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.deepEqual(await soon(it.return!(undefined)), {
    value: undefined,
    done: true,
  });
  assert.deepEqual(await soon(waiting), {
    value: undefined,
    done: true,
  });
  // ended for good: a later entry is not seen
  s.append(r, Uint8Array.of(2));
  assert.deepEqual(await it.next(), { value: undefined, done: true });
});

test("`throw()` on a `follow()` iterator waiting for an entry ends it at once, rejecting with the error", async () => {
  // Bug: as return() was, throw() was queued behind the next() in
  // progress, which waited for an entry that might never come.
  using s = LogStream.create(tempPath(), { size: MiB });
  const r = s.allocateRegion(4096);
  const it = s.follow(r);
  const waiting = it.next();
  await new Promise((resolve) => setTimeout(resolve, 5));
  const thrown = it.throw!(new Error("given up")).then(
    () => "resolved",
    (e: Error) => e.message,
  );
  assert.equal(await soon(thrown), "given up");
  assert.deepEqual(await soon(waiting), {
    value: undefined,
    done: true,
  });
  s.append(r, Uint8Array.of(2));
  assert.deepEqual(await it.next(), { value: undefined, done: true });
});

test("`follow()` takes its options when called, not at its first `next()`", async () => {
  // Bug: the follower read `from`, `level` and `signal` only when its
  // first next() ran the generator's body: an options object changed or
  // reused for another call meanwhile changed this follower too, or
  // handed it a value its call never checked.
  using s = LogStream.create(tempPath(), { size: MiB });
  const r = s.allocateRegion(4096);
  const first = s.append(r, Uint8Array.of(1));
  s.append(r, Uint8Array.of(2));
  const options: { from?: number } = { from: first };
  const it = s.follow(r, options);
  options.from = first + 1;
  const other = s.follow(r, options);
  assert.equal((await it.next()).value?.data[0], 1);
  assert.equal((await other.next()).value?.data[0], 2);
  await it.return!(undefined);
  await other.return!(undefined);
});

test("`appendAsync()` reads its signal once: options whose signal changes between reads hold no timestamp", async () => {
  // Bug: the signal was checked, the entry reserved, then the future's
  // constructor read `options.signal` again: a getter giving something
  // else the second time made the constructor throw after the
  // reservation, whose timestamp was then held for good (every later
  // append stuck behind it, and close with them).
  // closed at the end only: with the timestamp held, close hangs too
  const s = LogStream.create(tempPath(), { size: MiB });
  const r = s.allocateRegion(4096);
  let reads = 0;
  const options = {
    get signal() {
      return (reads++ === 0 ? undefined : "not a signal") as
        | AbortSignal
        | undefined;
    },
  };
  try {
    await s.appendAsync(r, Uint8Array.of(1), options);
  } catch {
    // refused, or not: either way nothing may be held
  }
  const later = s.appendAsync(r, Uint8Array.of(2));
  const stuck = new Promise<"stuck">((resolve) =>
    setTimeout(() => resolve("stuck"), 500)
  );
  const ts = await Promise.race([later, stuck]);
  assert.notEqual(ts, "stuck");
  assert.deepEqual(
    [...s.entries(r)].map((e) => e.data[0]).at(-1),
    2,
  );
  s.close();
});
