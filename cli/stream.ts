// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The CLI's commands on logs: asyncpmem's log streams and libpmemlog's
 * logs (create, info, check, dump), and `convert` between the two — the
 * migration path off the discontinued C library, and back.
 *
 * @module
 */
import { statSync } from "node:fs";
import { LogStream, PmemLog } from "../stream/mod.ts";
import { OutOfSpaceError } from "../errors/mod.ts";
import { openPmemLogToInspect } from "../stream/pmemlog.ts";
import { openStreamToInspect } from "../stream/inspect.ts";
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
  count,
  hexDump,
  out,
  outClosed,
  printFields,
  printJson,
  printJsonWith,
} from "./output.ts";
import { pmdkHeaderProblem } from "./detect.ts";
import { Progress } from "./progress.ts";

/**
 * `create stream FILE --size S [--block-size B] [--region-slots N]
 * [--mode M]`.
 */
export function createStream(path: string, p: Parsed): void {
  onlyOptions(p, "a log stream's creation", [
    "size",
    "block-size",
    "region-slots",
    "mode",
  ]);
  const size = parseSize(p.values.size, "size");
  const blockSize = optionalValue(p, "block-size", parseSize, undefined);
  const regionSlots = optionalValue(p, "region-slots", parseCount, undefined);
  const mode = parseMode(p.values.mode);
  refuseTaken(path);
  using s = withArguments(() =>
    LogStream.create(path, { size, blockSize, regionSlots, mode })
  );
  if (p.values.json) {
    printJson({ kind: "stream", path, size: s.size, blockSize: s.blockSize });
  } else {
    out(
      `created ${path}: a log stream of ${
        bytes(s.size)
      }, blocks of ${s.blockSize} B\n`,
    );
  }
}

/** `create log FILE --size S [--mode M]`: libpmemlog's format. */
export function createLog(path: string, p: Parsed): void {
  onlyOptions(p, "a libpmemlog log's creation", ["size", "mode"]);
  const poolSize = parseSize(p.values.size, "size");
  const mode = parseMode(p.values.mode);
  if (poolSize === 0) {
    // the library's poolSize 0 means "use the existing file"
    throw new UsageError("--size must be at least 2 MiB");
  }
  refuseTaken(path);
  using log = withArguments(() => PmemLog.create(path, { poolSize, mode }));
  // the size given, as every kind reports it, and what of it holds data
  const size = statSync(path).size;
  if (p.values.json) {
    printJson({ kind: "log", path, size, capacity: log.nbyte() });
  } else {
    out(
      `created ${path}: a libpmemlog log of ${bytes(size)}, ${
        bytes(log.nbyte())
      } for data\n`,
    );
  }
}

/**
 * `info FILE` for a stream: read from a private copy under the stream's
 * lock (see `openStreamToInspect`): nothing is written, and a stream open
 * elsewhere is refused, as every pool kind's info refuses one.
 */
export function infoStream(path: string, p: Parsed): void {
  let info;
  {
    using copy = openStreamToInspect(path);
    info = copy.inspection;
  }
  if (p.values.json) {
    printJson({ kind: "stream", ...info });
    return;
  }
  printFields([
    ["file", info.path],
    ["format", "asyncpmem log stream"],
    ["size", bytes(info.size)],
    ["block size", `${info.blockSize} B`],
    ["region slots", `${info.regions.length} used of ${info.regionSlots}`],
    ["in flight", `${info.maxInFlight} timestamps at most`],
    ["persisted", `up to timestamp ${info.settled} (bound ${info.bound})`],
    ["recovery", recoveryLine(info.recovery)],
  ]);
  for (const r of info.regions) {
    out(`region ${r.slot}:\n`);
    printFields([
      ["offset", r.offset],
      ["size", bytes(r.size)],
      ["used", `${bytes(r.used)} in ${count(r.entries, "entry", "entries")}`],
      ["last timestamp", r.lastTimestamp],
    ], "  ");
  }
}

