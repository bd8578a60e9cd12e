// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Edges of the DSA path and the software device standing in for it,
 * found by a review against the reference (dsa.md) and <linux/idxd.h>:
 * each test exposed a bug, named in its comment.
 */
import { mapFile, ShimCode, ThreadMover, VdmFlags } from "../mod.ts";
import { native } from "../ffi/lib.ts";
import type { CompletionDevice } from "../mover/_device.ts";
import { dsaMoverDevice } from "../mover/dsa.ts";
import { listDsa } from "../mover/_dsa_discovery.ts";
import { DsaFlag, DsaOpcode } from "../mover/dsa_format.ts";
import { descriptorFlags, submit } from "../mover/_device_submit.ts";
import { openTestPortal, portalCounters } from "../testing/mod.ts";
import {
  FIXTURE_START,
  namespaceSkip,
  runInNamespace,
} from "./dsa_namespace.ts";
import { assert, tempPath, test } from "./_harness.ts";

/** Spin (bounded) until record `rec` is written, as a poller sees it. */
function spinRecord(dev: CompletionDevice, rec: number): number {
  const end = Date.now() + 10_000;
  for (;;) {
    const status = dev.status(rec);
    if (status !== 0) return status;
    if (Date.now() > end) throw new Error(`record ${rec} never completed`);
  }
}

// Bug: on a DSA WQ, the watcher settles a completed BATCH by reading its
// member list (dropping the members' mapping references) -- but
// JavaScript may see the batch's record first, and then reuses the list
// and fresh member records at once. The watcher then read the new list:
// it dropped the new members' references (a mapping could be unmapped
// under a descriptor in flight) and kept the old members' for good (their
// records refused all work as "still in use", their mapping never
// unmapped). Cause: only a batch's own record was marked pending; its
// member records and its list were not, so nothing made a reuse wait for
// the watcher's (or its own) reap.
test("a batch list and member records reused before the watcher settled the batch", () => {
  using dsa = openTestPortal({ engines: 1 });
  const dev = dsaMoverDevice(dsa);
  const h = dev.handle("test");
  using map = mapFile(tempPath(), { size: 4 << 20 });
  const big = map.view(0, 2 << 20);
  const small = map.view(3 << 20, 4096);
  const fill = (v: Uint8Array, rec: number) =>
    [
      rec,
      DsaOpcode.MEMFILL,
      0,
      v,
      v.byteLength,
      0,
      v,
      v.byteLength,
      0,
      v.byteLength,
      1,
    ] as const;
  /** Until the watcher (or a submitter) settled every completion. */
  const settled = () => {
    for (let t = 0; t < 500; t++) {
      const c = portalCounters(dsa);
      if (c.reaped + c.reapedInline >= c.sent) return;
      dev.block(dev.sequence(), 10);
    }
    throw new Error("completions never settled");
  };
  const list = dev.acquireList();
  for (let i = 0; i < 100; i++) {
    const [batch, m0, m1, next] = [0, 1, 2, 3].map(() => dev.acquireRecord({}));
    // members over a mapping: each holds a reference on it
    assert.equal(
      native.ap_dev_batch_set(
        h,
        list,
        0,
        ...fill(big.subarray(0, 1 << 20), m0),
      ),
      0,
      `iteration ${i}: member 0's record is free`,
    );
    assert.equal(
      native.ap_dev_batch_set(h, list, 1, ...fill(big.subarray(1 << 20), m1)),
      0,
      `iteration ${i}: member 1's record is free`,
    );
    assert.equal(native.ap_dev_batch_submit(h, batch, list, 2), 0);
    spinRecord(dev, batch); // seen before the watcher, often
    // the list is JavaScript's again: a new member goes into it
    assert.equal(native.ap_dev_batch_set(h, list, 0, ...fill(small, next)), 0);
    settled();
    // the new member still holds its reference: its record is in use
    assert.equal(
      native.ap_dev_submit(h, ...fill(small, next)),
      ShimCode.BUSY,
      `iteration ${i}: the new member's reference was dropped`,
    );
    native.ap_dev_release(h, next);
    for (const r of [batch, m0, m1, next]) dev.releaseRecord(r);
  }
  dev.releaseList(list);
});

