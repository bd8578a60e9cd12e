// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The `mover` suite on the current runtime: data movers against a plain C
 * `memcpy` loop (`bench/c/mover_baseline.c`), by miniasync's method
 * (shared/reference/miniasync.md §3.2): sixteen distinct, pre-faulted
 * buffer pairs, and as the reference the same pairs copied sequentially on
 * one core.
 *
 * Movers, each measured in a process of its own (this file run again):
 * `cpu` ({@linkcode CpuMover}), `threads` ({@linkcode ThreadMover} with
 * default options: operations under 256 KiB run inline),
 * `threads-offload` (`inlineThreshold: 0`: every operation goes to the
 * workers) and `dsa-portal (software)`: the DSA mover's hardware path
 * (descriptors built for a dedicated WQ, MOVDIR64B, credits, the watcher
 * thread) on a test portal, the SOFTWARE device behind it -- what the
 * path costs on top of the software device, not DSA's speed. Sizes n are
 * 64 B, 4 KiB, 64 KiB and 1 MiB. Cases, each per mover:
 *
 * - `<mover> <n> x1`: build one `memcpy` on the next pair, `wait(f)`;
 *   C: `memcpy <n> x1`.
 * - `<mover> <n> x16`: build 16 over the 16 pairs, `waitAll(fs)`;
 *   C: `memcpy <n> x16`.
 * - `<mover> <n> x1 await` and `<mover> <n> x16 await all` (threads movers,
 *   4 KiB and 1 MiB): the same with `await f` / `await all(fs)`, the path
 *   most programs take.
 * - `<mover> map NOFLUSH|durable 1 MiB x1|x16`: `map.memcpyAsync(k MiB,
 *   src, flags)` into a page-granularity mapping in `/dev/shm` whose mover
 *   it is, flags `MemFlags.NOFLUSH` or 0 (durable: the copy and an msync);
 *   C: `pmem2 NOFLUSH|durable 1 MiB x1|x16`, libpmem2's memcpy with the
 *   same flags.
 * - CPU mover overhead at 64 B, listed as overhead over the case named:
 *   `cpu wait(memcpy) 64 B -> map view` over `map.memcpy NOFLUSH 64 B`
 *   (`map.memcpy(off, src, NOFLUSH)`), and `cpu 64 B x1` over
 *   `Uint8Array.set 64 B x1` (`dst.set(src)`, what the CPU mover runs).
 *
 * Source k lies at k × n of one `ArrayBuffer`, destination k at
 * 16 MiB + k × n, as in the C program; ns/op counts single copies, also
 * in the x16 cases. Prints one JSON line per case (`bench/lib.ts`).
 *
 *   deno run -A bench/mover_bench.ts     bun bench/mover_bench.ts
 *
 * With `--sweep` it instead measures {@linkcode ThreadMover}'s
 * `inlineThreshold` (0, 4 KiB, 16 KiB, 64 KiB, 256 KiB, 2 MiB) at 4 KiB,
 * 64 KiB and 1 MiB, x1 and x16 with `wait`/`waitAll`, and x16 with
 * `await all`, prints the JSON lines (suite `mover sweep`) and then a
 * Markdown table of GB/s, each with its ratio to the 2 MiB threshold (every
 * size inline: the copy on the polling thread).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { all, type Future, wait, waitAll } from "../future/mod.ts";
import { CpuMover, DsaMover, ThreadMover, type Vdm } from "../mover/mod.ts";
import { openTestPortal } from "../testing/mod.ts";
import { RUNTIME } from "../ffi/_runtime.ts";
import { mapFile, type Mapping, MemFlags } from "../pmem2/mod.ts";
import {
  bench,
  benchAsync,
  type BenchOptions,
  type BenchResult,
  MOVERS,
  rerunArgs,
  scratchDir,
} from "./lib.ts";

const SUITE = "mover";

/**
 * The movers of this suite: the shared ones, the DSA path on a test
 * portal, labelled as the software device it really measures (a WQ of
 * 32 entries, every copy a descriptor, two engines as `threads-offload`
 * on this machine), and -- where a usable WQ exists -- DSA hardware
 * (`dsa`, every copy a descriptor).
 */
