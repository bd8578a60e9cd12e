// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The object store's image fuzzer: seeded mutations of a pool image that
 * holds objects, a map and log records not yet checkpointed (the pool
 * header, the state page, the log, the chunk table, run bitmaps, object
 * headers, map nodes); each mutant is opened, read and checked in a child
 * process. Every outcome must be a typed error or a pool that reads (with
 * problems reported by `checkObjectPool` allowed): never a crash, a hang,
 * or an untyped exception.
 *
 * @module
 */
import { copyFileSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { checkObjectPool, ObjectPool, PersistentMap } from "../../obj/mod.ts";
import { LOG_OFFSET } from "../../obj/layout.ts";
import { describeError, isTypedError } from "./checker.ts";
import { pick, xorshift } from "./random.ts";

/** Where the interesting structures of the base image lie. */
export interface ObjFuzzLayout {
  size: number;
  /** File offset of the first record not checkpointed. */
  logStart: number;
  logUsed: number;
  chunkTable: number;
  heap: number;
  /** Offsets of objects (their headers lie 16 bytes before). */
  objects: number[];
}

/** Write the base image at `path`: a pool with objects, a map and a log. */
export function writeObjFuzzBase(path: string): ObjFuzzLayout {
  const tmp = `${path}.live`;
  const objects: number[] = [];
  let layout: ObjFuzzLayout;
  {
    using pool = ObjectPool.create(tmp, {
      size: 8 << 20,
      layout: "fuzz",
      logSize: 1 << 20,
    });
    const root = pool.root(8 * 32);
    using m = PersistentMap.open(pool, "m");
    for (let i = 0; i < 32; i++) {
      pool.tx((tx) => {
        const o = tx.alloc(i < 30 ? 10 + 37 * i : 100_000);
        tx.write(o, 0, new Uint8Array(o.size).fill(i));
        tx.setU64(root, 8 * i, o.offset);
        objects.push(o.offset);
      });
      m.set(`key ${i}`, `value ${"x".repeat(i * 10)}`);
    }
    pool.flush();
    // more, not checkpointed: the copy has log records to replay
    for (let i = 0; i < 20; i++) {
      m.set(`late ${i}`, new Uint8Array(50).fill(i));
      pool.tx((tx) => tx.write(pool.object(objects[i]), 0, Uint8Array.of(99)));
    }
    const stats = pool.stats();
    copyFileSync(tmp, path);
    const head = readFileSync(path).subarray(0, 8192);
    const dv = new DataView(head.buffer, head.byteOffset);
    const checkpoint = Number(dv.getBigUint64(4096, true));
    layout = {
      size: stats.size,
      logStart: LOG_OFFSET + checkpoint % stats.logSize,
      logUsed: stats.logUsed,
      chunkTable: Number(dv.getBigUint64(48, true)),
      heap: Number(dv.getBigUint64(56, true)),
      objects,
    };
  }
  rmSync(tmp, { force: true });
  return layout;
}

/** The structures a mutation may target. */
const TARGETS = [
  "header",
  "state",
  "log",
  "table",
  "bitmap",
  "object",
  "node",
] as const;

/** Mutate `image` in place (seeded); returns the target's name. */
export function mutateObj(
  image: Uint8Array,
  layout: ObjFuzzLayout,
  rand: () => number,
): string {
  const target = TARGETS[pick(rand, TARGETS.length)];
  let lo = 0;
  let len = 64;
  switch (target) {
    case "header":
      lo = 0;
      len = 1124;
      break;
    case "state":
      lo = 4096;
      len = 4096;
      break;
    case "log":
      lo = layout.logStart;
      len = Math.max(64, layout.logUsed);
      break;
    case "table":
      lo = layout.chunkTable;
      len = 8 * 32;
      break;
    case "bitmap":
      lo = layout.heap + 262144 * pick(rand, 4);
      len = 512;
      break;
    case "object":
      lo = layout.objects[pick(rand, layout.objects.length)] - 16;
      len = 16;
      break;
    case "node":
      lo = layout.heap;
      len = 262144 * 6;
      break;
  }
  const flips = 1 + pick(rand, 4);
  for (let i = 0; i < flips; i++) {
    const at = lo + pick(rand, len);
    if (rand() < 0.5) image[at] ^= 1 << pick(rand, 8);
    else image[at] = pick(rand, 256);
  }
  return target;
}

/** What one mutant did. */
export type FuzzVerdict = "refused" | "consistent" | "reported" | "failure";

/** Open, read and check the pool at `path`. */
export function probeObj(
  path: string,
): { verdict: FuzzVerdict; detail: string } {
  let pool: ObjectPool;
  try {
    pool = ObjectPool.open(path, { layout: "fuzz" });
  } catch (e) {
    return isTypedError(e)
      ? { verdict: "refused", detail: describeError(e) }
      : { verdict: "failure", detail: `open threw ${describeError(e)}` };
  }
  try {
    const root = pool.rootSize > 0 ? pool.root(pool.rootSize) : undefined;
    if (root !== undefined) {
      for (let i = 0; i < Math.floor(root.size / 8); i++) {
        const off = pool.getU64(root, 8 * i);
        if (off !== 0) pool.read(pool.object(off));
      }
    }
    using m = PersistentMap.open(pool, "m");
    for (const _ of m.entries()) { /* read every value */ }
    m.set("after", "fuzz");
    const report = checkObjectPool(pool);
    return report.problems.length === 0
      ? { verdict: "consistent", detail: "" }
      : { verdict: "reported", detail: report.problems[0] };
  } catch (e) {
    return isTypedError(e)
      ? { verdict: "reported", detail: describeError(e) }
      : { verdict: "failure", detail: `using it threw ${describeError(e)}` };
  } finally {
    try {
      pool.close();
    } catch {
      // a damaged pool may refuse to close cleanly; it is unmapped anyway
    }
  }
}

/**
 * The child side: mutants `from`..`from+count` of the base at `base`,
 * each written to `scratch` and probed; prints one JSON line per mutant.
 */
export function objFuzzChild(
  base: string,
  layoutJson: string,
  scratch: string,
  from: number,
  count: number,
): void {
  const layout = JSON.parse(layoutJson) as ObjFuzzLayout;
  const original = readFileSync(base);
  // one image refilled per mutant, not a fresh 8 MiB array each (its page
  // faults, and on Bun a copy out of a Buffer, were most of a child's time)
  const image = new Uint8Array(original.byteLength);
  for (let n = from; n < from + count; n++) {
    image.set(original);
    const rand = xorshift(Math.imul(n + 1, 0x9e3779b1));
    for (let i = 0; i < 4; i++) rand();
    const target = mutateObj(image, layout, rand);
    writeFileSync(scratch, image);
    const r = probeObj(scratch);
    console.log(JSON.stringify({ n, target, ...r }));
  }
}
