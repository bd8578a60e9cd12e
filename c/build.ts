// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Build the native shim into `c/build/`: `deno task build` or
 * `bun run build`.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { buildShim } from "../ffi/_build.ts";

const cDir = fileURLToPath(new URL(".", import.meta.url));
console.log(`built ${buildShim(cDir, `${cDir}build`)}`);
