// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Errors and runtime facts shared by every part of asyncpmem.
 *
 * ```ts
 * import { PmemError, RUNTIME } from "@asyncpmem/asyncpmem/ffi";
 * console.log(RUNTIME, PmemError.name);
 * ```
 *
 * @module
 */
export * from "./errors.ts";
export { RUNTIME, type RuntimeName } from "./_runtime.ts";
export type { Ptr } from "./_symbols.ts";
