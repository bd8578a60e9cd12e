// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The CLI's commands on block pools (libpmemblk's format): create, info,
 * check, dump, zero.
 *
 * @module
 */
import { rmSync } from "node:fs";
import { BlockPool, MIN_POOL_SIZE, poolGeometry } from "../blk/mod.ts";
import { PmemError } from "../errors/mod.ts";
import { Source } from "../pmem2/mod.ts";
import {
  onlyOptions,
  optionalValue,
  parseCount,
  type Parsed,
  parseMode,
  parseSize,
  refuseTaken,
  UsageError,
  withArguments,
} from "./args.ts";
import {
  base64,
  bytes,
  count as counted,
  hexDump,
  out,
  outClosed,
  printFields,
  printJson,
  printJsonWith,
} from "./output.ts";
import { pmdkHeaderProblem, pmdkReadOnly } from "./detect.ts";
import { Progress } from "./progress.ts";
import { EEXIST } from "../errors/errno.ts";

/** libpmemblk's largest block size (the descriptor's `bsize` is a u32). */
const MAX_BLOCK_SIZE = 2 ** 32 - 1;

/** Files this large are allocated in steps, with a progress bar. */
const STEP = 256 * 2 ** 20;

/** `create blk FILE --block-size N --size S [--mode M]`. */
export function createBlk(path: string, p: Parsed): void {
  onlyOptions(p, "a blk pool's creation", ["block-size", "size", "mode"]);
  const blockSize = parseCount(p.values["block-size"], "block-size");
  const size = parseSize(p.values.size, "size");
  const mode = parseMode(p.values.mode);
  if (size === 0) {
    // the library's poolSize 0 means "use the existing file"
    throw new UsageError(
      `--size must be at least 16 MiB + 8 KiB (${MIN_POOL_SIZE})`,
    );
  }
  refuseTaken(path);
  let pool: BlockPool;
  if (size > STEP) {
    // The pool is laid out over the file allocated below (poolSize 0),
    // where the library no longer checks its arguments first: check them
    // now, before allocating anything.
    if (blockSize < 1 || blockSize > MAX_BLOCK_SIZE) {
      throw new UsageError(
        `Cannot create pool: --block-size must be an integer in [1, ${MAX_BLOCK_SIZE}], got ${blockSize}`,
      );
    }
    withArguments(() => poolGeometry(size, blockSize));
    // allocate the file a step at a time, so a bar can show the progress
    const bar = new Progress("allocating");
    try {
      for (let at = STEP; at < size + STEP; at += STEP) {
        Source.open(path, {
          size: Math.min(at, size),
          mode,
          exclusive: at === STEP, // nobody else's file is grown
        }).close();
        bar.update(Math.min(at, size), size);
      }
      bar.done();
      // lay out the pool over the file just allocated
      pool = BlockPool.create(path, { blockSize, poolSize: 0, mode });
    } catch (e) {
      bar.done();
      // the file is this command's: a failure (a full disk) leaves none
      // behind, nor the space it took
      if (!(e instanceof PmemError && e.code === -EEXIST)) {
        rmSync(path, { force: true });
      }
      // the file's allocation is this create's, not an open of the user's
      if (e instanceof PmemError && e.op === "open") {
        throw new PmemError(
          "create",
          e.code,
          e.message.slice(e.op.length + 2),
          { errno: e.errno, cause: e },
        );
      }
      throw e;
    }
  } else {
    pool = withArguments(() =>
      BlockPool.create(path, { blockSize, poolSize: size, mode })
    );
  }
  try {
    if (p.values.json) {
      printJson({ kind: "blk", path, blockSize, blockCount: pool.blockCount });
    } else {
      out(`created ${path}: ${pool.blockCount} blocks of ${blockSize} B\n`);
    }
  } finally {
    pool.close();
  }
}

/** `info FILE [--json]` for a block pool (opened read-only). */
export function infoBlk(path: string, p: Parsed): void {
  using pool = BlockPool.open(path, { readOnly: true });
  const bar = new Progress("reading the map");
  const info = pool.info({ onProgress: (d, t) => bar.update(d, t) });
  bar.done();
  const repaired = pool.check().repaired;
  if (p.values.json) {
    // what the pool is, not how this command opened it (read-only, always)
    const readOnly = pmdkReadOnly(path)
      ? "its header has ro_compat features"
      : null;
    printJson({ kind: "blk", ...info, readOnly, pendingRecovery: repaired });
    return;
  }
  printFields([
    ["file", info.path],
    ["format", "libpmemblk (PMEMBLK)"],
    ["pool size", bytes(info.poolSize)],
    ["block size", `${info.blockSize} B`],
    ["blocks", info.blockCount],
    ["laid out", info.formatted ? "yes" : "no (on the first write)"],
    [
      "fill",
      `${info.fill.written} written, ${info.fill.zero} zeroed, ${info.fill.error} in error, ${info.fill.unwritten} never written`,
    ],
    ["recovery", repaired.length ? repaired.join("; ") : "nothing to do"],
  ]);
  for (const a of info.arenas) {
    out(`arena ${a.index}:\n`);
    printFields([
      ["offset", a.offset],
      ["size", bytes(a.size)],
      [
        "blocks",
        `${a.blocks} (LBAs ${a.firstLba}..${a.firstLba + a.blocks - 1})`,
      ],
      ["data blocks", `${a.dataBlocks} of ${a.internalBlockSize} B`],
      ["lanes", a.lanes],
      [
        "state",
        a.error === null ? "accepts writes" : `refuses writes: ${a.error}`,
      ],
    ], "  ");
  }
}

