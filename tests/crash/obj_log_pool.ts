// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A small object pool for the tests that crash its redo log at a chosen
 * store: its durable image, its root and where its next record goes.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { type ObjectHandle, ObjectPool } from "../../obj/mod.ts";
import { CHECKPOINT_AT, LOG_OFFSET, MIN_LOG_SIZE } from "../../obj/layout.ts";

/**
 * Create an 8 MiB pool at `path` with the smallest redo log and a 16 KiB
 * root, flushed and closed: its image (`base`), its root, and the file
 * offset of the record the next transaction seals (`rec`, its CRC word).
 */
export function logPool(
  path: string,
  layout: string,
): { base: Uint8Array; root: ObjectHandle; rec: number } {
  const pool = ObjectPool.create(path, {
    size: 8 << 20,
    layout,
    logSize: MIN_LOG_SIZE,
  });
  let root: ObjectHandle;
  try {
    root = pool.root(16384);
    pool.flush();
  } finally {
    pool.close();
  }
  const base = readFileSync(path);
  const head = Number(
    new DataView(base.buffer, base.byteOffset).getBigUint64(
      CHECKPOINT_AT,
      true,
    ),
  );
  return { base, root, rec: LOG_OFFSET + head % MIN_LOG_SIZE };
}
