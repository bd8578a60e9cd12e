// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The shared part of the closed-surface tests (`closed_surface*_test.ts`,
 * one file per store): the contract "use after `close()` throws
 * ClosedError and touches no unmapped memory", held by reflection. Each
 * class's prototype chain is walked and every method and getter must have
 * an entry in that class's call table (or be listed as an allowed
 * exception, with the reason), so a new member fails until it is called
 * after close ({@linkcode checkClosedSurface}). The library's convention
 * for async methods is the synchronous one: `Cannot ...` checks,
 * ClosedError included, throw at the call (see `BlockPool.writeAsync`'s
 * `@throws`), so a call table entry must throw at once; a lazy iterator's
 * entry is called with its first `next()`, which must throw (or reject)
 * with ClosedError.
 *
 * @module
 */
import {
  ClosedError,
  LogStream,
  type ObjectHandle,
  ObjectPool,
  PmemError,
  type Region,
} from "../mod.ts";
import { assert, tempPath } from "./_harness.ts";

/** Members that are not use: the ones the contract itself names. */
const NOT_USE: ReadonlySet<PropertyKey> = new Set([
  "constructor",
  "close",
  "closed",
  Symbol.dispose,
]);

/** Every method and getter of `obj`'s prototype chain, but {@linkcode NOT_USE}. */
export function membersOf(obj: object): PropertyKey[] {
  const out = new Set<PropertyKey>();
  for (
    let p = Object.getPrototypeOf(obj);
    p !== null && p !== Object.prototype;
    p = Object.getPrototypeOf(p)
  ) {
    for (const k of Reflect.ownKeys(p)) if (!NOT_USE.has(k)) out.add(k);
  }
  return [...out];
}

// deno-lint-ignore no-explicit-any
export type Any = any;
/** One use of a member: arguments valid on the open object. */
export type Call<T> = (o: T) => unknown;
/** A call table: one entry per member (a getter's entry reads it). */
export type Calls<T> = Record<PropertyKey, Call<T>>;

export function isIterator(r: unknown): r is Iterator<unknown> {
  return typeof r === "object" && r !== null &&
    typeof (r as { next?: unknown }).next === "function" &&
    typeof (r as { then?: unknown }).then !== "function";
}

export function isThenable(r: unknown): r is PromiseLike<unknown> {
  return typeof r === "object" && r !== null &&
    typeof (r as { then?: unknown }).then === "function";
}

export function describe(v: unknown): string {
  if (v instanceof Error) return `${v.name}: ${v.message}`;
  if (typeof v === "object" && v !== null) return v.constructor?.name ?? "{}";
  return String(v);
}

/**
 * `call` on a closed object: ClosedError at once (or at a lazy iterator's
 * first step). Returns what went wrong instead, if anything.
 */
export async function closedOutcome(
  call: () => unknown,
): Promise<string | null> {
  let r: unknown;
  try {
    r = call();
  } catch (e) {
    return e instanceof ClosedError ? null : `threw ${describe(e)}`;
  }
  if (isThenable(r)) {
    // settled, so nothing is left in flight; still wrong: the convention
    // is the synchronous throw
    const out = await Promise.resolve(r).then(
      (v) => `resolved ${describe(v)}`,
      (e) => `rejected ${describe(e)}`,
    );
    return `returned a future (${out})`;
  }
  if (isIterator(r)) {
    try {
      await r.next();
    } catch (e) {
      return e instanceof ClosedError ? null : `next() threw ${describe(e)}`;
    }
    return "its iterator's next() did not throw";
  }
  return `returned ${describe(r)}`;
}

/** The result of an open object's call, settled (a future awaited). */
export async function settle(r: unknown): Promise<void> {
  if (isThenable(r)) await r;
}

/** An object to close, and a call table of arguments valid for it. */
export interface Made<T> {
  obj: T;
  close(): void;
  calls: Calls<T>;
}

/** Options of {@linkcode checkClosedSurface}. */
export interface SurfaceOptions {
  /** Members that stay readable after close, each with the reason. */
  allowed?: Record<PropertyKey, string>;
  /** Whether the calls are tried on an open twin first. @default true */
  openCheck?: boolean;
}

