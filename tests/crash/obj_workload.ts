// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The object store's crash workload and its model: numbered transactions
 * (objects put into root slots with the old ones freed, patches of many
 * ranges, map sets, deletes and batches, aborted transactions, groups of
 * asynchronous ones), each labelled "issue k" before it starts and "ack
 * k" once it returned or its future completed. The model keeps the state
 * after every k as a fingerprint: after any crash the pool must show the
 * state after some k between the last acknowledged and the last issued
 * (transactions are committed in the order they start), and its heap
 * must hold exactly the objects that state reaches.
 *
 * @module
 */
import { waitAll } from "../../future/mod.ts";
import type { Future } from "../../future/future.ts";
import {
  type ObjectHandle,
  type ObjectPool,
  PersistentMap,
  type Transaction,
} from "../../obj/mod.ts";
import { pick } from "./random.ts";

/** Root slots holding user objects. */
export const SLOTS = 12;
/** Bytes of the root: the slots, then a counter. */
export const ROOT_SIZE = 8 * SLOTS + 8;
/** The options of the workload's pools (a small log: checkpoints and wraps happen). */
export const OBJ_OPTIONS = {
  size: 8 << 20,
  layout: "crash",
  logSize: 256 << 10,
} as const;

/** The state a transaction leaves. */
export interface ModelState {
  slots: (Uint8Array | null)[];
  map: Map<string, string>;
  counter: number;
}

/** A stable text form of a state (what a recovered pool must equal). */
export function fingerprint(s: ModelState): string {
  const slots = s.slots.map((b) => b === null ? "-" : hash(b)).join(",");
  const map = [...s.map].sort(([a], [b]) => a < b ? -1 : 1)
    .map(([k, v]) => `${k}=${hash(new TextEncoder().encode(v))}`).join(",");
  return `${s.counter}|${slots}|${map}`;
}

/** A 32-bit FNV-1a of bytes, with the length. */
export function hash(b: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 16777619);
  return `${b.length}:${(h >>> 0).toString(36)}`;
}

function clone(s: ModelState): ModelState {
  return { slots: [...s.slots], map: new Map(s.map), counter: s.counter };
}

/** Read what a pool shows, as a model state (null slots for empty ones). */
export function observe(
  pool: ObjectPool,
): { state: ModelState; live: number[] } {
  const root = pool.root(ROOT_SIZE);
  const slots: (Uint8Array | null)[] = [];
  const live: number[] = [];
  for (let i = 0; i < SLOTS; i++) {
    const off = pool.getU64(root, 8 * i);
    if (off === 0) {
      slots.push(null);
      continue;
    }
    const o = pool.object(off);
    slots.push(pool.read(o));
    live.push(off);
  }
  using m = PersistentMap.open(pool, "m");
  const map = new Map<string, string>();
  for (const [k, v] of m.entries()) map.set(k as string, v as string);
  return {
    state: { slots, map, counter: pool.getU64(root, 8 * SLOTS) },
    live,
  };
}

/** Runs the numbered transactions, keeping the model's states. */
export class ObjDriver {
  readonly pool: ObjectPool;
  readonly root: ObjectHandle;
  readonly map: PersistentMap;
  /** States after transaction k (index k; 0: after setup). */
  readonly states: string[];
  #state: ModelState;
  #mark: (label: string) => void;
  #rand: () => number;
  /** Groups run so far. */
  #groups = 0;
  issued = 0;

  /**
   * @param pool a pool whose setup (root and map) is done
   * @param mark records a label with the trace
   * @param rand the seeded random source
   * @param base the state and states of the transactions before (setup)
   */
  constructor(
    pool: ObjectPool,
    mark: (label: string) => void,
    rand: () => number,
    base: { state: ModelState; states: string[] },
  ) {
    this.pool = pool;
    this.root = pool.root(ROOT_SIZE);
    this.map = PersistentMap.open(pool, "m");
    this.#mark = mark;
    this.#rand = rand;
    this.#state = clone(base.state);
    this.states = [...base.states];
  }

  /** The model's latest state. */
  get state(): ModelState {
    return this.#state;
  }

