// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The native shim at its own boundary: the exported symbols, the checks it
// makes again after TypeScript, descriptor validation as a device does it,
// and the lifetime of mapping references held by device operations.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { mapFile, ShimCode, ThreadMover } from "../mod.ts";
import { REMOTE_SOURCES } from "../ffi/_loader.ts";
import { backend, native } from "../ffi/lib.ts";
import { SYMBOLS } from "../ffi/_symbols.ts";
import {
  DsaDescriptor,
  DsaFlag,
  DsaOpcode,
  DsaStatus,
} from "../mover/dsa_format.ts";
import { threadMoverDevice } from "../mover/thread.ts";
import { injectFault } from "../testing/mod.ts";
import { assert, ROOT, runScript, tempPath, test } from "./_harness.ts";
import { submitDrain, waitRecord } from "./_device.ts";

const LIB = join(ROOT, "c", "build", "libasyncpmem.so");

/** Whether this process still maps `path` (from /proc/self/maps). */
function mapped(path: string): boolean {
  return readFileSync("/proc/self/maps", "utf8").includes(path);
}

/** A device, one record of it, and its handle. */
function deviceOf(mover: ThreadMover) {
  const dev = threadMoverDevice(mover);
  return { dev, h: dev.handle("test"), rec: () => dev.acquireRecord({}) };
}

test("the shared library exports exactly the symbol table's functions", () => {
  const r = spawnSync("nm", ["-D", "--defined-only", LIB], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  const exported = r.stdout.split("\n").map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length === 3 && /^[TtWw]$/.test(f[1]))
    .map((f) => f[2]).sort();
  const table = [
    ...new Set(
      Object.entries(SYMBOLS).map(([k, d]) =>
        ("name" in d ? d.name : undefined) ?? k
      ),
    ),
  ].sort();
  assert.deepEqual(exported, table);
});

test("ShimCode agrees with the AP_E_* codes of c/asyncpmem.h", () => {
  const header = readFileSync(join(ROOT, "c", "asyncpmem.h"), "utf8");
  const codes = Object.fromEntries(
    [...header.matchAll(/#define AP_E_(\w+) \((-\d+)\)/g)].map((
      m,
    ) => [m[1], Number(m[2])]),
  );
  assert.deepEqual(codes, { ...ShimCode });
});

test("a remote import fetches every source file of c/", () => {
  const files = readdirSync(join(ROOT, "c")).filter((f) => /\.[ch]$/.test(f))
    .sort();
  assert.deepEqual([...REMOTE_SOURCES].sort(), files);
});

test("the shim checks every range against the byte length it is given", () => {
  const a = new Uint8Array(64);
  const b = new Uint8Array(64);
  // lengths that lie about the buffers: refused with AP_E_RANGE, no copy
  assert.equal(native.ap_cpu_copy(a, 64, 60, b, 64, 0, 8, 0), ShimCode.RANGE);
  assert.equal(native.ap_cpu_copy(a, 64, 0, b, 64, 60, 8, 0), ShimCode.RANGE);
  assert.equal(native.ap_cpu_copy(a, 64, 0, b, 64, 0, 65, 0), ShimCode.RANGE);
  assert.equal(native.ap_cpu_flush(a, 64, 32, 33), ShimCode.RANGE);
  assert.equal(native.ap_overlap(a, 64, 0, b, 8, 4, 8), ShimCode.RANGE);
  assert.equal(
    native.ap_cpu_copy(a, 64, 0, b, 64, 0, -1, 0),
    ShimCode.INVALID_ARG,
  );
  assert.equal(
    native.ap_cpu_copy(a, 64, 0.5, b, 64, 0, 1, 0),
    ShimCode.INVALID_ARG,
  );
  b.fill(7);
  assert.equal(native.ap_cpu_copy(a, 64, 56, b, 64, 0, 8, 0), 0);
  assert.deepEqual([...a.subarray(55)], [0, 7, 7, 7, 7, 7, 7, 7, 7]);
  // a read of 16 bytes into a buffer that says it holds 8
  const from = new Uint8Array(64).fill(3);
  const into = new Uint8Array(16);
  const base = backend.pointerOf(from);
  assert.equal(native.ap_read_range(base, 64, 0, into, 8, 16), ShimCode.RANGE);
  assert.equal(
    native.ap_read_range(base, 64, 56, into, 16, 16),
    ShimCode.RANGE,
  );
  assert.equal(into[0], 0);
  assert.equal(native.ap_read_range(base, 64, 48, into, 16, 16), 0);
  assert.equal(into[15], 3);
  // a path that is not NUL-terminated within its length
  const p = new TextEncoder().encode("/nonexistent-no-nul");
  const cell = new BigUint64Array(1);
  assert.equal(
    native.ap_share_open(cell, p, p.byteLength, 8),
    ShimCode.INVALID_ARG,
  );
  const sixteen = new BigUint64Array(1);
  assert.equal(
    native.ap_source_open(sixteen, p, p.byteLength, 0, 0, 0o644),
    ShimCode.INVALID_ARG,
  );
});

