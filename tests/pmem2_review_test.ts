// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Edges of `pmem2/` found by a review: each test exposed a bug (named in
 * its comment). The cases that faulted or hung the process run in a child
 * process, so a regression fails the test instead of the runner.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import {
  type Granularity,
  mapFile,
  type MapFileOptions,
  Mapping,
  PmemError,
  Source,
  ThreadMover,
  wait,
} from "../mod.ts";
import { crc32c } from "../pmem2/crc32c.ts";
import { FileShare } from "../pmem2/file_share.ts";
import {
  assert,
  printed,
  runScript,
  tempDir,
  tempPath,
  test,
} from "./_harness.ts";

/**
 * {@linkcode runScript} with extra environment variables for the child
 * alone: set in this process's environment, they reached every mapping a
 * test file running beside this one made meanwhile (`deno test
 * --parallel` runs files in one process).
 */
function runWithEnv(env: Record<string, string>, source: string) {
  return runScript(source, 30_000, { env });
}

// Bug: a mapping with protection "none" flushed its range with the CPU's
// cache-line flushes when its granularity was below page (persistent
// memory, or PMEM2_FORCE_GRANULARITY here): a flush of a page without
// read access faults, so persist(), flush() and persistRanges() killed
// the process with SIGSEGV. Such a mapping now refuses persistence with
// EACCES, as it refuses read(), on every granularity.
test("a mapping without access refuses persist and flush, never faults", () => {
  const path = tempPath();
  writeFileSync(path, new Uint8Array(1 << 16));
  for (const granularity of ["CACHE_LINE", "PAGE"]) {
    const r = runWithEnv(
      { PMEM2_FORCE_GRANULARITY: granularity },
      `
      import { native } from "@root/ffi/lib.ts";
      import { mapFile } from "@root/mod.ts";
      import { nativeHandleOf } from "@root/pmem2/mapping_access.ts";
      const map = mapFile(${JSON.stringify(path)}, { protection: "none" });
      const out = [map.granularity];
      for (const [name, f] of [
        ["persist", () => map.persist(0, 64)],
        ["flush", () => map.flush(4096, 64)],
        ["deepFlush", () => map.deepFlush(0, 64)],
        ["persistRanges", () => map.persistRanges([{ offset: 0, length: 8 }])],
        // refused with nothing to flush too, as persist is (a review-6 fix)
        ["persistRanges []", () => map.persistRanges([])],
      ]) {
        try { f(); out.push(name + " ok"); }
        catch (e) { out.push(name + " " + e.name + " " + e.code); }
      }
      // the shim refuses too, for its native callers
      const h = nativeHandleOf(map);
      out.push("shim " + native.ap_map_persist(h, 0, 64) + " " +
        native.ap_map_flush(h, 0, 64) + " " +
        native.ap_map_deep_flush(h, 0, 64));
      map.drain(); // touches no memory
      map.close();
      console.log(out.join("; "));
    `,
    );
    assert.equal(r.signal, null, `${granularity}: ${r.stderr}`);
    assert.equal(r.status, 0, `${granularity}: ${r.stderr}`);
    assert.equal(
      r.stdout.trim(),
      `${granularity === "PAGE" ? "page" : "cache-line"}; ` +
        "persist PmemError -13; flush PmemError -13; " +
        "deepFlush PmemError -13; persistRanges PmemError -13; " +
        "persistRanges [] PmemError -13; " +
        "shim -13 -13 -13",
    );
  }
});

