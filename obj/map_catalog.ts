// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A pool's maps by name: the catalog of its state page (a slot per map,
 * naming its descriptor), and the one {@linkcode MapCore} of each map of
 * an open pool, which every `PersistentMap` of that name shares (read
 * from its objects, or created in a transaction, the first time).
 * Internal to `obj/`.
 *
 * @module
 */
import { newHandle } from "./handle.ts";
import type { Engine } from "./engine.ts";
import {
  CATALOG_AT,
  CATALOG_KIND_MAP,
  CATALOG_SLOT,
  OBJECT_HEADER,
} from "./layout.ts";
import { DESC_SIZE, MAP_MAGIC, MAP_VERSION } from "./map_format.ts";
import { MapCore } from "./map_core.ts";
import type { OtherMaps } from "./map_load.ts";
import { TYPE_MAP } from "./open.ts";
import type { ObjectPool } from "./pool.ts";
import { poolEngine } from "./pool_access.ts";
import { txHooks } from "./tx.ts";

/** The names of the maps in a pool's catalog. Internal (the CLI). */
export function catalogNames(pool: ObjectPool): string[] {
  return poolEngine(pool).state.catalog.filter((c) => c.name !== "")
    .map((c) => c.name);
}

/** The map cores of each open pool, by name. */
const cores = new WeakMap<Engine, Map<string, MapCore>>();

/**
 * The core of the map `name` (its UTF-8 `bytes`) of the pool of `e`:
 * the one of the open pool, else read from the objects the catalog
 * names, else a map created empty. Internal.
 *
 * @throws {RangeError} when the map is created and the catalog is full
 * @throws {CorruptPoolError} when the map's objects are damaged
 */
export function mapCore(
  pool: ObjectPool,
  e: Engine,
  name: string,
  bytes: Uint8Array,
): MapCore {
  let byName = cores.get(e);
  if (byName === undefined) cores.set(e, byName = new Map());
  let core = byName.get(name);
  if (core === undefined) {
    const slot = e.state.catalog.findIndex((c) => c.name === name);
    if (slot >= 0) {
      const offset = e.state.catalog[slot].offset;
      const h = offset - OBJECT_HEADER;
      core = new MapCore(
        e,
        name,
        newHandle(
          e.token,
          offset,
          e.media.getU32(h + 4),
          TYPE_MAP,
          e.media.getU32(h + 8),
        ),
      );
      core.load(otherMaps(byName));
    } else {
      core = createMap(pool, e, name, bytes, byName);
    }
    byName.set(name, core);
  }
  return core;
}

/**
 * What the maps of a pool loaded so far (`byName`) hold, for the load of
 * another: its objects must be none of theirs. The directories and leaves
 * are few (one leaf per 508 keys); a node is looked up by its key.
 */
function otherMaps(byName: Map<string, MapCore>): OtherMaps {
  const loaded = [...byName.values()].filter((c) => !c.dropped);
  const structures = new Map<number, string>();
  for (const c of loaded) c.structures(structures);
  return {
    structures,
    node(isStr, key, offset) {
      for (const c of loaded) {
        const x = (isStr ? c.str : c.bin).get(key);
        if (x !== undefined && x.node === offset) {
          return `the map ${JSON.stringify(c.name)}'s node of slot ${x.slot}`;
        }
      }
      return undefined;
    },
  };
}

/**
 * Create the map `name` in a transaction of `pool`: its descriptor, and
 * its slot in the catalog; its core joins `byName` (taken back, with
 * the slot, if the transaction aborts).
 */
function createMap(
  pool: ObjectPool,
  e: Engine,
  name: string,
  bytes: Uint8Array,
  byName: Map<string, MapCore>,
): MapCore {
  // before the transaction: thrown inside it, the RangeError doomed the
  // enclosing transaction it joins (a caller's `pool.tx` that caught it
  // failed all the same). The catalog as staged is the one the
  // transaction will see: nothing runs in between
  const free = e.state.catalog.findIndex((c) => c.name === "");
  if (free < 0) {
    throw new RangeError(
      `Cannot create the map ${
        JSON.stringify(name)
      }: the pool's catalog holds 31 maps`,
    );
  }
  return pool.tx((tx) => {
    const desc = txHooks.allocInternal(tx, DESC_SIZE, TYPE_MAP);
    const was = txHooks.beginInternalWrites(tx);
    try {
      tx.setU32(desc, 0, MAP_MAGIC);
      tx.setU32(desc, 4, MAP_VERSION);
    } finally {
      txHooks.endInternalWrites(tx, was);
    }
    const slot = new Uint8Array(CATALOG_SLOT);
    slot.set(bytes);
    const dv = new DataView(slot.buffer);
    dv.setBigUint64(112, BigInt(desc.offset), true);
    dv.setUint32(120, CATALOG_KIND_MAP, true);
    txHooks.writeState(tx, CATALOG_AT + free * CATALOG_SLOT, slot);
    const c = e.state.catalog[free];
    c.name = name;
    c.offset = desc.offset;
    c.kind = CATALOG_KIND_MAP;
    const core = new MapCore(e, name, desc);
    // a transaction this one joins may abort after it returns: the map
    // then does not exist, and a later open must create it again
    byName.set(name, core);
    txHooks.onAbort(tx, () => {
      c.name = "";
      c.offset = 0;
      c.kind = 0;
      byName.delete(name);
      // the maps the callback opened keep this core: closed, they change
      // no freed object and allocate none that nothing reaches
      core.dropped = true;
    });
    return core;
  });
}