const BENCHED: Readonly<Record<string, () => Vdm>> = {
  ...MOVERS,
  "dsa-portal (software)": () =>
    openTestPortal({ queueSize: 32, engines: 2, inlineThreshold: 0 }),
  ...(DsaMover.available()
    ? { dsa: () => DsaMover.open({ inlineThreshold: 0 }) }
    : {}),
};
const PAIRS = 16;
const MAX = 1 << 20;
const KiB = 1024;
const SIZES: readonly (readonly [string, number])[] = [
  ["64 B", 64],
  ["4 KiB", 4 * KiB],
  ["64 KiB", 64 * KiB],
  ["1 MiB", MAX],
];
/** Sizes of the `await` variants. */
const AWAIT_SIZES = new Set([4 * KiB, MAX]);
/** `memcpyAsync` flags of the mapping cases. */
const MAP_FLAGS = [["NOFLUSH", MemFlags.NOFLUSH], ["durable", 0]] as const;

/** Sixteen sources, then sixteen destinations, pre-faulted. */
const region = new ArrayBuffer(2 * PAIRS * MAX);
new Uint8Array(region, 0, PAIRS * MAX).fill(0xa5);
new Uint8Array(region, PAIRS * MAX).fill(0x5a);

/** The pairs of one size: source k at k × size, destination 16 MiB on. */
function pairs(size: number): { src: Uint8Array[]; dst: Uint8Array[] } {
  const src: Uint8Array[] = [];
  const dst: Uint8Array[] = [];
  for (let k = 0; k < PAIRS; k++) {
    src.push(new Uint8Array(region, k * size, size));
    dst.push(new Uint8Array(region, PAIRS * MAX + k * size, size));
  }
  return { src, dst };
}

/** Throw unless one copy by `mover` moves the bytes (not a timing check). */
function verify(label: string, mover: Vdm, size: number): void {
  const { src, dst } = pairs(size);
  dst[0].fill(0);
  wait(mover.memcpy(dst[0], src[0]));
  if (dst[0][0] !== 0xa5 || dst[0][size - 1] !== 0xa5) {
    throw new Error(`mover bench: ${label} did not copy ${size} bytes`);
  }
}

/**
 * How a case completes its copies: `x1` one per iteration with `wait(f)`,
 * `x16` sixteen (one per pair) with `waitAll(fs)`; `x1 await` and
 * `x16 await all` the same with `await f` and `await all(fs)`.
 */
type Mode = "x1" | "x16" | "x1 await" | "x16 await all";

/**
 * Measure `mover` copying the pairs of `size` bytes in `mode`; print and
 * return the result.
 */
async function measure(
  suite: string,
  name: string,
  mover: Vdm,
  size: number,
  mode: Mode,
  options: BenchOptions = {},
): Promise<BenchResult> {
  const { src, dst } = pairs(size);
  const fs: Future<void>[] = new Array(PAIRS);
  const one = { bytes: size, ...options };
  const many = { opsPerIteration: PAIRS, bytes: size, ...options };
  switch (mode) {
    case "x1":
      return bench(suite, name, (n) => {
        for (let i = 0; i < n; i++) {
          const k = i % PAIRS;
          wait(mover.memcpy(dst[k], src[k]));
        }
      }, one);
    case "x16":
      return bench(suite, name, (n) => {
        for (let i = 0; i < n; i++) {
          for (let k = 0; k < PAIRS; k++) fs[k] = mover.memcpy(dst[k], src[k]);
          waitAll(fs);
        }
      }, many);
    case "x1 await":
      return await benchAsync(suite, name, async (n) => {
        for (let i = 0; i < n; i++) {
          const k = i % PAIRS;
          await mover.memcpy(dst[k], src[k]);
        }
      }, one);
    case "x16 await all":
      return await benchAsync(suite, name, async (n) => {
        for (let i = 0; i < n; i++) {
          for (let k = 0; k < PAIRS; k++) fs[k] = mover.memcpy(dst[k], src[k]);
          await all(fs);
        }
      }, many);
  }
}

