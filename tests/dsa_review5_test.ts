// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The DSA path, reviewed (fifth pass): partial completions, the write(2)
// path of a shared WQ, and what the records say.
import { mapFile, PmemError, ThreadMover, VdmFlags } from "../mod.ts";
import { native } from "../ffi/lib.ts";
import { CompletionDevice } from "../mover/_device.ts";
import { threadMoverDevice } from "../mover/thread.ts";
import { dsaMoverDevice } from "../mover/dsa.ts";
import { DsaOpcode, DsaStatus } from "../mover/dsa_format.ts";
import { EAGAIN } from "../errors/errno.ts";
import { injectFault, openTestPortal, writeBacks } from "../testing/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";
import { submitDrain, waitRecord } from "./_device.ts";

/** `ap_dsa_open_test`'s kind and flag (c/asyncpmem.h). */
const WRITE = 3;
const SHARED_WRITE = 4;

/**
 * Submit 16 MEMMOVEs of 1 MiB to `dev`'s WQ at once, one per record, and
 * check that every one accepted copied its bytes; the submit answers, in
 * record order.
 */
function flood(dev: CompletionDevice, fill: number): number[] {
  const h = dev.handle("test");
  const src = new Uint8Array(1 << 20).fill(fill);
  const dsts = Array.from({ length: 16 }, () => new Uint8Array(1 << 20));
  const answers: number[] = [];
  // A round whose engine kept pace (the submitter preempted after each
  // submission on a loaded machine) refuses nothing: flood again, up to 20
  // rounds, so the tests see refusals without depending on the scheduler.
  for (let round = 0; round < 20; round++) {
    const roundAnswers: number[] = [];
    for (let rec = 0; rec < 16; rec++) {
      dsts[rec].fill(0);
      roundAnswers.push(native.ap_dev_submit(
        h,
        rec,
        DsaOpcode.MEMMOVE,
        0,
        dsts[rec],
        dsts[rec].byteLength,
        0,
        src,
        src.byteLength,
        0,
        src.byteLength,
        0,
      ));
    }
    roundAnswers.forEach((rc, rec) => {
      if (rc !== 0) return;
      assert.equal(waitRecord(dev, rec), DsaStatus.SUCCESS, `record ${rec}`);
      assert.deepEqual(dsts[rec], src);
    });
    answers.push(...roundAnswers);
    if (roundAnswers.some((rc) => rc !== 0)) break;
  }
  return answers;
}

/** A WQ's counter `i` (see ap_dsa_counters; 2 is busy give-ups). */
function counter(dev: CompletionDevice, i: number): number {
  const out = new Float64Array(8);
  assert.equal(native.ap_dsa_counters(dev.handle("test"), out, 8), 8);
  return out[i];
}

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

// Bug: on a shared WQ submitted to with write(2) -- the path every
// process without CAP_SYS_RAWIO takes since the CVE-2024-21823 fix -- a
// WQ full of this process's own descriptors answered -EBUSY ("others
// keep it full"), where ENQCMD into the mapped portal answers -EAGAIN
// (wait for one of ours to complete). The kernel's write(2) fails with
// EAGAIN once its ENQCMDS retries ran out, and the shim mapped that to
// -EBUSY whenever the WQ was shared: a mover with more operations in
// flight than the WQ holds counted each extra one busy, re-polled it at
// once, and finished it on the CPU after 16 such answers.
test("a shared WQ written with write(2) and full of our own descriptors says wait, not busy", () => {
  const dev = new CompletionDevice(
    "DsaMover",
    (cell) =>
      native.ap_dsa_open_test(
        cell,
        WRITE,
        2,
        0,
        1 << 20,
        1,
        16,
        1,
        SHARED_WRITE,
      ),
  );
  try {
    const h = dev.handle("test");
    const answers = flood(dev, 5);
    // 16 MiB into a WQ of 2 on one engine: some were refused, each with
    // "wait" -- ours were in flight every time
    assert.ok(answers.some((rc) => rc !== 0), `answers ${answers}`);
    assert.deepEqual(
      answers.filter((rc) => rc !== 0 && rc !== -EAGAIN),
      [],
      `answers ${answers}`,
    );
    assert.equal(counter(dev, 2), 0, "busy give-ups");
    // with nothing of ours in flight the WQ has room again
    const rc = native.ap_dev_submit(
      h,
      15,
      DsaOpcode.NOOP,
      0,
      null,
      0,
      0,
      null,
      0,
      0,
      0,
      0,
    );
    assert.equal(rc, 0);
    assert.equal(waitRecord(dev, 15), DsaStatus.SUCCESS);
  } finally {
    dev.close();
  }
});

