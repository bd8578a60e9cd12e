// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Recovery in the corners the crash sweep rarely reaches: stale entries
// behind a cut, a reused region's old space, and frees and truncations
// that remove timestamps the settled watermark had not passed yet.
import { readFileSync, writeFileSync } from "node:fs";
import { PmemError } from "../errors/mod.ts";
import { LogStream, type Region } from "../stream/mod.ts";
import { assert, patch, runScript, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function texts(s: LogStream, r: Region): string[] {
  return [...s.entries(r)].map((e) => dec(e.data));
}

/** The file offset of an entry's header, from its data view. */
function headerAt(data: Uint8Array): number {
  return data.byteOffset - 16;
}

test("an intact stale entry behind a cut never comes back after new appends", () => {
  const path = tempPath();
  let b: number;
  {
    using s = LogStream.create(path, { size: 2 * MiB });
    const r = s.allocateRegion(64 << 10);
    s.append(r, enc("A"));
    s.append(r, enc("B-twelve-by"));
    s.append(r, enc("C-twelve-by"));
    b = headerAt([...s.entries(r)][1].data);
  }
  // B torn, and W back at 0, as a crash before either was settled
  patch(path, b + 16, enc("x"));
  patch(path, 64, new Uint8Array(8));
  {
    using s = LogStream.open(path);
    const [r] = s.regions();
    assert.deepEqual(texts(s, r), ["A"]);
    // the same size as B: it lands where B was, right before stale C
    const x = s.append(r, enc("X-twelve-by"));
    assert.ok(x > 3, `timestamps restart above every stale one (${x})`);
  }
  using s = LogStream.open(path);
  assert.equal(s.recovery.wrote, false);
  assert.deepEqual(texts(s, s.regions()[0]), ["A", "X-twelve-by"]);
});

test("a region allocated over a freed one's space starts empty, also after a reopen", () => {
  const path = tempPath();
  {
    using s = LogStream.create(path, { size: 2 * MiB });
    const a = s.allocateRegion(8192);
    for (let i = 0; i < 10; i++) s.append(a, enc(`old ${i}`));
    s.freeRegion(a);
    const b = s.allocateRegion(8192);
    assert.equal(b.id, a.id);
    assert.deepEqual(texts(s, b), []);
  }
  using s = LogStream.open(path);
  const [b] = s.regions();
  assert.deepEqual(texts(s, b), []);
  s.append(b, enc("new"));
  assert.deepEqual(texts(s, b), ["new"]);
});

for (const removal of ["freeRegion(b)", "truncate(b, s.committedTimestamp)"]) {
  test(`\`${removal.split("(")[0]}()\` before a crash leaves no gap that hides later entries`, () => {
    const path = tempPath();
    // the child ends by SIGKILL: no close settles anything
    const child = runScript(`
import process from "node:process";
import { LogStream } from "@root/stream/mod.ts";
const s = LogStream.create(${JSON.stringify(path)}, { size: ${2 * MiB} });
const a = s.allocateRegion(8192);
const b = s.allocateRegion(8192);
const t = (x) => new TextEncoder().encode(x);
s.append(a, t("a1"));
s.append(b, t("b1"));
s.append(a, t("a2"));
s.${removal};
s.append(a, t("a3"));
console.log("done");
process.kill(process.pid, "SIGKILL");
`);
    assert.equal(child.signal, "SIGKILL", child.stderr);
    assert.match(child.stdout, /done/);
    using s = LogStream.open(path);
    assert.equal(s.recovery.wrote, true, "it was not closed");
    const regions = s.regions();
    assert.deepEqual(texts(s, regions[0]), ["a1", "a2", "a3"]);
    if (removal.startsWith("free")) {
      assert.deepEqual(regions.map((r) => r.id), [0]);
    } else assert.deepEqual(texts(s, regions[1]), []);
  });
}

test("iteration never writes: a stream read to its end leaves the file as it was", () => {
  const path = tempPath();
  {
    using s = LogStream.create(path, { size: 2 * MiB });
    const r = s.allocateRegion(8192);
    for (let i = 0; i < 50; i++) s.append(r, enc(`entry ${i}`));
  }
  patch(path, 64, new Uint8Array(8)); // recovery will have work to do
  using s = LogStream.open(path);
  const after = readFileSync(path);
  for (const r of s.regions()) for (const _ of s.entries(r));
  assert.deepEqual(readFileSync(path), after);
});

test("a wrapped region truncated to empty shows no stale entry of its last pass", async () => {
  const path = tempPath();
  {
    using s = LogStream.create(path, { size: 2 * MiB, blockSize: 8192 });
    const r = s.allocateRegion(8192);
    const entry = (i: number) => new Uint8Array(1000).fill(i);
    // pass 1: eight 1016-byte entries from 0; pass 2 (after padding to the
    // end) starts at 0 again, so its entries end where pass 1's began
    for (let i = 0; i < 8; i++) await s.appendAsync(r, entry(i));
    s.truncate(r, s.committedTimestamp);
    for (let i = 0; i < 3; i++) await s.appendAsync(r, entry(10 + i));
    assert.equal([...s.entries(r)].length, 3);
    s.truncate(r, s.committedTimestamp);
    assert.deepEqual([...s.entries(r)], []);
  }
  using s = LogStream.open(path);
  assert.deepEqual([...s.entries(s.regions()[0])], []);
});

test("a damaged durable entry is refused at open, naming it, and the file is left alone", () => {
  const path = tempPath();
  let at: number[];
  {
    using s = LogStream.create(path, { size: 2 * MiB });
    const r = s.allocateRegion(8192);
    for (let i = 0; i < 5; i++) s.append(r, enc(`entry ${i}`));
    at = [...s.entries(r)].map((e) => headerAt(e.data));
  }
  // closed cleanly: W = 5, so every entry is durable
  const good = readFileSync(path);
  const cases: [number, Uint8Array, RegExp][] = [
    // the first entry's CRC
    [
      at[0],
      new Uint8Array([0xff, 0xff, 0xff, 0xff]),
      new RegExp(
        `region 0 is corrupt: the entry at file offset ${
          at[0]
        } \\(timestamp 1, at or below the settled timestamp 5, so durable\\) is damaged: its CRC does not match`,
      ),
    ],
    // a middle entry's data
    [
      at[2] + 16,
      enc("X"),
      /file offset \d+ \(timestamp 3,.*CRC does not match/,
    ],
    // a middle entry's length
    [at[3] + 6, new Uint8Array([0x7f]), /timestamp 4,.*length \d+ overruns/],
  ];
  for (const [offset, bytes, want] of cases) {
    writeFileSync(path, good);
    patch(path, offset, bytes);
    const damaged = readFileSync(path);
    assert.throws(
      () => LogStream.open(path),
      (e) => e instanceof PmemError && e.code === -22 && want.test(e.message),
      `patch at ${offset}`,
    );
    assert.throws(() => LogStream.inspect(path), want);
    assert.deepEqual(readFileSync(path), damaged, "nothing was written");
  }
  // the same damage above W (as a crash leaves it: W not yet moved) is a
  // torn entry: cut there, the entries before it kept
  writeFileSync(path, good);
  patch(path, at[2] + 16, enc("X"));
  patch(path, 64, new Uint8Array(8));
  using s = LogStream.open(path);
  assert.equal(s.recovery.cut, 1);
  assert.deepEqual(texts(s, s.regions()[0]), ["entry 0", "entry 1"]);
});
