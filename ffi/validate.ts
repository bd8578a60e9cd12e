// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Argument checks run before any native call: `TypeError` for the wrong
 * kind of value, `RangeError` for a value out of range.
 *
 * @module
 */

/** Largest offset or length that crosses the FFI boundary exactly. */
export const MAX_SAFE_SIZE = Number.MAX_SAFE_INTEGER;

/** Assert `value` is a non-negative safe integer and return it. */
export function checkSize(value: unknown, name: string, op: string): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot ${op}: ${name} must be a number, got ${typeof value}`,
    );
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `Cannot ${op}: ${name} ${notSize(value)}, got ${value}`,
    );
  }
  // -0 is a safe integer, and Deno's FFI refuses it for u32 parameters
  return value + 0;
}

/**
 * What is wrong with a number that is no size: say so for an integer
 * above 2^53 - 1 (printed rounded, it would look like a valid one).
 */
export function notSize(value: number): string {
  return Number.isInteger(value) && value > 0
    ? "must be at most 2^53 - 1 (Number.MAX_SAFE_INTEGER)"
    : "must be a non-negative integer";
}

/** Assert `[offset, offset+length)` lies inside `[0, size)`. */
export function checkRange(
  offset: unknown,
  length: unknown,
  size: number,
  op: string,
): void {
  const o = checkSize(offset, "offset", op);
  const n = checkSize(length, "length", op);
  if (o > size || n > size - o) {
    throw new RangeError(
      `Cannot ${op}: range [${o}, ${o + n}) exceeds the size ${size}`,
    );
  }
}

const TYPED_ARRAY = Object.getPrototypeOf(Uint8Array.prototype);
const BYTE_LENGTH: (this: ArrayBufferView) => number = Object
  .getOwnPropertyDescriptor(TYPED_ARRAY, "byteLength")!.get!;
const BYTE_OFFSET: (this: ArrayBufferView) => number = Object
  .getOwnPropertyDescriptor(TYPED_ARRAY, "byteOffset")!.get!;
const BUFFER: (this: ArrayBufferView) => ArrayBufferLike = Object
  .getOwnPropertyDescriptor(TYPED_ARRAY, "buffer")!.get!;
// `.call` of the getters found at load: as fast as a property read on
// JavaScriptCore, where Reflect.apply costs ~25 ns more (a program that
// replaces Function.prototype.call has broken its runtime anyway)

/**
 * The byte length of a typed array as its engine knows it (0 when it is
 * detached or out of bounds). `bytes.byteLength` is an ordinary property
 * lookup: an own property, a subclass's getter or a changed prototype
 * answers it, and a length that reaches native code must not be taken
 * from them (a Uint8Array claiming 1 MiB had the shim copy 1 MiB out of,
 * or into, its 16 bytes). The getters are the ones found at load.
 *
 * @throws {TypeError} when `view` is not a typed array
 */
export function byteLengthOf(view: ArrayBufferView): number {
  return BYTE_LENGTH.call(view);
}

/**
 * The buffer of a typed array as its engine knows it, read through the
 * engine's own getter (which also moves a small array's bytes out of the
 * engine's heap, see `pin` in mover/_device_submit.ts); a subclass's or
 * an own `buffer` property answers `bytes.buffer` instead.
 *
 * @throws {TypeError} when `view` is not a typed array
 */
export function bufferOf(view: ArrayBufferView): ArrayBufferLike {
  return BUFFER.call(view);
}

/**
 * A fresh Uint8Array over exactly the bytes of the typed array `view`
 * (its buffer, offset and length as the engine knows them), for native
 * code or a mover to be handed instead of an array whose properties may
 * say otherwise. An empty or detached `view` gives a new empty array.
 *
 * @throws {TypeError} when `view` is not a typed array
 */
export function trueBytes(view: ArrayBufferView): Uint8Array {
  const n = byteLengthOf(view);
  if (n === 0) return new Uint8Array(0);
  return new Uint8Array(
    BUFFER.call(view),
    BYTE_OFFSET.call(view),
    n,
  );
}

/**
 * Whether the typed array `bytes` holds at least `length` bytes, as cheaply
 * as the hot read paths need: element `length - 1` is read, and a typed
 * array's elements answer from its storage alone (no property, getter or
 * prototype can stand in for them), so it is defined exactly when the
 * array has that many elements, each at least a byte. False for a
 * `length` that is not a positive integer.
 */
export function holds(
  bytes: { readonly [index: number]: unknown },
  length: number,
): boolean {
  return bytes[length - 1] !== undefined;
}

/**
 * Whether `value` is a Uint8Array the engine's typed-array getters take:
 * `instanceof`, and `ArrayBuffer.isView`, which reads an internal slot,
 * so an object that only inherits from `Uint8Array.prototype`, and a
 * Proxy of a Uint8Array (whose prototype it reports), are not. Such a
 * value passed `instanceof` alone and then met the engine's own
 * TypeError ("incompatible receiver", "Receiver should be a typed array
 * view") at the first `byteLengthOf`. The one test of every entry point
 * that takes bytes.
 */
export function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && ArrayBuffer.isView(value);
}

/**
 * Assert `value` is a Uint8Array (see {@linkcode isBytes}) and return it.
 */
export function checkBytes(
  value: unknown,
  name: string,
  op: string,
): Uint8Array {
  if (!isBytes(value)) {
    throw new TypeError(`Cannot ${op}: ${name} must be a Uint8Array`);
  }
  return value;
}

/**
 * Assert `value` is a byte value 0..255 and return it, -0 as 0: a u32
 * parameter of Deno's FFI refuses -0 (its own TypeError) where Bun's
 * takes 0, so hand the shim the returned value.
 */
export function checkByte(value: unknown, name: string, op: string): number {
  if (typeof value !== "number") {
    throw new TypeError(`Cannot ${op}: ${name} must be a number`);
  }
  if (!Number.isInteger(value) || value < 0 || value > 255) {
    throw new RangeError(
      `Cannot ${op}: ${name} must be an integer in [0, 255], got ${value}`,
    );
  }
  return value + 0;
}

/**
 * The `mode` option of a call that creates a file: permission bits, a
 * non-negative integer of at most 0o7777 (0o644 when left out), -0 as 0.
 * The shim takes a u32: Bun truncated 2^32 + 0o600 to 0o600, Deno's FFI
 * threw its own TypeError; bits above 0o7777 are no permission. Every
 * create checks it here, so the message names the call made (a block
 * pool's create said "Cannot open source" for it).
 *
 * @param what the call, for the message ("create pool")
 */
export function checkMode(value: unknown, what: string): number {
  const mode = checkSize(value ?? 0o644, "mode", what);
  if (mode > 0o7777) {
    throw new RangeError(
      `Cannot ${what}: mode must be at most 0o7777, got 0o${mode.toString(8)}`,
    );
  }
  return mode;
}

/**
 * A flag option: a boolean, or undefined (left out). Anything else is a
 * TypeError: a test of its truthiness took "no", "false" or 1 for true
 * (a file opened read-only, or made sparse, by a string).
 *
 * @param what the call, for the message ("open source")
 */
export function checkFlag(
  value: unknown,
  name: string,
  what: string,
): boolean | undefined {
  if (value !== undefined && typeof value !== "boolean") {
    throw new TypeError(`Cannot ${what}: ${name} must be a boolean`);
  }
  return value;
}

/**
 * Assert `path` is a non-empty string without a NUL byte or a lone
 * surrogate; the message names the call (`op` of a `noun`: "Cannot open
 * pool: path must be ..."). An empty path went to the system (ENOENT,
 * naming no path), and one with a NUL or a lone surrogate was refused by
 * the FFI layer in words that named no call.
 */
export function checkPath(path: unknown, op: string, noun: string): void {
  if (typeof path !== "string" || path.length === 0) {
    throw new TypeError(
      `Cannot ${op} ${noun}: path must be a non-empty string`,
    );
  }
  if (path.includes("\0")) {
    throw new TypeError(
      `Cannot ${op} ${noun}: path must not contain a NUL character`,
    );
  }
  if (!path.isWellFormed()) {
    // UTF-8 cannot hold it: U+FFFD in its place would name another file
    throw new TypeError(
      `Cannot ${op} ${noun}: path must not contain a lone surrogate (not valid UTF-16)`,
    );
  }
}

/**
 * The first checks of a store's create or open: `path` a non-empty
 * string, then `options` as {@linkcode readOptions} takes them; the
 * messages name the call (`op` of a `noun`: "Cannot create pool: options
 * must be an object").
 *
 * @returns the options, each of `known` read once
 */
export function checkOpenArgs<T extends object>(
  path: unknown,
  options: T,
  op: string,
  noun: string,
  known: readonly (keyof T & string)[],
  hints: Readonly<Record<string, keyof T & string>> = {},
  required: readonly (keyof T & string)[] = [],
): Partial<T> {
  checkPath(path, op, noun);
  return readOptions(options, known, `${op} ${noun}`, hints, required);
}

/**
 * The options object of a public factory, checked and read once: the one
 * place every factory's options pass through, so all of them refuse the
 * same things with the same words.
 *
 * - Not an object (null, a number), or an array: a TypeError.
 * - An own enumerable key that is not one of `known`: a TypeError naming
 *   it and the option it most likely stands for ("unknown option 'size'
 *   (did you mean 'poolSize'?)"), else the options there are. A
 *   misspelled option was ignored: the call went on with the default,
 *   and failed later for a reason that did not name it (a block pool's
 *   `size` for `poolSize` said the file did not exist), or not at all.
 * - Each of `known` is read once, into a fresh object: a getter read
 *   again could answer what was never checked. `undefined` is an option
 *   left out.
 * - One of `required` left out: a TypeError "the blockSize option is
 *   required" (its check of type said "must be a number, got
 *   undefined", as if a value of the wrong kind had been given).
 *
 * @param options the caller's options
 * @param known the option names
 * @param what the call, for the messages ("create pool": "Cannot create
 *   pool: ...")
 * @param hints a name callers use for one of `known` that spelling alone
 *   does not find (libpmemblk's `poolSize` for a stream's `size`)
 * @param required the options that must be given
 * @throws {TypeError} as above
 */
export function readOptions<T extends object>(
  options: T,
  known: readonly (keyof T & string)[],
  what: string,
  hints: Readonly<Record<string, keyof T & string>> = {},
  required: readonly (keyof T & string)[] = [],
): Partial<T> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Cannot ${what}: options must be an object`);
  }
  if (Array.isArray(options)) {
    throw new TypeError(
      `Cannot ${what}: options must be an object, got an array`,
    );
  }
  for (const key of Object.keys(options)) {
    if (!(known as readonly string[]).includes(key)) {
      // a key of a megabyte (a data object passed as options) is cut
      // short in the message
      const shown = key.length > 64 ? `${key.slice(0, 61)}...` : key;
      throw new TypeError(
        `Cannot ${what}: unknown option '${shown}' (${
          suggest(key, known, hints)
        })`,
      );
    }
  }
  const read: Partial<T> = {};
  for (const key of known) {
    const value = options[key];
    if (value !== undefined) read[key] = value;
  }
  for (const key of required) {
    if (read[key] === undefined) {
      throw new TypeError(`Cannot ${what}: the ${key} option is required`);
    }
  }
  return read;
}

