// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Run every benchmark and print one table per suite, whichever runtime
 * starts it:
 *
 *   deno run -A bench/run.ts [--quick] [--write]     bun bench/run.ts ...
 *
 * `--quick` runs the short suite (fewer, shorter runs: a first look, as
 * `asyncpmem bench` does); `--write` (`deno task bench`, `bun run bench`)
 * also writes `bench/RESULTS.md` and the chart `bench/chart.svg`.
 *
 * 1. Every native baseline `bench/c/*.c` is compiled (`gcc -O2 … -lpmem2`,
 *    plus `-lpmemblk` or `-lpmemlog` for those that include its header;
 *    `CC` overrides the compiler) into a temporary directory and run with
 *    the path of a fresh pool file in `/dev/shm` as its only argument.
 * 2. Every `bench/*_bench.ts` runs in a subprocess on Deno (`deno run -A`)
 *    and then on Bun, one program at a time. The runtime that runs this
 *    script uses its own binary; the other comes from `node_modules/.bin`,
 *    else from `PATH`.
 *
 * Every program runs in `PROCESSES` processes one after the
 * other (2; `ASYNCPMEM_BENCH_PROCESSES` overrides it, `--quick` makes it
 * 1), and each case keeps its fastest process's median, C as the
 * runtimes: on the 2-CPU VM a process now and then runs its whole life
 * some 40 % slower on the syscall-bound cases (the same program, spawned
 * twice in a row: `tx alloc+free 64 B` 8080 then 5101 ns), which one
 * process per program let into the tables at random.
 *
 * Each program prints one JSON line per case (`BenchResult` in
 * `bench/lib.ts`); lines are grouped by `suite` and matched by `case`, so a
 * new suite needs only its `<suite>_bench.ts` and, optionally, a C file in
 * `bench/c/` that prints the same suite and case names. The columns are
 * the median ns/op per runtime and each runtime's ratio to C. Progress
 * goes to stderr, the tables to stdout. Exits 1 when any program failed,
 * after printing what the others measured.
 *
 * Cases may say more (`BenchResult`): a `reference` pairs a case with a C
 * case of another name (that C case then gets no row of its own); `bytes`
 * per operation turns the suite's table into throughput: ops/s and GB/s
 * per runtime and ×C, the throughput relative to the C reference (higher
 * is better); `overheadOf` names a case of the same runtime whose ns/op
 * is subtracted, listed in a second table under the suite's.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { cpus, release } from "node:os";
import { basename, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { RUNTIME, type RuntimeName } from "../ffi/_runtime.ts";
import { type ChartRow, renderChart } from "./chart.ts";
import { type BenchResult, benchSettings, scratchDir, WARMUPS } from "./lib.ts";

const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));
const ROOT = join(BENCH_DIR, "..");
const C_DIR = join(BENCH_DIR, "c");
const CC = process.env.CC || "gcc";
const RUNTIMES: readonly RuntimeName[] = ["deno", "bun"];
const COLUMNS: readonly BenchResult["runtime"][] = ["c", ...RUNTIMES];
const LABELS: Record<BenchResult["runtime"], string> = {
  c: "C",
  deno: "Deno",
  bun: "Bun",
};

const failures: string[] = [];

/** The processes each program runs in (see the module's doc). */
const PROCESSES = process.argv.includes("--quick")
  ? 1
  : Math.max(1, Number(process.env.ASYNCPMEM_BENCH_PROCESSES ?? 2) || 1);

/**
 * Run a program PROCESSES times (`args(i)` for the i-th); each case's
 * fastest median.
 */
function bestOf(
  label: string,
  cmd: string,
  args: (i: number) => string[],
): BenchResult[] {
  const best = new Map<string, BenchResult>();
  for (let i = 0; i < PROCESSES; i++) {
    for (const r of parse(run(label, cmd, args(i)))) {
      const key = `${r.suite}\u0000${r.case}\u0000${r.runtime}`;
      const seen = best.get(key);
      if (seen === undefined || r.nsPerOp < seen.nsPerOp) best.set(key, r);
    }
  }
  return [...best.values()];
}

/**
 * The binary of a runtime: this process's own, else the npm-installed one
 * (`node_modules/.bin`), else the one on `PATH`.
 */
function runtimeBinary(name: RuntimeName): string {
  if (name === RUNTIME) return process.execPath;
  const local = join(ROOT, "node_modules", ".bin", name);
  return existsSync(local) ? local : name;
}

/** Run a program; its stdout, or null (recorded as a failure) when it fails. */
function run(label: string, cmd: string, args: string[]): string | null {
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, RUST_BACKTRACE: "0", NO_COLOR: "1" },
    maxBuffer: 16 << 20,
  });
  if (r.error !== undefined || r.status !== 0) {
    failures.push(`${label}: ${r.error?.message ?? `exit status ${r.status}`}`);
    return null;
  }
  return r.stdout;
}