// Bug: an operation whose record came back with a status <linux/idxd.h>
// defines but DsaStatus lacked failed naming it UNKNOWN: "completed with
// status 0x21 (UNKNOWN)" for HW_ERR_DRB, the hardware error of the
// destination readback every durable write asks for, and likewise
// TRAFFIC_CLASS_CONF (0x1e), DCAST_ERR (0x17), DR_ERANGE (0x15), the
// delta and DIF codes (0x07-0x09), INT_HANDLE_INVAL (0x19) and
// PFAULT_RDBA (0x1f).
test("a record's status is named as <linux/idxd.h> names it", async () => {
  using dsa = openTestPortal({ engines: 1 });
  const named: Record<number, string> = {
    0x07: "DR_OFFSET_NOINC",
    0x08: "DR_OFFSET_ERANGE",
    0x09: "DIF_ERR",
    0x15: "DR_ERANGE",
    0x17: "DCAST_ERR",
    0x19: "INT_HANDLE_INVAL",
    0x1e: "TRAFFIC_CLASS_CONF",
    0x1f: "PFAULT_RDBA",
    0x21: "HW_ERR_DRB",
  };
  for (const [status, name] of Object.entries(named)) {
    const hex = Number(status).toString(16).padStart(2, "0");
    injectFault(dsa, 0, { status: Number(status) });
    const e = await dsa.memset(new Uint8Array(8192), 1, VdmFlags.DURABLE)
      .then(() => null, (e) => e);
    assert.ok(e instanceof PmemError, hex);
    assert.equal(e.op, "memset");
    assert.match(e.message, new RegExp(`status 0x${hex} \\(${name}\\)`));
  }
});

// Bug: a read fault the software device reported on a copy (status 0x03
// without bit 7: the device could not read the source) carried the
// destination's address as fault_addr: dst + bytes_completed, where DSA
// reports the address it faulted on, in the source. The mover touches
// the page at fault_addr before it resubmits the remainder, so it
// touched a destination page and left the source page unresolved (on
// hardware the remainder faulted again and went to the CPU). A write
// fault (bit 7) was right: it faults on the destination.
test("a read fault on a copy reports the source address it faulted on", () => {
  using mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
  const dev = threadMoverDevice(mover);
  const h = dev.handle("test");
  const buf = new Uint8Array(65536);
  const n = 30000;
  const at = 5000;
  const cases = [
    // what, dst and src offsets in buf, write fault, where it faulted
    // (the other candidate: the same byte of the other range)
    ["ascending read", 32768, 0, false, at, 32768 + at],
    ["ascending write", 32768, 0, true, 32768 + at, at],
    // overlapping upward: copied top-down, the fault below the done top
    ["descending read", 100, 0, false, n - at - 1, 100 + n - at - 1],
    ["descending write", 100, 0, true, 100 + n - at - 1, n - at - 1],
  ] as const;
  for (const [what, dOff, sOff, write, faulted, other] of cases) {
    const rec = dev.acquireRecord({});
    injectFault(mover, at, { write });
    assert.equal(
      native.ap_dev_submit(
        h,
        rec,
        DsaOpcode.MEMMOVE,
        0,
        buf,
        buf.byteLength,
        dOff,
        buf,
        buf.byteLength,
        sOff,
        n,
        0,
      ),
      0,
    );
    assert.equal(waitRecord(dev, rec) & 0x7f, DsaStatus.PAGE_FAULT_NOBOF);
    assert.equal(dev.bytesCompleted(rec), at, what);
    // ap_dev_touch answers 1 only for a fault_addr inside the range given
    const touches = (off: number) =>
      native.ap_dev_touch(h, rec, buf.subarray(off, off + 1), 1, null, 0);
    assert.deepEqual([touches(faulted), touches(other)], [1, 0], what);
    dev.releaseRecord(rec);
  }
});

