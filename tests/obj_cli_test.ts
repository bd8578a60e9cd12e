// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The CLI on object pools, run as a user runs it: `create`, `info` and `check`
// (read-only, or --repair), on a clean pool, on one whose log holds
// committed transactions, on a damaged one, and on libpmemobj's files.
import { spawnSync } from "node:child_process";
import { copyFileSync } from "node:fs";
import { ObjectPool, PersistentMap } from "../obj/mod.ts";
import { assert, patch, peek, tempPath, test } from "./_harness.ts";
import { requires } from "./_requires.ts";
import { cli, cliBatch } from "./cli_run.ts";

/** A pool with a root, objects and a map; `live` leaves its log unreplayed. */
function makePool(path: string, live?: string): void {
  using pool = ObjectPool.create(path, { size: 16 << 20, layout: "cli app" });
  const root = pool.root(64);
  using m = PersistentMap.open(pool, "users");
  for (let i = 0; i < 10; i++) m.set(`u${i}`, `name ${i}`);
  pool.tx((tx) => tx.setU64(root, 0, tx.alloc(100).offset));
  if (live !== undefined) {
    pool.flush();
    for (let i = 10; i < 15; i++) m.set(`u${i}`, `name ${i}`);
    copyFileSync(path, live); // as a process crash leaves it
  }
}

test("asyncpmem info and check describe an object pool without changing it", () => {
  const path = tempPath();
  makePool(path);
  const before = peek(path, 0, 1 << 20);
  const [info, infoJson, check] = cliBatch(
    ["info", path],
    ["info", "--json", path],
    ["check", path],
  );
  assert.equal(info.status, 0, info.stderr);
  assert.match(info.stdout, /^layout: +"cli app"$/m);
  assert.match(info.stdout, /^maps: +"users" \(10 keys\)$/m);
  const json = JSON.parse(infoJson.stdout);
  assert.equal(json.heap.objects, 1 + 1 + 1 + 1 + 1 + 10);
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /: consistent$/m);
  assert.deepEqual(peek(path, 0, 1 << 20), before);
});

test("asyncpmem check reports committed transactions to replay, and --repair writes them", () => {
  const path = tempPath();
  const copy = tempPath("copy");
  makePool(path, copy);
  const [first, check, second, repair, third] = cliBatch(
    ["info", "--json", copy],
    ["check", copy],
    ["info", "--json", copy],
    ["check", "--repair", copy],
    ["info", "--json", copy],
  );
  const info = JSON.parse(first.stdout);
  assert.ok(info.recovery.records > 0);
  assert.equal(info.maps[0].keys, 15);
  assert.equal(check.status, 0);
  assert.match(
    check.stdout,
    /committed log records to replay at the next open/,
  );
  // read-only: still to replay
  assert.ok(JSON.parse(second.stdout).recovery.records > 0);
  assert.match(repair.stdout, /replayed and checkpointed/);
  assert.equal(JSON.parse(third.stdout).recovery.records, 0);
});

test("asyncpmem check finds a damaged pool inconsistent (exit 1)", () => {
  const path = tempPath();
  makePool(path);
  // a chunk table entry with an unknown kind
  const head = peek(path, 48, 8);
  const table = Number(new DataView(head.buffer).getBigUint64(0, true));
  patch(path, table + 8 * 5, Uint8Array.of(9, 0, 0, 0));
  const r = cli("check", path);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /chunk table entry 5 is corrupt/);
});

test("asyncpmem create obj makes a pool that opens with its layout", () => {
  const path = tempPath();
  const [usage, made, again] = cliBatch(
    ["create", "obj", path, "--size", "16M"],
    [
      "create",
      "obj",
      path,
      "--size",
      "16M",
      "--layout",
      "made by cli",
      "--log-size",
      "2M",
    ],
    ["create", "obj", path, "--size", "16M", "--layout", "x"],
  );
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /--layout needs the pool's layout name/);
  assert.equal(made.status, 0, made.stderr);
  assert.match(made.stdout, /an object pool of 16 MiB, log 2 MiB/);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /exists already/);
  using pool = ObjectPool.open(path, { layout: "made by cli" });
  assert.deepEqual(
    [pool.stats().size, pool.stats().logSize],
    [16 << 20, 2 << 20],
  );
});

test("asyncpmem info names a libpmemobj pool as one it does not handle", () => {
  const path = tempPath();
  const made = spawnSync("pmempool", ["create", "obj", "--layout", "x", path]);
  assert.equal(made.status, 0, String(made.stderr));
  const r = cli("info", path);
  assert.equal(r.status, 2);
  assert.match(
    r.stderr,
    /is a pmemobj pool, which this command does not handle/,
  );
}, { skip: requires("pmempool") });

// Bug: that refusal went on "(it handles: blk, stream, log, obj)": a
// libpmemobj pool refused by a command that lists obj among its kinds,
// with nothing said of the difference (asyncpmem's object pools are a
// format of their own) or of what reads the file.
test(
  "asyncpmem names a libpmemobj pool as libpmemobj's, and what reads it",
  () => {
    const path = tempPath();
    const made = spawnSync("pmempool", [
      "create",
      "obj",
      "--layout",
      "x",
      path,
    ]);
    assert.equal(made.status, 0, String(made.stderr));
    const commands = ["info", "check"];
    const runs = cliBatch(...commands.map((command) => [command, path]));
    for (const [i, command] of commands.entries()) {
      const r = runs[i];
      assert.equal(r.status, 2, command);
      assert.match(
        r.stderr,
        /is a pmemobj pool, which this command does not handle/,
      );
      assert.match(r.stderr, /libpmemobj's format/, r.stderr);
      assert.match(r.stderr, /pmempool/, r.stderr);
      assert.doesNotMatch(r.stderr, /it handles: [^)]*obj/, r.stderr);
    }
  },
  { skip: requires("pmempool") },
);