function recoveryLine(
  r: { dropped: number; cut: number; writes: boolean },
): string {
  if (!r.writes) return "nothing to do";
  return `drops ${r.dropped} entries beyond the first missing timestamp; ` +
    `ends ${r.cut} region(s) again`;
}

/** `info FILE` for a libpmemlog log. */
export function infoLog(path: string, p: Parsed): void {
  using log = openPmemLogToInspect(path);
  const info = { kind: "log", path, capacity: log.nbyte(), used: log.tell() };
  if (p.values.json) {
    printJson(info);
    return;
  }
  printFields([
    ["file", path],
    ["format", "libpmemlog (PMEMLOG)"],
    ["capacity", bytes(info.capacity)],
    ["used", `${info.used} B`],
  ]);
}

/**
 * `check FILE [--repair]` for a stream: its header and region table
 * valid, and recovery able to finish (what it would do is reported; a
 * crash leaves work for it, which is no inconsistency). With `--repair`
 * and recovery to do, the stream is opened: its recovery runs and is
 * persisted.
 */
export function checkStream(path: string, p: Parsed): boolean {
  let info;
  {
    // released before a repair's open takes the lock
    using copy = openStreamToInspect(path);
    info = copy.inspection;
  }
  const repair = p.values.repair === true && info.recovery.writes;
  // the open runs the recovery and persists it; the close records a
  // clean close
  if (repair) LogStream.open(path).close();
  if (p.values.json) {
    printJson({
      kind: "stream",
      path,
      consistent: true,
      recovery: info.recovery,
      repairedNow: repair,
    });
  } else {
    out(
      `${repair ? "repaired" : "recovery"}: ${recoveryLine(info.recovery)}\n`,
    );
    out(`${path}: consistent\n`);
  }
  return true;
}

/** `check FILE` for a libpmemlog log: its header and offsets valid. */
export function checkLog(path: string, p: Parsed): boolean {
  using log = openPmemLogToInspect(path);
  const header = pmdkHeaderProblem(path);
  const problems = header === null ? [] : [header];
  const consistent = problems.length === 0;
  if (p.values.json) {
    printJson({ kind: "log", path, consistent, used: log.tell(), problems });
  } else {
    for (const q of problems) out(`problem: ${q}\n`);
    out(`${path}: ${consistent ? "consistent" : "not consistent"}\n`);
  }
  return consistent;
}

/** `dump FILE --region SLOT [--from TS] [--count K] [--raw | --json]`. */
export function dumpStream(path: string, p: Parsed): void {
  onlyOptions(p, "a log stream", ["region", "from", "count", "raw"]);
  const slot = parseCount(p.values.region, "region");
  const from = optionalValue(p, "from", parseCount, 0);
  const count = optionalValue(p, "count", parseCount, Infinity);
  // read-only: a private copy, recovered there (see openStreamToInspect)
  using s = openStreamToInspect(path);
  if (!s.has(slot)) {
    throw new UsageError(`'${path}' has no region in slot ${slot}`);
  }
  /** The entries asked for; false from `emit` stops them. */
  const each = (emit: (e: { timestamp: number; data: Uint8Array }) => void) => {
    let n = 0;
    for (const e of s.entries(slot)) {
      if (e.timestamp < from) continue;
      if (n++ >= count) break;
      emit(e);
      if (outClosed()) return; // the reader has what it wanted
    }
  };
  if (p.values.json) {
    // an entry at a time: all of them may be more than a string holds
    const head = { kind: "stream", path, region: slot };
    printJsonWith(head, "entries", "array", (emit) =>
      each((e) =>
        emit({
          timestamp: e.timestamp,
          size: e.data.length,
          data: base64(e.data),
        })
      ));
    return;
  }
  each((e) => {
    if (p.values.raw) out(e.data);
    else {
      out(
        `entry ${e.timestamp} (${e.data.length} B):\n${hexDump(e.data)}\n`,
      );
    }
  });
}

