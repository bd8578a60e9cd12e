// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The errors the stores raise about a file they open or create: one
 * that is not an intact file of theirs, and one a create would write
 * over. Internal (not exported by `errors/mod.ts`).
 *
 * @module
 */
import { NotSupportedError, OutOfSpaceError, PmemError } from "./mod.ts";

const EINVAL = 22;
const EEXIST = 17;
const ENOENT = 2;

/**
 * A `PmemError` -22 (EINVAL): `path` is not an intact file of the store
 * (`what` says which structure is damaged, or how).
 */
export function corrupt(op: string, path: string, what: string): PmemError {
  return new PmemError(op, -EINVAL, `cannot open '${path}': ${what}`, {
    errno: EINVAL,
  });
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
    { errno: EEXIST },
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