/** The modes measured at `size`. */
function modesOf(size: number): Mode[] {
  return AWAIT_SIZES.has(size)
    ? ["x1", "x16", "x1 await", "x16 await all"]
    : ["x1", "x16"];
}

/**
 * One mover's cases (a child process): the CPU mover's overhead, every
 * size × mode, then the mapping cases.
 */
async function moverCases(label: string, dir: string): Promise<void> {
  using mover = BENCHED[label]();
  for (const [, size] of SIZES) verify(label, mover, size);
  if (mover instanceof CpuMover) {
    using map = mapFile(join(dir, "overhead.pool"), {
      size: PAIRS * MAX,
      mover,
    });
    overheadCases(mover, map);
  }
  for (const [sizeLabel, size] of SIZES) {
    for (const mode of modesOf(size)) {
      if (mode.includes("await") && mover instanceof CpuMover) continue;
      await measure(SUITE, `${label} ${sizeLabel} ${mode}`, mover, size, mode, {
        reference: `memcpy ${sizeLabel} ${mode.split(" ")[0]}`,
        overheadOf: label === "cpu" && size === 64 && mode === "x1"
          ? "Uint8Array.set 64 B x1"
          : undefined,
      });
    }
  }
  using map = mapFile(join(dir, `${label}.pool`), { size: PAIRS * MAX, mover });
  map.view().fill(0x5a);
  mappingCases(label, map);
}

/**
 * The default suite: each mover's cases in a process of its own (as an
 * application uses one mover; in one process the movers met at the same
 * call sites and the JIT code that one's cases left slowed the others, and
 * idle workers of the thread movers shared the CPUs), printed in the order
 * size, mode, mover.
 */
function suite(dir: string): void {
  const lines = new Map<string, string>();
  for (const label of Object.keys(BENCHED)) {
    const child = spawnSync(
      process.execPath,
      [...SELF, "--mover", label, dir],
      {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
        maxBuffer: 1 << 26,
      },
    );
    if (child.status !== 0) {
      throw new Error(`mover bench: ${label} exited ${child.status}`);
    }
    for (const line of child.stdout.split("\n")) {
      if (line.startsWith("{")) lines.set(JSON.parse(line).case, line);
    }
  }
  const order = [
    "Uint8Array.set 64 B x1",
    "map.memcpy NOFLUSH 64 B",
    "cpu wait(memcpy) 64 B -> map view",
  ];
  for (const [sizeLabel, size] of SIZES) {
    for (const mode of modesOf(size)) {
      for (const label of Object.keys(BENCHED)) {
        order.push(`${label} ${sizeLabel} ${mode}`);
      }
    }
  }
  for (const name of order) {
    const line = lines.get(name);
    if (line === undefined) continue;
    console.log(line);
    lines.delete(name);
  }
  for (const line of lines.values()) console.log(line); // the mapping cases
}

/** How to run this file again. */
const SELF = rerunArgs(import.meta.url);

/** `memcpyAsync` of 1 MiB through the mapping's mover, NOFLUSH and durable. */
function mappingCases(label: string, map: Mapping): void {
  const { src } = pairs(MAX);
  const fs: Future<void>[] = new Array(PAIRS);
  for (const [what, flags] of MAP_FLAGS) {
    const name = `${label} map ${what} 1 MiB`;
    bench(SUITE, `${name} x1`, (n) => {
      for (let i = 0; i < n; i++) {
        const k = i % PAIRS;
        wait(map.memcpyAsync(k * MAX, src[k], flags));
      }
    }, { bytes: MAX, reference: `pmem2 ${what} 1 MiB x1` });
    bench(SUITE, `${name} x16`, (n) => {
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < PAIRS; k++) {
          fs[k] = map.memcpyAsync(k * MAX, src[k], flags);
        }
        waitAll(fs);
      }
    }, {
      opsPerIteration: PAIRS,
      bytes: MAX,
      reference: `pmem2 ${what} 1 MiB x16`,
    });
  }
}

