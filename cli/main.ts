#!/usr/bin/env bun
// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * `asyncpmem`: a command line for asyncpmem's pool formats, like
 * `pmempool` for PMDK's: create, inspect, check, dump and benchmark.
 *
 * ```sh
 * deno run -A jsr:@asyncpmem/asyncpmem/cli info pool.blk
 * bunx asyncpmem check --json pool.blk
 * ```
 *
 * Exit codes: 0 ok, 1 inconsistent, 2 usage, 3 I/O.
 *
 * @module
 */
import { rmSync } from "node:fs";
import process from "node:process";
import { PmemError } from "../errors/mod.ts";
import { nearestName } from "../ffi/validate.ts";
import meta from "../deno.json" with { type: "json" };
import {
  ExitCode,
  parse,
  type Parsed,
  positionals,
  taken,
  UsageError,
} from "./args.ts";
import type { PoolKind } from "./detect.ts";
import { err, out, printJson } from "./output.ts";
import { EEXIST, EINVAL } from "../errors/errno.ts";

/**
 * What the CLI says of a failure of command `name`, after "asyncpmem
 * NAME: ". A `PmemError`'s message begins with its operation ("open: ",
 * "inspect: "), a step of the library that the command's name already
 * stands for: kept, it repeated itself ("info: inspect: cannot inspect
 * '...'", "create: create: ...") or named a step the user never asked
 * for ("check: open: cannot lock ..."). Every message words failures
 * through here.
 */
function failureText(e: unknown, name: string): string {
  const text = (e as Error)?.message ?? String(e);
  if (e instanceof PmemError && text.startsWith(`${e.op}: `)) {
    return text.slice(e.op.length + 2);
  }
  return text.startsWith(`${name}: `) ? text.slice(name.length + 2) : text;
}

/** One command: its options, its help, and what it does. */
interface Command {
  summary: string;
  usage: string;
  options: NonNullable<Parameters<typeof parse>[1]>;
  help: string;
  /** Runs the command; returns the exit code. */
  run(p: Parsed): number | Promise<number>;
}

const JSON_OPTION = { json: { type: "boolean" } } as const;
const HELP_OPTION = { help: { type: "boolean", short: "h" } } as const;

// Each kind's commands load the store they use when a command needs it,
// not at start (and the format detection, with the native library, when
// a command reads a file): `--help`, a usage error or a command on one
// kind of pool then compiles a part of the library, not all of it (Deno
// took 230 ms for `--help` with every store loaded, 110 ms of it the
// runtime's own).
const detect = () => import("./detect.ts");
const blk = () => import("./blk.ts");
const obj = () => import("./obj.ts");
const stream = () => import("./stream.ts");

/** The pool format of a file, or a usage error naming what it holds. */
async function kindOf(
  path: string,
  supported: readonly PoolKind[],
): Promise<PoolKind> {
  const kind = (await detect()).detectKind(path);
  if (kind === "poolset") {
    throw new UsageError(
      `'${path}' is a PMDK pool set file: pool sets are not supported ` +
        "(pmempool handles them)",
    );
  }
  if (kind === "pmemobj") {
    // not the `obj` the commands list: asyncpmem's object pools have a
    // format of their own, and libpmemobj's is only recognized
    throw new UsageError(
      `'${path}' is a pmemobj pool, which this command does not handle ` +
        "(libpmemobj's format: asyncpmem's obj pools are a format of their " +
        "own; pmempool reads this one)",
    );
  }
  if (kind === null || !supported.includes(kind)) {
    throw new UsageError(
      `'${path}' is ${
        kind === null
          ? "not a pool this tool knows"
          : `${/^[aeiou]/.test(kind) ? "an" : "a"} ${kind} pool, ` +
            "which this command does not handle"
      } (it handles: ${supported.join(", ")})`,
    );
  }
  return kind;
}

