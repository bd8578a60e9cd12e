// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
import { fletcher64 } from "../pmdk/checksum.ts";
import {
  checkPoolHeader,
  decodePoolHeader,
  encodePoolHeader,
  hostArch,
  newPoolHeader,
  uuidToBytes,
  uuidToString,
} from "../pmdk/pool_header.ts";
import {
  ARENA_MAX_SIZE,
  decodeBttInfo,
  encodeBttInfo,
  infoFieldProblem,
  infoFromGeometry,
  infoProblem,
  internalLbaSize,
  poolGeometry,
} from "../blk/layout.ts";
import { MIN_POOL_SIZE } from "../blk/mod.ts";
import { BLK_POOL } from "../blk/header.ts";
import { assert, test } from "./_harness.ts";

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const BSIZES = [512, 520, 528, 4096, 4160, 4224];

/** PMDK's blk_nblock vectors: file size → nblock per block size. */
const VECTORS: [string, number, number[]][] = [
  ["16 MiB + 8 KiB", MIN_POOL_SIZE, [32202, 21439, 21439, 3829, 3588, 3588]],
  ["2 GiB", 2 * GiB, [4161462, 2781410, 2781410, 523511, 492729, 492729]],
  ["512 GiB", 512 * GiB, [
    1065417916,
    712118626,
    712118626,
    134086518,
    126206304,
    126206304,
  ]],
  ["2^39 + 8192", ARENA_MAX_SIZE + 8192, [
    1065417932,
    712118636,
    712118636,
    134086520,
    126206306,
    126206306,
  ]],
  ["513 GiB", 513 * GiB, [
    1067498499,
    713509189,
    713509189,
    134348143,
    126452538,
    126452538,
  ]],
  ["514 GiB", 514 * GiB, [
    1069579394,
    714900046,
    714900046,
    134610031,
    126699035,
    126699035,
  ]],
];

test("poolGeometry() reproduces every blk_nblock conformance vector", () => {
  for (const [name, size, counts] of VECTORS) {
    BSIZES.forEach((bsize, i) => {
      const g = poolGeometry(size, bsize);
      assert.equal(g.blockCount, counts[i], `${name}, bsize ${bsize}`);
      const sum = g.arenas.reduce((n, a) => n + a.externalNlba, 0);
      assert.equal(sum, g.blockCount);
    });
  }
  for (const bsize of BSIZES) {
    assert.throws(() => poolGeometry(2 * MiB, bsize), RangeError);
  }
});

test("poolGeometry() splits pools into 512 GiB arenas", () => {
  const one = poolGeometry(ARENA_MAX_SIZE + 8192, 4096);
  assert.equal(one.arenas.length, 1);
  assert.equal(one.arenas[0].nextOff, 0);
  const two = poolGeometry(513 * GiB, 4096);
  assert.equal(two.arenas.length, 2);
  assert.equal(two.arenas[0].nextOff, ARENA_MAX_SIZE);
  assert.equal(two.arenas[1].offset, ARENA_MAX_SIZE);
  assert.equal(two.arenas[1].nextOff, 0);
  // the reference's 520 GiB example: arena 1 is 8 GiB - 8 KiB
  const big = poolGeometry(520 * GiB, 4096);
  assert.equal(big.arenas[0].externalNlba, 134086520);
  assert.equal(big.arenas[0].internalNlba, 134086776);
  assert.equal(big.arenas[0].mapOff, 0x7fe007b000);
  assert.equal(big.arenas[0].flogOff, 0x7fffffb000);
  assert.equal(big.arenas[0].infoOff, 0x7ffffff000);
  assert.equal(big.arenas[1].externalNlba, 2094841);
  assert.equal(big.arenas[1].mapOff, 0x1ff7fb000);
  assert.equal(big.arenas[1].infoOff, 0x1ffffd000);
  // a remainder below 16 MiB is unused
  const tail = poolGeometry(ARENA_MAX_SIZE + 8192 + 15 * MiB, 4096);
  assert.equal(tail.arenas.length, 1);
});

