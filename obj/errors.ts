// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The object store's own errors, where a caller branches on the kind:
 * a pool made for another layout, a handle to a freed object, a damaged
 * image (naming the structure).
 *
 * @module
 */
import { PmemError } from "../errors/mod.ts";
import { EINVAL, ESTALE, EUCLEAN } from "../errors/errno.ts";

/**
 * The pool was created with another layout name (`pmemobj_open`'s
 * check): the program opened a pool that is not its own.
 *
 * @example Usage
 * ```ts
 * import { LayoutMismatchError } from "@asyncpmem/asyncpmem/obj";
 * import assert from "node:assert/strict";
 *
 * const e = new LayoutMismatchError("open", "app", "other");
 * assert.equal(e.found, "other");
 * ```
 */
export class LayoutMismatchError extends PmemError {
  /** The layout the caller asked for. */
  readonly expected: string;
  /** The layout of the pool. */
  readonly found: string;

  /**
   * Create the error for a pool of another layout.
   *
   * @param op the operation
   * @param expected the layout asked for
   * @param found the pool's layout
   */
  constructor(op: string, expected: string, found: string) {
    super(
      op,
      -EINVAL,
      `the pool's layout is ${JSON.stringify(found)}, not ${
        JSON.stringify(expected)
      }`,
    );
    this.name = "LayoutMismatchError";
    this.expected = expected;
    this.found = found;
  }
}

/**
 * A handle names an object that was freed (or never allocated) in its
 * pool.
 *
 * @example Usage
 * ```ts
 * import { StaleObjectError } from "@asyncpmem/asyncpmem/obj";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new StaleObjectError("read", 4096).offset, 4096);
 * ```
 */
export class StaleObjectError extends PmemError {
  /** The object's offset. */
  readonly offset: number;

  /**
   * Create the error for a handle to a freed object.
   *
   * @param op the operation
   * @param offset the object's offset
   */
  constructor(op: string, offset: number) {
    super(op, -ESTALE, `no live object at offset ${offset}`);
    this.name = "StaleObjectError";
    this.offset = offset;
  }
}

/**
 * The pool image is damaged: `structure` names what (the pool header,
 * the log record at a position, a chunk table entry, a map node...).
 *
 * @example Usage
 * ```ts
 * import { CorruptPoolError } from "@asyncpmem/asyncpmem/obj";
 * import assert from "node:assert/strict";
 *
 * const e = new CorruptPoolError("open", "chunk table entry 3", "unknown kind 9");
 * assert.equal(e.structure, "chunk table entry 3");
 * ```
 */
export class CorruptPoolError extends PmemError {
  /** The damaged structure. */
  readonly structure: string;

  /**
   * Create the error for a damaged structure.
   *
   * @param op the operation
   * @param structure what is damaged
   * @param detail how
   */
  constructor(op: string, structure: string, detail: string) {
    super(op, -EUCLEAN, `${structure} is corrupt: ${detail}`);
    this.name = "CorruptPoolError";
    this.structure = structure;
  }
}
