// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The `map` suite on the current runtime: {@linkcode PersistentMap}
 * against what JavaScript programs use for durable key-value storage
 * today, on the same file system: `lmdb` (npm) with durable commits and
 * SQLite (`bun:sqlite` on Bun, `node:sqlite` on Deno) in WAL mode with
 * `synchronous=FULL`. Keys are 16 bytes (10 000 of them, written round
 * robin); values 100 B and 4 KiB. For each store, in `/dev/shm` (tmpfs)
 * and in the system's temporary directory (disk):
 *
 * - `<store> put <n> <fs>`: one durable put per op — `map.set`;
 *   `db.putSync` (lmdb commits and syncs before returning); an INSERT OR
 *   REPLACE in autocommit (SQLite fsyncs the WAL at each commit).
 * - `<store> put QD32 <n> <fs>`: 32 puts started together, then waited
 *   for durably — `map.setAsync` × 32 + `await all`; lmdb `put` × 32 +
 *   `await db.flushed` (a resolved `put` is only committed); SQLite: the
 *   32 in one transaction.
 * - `<store> get <n> tmpfs`: `map.get`, lmdb `db.getBinary`, SQLite a
 *   prepared SELECT, of keys every store holds; the three take turns
 *   (`benchSideBySide`), after `warmHeap()` on Bun, so that no store is
 *   charged for the heap another one left.
 *
 * No C baseline: compare the stores' rows (the ratios are in
 * `bench/RESULTS.md`).
 *
 *   deno run -A bench/map_bench.ts     bun bench/map_bench.ts
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open as openLmdb } from "lmdb";
import { RUNTIME } from "../ffi/_runtime.ts";
import { all, type Future } from "../future/mod.ts";
import { ObjectPool, PersistentMap } from "../obj/mod.ts";
import {
  bench,
  benchAsync,
  benchSideBySide,
  scratchDir,
  warmHeap,
} from "./lib.ts";

const SUITE = "map";
const KEYS = 10_000;
const QD = 32;
const SIZES: readonly (readonly [string, number])[] = [
  ["100 B", 100],
  ["4 KiB", 4096],
];
const keys = Array.from(
  { length: KEYS },
  (_, i) => `key-${i.toString().padStart(12, "0")}`,
);

/** The SQLite of this runtime: a tiny common surface. */
interface Sql {
  exec(sql: string): void;
  put(k: string, v: Uint8Array): void;
  get(k: string): unknown;
  close(): void;
}

async function openSql(path: string): Promise<Sql> {
  if (RUNTIME === "bun") {
    const name = "bun:sqlite";
    const { Database } = await import(name);
    const db = new Database(path);
    db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    db.exec("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB)");
    const put = db.prepare("INSERT OR REPLACE INTO kv VALUES (?, ?)");
    const get = db.prepare("SELECT v FROM kv WHERE k = ?");
    return {
      exec: (s) => db.exec(s),
      put: (k, v) => put.run(k, v),
      get: (k) => get.get(k),
      close: () => db.close(),
    };
  }
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
  db.exec("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB)");
  const put = db.prepare("INSERT OR REPLACE INTO kv VALUES (?, ?)");
  const get = db.prepare("SELECT v FROM kv WHERE k = ?");
  return {
    exec: (s) => db.exec(s),
    put: (k, v) => void put.run(k, v),
    get: (k) => get.get(k),
    close: () => db.close(),
  };
}

for (const [fs, base] of [["tmpfs", scratchDir()], ["disk", tmpdir()]]) {
  const dir = mkdtempSync(join(base, "asyncpmem-bench-"));
  try {
    for (const [label, size] of SIZES) {
      const value = new Uint8Array(size).fill(0x5a);
      // each store stays open until the gets, which run side by side
      using pool = ObjectPool.create(join(dir, "pool"), {
        size: 256 << 20,
        layout: "bench",
      });
      using m = PersistentMap.open(pool, "kv");
      const lmdb = openLmdb({ path: join(dir, "lmdb") });
      const sql = await openSql(join(dir, "sqlite"));
      try {
        let at = 0;
        bench(SUITE, `map put ${label} ${fs}`, (n) => {
          for (let i = 0; i < n; i++) m.set(keys[at++ % KEYS], value);
        });
        await benchAsync(SUITE, `map put QD32 ${label} ${fs}`, async (n) => {
          for (let i = 0; i < n; i += QD) {
            const fs: Future<void>[] = [];
            for (let j = 0; j < QD; j++) {
              fs.push(m.setAsync(keys[at++ % KEYS], value));
            }
            await all(fs);
          }
        });
        at = 0;
        bench(SUITE, `lmdb putSync ${label} ${fs}`, (n) => {
          for (let i = 0; i < n; i++) lmdb.putSync(keys[at++ % KEYS], value);
        });
        await benchAsync(
          SUITE,
          `lmdb put QD32+flushed ${label} ${fs}`,
          async (n) => {
            for (let i = 0; i < n; i += QD) {
              for (let j = 0; j < QD; j++) lmdb.put(keys[at++ % KEYS], value);
              await lmdb.flushed;
            }
          },
        );
        at = 0;
        bench(SUITE, `sqlite put ${label} ${fs}`, (n) => {
          for (let i = 0; i < n; i++) sql.put(keys[at++ % KEYS], value);
        });
        bench(SUITE, `sqlite put QD32 ${label} ${fs}`, (n) => {
          for (let i = 0; i < n; i += QD) {
            sql.exec("BEGIN");
            for (let j = 0; j < QD; j++) sql.put(keys[at++ % KEYS], value);
            sql.exec("COMMIT");
          }
        });
        if (fs === "tmpfs") {
          // every key is in every store: a short put run may not have
          // reached them all
          for (const k of keys) {
            if (!m.has(k)) m.set(k, value);
            if (lmdb.getBinary(k) === undefined) lmdb.putSync(k, value);
            sql.put(k, value);
          }
          warmHeap();
          let [a, b, c] = [0, 0, 0];
          benchSideBySide(SUITE, [
            {
              name: `map get ${label} tmpfs`,
              loop: (n) => {
                for (let i = 0; i < n; i++) m.get(keys[a++ % KEYS]);
              },
            },
            {
              name: `lmdb get ${label} tmpfs`,
              loop: (n) => {
                for (let i = 0; i < n; i++) lmdb.getBinary(keys[b++ % KEYS]);
              },
            },
            {
              name: `sqlite get ${label} tmpfs`,
              loop: (n) => {
                for (let i = 0; i < n; i++) sql.get(keys[c++ % KEYS]);
              },
            },
          ]);
        }
      } finally {
        await lmdb.close();
        sql.close();
        pool.close();
        rmSync(join(dir, "pool"));
        rmSync(join(dir, "lmdb"), { recursive: true, force: true });
        for (const f of ["sqlite", "sqlite-wal", "sqlite-shm"]) {
          rmSync(join(dir, f), { force: true });
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
