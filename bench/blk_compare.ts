// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The block store beside libpmemblk, in rounds: each round runs the C
 * baseline (`bench/c/blk_baseline.c`), then `bench/blk_bench.ts` on Deno,
 * then on Bun, back to back, so every ratio compares figures measured
 * within a minute or two of each other on this shared machine; several
 * rounds give the ranges. Prints, per case and runtime, the throughput
 * relative to the case's C reference (×C, higher is better) as the median
 * and the range over the rounds, Bun's throughput relative to Deno's, and
 * how 2 Workers scale over 1 (and libpmemblk's 2 threads over 1).
 *
 *   deno run -A bench/blk_compare.ts [--rounds N] [case...]
 *
 * Cases are names of `blk_bench.ts` (or prefixes ending in `*`); the C
 * cases they are compared with run too. Default: every case, 3 rounds.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { type BenchResult, scratchDir } from "./lib.ts";

const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));
const ROOT = join(BENCH_DIR, "..");
const RUNTIMES = ["deno", "bun"] as const;

/** The C cases every TypeScript case of the suite is compared with. */
const C_CASES = [
  "write 512 B",
  "read 512 B",
  "write 4 KiB",
  "read 4 KiB",
  "write 4 KiB 2 threads",
  "read 4 KiB 2 threads",
  "write 4 KiB 1 GiB",
  "read 4 KiB 1 GiB",
];

function binary(name: string): string {
  const local = join(ROOT, "node_modules", ".bin", name);
  return existsSync(local) ? local : name;
}

function run(cmd: string, args: string[]): BenchResult[] {
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, RUST_BACKTRACE: "0", NO_COLOR: "1" },
    maxBuffer: 16 << 20,
  });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(" ")}: exit ${r.status}`);
  }
  return r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) =>
    JSON.parse(l) as BenchResult
  );
}

/** The C case a case of `blk_bench.ts` is compared with. */
function referenceOf(name: string): string {
  const op = name.startsWith("write") ? "write" : "read";
  const label = name.includes("1 GiB")
    ? "4 KiB 1 GiB"
    : name.includes("512 B")
    ? "512 B"
    : "4 KiB";
  return name.includes("2 Workers")
    ? `${op} ${label} 2 threads`
    : `${op} ${label}`;
}

/** The C cases that `cases` (names, or prefixes: then all) need. */
function cCasesFor(cases: string[]): string[] {
  if (cases.length === 0 || cases.some((k) => k.endsWith("*"))) return C_CASES;
  return [...new Set(cases.map(referenceOf))];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function fmt(xs: number[]): string {
  if (xs.length === 0) return "–";
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return `${median(xs).toFixed(2)} (${lo.toFixed(2)}–${hi.toFixed(2)})`;
}

const argv = process.argv.slice(2);
let rounds = 3;
const cases: string[] = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--rounds") rounds = Number(argv[++i]);
  else cases.push(argv[i]);
}

const tmp = mkdtempSync(join(scratchDir(), "asyncpmem-blk-compare-"));
const exe = join(tmp, "blk_baseline");
/** ×C per case and runtime, one value per round. */
const ratios = new Map<string, Record<string, number[]>>();
/** ns/op per case and runtime (C under "c"), one value per round. */
const times = new Map<string, Record<string, number[]>>();
function note(
  map: Map<string, Record<string, number[]>>,
  name: string,
  rt: string,
  v: number,
): void {
  const row = map.get(name) ?? {};
  (row[rt] ??= []).push(v);
  map.set(name, row);
}
try {
  const cc = process.env.CC || "gcc";
  const built = spawnSync(cc, [
    "-O2",
    "-std=gnu11",
    "-o",
    exe,
    join(BENCH_DIR, "c", "blk_baseline.c"),
    "-lpmem2",
    "-lpmemblk",
  ], { stdio: "inherit" });
  if (built.status !== 0) throw new Error("cannot build blk_baseline.c");
  const cNames = cCasesFor(cases);
  for (let r = 1; r <= rounds; r++) {
    console.error(`blk compare: round ${r} of ${rounds}: C`);
    const c = run(exe, [join(tmp, "c.pool"), ...cNames]);
    for (const x of c) note(times, x.case, "c", x.nsPerOp);
    for (const rt of RUNTIMES) {
      console.error(`blk compare: round ${r} of ${rounds}: ${rt}`);
      const file = join(BENCH_DIR, "blk_bench.ts");
      const res = run(
        binary(rt),
        rt === "deno" ? ["run", "-A", file, ...cases] : [file, ...cases],
      );
      for (const x of res) {
        note(times, x.case, rt, x.nsPerOp);
        const ref = c.find((y) => y.case === (x.reference ?? x.case));
        if (ref !== undefined) {
          note(ratios, x.case, rt, ref.nsPerOp / x.nsPerOp);
        }
      }
    }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

console.log(
  `${rounds} rounds of C, Deno, Bun; ×C = throughput over the C reference's ` +
    "in the same round: median (min–max). Bun/Deno: Bun's throughput over " +
    "Deno's in the same round.\n",
);
console.log("| case | Deno ×C | Bun ×C | Bun/Deno |");
console.log("| --- | ---: | ---: | ---: |");
for (const [name, row] of ratios) {
  const d = times.get(name)?.deno ?? [];
  const b = times.get(name)?.bun ?? [];
  const bd = d.map((t, i) => t / b[i]).filter((v) => Number.isFinite(v));
  console.log(
    `| ${name} | ${fmt(row.deno ?? [])} | ${fmt(row.bun ?? [])} | ${fmt(bd)} |`,
  );
}
const scaling: string[] = [];
for (const op of ["write", "read"]) {
  const one = times.get(`${op} 4 KiB 1 Worker`);
  const two = times.get(`${op} 4 KiB 2 Workers`);
  const c1 = times.get(`${op} 4 KiB`)?.c;
  const c2 = times.get(`${op} 4 KiB 2 threads`)?.c;
  for (const rt of RUNTIMES) {
    if (one?.[rt] && two?.[rt]) {
      scaling.push(
        `| ${op}: 2 Workers over 1 (${rt}) | ${
          fmt(one[rt].map((t, i) => t / two[rt][i]))
        } |`,
      );
    }
  }
  if (c1 && c2) {
    scaling.push(
      `| ${op}: libpmemblk 2 threads over 1 | ${
        fmt(c1.map((t, i) => t / c2[i]))
      } |`,
    );
  }
}
if (scaling.length > 0) {
  console.log("\n| scaling (throughput) | median (min–max) |");
  console.log("| --- | ---: |");
  for (const line of scaling) console.log(line);
}
