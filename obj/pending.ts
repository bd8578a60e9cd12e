// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What transactions staged and the pool has not applied yet, as the
 * transactions that follow must see it: {@linkcode Pending} (the objects
 * allocated and freed, and the writes, of groups not applied, by object)
 * and {@linkcode Locals} (the objects the running transaction allocated
 * and freed). Internal to `obj/`.
 *
 * Both are kept lazily, because most transactions never need them: the
 * writes are indexed by object only when a read in a transaction asks
 * (from the keys recorded at staging), and a synchronous transaction's
 * objects never leave its `Locals` (it is applied before another starts).
 *
 * @module
 */
import type { RedoLog } from "./log.ts";
import type { Entry } from "./log_entry.ts";
import { type Group, NO_KEY } from "./log_group.ts";

/** An object allocated or freed by a transaction not yet applied. */
export interface PendingObject {
  /** Its generation; 0 when it was freed. */
  gen: number;
  /** Bytes of data. */
  size: number;
  /** Its type. */
  type: number;
}

/**
 * An empty slot of the arrays below (generation 0, as a freed object). A
 * free is staged as an object of its own ({@linkcode freedObject}): a
 * group's application drops an offset's pending entry only when it is
 * that group's own, and one shared object for every free made a later
 * group's free of the block look like the earlier group's.
 */
export const FREED: PendingObject = Object.freeze({ gen: 0, size: 0, type: 0 });

/** A free, pending: generation 0, an object of its own. */
export function freedObject(): PendingObject {
  return { gen: 0, size: 0, type: 0 };
}

/**
 * The objects the running transaction allocated or freed, by offset, in
 * two arrays searched linearly (a transaction touches few objects; a Map
 * cost more to fill and clear than the searches), with a Map beside them
 * once there are many. One per engine, as callbacks never overlap.
 */
export class Locals {
  #keys: number[] = [];
  #vals: PendingObject[] = [];
  /** Entries in use (the arrays are kept, never truncated). */
  #n = 0;
  #map: Map<number, PendingObject> | null = null;

  /** Whether it holds nothing. */
  get empty(): boolean {
    return this.#n === 0 && this.#map === null;
  }

