// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The metadata fuzzer: seeded mutations of a pool's header, descriptor,
 * info blocks, map and flog, each opened in a child process, which must
 * give a typed error or a pool that opens, checks (consistent, or with
 * the problem reported), reads and writes without a runtime failure.
 * Never a signal, an uncaught runtime error or a hang.
 *
 * Mutations flip bits, overwrite bytes, set a 32-bit field to a value
 * near a boundary, zero a span, copy or swap map entries, flog entries
 * and slots, or copy one info block over the other; after a header or info mutation
 * the checksum is often fixed, so validation past the checksum runs too.
 *
 * The child side (`fuzz.ts --child BASE SCRATCH BLOCKSIZE FROM COUNT`)
 * prints `begin SEED` before each mutant and `result SEED JSON` after,
 * so the parent knows which mutant a crash happened on.
 *
 * @module
 */
import { readFileSync, writeFileSync, writeSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { fletcher64 } from "../../pmdk/checksum.ts";
import { BlockPool, MIN_POOL_SIZE } from "../../blk/mod.ts";
import { decodeBttInfo } from "../../blk/layout.ts";
import { mapFile } from "../../pmem2/mod.ts";
import { type ChildResult, mutantChildMain, mutantRunner } from "./child.ts";
import { describeError, isTypedError } from "./checker.ts";
import { Payloads } from "./payload.ts";
import { pick, xorshift } from "./random.ts";
import { poolRegions, type Region, type RegionKind } from "./regions.ts";
import { Driver } from "./workload.ts";

/** How opening one mutant went. */
export interface FuzzOutcome {
  /**
   * `refused`: a typed error at open; `consistent`: it opened and check()
   * found nothing; `reported`: it opened and check() listed problems;
   * `failed`: an untyped error, check() threw, or the child died.
   */
  verdict: "refused" | "consistent" | "reported" | "failed";
  /** The error, the first problem, or why it failed. */
  detail: string;
  /** Reads by result: own (the block's payload), foreign (another
   * block's), zero, error (a typed error), torn. */
  reads: Record<string, number>;
  /** A write after the open: `ok`, `refused` (typed error) or `failed`. */
  write: string;
}

/** What a fuzz run did and found. */
export interface FuzzReport {
  /** Mutants opened. */
  mutants: number;
  /** Mutants by verdict. */
  verdicts: Record<string, number>;
  /** Mutants by target region. */
  targets: Record<string, number>;
  /** Reads by result, over every mutant that opened. */
  reads: Record<string, number>;
  /** Writes after an open by result. */
  writes: Record<string, number>;
  /** Child processes run. */
  children: number;
  /** The failures: seed, mutation and why. */
  failures: string[];
}

const TARGETS: readonly RegionKind[] = [
  "header",
  "descriptor",
  "info",
  "backup",
  "map",
  "map",
  "flog",
  "flog",
];

function getU32(b: Uint8Array, at: number): number {
  return new DataView(b.buffer, b.byteOffset).getUint32(at, true);
}

function setU32(b: Uint8Array, at: number, v: number): void {
  new DataView(b.buffer, b.byteOffset).setUint32(at, v >>> 0, true);
}

/** Store the checksum of a 4 KiB header or info block at 4088. */
function fixChecksum(block: Uint8Array, header: boolean): void {
  // a header with CKSUM_2K counts its bytes from 2048 on as zero
  const end = header && (getU32(block, 16) & 0x2) !== 0 ? 2048 : 4096;
  const sum = fletcher64(block.subarray(0, 4096), 4088, end);
  new DataView(block.buffer, block.byteOffset).setBigUint64(4088, sum, true);
}

/**
 * Apply the mutation of `seed` to a pool image in place.
 *
 * @param image the pool file's bytes (a mapping of it, or a copy)
 * @param regions the pool's regions ({@linkcode poolRegions})
 * @param seed which mutation
 * @returns what it did, e.g. "flog: u32 @16777300 = 0xffffffff"
 */
export function mutate(
  image: Uint8Array,
  regions: readonly Region[],
  seed: number,
): string {
  const rand = xorshift(Math.imul(seed + 1, 0x9e3779b1));
  const kind = TARGETS[pick(rand, TARGETS.length)];
  const both = (kind === "info" || kind === "backup") && rand() < 0.3;
  const r = regions.find((x) => x.kind === kind && x.arena <= 0)!;
  const info = decodeBttInfo(
    image.subarray(regions.find((x) => x.kind === "info")!.offset),
  );
  const boundary = [
    0,
    1,
    2,
    3,
    0xffffffff,
    0x80000000,
    0x40000000,
    0xc0000000,
    0x3fffffff,
    info.externalNlba - 1,
    info.externalNlba,
    info.internalNlba - 1,
    info.internalNlba,
    (info.internalNlba | 0xc0000000) >>> 0,
    Math.floor(rand() * 2 ** 32),
  ];
  const value = () => boundary[pick(rand, boundary.length)];
  // fields live at the start of the header and info blocks
  const fieldAt = () =>
    r.offset +
    4 * pick(
        rand,
        kind === "map" || kind === "flog" || rand() < 0.3
          ? r.length / 4
          : kind === "descriptor"
          ? 2
          : 36,
      );
  let what: string;
  const op = pick(rand, 5);
  if (op === 0) {
    const n = 1 + pick(rand, 8);
    for (let i = 0; i < n; i++) {
      image[r.offset + pick(rand, r.length)] ^= 1 << pick(rand, 8);
    }
    what = `${n} bits flipped`;
  } else if (op === 1) {
    const at = fieldAt();
    const v = value();
    setU32(image, at, v);
    what = `u32 @${at} = 0x${v.toString(16)}`;
  } else if (op === 2) {
    const at = r.offset + pick(rand, r.length);
    const n = 1 + pick(rand, Math.min(64, r.offset + r.length - at));
    for (let i = 0; i < n; i++) image[at + i] = pick(rand, 256);
    what = `${n} random bytes @${at}`;
  } else if (op === 3 && (kind === "map" || kind === "flog")) {
    const unit = kind === "map" ? 4 : rand() < 0.5 ? 16 : 64;
    const n = r.length / unit;
    const a = r.offset + unit * pick(rand, Math.min(n, 64));
    const b = r.offset + unit * pick(rand, Math.min(n, 64));
    const copy = rand() < 0.5;
    const saved = image.slice(b, b + unit);
    image.copyWithin(b, a, a + unit);
    if (!copy) image.set(saved, a);
    what = `${unit}-byte ${copy ? "copy" : "swap"} @${a} @${b}`;
  } else if (op === 3 && (kind === "info" || kind === "backup")) {
    const other = regions.find((x) =>
      x.kind === (kind === "info" ? "backup" : "info")
    )!;
    image.copyWithin(r.offset, other.offset, other.offset + 4096);
    setU32(image, r.offset + 48, getU32(image, r.offset + 48) ^ 1);
    what = `copied from the other info block, error flag toggled`;
  } else {
    const at = r.offset + pick(rand, r.length);
    const n = 1 + pick(rand, r.offset + r.length - at);
    image.fill(0, at, at + n);
    what = `${n} bytes zeroed @${at}`;
  }
  let fixed = "";
  if (
    (kind === "header" || kind === "info" || kind === "backup") && rand() < 0.6
  ) {
    fixChecksum(image.subarray(r.offset, r.offset + 4096), kind === "header");
    fixed = ", checksum fixed";
  }
  if (both) {
    const other = regions.find((x) =>
      x.kind === (kind === "info" ? "backup" : "info")
    )!;
    image.copyWithin(other.offset, r.offset, r.offset + 4096);
    fixed += ", both copies";
  }
  return `${kind}: ${what}${fixed}`;
}

/**
 * Open a mutant and exercise it: check(), read every block, write one,
 * check() again, close. Classifies what happened; throws nothing.
 */
export function probe(
  path: string,
  lbas: readonly number[],
  payloads: Payloads,
): FuzzOutcome {
  const reads: Record<string, number> = {};
  let pool: BlockPool;
  try {
    pool = BlockPool.open(path);
  } catch (e) {
    return openFailure(e);
  }
  let verdict: FuzzOutcome["verdict"];
  let detail: string;
  let write = "none";
  try {
    const report = pool.check();
    verdict = report.consistent ? "consistent" : "reported";
    detail = report.problems[0] ?? report.repaired[0] ?? "";
    const buf = new Uint8Array(pool.blockSize);
    for (const lba of lbas) {
      let result: string;
      try {
        pool.read(lba, buf);
        const c = payloads.decode(buf);
        result = c.kind === "zero"
          ? "zero"
          : c.kind === "torn"
          ? "torn"
          : c.lba === lba
          ? "own"
          : "foreign";
      } catch (e) {
        if (!isTypedError(e)) throw e;
        result = "error";
      }
      reads[result] = (reads[result] ?? 0) + 1;
    }
    try {
      pool.write(lbas[0], payloads.get(lbas[0], 1_000_000));
      write = "ok";
    } catch (e) {
      if (!isTypedError(e)) throw e;
      write = "refused";
    }
    pool.check();
  } catch (e) {
    verdict = "failed";
    detail = describeError(e);
  } finally {
    const failed = closeFailure(pool);
    if (failed !== undefined) {
      verdict = "failed";
      detail = failed;
    }
  }
  return { verdict, detail, reads, write };
}

/**
 * The outcome of a mutant whose open threw `e`: refused with a typed
 * error, else failed.
 */
export function openFailure(e: unknown): FuzzOutcome {
  return {
    verdict: isTypedError(e) ? "refused" : "failed",
    detail: describeError(e),
    reads: {},
    write: "none",
  };
}

/**
 * Close a probed mutant: why the mutant failed if the close threw an
 * untyped error (a typed one leaves its verdict as it was).
 */
export function closeFailure(store: { close(): void }): string | undefined {
  try {
    store.close();
  } catch (e) {
    if (!isTypedError(e)) return `close: ${describeError(e)}`;
  }
  return undefined;
}

/** The blocks of the base pool, and its block size. */
const BASE_LBAS = Array.from({ length: 40 }, (_, i) => i);
const BASE_BLOCK_SIZE = 4096;

/**
 * Write the pool every mutant starts from: synchronous, asynchronous and
 * batched writes over 40 blocks, some set to zero or to the error state.
 */
export function writeFuzzBase(path: string): void {
  using pool = BlockPool.create(path, {
    blockSize: BASE_BLOCK_SIZE,
    poolSize: MIN_POOL_SIZE,
  });
  const rand = xorshift(99);
  const quiet = { issue() {}, ack() {} };
  const d = new Driver(pool, quiet, new Payloads(BASE_BLOCK_SIZE), rand);
  for (const lba of BASE_LBAS) d.write(lba);
  d.writeAsync([1, 2, 3, 5, 8, 13, 21, 34]);
  d.writeMany([4, 6, 9, 10, 11, 30]);
  d.zero(7);
  d.error(12);
}

/** Mutate and probe seeds `from .. from + count - 1` (the child side). */
export function fuzzChild(
  base: string,
  scratch: string,
  from: number,
  count: number,
): void {
  const bytes = new Uint8Array(readFileSync(base));
  const regions = poolRegions(bytes.byteLength, BASE_BLOCK_SIZE);
  const payloads = new Payloads(BASE_BLOCK_SIZE);
  runMutants(bytes, scratch, from, count, {
    mutate: (live, seed) => mutate(live, regions, seed),
    probe: () => probe(scratch, BASE_LBAS, payloads),
  });
}

/** How a child makes and opens one mutant (what {@linkcode runMutants} runs). */
export interface Mutant {
  /** Mutate the image (the base's bytes) for `seed`; what it changed. */
  mutate(image: Uint8Array, seed: number): string;
  /** Open the mutant and use it. */
  probe(): FuzzOutcome;
}

/**
 * The child side of every fuzzer: for seeds `from .. from + count - 1`,
 * store `bytes` over the mapped `scratch`, mutate and probe it, printing
 * `begin SEED` before and `result SEED JSON` after each (what
 * {@linkcode fuzz} reads).
 */
export function runMutants(
  bytes: Uint8Array,
  scratch: string,
  from: number,
  count: number,
  mutant: Mutant,
): void {
  writeFileSync(scratch, bytes);
  using map = mapFile(scratch);
  const live = map.view();
  for (let seed = from; seed < from + count; seed++) {
    writeSync(1, `begin ${seed}\n`);
    live.set(bytes);
    const what = mutant.mutate(live, seed);
    const outcome = mutant.probe();
    writeSync(1, `result ${seed} ${JSON.stringify({ what, ...outcome })}\n`);
  }
}

/** Runs the child side; the test passes the harness's `runScript`. */
export type FuzzRunner = (from: number, count: number) => ChildResult;

/**
 * Fuzz `count` mutants from `seed` on, `perChild` per child process. A
 * child that dies is a failure of the mutant it began last; the rest of
 * its range runs in a new child.
 */
export function fuzz(
  run: FuzzRunner,
  seed: number,
  count: number,
  perChild = 200,
): FuzzReport {
  const report: FuzzReport = {
    mutants: 0,
    verdicts: {},
    targets: {},
    reads: {},
    writes: {},
    children: 0,
    failures: [],
  };
  const add = (
    r: Record<string, number>,
    k: string,
    n = 1,
  ) => (r[k] = (r[k] ?? 0) + n);
  for (let next = seed; next < seed + count;) {
    const n = Math.min(perChild, seed + count - next);
    const child = run(next, n);
    report.children++;
    let begun = -1;
    for (const line of child.stdout.split("\n")) {
      const m = /^(begin|result) (\d+)(?: (.*))?$/.exec(line);
      if (m === null) continue;
      const s = Number(m[2]);
      if (m[1] === "begin") {
        begun = s;
        continue;
      }
      begun = -1;
      const o = JSON.parse(m[3]) as FuzzOutcome & { what: string };
      report.mutants++;
      add(report.verdicts, o.verdict);
      add(report.targets, o.what.slice(0, o.what.indexOf(":")));
      for (const [k, v] of Object.entries(o.reads)) add(report.reads, k, v);
      add(report.writes, o.write);
      if (o.verdict === "failed") {
        report.failures.push(`seed ${s} (${o.what}): ${o.detail}`);
      }
      next = s + 1;
    }
    if (begun >= 0) {
      report.mutants++;
      add(report.verdicts, "failed");
      report.failures.push(
        `seed ${begun}: the child died (${child.signal ?? child.status}): ${
          child.stderr.trim().split("\n").slice(-3).join(" ")
        }`,
      );
      next = begun + 1;
    } else if (child.status !== 0) {
      throw new Error(
        `A fuzz child ended with ${
          child.signal ?? child.status
        } outside a mutant: ${child.stderr}`,
      );
    }
  }
  return report;
}

/** Print a fuzz report for people. */
export function formatFuzzReport(r: FuzzReport): string {
  const list = (o: Record<string, number>) =>
    Object.entries(o).map(([k, n]) => `${k} ${n}`).join(", ");
  return [
    `fuzz: ${r.mutants} mutants in ${r.children} child processes, ${r.failures.length} failures`,
    `  verdicts: ${list(r.verdicts)}`,
    `  targets: ${list(r.targets)}`,
    `  reads: ${list(r.reads)}; writes after open: ${list(r.writes)}`,
    ...r.failures.map((f) => `  FAILURE ${f}`),
  ].join("\n");
}

/**
 * A {@linkcode FuzzRunner} that runs this file as the child (for the
 * command-line sweep; tests use the harness's `runScript`).
 */
export function fuzzRunner(dir: string): FuzzRunner {
  const self = fileURLToPath(import.meta.url);
  return mutantRunner(self, dir, "fuzz", writeFuzzBase);
}

if (import.meta.main) {
  mutantChildMain("fuzz.ts", process.argv.slice(2), fuzzChild);
}
