// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Byte compatibility with libpmemblk 1.12.1 and pmempool, both ways.
import { spawn } from "node:child_process";
import { fletcher64 } from "../pmdk/checksum.ts";
import { decodePoolHeader, encodePoolHeader } from "../pmdk/pool_header.ts";
import { decodeBttInfo, encodeBttInfo } from "../blk/layout.ts";
import { BlockPool, poolGeometry } from "../blk/mod.ts";
import { BadBlockError, PmemError } from "../errors/mod.ts";
import { assert, patch, peek, tempPath, test } from "./_harness.ts";
import {
  blkutil,
  blkutilPath,
  LIBPMEMBLK_SKIP,
  pattern,
  PMEMPOOL_SKIP,
  pmempoolCheck,
  type SpecLine,
  writeSpec,
} from "./c/blkutil.ts";

const MiB = 2 ** 20;
const BTT = 8192;
const skip = LIBPMEMBLK_SKIP || PMEMPOOL_SKIP;

/** Random operations over a hot set of blocks plus a few far ones. */
function randomOps(count: number, nblock: number, seed: number): SpecLine[] {
  let x = seed >>> 0 || 1;
  const rand = (n: number) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x >>> 8) % n;
  };
  const ops: SpecLine[] = [];
  for (let i = 0; i < count; i++) {
    const lba = rand(8) === 0 ? rand(nblock) : rand(200);
    const k = rand(10);
    if (k < 7) ops.push({ op: "W", lba, seed: seed * 10000 + i });
    else if (k < 9) ops.push({ op: "Z", lba });
    else ops.push({ op: "E", lba });
  }
  return ops;
}

/** The final state of every block an op touched. */
function finalStates(
  ops: SpecLine[],
  into = new Map<number, SpecLine>(),
): Map<number, SpecLine> {
  for (const op of ops) into.set(op.lba, op);
  return into;
}

function apply(pool: BlockPool, ops: SpecLine[]): void {
  for (const o of ops) {
    if (o.op === "W") pool.write(o.lba, pattern(o.lba, o.seed, pool.blockSize));
    else if (o.op === "Z") pool.setZero(o.lba);
    else pool.setError(o.lba);
  }
}

function verify(pool: BlockPool, states: Map<number, SpecLine>): void {
  const bs = pool.blockSize;
  for (const [lba, s] of states) {
    if (s.op === "E") {
      assert.throws(() => pool.read(lba), BadBlockError, `block ${lba}`);
    } else if (s.op === "Z") {
      assert.deepEqual(pool.read(lba), new Uint8Array(bs), `block ${lba}`);
    } else {
      assert.deepEqual(
        pool.read(lba),
        pattern(lba, s.seed, bs),
        `block ${lba}`,
      );
    }
  }
}

function assertOk(
  r: { status: number | null; stdout: string; stderr: string },
) {
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
}

test("`BlockPool.open()` reads pools that libpmemblk created and wrote", () => {
  for (const bsize of [512, 4096]) {
    const path = tempPath();
    const created = blkutil("create", path, `${bsize}`, `${64 * MiB}`);
    assertOk(created);
    const nblock = Number(/nblock (\d+)/.exec(created.stdout)![1]);
    {
      using pool = BlockPool.open(path, { blockSize: bsize });
      assert.equal(pool.blockCount, nblock);
      assert.equal(pool.check().formatted, false); // no BTT until a write
      assert.deepEqual(pool.read(nblock - 1), new Uint8Array(bsize));
    }
    const ops = randomOps(1500, nblock, bsize);
    assertOk(blkutil("apply", path, writeSpec(ops)));
    using pool = BlockPool.open(path, { blockSize: bsize });
    assert.equal(pool.blockCount, nblock);
    verify(pool, finalStates(ops));
    const report = pool.check();
    assert.deepEqual(report.problems, []);
    assert.equal(report.formatted, true);
  }
}, { skip });

test("`fletcher64()` matches the checksums libpmemblk stored", () => {
  const path = tempPath();
  assertOk(blkutil("create", path, "4096", `${32 * MiB}`));
  assertOk(blkutil("apply", path, writeSpec([{ op: "W", lba: 1, seed: 1 }])));
  const header = peek(path, 0, 4096);
  const stored = new DataView(header.buffer).getBigUint64(4088, true);
  assert.equal(fletcher64(header, 4088, 2048), stored);
  assert.deepEqual(encodePoolHeader(decodePoolHeader(header)), header);
  const info = peek(path, BTT, 4096);
  assert.equal(
    fletcher64(info, 4088),
    new DataView(info.buffer).getBigUint64(4088, true),
  );
  assert.deepEqual(encodeBttInfo(decodeBttInfo(info)), info);
}, { skip });

