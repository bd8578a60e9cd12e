// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * How the CLI prints: JSON for scripts (`--json`), aligned text for
 * people, and hex dumps.
 *
 * @module
 */
import process from "node:process";

/** Print a value as JSON (one document, two-space indent). */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Print `key: value` lines with the keys aligned. */
export function printFields(fields: [string, unknown][], indent = ""): void {
  const width = Math.max(0, ...fields.map(([k]) => k.length));
  for (const [k, v] of fields) {
    process.stdout.write(`${indent}${`${k}:`.padEnd(width + 2)}${v}\n`);
  }
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
 * Converted 24 KiB at a time: `btoa` takes a string of byte values, and
 * one spread of a large array would overflow the call stack.
 *
 * @example
 * ```ts
 * import { base64 } from "./output.ts";
 * console.log(base64(new TextEncoder().encode("pmem"))); // "cG1lbQ=="
 * ```
 */
export function base64(data: Uint8Array): string {
  const parts: string[] = [];
  const step = 3 << 13; // a multiple of 3: no padding inside
  for (let at = 0; at < data.length; at += step) {
    const chunk = data.subarray(at, Math.min(data.length, at + step));
    parts.push(btoa(String.fromCharCode(...chunk)));
  }
  return parts.join("");
}