/** The "did you mean" of an unknown option `key`, else the known ones. */
function suggest(
  key: string,
  known: readonly string[],
  hints: Readonly<Record<string, string>>,
): string {
  const best = nearestName(key, known, hints);
  if (best !== undefined) return `did you mean '${best}'?`;
  if (known.length === 0) return "it takes no options";
  return `the options are ${known.map((k) => `'${k}'`).join(", ")}`;
}

/**
 * The option an unknown `key` most likely stands for: its hint (a name
 * callers use for it that spelling alone does not find), else the
 * nearest of `known` by edit distance, case ignored, if near enough to
 * be a typo (at most 2 edits, and fewer than half the key); else
 * undefined. Shared by {@linkcode readOptions} and the CLI's options.
 */
export function nearestName(
  key: string,
  known: readonly string[],
  hints: Readonly<Record<string, string>> = {},
): string | undefined {
  // own properties only: `hints.constructor` is no hint
  let best = Object.hasOwn(hints, key) ? hints[key] : undefined;
  if (best === undefined) {
    let least = Math.min(3, Math.ceil(key.length / 2));
    for (const name of known) {
      // (lengths this far apart are that many edits at least: a long key
      // costs no distance computed)
      if (Math.abs(key.length - name.length) >= least) continue;
      const d = editDistance(key.toLowerCase(), name.toLowerCase());
      if (d < least) [best, least] = [name, d];
    }
  }
  return best;
}