// Bug: a mover made with `batchLists: 0` (an accepted option) never
// finished a batch: runBatch built a BATCH future, which found no list to
// take and waited, NOT_STARTED, for one to be given back -- forever.
// Cause: the offload checked maxBatch and the records, not the lists.
test("a mover without batch lists runs batches as single descriptors", async () => {
  for (
    const mover of [
      new ThreadMover({ threads: 1, inlineThreshold: 0, batchLists: 0 }),
      openTestPortal({ batchLists: 0 }),
    ]
  ) {
    using m = mover;
    const a = new Uint8Array(8192);
    const b = new Uint8Array(8192);
    const f = m.batch([
      { op: "memset", dst: a, value: 1 },
      { op: "memset", dst: b, value: 2 },
    ]);
    const end = Date.now() + 10_000;
    while (f.poll() !== "complete") {
      assert.ok(Date.now() < end, `${m.name}: the batch never completed`);
      await new Promise((r) => setTimeout(r, 1));
    }
    assert.deepEqual([a[0], a[8191], b[0], b[8191]], [1, 1, 2, 2], m.name);
  }
});

/** What DsaMover makes of the fixture tree below, as JSON. */
const PROBE = `
import { DsaMover } from "@root/mod.ts";
const out = { opCap: DsaMover.devices().map((d) => d.opCap) };
for (const wq of ["wq0.0", "wq0.1", "wq0.2"]) {
  try {
    const m = DsaMover.open({ wq });
    out[wq] = { maxBatch: m.info.maxBatch, queueSize: m.info.queueSize,
      maxTransfer: m.info.maxTransfer };
    m.close();
  } catch (e) { out[wq] = e.name + ": " + e.message; }
}
console.log(JSON.stringify(out));
`;

/**
 * In a private mount namespace: a tmpfs over /sys/bus with one DSA device
 * whose OPCAP reads as kernels 5.13 to 6.2 wrote it, and three dedicated
 * user WQs -- wq0.0 whose op_config lacks BATCH, wq0.1 without a size
 * attribute, wq0.2 whose op_config lacks MEMMOVE -- and a tmpfs /dev
 * whose /dev/dsa/wq0.N are plain files: open() maps one as its portal
 * (nothing is ever submitted), so what it opened with shows.
 */
const FIXTURE = `${FIXTURE_START}
for q in 0 1 2; do truncate -s 4096 /dev/dsa/wq0.$q; done
D=/sys/bus/dsa/devices/dsa0
dev_attrs $D 0
w "$D/op_cap" "0x1003f03ff 0x0 0x0 0x0"
for q in 0 1 2; do
  for kv in state=enabled size=16 max_batch_size=32 \\
      max_transfer_size=2097152 block_on_fault=0 threshold=0 priority=10 \\
      group_id=0 name=app cdev_minor=$q mode=dedicated type=user; do
    w "$D/wq0.$q/\${kv%%=*}" "\${kv#*=}"
  done
  ln -s dsa0/wq0.$q /sys/bus/dsa/devices/wq0.$q # as sysfs links them
done
G=00000000,00000000,00000000,00000000,00000000,00000000,00000001
w "$D/wq0.0/op_config" "$G,003f03fd"
rm "$D/wq0.1/size"
w "$D/wq0.2/op_config" "$G,003f03f7"
exec "$@"
`;

function fixtureSkip(): string {
  const why = namespaceSkip();
  if (why !== "") return why;
  if (!listDsa().cpu.movdir64b) {
    return "no MOVDIR64B: open() would use write(2)";
  }
  return "";
}