const COMMANDS: Record<string, Command> = {
  create: {
    summary: "create a pool file",
    usage: "asyncpmem create KIND FILE --size SIZE [options] [--json]",
    options: {
      ...JSON_OPTION,
      "block-size": { type: "string" },
      size: { type: "string" },
      mode: { type: "string" },
      "region-slots": { type: "string" },
      layout: { type: "string" },
      "log-size": { type: "string" },
    },
    help: `Create a new pool file of a KIND:
  blk     a block pool (libpmemblk's format): --block-size bytes per block,
          --size of the file (at least 16 MiB + 8 KiB; like 64M, 1G),
          [--mode 644]; large files are allocated in steps, with a
          progress bar on a terminal
  stream  a log stream: --size, [--block-size] (region unit, 4096),
          [--region-slots] (64), [--mode 644]
  log     a libpmemlog log: --size (at least 2 MiB), [--mode 644]
  obj     an object pool: --size (8 MiB to 4 GiB), --layout NAME,
          [--log-size] (1/16 of the pool, 1 to 64 MiB), [--mode 644]`,
    async run(p) {
      const [kind, path] = positionals(p, "kind", "file");
      if (kind === "blk") (await blk()).createBlk(path, p);
      else if (kind === "stream") (await stream()).createStream(path, p);
      else if (kind === "log") (await stream()).createLog(path, p);
      else if (kind === "obj") (await obj()).createObj(path, p);
      else {
        throw new UsageError(
          `cannot create a '${kind}' pool (kinds: blk, stream, log, obj)`,
        );
      }
      return ExitCode.OK;
    },
  },
  info: {
    summary: "describe a pool: geometry, arenas or regions, fill",
    usage: "asyncpmem info FILE [--json]",
    options: { ...JSON_OPTION },
    help: `Describe a pool without changing it: its format and geometry, and
  blk     its arenas and their lanes, how its blocks are filled
  stream  its watermarks and regions
  log     its capacity and use
  obj     its layout, log, heap occupancy, root and maps
and what recovery would do at the next open.`,
    async run(p) {
      const [path] = positionals(p, "file");
      const kind = await kindOf(path, ["blk", "stream", "log", "obj"]);
      if (kind === "blk") (await blk()).infoBlk(path, p);
      else if (kind === "stream") (await stream()).infoStream(path, p);
      else if (kind === "obj") (await obj()).infoObj(path, p);
      else (await stream()).infoLog(path, p);
      return ExitCode.OK;
    },
  },
  check: {
    summary: "check a pool's consistency (exit 1 if inconsistent)",
    usage: "asyncpmem check FILE [--repair] [--json]",
    options: { ...JSON_OPTION, repair: { type: "boolean" } },
    help:
      `Check a pool as pmempool check does: headers and info blocks, every map
entry, every flog entry, every data block referenced once. Without --repair
the pool is opened read-only and what recovery would do is reported (an info
block it would restore from its backup makes the pool inconsistent); with
--repair recovery runs and its repairs are persisted (finishing writes
interrupted after their commit point, restoring an info block from its
backup): the repairs that are always safe. A log stream is checked by
inspecting it (header, region table, and a recovery run on a private copy),
and --repair runs its recovery when it has work to do; a libpmemlog log
by its header and offsets. An object pool: every object header, the
pool's structures reachable and leak-free; --repair writes recovery's
replay of committed transactions. Exit code 1 when inconsistent,
also for a file whose pool signature is damaged or missing.`,
    async run(p) {
      const [path] = positionals(p, "file");
      if ((await detect()).detectKind(path) === null) {
        // as pmempool check: a pool whose signature is damaged (or a file
        // that is no pool) is not consistent
        const problem = "no pool signature this tool knows: the pool " +
          "header is damaged, or the file is not a pool";
        if (p.values.json) {
          printJson({
            kind: null,
            path,
            consistent: false,
            problems: [problem],
          });
        }
        err(`asyncpmem check: '${path}': ${problem}\n`);
        return ExitCode.INCONSISTENT;
      }
      const kind = await kindOf(path, ["blk", "stream", "log", "obj"]);
      const check = kind === "blk"
        ? (await blk()).checkBlk
        : kind === "stream"
        ? (await stream()).checkStream
        : kind === "obj"
        ? (await obj()).checkObj
        : (await stream()).checkLog;
      let ok: boolean;
      try {
        ok = check(path, p);
      } catch (e) {
        // too damaged to open: inconsistent, and a script asking for JSON
        // still gets a report (the message goes to stderr as well)
        if (p.values.json && e instanceof PmemError && e.code === -EINVAL) {
          printJson({
            kind,
            path,
            consistent: false,
            problems: [failureText(e, "check")],
          });
        }
        throw e;
      }
      return ok ? ExitCode.OK : ExitCode.INCONSISTENT;
    },
  },
  dump: {
    summary: "print blocks, a region's entries or a log's data, in hex or raw",
    usage:
      "asyncpmem dump FILE [--lba N | --region SLOT [--from TS]] [--count K] [--raw | --json]",
    options: {
      ...JSON_OPTION,
      lba: { type: "string" },
      region: { type: "string" },
      from: { type: "string" },
      count: { type: "string" },
      raw: { type: "boolean" },
    },
    help: `Print data of a pool as a hex dump with addresses, the bytes
themselves with --raw (for a pipe), or with --json one JSON document whose
data fields are base64:
  blk     COUNT blocks (default 1) from block --lba
  stream  the entries of the region in --region SLOT, from timestamp
          --from, COUNT at most (as its recovery would leave them: the
          file is read, never written)
  log     all the data of a libpmemlog log`,
    async run(p) {
      const [path] = positionals(p, "file");
      if (p.values.raw && p.values.json) {
        throw new UsageError("--raw and --json exclude each other");
      }
      const kind = await kindOf(path, ["blk", "stream", "log"]);
      if (kind === "blk") (await blk()).dumpBlk(path, p);
      else if (kind === "stream") (await stream()).dumpStream(path, p);
      else (await stream()).dumpLog(path, p);
      return ExitCode.OK;
    },
  },
  zero: {
    summary: "make blocks read as zeros",
    usage: "asyncpmem zero FILE --lba N [--count K|all] [--json]",
    options: {
      ...JSON_OPTION,
      lba: { type: "string" },
      count: { type: "string" },
    },
    help:
      `Make COUNT blocks (default 1; 'all' for every block from LBA) of a block
pool read as zeros (libpmemblk's set_zero: the map changes, the data stays),
with a progress bar on a terminal.`,
    async run(p) {
      const [path] = positionals(p, "file");
      await kindOf(path, ["blk"]);
      (await blk()).zeroBlk(path, p);
      return ExitCode.OK;
    },
  },
  convert: {
    summary: "convert a libpmemlog log into a log stream, or back",
    usage:
      "asyncpmem convert SRC DST [--chunk SIZE | --region SLOT] [--size SIZE] [--json]",
    options: {
      ...JSON_OPTION,
      chunk: { type: "string" },
      region: { type: "string" },
      size: { type: "string" },
    },
    help: `Convert between the log formats (DST must not exist):
  a libpmemlog log SRC becomes a log stream DST with one region, its data
    as entries of --chunk bytes (4096): the way off the discontinued library
  the region --region SLOT of a log stream SRC becomes a libpmemlog log DST
    holding its entries' data in order (opening the stream SRC finishes its
    recovery)
--size sets the new file's size (by default what the data needs, at least
the format's minimum).`,
    async run(p) {
      const [src, dst] = positionals(p, "src", "dst");
      const existed = taken(dst);
      const { convert } = await stream();
      try {
        convert(src, dst, await kindOf(src, ["log", "stream"]), p);
      } catch (e) {
        // no half-made file left behind (a rerun would find it in the way);
        // but a create refused with EEXIST made nothing: DST is another
        // process's file, made since the check that it was free
        const raced = e instanceof PmemError && e.code === -EEXIST;
        if (!existed && !raced) rmSync(dst, { force: true });
        throw e;
      }
      return ExitCode.OK;
    },
  },
  bench: {
    summary: "run the short benchmark suite beside its C baselines",
    usage: "asyncpmem bench [--full]",
    options: { full: { type: "boolean" } },
    help: `Run the benchmark suites on Deno and on Bun beside the native C
baselines (libpmem2, libpmemblk, libpmemlog, libpmemobj, memcpy) and print
each case as a ratio. The short suite by default; --full runs everything
(minutes). Needs gcc and the PMDK headers for the baselines, and a clone of
the repository (the suites do not ship in the package).`,
    async run(p) {
      positionals(p);
      return (await import("./bench.ts")).runBench(p.values.full === true);
    },
  },
};

