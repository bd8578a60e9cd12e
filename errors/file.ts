// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The errors the stores raise about a file they open or create: one
 * that is not an intact file of theirs, and one a create would write
 * over. Internal (not exported by `errors/mod.ts`).
 *
 * @module
 */
import { closeSync, openSync, readSync } from "node:fs";
import { NotSupportedError, OutOfSpaceError, PmemError } from "./mod.ts";
import { EEXIST, EINVAL, ENOENT } from "./errno.ts";

/**
 * A `PmemError` -22 (EINVAL): `path` is not an intact file of the store
 * (`what` says which structure is damaged, or how).
 */
export function corrupt(op: string, path: string, what: string): PmemError {
  return new PmemError(op, -EINVAL, `cannot open '${path}': ${what}`);
}

/**
 * Whether the file at `path` is a PMDK pool set file: a text file that the
 * C libraries take for the pool it describes, told by its first 11 bytes
 * as libpmem's `util_is_poolset_file` tells it. Asked of a file too small
 * for a store, to say what it is rather than its size.
 */
export function isPoolSetFile(path: string): boolean {
  const head = new Uint8Array(11);
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    return readSync(fd, head, 0, head.length, 0) === head.length &&
      new TextDecoder().decode(head) === "PMEMPOOLSET";
  } catch {
    return false; // unreadable: the caller's error stands
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A `PmemError` -22 (EINVAL): `path` is a pool set file (see above). */
export function poolSetFile(op: string, path: string): PmemError {
  return corrupt(
    op,
    path,
    "a PMDK pool set file: pool sets are not supported (pmempool handles them)",
  );
}

/**
 * A `PmemError` -22 (EINVAL): the file at `path`, of `size` bytes, is too
 * small to be the store's, or is a pool set file, which says so.
 *
 * @param more words after the size, inside its parentheses
 */
export function tooSmall(
  op: string,
  path: string,
  size: number,
  more = "",
): PmemError {
  if (isPoolSetFile(path)) return poolSetFile(op, path);
  return corrupt(op, path, `the file is too small (${size} bytes${more})`);
}

/**
 * A `PmemError` -17 (EEXIST): a create of a pool in the existing file
 * `path` found its first `bytes` bytes not all zero (as the C libraries'
 * create does, it refuses to write over them).
 */
export function notEmpty(op: string, path: string, bytes: number): PmemError {
  return new PmemError(
    op,
    -EEXIST,
    `'${path}' is not empty: its first ${bytes} bytes are not zero`,
  );
}

/**
 * `e` raised again under a store operation's name (`op`), of the same
 * class: a create whose file cannot be made says "create", not its
 * source's "open", and callers branch on the class (a full file system
 * is an `OutOfSpaceError`). Anything but a `PmemError` is returned as is.
 */
export function asOp(e: unknown, op: string): unknown {
  if (!(e instanceof PmemError) || e.op === op) return e;
  const message = e.message.replace(/^[^:]*: /, "");
  if (e instanceof OutOfSpaceError) return new OutOfSpaceError(op, message);
  const Ctor = e instanceof NotSupportedError ? NotSupportedError : PmemError;
  return new Ctor(op, e.code, message, { errno: e.errno, cause: e });
}

/**
 * {@linkcode asOp} for a create without a size option (0, the default,
 * makes the store in an existing file, at its size): when the file does
 * not exist (ENOENT), the message also says that the option was left
 * out and what to pass. The system's "No such file or directory" alone
 * sent the caller looking at the path, not at the options.
 *
 * @param e what opening the file threw
 * @param op the create's name
 * @param option the size option ("poolSize")
 * @param noun what is created, for the message ("pool")
 * @param least the smallest size the option takes
 */
export function withoutSize(
  e: unknown,
  op: string,
  option: string,
  noun: string,
  least: number,
): unknown {
  const err = asOp(e, op);
  if (!(err instanceof PmemError) || err.code !== -ENOENT) return err;
  return new PmemError(
    op,
    err.code,
    `${
      err.message.replace(/^[^:]*: /, "")
    }; without ${option} the file must exist (the ${noun} takes its size): pass ${option} (at least ${least}) to create it`,
    { errno: err.errno, cause: e },
  );
}
