// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The log stream's image fuzzer: seeded mutations of a stream's header,
 * watermarks, region table, entry headers and entry data, each opened in
 * a child process, which must give a typed error, or a stream whose
 * entries read, take an append, close and reopen, without a runtime
 * failure. Never a signal, an uncaught runtime error or a hang. The
 * orchestration (children, blame of the mutant a child died on) is the
 * block store's fuzzer's `fuzz()`.
 *
 * The child side is `stream_fuzz.ts --child BASE SCRATCH FROM COUNT`.
 *
 * @module
 */
import { readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { crc32c } from "../../pmem2/crc32c.ts";
import { LogStream } from "../../stream/mod.ts";
import { type ChildResult, mutantChildMain, mutantRunner } from "./child.ts";
import { describeError, isTypedError } from "./checker.ts";
import {
  closeFailure,
  formatFuzzReport,
  fuzz,
  type FuzzOutcome,
  type FuzzReport,
  openFailure,
  runMutants,
} from "./fuzz.ts";
import { pick, xorshift } from "./random.ts";
import {
  decodeEntry,
  entryPayload,
  STREAM_OPTIONS,
  StreamDriver,
} from "./stream_workload.ts";

/** Where a base image keeps what (saved beside it as JSON). */
export interface StreamLayout {
  /** Region table slots in use: [file offset]. */
  slots: number[];
  /** Entry headers: [file offset, data length]. */
  entries: [number, number][];
  /** The ops' lengths, to decode payloads. */
  lengths: Record<number, number>;
}

const TARGETS = [
  "header",
  "watermarks",
  "table",
  "table",
  "entry",
  "entry",
  "data",
] as const;

function u32(b: Uint8Array, at: number, v?: number): number {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (v !== undefined) dv.setUint32(at, v >>> 0, true);
  return dv.getUint32(at, true);
}

/**
 * Write the stream every mutant starts from: three regions with entries
 * of every kind (one wrapped around after truncations), closed cleanly.
 *
 * @returns where its structures are
 */
export function writeStreamFuzzBase(path: string): StreamLayout {
  const lengths: Record<number, number> = {};
  {
    using s = LogStream.create(path, STREAM_OPTIONS);
    const rand = xorshift(99);
    const d = new StreamDriver(s, (label) => {
      const w = label.split(" ");
      if (w[1] === "entry" && (w[0] === "I" || w[0] === "P")) {
        lengths[Number(w[2])] = Number(w[w.length - 1]);
      }
    }, rand);
    d.allocate(16384);
    d.allocate(24576);
    d.allocate(8192);
    for (let i = 0; i < 60; i++) {
      const rs = d.regions();
      const r = rs[i % rs.length];
      if (i % 7 === 6) d.truncate(r, 0.7);
      else if (i % 5 === 4) d.appendAsync(rs, 3);
      else if (i % 9 === 8) d.reserve(r, true);
      else d.append(r);
    }
  }
  using s = LogStream.open(path);
  const entries: [number, number][] = [];
  for (const r of s.regions()) {
    for (const e of s.entries(r)) {
      entries.push([e.data.byteOffset - 16, e.data.length]);
    }
  }
  const slots = s.regions().map((r) => 4096 + r.id * 64);
  const layout = { slots, entries, lengths };
  writeFileSync(`${path}.json`, JSON.stringify(layout));
  return layout;
}

/**
 * Apply the mutation of `seed` to a stream image in place.
 *
 * @returns what it did, e.g. "table: u32 @4104 = 0x0"
 */
export function mutateStream(
  image: Uint8Array,
  layout: StreamLayout,
  seed: number,
): string {
  const rand = xorshift(Math.imul(seed + 1, 0x9e3779b1));
  const kind = TARGETS[pick(rand, TARGETS.length)];
  let start: number;
  let length: number;
  let entryLen = 0;
  if (kind === "header") [start, length] = [0, 64];
  else if (kind === "watermarks") [start, length] = [64, 16];
  else if (kind === "table") {
    [start, length] = [layout.slots[pick(rand, layout.slots.length)], 64];
  } else {
    const [at, n] = layout.entries[pick(rand, layout.entries.length)];
    entryLen = n;
    [start, length] = kind === "entry" ? [at, 16] : [at + 16, Math.max(1, n)];
  }
  const values = [
    0,
    1,
    2,
    0xffffffff,
    0x80000000,
    0x7fffffff,
    4096,
    65536,
    STREAM_OPTIONS.size,
    Math.floor(rand() * 2 ** 32),
  ];
  let what: string;
  const op = pick(rand, 4);
  if (op === 0) {
    const n = 1 + pick(rand, 6);
    for (let i = 0; i < n; i++) {
      image[start + pick(rand, length)] ^= 1 << pick(rand, 8);
    }
    what = `${n} bits flipped`;
  } else if (op === 1 && length >= 4) {
    const at = start + 4 * pick(rand, length >> 2);
    const v = values[pick(rand, values.length)];
    u32(image, at, v);
    what = `u32 @${at} = 0x${v.toString(16)}`;
  } else if (op === 2) {
    const at = start + pick(rand, length);
    const n = 1 + pick(rand, Math.min(32, start + length - at));
    for (let i = 0; i < n; i++) image[at + i] = pick(rand, 256);
    what = `${n} random bytes @${at}`;
  } else {
    const at = start + pick(rand, length);
    const n = 1 + pick(rand, start + length - at);
    image.fill(0, at, at + n);
    what = `${n} bytes zeroed @${at}`;
  }
  // often make the checksum match again, so validation past it runs
  let fixed = "";
  if (rand() < 0.5) {
    if (kind === "header") {
      u32(image, 60, crc32c(image, 0, 60));
      fixed = ", CRC fixed";
    } else if (kind === "table") {
      u32(image, start + 24, crc32c(image, start + 4, 20));
      fixed = ", CRC fixed";
    } else if (kind === "entry" || kind === "data") {
      const at = kind === "entry" ? start : start - 16;
      const word = u32(image, at + 4);
      const n = word & 0x80000000 ? 0 : (kind === "entry" ? word : entryLen);
      if (at + 16 + n <= image.length) {
        const seedCrc = u32(image, 44);
        u32(image, at, crc32c(image, at + 4, 12 + n, seedCrc));
        fixed = ", CRC fixed";
      }
    }
  }
  return `${kind}: ${what}${fixed}`;
}

/**
 * Open a mutant and use it: read every region, append to each, close,
 * reopen. Classifies what happened; throws nothing.
 */
export function probeStream(path: string, layout: StreamLayout): FuzzOutcome {
  const reads: Record<string, number> = {};
  const lengthOf = (op: number) => layout.lengths[op] ?? null;
  let s: LogStream;
  try {
    s = LogStream.open(path);
  } catch (e) {
    return openFailure(e);
  }
  let verdict: FuzzOutcome["verdict"] = s.recovery.wrote
    ? "reported"
    : "consistent";
  let detail = s.recovery.wrote
    ? `recovery cut ${s.recovery.cut} regions, dropped ${s.recovery.dropped}`
    : "";
  let write = "none";
  try {
    for (const r of s.regions()) {
      for (const e of s.entries(r)) {
        const got = decodeEntry(e.data, lengthOf);
        const k = typeof got === "number" ? "intact" : "altered";
        reads[k] = (reads[k] ?? 0) + 1;
      }
    }
    write = "ok";
    for (const r of s.regions()) {
      try {
        s.append(r, entryPayload(1_000_000, 20));
      } catch (e) {
        if (!isTypedError(e)) throw e;
        write = "refused";
      }
    }
  } catch (e) {
    verdict = "failed";
    detail = describeError(e);
  } finally {
    const failed = closeFailure(s);
    if (failed !== undefined) {
      verdict = "failed";
      detail = failed;
    }
  }
  if (verdict !== "failed") {
    try {
      using again = LogStream.open(path);
      if (again.recovery.wrote) {
        verdict = "failed";
        detail = "the reopen after a clean close recovered again";
      }
      for (const r of again.regions()) for (const _ of again.entries(r));
    } catch (e) {
      verdict = "failed";
      detail = `reopen: ${describeError(e)}`;
    }
  }
  return { verdict, detail, reads, write };
}

/** Mutate and probe seeds `from .. from + count - 1` (the child side). */
export function streamFuzzChild(
  base: string,
  scratch: string,
  from: number,
  count: number,
): void {
  const bytes = new Uint8Array(readFileSync(base));
  const layout = JSON.parse(
    readFileSync(`${base}.json`, "utf8"),
  ) as StreamLayout;
  runMutants(bytes, scratch, from, count, {
    mutate: (live, seed) => mutateStream(live, layout, seed),
    probe: () => probeStream(scratch, layout),
  });
}

/** Fuzz `count` mutants of a base stream from `seed` on. */
export function streamFuzz(
  run: (from: number, count: number) => ChildResult,
  seed: number,
  count: number,
): FuzzReport {
  return fuzz(run, seed, count);
}

export { formatFuzzReport as formatStreamFuzzReport };

/** A runner that runs this file as the child (for the script sweep). */
export function streamFuzzRunner(
  dir: string,
): (from: number, count: number) => ChildResult {
  const self = fileURLToPath(import.meta.url);
  return mutantRunner(self, dir, "stream-fuzz", writeStreamFuzzBase);
}

if (import.meta.main) {
  mutantChildMain("stream_fuzz.ts", process.argv.slice(2), streamFuzzChild);
}