test(
  "`BlockPool.create()` writes what libpmemblk writes, byte for byte",
  () => {
    const theirs = tempPath();
    assertOk(blkutil("create", theirs, "4096", `${64 * MiB}`));
    assertOk(blkutil(
      "apply",
      theirs,
      writeSpec([{ op: "Z", lba: 0 }, {
        op: "E",
        lba: 0,
      }]),
    ));
    const ours = tempPath();
    BlockPool.create(ours, { blockSize: 4096, poolSize: 64 * MiB }).close();
    // pool header: equal but for UUIDs, creation time and checksum
    const a = decodePoolHeader(peek(theirs, 0, 4096));
    const b = decodePoolHeader(peek(ours, 0, 4096));
    for (const h of [a, b]) {
      h.poolsetUuid =
        h.uuid =
        h.prevPartUuid =
        h.nextPartUuid =
          new Uint8Array(16);
      h.prevReplUuid = h.nextReplUuid = new Uint8Array(16);
      h.crtime = 0;
      h.checksum = 0n;
    }
    assert.deepEqual(a, b);
    assert.deepEqual(encodePoolHeader(a), encodePoolHeader(b));
    assert.deepEqual(peek(ours, 4096, 8), peek(theirs, 4096, 8)); // bsize, is_zeroed
    // info blocks: equal but for the two UUIDs and the checksum
    const g = poolGeometry(64 * MiB, 4096).arenas[0];
    for (const at of [BTT, BTT + g.infoOff]) {
      const x = peek(theirs, at, 4096);
      const y = peek(ours, at, 4096);
      for (const z of [x, y]) {
        z.fill(0, 16, 48);
        z.fill(0, 4088);
      }
      assert.deepEqual(x, y);
    }
    // flog: set_error does not touch it, so all 256 slots are initial
    const flogA = peek(theirs, BTT + g.flogOff, 256 * 64);
    const flogB = peek(ours, BTT + g.flogOff, 256 * 64);
    assert.deepEqual(flogA, flogB);
    assert.deepEqual(
      peek(ours, BTT + g.flogOff, 64),
      (() => {
        const s = new Uint8Array(64);
        const dv = new DataView(s.buffer);
        dv.setUint32(4, (g.externalNlba | 0x80000000) >>> 0, true);
        dv.setUint32(8, (g.externalNlba | 0x80000000) >>> 0, true);
        dv.setUint32(12, 1, true);
        return s;
      })(),
    );
  },
  { skip },
);

test(
  "`BlockPool` random workloads verify in libpmemblk and pass `pmempool check`",
  () => {
    for (const bsize of [512, 4096]) {
      const path = tempPath();
      let states: Map<number, SpecLine>;
      let nblock: number;
      {
        using pool = BlockPool.create(path, {
          blockSize: bsize,
          poolSize: 32 * MiB,
        });
        nblock = pool.blockCount;
        const ops = randomOps(2000, nblock, 7 + bsize);
        apply(pool, ops);
        states = finalStates(ops);
        assert.deepEqual(pool.check().problems, []);
      }
      assertOk(pmempoolCheck(path));
      const expect = [...states.values()];
      for (const lba of [nblock - 1, 250, 251]) {
        if (!states.has(lba)) expect.push({ op: "Z", lba });
      }
      assertOk(blkutil("verify", path, writeSpec(expect)));
      assertOk(blkutil("check", path, `${bsize}`));
      // libpmemblk writes on top; we read the result
      const more = randomOps(500, nblock, 99 + bsize);
      assertOk(blkutil("apply", path, writeSpec(more)));
      finalStates(more, states);
      {
        using pool = BlockPool.open(path, { blockSize: bsize });
        verify(pool, states);
        assert.deepEqual(pool.check().problems, []);
        apply(pool, randomOps(300, nblock, 3));
      }
      assertOk(pmempoolCheck(path));
    }
  },
  { skip },
);

test(
  "`BlockPool` lays out the BTT of a libpmemblk pool on its first update",
  () => {
    for (const first of ["W", "E"] as const) {
      const path = tempPath();
      assertOk(blkutil("create", path, "520", `${32 * MiB}`));
      const ops: SpecLine[] = first === "W"
        ? [{ op: "W", lba: 3, seed: 1 }, { op: "Z", lba: 5 }]
        : [{ op: "E", lba: 3 }, { op: "W", lba: 4, seed: 2 }];
      {
        using pool = BlockPool.open(path);
        pool.setZero(9); // no layout yet: a no-op, like libpmemblk
        assert.equal(pool.check().formatted, false);
        apply(pool, ops);
        assert.equal(pool.check().formatted, true);
        assert.deepEqual(pool.check().problems, []);
      }
      assertOk(pmempoolCheck(path));
      assertOk(
        blkutil("verify", path, writeSpec([...ops, { op: "Z", lba: 9 }])),
      );
    }
  },
  { skip },
);