/** "unknown command 'creat' (did you mean 'create'?)", as for options. */
function unknownCommand(name: string): string {
  const meant = nearestName(name, Object.keys(COMMANDS));
  return `unknown command '${name}'${
    meant === undefined ? "" : ` (did you mean '${meant}'?)`
  }`;
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    "usage: asyncpmem COMMAND [options]  (asyncpmem COMMAND --help for more)",
    "",
    ...Object.entries(COMMANDS).map(([k, c]) =>
      `  ${k.padEnd(width)}  ${c.summary}`
    ),
    "",
    "asyncpmem --version (or -V) prints the version.",
    "exit codes: 0 ok, 1 inconsistent, 2 usage, 3 I/O",
  ].join("\n");
}

/**
 * Run the CLI on `argv` (the arguments after the program); returns the
 * exit code.
 *
 * @example Usage
 * ```ts
 * import { main } from "@asyncpmem/asyncpmem/cli";
 * console.log(await main(["--help"])); // 0, after printing the usage
 * ```
 *
 * @throws {TypeError} when `argv` is no array of strings (a mistake on
 *   the command line is an exit code, 2, never an exception)
 */
export async function main(argv: string[]): Promise<number> {
  // a program's mistake, not a command line's: no usage error (a string
  // was taken apart into one-letter commands)
  if (!Array.isArray(argv) || !argv.every((a) => typeof a === "string")) {
    throw new TypeError(
      "Cannot run asyncpmem: argv must be an array of strings",
    );
  }
  const [name, ...rest] = argv;
  // as pmempool answers it
  if ((name === "--version" || name === "-V") && rest.length === 0) {
    out(`asyncpmem ${meta.version}\n`);
    return ExitCode.OK;
  }
  if (
    name === undefined || name === "--help" || name === "-h" || name === "help"
  ) {
    const asked = name === "help" ? rest[0] : undefined;
    const topic = asked === undefined ? undefined : COMMANDS[asked];
    if (asked !== undefined && (topic === undefined || rest.length > 1)) {
      err(
        `asyncpmem help: ${
          topic === undefined ? unknownCommand(asked) : "expected one COMMAND"
        }\n${usage()}\n`,
      );
      return ExitCode.USAGE;
    }
    if (name === undefined) {
      err(`${usage()}\n`); // no command: a usage error, told on stderr
      return ExitCode.USAGE;
    }
    out(`${topic ? `usage: ${topic.usage}\n\n${topic.help}` : usage()}\n`);
    return ExitCode.OK;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) {
    err(`asyncpmem: ${unknownCommand(name)}\n${usage()}\n`);
    return ExitCode.USAGE;
  }
  try {
    const p = parse(rest, { ...command.options, ...HELP_OPTION });
    if (p.values.help) {
      out(`usage: ${command.usage}\n\n${command.help}\n`);
      return ExitCode.OK;
    }
    return await command.run(p);
  } catch (e) {
    // only the CLI's own checks make usage errors (a value the library
    // refused is one: withArguments); a RangeError or TypeError from
    // anywhere else is the engine's or a bug, not the user's mistake
    if (e instanceof UsageError) {
      err(
        `asyncpmem ${name}: ${e.message}\nusage: ${command.usage}\n`,
      );
      return ExitCode.USAGE;
    }
    err(`asyncpmem ${name}: ${failureText(e, name)}\n`);
    if (process.env.ASYNCPMEM_CLI_DEBUG) console.error(e);
    // a pool too damaged to open is inconsistent, for a check
    if (name === "check" && e instanceof PmemError && e.code === -EINVAL) {
      return ExitCode.INCONSISTENT;
    }
    return ExitCode.IO;
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
