// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Finding DSA without the hardware: layouts against the kernel's header (a
// C program built here), libaccel-config loaded only at run time, discovery
// on this machine and on a fixture sysfs tree (in a private mount
// namespace), and the reasons open() gives.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { DsaMover, NotSupportedError, ThreadMover } from "../mod.ts";
import { cString, native } from "../ffi/lib.ts";
import { listDsa } from "../mover/_dsa_discovery.ts";
import * as format from "../mover/dsa_format.ts";
import { openTestPortal } from "../testing/mod.ts";
import { assert, ROOT, tempDir, test } from "./_harness.ts";
import {
  FIXTURE_START,
  namespaceSkip,
  runInNamespace,
} from "./dsa_namespace.ts";

const LIB = join(ROOT, "c", "build", "libasyncpmem.so");
const MISSING_LIB = "libaccel-config-missing.so.0";

/** Run a command; status and output. */
function run(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 120_000 });
  return {
    ok: r.status === 0 && !r.error,
    stdout: r.stdout ?? "",
    stderr: r.stderr ?? String(r.error ?? ""),
  };
}

const gccReason = run("gcc", ["--version"]).ok ? "" : "gcc is not installed";

test(
  "DSA layouts and constants match <linux/idxd.h> (a C program built here)",
  () => {
    const bin = join(tempDir(), "dsa_layout");
    const src = join(ROOT, "tests", "c", "dsa_layout.c");
    const cc = run("gcc", ["-Wall", "-Werror", "-o", bin, src]);
    assert.ok(cc.ok, cc.stderr);
    const out = run(bin, []);
    assert.ok(out.ok, out.stderr);
    const c: Record<string, number> = JSON.parse(out.stdout);
    const ts: Record<string, number> = {
      DSA_STATUS_MASK: format.DSA_STATUS_MASK,
      DSA_STATUS_WRITE_FAULT: format.DSA_STATUS_WRITE_FAULT,
    };
    const groups = {
      DsaDescriptor: format.DsaDescriptor,
      DsaRecord: format.DsaRecord,
      DsaOpcode: format.DsaOpcode,
      DsaFlag: format.DsaFlag,
      DsaStatus: format.DsaStatus,
    };
    for (const [group, values] of Object.entries(groups)) {
      for (const [k, v] of Object.entries(values)) ts[`${group}.${k}`] = v;
    }
    // every constant TypeScript uses is checked, and agrees
    for (const [k, v] of Object.entries(ts)) {
      assert.ok(k in c, `${k} is not checked against the header`);
      assert.equal(v, c[k], k);
    }
    // accfg.h mirrors libaccel-config's enums (static asserts in the build)
    const header = "/usr/include/accel-config/libaccel_config.h";
    assert.equal(c.accfgChecked, existsSync(header) ? 1 : 0);
  },
  { skip: gccReason },
);

test("the shim loads libaccel-config at run time, never links it", () => {
  const r = run("readelf", ["-d", LIB]);
  assert.ok(r.ok, r.stderr);
  const needed = [...r.stdout.matchAll(/\(NEEDED\).*\[(.+)\]/g)].map((m) =>
    m[1]
  );
  assert.ok(needed.some((n) => n.startsWith("libpmem2")), needed.join());
  assert.ok(!needed.some((n) => /accel|accfg/.test(n)), needed.join());
  const listing = listDsa(MISSING_LIB);
  assert.equal(listing.loaded, false);
  assert.match(listing.loadError ?? "", /libaccel-config-missing\.so\.0/);
  assert.deepEqual(listing.devices, []);
});

const driver = listDsa().driver;

test("discovery on this machine: zero devices, and open() says why", () => {
  assert.deepEqual(DsaMover.devices(), []);
  assert.equal(DsaMover.available(), false);
  assert.throws(
    () => DsaMover.open(),
    (e: unknown) =>
      e instanceof NotSupportedError && e.op === "open" && e.errno === 95 &&
      /the idxd driver is not loaded \(no \/sys\/bus\/dsa\)/.test(e.message),
  );
  // no library: the same answers, naming it
  assert.deepEqual(DsaMover.devices({ library: MISSING_LIB }), []);
  assert.equal(DsaMover.available({ library: MISSING_LIB }), false);
  assert.throws(
    () => DsaMover.open({ library: MISSING_LIB }),
    (e: unknown) =>
      e instanceof NotSupportedError &&
      /^open: libaccel-config is not installed \(cannot load 'libaccel-config-missing\.so\.0': .*\); install it with 'apt-get install -y libaccel-config1'$/
        .test(e.message),
  );
  using choice = DsaMover.openOrFallback({ fallback: { threads: 1 } });
  assert.ok(choice.mover instanceof ThreadMover);
  assert.ok(choice.error instanceof NotSupportedError);
  assert.match(choice.reason ?? "", /^the idxd driver is not loaded/);
}, { skip: driver ? "this machine has the idxd driver" : "" });

