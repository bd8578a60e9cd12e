// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Crash states and corruption crafted byte by byte into pool files.
import { type BttInfo, decodeBttInfo } from "../blk/layout.ts";
import { BlockPool } from "../blk/mod.ts";
import { fletcher64 } from "../pmdk/checksum.ts";
import { PmemError } from "../errors/mod.ts";
import { assert, patch, peek, tempPath, test } from "./_harness.ts";
import { pattern } from "./c/blkutil.ts";

const BS = 4096;
const BTT = 8192;

function u32(...values: number[]): Uint8Array {
  const b = new Uint8Array(values.length * 4);
  const dv = new DataView(b.buffer);
  values.forEach((v, i) => dv.setUint32(i * 4, v >>> 0, true));
  return b;
}

function readU32(path: string, offset: number): number {
  return new DataView(peek(path, offset, 4).buffer).getUint32(0, true);
}

/** A 32 MiB pool with blocks 0..9 written (seed 1); returns its info. */
function makePool(): { path: string; info: BttInfo } {
  const path = tempPath();
  using pool = BlockPool.create(path, { blockSize: BS, poolSize: 32 << 20 });
  for (let lba = 0; lba < 10; lba++) pool.write(lba, pattern(lba, 1, BS));
  return { path, info: decodeBttInfo(peek(path, BTT, 4096)) };
}

function expectData(pool: BlockPool, seed = 1): void {
  for (let lba = 0; lba < 10; lba++) {
    assert.deepEqual(pool.read(lba), pattern(lba, seed, BS), `block ${lba}`);
  }
}

function pmemError(code: number, message: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof PmemError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  };
}

test("`BlockPool.open()` finishes a write committed in the flog but not the map", () => {
  const { path, info } = makePool();
  // Lane 0 wrote last: its current entry is B (seq 2, as 10 writes ran on
  // it: seq 2,3,1,2,3,1,2,3,1,2 → B). Its free block takes the new data.
  const slot = BTT + info.flogOff;
  const pair = new DataView(peek(path, slot, 32).buffer);
  const seqA = pair.getUint32(12, true);
  const seqB = pair.getUint32(28, true);
  const cur = seqB === [0, 2, 3, 1][seqA] ? 16 : 0;
  const free = pair.getUint32(cur + 4, true) & 0x3fffffff;
  const next = cur === 16 ? 0 : 16;
  const seq = [0, 2, 3, 1][pair.getUint32(cur + 12, true)];
  const lba = 5;
  const mapAt = BTT + info.mapOff + lba * 4;
  const old = readU32(path, mapAt);
  patch(path, BTT + info.dataOff + free * BS, pattern(lba, 2, BS));
  patch(path, slot + next, u32(lba, old, free | 0xc0000000, seq));
  assert.equal(readU32(path, mapAt), old); // the map was not updated
  {
    using pool = BlockPool.open(path);
    assert.deepEqual(pool.read(lba), pattern(lba, 2, BS));
    assert.deepEqual(pool.read(4), pattern(4, 1, BS));
    const report = pool.check();
    assert.deepEqual(report.problems, []);
    assert.deepEqual(report.repaired, [
      "arena 0: finished the interrupted write of block 5 (flog slot 0)",
    ]);
    pool.write(6, pattern(6, 3, BS)); // lane 0 now writes to the old block
  }
  assert.equal(readU32(path, mapAt), (free | 0xc0000000) >>> 0);
  using pool = BlockPool.open(path);
  assert.deepEqual(pool.read(lba), pattern(lba, 2, BS));
  assert.deepEqual(pool.read(6), pattern(6, 3, BS));
  assert.deepEqual(pool.check().repaired, []);
});

test("`BlockPool.open()` restores a corrupt primary info block from its backup", () => {
  for (const damage of ["checksum", "zeroed", "signature"]) {
    const { path, info } = makePool();
    const good = peek(path, BTT, 4096);
    if (damage === "checksum") patch(path, BTT + 60, u32(12345));
    if (damage === "zeroed") patch(path, BTT, new Uint8Array(4096));
    if (damage === "signature") patch(path, BTT, new Uint8Array(3));
    {
      using pool = BlockPool.open(path);
      expectData(pool);
      const report = pool.check();
      assert.deepEqual(report.problems, [], damage);
      assert.equal(report.repaired.length, 1, damage);
      assert.match(
        report.repaired[0],
        /arena 0: restored the BTT info block from its backup/,
      );
    }
    assert.deepEqual(peek(path, BTT, 4096), good, damage);
    assert.deepEqual(peek(path, BTT + info.infoOff, 4096), good, damage);
  }
});

