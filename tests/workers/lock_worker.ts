// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The Worker of `tests/file_lock_test.ts`: it opens what a job names (a
 * libpmemlog log, with one append; an object pool; a bare FileLock; a log
 * with a ThreadMover and appends copying from a mapped file; a bare
 * FileShare) and never
 * closes it, so the test can terminate it while it holds the lock.
 *
 * @module
 */
import { ThreadMover } from "../../mover/mod.ts";
import { ObjectPool } from "../../obj/mod.ts";
import { mapFile } from "../../pmem2/mod.ts";
import { FileLock } from "../../pmem2/file_lock.ts";
import { FileShare } from "../../pmem2/file_share.ts";
import { PmemLog } from "../../stream/mod.ts";

/** A job: what to open, and where. */
export interface LockJob {
  kind: "log" | "obj" | "lock" | "mover" | "share";
  path: string;
  /**
   * For "mover": a file of `srcSize` bytes to map and append from; for
   * "share": the size of the FileShare to open.
   */
  src?: string;
  srcSize?: number;
  /** For "share": how many opens of it to make. @default 1 */
  count?: number;
}

/** The Worker's scope, as much of it as this file uses. */
const self_ = globalThis as unknown as {
  onmessage: ((e: MessageEvent<LockJob>) => void) | null;
  postMessage(message: unknown): void;
};

/** What the Worker opened; kept, never closed. */
const held: unknown[] = [];

self_.onmessage = ({ data: { kind, path, src, srcSize, count = 1 } }) => {
  try {
    if (kind === "share") {
      for (let i = 0; i < count; i++) held.push(FileShare.open(path, srcSize!));
    } else if (kind === "mover") {
      // the copies' source is a mapping, which outlives the Worker's
      // heap: only their timing is in question, never their memory
      const mover = new ThreadMover({ threads: 2, inlineThreshold: 0 });
      const from = mapFile(src!, { size: srcSize! });
      const log = PmemLog.open(path, { mover });
      const chunk = 1 << 20;
      for (let at = 0; at + chunk <= srcSize!; at += chunk) {
        const f = log.appendAsync(from.view(at, chunk));
        f.poll(); // started: its copy is queued on the engines
        held.push(f);
      }
      held.push(log, from, mover);
    } else if (kind === "log") {
      const log = PmemLog.open(path);
      log.append(new Uint8Array([7, 7]));
      held.push(log);
    } else if (kind === "obj") {
      held.push(ObjectPool.open(path, { layout: "app" }));
    } else {
      held.push(FileLock.acquire(path));
    }
    self_.postMessage({ ok: true });
  } catch (err) {
    self_.postMessage({ error: String((err as Error)?.stack ?? err) });
  }
};
self_.postMessage("ready");
