// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The CLI's commands on object pools (asyncpmem's `ObjectPool` format):
 * create, info and check. Both read the layout name from the pool header, and
 * open the pool on a private (copy-on-write) mapping: the recovery they
 * run never reaches the file, unless `check --repair` asks for it.
 *
 * @module
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";
import {
  checkObjectPool,
  CorruptPoolError,
  ObjectPool,
  PersistentMap,
} from "../obj/mod.ts";
import { decodeHeader, HEADER_SIZE } from "../obj/layout.ts";
import { catalogNames } from "../obj/map_catalog.ts";
import { openPoolWith } from "../obj/pool_access.ts";
import { PmemError } from "../errors/mod.ts";
import {
  onlyOptions,
  optionalValue,
  type Parsed,
  parseMode,
  parseSize,
  refuseTaken,
  UsageError,
  withArguments,
} from "./args.ts";
import { bytes, count, out, printFields, printJson } from "./output.ts";
import { EINVAL } from "../errors/errno.ts";

/** `create obj FILE --size S --layout NAME [--log-size S] [--mode M]`. */
export function createObj(path: string, p: Parsed): void {
  onlyOptions(p, "an object pool's creation", [
    "size",
    "layout",
    "log-size",
    "mode",
  ]);
  const size = parseSize(p.values.size, "size");
  const layout = p.values.layout;
  if (typeof layout !== "string" || layout === "") {
    throw new UsageError("--layout needs the pool's layout name");
  }
  const logSize = optionalValue(p, "log-size", parseSize, undefined);
  const mode = parseMode(p.values.mode);
  refuseTaken(path);
  using pool = withArguments(() =>
    ObjectPool.create(path, { size, layout, logSize, mode })
  );
  const s = pool.stats();
  if (p.values.json) {
    printJson({ kind: "obj", path, size: s.size, logSize: s.logSize, layout });
  } else {
    out(
      `created ${path}: an object pool of ${bytes(s.size)}, log ${
        bytes(s.logSize)
      }, layout '${layout}'\n`,
    );
  }
}

/** The layout name in a pool file's header. */
function layoutOf(path: string): string {
  const head = new Uint8Array(HEADER_SIZE);
  const fd = openSync(path, "r");
  try {
    readSync(fd, head, 0, HEADER_SIZE, 0);
  } finally {
    closeSync(fd);
  }
  const g = decodeHeader(head, statSync(path).size);
  if (typeof g === "string") {
    throw new PmemError("open", -EINVAL, `'${path}': ${g}`);
  }
  return g.layout;
}

function openFor(path: string, repair: boolean): ObjectPool {
  return openPoolWith(path, { layout: layoutOf(path) }, {
    privateMap: !repair,
  });
}

/** The maps of an open pool: name and size. */
function maps(
  pool: ObjectPool,
  names: string[],
): { name: string; keys: number }[] {
  return names.map((name) => {
    using m = PersistentMap.open(pool, name);
    return { name, keys: m.size };
  });
}

const catalog = catalogNames;

/** `info FILE [--json]` for an object pool. */
export function infoObj(path: string, p: Parsed): void {
  using pool = openFor(path, false);
  const stats = pool.stats();
  const info = {
    kind: "obj",
    path,
    format: "asyncpmem object pool, version 1",
    layout: pool.layout,
    size: stats.size,
    logSize: stats.logSize,
    recovery: pool.recovery,
    rootSize: pool.rootSize,
    heap: stats.heap,
    maps: maps(pool, catalog(pool)),
  };
  if (p.values.json) {
    printJson(info);
    return;
  }
  printFields([
    ["file", path],
    ["format", info.format],
    ["layout", JSON.stringify(info.layout)],
    ["size", bytes(info.size)],
    ["log", bytes(info.logSize)],
    [
      "at the next open",
      info.recovery.records === 0
        ? "nothing to replay (closed cleanly or checkpointed)"
        : `${info.recovery.records} log records (${info.recovery.entries} entries) are replayed`,
    ],
    ["root", info.rootSize === 0 ? "none" : bytes(info.rootSize)],
    [
      "heap",
      `${info.heap.chunks} chunks of 256 KiB: ${info.heap.freeChunks} free, ${info.heap.runChunks} runs, ${info.heap.hugeChunks} in huge objects; ${info.heap.objects} objects`,
    ],
    [
      "maps",
      info.maps.length === 0
        ? "none"
        : info.maps.map((m) =>
          `${JSON.stringify(m.name)} (${count(m.keys, "key")})`
        )
          .join(", "),
    ],
  ]);
}

/**
 * `check FILE [--repair] [--json]` for an object pool; whether it is
 * consistent. With --repair, recovery's replay and checkpoint are
 * written to the file, unless the pool is too damaged to open.
 */
export function checkObj(path: string, p: Parsed): boolean {
  const asked = p.values.repair === true;
  let repair = false;
  let problems: string[];
  let replayed = 0;
  let objects: Record<string, number> = {};
  try {
    // A pool too damaged to open is left as it is: the open would
    // persist recovery's replay before finding the damage. A private
    // open finds it first (CorruptPoolError) without writing.
    if (asked) openFor(path, false).close();
    repair = asked;
    using pool = openFor(path, repair);
    replayed = pool.recovery.records;
    for (const name of catalog(pool)) PersistentMap.open(pool, name).close();
    const report = checkObjectPool(pool);
    problems = report.problems;
    objects = report.objects;
  } catch (e) {
    if (!(e instanceof CorruptPoolError)) throw e;
    problems = [e.message];
  }
  const ok = problems.length === 0;
  if (p.values.json) {
    printJson({
      kind: "obj",
      path,
      consistent: ok,
      replayed,
      repaired: repair,
      objects,
      problems,
    });
  } else {
    for (const line of problems) out(`problem: ${line}\n`);
    out(
      `${path}: ${ok ? "consistent" : "not consistent"}${
        replayed > 0
          ? `; ${replayed} committed log records ${
            repair ? "replayed and checkpointed" : "to replay at the next open"
          }`
          : ""
      }\n`,
    );
  }
  return ok;
}
