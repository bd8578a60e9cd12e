// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * How the CLI prints: JSON for scripts (`--json`), aligned text for
 * people, and hex dumps. Everything goes out through {@linkcode out} and
 * {@linkcode err}: synchronous writes to the file descriptors, so output
 * to a pipe whose reader went away (`asyncpmem dump pool | head`) ends
 * the output quietly instead of crashing with an unhandled EPIPE, and
 * the command still exits with its own code.
 *
 * @module
 */
import { writeSync } from "node:fs";
import { Buffer } from "node:buffer";

const encoder = new TextEncoder();
/** Whether standard output's reader went away (EPIPE): output stops. */
let stdoutGone = false;
const pause = new Int32Array(new SharedArrayBuffer(4));

/** Whether `e` is the system error `code` (Deno's may carry only `name`). */
function isError(e: unknown, code: string, name: string): boolean {
  const x = e as { code?: unknown; name?: unknown } | null;
  return x?.code === code || x?.name === name;
}

/** A synchronous writer of Deno's standard streams. */
interface SyncWriter {
  writeSync(data: Uint8Array): number;
}
const deno = (globalThis as {
  Deno?: { stdout: SyncWriter; stderr: SyncWriter };
}).Deno;

/**
 * One write(2) to `fd` (1 or 2); the bytes written. On Deno through
 * `Deno.stdout`: its `node:fs` `writeSync` loops until all is written.
 */
function writeOnce(fd: 1 | 2, data: Uint8Array): number {
  if (deno) return (fd === 1 ? deno.stdout : deno.stderr).writeSync(data);
  return writeSync(fd, data, 0, data.length);
}

/**
 * Write all of `data` to `fd`, resuming after a short write, and on Bun
 * waiting out a non-blocking descriptor that is full (EAGAIN). Deno's
 * standard streams, when non-blocking, may report EAGAIN for bytes they
 * still write later (a retry would write them twice): there it is an
 * error.
 */
function writeAll(fd: 1 | 2, data: Uint8Array): void {
  let at = 0;
  while (at < data.length) {
    try {
      at += writeOnce(fd, at === 0 ? data : data.subarray(at));
    } catch (e) {
      if (!isError(e, "EAGAIN", "WouldBlock")) throw e;
      if (deno) {
        throw new Error(
          "it is non-blocking, which Deno does not write reliably (run " +
            "the command on Bun, or through a blocking pipe)",
          { cause: e },
        );
      }
      Atomics.wait(pause, 0, 0, 1); // the reader is slower: wait for room
    }
  }
}

/**
 * Write to standard output. After its reader went away (EPIPE) output is
 * dropped: returns false, so a long dump can stop early.
 *
 * @throws {Error} when standard output cannot be written for another
 *   reason (a full disk): an I/O error
 */
export function out(data: string | Uint8Array): boolean {
  if (stdoutGone) return false;
  try {
    writeAll(1, typeof data === "string" ? encoder.encode(data) : data);
    return true;
  } catch (e) {
    if (isError(e, "EPIPE", "BrokenPipe")) {
      stdoutGone = true;
      return false;
    }
    throw new Error(
      `cannot write to standard output: ${(e as Error)?.message ?? e}`,
    );
  }
}

/** Whether standard output's reader went away (see {@linkcode out}). */
export function outClosed(): boolean {
  return stdoutGone;
}

/** Write to standard error; a failure there is ignored (nowhere to say). */
export function err(text: string): void {
  try {
    writeAll(2, encoder.encode(text));
  } catch {
    // stderr closed or gone: the exit code still tells
  }
}

/** Print a value as JSON (one document, two-space indent). */
export function printJson(value: unknown): void {
  out(`${JSON.stringify(value, null, 2)}\n`);
}

/** How much of a document {@linkcode printJsonWith} holds back. */
const HELD = 64 << 20;

