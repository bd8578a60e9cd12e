// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The `stream` suite on the current runtime: {@linkcode LogStream}
 * against libpmemlog's `pmemlog_append` and a plain C memcpy loop
 * (`bench/c/log_baseline.c`), and against what a JavaScript program
 * writes today (`appendFileSync` + `fdatasyncSync`).
 *
 * A 64 MiB region of an 80 MiB stream in `/dev/shm` is filled once and
 * emptied (every page in memory, as the C program's log is), then, one
 * thread:
 *
 * - `append <n>`: `s.append(r, data)`, durable on return; when the region
 *   holds 60 MiB it is truncated (counted, like libpmemlog's rewind in C);
 *   C: `pmemlog_append`.
 * - `reserve/publish <n>`: `s.reserve` + `res.data.set` + `s.publish`;
 *   compared with `append <n>`.
 * - `appendAsync <n> QD32 <mover> waitAll` / `await all`: rounds of 32
 *   `appendAsync` (persisted level), then `waitAll(fs)` or `await all(fs)`;
 *   compared with `append <n>`. Each mover in a process of its own (this
 *   file run again), as `blk_bench.ts` does, after 3 s of such rounds
 *   (JavaScriptCore takes that long to reach its steady rate) and 0.5 s
 *   more before each other size.
 * - `appendFileSync+fdatasync <n> tmpfs|disk`: `appendFileSync(fd, data)`
 *   then `fdatasyncSync(fd)` on a file in `/dev/shm` or in the system's
 *   temporary directory; compared with `append <n>`.
 * - `entries <n>`: iterate a region of n-byte entries with
 *   `s.entries(r)`, copying each entry's data into one buffer; C: `memcpy
 *   <n>` (plain memory bandwidth).
 *
 * Data buffers are 64-byte aligned (as the C program's). The ns/op are
 * per entry. Prints one JSON line per case (`bench/lib.ts`).
 *
 *   deno run -A bench/stream_bench.ts     bun bench/stream_bench.ts
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import {
  appendFileSync,
  closeSync,
  fdatasyncSync,
  mkdtempSync,
  openSync,
  rmSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { all, type Future, waitAll } from "../future/mod.ts";
import { LogStream, type Region } from "../stream/mod.ts";
import {
  alignedBytes,
  bench,
  benchAsync,
  MOVERS,
  rerunArgs,
  scratchDir,
} from "./lib.ts";

const SUITE = "stream";
const STREAM_SIZE = 80 << 20;
const REGION_SIZE = 64 << 20;
/** Truncate the region when its entries take more than this. */
const FULL = 60 << 20;
const QD = 32;
/** Extra warm-up before the first asynchronous case, in milliseconds. */
const WARM_MS = 3000;
const SIZES: readonly (readonly [string, number])[] = [
  ["64 B", 64],
  ["1 KiB", 1024],
  ["4 KiB", 4096],
];

/** Fill the region once (every page touched), then empty it. */
function prefill(s: LogStream, r: Region): void {
  const big = new Uint8Array(60_000);
  while (r.used < REGION_SIZE - 2 * big.length) s.append(r, big);
  s.truncate(r, s.committedTimestamp);
}

/** Keep the region from filling up (amortised into the loops). */
function roomFor(s: LogStream, r: Region): void {
  if (r.used > FULL) s.truncate(r, s.committedTimestamp);
}

/** Throw unless each kind of append round-trips. */
function verify(s: LogStream, r: Region): void {
  const a = s.append(r, new Uint8Array([1]));
  const res = s.reserve(r, 1);
  res.data[0] = 2;
  const b = s.publish(res);
  const es = [...s.entries(r)].slice(-2);
  if (
    es.length !== 2 || es[0].timestamp !== a || es[1].timestamp !== b ||
    es[0].data[0] !== 1 || es[1].data[0] !== 2
  ) {
    throw new Error("stream bench: entries do not round-trip");
  }
}

/** The synchronous, iteration and JavaScript-baseline cases. */
function syncCases(s: LogStream, r: Region, dir: string): void {
  for (const [label, size] of SIZES) {
    const data = alignedBytes(size).fill(0xa5);
    const opts = { bytes: size };
    const append = `append ${label}`;
    bench(SUITE, append, (n) => {
      for (let i = 0; i < n; i++) {
        roomFor(s, r);
        s.append(r, data);
      }
    }, opts);
    bench(SUITE, `reserve/publish ${label}`, (n) => {
      for (let i = 0; i < n; i++) {
        roomFor(s, r);
        const res = s.reserve(r, size);
        res.data.set(data);
        s.publish(res);
      }
    }, { ...opts, reference: append });
    for (const [where, base] of [["tmpfs", dir], ["disk", tmpdir()]]) {
      const file = join(mkdtempSync(join(base, "asyncpmem-bench-")), "log");
      const fd = openSync(file, "a");
      try {
        bench(SUITE, `appendFileSync+fdatasync ${label} ${where}`, (n) => {
          for (let i = 0; i < n; i++) {
            appendFileSync(fd, data);
            fdatasyncSync(fd);
          }
        }, { ...opts, reference: append });
      } finally {
        closeSync(fd);
        rmSync(join(file, ".."), { recursive: true, force: true });
      }
    }
  }
  for (const [label, size] of SIZES) {
    s.truncate(r, s.committedTimestamp);
    const data = new Uint8Array(size).fill(0x5a);
    let count = 0;
    while (r.used < 48 << 20) {
      s.append(r, data);
      count++;
    }
    const into = alignedBytes(size);
    bench(SUITE, `entries ${label}`, (n) => {
      for (let i = 0; i < n; i++) {
        for (const e of s.entries(r)) into.set(e.data);
      }
    }, { bytes: size, opsPerIteration: count, reference: `memcpy ${label}` });
  }
  s.truncate(r, s.committedTimestamp);
}

/** The asynchronous cases of one mover (a process of its own). */
async function moverCases(path: string, mover: string): Promise<void> {
  using vdm = MOVERS[mover]();
  using s = LogStream.open(path, { mover: vdm });
  const r = s.regions()[0];
  const fs: Future<number>[] = new Array(QD);
  for (const [label, size] of SIZES) {
    const data = alignedBytes(size).fill(0xa5);
    // Bun's JIT reaches the steady rate of these loops only after two or
    // three seconds of them, improving by 10-20 % a run: the harness's
    // warm-up (which stops at the first run not 5 % faster) would time
    // an intermediate tier
    const until = performance.now() + (size === SIZES[0][1] ? WARM_MS : 500);
    while (performance.now() < until) {
      roomFor(s, r);
      for (let k = 0; k < QD; k++) fs[k] = s.appendAsync(r, data);
      waitAll(fs);
    }
    const opts = {
      bytes: size,
      reference: `append ${label}`,
      opsPerIteration: QD,
    };
    bench(SUITE, `appendAsync ${label} QD${QD} ${mover} waitAll`, (n) => {
      for (let i = 0; i < n; i++) {
        roomFor(s, r);
        for (let k = 0; k < QD; k++) fs[k] = s.appendAsync(r, data);
        waitAll(fs);
      }
    }, opts);
    await benchAsync(
      SUITE,
      `appendAsync ${label} QD${QD} ${mover} await all`,
      async (n) => {
        for (let i = 0; i < n; i++) {
          roomFor(s, r);
          for (let k = 0; k < QD; k++) fs[k] = s.appendAsync(r, data);
          await all(fs);
        }
      },
      opts,
    );
  }
  verify(s, r);
}

/** How to run this file again. */
const SELF = rerunArgs(import.meta.url);

const args = process.argv.slice(2);
if (args[0] === "--stream") {
  await moverCases(args[1], args[2]);
} else {
  const dir = mkdtempSync(join(scratchDir(), "asyncpmem-bench-"));
  const path = join(dir, "bench.stream");
  try {
    {
      using s = LogStream.create(path, { size: STREAM_SIZE });
      const r = s.allocateRegion(REGION_SIZE);
      prefill(s, r);
      syncCases(s, r, dir);
      verify(s, r);
    }
    for (const mover of Object.keys(MOVERS)) {
      const child = spawnSync(
        process.execPath,
        [...SELF, "--stream", path, mover],
        { stdio: "inherit" },
      );
      if (child.status !== 0) {
        throw new Error(`stream bench: ${mover} exited ${child.status}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
