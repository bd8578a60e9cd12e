// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Finding the native shim: `ASYNCPMEM_LIB` (a full path), else the local
 * `c/build/` (built on first use, rebuilt when a source is newer), else a
 * per-user cache for remote imports (JSR), whose sources are copied next to
 * it and compiled there.
 *
 * @module
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { buildShim, isStale, LIBRARY_NAME } from "./_build.ts";

/** Environment variable naming a prebuilt shim to load. */
export const LIBRARY_ENV = "ASYNCPMEM_LIB";

/**
 * The shim's sources, fetched one by one for a remote import (a URL has
 * no directory listing); a test checks this is every file of `c/`.
 */
export const REMOTE_SOURCES: readonly string[] = [
  "accfg.h",
  "asyncpmem.h",
  "cpu.c",
  "dev_exec.c",
  "dev_ring.c",
  "dev_submit.c",
  "dev_wait.c",
  "device.c",
  "device.h",
  "dsa.h",
  "dsa_discover.c",
  "dsa_portal.c",
  "dsa_test.c",
  "dsa_watch.c",
  "error.c",
  "file.c",
  "internal.h",
  "pmem2.c",
  "regions.c",
];

function envPath(): string | undefined {
  try {
    return process.env[LIBRARY_ENV] || undefined;
  } catch {
    return undefined; // no env permission: fall through to the local build
  }
}

/** Copy the shim's sources of a remote module into a cache and build. */
async function buildRemote(base: URL, version: string): Promise<string> {
  const cache = join(
    process.env.XDG_CACHE_HOME || join(homedir(), ".cache"),
    "asyncpmem",
    version,
  );
  const lib = join(cache, "build", LIBRARY_NAME);
  if (existsSync(lib)) return lib;
  const cDir = join(cache, "c");
  mkdirSync(cDir, { recursive: true });
  for (const f of REMOTE_SOURCES) {
    const res = await fetch(new URL(f, base));
    if (!res.ok) {
      throw new Error(`Cannot fetch shim source '${f}': HTTP ${res.status}`);
    }
    writeFileSync(join(cDir, f), new Uint8Array(await res.arrayBuffer()));
  }
  return buildShim(cDir, join(cache, "build"));
}

/**
 * The path of a loadable shim, building it when needed.
 *
 * @param version the package version (names the remote cache)
 */
export async function locateLibrary(version: string): Promise<string> {
  const fromEnv = envPath();
  if (fromEnv !== undefined) {
    if (!existsSync(fromEnv)) {
      throw new Error(
        `Cannot load the asyncpmem native shim: ${LIBRARY_ENV}='${fromEnv}' ` +
          "does not exist",
      );
    }
    return fromEnv;
  }
  const cUrl = new URL("../c/", import.meta.url);
  if (cUrl.protocol !== "file:") return await buildRemote(cUrl, version);
  const cDir = fileURLToPath(cUrl);
  const lib = join(cDir, "build", LIBRARY_NAME);
  if (isStale(lib, cDir)) buildShim(cDir, join(cDir, "build"));
  return lib;
}
