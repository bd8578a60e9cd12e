// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Finding the native shim: `ASYNCPMEM_LIB` (a full path), else, in a
 * development checkout, its `c/build/` (built on first use, rebuilt when a
 * source is newer), else a per-user cache (`$XDG_CACHE_HOME/asyncpmem`,
 * by default `~/.cache/asyncpmem`): an installed package (npm, Bun, Deno's
 * npm cache) is never written into, and a remote import (JSR) has its
 * sources fetched there. Cache entries are named for the version and a
 * hash of the sources, so versions never share a library.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
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
  "blk_read.c",
  "checksum.c",
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
  "log_append.c",
  "map_file.c",
  "pmem2.c",
  "regions.c",
  "share.c",
  "source.c",
];

export function envPath(): string | undefined {
  try {
    return process.env[LIBRARY_ENV] || undefined;
  } catch {
    return undefined; // no env permission: fall through to the local build
  }
}

/**
 * The per-user cache of shims built for installed packages and remote
 * imports: `$XDG_CACHE_HOME/asyncpmem`, by default `~/.cache/asyncpmem`.
 */
export function cacheRoot(): string {
  return join(
    process.env.XDG_CACHE_HOME || join(homedir(), ".cache"),
    "asyncpmem",
  );
}

/** The per-user cache directory of one build of the shim. */
function cacheDir(key: string): string {
  return join(cacheRoot(), key);
}

/**
 * Make `dir` in the per-user cache, saying what to do where it cannot be
 * made (a read-only or missing home, XDG_CACHE_HOME naming a file): the
 * bare mkdir error named neither the shim nor a way out. Deno's
 * `NotCapable` passes through: it names the flag to add.
 */
function makeCacheDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (cause) {
    if ((cause as Error)?.name === "NotCapable") throw cause;
    throw new Error(
      `Cannot build the asyncpmem native shim in '${dir}': ` +
        `${(cause as Error)?.message}; set XDG_CACHE_HOME to a writable ` +
        `directory, or ${LIBRARY_ENV} to the path of a built shim`,
      { cause },
    );
  }
}

/** Build the sources of an installed package into the per-user cache. */
function buildInstalled(cDir: string, version: string): string {
  const hash = createHash("sha256");
  for (const f of REMOTE_SOURCES) hash.update(readFileSync(join(cDir, f)));
  const out = join(cacheDir(`${version}-${hash.digest("hex").slice(0, 12)}`));
  const lib = join(out, LIBRARY_NAME);
  if (existsSync(lib)) return lib;
  makeCacheDir(out);
  return buildShim(cDir, out);
}

/** Copy the shim's sources of a remote module into a cache and build. */
async function buildRemote(base: URL, version: string): Promise<string> {
  const cache = cacheDir(version);
  const lib = join(cache, "build", LIBRARY_NAME);
  if (existsSync(lib)) return lib;
  const cDir = join(cache, "c");
  makeCacheDir(cDir);
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
  if (!existsSync(join(cDir, "..", "tools", "setup.sh"))) {
    return buildInstalled(cDir, version); // an installed package
  }
  const lib = join(cDir, "build", LIBRARY_NAME);
  if (isStale(lib, cDir)) buildShim(cDir, join(cDir, "build"));
  return lib;
}
