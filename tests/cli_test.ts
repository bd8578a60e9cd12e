// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The CLI run as a user runs it: a subprocess of the same runtime, on pools
// made by the library, by libpmemblk and by pmempool; output checked.
import { Buffer } from "node:buffer";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import process from "node:process";
import { BlockPool } from "../blk/mod.ts";
import { base64 } from "../cli/output.ts";
import { assert, patch, RUNTIME, tempPath, test } from "./_harness.ts";
import { requires } from "./_requires.ts";
import { CLI, cli, cliBatch } from "./cli_run.ts";
import { blkutil, pattern } from "./c/blkutil.ts";
import {
  applyLogSpec,
  type LogOp,
  logutil,
  writeLogSpec,
} from "./c/logutil.ts";
import { LogStream, PmemLog } from "../stream/mod.ts";

const MiB = 2 ** 20;

test("asyncpmem: help, usage errors and exit code 2", () => {
  // (the exit code the process gives, not only main's answer: once here)
  assert.equal(cli("frobnicate").status, 2);
  const commands = [
    "create",
    "info",
    "check",
    "dump",
    "zero",
    "convert",
    "bench",
  ];
  const small = tempPath("small");
  const [top, none, unknown, badOption, badSize, noFile, tooSmall, ...helps] =
    cliBatch(
      ["--help"],
      [],
      ["frobnicate"],
      ["info", "--nope", "x"],
      ["create", "blk", tempPath(), "--size", "lots"],
      ["info"],
      // values the library refuses before touching anything are usage
      // errors
      ["create", "blk", small, "--block-size", "512", "--size", "16M"],
      ...commands.map((c) => [c, "--help"]),
    );
  assert.equal(top.status, 0);
  commands.forEach((c, i) => {
    assert.match(top.stdout, new RegExp(`^  ${c} `, "m"));
    assert.equal(helps[i].status, 0, c);
    assert.match(helps[i].stdout, new RegExp(`^usage: asyncpmem ${c}`), c);
  });
  assert.match(top.stdout, /exit codes: 0 ok, 1 inconsistent, 2 usage, 3 I\/O/);
  assert.equal(none.status, 2);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  assert.equal(badOption.status, 2);
  assert.match(badOption.stderr, /--nope/);
  assert.equal(badSize.status, 2);
  assert.equal(noFile.status, 2);
  assert.equal(tooSmall.status, 2, tooSmall.stderr);
  assert.match(tooSmall.stderr, /--size must be at least/);
  assert.equal(existsSync(small), false);
});

test("asyncpmem: a convert that fails leaves no file behind", () => {
  const log = tempPath("log");
  assert.equal(cli("create", "log", log, "--size", "8M").status, 0);
  {
    using l = PmemLog.open(log);
    for (let i = 0; i < 1000; i++) l.append(new Uint8Array(1000));
  }
  const out = tempPath("out");
  const [r, again] = cliBatch(
    ["convert", log, out, "--size", "64K"],
    // convert refuses a DST that exists: this one succeeds only where the
    // failed one left nothing in the way
    ["convert", log, out],
  );
  // a --size too small for the data is the user's mistake: a usage error
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--size 64K is too small for the data/);
  assert.equal(again.status, 0, again.stderr);
});