/**
 * Print one JSON document as {@linkcode printJson} does, whose last field
 * `key` is filled a piece at a time as `produce` emits them: the text of
 * a string (`"string"`: pieces of it, escaped here) or the elements of an
 * array (`"array"`). A dump need not fit one string (a 400 MiB log is
 * more base64 than the longest string V8 holds): the document is held
 * until whole up to 64 MiB -- when `produce` throws, nothing is printed --
 * and a larger one is written as it comes. `emit` returns false once
 * standard output's reader went away: `produce` may stop there.
 */
export function printJsonWith(
  value: Record<string, unknown>,
  key: string,
  kind: "string" | "array",
  produce: (emit: (piece: unknown) => boolean) => void,
): void {
  let held: string[] | null = [];
  let size = 0;
  const write = (text: string): boolean => {
    if (held === null) return out(text);
    held.push(text);
    size += text.length;
    if (size <= HELD) return true;
    const all = held;
    held = null; // too large to hold: written from now on
    return all.every((t) => out(t));
  };
  // the document with the field empty, cut before its empty value
  const whole = JSON.stringify(
    { ...value, [key]: kind === "string" ? "" : [] },
    null,
    2,
  );
  const empty = kind === "string" ? '""\n}' : "[]\n}";
  let first = true;
  write(whole.slice(0, -empty.length + 1)); // ends with its '"' or '['
  produce((piece) => {
    if (kind === "string") {
      return write(JSON.stringify(String(piece)).slice(1, -1));
    }
    const item = JSON.stringify(piece, null, 2).replaceAll("\n", "\n    ");
    const ok = write(`${first ? "" : ","}\n    ${item}`);
    first = false;
    return ok;
  });
  write(kind === "string" ? '"\n}\n' : first ? "]\n}\n" : "\n  ]\n}\n");
  if (held !== null) out((held as string[]).join(""));
}

/** Print `key: value` lines with the keys aligned. */
export function printFields(fields: [string, unknown][], indent = ""): void {
  const width = Math.max(0, ...fields.map(([k]) => k.length));
  out(
    fields.map(([k, v]) => `${indent}${`${k}:`.padEnd(width + 2)}${v}\n`)
      .join(""),
  );
}

/** A byte count for people: `64 MiB`, `4 KiB`, `100 B`. */
export function bytes(n: number): string {
  for (
    const [unit, size] of [
      ["TiB", 2 ** 40],
      ["GiB", 2 ** 30],
      ["MiB", 2 ** 20],
      ["KiB", 2 ** 10],
    ] as const
  ) {
    if (n >= size && n % (size / 1024) === 0) {
      const v = n / size;
      return `${Number.isInteger(v) ? v : v.toFixed(2)} ${unit}`;
    }
  }
  return `${n} B`;
}

/**
 * A hex dump of `data`, 16 bytes a line, each line led by its address
 * (`base` plus the offset) and followed by the printable characters.
 */
export function hexDump(data: Uint8Array, base = 0): string {
  const lines: string[] = [];
  for (let at = 0; at < data.length; at += 16) {
    const row = data.subarray(at, Math.min(data.length, at + 16));
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, "0"))
      .join(" ");
    const text = Array.from(
      row,
      (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : "."),
    ).join("");
    lines.push(
      `${(base + at).toString(16).padStart(8, "0")}  ${
        hex.padEnd(47)
      }  |${text}|`,
    );
  }
  return lines.join("\n");
}

/**
 * `data` in base64 (RFC 4648, with padding): how `--json` carries bytes.
 * The runtime's own encoder (`Uint8Array.prototype.toBase64`, else
 * `node:buffer`'s): `btoa` of a string of byte values cost about 35 ms a
 * MiB, 45 s for a 400 MiB log's dump.
 *
 * @example
 * ```ts
 * import { base64 } from "./output.ts";
 * console.log(base64(new TextEncoder().encode("pmem"))); // "cG1lbQ=="
 * ```
 */
export function base64(data: Uint8Array): string {
  const native = (data as { toBase64?: () => string }).toBase64;
  if (typeof native === "function") return native.call(data);
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    .toString("base64");
}

/** `n` and its noun, singular for one ("1 entry", "2 entries"). */
export function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