test("a descriptor refused while being built holds no mapping reference", () => {
  using mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
  const { dev, h, rec } = deviceOf(mover);
  using map = mapFile(tempPath(), { size: 65536 });
  const view = map.view(0, 4096);
  const r = rec();
  /** Submit a fill of the view with `value` in record r. */
  const fill = (value: number) =>
    native.ap_dev_submit(
      h,
      r,
      DsaOpcode.MEMFILL,
      0,
      view,
      4096,
      0,
      view,
      4096,
      0,
      4096,
      value,
    );
  // a fill value above 255 is refused after the buffer checks passed
  assert.equal(fill(300), ShimCode.INVALID_ARG);
  // the record is free again: a valid fill into it is accepted and runs
  assert.equal(fill(0x5a), 0);
  assert.equal(waitRecord(dev, r), DsaStatus.SUCCESS);
  assert.equal(view[4095], 0x5a);
});

test("batch members a FENCE abandons, or a rejected batch held, release their mappings", () => {
  using mover = new ThreadMover({
    threads: 1,
    inlineThreshold: 0,
    batchLists: 2,
  });
  const { dev, h, rec } = deviceOf(mover);
  using map = mapFile(tempPath(), { size: 65536 });
  const view = map.view(0, 65536);
  const set = (list: number, idx: number, r: number, flags = 0) =>
    native.ap_dev_batch_set(
      h,
      list,
      idx,
      r,
      DsaOpcode.MEMFILL,
      flags,
      view,
      65536,
      idx * 8192,
      view,
      65536,
      0,
      8192,
      idx + 1,
    );
  // member 0 fails (an injected hardware error); member 1 is fenced
  injectFault(mover, 0, { status: DsaStatus.HW_ERR1 });
  const m0 = rec(), m1 = rec(), b = rec();
  assert.equal(set(0, 0, m0), 0);
  assert.equal(set(0, 1, m1, DsaFlag.FENCE), 0);
  assert.equal(native.ap_dev_batch_submit(h, b, 0, 2), 0);
  assert.equal(waitRecord(dev, b), DsaStatus.BATCH_FAIL);
  assert.equal(dev.status(m0), DsaStatus.HW_ERR1);
  assert.equal(dev.status(m1), 0); // abandoned: never executed
  assert.equal(view[8192], 0);
  // a batch of one member is refused by the device (count out of range)
  const m2 = rec(), b2 = rec();
  assert.equal(set(1, 0, m2), 0);
  assert.equal(native.ap_dev_batch_submit(h, b2, 1, 1), 0);
  assert.equal(waitRecord(dev, b2), DsaStatus.DESC_CNT_ERANGE);
  // neither kept its references: their records take new work
  for (const r of [m1, m2]) {
    const rc = native.ap_dev_submit(
      h,
      r,
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
    assert.equal(rc, 0, `record ${r}`);
    assert.equal(waitRecord(dev, r), DsaStatus.SUCCESS);
  }
});

test("unmapping never hangs on a held reference: the last holder unmaps", () => {
  using mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
  const { h, rec } = deviceOf(mover);
  const path = tempPath();
  const map = mapFile(path, { size: 65536 });
  const view = map.view(0, 4096);
  const r = rec();
  // a member written but never submitted holds a reference on the mapping
  assert.equal(
    native.ap_dev_batch_set(
      h,
      0,
      0,
      r,
      DsaOpcode.MEMFILL,
      0,
      view,
      4096,
      0,
      view,
      4096,
      0,
      4096,
      1,
    ),
    0,
  );
  const start = Date.now();
  map.close(); // waits a bounded time, then leaves the unmap to the holder
  assert.ok(Date.now() - start < 5000);
  assert.equal(view.length, 0); // detached: JavaScript cannot reach it
  assert.ok(mapped(path), "still mapped while the member holds it");
  assert.equal(native.ap_dev_release(h, r), 0);
  assert.ok(!mapped(path), "unmapped by the last holder");
});

test("DRAIN completes only after every descriptor accepted before it", () => {
  using mover = new ThreadMover({ threads: 2, inlineThreshold: 0 });
  const { dev, h, rec } = deviceOf(mover);
  using map = mapFile(tempPath(), { size: 8 << 20 });
  const fills = [0, 1, 2, 3].map((i) => {
    const r = rec();
    const view = map.view(i * (2 << 20), 2 << 20);
    assert.equal(
      native.ap_dev_submit(
        h,
        r,
        DsaOpcode.MEMFILL,
        0,
        view,
        view.byteLength,
        0,
        view,
        view.byteLength,
        0,
        view.byteLength,
        i + 1,
      ),
      0,
    );
    return r;
  });
  const drain = rec();
  assert.equal(submitDrain(h, drain), 0);
  assert.equal(waitRecord(dev, drain), DsaStatus.SUCCESS);
  for (const r of fills) assert.equal(dev.status(r), DsaStatus.SUCCESS);
});

test("the device validates raw descriptors as hardware decodes them", () => {
  using mover = new ThreadMover({
    threads: 1,
    inlineThreshold: 0,
    maxTransfer: 4096,
  });
  const { dev, h, rec } = deviceOf(mover);
  using map = mapFile(tempPath(), { size: 65536 });
  const view = map.view(0, 65536);
  const base = BigInt(backend.addressOf(view));
  /** A MEMFILL of 512 bytes at the view, then `change` applied. */
  const raw = (change: (d: DataView) => void = () => {}) => {
    const desc = new Uint8Array(DsaDescriptor.SIZE);
    const d = new DataView(desc.buffer);
    // word 1: flags in bits 0-23, the opcode in bits 24-31
    d.setUint32(
      4,
      (DsaOpcode.MEMFILL << 24) | DsaFlag.COMPLETION_ADDR_VALID |
        DsaFlag.REQUEST_COMPLETION,
      true,
    );
    d.setBigUint64(16, 0x0101010101010101n * 9n, true); // the pattern
    d.setBigUint64(DsaDescriptor.DST_ADDR, base, true);
    d.setUint32(DsaDescriptor.XFER_SIZE, 512, true);
    change(d);
    return desc;
  };
  const flag = (bit: number) => (d: DataView) =>
    d.setUint32(4, d.getUint32(4, true) | bit, true);
  const run = (desc: Uint8Array) => {
    const r = rec();
    assert.equal(native.ap_dev_submit_raw(h, r, desc, 64), 0);
    return waitRecord(dev, r);
  };
  assert.equal(run(raw()), DsaStatus.SUCCESS);
  assert.equal(view[511], 9);
  const cases: [string, (d: DataView) => void, number][] = [
    ["reserved bit of word 0", (d) => d.setUint32(0, 1 << 20, true), 0x12],
    ["reserved flag bit 6", flag(1 << 6), DsaStatus.NOZERO_RESERVE],
    ["reserved field at 38", (d) => d.setUint16(38, 1, true), 0x12],
    ["privileged", (d) => d.setUint32(0, 2 ** 31, true), DsaStatus.PRIV_BAD],
    ["opcode 0x30", (d) => d.setUint8(7, 0x30), DsaStatus.BAD_OPCODE],
    ["block on fault", flag(DsaFlag.BLOCK_ON_FAULT), DsaStatus.INVALID_FLAGS],
    ["FENCE outside a batch", flag(DsaFlag.FENCE), DsaStatus.INVALID_FLAGS],
    [
      "CC on CFLUSH",
      (d) => {
        d.setUint8(7, DsaOpcode.CFLUSH);
        flag(DsaFlag.CACHE_CONTROL)(d);
      },
      DsaStatus.INVALID_FLAGS,
    ],
    [
      "a transfer above the maximum",
      (d) => d.setUint32(DsaDescriptor.XFER_SIZE, 8192, true),
      DsaStatus.XFER_ERANGE,
    ],
  ];
  for (const [what, change, status] of cases) {
    view.fill(0, 0, 512);
    assert.equal(run(raw(change)), status, what);
    assert.equal(view[0], 0, `${what}: nothing written`);
  }
  // a BATCH: its member list must be the device's, and well formed
  const lists = BigInt(dev.listsAddress);
  const batch = (count: number, at: bigint) =>
    raw((d) => {
      d.setUint32(4, (DsaOpcode.BATCH << 24) | 0x0c, true);
      d.setBigUint64(16, at, true);
      d.setUint32(DsaDescriptor.XFER_SIZE, count, true);
    });
  assert.equal(run(batch(1, lists)), DsaStatus.DESC_CNT_ERANGE);
  assert.equal(run(batch(33, lists)), DsaStatus.DESC_CNT_ERANGE);
  assert.equal(run(batch(2, lists + 8n)), DsaStatus.DESCLIST_ALIGN);
  // addresses outside every mapping, or the list arena, are refused here
  const stray = raw((d) =>
    d.setBigUint64(DsaDescriptor.DST_ADDR, 0x1000n, true)
  );
  assert.equal(native.ap_dev_submit_raw(h, rec(), stray, 64), ShimCode.RANGE);
  assert.equal(
    native.ap_dev_submit_raw(h, rec(), batch(2, 0x1000n), 64),
    ShimCode.RANGE,
  );
  assert.equal(
    native.ap_dev_submit_raw(h, rec(), raw(), 63),
    ShimCode.INVALID_ARG,
  );
});

test("a device left open survives its library being unloaded", () => {
  // deno test unloads each test file's libraries when the file ends; a
  // device nobody closed still runs its threads in the shim's code, so
  // the shim keeps itself mapped once it starts threads (RTLD_NODELETE)
  const r = runScript(`
    const path = ${JSON.stringify(LIB)};
    const cell = new BigUint64Array(1);
    let lib;
    if (typeof Deno !== "undefined") {
      lib = Deno.dlopen(path, { ap_dev_new: {
        parameters: ["buffer", "u32", "u32", "u32", "u32", "f64"],
        result: "i32" } });
    } else {
      const spec = "bun:ffi";
      const ffi = await import(spec);
      lib = ffi.dlopen(path, { ap_dev_new: {
        args: ["ptr", "u32", "u32", "u32", "u32", "f64"], returns: "i32" } });
    }
    if (lib.symbols.ap_dev_new(cell, 2, 8, 8, 1, 4096) !== 0) throw new Error("ap_dev_new");
    lib.close(); // the only handle: the library would be unmapped here
    // engines wake at least every 200 ms: give them time to run
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600);
    console.log("alive");
  `);
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /alive/);
});