test("asyncpmem: create, info, dump, zero and check a block pool", () => {
  const path = tempPath();
  const created = cli(
    "create",
    "blk",
    path,
    "--block-size",
    "4096",
    "--size",
    "32M",
  );
  assert.equal(created.status, 0, created.stderr);
  assert.match(created.stdout, /^created .*: 7919 blocks of 4096 B$/m);
  {
    using pool = BlockPool.open(path);
    pool.write(5, pattern(5, 1, 4096));
    pool.setError(6);
  }
  // (before the batch: its zero clears block 5)
  const raw = spawnSync(process.execPath, [
    ...(RUNTIME === "deno" ? ["run", "-A", "--no-check"] : []),
    CLI,
    "dump",
    path,
    "--lba",
    "5",
    "--raw",
  ]);
  const [
    info,
    text,
    dump,
    json,
    rawAndJson,
    past,
    failed,
    zero,
    check,
  ] = cliBatch(
    ["info", path, "--json"],
    ["info", path],
    ["dump", path, "--lba", "5"],
    ["dump", path, "--lba", "4", "--count", "2", "--json"],
    ["dump", path, "--lba", "5", "--raw", "--json"],
    ["dump", path, "--lba", "7919"],
    ["dump", path, "--lba", "6"],
    ["zero", path, "--lba", "5", "--json"],
    ["check", path],
  );
  assert.equal(info.status, 0, info.stderr);
  const j = JSON.parse(info.stdout);
  assert.equal(j.kind, "blk");
  assert.equal(j.blockSize, 4096);
  assert.equal(j.blockCount, 7919);
  assert.deepEqual(j.fill, { written: 1, zero: 0, error: 1, unwritten: 7917 });
  assert.equal(j.arenas.length, 1);
  assert.deepEqual(j.pendingRecovery, []);
  assert.match(text.stdout, /^format: +libpmemblk \(PMEMBLK\)$/m);
  assert.match(text.stdout, /^fill: +1 written, 0 zeroed, 1 in error/m);
  assert.equal(dump.status, 0, dump.stderr);
  const first = pattern(5, 1, 16);
  const hex = Array.from(first, (b) => b.toString(16).padStart(2, "0")).join(
    " ",
  );
  assert.ok(
    dump.stdout.includes(`00005000  ${hex}`),
    dump.stdout.slice(0, 200),
  );
  assert.deepEqual(new Uint8Array(raw.stdout), pattern(5, 1, 4096));
  assert.equal(json.status, 0, json.stderr);
  const doc = JSON.parse(json.stdout);
  assert.deepEqual(
    [
      doc.kind,
      doc.path,
      doc.blockSize,
      doc.blocks.map((b: { lba: number }) => b.lba),
    ],
    ["blk", path, 4096, [4, 5]],
  );
  assert.deepEqual(fromBase64(doc.blocks[0].data), new Uint8Array(4096));
  assert.deepEqual(fromBase64(doc.blocks[1].data), pattern(5, 1, 4096));
  assert.equal(rawAndJson.status, 2);
  assert.equal(past.status, 2);
  assert.equal(failed.status, 3); // the block is in the error state
  assert.match(failed.stderr, /block 6 is in the error state/);
  assert.equal(zero.status, 0, zero.stderr);
  assert.deepEqual(JSON.parse(zero.stdout), { zeroed: 1 });
  assert.equal(check.status, 0, check.stderr);
  assert.match(check.stdout, /: consistent$/m);
  using pool = BlockPool.open(path);
  assert.deepEqual(pool.read(5), new Uint8Array(4096));
});

test("asyncpmem: check reports what recovery would do, repairs with --repair, exits 1 when inconsistent", () => {
  const path = tempPath();
  BlockPool.create(path, { blockSize: 512, poolSize: 17 * MiB }).close();
  // a corrupt primary info block: recovery restores it from its backup
  patch(path, 8192 + 100, new Uint8Array([0xff, 0xff]));
  const before = new Uint8Array(readFileSync(path));
  // damaged as stored, as pmempool check says: inconsistent until repaired
  const dry = cli("check", path, "--json");
  assert.equal(dry.status, 1, dry.stderr);
  const report = JSON.parse(dry.stdout);
  assert.equal(report.repairedNow, false);
  assert.equal(report.consistent, false);
  assert.match(
    report.repaired[0],
    /restored the BTT info block from its backup/,
  );
  assert.match(
    report.problems[0],
    /must restore the BTT info block from its backup/,
  );
  assert.deepEqual(new Uint8Array(readFileSync(path)), before); // untouched
  const [fix, again] = cliBatch(
    ["check", path, "--repair"],
    ["check", path, "--json"],
  );
  assert.equal(fix.status, 0, fix.stderr);
  assert.match(fix.stdout, /^repaired: arena 0: restored the BTT info block/m);
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(JSON.parse(again.stdout).repaired, []);
  // both info blocks broken: the pool cannot be opened — inconsistent
  const arena = (() => {
    using pool = BlockPool.open(path, { readOnly: true });
    return pool.info().arenas[0];
  })();
  patch(path, arena.offset + 100, new Uint8Array([0xff]));
  patch(path, arena.offset + arena.size - 4096 + 100, new Uint8Array([0xff]));
  const [broken, brokenJson] = cliBatch(
    ["check", path],
    ["check", path, "--json"],
  );
  assert.equal(broken.status, 1, broken.stdout + broken.stderr);
  assert.match(broken.stderr, /BTT info block is invalid/);
  assert.equal(brokenJson.status, 1, brokenJson.stderr);
  const r = JSON.parse(brokenJson.stdout);
  assert.equal(r.consistent, false);
  assert.equal(r.kind, "blk");
  assert.match(r.problems[0], /BTT info block is invalid/);
});