// Bug: the process-wide share of a file (`FileShare`, under every block
// pool and log stream) opened the file with a plain open(2), which on a
// FIFO waits for a writer: FileShare.open(fifo) hung the process for
// ever, as Source.open and FileLock.acquire did before the shim's opens
// became nonblocking (tests/ffi_edges_test.ts). It now opens as they do.
test("a FileShare of a FIFO opens at once, never waits for a writer", () => {
  const fifo = join(tempDir(), "fifo");
  const made = spawnSync("mkfifo", [fifo]);
  assert.equal(made.status, 0, String(made.error ?? made.stderr));
  const r = runScript(
    `
    import { FileShare } from "@root/pmem2/file_share.ts";
    let share;
    try { share = FileShare.open(${JSON.stringify(fifo)}, 64); }
    catch (e) { console.log(e.name, e.code); }
    console.log("returned", share?.close() ?? "-");
  `,
    20_000,
  );
  assert.equal(r.signal, null, `hung? ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^returned /m);
});

// Bug: the granularity option was checked with `in`, which an object's
// prototype answers too: "toString", "constructor" or "__proto__" passed
// as a granularity. On Deno the engine's FFI then threw its own
// TypeError, after mapFile had created the file; on Bun the mapping was
// made with byte granularity and requiredGranularity said "toString".
// Only the three names are granularities now, refused before any file.
test("a granularity named after an Object property is a TypeError, no file made", () => {
  const dir = tempDir();
  for (const g of ["toString", "constructor", "__proto__", "valueOf"]) {
    const path = join(dir, g);
    assert.throws(
      () => mapFile(path, { size: 4096, granularity: g as Granularity }),
      (e: unknown) => e instanceof TypeError && /granularity/.test(e.message),
      g,
    );
    assert.equal(existsSync(path), false, g);
    using src = Source.fromAnon(4096);
    assert.throws(
      () => Mapping.map(src, { granularity: g as Granularity }),
      (e: unknown) => e instanceof TypeError && /granularity/.test(e.message),
      g,
    );
  }
});

// Bug: Mapping.map read `protection` (and `granularity`, `mover`) from
// the options twice: once checked and given to the shim, then again for
// the mapping's own record. An options object whose getter answered
// "read" and then "read-write" got a read-only mapping that handed out
// views, and a store through one killed the process (SIGSEGV). Each
// option is now read once.
test("options read twice cannot give a read-only mapping views", () => {
  const path = tempPath();
  writeFileSync(path, new Uint8Array(4096));
  const r = runScript(`
    import { mapFile, Mapping, Source } from "@root/mod.ts";
    const fickle = () => {
      let reads = 0;
      return {
        get protection() { return reads++ === 0 ? "read" : "read-write"; },
      };
    };
    const out = [];
    using src = Source.open(${JSON.stringify(path)}, { readOnly: true });
    for (const open of [
      () => Mapping.map(src, fickle()),
      () => mapFile(${JSON.stringify(path)}, fickle()),
    ]) {
      let map;
      try { map = open(); } catch (e) { out.push("open " + e.name); continue; }
      try { map.view(0, 1)[0] = 1; out.push("stored"); }
      catch (e) { out.push(e.name + " " + e.code); }
      map.close();
    }
    console.log(out.join("; "));
  `);
  assert.equal(printed(r), "PmemError -13; PmemError -13");
});

// Bug: mapFile with `size` created the file, then a mapping that libpmem2
// refused (an offset that is no page multiple, a range past the end) threw
// and left the new file behind, which the options checked before the
// create (tests/ffi_edges_test.ts) do not: only libpmem2 knows these. The
// shim now tells whether its open made the file, and mapFile removes a
// file it made when the mapping fails; a file it found stays.
test("mapFile removes the file it created when libpmem2 refuses the mapping", () => {
  // (a range holding no byte is refused before libpmem2, a RangeError:
  // tests/mover_review4_test.ts)
  const refused: [MapFileOptions, new (...args: never[]) => Error][] = [
    [{ size: 8192, offset: 100 }, PmemError],
    [{ size: 8192, length: 100 }, PmemError],
    [{ size: 8192, offset: 8192 }, RangeError],
    [{ size: 8192, length: 3 * 4096 }, PmemError],
    [{ size: 8192, offset: 4096, length: 8192 }, PmemError],
  ];
  for (const [options, error] of refused) {
    const path = tempPath();
    assert.throws(
      () => mapFile(path, options),
      error,
      JSON.stringify(options),
    );
    assert.equal(existsSync(path), false, JSON.stringify(options));
    // a file that was there stays, with its bytes
    writeFileSync(path, new Uint8Array(4096).fill(6));
    assert.throws(() => mapFile(path, options), error);
    assert.deepEqual(
      readFileSync(path),
      Buffer.alloc(8192, 0).fill(6, 0, 4096),
    );
  }
});

// Bug: -0 passed every check (an integer, not below 0) and reached a u32
// or i32 parameter of the shim, which Deno's FFI refuses with its own
// TypeError while Bun takes it as 0: memset(o, Math.round(-0.4), n), a
// flags word, a file mode or an fd of -0 threw on Deno only (and the
// thread mover's memset too). The checks now hand the shim +0.
test("-0 is 0 for byte values, flags, modes and fds on both runtimes", () => {
  const z = -0;
  using mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
  for (const m of [undefined, mover]) {
    using map = mapFile(tempPath(), { size: 1 << 16, mover: m });
    map.memset(0, 7, 64);
    map.memset(0, z, 8);
    map.memcpy(8, Uint8Array.of(1, 2), z);
    map.memmove(16, 8, 2, z);
    map.memset(24, 3, 2, z);
    wait(map.memsetAsync(32, z, 8));
    wait(map.memsetAsync(40, 4, 2, z));
    wait(map.memcpyAsync(48, Uint8Array.of(5), z));
    wait(mover.memset(map.view(56, 8), z));
    const into = new Uint8Array(64);
    map.read(0, into);
    assert.deepEqual(
      [...into],
      [
        ...[0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 7, 7, 7, 7, 7, 7],
        ...[1, 2, 7, 7, 7, 7, 7, 7, 3, 3, 7, 7, 7, 7, 7, 7],
        ...[0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 7, 7, 7, 7, 7, 7],
        ...[5, 7, 7, 7, 7, 7, 7, 7, 0, 0, 0, 0, 0, 0, 0, 0],
      ],
    );
  }
  Source.open(tempPath(), { size: 4096, mode: z }).close();
  // fd 0 is no file: the same refusal as for +0, from libpmem2
  for (const fd of [0, z]) {
    assert.throws(
      () => Source.fromFd(fd),
      (e: unknown) => e instanceof PmemError && e.code === -100005,
    );
  }
  const four = new Uint8Array(4);
  assert.equal(crc32c(four, 0, 4, 0, z), crc32c(four, 0, 4, 0, 0));
  assert.equal(crc32c(four, 0, undefined, 0, z), crc32c(four));
});

// Bug: once the buffer of one view was transferred (`transfer()`, a
// postMessage transfer list), the mapping kept handing out views of that
// detached buffer: every later view() and *Async copy threw the engine's
// TypeError ("detached ArrayBuffer"), on Deno for any mapping, on Bun in
// that 4 MiB window. A detached buffer is now replaced by a new one over
// the same memory (the old one still keeps the memory mapped at close).
test("a mapping keeps handing out views after one's buffer was transferred", async () => {
  for (const size of [1 << 20, 80 << 20]) {
    const map = mapFile(tempPath(), { size, sparse: true });
    const moved = (map.view(0, 16).buffer as ArrayBuffer).transfer();
    new Uint8Array(moved)[3] = 9;
    const v = map.view(0, 16);
    assert.equal(v[3], 9);
    v[4] = 8;
    assert.equal(new Uint8Array(moved)[4], 8);
    await map.memcpyAsync(5, Uint8Array.of(7));
    await map.memsetAsync(6, 6, 1);
    assert.deepEqual([...map.view(3, 4)], [9, 8, 7, 6]);
    // transferred again: the new buffer goes the same way
    (map.view(0, 1).buffer as ArrayBuffer).transfer();
    assert.equal(map.view(3, 1)[0], 9);
    map.close();
    assert.equal(v.length, 0);
    assert.equal(new Uint8Array(moved)[6], 6); // still mapped: no fault
  }
});

// Bug: FileShare.close() detached its memory with transfer(0) before it
// left the native share; memory transferred elsewhere made transfer throw,
// so the open never left: the share stayed, with the file locked, until
// the process ended (a later open still found itself second).
test("a FileShare whose memory was transferred still leaves the share at close", () => {
  const path = tempPath();
  writeFileSync(path, "");
  const a = FileShare.open(path, 64);
  assert.equal(a.first, true);
  a.memory.transfer(); // moved away, as a postMessage transfer would
  assert.equal(a.close(), 0, "no open of the share is left");
  assert.equal(a.closed, true);
  using b = FileShare.open(path, 64);
  assert.equal(b.first, true, "the share was freed: a new open creates it");
});
