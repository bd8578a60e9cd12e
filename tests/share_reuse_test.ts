// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The native side keeps the block of the share closed last for the next
// share of its size (share.c: a block pool's open no longer faults in a
// fresh megabyte each time): a share that gets it must still start zeroed.
import { writeFileSync } from "node:fs";
import { FileShare } from "../pmem2/file_share.ts";
import { assert, tempPath, test } from "./_harness.ts";

const SIZE = 1 << 20;

function newFile(name: string): string {
  const path = tempPath(name);
  writeFileSync(path, "");
  return path;
}

test("a share made after another of its size closed starts zeroed", () => {
  const first = newFile("first");
  const second = newFile("second");
  const a = FileShare.open(first, SIZE);
  const b = FileShare.open(first, SIZE);
  new Uint8Array(a.memory).fill(0xa5);
  assert.equal(b.close(), 1);
  assert.equal(a.close(), 0);
  for (let round = 0; round < 3; round++) {
    using c = FileShare.open(round % 2 === 0 ? second : first, SIZE);
    assert.equal(c.first, true);
    const bytes = new Uint8Array(c.memory);
    assert.equal(bytes.length, SIZE);
    assert.equal(bytes.findIndex((v) => v !== 0), -1);
    // its status words too: only its own open is live, and no open ended
    assert.equal(c.live(c.token), true);
    assert.equal(c.live(c.token + 1), false);
    assert.equal(c.endedOpens, 0);
    assert.equal(c.creatorEnded, false);
    bytes.fill(0xff);
  }
});

test("a share of another size made after one closed starts zeroed", () => {
  const a = FileShare.open(newFile("big"), SIZE);
  new Uint8Array(a.memory).fill(0x5a);
  a.close();
  using b = FileShare.open(newFile("small"), 4096);
  const bytes = new Uint8Array(b.memory);
  assert.equal(bytes.length, 4096);
  assert.equal(bytes.findIndex((v) => v !== 0), -1);
});