/**
 * `check FILE [--repair] [--json]`: true when consistent. Without
 * `--repair` the pool is opened read-only (what recovery would do is
 * reported, not done); with it, recovery's repairs are persisted.
 */
export function checkBlk(path: string, p: Parsed): boolean {
  // a pool with ro_compat features opens read-only (on a private
  // mapping) however asked: repairs there would never reach the file
  const readOnly = p.values.repair === true && pmdkReadOnly(path);
  const repair = p.values.repair === true && !readOnly;
  using pool = BlockPool.open(path, { readOnly: !repair });
  const bar = new Progress("checking");
  const report = pool.check({ onProgress: (d, t) => bar.update(d, t) });
  bar.done();
  const header = pmdkHeaderProblem(path);
  if (header !== null) {
    report.consistent = false;
    report.problems = [header, ...report.problems];
  }
  if (readOnly && report.repaired.length > 0) {
    report.consistent = false;
    report.problems = [
      "cannot repair: the pool is read-only (its header has ro_compat features)",
      ...report.problems,
    ];
  }
  if (!repair) {
    // A damaged info block (restored from its twin at open) is damage as
    // stored, as pmempool check says; finishing an interrupted write is
    // what any open does after a crash, so that alone stays consistent.
    const damaged = report.repaired.filter((r) => /info block/.test(r));
    if (damaged.length > 0) {
      report.consistent = false;
      report.problems = [
        ...damaged.map((r) => r.replace(/restored|rewrote/, "must restore")),
        ...report.problems,
      ];
    }
  }
  if (p.values.json) {
    printJson({
      kind: "blk",
      path,
      ...report,
      repairedNow: repair,
    });
  } else {
    const what = repair ? "repaired" : "recovery would";
    for (const r of report.repaired) out(`${what}: ${r}\n`);
    for (const q of report.problems) out(`problem: ${q}\n`);
    out(
      `${path}: ${report.consistent ? "consistent" : "not consistent"}\n`,
    );
  }
  return report.consistent;
}

/** Refuse blocks `lba .. lba + count - 1` unless all are in the pool. */
function checkBlocks(lba: number, count: number, blockCount: number): void {
  if (lba >= blockCount) {
    throw new UsageError(
      `--lba ${lba} is past the pool's last block, ${blockCount - 1}`,
    );
  }
  if (lba + count > blockCount) {
    throw new UsageError(
      `blocks ${lba}..${lba + count - 1} are not all below ${blockCount}`,
    );
  }
}

/** `dump FILE --lba N [--count K] [--raw | --json]`. */
export function dumpBlk(path: string, p: Parsed): void {
  onlyOptions(p, "a blk pool", ["lba", "count", "raw"]);
  const lba = parseCount(p.values.lba, "lba");
  const count = optionalValue(p, "count", parseCount, 1);
  using pool = BlockPool.open(path, { readOnly: true });
  checkBlocks(lba, count, pool.blockCount);
  const into = new Uint8Array(pool.blockSize);
  if (p.values.json) {
    // a block at a time: all of them may be more than a string holds
    const head = { kind: "blk", path, blockSize: pool.blockSize };
    printJsonWith(head, "blocks", "array", (emit) => {
      for (let i = 0; i < count; i++) {
        pool.read(lba + i, into);
        if (!emit({ lba: lba + i, data: base64(into) })) return;
      }
    });
    return;
  }
  for (let i = 0; i < count; i++) {
    pool.read(lba + i, into);
    if (p.values.raw) out(into);
    else {
      out(
        `block ${lba + i}:\n${hexDump(into, (lba + i) * pool.blockSize)}\n`,
      );
    }
    if (outClosed()) return; // the reader has what it wanted
  }
}

/** `zero FILE --lba N [--count K]`: blocks read as zeros from now on. */
export function zeroBlk(path: string, p: Parsed): void {
  const lba = parseCount(p.values.lba, "lba");
  const all = p.values.count === "all";
  const asked = p.values.count === undefined || all
    ? 1
    : parseCount(p.values.count, "count");
  using pool = BlockPool.open(path);
  const count = all ? pool.blockCount - lba : asked;
  checkBlocks(lba, count, pool.blockCount);
  const bar = new Progress("zeroing");
  for (let i = 0; i < count; i++) {
    pool.setZero(lba + i);
    if ((i & 1023) === 1023) bar.update(i + 1, count);
  }
  bar.update(count, count);
  bar.done();
  if (!p.values.json) out(`zeroed ${counted(count, "block")}\n`);
  else printJson({ zeroed: count });
}
