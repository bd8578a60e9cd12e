// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What every command of the CLI shares: exit codes, the usage error, the
 * argument parser (`node:util` `parseArgs`, built into Deno and Bun) and
 * size arguments like `64M`.
 *
 * @module
 */
import { lstatSync } from "node:fs";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { nearestName } from "../ffi/validate.ts";

/**
 * Exit codes scripts can rely on.
 *
 * @example Usage
 * ```ts
 * import { ExitCode } from "./args.ts";
 * console.log(ExitCode.INCONSISTENT); // 1
 * ```
 */
export const ExitCode = {
  /** Done; a check found the pool consistent. */
  OK: 0,
  /** A check found the pool inconsistent. */
  INCONSISTENT: 1,
  /** Bad command line. */
  USAGE: 2,
  /** The file could not be opened, read or written. */
  IO: 3,
} as const;

/** A mistake on the command line (exit code 2, with the command's help). */
export class UsageError extends Error {
  /** @param message what is wrong */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * The flag that gives each option of the library's factories on the
 * command line (`create`'s and `convert`'s).
 */
const FLAGS: Readonly<Record<string, string>> = {
  poolSize: "--size",
  size: "--size",
  fileSize: "--size",
  blockSize: "--block-size",
  regionSlots: "--region-slots",
  logSize: "--log-size",
  layout: "--layout",
  mode: "--mode",
};

/**
 * A library message about an option, in the words of the command line:
 * "Cannot create pool: poolSize must be ..." names `--size`, which the
 * user typed (the library's option name is not on the command line).
 */
export function inFlags(message: string): string {
  return message.replace(
    /^(Cannot [^:]*: )(\w+)( must )/,
    (all, head: string, name: string, tail: string) =>
      Object.hasOwn(FLAGS, name) ? `${head}${FLAGS[name]}${tail}` : all,
  );
}

/**
 * Run a library call given values from the command line: a RangeError or
 * TypeError it throws is the library refusing those values before it
 * touches anything, a {@linkcode UsageError} naming the flags
 * ({@linkcode inFlags}). (Elsewhere such an error is the engine's or a
 * bug, "Invalid string length", and no usage error.)
 */
export function withArguments<T>(call: () => T): T {
  try {
    return call();
  } catch (e) {
    if (e instanceof RangeError || e instanceof TypeError) {
      throw new UsageError(inFlags(e.message));
    }
    throw e;
  }
}

/** Parsed options and positionals of one command. */
export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/**
 * Names the CLI's users give an option that spelling alone does not
 * lead to (libpmemblk's and libpmemlog's pool size is `--size` here).
 */
const OPTION_HINTS: Readonly<Record<string, string>> = {
  "pool-size": "size",
  poolsize: "size",
};

/**
 * Parse a command's arguments strictly: an unknown option is a
 * {@linkcode UsageError} naming it and the option it likely stands for,
 * as the library's factories name an unknown option key.
 */
export function parse(
  argv: string[],
  options: NonNullable<ParseArgsConfig["options"]>,
): Parsed {
  try {
    // the unknown options first, in words of our own: parseArgs's told
    // how to pass a positional that starts with '-', not the option meant
    const names = Object.keys(options);
    const shorts = names.flatMap((n) => options[n].short ?? []);
    const { tokens } = parseArgs({
      args: argv,
      options,
      allowPositionals: true,
      strict: false,
      tokens: true,
    });
    for (const token of tokens) {
      if (token.kind !== "option") continue;
      const known = token.rawName.startsWith("--")
        ? names.includes(token.name)
        : shorts.includes(token.name) || names.includes(token.name);
      if (known) continue;
      const meant = nearestName(token.name, names, OPTION_HINTS);
      throw new UsageError(
        `unknown option '${token.rawName}'${
          meant === undefined ? "" : ` (did you mean '--${meant}'?)`
        }`,
      );
    }
    const r = parseArgs({
      args: joinDashValues(
        argv,
        names.filter((n) => options[n].type === "string"),
        names,
        shorts,
      ),
      options,
      allowPositionals: true,
      strict: true,
    });
    return {
      values: r.values as Record<string, string | boolean | undefined>,
      positionals: r.positionals,
    };
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const text = (e as Error).message;
    // parseArgs's "Option '--lba <value>' argument missing", or, before
    // another of our options, "Option '--lba' argument is ambiguous"
    const missing =
      /'(?:-\w, )?(--[\w-]+)(?: <value>' argument missing|' argument is ambiguous)/
        .exec(text);
    throw new UsageError(missing ? `${missing[1]} needs a value` : text);
  }
}

/**
 * `argv` with `--name VALUE` joined into `--name=VALUE`, for a `name` of
 * `valued` (options that take a value), where VALUE starts with '-' but
 * is none of `names`/`shorts` (a negative number, most often): parseArgs
 * calls such a value ambiguous and advises the '=' form, for a value the
 * option's own check then refuses in its own words.
 */
function joinDashValues(
  argv: string[],
  valued: string[],
  names: string[],
  shorts: string[],
): string[] {
  const isOption = (arg: string) =>
    arg.startsWith("--")
      ? names.includes(arg.slice(2).split("=")[0])
      : arg.length === 2 && shorts.includes(arg[1]);
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = argv[i + 1];
    if (arg === "--") {
      out.push(...argv.slice(i));
      break;
    }
    if (
      arg.startsWith("--") && valued.includes(arg.slice(2)) &&
      next?.startsWith("-") &&
      next !== "--" && !isOption(next)
    ) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

const UNITS: Record<string, number> = {
  "": 1,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
};

/**
 * A byte count: digits with an optional binary unit (`K`, `M`, `G`, `T`,
 * optionally followed by `iB` or `B`).
 *
 * @throws {UsageError} for anything else
 */
export function parseSize(
  text: string | boolean | undefined,
  name: string,
): number {
  if (typeof text !== "string") throw new UsageError(`--${name} needs a size`);
  const m = /^(\d+)\s*([kmgt]?)(i?b)?$/i.exec(text.trim());
  if (m === null) {
    throw new UsageError(
      `--${name}: '${text}' is not a size (like 4096, 64M or 1GiB)`,
    );
  }
  const n = Number(m[1]) * UNITS[m[2].toLowerCase()];
  if (!Number.isSafeInteger(n)) throw new UsageError(`--${name}: too large`);
  return n;
}

/**
 * A non-negative integer argument. Callers pass an optional one only when
 * given, so one that is absent is a required one left out: named as
 * missing, not as a wrong value.
 */
export function parseCount(
  text: string | boolean | undefined,
  name: string,
): number {
  if (text === undefined) {
    throw new UsageError(`--${name} is missing (a non-negative integer)`);
  }
  if (typeof text !== "string" || !/^\d+$/.test(text)) {
    throw new UsageError(`--${name} needs a non-negative integer`);
  }
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new UsageError(`--${name}: too large`);
  return n;
}

/**
 * An option that may be left out: `fallback` when it is absent, else its
 * value read by `parse` ({@linkcode parseSize} or {@linkcode parseCount},
 * which name the option in their errors).
 */
export function optionalValue<F>(
  p: Parsed,
  name: string,
  parse: (text: string | boolean | undefined, name: string) => number,
  fallback: F,
): number | F {
  const text = p.values[name];
  return text === undefined ? fallback : parse(text, name);
}

/**
 * `--mode`: octal permission bits (like 644 or 0640), 0o644 when absent.
 * Only the permission bits: setuid, setgid and sticky (like 4755) are
 * refused, as no pool file wants them.
 */
export function parseMode(text: string | boolean | undefined): number {
  if (text === undefined) return 0o644;
  const mode = typeof text === "string" && /^0?[0-7]{1,3}$/.test(text)
    ? parseInt(text, 8)
    : NaN;
  if (Number.isNaN(mode)) {
    throw new UsageError(
      "--mode must be octal permission bits from 0 to 777, like 644",
    );
  }
  return mode;
}

/** Exactly `n` positional arguments, named for the message. */
export function positionals(p: Parsed, ...names: string[]): string[] {
  if (p.positionals.length !== names.length) {
    const expected = names.length
      ? names.map((n) => n.toUpperCase()).join(" ")
      : "no arguments";
    throw new UsageError(
      `expected ${expected}, got ${
        p.positionals.length
          ? p.positionals.map((a) => JSON.stringify(a)).join(" ")
          : "nothing"
      }`,
    );
  }
  return p.positionals;
}

/**
 * Refuse the options given that do not apply to what the command works
 * on (`--region` for a block pool): a usage error naming them, rather
 * than an option silently ignored.
 *
 * @param p the parsed arguments
 * @param what what they would apply to, for the message ("a blk pool")
 * @param allowed the options that apply (`--json` and `--help` always do)
 */
export function onlyOptions(p: Parsed, what: string, allowed: string[]): void {
  const extra = Object.keys(p.values).filter((k) =>
    p.values[k] !== undefined && k !== "json" && k !== "help" &&
    !allowed.includes(k)
  );
  if (extra.length > 0) {
    throw new UsageError(
      `${extra.map((k) => `--${k}`).join(", ")} ${
        extra.length === 1 ? "does" : "do"
      } not apply to ${what}`,
    );
  }
}

/**
 * Whether `path` is taken: a file, a directory, or a symbolic link, even
 * one to nothing. (`existsSync` follows a link: a dangling one reads as
 * free, where the exclusive create of a new pool refuses it.)
 */
export function taken(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false; // absent, or not reachable: the create says why
  }
}

/**
 * Refuse a path that is {@linkcode taken}: a pool is only ever made as a
 * new file.
 *
 * @throws {UsageError} naming the path
 */
export function refuseTaken(path: string): void {
  if (taken(path)) throw new UsageError(`'${path}' exists already`);
}
