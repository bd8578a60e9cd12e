// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A subprocess that runs many `asyncpmem` command lines one after the
 * other, each through the CLI's `main` as its own process would, and
 * fences each one's output on standard output and standard error with a
 * marker that carries its exit code (see `cliBatch` in `cli_run.ts`).
 * Every command starts where the one before it left the process, so a
 * command that leaves a pool open or a lock held shows up in the next.
 *
 * Usage: `cli_batch.ts FILE NONCE`, FILE holding a JSON array of argv
 * arrays.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { main } from "../cli/main.ts";
import { err, out } from "../cli/output.ts";

const [file, nonce] = process.argv.slice(2);
const commands = JSON.parse(readFileSync(file, "utf8")) as string[][];
for (let i = 0; i < commands.length; i++) {
  let status: number;
  try {
    status = await main(commands[i]);
  } catch (e) {
    // main throws only for a program's mistake: no exit code of the CLI's
    err(`uncaught: ${(e as Error)?.stack ?? e}\n`);
    status = 70;
  }
  const marker = `\u0001${nonce}:${i}:${status}\u0001`;
  out(marker);
  err(marker);
}