test("DsaMover.open() checks its options before anything native", () => {
  assert.throws(() => DsaMover.open(null as unknown as object), TypeError);
  assert.throws(
    () => DsaMover.open({ wq: 5 as unknown as string }),
    TypeError,
  );
  assert.throws(() => DsaMover.open({ records: 0 }), RangeError);
  assert.throws(() => DsaMover.open({ inlineThreshold: -1 }), RangeError);
  assert.throws(() => openTestPortal({ queueSize: 3 }), RangeError);
  assert.throws(() => openTestPortal({ queueSize: 64 }), RangeError);
  assert.throws(
    () => openTestPortal({ mode: "posted" as unknown as "shared" }),
    RangeError,
  );
});

// Bug: a test portal's options are u32 parameters of the shim, and one
// of 2^32 or more passed the check (at most 2^53 - 1): Deno's FFI refused
// it ("Invalid FFI u32 type"), Bun cut it to its low 32 bits, so
// maxBatch 2^32 + 32 opened a portal of 32, and 2^32 one of 0.
test("openTestPortal refuses a size option of 2^32 or more on both runtimes", () => {
  for (
    const key of [
      "queueSize",
      "maxBatch",
      "engines",
      "records",
      "batchLists",
    ] as const
  ) {
    for (const value of [2 ** 32, 2 ** 32 + 32]) {
      assert.throws(
        () => openTestPortal({ [key]: value }).close(),
        (e: unknown) =>
          e instanceof RangeError &&
          e.message ===
            `Cannot open a test portal: ${key} must be at most 2^32 - 1, got ${value}`,
        `${key} ${value}`,
      );
    }
  }
});

test("ap_dsa_open names why a work queue cannot be opened", () => {
  const open = (path: string) => {
    const p = cString(path);
    const cell = new BigUint64Array(1);
    return native.ap_dsa_open(
      cell,
      p,
      p.byteLength,
      0,
      16,
      32,
      1 << 21,
      0,
      4,
      16,
      1,
      0,
    );
  };
  const message = () => {
    const buf = new Uint8Array(512);
    const n = native.ap_errormsg(buf, buf.length);
    return new TextDecoder().decode(buf.subarray(0, n));
  };
  assert.equal(open("/nonexistent/dsa/wq9.9"), -2);
  assert.match(message(), /wq9\.9 does not exist: the WQ is not enabled/);
  // a sysfs attribute without a store method: EACCES even for root
  assert.equal(open("/sys/devices/system/cpu/online"), -13);
  assert.match(message(), /^no permission on \/sys\/devices\/system\/cpu/);
});

/** A script that prints what discovery makes of the fixture tree. */
const PROBE = `
import { DsaMover } from "@root/mod.ts";
const out = { devices: DsaMover.devices(), available: DsaMover.available() };
for (const [k, o] of Object.entries({ any: {}, shared: { wq: "wq0.0" },
    kernel: { wq: "wq0.2" }, device: { device: "dsa7" },
    wq: { wq: "wq9.9" } })) {
  try { DsaMover.open(o).close(); out[k] = "opened"; }
  catch (e) { out[k] = e.name + ": " + e.message; }
}
using c = DsaMover.openOrFallback({ fallback: { threads: 1 } });
out.fallback = [c.mover.name, c.reason];
console.log(JSON.stringify(out));
`;

/**
 * In a private mount namespace: a tmpfs over /sys/bus with one DSA device
 * (a shared, a dedicated and a kernel WQ) and one IAA device, and a
 * tmpfs /dev whose /dev/dsa/wq0.1 leads to a file root may not open
 * read-write. Nothing outside the namespace sees any of it.
 */