test("asyncpmem: check finds a pool with a damaged signature inconsistent (exit 1), as pmempool check does", () => {
  const path = tempPath();
  BlockPool.create(path, { blockSize: 512, poolSize: 17 * MiB }).close();
  patch(path, 0, new TextEncoder().encode("XXXX"));
  const [text, json, info, absent] = cliBatch(
    ["check", path],
    ["check", path, "--json"],
    ["info", path],
    ["check", tempPath("absent")],
  );
  assert.equal(text.status, 1, text.stdout + text.stderr);
  assert.match(text.stderr, /no pool signature this tool knows/);
  assert.equal(json.status, 1, json.stderr);
  const r = JSON.parse(json.stdout);
  assert.deepEqual([r.kind, r.path, r.consistent], [null, path, false]);
  assert.match(r.problems[0], /header is damaged/);
  // other commands still call it a usage error; a missing file is I/O
  assert.equal(info.status, 2);
  assert.equal(absent.status, 3);
});

test("the CLI's base64() matches node:buffer's across its 24 KiB steps and padding", () => {
  for (const n of [0, 1, 2, 3, 24575, 24576, 24577, 60001]) {
    const data = pattern(n, 3, n);
    assert.equal(base64(data), Buffer.from(data).toString("base64"), `${n}`);
  }
});

