// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// PMDK's pool header at its edges: every field libpmemblk and libpmemlog
// 1.12.1 read at open, changed one at a time, must be accepted or refused
// here exactly as they do; `asyncpmem check` agrees with `pmempool check`
// on the shutdown state; pools `pmempool create` made with its options
// read here as libpmem* reads them; logs libpmemlog opens read-only, or
// refuses for their size.
import { spawnSync } from "node:child_process";
import { copyFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { BlockPool } from "../blk/mod.ts";
import { storeChecksum } from "../pmdk/checksum.ts";
import {
  checkPoolHeader,
  hostArch,
  SDS_OFFSET,
  shutdownStateProblem,
} from "../pmdk/pool_header.ts";
import {
  deviceIdChecksum,
  deviceShutdownState,
} from "../pmdk/shutdown_state.ts";
import { Source } from "../pmem2/mod.ts";
import { BLK_POOL } from "../blk/header.ts";
import { PmemLog } from "../stream/mod.ts";
import { PmemError } from "../errors/mod.ts";
import { blkutil, pmempoolCheck } from "./c/blkutil.ts";
import { logutil } from "./c/logutil.ts";
import { requires } from "./_requires.ts";
import {
  assert,
  patch,
  peek,
  ROOT,
  RUNTIME,
  tempPath,
  test,
} from "./_harness.ts";

const MiB = 2 ** 20;
const skip = requires("libpmemblk", "libpmemlog", "pmempool");

/** A change to the 4096 header bytes; true: leave the checksum as is. */
type Change = (h: Uint8Array, dv: DataView) => boolean | void;

const u32 = (off: number, f: (v: number) => number): Change => (_h, dv) => {
  dv.setUint32(off, f(dv.getUint32(off, true)) >>> 0, true);
};

/** A shutdown state: usc, device id checksum, dirty; its checksum made. */
function sds(usc: bigint, uuid: bigint, dirty: number): Uint8Array {
  const s = new Uint8Array(64);
  const dv = new DataView(s.buffer);
  dv.setBigUint64(0, usc, true);
  dv.setBigUint64(8, uuid, true);
  s[16] = dirty;
  storeChecksum(s, 56);
  return s;
}

/** Each change, and whether libpmem* opens the pool after it. */
const CHANGES: [string, Change, boolean][] = [
  ["nothing", () => {}, true],
  ["incompat + SINGLEHDR", u32(16, (v) => v | 1), false],
  ["incompat - SDS", u32(16, (v) => v & ~4), true],
  ["incompat - CKSUM_2K (checksum over 4 KiB)", u32(16, (v) => v & ~2), true],
  ["incompat 0", u32(16, () => 0), true],
  ["incompat + unknown 0x8", u32(16, (v) => v | 8), false],
  ["compat + unknown 0x2", u32(12, (v) => v | 2), true],
  ["compat 0", u32(12, () => 0), true],
  ["ro_compat 1 (read-only)", u32(20, () => 1), true],
  ["major 0", u32(8, () => 0), false],
  ["major 2", u32(8, () => 2), false],
  ["signature's NUL", (h) => {
    h[7] = 0x58;
  }, false],
  ["poolset uuid", (h) => {
    h[24] ^= 1;
  }, true],
  ["prev part uuid", (h) => {
    h[56] ^= 1;
  }, false],
  ["next part uuid", (h) => {
    h[72] ^= 1;
  }, false],
  ["prev replica uuid", (h) => {
    h[88] ^= 1;
  }, false],
  ["next replica uuid", (h) => {
    h[104] ^= 1;
  }, false],
  ["uuid, links stale", (h) => {
    h[40] ^= 1;
  }, false],
  ["uuid and all links", (h) => {
    for (const o of [40, 56, 72, 88, 104]) h[o] ^= 1;
  }, true],
  ["crtime in the future", (_h, dv) => {
    dv.setBigUint64(120, 1n << 40n, true);
  }, true],
  ["alignment descriptor", (h) => {
    h[128] ^= 1;
  }, false],
  ["machine class 1", (h) => {
    h[136] = 1;
  }, false],
  ["data big-endian", (h) => {
    h[137] = 2;
  }, false],
  ["reserved arch byte", (h) => {
    h[140] = 1;
  }, false],
  ["machine aarch64 on x86-64, or back", (_h, dv) => {
    dv.setUint16(142, dv.getUint16(142, true) === 62 ? 183 : 62, true);
  }, false],
  ["unused area (checksummed)", (h) => {
    h[1000] = 7;
  }, true],
  ["unused2 area (not checksummed)", (h) => {
    h[3000] = 7;
  }, true],
  ["checksum", (h) => {
    h[4088] ^= 1;
    return true;
  }, false],
  ["byte 2047, checksum kept", (h) => {
    h[2047] ^= 1;
    return true;
  }, false],
  ["byte 2048, checksum kept (CKSUM_2K)", (h) => {
    h[2048] ^= 1;
    return true;
  }, true],
  ["SDS dirty on a device with a count (ADR failure)", (h) => {
    h.set(sds(5n, 9n, 1), SDS_OFFSET);
  }, false],
  ["SDS closed on a device with a count", (h) => {
    h.set(sds(5n, 9n, 0), SDS_OFFSET);
  }, true],
  ["SDS dirty without a device count", (h) => {
    h.set(sds(0n, 0n, 1), SDS_OFFSET);
  }, true],
  ["SDS dirty, its checksum wrong (reinitialized)", (h) => {
    const s = sds(5n, 9n, 1);
    s[60] ^= 1;
    h.set(s, SDS_OFFSET);
  }, true],
  ["SDS dirty with a count, the pool without SDS", (h, dv) => {
    h.set(sds(5n, 9n, 1), SDS_OFFSET);
    dv.setUint32(16, dv.getUint32(16, true) & ~4, true);
  }, true],
];

/** Apply a change to a pool file's header (and its checksum). */
function change(path: string, c: Change): void {
  const h = peek(path, 0, 4096);
  const dv = new DataView(h.buffer);
  if (!c(h, dv)) {
    const cksum2k = (dv.getUint32(16, true) & 2) !== 0;
    storeChecksum(h, 4088, cksum2k ? 2048 : 4096);
  }
  patch(path, 0, h);
}

function opens(f: () => { close(): void }): string {
  try {
    f().close();
    return "ok";
  } catch (e) {
    return (e as Error).message;
  }
}

// Bug: a single-file pool with the SINGLEHDR incompat feature, and one whose
// shutdown state records an ADR failure (dirty, on a device with an unsafe
// shutdown count), opened here but not in libpmemblk/libpmemlog (EINVAL);
// a log with ro_compat features did not open here; cause: checkPoolHeader
// ignored SINGLEHDR (libpmem refuses it without a NOHDRS pool set) and the
// shutdown state, PmemLog mapped a read-only log with protection "read".
test(
  "pool headers: libpmemblk, libpmemlog and asyncpmem accept and refuse the same changes",
  () => {
    const blk0 = tempPath("blk");
    assert.equal(blkutil("create", blk0, "512", `${32 * MiB}`).status, 0);
    const log0 = tempPath("log");
    assert.equal(logutil("create", log0, `${2 * MiB}`).status, 0);
    const wrong: string[] = [];
    for (const [name, c, accepted] of CHANGES) {
      const blk = tempPath("b");
      copyFileSync(blk0, blk);
      change(blk, c);
      const log = tempPath("l");
      copyFileSync(log0, log);
      change(log, c);
      const results = [
        ["libpmemblk", blkutil("open", blk).stdout.trim()],
        ["BlockPool", opens(() => BlockPool.open(blk))],
        ["libpmemlog", logutil("open", log).stdout.trim()],
        ["PmemLog", opens(() => PmemLog.open(log))],
      ];
      for (const [who, r] of results) {
        const ok = r === "ok";
        if (ok !== accepted) wrong.push(`${name}: ${who}: ${r}`);
        if (!ok && who.startsWith("lib") && r !== "errno 22") {
          wrong.push(`${name}: ${who}: ${r}, expected errno 22`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  },
  { skip, timeout: 300_000 },
);

test("pool headers: the refusals say why", () => {
  const path = tempPath();
  BlockPool.create(path, { blockSize: 512, poolSize: 17 * MiB }).close();
  const header = peek(path, 0, 4096);
  const why = (c: Change) => {
    const h = header.slice();
    const dv = new DataView(h.buffer);
    if (!c(h, dv)) storeChecksum(h, 4088, 2048);
    const r = checkPoolHeader(h, BLK_POOL, hostArch());
    return typeof r === "string" ? r : "accepted";
  };
  assert.match(why(u32(16, (v) => v | 1)), /SINGLEHDR.*pool sets/);
  assert.match(
    why((h) => {
      h.set(sds(5n, 9n, 1), SDS_OFFSET);
    }),
    /ADR failure.*unsafe shutdown count 5/,
  );
  // pmempool check also wants an unused shutdown state zero
  const unused = header.slice();
  unused.set(sds(5n, 9n, 1), SDS_OFFSET);
  new DataView(unused.buffer).setUint32(16, 2, true); // CKSUM_2K only
  assert.equal(shutdownStateProblem(unused), null);
  assert.match(shutdownStateProblem(unused, true)!, /not zero.*does not use/);
  // a device whose count and id match: the state is its own (closed
  // uncleanly, no ADR failure)
  const own = header.slice();
  own.set(sds(5n, 9n, 1), SDS_OFFSET);
  assert.equal(shutdownStateProblem(own, false, { usc: 5n, uuid: 9n }), null);
  assert.notEqual(
    shutdownStateProblem(own, false, { usc: 6n, uuid: 9n }),
    null,
  );
});

// a pool left dirty on a device with a count and an id was judged
// against zeros, so refused as an ADR failure where libpmem opens it;
// cause: the device's state was never read; fix: pmdk/shutdown_state.ts
test("shutdown state: the device's id checksum as libpmem pads it", () => {
  const ascii = (t: string) => new TextEncoder().encode(t + "\0");
  const word = (t: string) =>
    new DataView(new TextEncoder().encode(t.padEnd(4, "\0")).buffer)
      .getUint32(0, true);
  // libpmem pads the id (with its NUL) by 4 - len % 4 zero bytes, always
  // at least one: "123\0" is two words, the second zero
  const w = word("123");
  assert.equal(
    deviceIdChecksum(ascii("123")),
    (BigInt(2 * w) << 32n) | BigInt(w),
  );
  const a = word("1234");
  assert.equal(
    deviceIdChecksum(ascii("1234")),
    (BigInt(2 * a) << 32n) | BigInt(a),
  );
  const [b, c] = [word("1234"), word("567")];
  const lo = b + c;
  assert.equal(
    deviceIdChecksum(ascii("1234567")),
    (BigInt(b + lo + lo) << 32n) | BigInt(lo),
  );
  // a file on tmpfs or a disk: no count, no id, the state libpmem writes
  const path = tempPath();
  BlockPool.create(path, { blockSize: 512, poolSize: 17 * MiB }).close();
  using source = Source.open(path);
  assert.deepEqual(deviceShutdownState(source), { usc: 0n, uuid: 0n });
});

test("shutdown state: the device is read only for a dirty state", () => {
  const path = tempPath();
  BlockPool.create(path, { blockSize: 512, poolSize: 17 * MiB }).close();
  const header = peek(path, 0, 4096);
  let reads = 0;
  const device = () => {
    reads++;
    return { usc: 5n, uuid: 9n };
  };
  assert.equal(shutdownStateProblem(header, false, device), null);
  const closed = header.slice();
  closed.set(sds(6n, 9n, 0), SDS_OFFSET);
  assert.equal(shutdownStateProblem(closed, false, device), null);
  assert.equal(reads, 0);
  const own = header.slice();
  own.set(sds(5n, 9n, 1), SDS_OFFSET);
  assert.equal(
    checkPoolHeader(own, BLK_POOL, hostArch(), device).constructor,
    Object,
  );
  assert.equal(reads, 1);
  assert.match(
    String(checkPoolHeader(own, BLK_POOL, hostArch(), { usc: 5n, uuid: 8n })),
    /ADR failure/,
  );
});

// the header's shutdown state stayed as found while a pool was open, so
// an ADR failure then went unseen by the next open; fix: open sets it
// dirty and the last close clean, as libpmemblk and libpmemlog do
test("shutdown state: dirty while open, clean after the last close", () => {
  // what libpmem leaves on a device without a count or an id while open
  const dirty = sds(0n, 0n, 1);
  assert.equal(
    new DataView(dirty.buffer).getBigUint64(56, true),
    0x0000000C00000001n,
  );
  const state = (path: string) => peek(path, SDS_OFFSET, 64);
  const blk = tempPath();
  const pool = BlockPool.create(blk, { blockSize: 512, poolSize: 17 * MiB });
  assert.deepEqual(state(blk), dirty);
  pool.close();
  assert.deepEqual(state(blk), new Uint8Array(64));
  {
    using a = BlockPool.open(blk);
    const b = BlockPool.open(blk);
    assert.deepEqual(state(blk), dirty);
    b.close();
    assert.deepEqual(state(blk), dirty, "another open is left");
    a.write(0, new Uint8Array(512));
  }
  assert.deepEqual(state(blk), new Uint8Array(64));
  {
    using _ = BlockPool.open(blk, { readOnly: true });
    assert.deepEqual(state(blk), new Uint8Array(64), "read-only: no write");
  }
  const log = tempPath();
  PmemLog.create(log, { poolSize: 2 * MiB }).close();
  assert.deepEqual(state(log), new Uint8Array(64));
  {
    using l = PmemLog.open(log);
    assert.deepEqual(state(log), dirty);
    l.append(new Uint8Array(8));
  }
  assert.deepEqual(state(log), new Uint8Array(64));
  // a process that ended with it open leaves it dirty: the state is the
  // device's, so both the C library and asyncpmem open it
  patch(log, SDS_OFFSET, dirty);
  PmemLog.open(log).close();
  assert.deepEqual(state(log), new Uint8Array(64));
});

/** Run `asyncpmem ...args` on this runtime. */
function cli(...args: string[]) {
  const argv = RUNTIME === "deno"
    ? ["run", "-A", "--no-check", join(ROOT, "cli", "main.ts"), ...args]
    : [join(ROOT, "cli", "main.ts"), ...args];
  const r = spawnSync(process.execPath, argv, {
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

// Bug: `asyncpmem check` called consistent a pool whose shutdown state
// records an ADR failure, or is not zero though the pool does not use it,
// where `pmempool check` finds it inconsistent; cause: the shutdown state
// was never read.
test(
  "`asyncpmem check` and `pmempool check` agree on the shutdown state",
  () => {
    const cases: [string, Change, number][] = [
      ["clean", () => {}, 0],
      ["dirty, no device count", (h) => {
        h.set(sds(0n, 0n, 1), SDS_OFFSET);
      }, 0],
      ["an ADR failure", (h) => {
        h.set(sds(5n, 9n, 1), SDS_OFFSET);
      }, 1],
      ["a state the pool does not use", (h, dv) => {
        h.set(sds(5n, 9n, 0), SDS_OFFSET);
        dv.setUint32(16, dv.getUint32(16, true) & ~4, true);
      }, 1],
    ];
    for (const kind of ["blk", "log"]) {
      const base = tempPath(kind);
      const made = kind === "blk"
        ? spawnSync("pmempool", ["create", "blk", "512", base])
        : spawnSync("pmempool", ["create", "log", base]);
      assert.equal(made.status, 0, String(made.stderr));
      for (const [name, c, expected] of cases) {
        const path = tempPath(name.replaceAll(" ", "-"));
        copyFileSync(base, path);
        change(path, c);
        assert.equal(pmempoolCheck(path).status, expected, `${kind} ${name}`);
        const ours = cli("check", "--json", path);
        assert.equal(ours.status, expected, `${kind} ${name}: ${ours.stderr}`);
        if (expected === 1) {
          assert.match(ours.stderr + ours.stdout, /shutdown state|ADR/);
        }
      }
    }
  },
  { skip, timeout: 300_000 },
);

test(
  "pools `pmempool create` made with its options: sizes, layouts and features",
  () => {
    const run = (...args: string[]) => {
      const r = spawnSync("pmempool", args, { encoding: "utf8" });
      assert.equal(r.status, 0, `pmempool ${args.join(" ")}: ${r.stderr}`);
    };
    // blk: the minimum size (no --size), odd sizes, the layout written
    const blks: [string, string[]][] = [
      ["min", ["create", "blk", "512"]],
      ["odd", ["create", "blk", "4096", "-s", "17000001"]],
      ["laid", ["create", "-w", "blk", "520", "-s", "20M"]],
      ["mode", ["create", "-m", "0600", "blk", "512", "-s", "17M"]],
    ];
    for (const [name, args] of blks) {
      const path = tempPath(name);
      run(...args, path);
      if (name === "mode") assert.equal(statSync(path).mode & 0o777, 0o600);
      const theirs = /bsize (\d+) nblock (\d+)/.exec(
        blkutil("info", path).stdout,
      );
      assert.ok(theirs, name);
      const info = cli("info", "--json", path);
      assert.equal(info.status, 0, `${name}: ${info.stderr}`);
      const j = JSON.parse(info.stdout);
      assert.deepEqual(
        [j.blockSize, j.blockCount],
        [Number(theirs[1]), Number(theirs[2])],
        name,
      );
      assert.equal(j.formatted, name === "laid", name);
      assert.equal(cli("check", path).status, 0, name);
    }
    // log: sizes off the 4 KiB grid (libpmemlog uses whole pages)
    for (const size of [2 * MiB, 2 * MiB + 1, 2101000, 3000000]) {
      const path = tempPath(`log-${size}`);
      run("create", "log", "-s", `${size}`, path);
      const info = cli("info", "--json", path);
      assert.equal(info.status, 0, `${size}: ${info.stderr}`);
      assert.equal(
        JSON.parse(info.stdout).capacity,
        Math.floor(size / 4096) * 4096 - 8192,
        `${size}`,
      );
      using log = PmemLog.open(path);
      log.append(new Uint8Array(100).fill(3));
      log.close();
      assert.equal(logutil("open", path).stdout.trim(), "ok");
      assert.equal(pmempoolCheck(path).status, 0, `${size}`);
    }
    // features pmempool can turn off on a single file
    for (const feature of ["SHUTDOWN_STATE", "CHECK_BAD_BLOCKS"]) {
      for (const kind of ["blk", "log"]) {
        const path = tempPath(`${kind}-${feature}`);
        run("create", kind, ...(kind === "blk" ? ["512"] : []), path);
        run("feature", "-d", feature, path);
        assert.equal(cli("check", path).status, 0, `${kind} ${feature}`);
        if (kind === "blk") {
          using pool = BlockPool.open(path);
          pool.write(0, new Uint8Array(512).fill(1));
        } else {
          using log = PmemLog.open(path);
          log.append(new Uint8Array(10));
        }
        assert.equal(pmempoolCheck(path).status, 0, `${kind} ${feature}`);
      }
    }
  },
  { skip, timeout: 300_000 },
);

test(
  "a log with ro_compat features: libpmemlog and `PmemLog` both open it and refuse appends",
  () => {
    const path = tempPath();
    assert.equal(logutil("create", path, `${2 * MiB}`).status, 0);
    change(path, u32(20, () => 1));
    assert.equal(logutil("open", path).stdout.trim(), "ok");
    const before = peek(path, 0, 3 * 4096);
    {
      using log = PmemLog.open(path);
      assert.throws(
        () => log.append(new Uint8Array(1)),
        (e: unknown) => e instanceof PmemError && e.code === -30,
      );
    }
    assert.deepEqual(peek(path, 0, 3 * 4096), before);
    assert.equal(pmempoolCheck(path).status, 0);
  },
  { skip },
);

// Bug: `PmemLog.open()` of a log with ro_compat features (libpmemlog opens
// it read-only) threw "view: the mapping is read-only"; cause: it mapped
// the file with protection "read", and StreamMedia needs views.
test("`PmemLog.open()` opens a log with ro_compat features read-only, as libpmemlog", () => {
  const path = tempPath();
  {
    using log = PmemLog.create(path, { poolSize: 2 * MiB });
    log.append(new TextEncoder().encode("kept"));
  }
  const header = peek(path, 0, 4096);
  new DataView(header.buffer).setUint32(20, 1, true); // ro_compat
  storeChecksum(header, 4088, 2048);
  patch(path, 0, header);
  const before = peek(path, 0, 3 * 4096);
  {
    using log = PmemLog.open(path);
    assert.equal(log.tell(), 4);
    let text = "";
    log.walk(0, (c) => {
      text = new TextDecoder().decode(c);
      return true;
    });
    assert.equal(text, "kept");
    const erofs = (e: unknown) =>
      e instanceof PmemError && e.code === -30 && /read-only/.test(e.message);
    assert.throws(() => log.append(new Uint8Array(1)), erofs);
    assert.throws(() => log.rewind(), erofs);
  }
  assert.deepEqual(peek(path, 0, 3 * 4096), before);
  // and the CLI reads it
  const info = cli("info", path, "--json");
  assert.equal(info.status, 0, info.stderr);
  assert.equal(JSON.parse(info.stdout).used, 4);
  const dump = cli("dump", path, "--raw");
  assert.equal(dump.status, 0, dump.stderr);
  assert.equal(dump.stdout, "kept");
  assert.equal(cli("check", path).status, 0);
});

// Bug: a log file below 2 MiB whose end offset matched its size opened,
// where libpmemlog refuses it; cause: only sizes below 8 KiB were refused.
test("`PmemLog.open()` refuses a file below libpmemlog's 2 MiB minimum", () => {
  const path = tempPath();
  PmemLog.create(path, { poolSize: 2 * MiB }).close();
  // a 1 MiB log whose end offset matches its size: libpmemlog refuses it
  const small = tempPath("small");
  const bytes = peek(path, 0, MiB);
  new DataView(bytes.buffer).setBigUint64(4096 + 8, BigInt(MiB), true);
  writeFileSync(small, bytes);
  assert.throws(
    () => PmemLog.open(small),
    (e: unknown) =>
      e instanceof PmemError && e.code === -22 &&
      /the file is too small/.test(e.message),
  );
});