/** The JSON result lines of a program's output. */
function parse(out: string | null): BenchResult[] {
  return (out ?? "").split("\n").filter((l) => l.startsWith("{")).map((l) =>
    JSON.parse(l) as BenchResult
  );
}

/** Compile and run each native baseline, each with its own pool file. */
function runBaselines(tmp: string): BenchResult[] {
  const results: BenchResult[] = [];
  for (const file of readdirSync(C_DIR).filter((f) => f.endsWith(".c"))) {
    const name = basename(file, ".c");
    const exe = join(tmp, name);
    console.error(`bench: c/${file}`);
    const built = run(`build c/${file}`, CC, [
      "-O2",
      "-std=gnu11",
      "-Wall",
      "-Wextra",
      "-o",
      exe,
      join(C_DIR, file),
      "-lpmem2",
      ...(readFileSync(join(C_DIR, file), "utf8").includes("<libpmemblk.h>")
        ? ["-lpmemblk"]
        : []),
      ...(readFileSync(join(C_DIR, file), "utf8").includes("<libpmemlog.h>")
        ? ["-lpmemlog"]
        : []),
      ...(readFileSync(join(C_DIR, file), "utf8").includes("<libpmemobj.h>")
        ? ["-lpmemobj"]
        : []),
    ]);
    if (built === null) continue;
    // a fresh pool file for each process
    results.push(
      ...bestOf(`c/${file}`, exe, (i) => [join(tmp, `${name}-${i}.pool`)]),
    );
  }
  return results;
}

/** Run each `*_bench.ts` on each runtime. */
function runSuites(): BenchResult[] {
  const files = readdirSync(BENCH_DIR).filter((f) => f.endsWith("_bench.ts"))
    .sort();
  const results: BenchResult[] = [];
  for (const rt of RUNTIMES) {
    const bin = runtimeBinary(rt);
    for (const file of files) {
      console.error(`bench: ${file} on ${rt}`);
      const path = join(BENCH_DIR, file);
      const args = rt === "deno" ? ["run", "-A", path] : [path];
      results.push(...bestOf(`${file} on ${rt}`, bin, () => args));
    }
  }
  return results;
}

/** `deno 2.9.6`, `bun 1.4.5`, `gcc 12.2.0`, or the name alone. */
function version(name: string, cmd: string, flag: string): string {
  const r = spawnSync(cmd, [flag], { encoding: "utf8" });
  const v = r.stdout?.match(/\d+\.\d+\.\d+/)?.[0];
  return v === undefined ? name : `${name} ${v}`;
}

function cpuModel(): string {
  try {
    const info = readFileSync("/proc/cpuinfo", "utf8");
    return info.match(/^model name\s*:\s*(.+)$/m)?.[1] ?? "unknown CPU";
  } catch {
    return cpus()[0]?.model ?? "unknown CPU";
  }
}

function formatNs(ns: number | undefined): string {
  if (ns === undefined) return "–";
  if (ns < 10) return ns.toFixed(2);
  if (ns < 100) return ns.toFixed(1);
  return Math.round(ns).toLocaleString("en-US");
}

function formatRatio(ns: number | undefined, c: number | undefined): string {
  return ns === undefined || c === undefined ? "–" : (ns / c).toFixed(2);
}

/** Three significant digits, at least one decimal below 10. */
function formatSignificant(x: number): string {
  if (x >= 100) return Math.round(x).toString();
  if (x >= 10) return x.toFixed(1);
  if (x >= 0.1) return x.toFixed(2);
  return x.toPrecision(2);
}

/** Operations per second: `12.3 M`, `456 k`. */
function formatRate(ns: number | undefined): string {
  if (ns === undefined) return "–";
  const ops = 1e9 / ns;
  if (ops >= 1e6) return `${formatSignificant(ops / 1e6)} M`;
  if (ops >= 1e3) return `${formatSignificant(ops / 1e3)} k`;
  return formatSignificant(ops);
}

/** GB/s (10⁹ bytes per second) for `bytes` per operation. */
function formatGBs(ns: number | undefined, bytes: number | undefined): string {
  return ns === undefined || bytes === undefined
    ? "–"
    : formatSignificant(bytes / ns);
}

/** Throughput relative to C: C's ns/op over the runtime's. */
function formatSpeedup(ns: number | undefined, c: number | undefined): string {
  return ns === undefined || c === undefined ? "–" : formatSignificant(c / ns);
}

/**
 * A Markdown table: the first `left` columns left-aligned (text), the
 * others right-aligned (numbers).
 */