test("asyncpmem: inspects pools libpmemblk and pmempool created", () => {
  const ours = tempPath("libpmemblk");
  const made = blkutil("create", ours, "4096", `${64 * MiB}`);
  assert.equal(made.status, 0, made.stderr);
  const theirs = tempPath("pmempool");
  const r = spawnSync("pmempool", [
    "create",
    "blk",
    "512",
    "--size",
    "32M",
    theirs,
  ], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  const [info, check, theirInfo, theirCheck] = cliBatch(
    ["info", ours, "--json"],
    ["check", ours],
    ["info", theirs, "--json"],
    ["check", theirs],
  );
  assert.equal(info.status, 0, info.stderr);
  assert.equal(JSON.parse(info.stdout).blockSize, 4096);
  assert.equal(check.status, 0, check.stderr);
  const pinfo = JSON.parse(theirInfo.stdout);
  assert.equal(pinfo.blockSize, 512);
  assert.equal(pinfo.formatted, false); // libpmemblk lays out on first write
  assert.equal(theirCheck.status, 0, theirCheck.stderr);
}, { skip: requires("libpmemblk", "pmempool") });

test("asyncpmem: create, info, check and dump a log stream", () => {
  const path = tempPath();
  const made = cli("create", "stream", path, "--size", "2M");
  assert.equal(made.status, 0, made.stderr);
  assert.match(made.stdout, /^created .*: a log stream of 2 MiB/m);
  {
    using s = LogStream.open(path);
    const r = s.allocateRegion(64 << 10);
    for (const t of ["alpha", "beta", "gamma"]) {
      s.append(r, new TextEncoder().encode(t));
    }
  }
  // a copy with a damaged region table, checked beside the pool
  const damaged = tempPath("damaged");
  copyFileSync(path, damaged);
  patch(damaged, 4096, new Uint8Array([0xee]));
  const [infoJson, text, check, json, noRegion, broken] = cliBatch(
    ["info", path, "--json"],
    ["info", path],
    ["check", path],
    ["dump", path, "--region", "0", "--count", "2", "--json"],
    ["dump", path, "--region", "5"],
    ["check", damaged],
  );
  const info = JSON.parse(infoJson.stdout);
  assert.equal(info.kind, "stream");
  assert.equal(info.size, 2 * MiB);
  assert.equal(info.regions.length, 1);
  assert.equal(info.regions[0].entries, 3);
  assert.equal(info.recovery.writes, false);
  assert.match(text.stdout, /^format: +asyncpmem log stream$/m);
  assert.match(text.stdout, /used: +.* in 3 entries$/m);
  assert.equal(check.status, 0, check.stderr);
  assert.match(check.stdout, /: consistent$/m);
  const raw = spawnSync(process.execPath, [
    ...(RUNTIME === "deno" ? ["run", "-A", "--no-check"] : []),
    CLI,
    "dump",
    path,
    "--region",
    "0",
    "--from",
    "2",
    "--raw",
  ]);
  assert.equal(new TextDecoder().decode(raw.stdout), "betagamma");
  assert.equal(json.status, 0, json.stderr);
  const doc = JSON.parse(json.stdout);
  assert.deepEqual([doc.kind, doc.path, doc.region], ["stream", path, 0]);
  assert.deepEqual(
    doc.entries.map((e: { timestamp: number; size: number; data: string }) => [
      e.timestamp,
      e.size,
      new TextDecoder().decode(fromBase64(e.data)),
    ]),
    [[1, 5, "alpha"], [2, 4, "beta"]],
  );
  assert.equal(noRegion.status, 2);
  // a damaged region table: named, and the check fails with exit code 1
  assert.equal(broken.status, 1, broken.stdout + broken.stderr);
  assert.match(broken.stderr, /region table slot 0 is corrupt/);
});

test(
  "asyncpmem: converts a libpmemlog log into a stream and back, byte for byte",
  () => {
    const log = tempPath("c.log");
    assert.equal(logutil("create", log, `${4 * MiB}`).status, 0);
    const ops: LogOp[] = [
      { op: "A", seed: 1, len: 5000 },
      { op: "V", seed: 2, len: 700, seed2: 3, len2: 9000 },
    ];
    assert.equal(logutil("apply", log, writeLogSpec(ops)).status, 0);
    const data = applyLogSpec(new Uint8Array(0), ops);
    const stream = tempPath("s.stream");
    const back = tempPath("back.log");
    const [infoJson, to, from, json, check] = cliBatch(
      ["info", log, "--json"],
      ["convert", log, stream, "--chunk", "4096"],
      ["convert", stream, back, "--region", "0"],
      ["dump", back, "--json"],
      ["check", back],
    );
    const info = JSON.parse(infoJson.stdout);
    assert.equal(info.kind, "log");
    assert.equal(info.used, data.length);
    assert.equal(to.status, 0, to.stderr);
    {
      using s = LogStream.open(stream);
      const [r] = s.regions();
      const parts = [...s.entries(r)].map((e) => e.data.slice());
      assert.deepEqual(parts.map((p) => p.length), [4096, 4096, 4096, 2412]);
      assert.deepEqual(concat(parts), data);
    }
    assert.equal(from.status, 0, from.stderr);
    const out = tempPath("dump.bin");
    const dumped = logutil("dump", back, out);
    assert.equal(dumped.status, 0, dumped.stderr);
    assert.deepEqual(new Uint8Array(readFileSync(out)), data);
    assert.equal(json.status, 0, json.stderr);
    const doc = JSON.parse(json.stdout);
    assert.deepEqual([doc.kind, doc.size], ["log", data.length]);
    assert.deepEqual(fromBase64(doc.data), data);
    assert.equal(check.status, 0, check.stderr);
  },
  { skip: requires("libpmemlog") },
);

/** The bytes of a base64 string (what `--json` dumps carry). */
function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

test("asyncpmem: create, info and check --json name the kind and the file, for every kind", () => {
  const made: [string, string[]][] = [
    ["blk", ["--block-size", "512", "--size", "32M"]],
    ["stream", ["--size", "2M"]],
    ["log", ["--size", "8M"]],
    ["obj", ["--size", "16M", "--layout", "x"]],
  ];
  const paths = made.map(([kind]) => tempPath(kind));
  const runs = cliBatch(
    ...made.flatMap(([kind, options], i) => [
      ["create", kind, paths[i], ...options, "--json"],
      ["info", paths[i], "--json"],
      ["check", paths[i], "--json"],
    ]),
  );
  made.forEach(([kind], i) => {
    ["create", "info", "check"].forEach((command, k) => {
      const r = runs[3 * i + k];
      assert.equal(r.status, 0, `${kind} ${command}: ${r.stderr}`);
      const json = JSON.parse(r.stdout);
      assert.equal(json.kind, kind, `${kind} ${command}`);
      assert.equal(json.path, paths[i], `${kind} ${command}`);
    });
  });
});
