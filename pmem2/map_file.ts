// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode mapFile}: a file opened (created or extended when asked) and
 * mapped in one call, the file removed again when a mapping it created
 * fails.
 *
 * @module
 */
import { unlinkSync } from "node:fs";
import { checkFlag, checkPath, readOptions } from "../ffi/validate.ts";
import { MAP_CONFIG_KEYS, type MapConfig, toNativeConfig } from "./config.ts";
import { Mapping } from "./mapping.ts";
import { Source, sourceCreated, type SourceOpenOptions } from "./source.ts";

/**
 * Options of {@linkcode mapFile}. An option not listed here is refused, with a
 * `TypeError` naming it and the option it likely stands for.
 */
export interface MapFileOptions extends MapConfig {
  /**
   * Create the file if needed and make it at least this large.
   * @default 0 (map the existing file)
   */
  size?: number;
  /** See {@linkcode SourceOpenOptions.sparse}. @default false */
  sparse?: boolean;
  /** See {@linkcode SourceOpenOptions.mode}. @default 0o644 */
  mode?: number;
}

/**
 * Map a file, creating or extending it when `size` is given.
 *
 * @example Usage
 * ```ts
 * import { mapFile } from "@asyncpmem/asyncpmem";
 * import assert from "node:assert/strict";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "data");
 * using map = mapFile(path, { size: 64 << 20 });
 * assert.equal(map.size, 64 << 20);
 * assert.equal(map.granularity, "page"); // a tmpfs or disk file
 * ```
 *
 * @param path the file
 * @param options size, granularity, range, sharing, protection
 * @throws {TypeError} for a path that is empty or holds a NUL, an option
 *   of the wrong type, or a key that is none of {@linkcode MapFileOptions}'s
 * @throws {PmemError} as {@linkcode Source.open} and {@linkcode Mapping.map}
 *   do; a file this call created is removed again when the mapping fails
 * @throws {RangeError} as {@linkcode Mapping.map} does, for an `offset` at
 *   the end of the file
 */
export function mapFile(path: string, options: MapFileOptions = {}): Mapping {
  checkPath(path, "map", "file");
  // the mapping's options are checked before the file is opened: a
  // `size` creates it, and a bad granularity or offset left it behind;
  // each is read once (see readMapConfig), so the file is opened for the
  // protection the mapping gets
  const { size, sparse, mode, ...config } = readOptions(options, [
    ...MAP_CONFIG_KEYS,
    "size",
    "sparse",
    "mode",
  ], "map file");
  toNativeConfig(config);
  checkFlag(sparse, "sparse", "map file");
  const open: SourceOpenOptions = {
    size,
    sparse,
    mode,
    readOnly: config.protection === "read" || config.protection === "none",
  };
  using source = Source.open(path, open);
  try {
    return Mapping.map(source, config);
  } catch (e) {
    // libpmem2 refused the mapping (an offset that is no page multiple, a
    // range past the end, a granularity the storage lacks): a file this
    // call made is not left behind
    if (sourceCreated(source)) removeQuietly(path);
    throw e;
  }
}

/**
 * Remove a file, ignoring failure: the caller's own error is the one to
 * report (and Deno without `--allow-write` may refuse the unlink).
 */
function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // left behind, as before
  }
}
