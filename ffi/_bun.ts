// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Bun backend: `bun:ffi` with the Deno-shaped table translated once, and a
 * thread-safe `JSCallback` as each device's doorbell for sleeping.
 *
 * @module
 */
import type { Backend } from "./_backend.ts";
import { markNative } from "./_native_memory.ts";
import {
  type NativeSymbols,
  type NativeType,
  type Ptr,
  type SymbolDefinition,
  SYMBOLS,
} from "./_symbols.ts";

// A non-literal specifier keeps Deno's checker and publisher off bun:ffi.
const BUN_FFI = "bun:ffi";
// deno-lint-ignore no-explicit-any
const ffi: any = await import(BUN_FFI);

const TYPES: Record<NativeType, string> = {
  i32: "i32",
  u32: "u32",
  u8: "u8",
  f64: "f64",
  pointer: "ptr",
  buffer: "ptr",
  function: "function",
  void: "void",
};

const ARMED = 1; // AP_CTRL_ARMED / 4

interface Doorbell {
  // deno-lint-ignore no-explicit-any
  callback: any;
  waiters: Set<(woken: boolean) => void>;
}

const doorbells = new Map<number, Doorbell>();

type BunSignature = { args: string[]; returns: string };

/**
 * Translate the Deno-shaped table; Deno-only nonblocking entries drop.
 * An alias (an entry with `name`) binds the C function once, under its
 * own name; {@linkcode bindAliases} then adds the alias's key.
 */
function translate(): Record<string, BunSignature> {
  const out: Record<string, BunSignature> = {};
  for (const [key, raw] of Object.entries(SYMBOLS)) {
    const def = raw as SymbolDefinition;
    if (def.nonblocking) continue;
    const name = def.name ?? key;
    const signature = {
      args: def.parameters.map((t) => TYPES[t]),
      returns: TYPES[def.result],
    };
    const bound = out[name];
    if (bound !== undefined && !sameSignature(bound, signature)) {
      throw new Error(
        `Cannot bind ${key}: bun:ffi sees it as ${name} with other types`,
      );
    }
    out[name] = signature;
  }
  return out;
}

function sameSignature(a: BunSignature, b: BunSignature): boolean {
  return a.returns === b.returns && a.args.join() === b.args.join();
}

/** Give every alias of the table its own key on the bound symbols. */
// deno-lint-ignore no-explicit-any
function bindAliases(symbols: Record<string, any>): NativeSymbols {
  for (const [key, raw] of Object.entries(SYMBOLS)) {
    const def = raw as SymbolDefinition;
    if (!def.nonblocking && def.name !== undefined) {
      symbols[key] = symbols[def.name];
    }
  }
  return symbols as NativeSymbols;
}

/** The Bun implementation of {@linkcode Backend}. */
export const backend: Backend = {
  open(path: string): NativeSymbols {
    return bindAliases({ ...ffi.dlopen(path, translate()).symbols });
  },
  view(ptr: Ptr, length: number, offset = 0): ArrayBuffer {
    if (length === 0) return new ArrayBuffer(0);
    return markNative(ffi.toArrayBuffer(ptr as number, offset, length));
  },
  pointerTo(): Ptr | null {
    return null;
  },
  // bun:ffi's ptr() throws for an empty array ("A pointer to empty memory
  // doesn't work"); Deno answers null, and so does this
  addressOf(bytes: Uint8Array): number {
    return bytes.byteLength === 0 ? 0 : ffi.ptr(bytes);
  },
  pointerOf(bytes: Uint8Array): Ptr | null {
    return bytes.byteLength === 0 ? null : ffi.ptr(bytes);
  },
  fromCell(cell: BigUint64Array): Ptr | null {
    return cell[0] === 0n ? null : Number(cell[0]);
  },
  sleep(
    symbols: NativeSymbols,
    dev: Ptr,
    control: Uint32Array,
    seq: number,
    timeoutMs: number,
    minAdvance: number,
  ): Promise<boolean> {
    const key = dev as number;
    let bell = doorbells.get(key);
    if (bell === undefined) {
      const waiters = new Set<(woken: boolean) => void>();
      const callback = new ffi.JSCallback(() => {
        for (const wake of [...waiters]) wake(true);
      }, { args: [], returns: "void", threadsafe: true });
      symbols.ap_dev_set_doorbell(dev, callback.ptr);
      bell = { callback, waiters };
      doorbells.set(key, bell);
    }
    const { waiters } = bell;
    return new Promise((resolve) => {
      const wake = (woken: boolean) => {
        waiters.delete(wake);
        clearTimeout(timer);
        resolve(woken);
      };
      // The timer also keeps Bun alive: a JSCallback does not. It reports
      // a timeout even if the sequence moved meanwhile, so a doorbell that
      // never rang shows up as a lost wake-up instead of passing for one.
      const timer = setTimeout(() => wake(false), timeoutMs);
      waiters.add(wake);
      // ring when the sequence reaches seq + minAdvance (0 means off)
      const target = ((seq + Math.max(1, minAdvance)) >>> 0) || 1;
      Atomics.store(control, ARMED, target);
      if (((Atomics.load(control, 0) - target) | 0) >= 0) wake(true);
    });
  },
  forget(_symbols: NativeSymbols, dev: Ptr): void {
    const bell = doorbells.get(dev as number);
    if (bell === undefined) return;
    doorbells.delete(dev as number);
    for (const wake of [...bell.waiters]) wake(true);
    bell.callback.close();
  },
};