test("poolGeometry() matches the 64 MiB worked example", () => {
  const a512 = poolGeometry(64 * MiB, 512).arenas[0];
  assert.equal(a512.internalLbaSize, 512);
  assert.equal(a512.internalNlba, 129984);
  assert.equal(a512.externalNlba, 129728);
  assert.equal(a512.dataOff, 0x1000);
  assert.equal(a512.mapOff, 0x3f7a000);
  assert.equal(a512.flogOff, 0x3ff9000);
  assert.equal(a512.infoOff, 0x3ffd000);
  const a4k = poolGeometry(64 * MiB, 4096).arenas[0];
  assert.equal(a4k.internalNlba, 16359);
  assert.equal(a4k.externalNlba, 16103);
  assert.equal(a4k.mapOff, 0x3fe9000);
  assert.equal(a4k.flogOff, 0x3ff9000);
  assert.equal(a4k.infoOff, 0x3ffd000);
  assert.equal(poolGeometry(64 * MiB + 4095, 4096).blockCount, 16103);
});

test("poolGeometry() rejects blocks too large for the pool", () => {
  assert.equal(internalLbaSize(1), 512);
  assert.equal(internalLbaSize(513), 768);
  assert.equal(internalLbaSize(4096), 4096);
  assert.throws(() => poolGeometry(MIN_POOL_SIZE, 32768), RangeError);
  assert.throws(() => poolGeometry(64 * GiB, 2 ** 32 - 1), RangeError);
  assert.throws(() => poolGeometry(64 * GiB, 2 ** 31), /at least 512/);
  assert.equal(poolGeometry(2 * GiB, MiB).blockCount, 1791);
});

test("fletcher64() follows PMDK: lo and hi sums of u32 words", () => {
  const bytes = new Uint8Array(24);
  const dv = new DataView(bytes.buffer);
  dv.setUint32(0, 1, true);
  dv.setUint32(4, 2, true);
  dv.setUint32(8, 0xffffffff, true); // in the checksum field: ignored
  dv.setUint32(16, 3, true);
  // lo: 1, 3, 3, 3, 6, 6   hi: 1, 4, 7, 10, 16, 22
  assert.equal(fletcher64(bytes, 8), (22n << 32n) | 6n);
  // 32-bit wrap-around
  const big = new Uint8Array(16).fill(0xff);
  const lo = (0xffffffff * 2) % 2 ** 32;
  const hi = (0xffffffff + lo + lo + lo) % 2 ** 32;
  assert.equal(fletcher64(big, 8), (BigInt(hi) << 32n) | BigInt(lo));
  assert.throws(() => fletcher64(new Uint8Array(6), 0), RangeError);
});

test("fletcher64() CKSUM_2K quirk: skipped words still advance hi", () => {
  const bytes = new Uint8Array(4096);
  crypto.getRandomValues(bytes.subarray(0, 2048));
  const skipped = fletcher64(bytes, 4088, 2048);
  bytes.fill(0x5a, 2048, 4088); // ignored by the skip
  assert.equal(fletcher64(bytes, 4088, 2048), skipped);
  const head = fletcher64(bytes.subarray(0, 2048), 4088);
  const lo2k = head & 0xffffffffn;
  const hi2k = head >> 32n;
  const hi = (hi2k + 512n * lo2k) & 0xffffffffn;
  assert.equal(skipped, (hi << 32n) | lo2k);
  assert.notEqual(skipped, head);
});

// Bug: fletcher64 checked neither offset: a checksumOffset left out (or
// NaN, a string, -1) made every word compare false, so the checksum
// counted no word at all and was returned as if right; a detached array
// failed on the engine's DataView message.
test("fletcher64() refuses offsets that are no non-negative integers, and a detached array", () => {
  const bytes = new Uint8Array(16).fill(1);
  const bad: [unknown, unknown, ErrorConstructor][] = [
    [undefined, undefined, TypeError],
    ["8", undefined, TypeError],
    [8n, undefined, TypeError],
    [NaN, undefined, RangeError],
    [-8, undefined, RangeError],
    [7.5, undefined, RangeError],
    [Infinity, undefined, RangeError],
    [8, "12", TypeError],
    [8, -4, RangeError],
    [8, NaN, RangeError],
  ];
  for (const [offset, skip, type] of bad) {
    assert.throws(
      () => fletcher64(bytes, offset as number, skip as number),
      (e: unknown) =>
        e instanceof type &&
        /^Cannot checksum: (checksumOffset|skipFrom) must be/.test(
          (e as Error).message,
        ),
      `${String(offset)}, ${String(skip)}`,
    );
  }
  assert.equal(
    fletcher64(bytes, 8, null as unknown as number),
    fletcher64(bytes, 8),
  );
  const gone = new Uint8Array(16);
  structuredClone(gone.buffer, { transfer: [gone.buffer] });
  assert.throws(
    () => fletcher64(gone, 8),
    (e: unknown) =>
      e instanceof TypeError && /^Cannot checksum: bytes is detached/
        .test((e as Error).message),
  );
});