  /** The object at `offset`, if the transaction allocated or freed it. */
  get(offset: number): PendingObject | undefined {
    if (this.#map !== null) return this.#map.get(offset);
    const keys = this.#keys;
    for (let i = 0, n = this.#n; i < n; i++) {
      if (keys[i] === offset) return this.#vals[i];
    }
    return undefined;
  }

  /** Record what the object at `offset` now is. */
  set(offset: number, p: PendingObject): void {
    if (this.#map !== null) {
      this.#map.set(offset, p);
      return;
    }
    const keys = this.#keys;
    const vals = this.#vals;
    const n = this.#n;
    for (let i = 0; i < n; i++) {
      if (keys[i] === offset) {
        vals[i] = p;
        return;
      }
    }
    if (n === 16) {
      const map = this.#map = new Map();
      for (let i = 0; i < n; i++) map.set(keys[i], vals[i]);
      map.set(offset, p);
      this.#release();
      return;
    }
    if (n < keys.length) {
      keys[n] = offset;
      vals[n] = p;
    } else {
      keys.push(offset);
      vals.push(p);
    }
    this.#n = n + 1;
  }

  /** Call `fn` with each offset and object. */
  forEach(fn: (p: PendingObject, offset: number) => void): void {
    if (this.#map !== null) this.#map.forEach(fn);
    for (let i = 0; i < this.#n; i++) fn(this.#vals[i], this.#keys[i]);
  }

  /** List each (offset, object) in `gens`. */
  copyTo(gens: unknown[]): void {
    if (this.#map !== null) {
      for (const [offset, p] of this.#map) gens.push(offset, p);
    }
    const keys = this.#keys;
    const vals = this.#vals;
    for (let i = 0; i < this.#n; i++) gens.push(keys[i], vals[i]);
  }

  /** Forget everything (the transaction ended or aborted). */
  clear(): void {
    this.#release();
    this.#map = null;
  }

  /** Empty the arrays, keeping their room (no objects kept alive). */
  #release(): void {
    const vals = this.#vals;
    for (let i = 0; i < this.#n; i++) vals[i] = FREED;
    this.#n = 0;
  }
}

/** The pending objects and writes of the groups not applied yet. */
export class Pending {
  /** Objects allocated (or freed: generation 0), by offset. */
  readonly objects = new Map<number, PendingObject>();
  /** Writes indexed so far, by the offset of the object they change. */
  readonly #writes = new Map<number, Entry[]>();
  #log: RedoLog;

  constructor(log: RedoLog) {
    this.#log = log;
  }

  /**
   * The pending object at `offset`, if any, after indexing the objects
   * published since the last call: every group's, oldest first, so the
   * newest state of an offset wins.
   */
  object(
    groups: readonly Group[],
    staging: Group | undefined,
    offset: number,
  ): PendingObject | undefined {
    for (let i = 0; i < groups.length; i++) this.#indexGens(groups[i]);
    if (staging !== undefined) this.#indexGens(staging);
    return this.objects.size === 0 ? undefined : this.objects.get(offset);
  }

  #indexGens(g: Group): void {
    const gens = g.gens;
    if (gens === null || g.gensIndexed === gens.length) return;
    const objects = this.objects;
    for (let i = g.gensIndexed; i < gens.length; i += 2) {
      objects.set(gens[i] as number, gens[i + 1] as PendingObject);
    }
    g.gensIndexed = gens.length;
  }

  /**
   * Publish the objects an asynchronous transaction of `g` allocated and
   * freed: listed in the group only, as most transactions never look an
   * object up (the Map is filled when one does).
   */
  publish(g: Group, locals: Locals): void {
    if (!locals.empty) locals.copyTo(g.gens ??= []);
  }

  /**
   * The pending writes to the object at `key`, in log order (undefined:
   * none), after indexing the entries staged since the last call: every
   * group's, oldest first, so each list stays in log order.
   */
  writes(groups: readonly Group[], staging: Group | undefined, key: number) {
    for (let i = 0; i < groups.length; i++) this.#index(groups[i]);
    if (staging !== undefined) this.#index(staging);
    return this.#writes.size === 0 ? undefined : this.#writes.get(key);
  }

  #index(g: Group): void {
    const done = g.items === null ? 0 : g.items.length;
    if (done === g.count) return;
    const items = g.items ??= [];
    const fresh = this.#log.entries(g, done, g.indexedSize);
    const keys = g.keys;
    const writes = this.#writes;
    for (let i = 0; i < fresh.length; i++) {
      const key = keys[done + i];
      if (key === NO_KEY) {
        items.push(null);
        continue;
      }
      const e = fresh[i];
      items.push(e);
      let list = writes.get(key);
      if (list === undefined) writes.set(key, list = []);
      list.push(e);
    }
    g.indexedSize = g.end - g.start;
  }

  /**
   * Forget what an aborted transaction staged into `g` after a mark: its
   * entries, and those of them indexed (the newest of their lists:
   * nothing was staged after them).
   */
  truncate(g: Group, size: number, count: number): void {
    const items = g.items;
    if (items !== null && items.length > count) {
      const writes = this.#writes;
      for (let i = items.length - 1; i >= count; i--) {
        if (items[i] === null) continue;
        const key = g.keys[i];
        const list = writes.get(key)!;
        list.pop();
        if (list.length === 0) writes.delete(key);
      }
      items.length = count;
      g.indexedSize = size;
    }
    this.#log.truncate(g, size, count);
  }

  /** Take an applied group's writes and objects out (the oldest of each). */
  unpend(g: Group): void {
    const items = g.items;
    if (items !== null) {
      const writes = this.#writes;
      for (let i = 0; i < items.length; i++) {
        if (items[i] === null) continue;
        const key = g.keys[i];
        const list = writes.get(key);
        if (list === undefined) continue;
        list.shift();
        if (list.length === 0) writes.delete(key);
      }
      g.items = null;
    }
    const gens = g.gens;
    if (gens !== null) {
      const objects = this.objects;
      for (let i = 0; i < g.gensIndexed; i += 2) {
        const offset = gens[i] as number;
        if (objects.get(offset) === gens[i + 1]) objects.delete(offset);
      }
      g.gens = null;
      g.gensIndexed = 0;
    }
  }

  /** Forget everything: no group is left to apply. */
  clear(): void {
    if (this.#writes.size > 0) this.#writes.clear();
    if (this.objects.size > 0) this.objects.clear();
  }
}
