// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Building the native shim with the system C compiler. Used by the `build`
 * task and, when the library is missing or stale, on first import.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";

/** The file name of the built shim. */
export const LIBRARY_NAME = "libasyncpmem.so";

/** The C sources of the shim, relative to `c/`. */
export function shimSources(cDir: string): string[] {
  return readdirSync(cDir).filter((f) => /\.(c|h)$/.test(f)).sort();
}

/** Whether `lib` is missing or older than any source in `cDir`. */
export function isStale(lib: string, cDir: string): boolean {
  if (!existsSync(lib)) return true;
  const built = statSync(lib).mtimeMs;
  return shimSources(cDir).some((f) => statSync(join(cDir, f)).mtimeMs > built);
}

const INSTALL_HINT =
  "install a C compiler and libpmem2's headers, e.g. on Debian/Ubuntu: " +
  "apt-get install -y gcc libpmem2-dev";

/**
 * Compile `cDir/*.c` into `outDir/libasyncpmem.so` (atomically, so
 * concurrent builders never load a half-written file).
 *
 * @returns the path of the library
 * @throws {Error} naming what to install when the compiler or headers fail
 */
export function buildShim(cDir: string, outDir: string): string {
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, LIBRARY_NAME);
  const tmp = `${out}.${process.pid}.tmp`;
  const cc = process.env.CC || "gcc";
  const sources = shimSources(cDir).filter((f) => f.endsWith(".c")).map((f) =>
    join(cDir, f)
  );
  const args = [
    "-O2",
    "-g",
    "-std=gnu11",
    "-fPIC",
    "-shared",
    "-pthread",
    "-Wall",
    "-Wextra",
    "-fvisibility=hidden",
    "-o",
    tmp,
    ...sources,
    "-lpmem2",
    // dlopen of libaccel-config (in libc itself since glibc 2.34)
    "-ldl",
  ];
  const r = spawnSync(cc, args, { encoding: "utf8" });
  if (r.error) {
    throw new Error(
      `Cannot build the asyncpmem native shim: '${cc}' could not run ` +
        `(${r.error.message}); ${INSTALL_HINT}`,
      { cause: r.error },
    );
  }
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    const stderr = r.stderr ?? "";
    // without libpmem2-dev gcc fails the same way on every source file
    // (~125 lines): its first such line says enough
    const missing = stderr.split("\n").find((l) =>
      /libpmem2\.h|lpmem2/.test(l)
    );
    throw new Error(
      `Cannot build the asyncpmem native shim (${cc} exited ${r.status})` +
        (missing !== undefined
          ? `: libpmem2 is missing; ${INSTALL_HINT}\n${missing.trim()}`
          : `\n${stderr}`),
    );
  }
  renameSync(tmp, out);
  return out;
}