/**
 * The CPU mover's cost at 64 B: over `dst.set(src)`, what it runs, and over
 * a direct copy into the same mapping.
 */
function overheadCases(cpu: CpuMover, map: Mapping): void {
  const { src, dst } = pairs(64);
  bench(SUITE, "Uint8Array.set 64 B x1", (n) => {
    for (let i = 0; i < n; i++) {
      const k = i % PAIRS;
      dst[k].set(src[k]);
    }
  }, { bytes: 64, reference: "memcpy 64 B x1" });
  const views = src.map((_, k) => map.view(k * 64, 64));
  bench(SUITE, "map.memcpy NOFLUSH 64 B", (n) => {
    for (let i = 0; i < n; i++) {
      const k = i % PAIRS;
      map.memcpy(k * 64, src[k], MemFlags.NOFLUSH);
    }
  }, { bytes: 64, reference: "memcpy 64 B x1" });
  bench(SUITE, "cpu wait(memcpy) 64 B -> map view", (n) => {
    for (let i = 0; i < n; i++) {
      const k = i % PAIRS;
      wait(cpu.memcpy(views[k], src[k]));
    }
  }, {
    bytes: 64,
    reference: "memcpy 64 B x1",
    overheadOf: "map.memcpy NOFLUSH 64 B",
  });
}

const SWEEP_SUITE = "mover sweep";
const THRESHOLDS = [0, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 2 * MAX];
const SWEEP_SIZES = SIZES.slice(1);
const SWEEP_MODES: readonly Mode[] = ["x1", "x16", "x16 await all"];

function sizeName(bytes: number): string {
  if (bytes >= MAX) return `${bytes / MAX} MiB`;
  return bytes >= KiB ? `${bytes / KiB} KiB` : `${bytes} B`;
}

/** ThreadMover's inlineThreshold against size and depth; a GB/s table. */
async function sweep(): Promise<void> {
  const columns = SWEEP_SIZES.flatMap(([label]) =>
    SWEEP_MODES.map((mode) => `${label} ${mode}`)
  );
  const results = new Map<string, BenchResult>();
  let threads = 0;
  for (const threshold of THRESHOLDS) {
    using mover = new ThreadMover({ inlineThreshold: threshold });
    threads = mover.info.threads;
    const t = sizeName(threshold);
    for (const [label, size] of SWEEP_SIZES) {
      verify(`threshold ${t}`, mover, size);
      for (const mode of SWEEP_MODES) {
        const name = `${t} ${label} ${mode}`;
        results.set(name, await measure(SWEEP_SUITE, name, mover, size, mode));
      }
    }
  }
  const inline = sizeName(THRESHOLDS[THRESHOLDS.length - 1]);
  function cell(t: string, column: string): string {
    const r = results.get(`${t} ${column}`);
    const base = results.get(`${inline} ${column}`);
    if (r === undefined || base === undefined) return "–";
    const gbs = r.bytes! / r.nsPerOp;
    const ratio = base.nsPerOp / r.nsPerOp;
    return `${gbs.toFixed(gbs < 10 ? 2 : 1)} (${ratio.toFixed(2)}×)`;
  }
  const header = ["inlineThreshold", ...columns];
  console.log(
    `\nGB/s by ThreadMover inlineThreshold (${threads} threads, ` +
      `${RUNTIME}); in parentheses the ratio to ${inline}, where every ` +
      "size runs inline on the polling thread:\n",
  );
  console.log(`| ${header.join(" | ")} |`);
  console.log(`| --- |${" ---: |".repeat(columns.length)}`);
  for (const threshold of THRESHOLDS) {
    const t = sizeName(threshold);
    console.log(`| ${[t, ...columns.map((c) => cell(t, c))].join(" | ")} |`);
  }
}

const mover = process.argv.indexOf("--mover");
if (process.argv.includes("--sweep")) {
  await sweep();
} else if (mover >= 0) {
  await moverCases(process.argv[mover + 1], process.argv[mover + 2]);
} else {
  const dir = mkdtempSync(join(scratchDir(), "asyncpmem-bench-"));
  try {
    suite(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