test(
  "`pmempool check` and libpmemblk accept a write this pool finishes at open",
  () => {
    const path = tempPath();
    let info;
    {
      using pool = BlockPool.create(path, {
        blockSize: 512,
        poolSize: 32 * MiB,
      });
      pool.write(5, pattern(5, 1, 512));
      info = decodeBttInfo(peek(path, BTT, 4096));
    }
    // lane 9 (never used): entry A is initial, so B gets seq 2
    const slot = BTT + info.flogOff + 9 * 64;
    const free =
      new DataView(peek(path, slot + 4, 4).buffer).getUint32(0, true) &
      0x3fffffff;
    const mapAt = BTT + info.mapOff + 5 * 4;
    const old = new DataView(peek(path, mapAt, 4).buffer).getUint32(0, true);
    patch(path, BTT + info.dataOff + free * 512, pattern(5, 2, 512));
    const entry = new Uint8Array(16);
    const dv = new DataView(entry.buffer);
    dv.setUint32(0, 5, true);
    dv.setUint32(4, old, true);
    dv.setUint32(8, (free | 0xc0000000) >>> 0, true);
    dv.setUint32(12, 2, true);
    patch(path, slot + 16, entry);
    assertOk(pmempoolCheck(path)); // "unfinished write" is consistent
    assertOk(blkutil("check", path, "512"));
    assertOk(
      blkutil("verify", path, writeSpec([{ op: "W", lba: 5, seed: 2 }])),
    );
    using pool = BlockPool.open(path);
    assert.deepEqual(pool.read(5), pattern(5, 2, 512));
  },
  { skip },
);

test(
  "`BlockPool.open()` repairs a libpmemblk pool's corrupt info block",
  () => {
    const path = tempPath();
    assertOk(blkutil("create", path, "4096", `${64 * MiB}`));
    const ops: SpecLine[] = [];
    for (let lba = 0; lba < 100; lba++) ops.push({ op: "W", lba, seed: 3 });
    assertOk(blkutil("apply", path, writeSpec(ops)));
    patch(path, BTT + 100, new Uint8Array([1])); // bad checksum
    assert.equal(pmempoolCheck(path).status, 1);
    {
      using pool = BlockPool.open(path);
      verify(pool, finalStates(ops));
      assert.match(pool.check().repaired.join(), /restored the BTT info block/);
    }
    assertOk(pmempoolCheck(path));
    assertOk(blkutil("verify", path, writeSpec(ops)));
  },
  { skip },
);

test(
  "`check()`, `pmemblk_check` and `pmempool check` agree on corruption",
  () => {
    const path = tempPath();
    let info;
    {
      using pool = BlockPool.create(path, {
        blockSize: 512,
        poolSize: 32 * MiB,
      });
      for (let lba = 0; lba < 4; lba++) pool.write(lba, pattern(lba, 1, 512));
      info = decodeBttInfo(peek(path, BTT, 4096));
    }
    const map = BTT + info.mapOff;
    patch(path, map + 4, peek(path, map, 4)); // map[1] = map[0]
    assert.equal(pmempoolCheck(path).status, 1);
    assert.equal(blkutil("check", path, "512").status, 1);
    using pool = BlockPool.open(path);
    const report = pool.check();
    assert.equal(report.consistent, false);
    assert.match(report.problems.join("\n"), /referenced more than once/);
  },
  { skip },
);

test(
  "`BlockPool.open()` and libpmemblk exclude each other across processes",
  async () => {
    const path = tempPath();
    assertOk(blkutil("create", path, "512", `${32 * MiB}`));
    {
      using _pool = BlockPool.open(path);
      assert.equal(blkutil("open", path).stdout.trim(), "errno 11");
    }
    assert.equal(blkutil("open", path).stdout.trim(), "ok");
    const child = spawn(blkutilPath(), ["hold", path], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on("data", (d) => {
          if (String(d).includes("held")) resolve();
        });
        child.on("exit", (code) => reject(new Error(`helper exited ${code}`)));
      });
      assert.throws(() => BlockPool.open(path), (e: unknown) => {
        assert.ok(e instanceof PmemError);
        assert.equal(e.code, -11);
        assert.match(e.message, /already open/);
        return true;
      });
    } finally {
      const exited = new Promise((r) => child.on("exit", r));
      child.stdin!.end();
      await exited;
    }
    BlockPool.open(path).close();
  },
  { skip: LIBPMEMBLK_SKIP },
);
