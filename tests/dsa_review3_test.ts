// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The DSA path, reviewed: the test portal and the WQ's bookkeeping.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { native } from "../ffi/lib.ts";
import { CompletionDevice } from "../mover/_device.ts";
import { ShimCode } from "../errors/mod.ts";
import {
  DsaDescriptor,
  DsaFlag,
  DsaOpcode,
  DsaStatus,
} from "../mover/dsa_format.ts";
import { assert, ROOT, tempDir, test } from "./_harness.ts";
import { waitRecord } from "./_device.ts";
import { requires } from "./_requires.ts";

/** `ap_dsa_open_test`'s kind and flag (c/asyncpmem.h). */
const DEDICATED = 1;
const SLOW_CLAIM = 2;
const EAGAIN = -11;

/** A WQ's counter `i` (see ap_dsa_counters; 3 is drops). */
function counter(dev: CompletionDevice, i: number): number {
  const out = new Float64Array(8);
  assert.equal(native.ap_dsa_counters(dev.handle("test"), out, 8), 8);
  return out[i];
}

// Bug: a dedicated test portal now and then dropped a descriptor
// (counters said drops: 1 or 2) and its operation never completed,
// though the client never had more descriptors out than the WQ's size.
// Its engines move what the client stored into the software device's
// ring, which frees a slot only after the engine that claimed the slot's
// descriptor has copied it out: an engine preempted in between (2 cores,
// 8 engines, WQ of 2: about once in 50 000 copies) kept its slot while
// another engine ran the rest of the ring, the client got the credits
// back and stored more, and the ring refused the one for that slot.
// That descriptor was already dispatched, so a WQ would have taken it;
// the portal counted a drop. AP_DSA_TEST_SLOW_CLAIM stalls an engine
// there for 20 ms, so it happens every time.
test("a dedicated test portal drops nothing while an engine is slow to release the slot it claimed", () => {
  const dev = new CompletionDevice(
    "DsaMover",
    (cell) =>
      native.ap_dsa_open_test(
        cell,
        DEDICATED,
        2,
        0,
        4096,
        2,
        16,
        1,
        SLOW_CLAIM,
      ),
  );
  try {
    const h = dev.handle("test");
    for (let rec = 0; rec < 12; rec++) {
      for (;;) {
        const seq = dev.sequence();
        const rc = native.ap_dev_submit(
          h,
          rec,
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
        if (rc === 0) break;
        assert.equal(rc, EAGAIN); // no credit: wait for a completion
        dev.block(seq, 100);
      }
    }
    for (let rec = 0; rec < 12; rec++) {
      assert.equal(waitRecord(dev, rec), DsaStatus.SUCCESS, `record ${rec}`);
    }
    assert.equal(counter(dev, 3), 0, "drops");
  } finally {
    dev.close();
  }
});

// Bug: on a CPU without MOVDIR64B (AMD before Zen 5, Intel servers before
// Sapphire Rapids) -- or any non-x86 CPU -- a dedicated or shared test
// portal killed the process with SIGILL at its first descriptor (on
// other CPUs than x86 it stored nothing, and every operation hung). Its
// client stored descriptors into the portal page with MOVDIR64B
// unconditionally, though the testing entry point promises "written with
// MOVDIR64B where the CPU has it", and every mover test runs on a
// dedicated test portal. Valgrind's CPU has no MOVDIR64B (CPUID says so,
// and the instruction is SIGILL), so a C program run under it shows it.
test(
  "test portals work on a CPU without MOVDIR64B (a C program under valgrind)",
  () => {
    const bin = join(tempDir(), "dsa_portal_store");
    const build = join(ROOT, "c", "build");
    const cc = spawnSync("gcc", [
      "-Wall",
      "-Werror",
      "-o",
      bin,
      join(ROOT, "tests", "c", "dsa_portal_store.c"),
      `-L${build}`,
      "-lasyncpmem",
      `-Wl,-rpath,${build}`,
    ], { encoding: "utf8", timeout: 120_000 });
    assert.equal(cc.status, 0, cc.stderr);
    const r = spawnSync("valgrind", ["-q", bin], {
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.equal(r.signal, null, r.stderr);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, "ok\n");
  },
  { skip: requires("valgrind"), timeout: 150_000 },
);

// Bug: a raw descriptor without CRAV or RCR (flags 0, say) sent to a
// dedicated DSA WQ took one of its credits for good. Its NOOP completed
// without a record, as the device writes none unless asked (or on an
// error), and a WQ's watcher notices completions only by their records:
// the credit never came back, and neither did the record (pending to
// the end; close() then waited its 5 s for it and leaked the arena).
// Two such descriptors left a WQ of 2 refusing everything with EAGAIN.
// Now a WQ refuses a raw descriptor that does not ask for its record.
test("a DSA WQ refuses a raw descriptor that asks for no completion record", () => {
  const dev = new CompletionDevice(
    "DsaMover",
    (cell) => native.ap_dsa_open_test(cell, DEDICATED, 2, 0, 4096, 1, 4, 1, 0),
  );
  try {
    const h = dev.handle("test");
    const desc = new Uint8Array(DsaDescriptor.SIZE);
    const word = new DataView(desc.buffer);
    const refused: number[] = [];
    for (const flags of [0, DsaFlag.COMPLETION_ADDR_VALID]) {
      word.setUint32(4, (DsaOpcode.NOOP << 24) | flags, true);
      for (const rec of [0, 1]) {
        refused.push(native.ap_dev_submit_raw(h, rec, desc, 64));
      }
    }
    // and the credits are all there: a NOOP asking for its record runs
    const end = Date.now() + 2000;
    let rc: number;
    for (;;) {
      rc = native.ap_dev_submit(
        h,
        2,
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
      if (rc !== EAGAIN || Date.now() > end) break;
      dev.block(dev.sequence(), 20);
    }
    assert.equal(rc, 0, "no credit came back");
    assert.equal(waitRecord(dev, 2), DsaStatus.SUCCESS);
    assert.deepEqual(refused, new Array(4).fill(ShimCode.INVALID_ARG));
  } finally {
    dev.close();
  }
});
