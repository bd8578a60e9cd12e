// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The DSA path, reviewed (fifth pass): partial completions, the write(2)
// path of a shared WQ, and what the records say.
import { mapFile, ThreadMover, VdmFlags } from "../mod.ts";
import { injectFault, writeBacks } from "../testing/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";

/**
 * The bytes of [from, to) that no durable note covers, as ranges: what a
 * crash could lose though the operation said it was durable.
 */
function notDurable(
  notes: { offset: number; length: number; kind: string }[],
  from: number,
  to: number,
): [number, number][] {
  const spans = notes
    .filter((n) => n.kind === "durable")
    .map((n) => [n.offset, n.offset + n.length])
    .sort((a, b) => a[0] - b[0]);
  const gaps: [number, number][] = [];
  let at = from;
  for (const [s, e] of spans) {
    if (s > at && at < to) gaps.push([at, Math.min(s, to)]);
    at = Math.max(at, e);
  }
  if (at < to) gaps.push([at, to]);
  return gaps;
}

// Bug: a durable copy (VdmFlags.DURABLE: the descriptor asks for
// destination readback) that the software device completed partially --
// a page fault part-way, status 0x03 -- left the bytes it had copied
// before the fault unpersisted. The engine wrote the record without making
// them durable, though DRDBK asks that whatever the descriptor wrote be
// durable before its record (reference dsa.md 6.3); the mover then
// resubmitted or finished only the remainder, which was persisted. A
// crash after the copy "completed durably" could lose its first part
// (the top part of a copy the device ran top-down). A fill was right:
// it persisted what it wrote before the fault.
test("a durable copy completed partially by the software device persists the part it copied", async () => {
  using mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
  using map = mapFile(tempPath(), { size: 1 << 20 });
  const src = new Uint8Array(65536).map((_, i) => (i * 7) & 255);
  for (const count of [1, 2]) { // resubmitted, then finished on the CPU
    const { count: before } = writeBacks(map);
    injectFault(mover, 10_000, { count });
    await mover.memcpy(map.view(0, 65536), src, VdmFlags.DURABLE);
    assert.deepEqual(map.view(0, 65536), src);
    assert.deepEqual(
      notDurable(writeBacks(map, before).notes, 0, 65536),
      [],
      `copy, ${count} fault(s)`,
    );
  }
  // overlapping upward: the device copies top-down, so the top is done
  const buf = map.view(100_000, 40_000);
  buf.set(src.subarray(0, 40_000));
  const ref = buf.slice();
  ref.copyWithin(100, 0, 30_000);
  const { count: before } = writeBacks(map);
  injectFault(mover, 10_000, { count: 2 });
  await mover.memmove(
    map.view(100_100, 30_000),
    map.view(100_000, 30_000),
    VdmFlags.DURABLE,
  );
  assert.deepEqual(buf, ref);
  assert.deepEqual(
    notDurable(writeBacks(map, before).notes, 100_100, 130_100),
    [],
    "descending copy",
  );
});