/**
 * The whole check of one closable: its call table and `allowed` cover its
 * members exactly; every call works while it is open (on a twin made the
 * same way) and throws ClosedError after close; allowed members stay
 * readable; `close()` twice and `[Symbol.dispose]()` are no-ops.
 */
export async function checkClosedSurface<T extends object>(
  name: string,
  make: () => Made<T>,
  options: SurfaceOptions = {},
): Promise<void> {
  const allowed = options.allowed ?? {};
  if (options.openCheck ?? true) {
    const live = make();
    for (const k of Reflect.ownKeys(live.calls)) {
      // valid while open (device queries aside: tmpfs answers few)
      try {
        await settle(live.calls[k as string](live.obj));
      } catch (e) {
        if (!(e instanceof PmemError) || e instanceof ClosedError) throw e;
      }
    }
    live.close();
  }

  const { obj, close, calls } = make();
  const listed = new Set<PropertyKey>([
    ...Reflect.ownKeys(calls),
    ...Reflect.ownKeys(allowed),
  ]);
  const members = membersOf(obj);
  for (const m of members) {
    assert.ok(listed.has(m), `${name}.${String(m)} has no call table entry`);
  }
  for (const k of listed) {
    assert.ok(members.includes(k), `${name}.${String(k)} is not a member`);
  }
  if ("closed" in obj) {
    assert.equal((obj as { closed: unknown }).closed, false, `${name} open`);
  }
  close();
  close(); // idempotent
  (obj as Partial<Disposable>)[Symbol.dispose]?.(); // a no-op too
  if ("closed" in obj) assert.equal((obj as { closed: unknown }).closed, true);
  const wrong: string[] = [];
  for (const k of Reflect.ownKeys(calls)) {
    const out = await closedOutcome(() => calls[k as string](obj));
    if (out !== null) wrong.push(`${name}.${String(k)}: ${out}`);
  }
  assert.deepEqual(wrong, [], "after close, not a ClosedError");
  for (const k of Reflect.ownKeys(allowed)) {
    (obj as Any)[k]; // readable: no memory behind it
  }
}

/** `p` settled: its value or error, or "hung" after `ms`. */
export async function settledWithin(
  p: PromiseLike<unknown>,
  ms = 5000,
): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise((r) => timer = setTimeout(() => r("hung"), ms));
  try {
    return await Promise.race([
      Promise.resolve(p).then(() => "complete", (e) => e),
      hung,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- fixtures of the store files ----

/** A block of the block pools. */
export const BLOCK = new Uint8Array(512).fill(3);

/** An entry of the log stores. */
export const ENTRY = Uint8Array.of(1, 2, 3);

/** A stream with a region, a spare one and two reservations made. */
export function makeStream(): {
  s: LogStream;
  r: Region;
  calls: Calls<LogStream>;
} {
  const s = LogStream.create(tempPath(), { size: 1 << 20 });
  const r = s.allocateRegion(64 << 10);
  const spare = s.allocateRegion(4096);
  s.append(r, ENTRY);
  const [res1, res2] = [s.reserve(r, 3), s.reserve(r, 3)];
  const calls: Calls<LogStream> = {
    size: (s) => s.size,
    blockSize: (s) => s.blockSize,
    committedTimestamp: (s) => s.committedTimestamp,
    persistedTimestamp: (s) => s.persistedTimestamp,
    allocateRegion: (s) => s.allocateRegion(4096),
    freeRegion: (s) => s.freeRegion(spare),
    regions: (s) => s.regions(),
    append: (s) => s.append(r, ENTRY),
    reserve: (s) => s.cancel(s.reserve(r, 3)),
    publish: (s) => s.publish(res1),
    cancel: (s) => s.cancel(res2),
    appendAsync: (s) => s.appendAsync(r, ENTRY),
    waitCommitted: (s) => s.waitCommitted(1),
    waitPersisted: (s) => s.waitPersisted(1),
    entries: (s) => s.entries(r),
    follow: (s) => s.follow(r),
    truncate: (s) => s.truncate(r, 1),
  };
  return { s, r, calls };
}

/** An object pool with its root. */
export function makeObjectPool(): { pool: ObjectPool; root: ObjectHandle } {
  const pool = ObjectPool.create(tempPath(), { size: 8 << 20, layout: "c" });
  return { pool, root: pool.root(64) };
}