test("uuidToBytes() stores the first three groups little-endian", () => {
  const text = "fd3ed27b-5ac6-41f7-a58c-3ec3d5dad0d4";
  const b = uuidToBytes(text);
  assert.deepEqual(
    [...b],
    [
      0x7b,
      0xd2,
      0x3e,
      0xfd,
      0xc6,
      0x5a,
      0xf7,
      0x41,
      0xa5,
      0x8c,
      0x3e,
      0xc3,
      0xd5,
      0xda,
      0xd0,
      0xd4,
    ],
  );
  assert.equal(uuidToString(b), text);
  assert.throws(() => uuidToBytes("not-a-uuid"), TypeError);
});

test("encodePoolHeader() round-trips and checkPoolHeader() names problems", () => {
  const arch = hostArch();
  assert.ok(arch !== null);
  const h = newPoolHeader(BLK_POOL, 1_700_000_000, arch);
  const bytes = encodePoolHeader(h);
  const back = checkPoolHeader(bytes, BLK_POOL, arch);
  assert.ok(typeof back !== "string", String(back));
  assert.deepEqual(encodePoolHeader(decodePoolHeader(bytes)), bytes);
  assert.equal(back.incompat, 0x6);
  assert.equal(back.compat, 0x1);
  assert.equal(back.crtime, 1_700_000_000);
  assert.equal(uuidToString(back.prevPartUuid), uuidToString(back.uuid));
  const corrupt = (at: number, value: number) => {
    const b = bytes.slice();
    b[at] = value;
    return checkPoolHeader(b, BLK_POOL, arch);
  };
  assert.match(String(corrupt(0, 0x51)), /not a pmemblk pool: the signature/);
  assert.match(String(corrupt(8, 2)), /major version 2/);
  assert.match(String(corrupt(16, 0x46)), /unknown incompatible features/);
  assert.match(String(corrupt(121, 1)), /checksum/);
  assert.equal(typeof corrupt(3000, 1), "object"); // outside CKSUM_2K
  assert.match(
    String(checkPoolHeader(bytes, BLK_POOL, {
      ...arch,
      machine: arch.machine + 1,
    })),
    /another architecture/,
  );
  assert.match(
    String(checkPoolHeader(new Uint8Array(4096), BLK_POOL, arch)),
    /all zeros/,
  );
});

test("encodeBttInfo() round-trips; infoProblem() and infoFieldProblem() validate", () => {
  const g = poolGeometry(64 * MiB, 4096);
  const parent = crypto.getRandomValues(new Uint8Array(16));
  const info = infoFromGeometry(g.arenas[0], new Uint8Array(16), parent);
  const bytes = encodeBttInfo(info);
  assert.equal(infoProblem(bytes, parent), null);
  assert.deepEqual(decodeBttInfo(bytes), info);
  assert.equal(infoFieldProblem(info, 4096, g.rawSize), null);
  assert.match(String(infoProblem(bytes, new Uint8Array(16))), /parent UUID/);
  const flipped = bytes.slice();
  flipped[70] ^= 1;
  assert.match(String(infoProblem(flipped, parent)), /bad checksum/);
  assert.match(String(infoProblem(new Uint8Array(4096), parent)), /all zeros/);
  assert.match(
    String(infoFieldProblem(info, 512, g.rawSize)),
    /block size 4096 differs/,
  );
  assert.match(
    String(
      infoFieldProblem(
        { ...info, mapOff: info.mapOff - 8192 },
        4096,
        g.rawSize,
      ),
    ),
    /overlaps/,
  );
  assert.match(
    String(infoFieldProblem(info, 4096, g.rawSize - 8192)),
    /beyond/,
  );
  assert.match(
    String(infoFieldProblem({ ...info, nextOff: 4096 }, 4096, g.rawSize)),
    /neither 0 nor 2\^39/,
  );
});