/** Run `probe` in the fixture's namespace; its JSON output. */
function inFixture(probe: string, fixture = FIXTURE): unknown {
  const r = runInNamespace(fixture, probe);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

// Bug: discovery misread what sysfs and libaccel-config say. OPCAP as
// kernels 5.13 to 6.2 write it ("0x1003f03ff 0x0 0x0 0x0", four 64-bit
// words, least significant first) was read as a bitmap's 32-bit groups,
// most significant first: opCap "0x0". A WQ whose op_config (DSA 2.0)
// lacks BATCH was opened with its maxBatch, so every batch() failed with
// the WQ's BAD_OPCODE; one lacking MEMMOVE was opened at all (the
// reference: such a WQ is not used). A WQ attribute libaccel-config
// cannot read comes back as -errno in an unsigned getter: a missing size
// read as 2^64 - 2, and the WQ was opened with 4096 credits -- a
// dedicated WQ of 16 then drops descriptors.
test(
  "discovery reads old OPCAP, op_config and missing attributes right",
  () => {
    const out = inFixture(PROBE) as Record<string, string>;
    assert.deepEqual(out.opCap, ["0x1003f03ff"]);
    assert.deepEqual(out["wq0.0"], {
      maxBatch: 0,
      queueSize: 16,
      maxTransfer: 2097152,
    });
    assert.match(
      out["wq0.1"],
      /^NotSupportedError: .*wq0\.1 has no usable size/,
    );
    assert.match(
      out["wq0.2"],
      /^NotSupportedError: .*wq0\.2 does not offer MEMMOVE \(operations 0x1003f03f7\)/,
    );
  },
  { skip: fixtureSkip(), timeout: 90_000 },
);

/** Opens and closes DsaMovers on the fixture's wq0.0: VmLck after each. */
const LOCK_PROBE = `
import { DsaMover } from "@root/mod.ts";
import { readFileSync } from "node:fs";
const locked = () =>
  Number(readFileSync("/proc/self/status", "utf8").match(/VmLck:\\s+(\\d+)/)[1]);
const out = [locked()];
for (let i = 0; i < 4; i++) {
  DsaMover.open({ wq: "wq0.0", records: 64 + i * 200 }).close();
  out.push(locked());
}
console.log(JSON.stringify(out));
`;

// Bug: every DsaMover.open() mlock()s its record arena (a record the
// device cannot write is lost on DSA 1.0) and close() freed it still
// locked: a small arena lies in the heap, so its pages stayed locked
// after close, and each open/close locked more (VmLck grew; past
// RLIMIT_MEMLOCK, later opens silently ran with unlocked records).
// Cause: nothing munlock()ed the arena before freeing it.
test("closing a DsaMover unlocks its record arena", () => {
  const locked = inFixture(LOCK_PROBE) as number[];
  assert.deepEqual(locked, locked.map(() => locked[0]));
}, { skip: fixtureSkip(), timeout: 90_000 });

// Bug: a durable write (VdmFlags.DURABLE: DRDBK) also set CC=1, asking
// the device to leave the destination in the LLC, which an ADR platform
// does not make durable; the readback then proves nothing about memory.
test("a durable DSA write asks for readback and no cache allocation", () => {
  const op = (flags: number, kind: "memcpy" | "memset" | "flush") => ({
    op: kind,
    dst: new Uint8Array(64),
    dstOffset: 0,
    src: kind === "memcpy" ? new Uint8Array(64) : undefined,
    srcOffset: 0,
    value: 0,
    length: 64,
    flags,
  });
  for (const kind of ["memcpy", "memset"] as const) {
    const durable = descriptorFlags(op(VdmFlags.DURABLE, kind));
    assert.equal(durable & DsaFlag.DEST_READBACK, DsaFlag.DEST_READBACK);
    assert.equal(durable & DsaFlag.CACHE_CONTROL, 0, `${kind}: CC with DRDBK`);
    // a plain write keeps the cache hint; NO_CACHE_HINT drops it
    assert.equal(descriptorFlags(op(0, kind)), DsaFlag.CACHE_CONTROL);
    assert.equal(descriptorFlags(op(VdmFlags.NO_CACHE_HINT, kind)), 0);
  }
  assert.equal(descriptorFlags(op(VdmFlags.DURABLE, "flush")), 0);
});

/**
 * The fixture with wq0.0's character device a directory (its open fails,
 * as a dedicated WQ another process holds answers EBUSY) and wq0.1 given
 * its size back: two usable dedicated WQs, the first unopenable.
 */
const BUSY_FIRST_FIXTURE = FIXTURE.replace(
  'exec "$@"',
  'rm /dev/dsa/wq0.0; mkdir /dev/dsa/wq0.0; w "$D/wq0.1/size" 16\nexec "$@"',
);

const FALLBACK_PROBE = `
import { DsaMover } from "@root/mod.ts";
const out = {};
try {
  DsaMover.open({ wq: "wq0.0" }).close();
} catch (e) { out.named = e.name; }
const m = DsaMover.open();
out.opened = m.queue.name;
m.close();
console.log(JSON.stringify(out));
`;

// Bug: open() without a named WQ tried only the first usable one
// (dedicated before shared), so a dedicated WQ another process holds
// (EBUSY) made it fail although the next WQ would open.
test(
  "DsaMover.open() goes on to the next WQ when the first will not open",
  () => {
    const out = inFixture(FALLBACK_PROBE, BUSY_FIRST_FIXTURE) as Record<
      string,
      string
    >;
    assert.deepEqual(out, { named: "NotSupportedError", opened: "wq0.1" });
  },
  { skip: fixtureSkip(), timeout: 90_000 },
);

// Bug: on a device without GENCAP bit 1 (no overlapping copies), a lone
// overlapping memmove was made on the CPU, but one inside a batch became
// a BATCH member, which such a device fails with status 0x16 -- and the
// whole batch with it. The test portal's engines refuse such copies as
// the hardware does (the raw descriptor below), so the batch fails
// unless the mover keeps them out of BATCH descriptors.
test("overlapping copies on a device without overlap support (GENCAP bit 1 clear), alone and in a batch", async () => {
  assert.throws(
    () => openTestPortal({ overlappingCopies: 0 as unknown as boolean }),
    TypeError,
  );
  using dsa = openTestPortal({ overlappingCopies: false, engines: 1 });
  const dev = dsaMoverDevice(dsa);
  assert.equal(dsa.info.genCap & 2, 0, "GENCAP bit 1 is clear");
  // the device itself refuses an overlapping MEMMOVE: status 0x16
  const raw = new Uint8Array(8192);
  const rec = dev.acquireRecord({});
  const op = {
    op: "memmove" as const,
    dst: raw,
    dstOffset: 64,
    src: raw,
    srcOffset: 0,
    length: 4096,
    flags: 0,
    value: 0,
  };
  assert.equal(submit(dev, rec, op, descriptorFlags(op), 0, 4096), 0);
  assert.equal(spinRecord(dev, rec) & 0x3f, 0x16, "OVERLAP_BUFFERS");
  native.ap_dev_release(dev.handle("test"), rec);
  dev.releaseRecord(rec);

  const pattern = (n: number, k: number) =>
    new Uint8Array(n).map((_, i) => (i * k + 7) & 255);
  const up = pattern(12288, 3); // copied upwards: dst above src
  const down = pattern(12288, 5); // copied downwards: dst below src
  const src = pattern(4096, 11);
  const plain = new Uint8Array(4096);
  const want = [up.slice(), down.slice()];
  want[0].copyWithin(64, 0, 8192);
  want[1].copyWithin(0, 100, 8292);
  await dsa.batch([
    { op: "memmove", dst: up.subarray(64), src: up.subarray(0, 8192) },
    { op: "memcpy", dst: plain, src },
    { op: "memmove", dst: down, src: down.subarray(100, 8292) },
  ]);
  assert.deepEqual(up, want[0]);
  assert.deepEqual(down, want[1]);
  assert.deepEqual(plain, src);
  // alone, as before
  const lone = pattern(8192, 13);
  const loneWant = lone.slice().copyWithin(1, 0, 4096);
  await dsa.memmove(lone.subarray(1), lone.subarray(0, 4096));
  assert.deepEqual(lone, loneWant);
});

// Bug (found by the crash-tools review): openTestPortal(null) read a
// property of null (an engine TypeError naming 'mode'), where every other
// mover's options are checked as an object first.
test("openTestPortal() refuses options that are no object", () => {
  for (const bad of [null, 1, "dedicated"]) {
    assert.throws(
      () => openTestPortal(bad as never),
      (e) =>
        e instanceof TypeError && /options must be an object/.test(e.message),
      String(bad),
    );
  }
});
