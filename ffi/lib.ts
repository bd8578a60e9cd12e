// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The loaded shim: the runtime's backend, the bound symbols, and the one
 * helper that turns a negative return code into a {@linkcode PmemError}.
 * Internal to the library; nothing here takes raw addresses from users.
 *
 * @module
 */
import type { Backend } from "./_backend.ts";
import { dirname, sep } from "node:path";
import { cacheRoot, envPath, locateLibrary } from "./_loader.ts";
import { RUNTIME } from "./_runtime.ts";
import type { NativeSymbols, Ptr } from "./_symbols.ts";
import {
  NotSupportedError,
  OutOfSpaceError,
  PmemError,
} from "../errors/mod.ts";
import { ENOSPC, ENOTSUP } from "../errors/errno.ts";
import meta from "../deno.json" with { type: "json" };

export type { Ptr } from "./_symbols.ts";
export { IN_WORKER, RUNTIME } from "./_runtime.ts";
export { isNativeBuffer } from "./_native_memory.ts";

const ABI_VERSION = 10;

async function loadBackend(): Promise<Backend> {
  return RUNTIME === "deno"
    ? (await import("./_deno.ts")).backend
    : (await import("./_bun.ts")).backend;
}

/** The runtime backend in use. */
export const backend: Backend = await loadBackend();

async function openShim(): Promise<NativeSymbols> {
  const path = await locateLibrary(meta.version);
  let symbols: NativeSymbols;
  try {
    symbols = backend.open(path);
  } catch (cause) {
    if ((cause as Error)?.name === "NotCapable") throw cause;
    const message = String((cause as Error)?.message);
    throw new Error(
      `Cannot load the asyncpmem native shim '${path}': ${message}. ${
        loadHint(message, path)
      }`,
      { cause },
    );
  }
  const abi = symbols.ap_abi_version();
  if (abi !== ABI_VERSION) {
    throw new Error(
      `The asyncpmem native shim '${path}' has ABI ${abi}, expected ` +
        `${ABI_VERSION}: ${rebuildHint(path)}`,
    );
  }
  return symbols;
}

/**
 * What to do about a shim that would not load. The file exists (the
 * loader checked): a library it needs is missing (the shim links only
 * libpmem2), or the file is no shim of this version, which installing
 * libpmem2 would not change.
 */
function loadHint(message: string, path: string): string {
  if (/cannot open shared object file/i.test(message)) {
    return "libpmem2 must be installed (apt-get install -y libpmem2-dev)";
  }
  return path === envPath()
    ? `ASYNCPMEM_LIB must name the shim 'deno task build' makes (c/build/libasyncpmem.so), or be unset`
    : rebuildHint(path);
}

/**
 * How to rebuild the shim at `path`: a checkout's with its build task; an
 * installed package's or a remote import's, which the library built into
 * the per-user cache, by removing it there (the next use builds it again:
 * the user of a package has no build task).
 */
function rebuildHint(path: string): string {
  return path.startsWith(cacheRoot() + sep)
    ? `remove '${dirname(path)}' (it is built again on next use)`
    : "rebuild it with 'deno task build'";
}

/** The shim's functions. */
export const native: NativeSymbols = await openShim();

const MESSAGE = new Uint8Array(512);
const DECODER = new TextDecoder();
const PMEM2_E_NOSUPP = -100001;

/** The calling thread's last shim message. */
export function lastMessage(): string {
  const n = native.ap_errormsg(MESSAGE, MESSAGE.byteLength);
  return DECODER.decode(
    MESSAGE.subarray(0, Math.min(n, MESSAGE.byteLength - 1)),
  );
}

/** A {@linkcode PmemError} for a failed native call. */
export function nativeError(rc: number, op: string): PmemError {
  const message = lastMessage() || `failed with code ${rc}`;
  if (rc === -ENOSPC) return new OutOfSpaceError(op, message);
  const errno = native.ap_err_to_errno(rc);
  const Ctor = rc === PMEM2_E_NOSUPP || rc === -ENOTSUP
    ? NotSupportedError
    : PmemError;
  return new Ctor(op, rc, message, { errno });
}

/**
 * Throw for a negative native return code; pass other values through.
 *
 * @param rc the native return value
 * @param op the public operation name for the error
 */
export function check(rc: number, op: string): number {
  if (rc < 0) throw nativeError(rc, op);
  return rc;
}

/** A NUL-terminated UTF-8 copy of a string, for `const char *`. */
export function cString(s: string): Uint8Array {
  // a lone surrogate would be encoded as U+FFFD: a path naming another
  // file than the one given (mapFile("a\uD800") made "a\uFFFD")
  if (!s.isWellFormed()) {
    throw new TypeError(
      "Cannot pass string: it contains a lone surrogate (not valid UTF-16)",
    );
  }
  const bytes = new TextEncoder().encode(s);
  if (bytes.includes(0)) {
    throw new TypeError("Cannot pass string: it contains a NUL character");
  }
  const out = new Uint8Array(bytes.byteLength + 1);
  out.set(bytes);
  return out;
}

/**
 * The cells {@linkcode newCell} made: a constructor that takes a cell takes
 * only one of these (see {@linkcode isCell}).
 */
const cells = new WeakSet<BigUint64Array>();

/** A one-pointer out-parameter cell (C `T **`). */
export function newCell(): BigUint64Array {
  const cell = new BigUint64Array(1);
  cells.add(cell);
  return cell;
}

/**
 * Whether `value` is a cell {@linkcode newCell} made. The constructors of
 * `Source` and `Mapping` are private to TypeScript only: a BigUint64Array
 * of a caller's, taken as one, held an address the first native call
 * dereferenced (a segfault).
 */
export function isCell(value: unknown): value is BigUint64Array {
  return cells.has(value as BigUint64Array);
}

/** The pointer a constructor stored in `cell`. */
export function fromCell(cell: BigUint64Array): Ptr {
  const p = backend.fromCell(cell);
  if (p === null) throw new Error("native constructor returned NULL");
  return p;
}
