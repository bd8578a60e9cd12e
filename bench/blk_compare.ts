// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The block store beside libpmemblk, in rounds: for each case, each round
 * runs its C reference (`bench/c/blk_baseline.c`), then the case
 * (`bench/blk_bench.ts`) on Deno, then on Bun, back to back, so every
 * ratio compares figures measured within seconds of each other on this
 * shared machine; several rounds give the ranges. Prints, per case and runtime, the throughput
 * relative to the case's C reference (×C, higher is better) as the median
 * and the range over the rounds, Bun's throughput relative to Deno's, and
 * how 2 Workers scale over 1 (and libpmemblk's 2 threads over 1).
 *
 *   deno run -A bench/blk_compare.ts [--rounds N] [case...]
 *
 * Cases are names of `blk_bench.ts`; the C cases they are compared with
 * run too. Default: every case, 3 rounds. Also prints each runtime's
 * median ns/op.
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

/** Every case of `blk_bench.ts`, the order they are compared in. */
const ALL_CASES: readonly string[] = [
  ...["512 B", "4 KiB", "4 KiB 1 GiB"].flatMap((l) => [
    `write ${l}`,
    `read ${l}`,
    `read ${l} plain`,
    `read ${l} plain cycled`,
    `read ${l} new array`,
    `readMany ${l} x32`,
  ]),
  ...["512 B", "4 KiB"].flatMap((l) =>
    ["cpu", "threads", "threads-offload"].flatMap((m) => [
      `writeAsync ${l} QD32 ${m} waitAll`,
      `writeAsync ${l} QD32 ${m} await all`,
      `writeMany ${l} x32 ${m}`,
      `writeMany ${l} x256 ${m}`,
      `readAsync ${l} QD32 ${m} waitAll`,
    ])
  ),
  "write 4 KiB 1 Worker",
  "write 4 KiB 2 Workers",
  "read 4 KiB 1 Worker",
  "read 4 KiB 2 Workers",
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
  const list = cases.length > 0 ? cases : ALL_CASES;
  for (let r = 1; r <= rounds; r++) {
    for (const name of list) {
      console.error(`blk compare: round ${r} of ${rounds}: ${name}`);
      const refName = referenceOf(name);
      const worker = name.includes("Worker");
      const c = run(exe, [
        join(tmp, "c.pool"),
        refName,
        ...(worker ? ["spin", "spin 2 threads"] : []),
      ]);
      for (const x of c) {
        if (x.case.startsWith("spin")) {
          note(times, `${name}: ${x.case}`, "c", x.nsPerOp);
        } else note(times, name, "c", x.nsPerOp);
      }
      for (const rt of RUNTIMES) {
        const file = join(BENCH_DIR, "blk_bench.ts");
        const res = run(
          binary(rt),
          rt === "deno" ? ["run", "-A", file, name] : [file, name],
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
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

console.log(
  `${rounds} rounds of C, Deno, Bun; ×C = throughput over the C reference's ` +
    "in the same round: median (min–max). Bun/Deno: Bun's throughput over " +
    "Deno's in the same round.\n",
);
console.log(
  "| case | C ns/op | Deno ns/op | Bun ns/op | Deno ×C | Bun ×C | Bun/Deno |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const [name, row] of ratios) {
  if (name.includes(": spin")) continue;
  const t = times.get(name) ?? {};
  const d = t.deno ?? [];
  const b = t.bun ?? [];
  const c = t.c ?? [];
  const bd = d.map((x, i) => x / b[i]).filter((v) => Number.isFinite(v));
  const ns = (xs: number[]) =>
    xs.length ? Math.round(median(xs)).toString() : "–";
  console.log(
    `| ${name} | ${ns(c)} | ${ns(d)} | ${ns(b)} | ${fmt(row.deno ?? [])} | ${
      fmt(row.bun ?? [])
    } | ${fmt(bd)} |`,
  );
}
const scaling: string[] = [];
for (const op of ["write", "read"]) {
  const one = times.get(`${op} 4 KiB 1 Worker`);
  const two = times.get(`${op} 4 KiB 2 Workers`);
  if (one === undefined || two === undefined) continue;
  for (const rt of [...RUNTIMES, "c"]) {
    const a = one[rt] ?? [];
    const b = two[rt] ?? [];
    if (a.length === 0 || a.length !== b.length) continue;
    const who = rt === "c"
      ? "libpmemblk 2 threads over 1"
      : `2 Workers over 1 (${rt})`;
    scaling.push(`| ${op}: ${who} | ${fmt(a.map((t, i) => t / b[i]))} |`);
  }
}
if (scaling.length > 0) {
  console.log("\n| scaling (throughput) | median (min–max) |");
  console.log("| --- | ---: |");
  for (const line of scaling) console.log(line);
}