test("`BlockPool.open()` rewrites a corrupt backup info block", () => {
  const { path, info } = makePool();
  const good = peek(path, BTT, 4096);
  patch(path, BTT + info.infoOff + 100, u32(7));
  {
    using pool = BlockPool.open(path);
    expectData(pool);
    assert.match(
      pool.check().repaired[0],
      /rewrote the backup BTT info block \(bad checksum/,
    );
  }
  assert.deepEqual(peek(path, BTT + info.infoOff, 4096), good);
});

test("`BlockPool.open()` finds a backup info block that differs from its primary in any one byte, the first and the last included", () => {
  // the open compares the two 4 KiB blocks word by word: a byte of the
  // first or last word, or of any word between, missed would leave the
  // damaged backup for a later open to restore the primary from
  for (const at of [0, 1, 2047, 4092, 4094, 4095]) {
    const { path, info } = makePool();
    const good = peek(path, BTT, 4096);
    const damaged = new Uint8Array([good[at] ^ 0x10]);
    patch(path, BTT + info.infoOff + at, damaged);
    {
      using pool = BlockPool.open(path);
      expectData(pool);
      const report = pool.check();
      assert.deepEqual(report.problems, [], `byte ${at}`);
      assert.match(
        report.repaired[0] ?? "",
        /arena 0: rewrote the backup BTT info block/,
        `byte ${at}`,
      );
    }
    assert.deepEqual(peek(path, BTT + info.infoOff, 4096), good, `byte ${at}`);
  }
});

test("`BlockPool.open()` refuses a pool whose info block and backup are both corrupt", () => {
  const { path, info } = makePool();
  patch(path, BTT + 60, u32(1));
  patch(path, BTT + info.infoOff + 60, u32(2));
  assert.throws(
    () => BlockPool.open(path),
    pmemError(
      -22,
      /arena 0: the BTT info block is invalid \(bad checksum.*\) and so is its backup \(bad checksum/,
    ),
  );
  // a pool with its info blocks wiped but data in its map is not re-laid out
  patch(path, BTT, new Uint8Array(4096));
  patch(path, BTT + info.infoOff, new Uint8Array(4096));
  assert.throws(
    () => BlockPool.open(path),
    pmemError(-22, /the map is not empty; refusing to lay out/),
  );
});

test("`BlockPool.open()` rejects info blocks that lie about the geometry", () => {
  const { path } = makePool();
  const info = peek(path, BTT, 4096);
  const dv = new DataView(info.buffer);
  dv.setUint32(68, dv.getUint32(68, true) + 1000, true); // internal_nlba
  dv.setBigUint64(4088, fletcher64(info, 4088), true);
  patch(path, BTT, info);
  assert.throws(
    () => BlockPool.open(path),
    pmemError(-22, /arena 0: BTT info block: internal_nlba/),
  );
});

test("`BlockPool` write-protects an arena with an invalid flog pair, like libpmemblk", () => {
  const { path, info } = makePool();
  const slot = BTT + info.flogOff + 5 * 64;
  patch(path, slot + 12, u32(1));
  patch(path, slot + 28, u32(1)); // equal sequence numbers
  for (let round = 0; round < 2; round++) {
    using pool = BlockPool.open(path);
    expectData(pool);
    assert.throws(
      () => pool.write(1, pattern(1, 2, BS)),
      pmemError(-5, /arena 0 is in the error state/),
    );
    assert.throws(() => pool.setZero(1), pmemError(-5, /error state/));
    assert.throws(() => pool.setError(1), pmemError(-5, /error state/));
    const report = pool.check();
    assert.equal(report.consistent, false);
    assert.ok(
      report.problems.some((p) => /flog slot 5 has invalid sequence/.test(p)),
      report.problems.join("\n"),
    );
  }
  // the error flag reached both info blocks (with valid checksums)
  assert.equal(readU32(path, BTT + 48) & 1, 1);
  assert.equal(readU32(path, BTT + info.infoOff + 48) & 1, 1);
});

test("`BlockPool.open()` refuses flog entries that point outside the arena", () => {
  const { path, info } = makePool();
  patch(path, BTT + info.flogOff + 7 * 64, u32(info.externalNlba));
  assert.throws(
    () => BlockPool.open(path),
    pmemError(-22, /flog slot 7 names block \d+, beyond/),
  );
  const other = makePool();
  const at = BTT + other.info.flogOff + 3 * 64;
  patch(other.path, at + 4, u32(0x80000000 | other.info.internalNlba));
  assert.throws(
    () => BlockPool.open(other.path),
    pmemError(-22, /flog slot 3 names data block/),
  );
});

// check() marks 32 map entries in their initial form (no flags) at once;
// a block that an earlier entry already took must still be found twice
test("`check()` finds a block referenced twice when the second reference is a map entry in its initial form", () => {
  const { path, info } = makePool();
  const map = BTT + info.mapOff;
  // entry 20 takes block 40, which entry 40 (never written) maps to itself
  patch(path, map + 20 * 4, u32(0xc0000000 | 40));
  using pool = BlockPool.open(path);
  const report = pool.check();
  assert.equal(report.consistent, false);
  const text = report.problems.join("\n");
  assert.match(
    text,
    /data block 40 is referenced more than once \(map entry 40\)/,
  );
  assert.match(text, /data block 20 is not referenced/);
  assert.equal(report.problems.length, 2, text);
});

test("`BlockPool` reports corrupt map entries and never copies outside the arena", () => {
  const { path, info } = makePool();
  const map = BTT + info.mapOff;
  patch(path, map + 2 * 4, u32(0xc0000000 | (info.internalNlba + 5)));
  patch(path, map + 3 * 4, peek(path, map, 4)); // duplicate of block 0
  using pool = BlockPool.open(path);
  assert.throws(
    () => pool.read(2),
    pmemError(-22, /block 2 maps to data block \d+, beyond/),
  );
  assert.throws(
    () => pool.write(2, pattern(2, 2, BS)),
    pmemError(-22, /corrupt/),
  );
  assert.deepEqual(pool.read(3), pattern(0, 1, BS)); // what the map says
  const report = pool.check();
  assert.equal(report.consistent, false);
  const text = report.problems.join("\n");
  assert.match(text, /map entry 2 points to data block \d+, beyond/);
  assert.match(text, /is referenced more than once \(map entry 3\)/);
  assert.match(text, /data block \d+ is not referenced/);
  pool.write(4, pattern(4, 2, BS)); // other blocks still work
  assert.deepEqual(pool.read(4), pattern(4, 2, BS));
  assert.throws(() => pool.read(2), PmemError);
});

test("`BlockPool` opens a pool with ro_compat features read-only", () => {
  const { path, info } = makePool();
  const header = peek(path, 0, 4096);
  new DataView(header.buffer).setUint32(20, 1, true); // ro_compat
  new DataView(header.buffer).setBigUint64(
    4088,
    fletcher64(header, 4088, 2048),
    true,
  );
  patch(path, 0, header);
  // an unfinished write: recovery must not reach the read-only file
  const mapAt = BTT + info.mapOff + 8 * 4;
  const before = readU32(path, mapAt);
  const free = readU32(path, BTT + info.flogOff + 200 * 64 + 4) & 0x3fffffff;
  patch(path, BTT + info.dataOff + free * BS, pattern(8, 5, BS));
  patch(
    path,
    BTT + info.flogOff + 200 * 64 + 16,
    u32(8, before, free | 0xc0000000, 2),
  );
  {
    using pool = BlockPool.open(path);
    assert.deepEqual(pool.read(8), pattern(8, 5, BS));
    assert.throws(
      () => pool.write(0, pattern(0, 2, BS)),
      pmemError(-30, /read-only/),
    );
    assert.throws(() => pool.setZero(0), pmemError(-30, /read-only/));
    assert.deepEqual(pool.check().problems, []);
  }
  assert.equal(readU32(path, mapAt), before);
});
