// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Errors of the stores' free functions and static tools as a new user
// meets them: each names the call that failed, as the methods do.
import { join } from "node:path";
import { ClosedError, PmemError } from "../errors/mod.ts";
import { checkObjectPool, ObjectPool } from "../obj/mod.ts";
import { LogStream } from "../stream/mod.ts";
import { assert, tempDir, tempPath, test } from "./_harness.ts";

test("LogStream.inspect of a missing file fails with a PmemError naming inspect", () => {
  const path = join(tempDir(), "missing.stream");
  assert.throws(
    () => LogStream.inspect(path),
    (e) =>
      e instanceof PmemError && e.code === -2 && e.op === "inspect" &&
      e.message.startsWith("inspect: ") && e.message.includes(path),
  );
});

test("checkObjectPool of a closed pool, or of no pool, names check", () => {
  const pool = ObjectPool.create(tempPath(), {
    size: 8 << 20,
    layout: "t",
  });
  pool.close();
  assert.throws(
    () => checkObjectPool(pool),
    (e) =>
      e instanceof ClosedError && e.op === "check" &&
      e.message.startsWith("check: "),
  );
  assert.throws(
    () => checkObjectPool({} as ObjectPool),
    /^TypeError: Cannot check pool: pool must be an ObjectPool$/,
  );
});