test("a shared WQ full of our own descriptors answers wait after one ENQCMD retry, without spinning its backoff", () => {
  // ENQCMD into a shared WQ that our own descriptors fill was retried six
  // times with a doubling PAUSE backoff (about 4 000 PAUSEs) before the
  // answer "wait": the JS thread spun for every refused submission while
  // only a completion of ours could make room (400 copies into a WQ of 2
  // drew about 6 000 retries). With ours in flight, the first refusal
  // now answers "wait".
  const SWQ = 2;
  const dev = new CompletionDevice(
    "DsaMover",
    (cell) => native.ap_dsa_open_test(cell, SWQ, 2, 0, 1 << 20, 1, 16, 1, 0),
  );
  try {
    const answers = flood(dev, 6);
    const refused = answers.filter((rc) => rc !== 0);
    assert.ok(refused.length > 0, `answers ${answers}`);
    assert.deepEqual(refused.filter((rc) => rc !== -EAGAIN), [], `${answers}`);
    // one retry answer per refusal (ENQCMD's first "retry"), not six
    assert.ok(
      counter(dev, 1) <= refused.length,
      `${counter(dev, 1)} retries for ${refused.length} refusals`,
    );
    assert.equal(counter(dev, 2), 0, "busy give-ups");
  } finally {
    dev.close();
  }
});

test("a record failed with PAGE_FAULT_IR or TRANSLATION_FAIL is a PmemError EFAULT, other failures EIO", async () => {
  // An address the IOMMU could not translate (0x22), or a fault with BOF
  // the OS could not resolve (0x04), is a bad address, not a device I/O
  // error: reported as EFAULT (as the DSA reference says), not retried.
  using dsa = openTestPortal({ engines: 1 });
  for (
    const [status, code] of [[0x04, -14], [0x22, -14], [0x21, -5], [0x10, -5]]
  ) {
    injectFault(dsa, 0, { status });
    const e = await dsa.memset(new Uint8Array(8192), 1).then(
      () => null,
      (e) => e,
    );
    assert.ok(e instanceof PmemError, `status ${status}`);
    assert.equal(e.code, code, `status ${status}`);
    assert.equal(e.errno, -code, `status ${status}`);
  }
});

// Bug: the test portal's engines moved the descriptors stored in its page
// into their ring slot by slot from slot 0, not in the order they were
// stored. Once the client's rotation had wrapped, descriptors stored
// later, in low slots, went ahead of earlier ones in high slots: a DRAIN
// completed while descriptors submitted before it were still pending,
// where a WQ's DRAIN waits for every one.
test("a test portal's DRAIN waits for every descriptor submitted before it, after the slots wrap", () => {
  using dsa = openTestPortal({
    mode: "dedicated",
    engines: 1,
    queueSize: 32,
    maxTransfer: 64 << 20,
  });
  const dev = dsaMoverDevice(dsa);
  const h = dev.handle("test");
  const small = new Uint8Array(64).fill(1);
  const smallDst = new Uint8Array(64);
  const copy = (rec: number, dst: Uint8Array, src: Uint8Array) =>
    native.ap_dev_submit(
      h,
      rec,
      DsaOpcode.MEMMOVE,
      0,
      dst,
      dst.byteLength,
      0,
      src,
      src.byteLength,
      0,
      src.byteLength,
      0,
    );
  // take the client's rotation to slot 40 of the page's 64, one at a time
  for (let i = 0; i < 40; i++) {
    assert.equal(copy(0, smallDst, small), 0);
    assert.equal(waitRecord(dev, 0), DsaStatus.SUCCESS);
  }
  // slot 40: a long copy keeps the one engine busy while slots 41..63 and
  // 0..2 fill, then the DRAIN goes to slot 3
  // (each copy long enough that those queued behind an early DRAIN are
  // still running when it completes; every array touched before)
  const big = new Uint8Array(64 << 20).fill(2);
  const bigDst = new Uint8Array(64 << 20).fill(0);
  const mid = new Uint8Array(4 << 20).fill(3);
  const dsts = Array.from(
    { length: 26 },
    () => new Uint8Array(4 << 20).fill(0),
  );
  assert.equal(copy(1, bigDst, big), 0);
  dsts.forEach((d, k) => assert.equal(copy(2 + k, d, mid), 0));
  const drain = 28;
  assert.equal(submitDrain(h, drain), 0);
  assert.equal(waitRecord(dev, drain), DsaStatus.SUCCESS);
  const pending = [];
  for (let rec = 1; rec < drain; rec++) {
    if (dev.status(rec) === 0) pending.push(rec);
  }
  assert.deepEqual(pending, [], "completed after the DRAIN");
  for (let rec = 1; rec < drain; rec++) {
    assert.equal(waitRecord(dev, rec), DsaStatus.SUCCESS, `record ${rec}`);
  }
});