/** `dump FILE [--raw | --json]` for a libpmemlog log: all its data. */
export function dumpLog(path: string, p: Parsed): void {
  onlyOptions(p, "a libpmemlog log (its data is dumped whole)", ["raw"]);
  using log = openPmemLogToInspect(path);
  if (p.values.json) {
    // a piece at a time, each a multiple of 3 bytes but the last: their
    // base64 joined is the base64 of the whole
    const data = { kind: "log", path, size: log.tell() };
    printJsonWith(data, "data", "string", (emit) => {
      log.walk(3 * DUMP_CHUNK, (chunk) => emit(base64(chunk)));
    });
    return;
  }
  // a piece at a time: one hex dump of a large log would not fit a string
  let at = 0;
  log.walk(DUMP_CHUNK, (chunk) => {
    out(p.values.raw ? chunk : `${hexDump(chunk, at)}\n`);
    at += chunk.length;
    return !outClosed(); // stop once the reader went away
  });
}

/** How much of a libpmemlog log `dump` prints at a time (16-aligned). */
const DUMP_CHUNK = 1 << 16;

/**
 * `convert SRC DST`: a libpmemlog log into a new stream (one region, its
 * data as entries of `--chunk` bytes), or a stream's region (`--region`)
 * into a new libpmemlog log (the entries' data, in order).
 */
export function convert(
  src: string,
  dst: string,
  kind: string,
  p: Parsed,
): void {
  refuseTaken(dst);
  if (kind === "log") {
    onlyOptions(p, "a libpmemlog log's conversion", ["chunk", "size"]);
    const chunk = optionalValue(p, "chunk", parseSize, 4096);
    if (chunk === 0) throw new UsageError("--chunk must be more than 0");
    using log = openPmemLogToInspect(src);
    const used = log.tell();
    // room for the entries with their headers, in whole blocks
    const need = Math.ceil((used + 64 * Math.ceil(used / chunk)) / 4096) *
        4096 + 65536;
    const size = p.values.size === undefined
      ? roundMiB(need + (1 << 20))
      : parseSize(p.values.size, "size");
    using s = withArguments(() => LogStream.create(dst, { size }));
    const region = tooSmall(p, () => s.allocateRegion(need));
    const bar = new Progress("converting");
    let done = 0;
    log.walk(chunk, (data) => {
      s.append(region, data.slice());
      bar.update(done += data.length, used);
      return true;
    });
    bar.done();
    report(p, { from: src, to: dst, bytes: done });
    return;
  }
  onlyOptions(p, "a log stream's conversion", ["region", "size"]);
  const slot = parseCount(p.values.region, "region");
  using s = openStreamToInspect(src);
  const region = s.inspection.regions.find((r) => r.slot === slot);
  if (region === undefined) {
    throw new UsageError(`'${src}' has no region in slot ${slot}`);
  }
  const poolSize = p.values.size === undefined
    ? roundMiB(Math.max(2 << 20, region.used + (1 << 20)))
    : parseSize(p.values.size, "size");
  using log = withArguments(() => PmemLog.create(dst, { poolSize }));
  let done = 0;
  tooSmall(p, () => {
    for (const e of s.entries(slot)) {
      log.append(e.data);
      done += e.data.length;
    }
  });
  report(p, { from: src, to: dst, bytes: done });
}

/**
 * Run a step of a conversion: out of space in a new file whose size the
 * user gave (`--size`) is the user's mistake, a {@linkcode UsageError}.
 */
function tooSmall<T>(p: Parsed, step: () => T): T {
  try {
    return step();
  } catch (e) {
    if (e instanceof OutOfSpaceError && p.values.size !== undefined) {
      throw new UsageError(
        `--size ${p.values.size} is too small for the data (${e.message})`,
      );
    }
    throw e;
  }
}

/** `n` rounded up to a whole MiB (every format's size unit divides it). */
function roundMiB(n: number): number {
  return Math.ceil(n / 2 ** 20) * 2 ** 20;
}

function report(p: Parsed, r: { from: string; to: string; bytes: number }) {
  if (p.values.json) printJson(r);
  else out(`converted ${r.from} -> ${r.to}: ${r.bytes} B\n`);
}
