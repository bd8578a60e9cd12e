// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What the three crash-sweep scripts (`sweep.ts` for the block store,
 * `obj_sweep.ts`, `stream_sweep.ts`) run on besides their store: the
 * command line ({@linkcode SweepArgs}), one child process per persistence
 * model ({@linkcode sweepPerModel}), and the script's two sides
 * ({@linkcode runSweepScript}). What their reports share is in
 * `sweep_report.ts`.
 *
 * A sweep runs under one persistence model per process: the model is the
 * mappings' granularity, which `PMEM2_FORCE_GRANULARITY` sets when a
 * mapping is made (and Bun does not pass later `process.env` changes to
 * native code), so the parent starts one child per model with the
 * environment set.
 *
 * @module
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { mapFile } from "../../pmem2/mod.ts";
import { startChild } from "./child.ts";
import { MODELS, type PersistenceModel } from "./model.ts";
import { scratchDir } from "./scratch.ts";

/**
 * Fail unless this process's mappings have the model's granularity: a
 * sweep under the wrong one would check images the hardware cannot make
 * and miss those it can.
 *
 * @param via the function that runs the sweep in children, for the message
 * @throws {Error} naming the environment variable to set
 */
export function checkModel(
  model: PersistenceModel,
  dir: string,
  via: string,
): void {
  const probe = join(dir, "granularity-probe");
  try {
    using map = mapFile(probe, { size: 4096 });
    if (map.granularity !== model.mappingGranularity) {
      throw new Error(
        `Cannot sweep the ${model.name} model: mappings here have ${map.granularity} granularity (run it with PMEM2_FORCE_GRANULARITY=${
          model.forceGranularity ?? "unset"
        }, or through ${via})`,
      );
    }
  } finally {
    rmSync(probe, { force: true });
  }
}

/** The budget of a sweep run per model in children. */
export interface PerModelOptions {
  /** The models, one child each. */
  models: readonly PersistenceModel[];
  /** Images per model. */
  images: number;
  /** The first seed. */
  seed: number;
  /** Operations per trace. */
  ops: number;
  /** The long sweep's settings instead of the CI's. */
  long: boolean;
  /** A directory for the children's files (each gets its model's). */
  dir: string;
}

/** What {@linkcode sweepPerModel} runs. */
export interface PerModelPlan<R> extends PerModelOptions {
  /** The sweep script (its child side runs under `--json`). */
  file: string;
  /** The sweep's name in errors ("object sweep"). */
  what: string;
  /** The store's own arguments of each child. */
  extra: readonly string[];
  /** An empty report. */
  empty(): R;
  /** Add one child's report to the total. */
  merge(into: R, r: R): void;
}

/**
 * Run a sweep per model in child processes, all at once (there are two
 * models and this is a two-CPU project), each with its model's mapping
 * granularity; a child that fails or prints no report fails the sweep,
 * so that a crash in a child never reads as a clean sweep.
 *
 * @returns the reports added up
 */
export async function sweepPerModel<R extends { ms: number }>(
  plan: PerModelPlan<R>,
): Promise<R> {
  const started = performance.now();
  const reports = await Promise.all(plan.models.map(async (model) => {
    const args = [
      "--json",
      "--model",
      model.name,
      "--images",
      String(plan.images),
      "--seed",
      String(plan.seed),
      "--ops",
      String(plan.ops),
      "--dir",
      join(plan.dir, model.name),
      ...plan.extra,
    ];
    if (plan.long) args.push("--long");
    const r = await startChild(plan.file, args, {
      PMEM2_FORCE_GRANULARITY: model.forceGranularity,
    }).ended;
    if (r.status !== 0) {
      throw new Error(
        `The ${model.name} ${plan.what} ended with ${
          r.signal ?? r.status
        }: ${r.stderr.trim()}`,
      );
    }
    try {
      return JSON.parse(r.stdout) as R;
    } catch (e) {
      throw new Error(
        `The ${model.name} ${plan.what} printed no report: ${r.stdout}${r.stderr}`,
        { cause: e },
      );
    }
  }));
  const total = plan.empty();
  for (const r of reports) plan.merge(total, r);
  total.ms = Math.round(performance.now() - started);
  return total;
}

/** The options with a value every sweep script takes. */
const SWEEP_OPTIONS = ["seed", "model", "ops", "images", "only", "dir"];

/**
 * A sweep script's command line: `--name value` pairs of the options
 * every script takes (`--seed`, `--model`, `--ops`, `--images`,
 * `--only`, `--dir`) and the script's own, and the boolean flags
 * `--long`, `--json` and the script's own. Anything else is refused: a
 * misspelt `--imgaes 5` ignored would run a sweep nobody asked for.
 */
export class SweepArgs {
  #values = new Map<string, string>();