  #bytes(): Uint8Array {
    const r = this.#rand;
    const kind = r();
    const n = kind < 0.45
      ? 1 + Math.floor(r() * 63)
      : kind < 0.95
      ? 64 + Math.floor(r() * 4000)
      : 66_000 + Math.floor(r() * 4_000);
    const b = new Uint8Array(n);
    const seed = Math.floor(r() * 256);
    for (let i = 0; i < n; i++) b[i] = (seed + i * 7) & 255;
    return b;
  }

  /**
   * One transaction's body for `tx` and its effect on a model state.
   * The body may throw (an abort): then the model is unchanged.
   */
  #plan(): {
    body: (tx: Transaction) => void;
    apply: (s: ModelState) => void;
    aborts: boolean;
  } {
    const r = this.#rand;
    const kind = pick(r, 10);
    const root = this.root;
    const m = this.map;
    if (kind < 3) {
      const slot = pick(r, SLOTS);
      const data = this.#bytes();
      return {
        body: (tx) => {
          const old = tx.getU64(root, 8 * slot);
          const o = tx.alloc(data.length);
          tx.write(o, 0, data);
          tx.setU64(root, 8 * slot, o.offset);
          if (old !== 0) tx.free(tx.object(old));
          tx.setU64(root, 8 * SLOTS, tx.getU64(root, 8 * SLOTS) + 1);
        },
        apply: (s) => {
          s.slots[slot] = data;
          s.counter++;
        },
        aborts: false,
      };
    }
    if (kind < 5) {
      const ranges: [number, number, Uint8Array][] = [];
      const n = 1 + pick(r, 8);
      for (let i = 0; i < n; i++) {
        ranges.push([
          pick(r, SLOTS),
          r(),
          this.#bytes().subarray(0, 1 + pick(r, 200)),
        ]);
      }
      let seen: (Uint8Array | null)[] = [];
      return {
        body: (tx) => {
          for (const [slot, where, data] of ranges) {
            const off = tx.getU64(root, 8 * slot);
            if (off === 0) continue;
            const o = tx.object(off);
            if (o.size === 0) continue;
            const len = Math.min(data.length, o.size);
            const at = Math.floor(where * (o.size - len + 1));
            tx.write(o, at, data.subarray(0, len));
          }
          tx.setU64(root, 8 * SLOTS, tx.getU64(root, 8 * SLOTS) + 1);
          seen = [];
        },
        apply: (s) => {
          for (const [slot, where, data] of ranges) {
            const cur = s.slots[slot];
            if (cur === null || cur.length === 0) continue;
            const next = cur.slice();
            const len = Math.min(data.length, next.length);
            const at = Math.floor(where * (next.length - len + 1));
            next.set(data.subarray(0, len), at);
            s.slots[slot] = next;
          }
          s.counter++;
          void seen;
        },
        aborts: false,
      };
    }
    if (kind < 8) {
      const ops: [string, string | null][] = [];
      const n = 1 + pick(r, 4);
      for (let i = 0; i < n; i++) {
        const key = `k${pick(r, 24)}`;
        ops.push([key, r() < 0.25 ? null : "v".repeat(pick(r, 300)) + key]);
      }
      return {
        body: () => {
          for (const [k, v] of ops) {
            if (v === null) m.delete(k);
            else m.set(k, v);
          }
        },
        apply: (s) => {
          for (const [k, v] of ops) {
            if (v === null) s.map.delete(k);
            else s.map.set(k, v);
          }
        },
        aborts: false,
      };
    }
    // an aborted transaction: changes, then a throw
    const slot = pick(r, SLOTS);
    return {
      body: (tx) => {
        const o = tx.alloc(100);
        tx.setU64(root, 8 * slot, o.offset);
        m.set("aborted", "x");
        throw new Error("abort");
      },
      apply: () => {},
      aborts: true,
    };
  }

  /** Run one synchronous transaction. */
  sync(): void {
    this.#sync(this.#plan());
  }

  /**
   * Run one synchronous transaction the caller shaped (its body, and its
   * effect on the model state), numbered and marked as the others.
   */
  commit(
    body: (tx: Transaction) => void,
    apply: (s: ModelState) => void,
  ): void {
    this.#sync({ body, apply, aborts: false });
  }

  #sync(
    p: {
      body: (tx: Transaction) => void;
      apply: (s: ModelState) => void;
      aborts: boolean;
    },
  ): void {
    const k = this.states.length;
    if (!p.aborts) this.#mark(`issue ${k}`);
    try {
      this.pool.tx(p.body);
    } catch (e) {
      if (!p.aborts) throw e;
      return;
    }
    p.apply(this.#state);
    this.states.push(fingerprint(this.#state));
    this.issued++;
    this.#mark(`ack ${k}`);
  }

  /**
   * Start `n` asynchronous transactions, then wait for them all. Every
   * other group's have an abort signal: they start at the wait's first
   * poll, in the order issued (the model's), sharing its sweep's group;
   * one more, aborted before then, must leave no trace.
   */
  group(n: number): void {
    const fs: Future<unknown>[] = [];
    const ks: number[] = [];
    const lazy = this.#groups++ % 2 === 1;
    const signal = lazy ? new AbortController().signal : undefined;
    const withdrawn = new AbortController();
    let aborted: Future<unknown> | undefined;
    for (let i = 0; i < n; i++) {
      const p = this.#plan();
      if (p.aborts) continue;
      const k = this.states.length;
      this.#mark(`issue ${k}`);
      fs.push(this.pool.txAsync(p.body, { signal }));
      p.apply(this.#state);
      this.states.push(fingerprint(this.#state));
      this.issued++;
      ks.push(k);
      if (lazy && aborted === undefined) {
        const root = this.root;
        aborted = this.pool.txAsync((tx) => {
          tx.setU64(root, 8 * SLOTS, 0xdead);
          this.map.set("withdrawn", "x");
        }, { signal: withdrawn.signal });
      }
    }
    withdrawn.abort();
    waitAll(fs);
    if (aborted !== undefined && aborted.poll() !== "failed") {
      throw new Error("a transaction aborted before it started ran");
    }
    for (const k of ks) this.#mark(`ack ${k}`);
  }

  /** Run `ops` transactions, synchronous ones and groups. */
  run(ops: number): void {
    while (this.issued < ops) {
      if (this.#rand() < 0.6) this.sync();
      else this.group(2 + pick(this.#rand, 5));
    }
  }
}

/** Create the root and the map (the state after setup: k = 0). */
export function setup(
  pool: ObjectPool,
): { state: ModelState; states: string[] } {
  pool.tx(() => {
    pool.root(ROOT_SIZE);
    PersistentMap.open(pool, "m");
  });
  const state: ModelState = {
    slots: new Array(SLOTS).fill(null),
    map: new Map(),
    counter: 0,
  };
  return { state, states: [fingerprint(state)] };
}
