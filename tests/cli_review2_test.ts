// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The CLI as a user meets it, a second pass: files that are no regular
// file, damaged pools, and what --repair claims.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { ObjectPool } from "../obj/mod.ts";
import { join } from "node:path";
import { LogStream, PmemLog } from "../stream/mod.ts";
import { cli, cliBatch, cliBatchWith } from "./cli_run.ts";
import {
  assert,
  patch,
  peek,
  runScript,
  tempDir,
  tempPath,
  test,
} from "./_harness.ts";

// Bug: `asyncpmem info FIFO` (and check, dump, zero, convert) hung
// forever: the format is told from the file's first bytes, and opening a
// FIFO for reading blocks until a writer comes. A FIFO is no pool: the
// file's type is now looked at first, and the command fails (exit 3).
test("CLI: a FIFO is refused, not waited on", () => {
  const dir = tempDir();
  const fifo = join(dir, "fifo");
  const made = spawnSync("mkfifo", [fifo]);
  assert.equal(made.status, 0, "mkfifo");
  const commands = [
    ["info", fifo],
    ["check", "--json", fifo],
    ["dump", fifo, "--lba", "0"],
    ["zero", fifo, "--lba", "0"],
    ["convert", fifo, join(dir, "out")],
  ];
  // a command that waits on the FIFO ends the batch at the timeout: an
  // error naming the command
  const runs = cliBatchWith({ timeout: 60_000 }, ...commands);
  commands.forEach((args, i) => {
    const r = runs[i];
    assert.equal(r.status, 3, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, /cannot read '.*fifo': it is a FIFO/, args[0]);
  });
}, { timeout: 120_000 });

// Bug: `asyncpmem check --repair` of a log stream whose recovery was due
// (a writer that ended without closing it) said "consistent", exit 0,
// and left the file as it was: the next check still reported the same
// recovery to do. The help says "with --repair recovery runs and its
// repairs are persisted", and the README shows `check --repair` on a
// stream; the stream's check only ever inspected it. Now --repair opens
// the stream (its recovery runs and is persisted) when recovery would
// write, and the report says so.
test(
  "CLI: check --repair of a log stream runs its recovery and persists it",
  () => {
    const path = tempPath("stream");
    LogStream.create(path, { size: 1 << 20 }).close();
    const writer = runScript(`
import { LogStream } from "@root/stream/mod.ts";
const s = LogStream.open(${JSON.stringify(path)});
const r = s.allocateRegion(65536);
for (let i = 0; i < 3; i++) s.append(r, new Uint8Array(100).fill(i));
process.exit(0); // ended with the stream open: its recovery is due
`);
    assert.equal(writer.status, 0, writer.stderr);
    assert.equal(LogStream.inspect(path).recovery.writes, true);
    const before = readFileSync(path);
    const check = cli("check", "--json", path);
    assert.equal(check.status, 0, check.stderr);
    assert.equal(JSON.parse(check.stdout).repairedNow, false);
    assert.deepEqual(readFileSync(path), before, "check alone wrote the file");

    const [repair, text] = cliBatch(
      ["check", "--repair", "--json", path],
      ["check", "--repair", path],
    );
    assert.equal(repair.status, 0, repair.stderr);
    const report = JSON.parse(repair.stdout);
    assert.equal(report.consistent, true);
    assert.equal(report.repairedNow, true);
    assert.equal(report.recovery.writes, true); // what it did
    assert.equal(LogStream.inspect(path).recovery.writes, false);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /recovery: nothing to do/);
    using s = LogStream.open(path);
    assert.equal([...s.entries(s.regions()[0])].length, 3);
  },
  { timeout: 120_000 },
);

// Bug: `asyncpmem info`, `check` (without --repair), `dump` and `convert`
// of a libpmemlog log whose writer ended with it open rewrote its header:
// the shutdown state went from dirty to clean (pmempool info: "Last
// shutdown: dirty", then "clean"), erasing the trace of the unclean end,
// though info describes a pool "without changing it" and check without
// --repair opens it read-only. Cause: they opened the log with
// PmemLog.open, which marks the header dirty while open and clean at
// close. Now they open it on a private mapping, as a log with ro_compat
// features is opened: nothing reaches the file.
test(
  "CLI: info, check, dump and convert leave a libpmemlog log's bytes alone",
  () => {
    const path = tempPath("log");
    PmemLog.create(path, { poolSize: 2 << 20 }).close();
    const writer = runScript(`
import { PmemLog } from "@root/stream/mod.ts";
const log = PmemLog.open(${JSON.stringify(path)});
log.append(new Uint8Array(100).fill(7));
process.exit(0); // ended with the log open: its shutdown state is dirty
`);
    assert.equal(writer.status, 0, writer.stderr);
    const before = readFileSync(path);
    const dir = tempDir();
    const commands = [
      ["info", path],
      ["info", "--json", path],
      ["check", path],
      ["check", "--json", path],
      ["dump", "--raw", path],
      ["convert", path, join(dir, "stream")],
      ["dump", "--raw", path],
    ];
    const runs = cliBatch(...commands);
    commands.forEach((args, i) => {
      assert.equal(runs[i].status, 0, `${args.join(" ")}: ${runs[i].stderr}`);
    });
    // (one subprocess ran them all: a command that rewrote the header
    // left it so, none of them restores a dirty shutdown state)
    assert.ok(readFileSync(path).equals(before), "a command changed the log");
    assert.equal(runs.at(-1)!.stdout, "\x07".repeat(100));
  },
  { timeout: 120_000 },
);

// Bug: `asyncpmem check --repair` of an object pool too damaged to open
// (a chunk table entry of unknown kind) with committed transactions
// still in its log wrote the file -- recovery replayed the log and moved
// the checkpoint before the heap was found damaged -- and reported
// "replayed": 0, "repaired": true. Now a repair first opens the pool on
// a private mapping: a pool too damaged to open is left as it is, and
// the report says nothing was repaired.
test(
  "CLI: check --repair leaves an object pool too damaged to open as it is",
  () => {
    const path = tempPath("obj");
    ObjectPool.create(path, { size: 8 << 20, layout: "L" }).close();
    const writer = runScript(`
import { ObjectPool } from "@root/obj/mod.ts";
const pool = ObjectPool.open(${JSON.stringify(path)}, { layout: "L" });
for (let i = 0; i < 3; i++) pool.tx((tx) => tx.alloc(64));
process.exit(0); // ended with the pool open: its log is to replay
`);
    assert.equal(writer.status, 0, writer.stderr);
    // a chunk table entry with an unknown kind
    const table = Number(
      new DataView(peek(path, 48, 8).buffer).getBigUint64(0, true),
    );
    patch(path, table + 8 * 5, Uint8Array.of(9, 0, 0, 0));
    const before = readFileSync(path);
    const r = cli("check", "--repair", "--json", path);
    assert.equal(r.status, 1, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.consistent, false);
    assert.equal(report.repaired, false);
    assert.match(report.problems.join(";"), /chunk table entry 5 is corrupt/);
    assert.ok(readFileSync(path).equals(before), "the repair wrote the pool");
  },
  { timeout: 120_000 },
);