function markdown(header: string[], rows: string[][], left = 1): string {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => r[i].length))
  );
  function line(cells: string[]): string {
    const padded = cells.map((cell, i) =>
      i < left ? cell.padEnd(widths[i]) : cell.padStart(widths[i])
    );
    return `| ${padded.join(" | ")} |`;
  }
  const rule = line(
    widths.map((w, i) => i < left ? "-".repeat(w) : `${"-".repeat(w - 1)}:`),
  );
  return [line(header), rule, ...rows.map(line)].join("\n");
}

/** Look-ups into one suite's results. */
class Suite {
  readonly cases: string[];
  #results: BenchResult[];

  constructor(results: BenchResult[]) {
    this.#results = results;
    const referenced = new Set(
      results.filter((r) => r.runtime !== "c" && r.reference !== undefined)
        .map((r) => r.reference),
    );
    this.cases = [...new Set(results.map((r) => r.case))].filter((name) =>
      !referenced.has(name) ||
      results.some((r) => r.case === name && r.runtime !== "c")
    );
  }

  /** The result of a case on a runtime; for C, the case's reference. */
  get(name: string, rt: BenchResult["runtime"]): BenchResult | undefined {
    if (rt === "c") name = this.first(name)?.reference ?? name;
    return this.#results.find((r) => r.case === name && r.runtime === rt);
  }

  ns(name: string, rt: BenchResult["runtime"]): number | undefined {
    return this.get(name, rt)?.nsPerOp;
  }

  /** The first result of a case (any runtime). */
  first(name: string): BenchResult | undefined {
    return this.#results.find((r) => r.case === name);
  }

  get hasBytes(): boolean {
    return this.#results.some((r) => r.bytes !== undefined);
  }

  /** Cases with an `overheadOf`. */
  get overheads(): string[] {
    return this.cases.filter((name) =>
      this.#results.some((r) => r.case === name && r.overheadOf !== undefined)
    );
  }
}

/** One Markdown table: case | C | Deno | Bun ns/op | Deno/C | Bun/C. */
function table(suite: Suite): string {
  const header = [
    "case",
    ...COLUMNS.map((rt) => `${LABELS[rt]} ns/op`),
    ...RUNTIMES.map((rt) => `${LABELS[rt]}/C`),
  ];
  const rows = suite.cases.map((name) => [
    name,
    ...COLUMNS.map((rt) => formatNs(suite.ns(name, rt))),
    ...RUNTIMES.map((rt) =>
      formatRatio(suite.ns(name, rt), suite.ns(name, "c"))
    ),
  ]);
  return markdown(header, rows);
}

/** case | C ops/s, GB/s | per runtime: ops/s, GB/s, ×C. */
function throughputTable(suite: Suite): string {
  const header = [
    "case",
    "C ops/s",
    "C GB/s",
    ...RUNTIMES.flatMap((rt) => [
      `${LABELS[rt]} ops/s`,
      `${LABELS[rt]} GB/s`,
      `${LABELS[rt]} ×C`,
    ]),
  ];
  const rows = suite.cases.map((name) => {
    const c = suite.get(name, "c");
    return [
      name,
      formatRate(c?.nsPerOp),
      formatGBs(c?.nsPerOp, c?.bytes),
      ...RUNTIMES.flatMap((rt) => {
        const r = suite.get(name, rt);
        return [
          formatRate(r?.nsPerOp),
          formatGBs(r?.nsPerOp, r?.bytes),
          formatSpeedup(r?.nsPerOp, c?.nsPerOp),
        ];
      }),
    ];
  });
  return markdown(header, rows);
}

/** case | over | per runtime: ns/op, the other's ns/op, difference. */
function overheadTable(suite: Suite, names: string[]): string {
  const header = [
    "case",
    "overhead over",
    ...RUNTIMES.flatMap((rt) => [
      `${LABELS[rt]} ns/op`,
      `${LABELS[rt]} base`,
      `${LABELS[rt]} overhead`,
    ]),
  ];
  const rows = names.map((name) => {
    const base = suite.first(name)?.overheadOf ?? "";
    return [
      name,
      base,
      ...RUNTIMES.flatMap((rt) => {
        const ns = suite.ns(name, rt);
        const b = suite.ns(base, rt);
        return [
          formatNs(ns),
          formatNs(b),
          ns === undefined || b === undefined ? "–" : formatNs(ns - b),
        ];
      }),
    ];
  });
  return markdown(header, rows, 2);
}

/** Cases left out of the chart (variants of a case already there). */
const CHART_SKIP = /await all|threads-offload|overhead/;

/** What each suite's C baselines are, for the chart's tooltips. */
const ANCHORS: Record<string, string> = {
  pmem2: "libpmem2",
  mover: "a C memcpy loop",
  blk: "libpmemblk",
  stream: "libpmemlog (entries: a C memcpy loop)",
  obj: "libpmemobj",
};