/** Levenshtein distance of `a` and `b` (short option names only). */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        row[j] + 1,
        next[j - 1] + 1,
        row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    row = next;
  }
  return row[b.length];
}

/**
 * `bytes` (a checked Uint8Array), refused when it is detached: a view of a
 * closed mapping, or of a transferred buffer, reads as empty, and made a
 * 0-byte operation that succeeded (a mover's flush of a closed mapping's
 * view said it was durable; a mapping's copy from such a view wrote
 * nothing). Refused with a `TypeError`, as the log store refuses detached
 * data: the array given at the call is a bad argument, and `ClosedError`
 * is for the library's own stores and mappings used after their close
 * (an array detached after the call, before its operation runs, fails
 * that operation's future with this error too: see `checkStillAttached`
 * in `still_attached.ts`). Only an
 * empty view is looked at further: element 0 answers from the storage
 * alone (see `holds`), so the common case costs one read.
 *
 * @param bytes the array, already checked to be a Uint8Array
 * @param name its argument's name, for the message
 * @param op the operation, for the error
 * @throws {TypeError} when its buffer is detached
 */
export function checkAttached(
  bytes: Uint8Array,
  name: string,
  op: string,
): Uint8Array {
  if (
    bytes[0] === undefined &&
    (bufferOf(bytes) as { detached?: boolean }).detached === true
  ) {
    throw new TypeError(
      `Cannot ${op}: ${name} is detached (its buffer was transferred, or its mapping closed)`,
    );
  }
  return bytes;
}

/**
 * Throw the TypeError of a class whose constructor is internal, called
 * from JavaScript (TypeScript's `private` binds only TypeScript): its
 * fields would be undefined, and every use fail with the engine's
 * TypeError about a property of undefined, or a lock or map seem made.
 *
 * @param name the class
 * @param how where its instances come from
 */
export function notConstructible(name: string, how: string): never {
  throw new TypeError(`Cannot construct ${name}: ${how}`);
}
