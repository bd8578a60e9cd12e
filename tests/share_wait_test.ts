// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// A later open of a file's share waits for its first opener: both stores
// (blk/join.ts, stream/open.ts) wait through this one function.
import { PmemError } from "../errors/mod.ts";
import {
  SHARE_FAILED,
  SHARE_READY,
  SHARE_SETTING_UP,
  waitForFirstOpener,
} from "../pmem2/share_wait.ts";
import { assert, test } from "./_harness.ts";

test("a joining open waits while the first opener sets up, and goes on once it is ready", () => {
  const states = [SHARE_SETTING_UP, SHARE_SETTING_UP, SHARE_READY];
  let reads = 0;
  waitForFirstOpener(() => states[Math.min(reads++, 2)], "/p", "open", "x");
  assert.equal(reads, 3);
});

test("a joining open whose first opener failed gets EINVAL naming the file", () => {
  let reads = 0;
  assert.throws(
    () =>
      waitForFirstOpener(
        () => (reads++ < 2 ? SHARE_SETTING_UP : SHARE_FAILED),
        "/pool",
        "open",
        "x",
      ),
    (e: unknown) =>
      e instanceof PmemError && e.code === -22 && e.op === "open" &&
      e.message.includes(
        "cannot open '/pool': its first opener in this process failed",
      ),
  );
  assert.equal(reads, 3);
});