/** The chart's rows: each case's C time over each runtime's. */
function chartRows(results: BenchResult[]): ChartRow[] {
  const rows: ChartRow[] = [];
  for (const name of new Set(results.map((r) => r.suite))) {
    const suite = new Suite(results.filter((r) => r.suite === name));
    for (const c of suite.cases) {
      const base = suite.ns(c, "c");
      if (base === undefined || CHART_SKIP.test(c)) continue;
      const speed: Record<string, number | undefined> = {};
      for (const rt of RUNTIMES) {
        const ns = suite.ns(c, rt);
        speed[rt] = ns === undefined ? undefined : base / ns;
      }
      if (RUNTIMES.every((rt) => speed[rt] === undefined)) continue;
      const ref = suite.first(c)?.reference ?? c;
      rows.push({
        suite: name,
        label: c,
        speed,
        anchor: `${ANCHORS[name] ?? "C"}: ${ref}`,
      });
    }
  }
  return rows;
}

/** The report: the run's header, then one section per suite. */
function report(results: BenchResult[], header: string): string {
  const out = [header];
  for (const name of new Set(results.map((r) => r.suite))) {
    const suite = new Suite(results.filter((r) => r.suite === name));
    out.push(`\n### ${name}\n`);
    if (!suite.hasBytes) {
      out.push(table(suite));
      continue;
    }
    out.push(
      "ops/s and GB/s (10⁹ B/s) from the median ns/op; ×C: throughput " +
        "relative to the row's C reference (higher is better).\n",
    );
    out.push(throughputTable(suite));
    const overheads = suite.overheads;
    if (overheads.length > 0) {
      out.push("\nOverhead: ns/op minus that of the case named.\n");
      out.push(overheadTable(suite, overheads));
    }
  }
  return out.join("\n");
}

const args = new Set(process.argv.slice(2));
for (const a of args) {
  if (a !== "--quick" && a !== "--write") {
    console.error(`Usage: bench/run.ts [--quick] [--write]\n  unknown: ${a}`);
    process.exit(2);
  }
}
if (args.has("--quick")) process.env.ASYNCPMEM_BENCH_QUICK = "1";

const tmp = mkdtempSync(join(scratchDir(), "asyncpmem-bench-"));
let results: BenchResult[];
try {
  results = [...runBaselines(tmp), ...runSuites()];
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

const tools = [
  version("deno", runtimeBinary("deno"), "--version"),
  version("bun", runtimeBinary("bun"), "--version"),
  version(CC, CC, "-dumpfullversion"),
];
const date = new Date().toISOString().slice(0, 10);
const machine = `${cpuModel()}, ${cpus().length} CPUs, Linux ${release()}`;
const settings = benchSettings(args.has("--quick"));
const header = [
  `${machine}; ${tools.join(", ")}; ${date}${
    args.has("--quick") ? " (the short suite)" : ""
  }`,
  `Median ns/op of ${settings.runs} runs of ~${settings.runMs} ms after ` +
  `${WARMUPS} warm-ups (the runtimes' go on, at least ${settings.warmupMs} ` +
  "ms, until runs stop getting faster), the fastest of " +
  `${PROCESSES} process${PROCESSES === 1 ? "" : "es"} per program; ` +
  "ratios are runtime/C (lower is better).",
].join("\n\n");
const text = report(results, header);
console.log(text);
if (args.has("--write")) {
  writeFileSync(
    join(BENCH_DIR, "RESULTS.md"),
    `# Benchmark results

Written by \`deno task bench\` (\`bench/run.ts --write\`): every case beside
its native C baseline, measured in the same run; compare the ratios, not the
absolute times. What the figures mean, and the figures behind design choices,
are in [NOTES.md](NOTES.md); the chart is [chart.svg](chart.svg).

${text}
`,
  );
  writeFileSync(
    join(BENCH_DIR, "chart.svg"),
    renderChart(chartRows(results), RUNTIMES, {
      title: "asyncpmem: each operation beside its native anchor",
      subtitle: `${machine}; ${tools.join(", ")}; ${date}`,
    }),
  );
  // in the project's format, so that the test command's format check
  // passes on what the bench wrote
  const fmt = spawnSync(
    runtimeBinary("deno"),
    ["fmt", "--quiet", "bench/RESULTS.md", "bench/chart.svg"],
    { cwd: ROOT, stdio: "inherit" },
  );
  if (fmt.status !== 0) {
    failures.push("deno fmt bench/RESULTS.md bench/chart.svg");
  }
  console.error("bench: wrote bench/RESULTS.md and bench/chart.svg");
}
if (failures.length > 0) {
  console.error(`\nbench: failed:\n  ${failures.join("\n  ")}`);
  process.exitCode = 1;
}