const FIXTURE = `${FIXTURE_START}
ln -s /sys/devices/system/cpu/online /dev/dsa/wq0.1
dev() {
  dev_attrs "$1" 1
  w "$1/op_cap" 00000000,00000000,00000000,00000000,00000000,00000000,00000001,003f03ff
}
wq() {
  for kv in state=enabled size=16 max_batch_size=32 \\
      max_transfer_size=2097152 block_on_fault=0 threshold=15 priority=10 \\
      group_id=0 name=app cdev_minor=0; do
    w "$1/\${kv%%=*}" "\${kv#*=}"
  done
  w "$1/mode" "$2"; w "$1/type" "$3"
}
D=/sys/bus/dsa/devices/dsa0
dev $D
wq $D/wq0.0 shared user
wq $D/wq0.1 dedicated user
wq $D/wq0.2 dedicated kernel
dev /sys/bus/iax/devices/iax1
wq /sys/bus/iax/devices/iax1/wq1.0 dedicated user
exec "$@"
`;

const fixtureSkip = namespaceSkip;

test(
  "discovery of a fixture sysfs tree: one device, a dedicated and a shared WQ",
  () => {
    const r = runInNamespace(FIXTURE, PROBE);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, ""); // libaccel-config's own logging is silenced
    const out = JSON.parse(r.stdout);
    assert.equal(out.devices.length, 1, "the IAA device is left out");
    const [dev] = out.devices;
    assert.equal(dev.name, "dsa0");
    assert.equal(dev.numaNode, 1);
    assert.equal(dev.genCap, "0x40915f0107");
    assert.equal(dev.opCap, "0x1003f03ff");
    assert.equal(dev.pasidEnabled, true);
    assert.equal(dev.engines, 4);
    assert.deepEqual(
      dev.wqs.map((q: Record<string, unknown>) => [
        q.name,
        q.mode,
        q.type,
        q.state,
        q.size,
        q.maxBatch,
        q.maxTransfer,
        q.path,
        q.pathFound,
      ]),
      [
        [
          "wq0.0",
          "shared",
          "user",
          "enabled",
          16,
          32,
          2097152,
          "/dev/dsa/wq0.0",
          false,
        ],
        [
          "wq0.1",
          "dedicated",
          "user",
          "enabled",
          16,
          32,
          2097152,
          "/dev/dsa/wq0.1",
          true,
        ],
        [
          "wq0.2",
          "dedicated",
          "kernel",
          "enabled",
          16,
          32,
          2097152,
          "/dev/dsa/wq0.2",
          false,
        ],
      ],
    );
    assert.equal(out.available, true);
    // dedicated before shared, each tried; the reasons, in the user's words
    assert.equal(
      out.any,
      "NotSupportedError: open: no work queue could be opened: no " +
        "permission on /dev/dsa/wq0.1: Permission denied (an administrator " +
        "grants it: chown/chmod the device, or a udev rule); " +
        "/dev/dsa/wq0.0 does not exist: the WQ is not enabled as a user WQ",
    );
    assert.equal(
      out.shared,
      "NotSupportedError: open: /dev/dsa/wq0.0 does not exist: the WQ is " +
        "not enabled as a user WQ",
    );
    assert.match(
      out.kernel,
      /^NotSupportedError: open: no enabled user work queue: wq0\.2 is a kernel WQ, not a user WQ; configure one with accel-config/,
    );
    assert.equal(
      out.device,
      "NotSupportedError: open: no DSA device named 'dsa7' (found: dsa0)",
    );
    assert.equal(
      out.wq,
      "NotSupportedError: open: no work queue named 'wq9.9' on dsa0 " +
        "(found: wq0.0, wq0.1, wq0.2)",
    );
    assert.equal(out.fallback[0], "threads");
    assert.match(
      out.fallback[1],
      /^no work queue could be opened: no permission on \/dev\/dsa\/wq0\.1/,
    );
  },
  { skip: fixtureSkip(), timeout: 90_000 },
);

// Bug: openOrFallback's result could only be disposed (`using`): every
// other closable of the library has an idempotent close() too.
test(
  "DsaMover.openOrFallback()'s choice closes its mover with close(), idempotently",
  () => {
    const choice = DsaMover.openOrFallback({ fallback: { threads: 1 } });
    assert.equal(choice.mover.closed, false);
    choice.close();
    assert.equal(choice.mover.closed, true);
    choice.close();
    choice[Symbol.dispose]();
  },
  { skip: driver ? "this machine has the idxd driver" : "" },
);
