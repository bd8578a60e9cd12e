// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The object store in one script: create a pool, build a linked list in
 * transactions (one aborted), run asynchronous transactions through a
 * thread mover, keep users in a PersistentMap, reopen and read it all.
 *
 *   deno run -A examples/object_store.ts [dir]     bun examples/object_store.ts [dir]
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { all, ThreadMover } from "@asyncpmem/asyncpmem";
import { ObjectPool, PersistentMap } from "@asyncpmem/asyncpmem/obj";

const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), "asyncpmem-"));
const path = join(dir, "app.pool");
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

{
  using mover = new ThreadMover({ threads: 2 });
  using pool = ObjectPool.create(path, {
    size: 32 << 20,
    layout: "example",
    mover,
  });
  // root: [head of a list u64, count u64]
  const root = pool.root(16);
  // a node: [next u64, text...]
  const push = (text: string) =>
    pool.tx((tx) => {
      const bytes = enc(text);
      const node = tx.alloc(8 + bytes.length);
      tx.setU64(node, 0, tx.getU64(root, 0));
      tx.write(node, 8, bytes);
      tx.setU64(root, 0, node.offset);
      tx.setU64(root, 8, tx.getU64(root, 8) + 1);
    });
  push("first");
  push("second");
  try {
    pool.tx((tx) => {
      tx.setU64(root, 8, 999);
      throw new Error("changed my mind");
    });
  } catch {
    // nothing of it happened
  }
  // asynchronous transactions: started together, one persist, one mover batch
  await all(["third", "fourth", "fifth"].map((text) =>
    pool.txAsync((tx) => {
      const bytes = enc(text);
      const node = tx.alloc(8 + bytes.length);
      tx.setU64(node, 0, tx.getU64(root, 0));
      tx.write(node, 8, bytes);
      tx.setU64(root, 0, node.offset);
      tx.setU64(root, 8, tx.getU64(root, 8) + 1);
    })
  ));
  using users = PersistentMap.open(pool, "users");
  users.set("ada", "lovelace");
  await users.setAsync("alan", "turing");
  await users.batch([{ set: ["grace", "hopper"] }, { delete: "alan" }]);
}

{
  using pool = ObjectPool.open(path, { layout: "example" });
  const root = pool.root(16);
  const texts: string[] = [];
  for (let at = pool.getU64(root, 0); at !== 0;) {
    const node = pool.object(at);
    texts.push(dec(pool.read(node, 8)));
    at = pool.getU64(node, 0);
  }
  using users = PersistentMap.open(pool, "users");
  console.log(`list of ${pool.getU64(root, 8)}: ${texts.join(" ")}`);
  console.log(
    `users: ${[...users.keys()].sort().join(", ")} (${users.size})`,
  );
  console.log(`reopened: ${JSON.stringify(pool.stats().heap.objects)} objects`);
}
if (process.argv[2] === undefined) rmSync(dir, { recursive: true });