  /**
   * @param flags the script's own boolean flags, without `--`
   * @param options the script's own options with a value, without `--`
   * @throws {Error} on an argument that is not an option, an unknown
   *   option, or an option without its value
   */
  constructor(
    argv: readonly string[],
    flags: readonly string[] = [],
    options: readonly string[] = [],
  ) {
    const booleans = new Set(["long", "json", ...flags]);
    const valued = new Set([...SWEEP_OPTIONS, ...options]);
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      if (!a.startsWith("--")) throw new Error(`Unexpected argument: ${a}`);
      const name = a.slice(2);
      if (booleans.has(name)) {
        this.#values.set(name, "true");
        continue;
      }
      if (!valued.has(name)) {
        throw new Error(
          `Unknown option: ${a} (options: ${
            [...valued, ...booleans].map((o) => `--${o}`).join(" ")
          })`,
        );
      }
      const value = argv[++i];
      if (value === undefined || value.startsWith("--")) {
        throw new Error(`${a} needs a value`);
      }
      this.#values.set(name, value);
    }
  }

  /** Whether the option was given. */
  has(name: string): boolean {
    return this.#values.has(name);
  }

  /** The option's value, if given. */
  get(name: string): string | undefined {
    return this.#values.get(name);
  }

  /**
   * The option's value as a number, or `fallback`.
   *
   * @throws {Error} when the value is no non-negative integer (`abc` read
   *   as NaN ran no image, and the sweep reported itself clean)
   */
  number(name: string, fallback: number): number {
    const text = this.#values.get(name);
    if (text === undefined) return fallback;
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
      throw new Error(`--${name}: '${text}' is not a non-negative integer`);
    }
    return Number(text);
  }

  /** `--long`: the long sweep's budget and settings. */
  get long(): boolean {
    return this.has("long");
  }

  /** `--seed N`: the first trace's seed (1 by default). */
  get seed(): number {
    return this.number("seed", 1);
  }

  /**
   * `--model NAME`, else every model.
   *
   * @throws {Error} on an unknown model
   */
  get models(): PersistenceModel[] {
    const named = this.get("model");
    if (named === undefined) return Object.values(MODELS);
    const model = MODELS[named];
    if (model === undefined) throw new Error(`Unknown model: ${named}`);
    return [model];
  }

  /**
   * The workloads `--workload NAME` picks from `all`, else all of them.
   *
   * @throws {Error} when none is named so
   */
  workloads<W extends { name: string }>(all: readonly W[]): readonly W[] {
    const name = this.get("workload");
    const picked = name === undefined
      ? all
      : all.filter((w) => w.name === name);
    if (picked.length === 0) throw new Error(`Unknown workload: ${name}`);
    return picked;
  }
}

/** The two sides of a sweep script. */
export interface SweepScript {
  /** The scratch directory's prefix ("asyncpmem-crash-"). */
  prefix: string;
  /**
   * The child side (`--json`): one model's sweep in this process, in
   * `dir`; its report is printed as JSON for the parent to judge.
   */
  child(dir: string): unknown;
  /**
   * The parent side's stages in order ("images", "fuzz", "kill"), each
   * printing its report and resolving to whether it found problems;
   * `--only NAME` runs one.
   */
  stages: Readonly<Record<string, (dir: string) => Promise<boolean>>>;
}

/**
 * What a stage's report says it found: an image sweep counts its
 * `problems`, a kill test lists them, a fuzzer lists `failures`.
 */
export interface Findings {
  problems?: number | readonly unknown[];
  failures?: readonly unknown[];
}

/** Whether a stage's report found anything. */
function found(r: Findings): boolean {
  const problems = typeof r.problems === "number"
    ? r.problems
    : r.problems?.length ?? 0;
  return problems > 0 || (r.failures?.length ?? 0) > 0;
}

/**
 * A parent-side stage that runs `run`, prints its report and tells
 * whether it found anything: every stage of every sweep script ends that
 * way, and a report that is not printed is a problem nobody sees.
 */
export function stage<R extends Findings>(
  run: (dir: string) => R | Promise<R>,
  format: (r: R) => string,
): (dir: string) => Promise<boolean> {
  return async (dir) => {
    const report = await run(dir);
    console.log(format(report));
    return found(report);
  };
}

/**
 * Run a sweep script's side that `args` asks for, removing its scratch
 * directory afterwards.
 *
 * @returns the exit status: 1 when a stage found problems (a child
 *   always exits 0 once it printed its report: the parent judges it)
 * @throws {Error} on an unknown `--only` stage
 */
export async function runSweepScript(
  args: SweepArgs,
  script: SweepScript,
): Promise<number> {
  if (args.has("json")) {
    const dir = scratchDir(script.prefix, args.get("dir"));
    try {
      console.log(JSON.stringify(script.child(dir)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return 0;
  }
  const only = args.get("only");
  const names = Object.keys(script.stages);
  if (only !== undefined && !names.includes(only)) {
    throw new Error(`Unknown stage: --only ${only} (${names.join("|")})`);
  }
  const dir = scratchDir(script.prefix);
  let failed = false;
  try {
    for (const name of names) {
      if (only === undefined || only === name) {
        failed = (await script.stages[name](dir)) || failed;
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}
