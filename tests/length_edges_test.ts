// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Arrays whose `byteLength` lies, outside `pmem2/` and `blk/` (see
 * tests/ffi_edges_test.ts for those): a Uint8Array may claim more bytes
 * than it has (an own property, a subclass's getter), fewer, or answer
 * honestly at first and lie later. A length that reaches native code or
 * bounds a copy must be the engine's. The adversarial cases run in a
 * child process, so a crash fails the test instead of the runner.
 */
import { assert, printed, runScript, tempPath, test } from "./_harness.ts";

/** The liars every script defines. */
const LIARS = `
  const BIG = 1 << 20;
  class Liar extends Uint8Array {
    get byteLength() { return BIG; }
  }
  class Small extends Uint8Array {
    get byteLength() { return 4; }
  }
  /** Honest for its first \`honest\` reads, then claims BIG. */
  const turncoat = (n, honest = 1, lie = BIG) => {
    const a = new Uint8Array(n);
    let reads = 0;
    Object.defineProperty(a, "byteLength", {
      get: () => (reads++ < honest ? n : lie),
    });
    return a;
  };
  const own = (n) => {
    const a = new Uint8Array(n);
    Object.defineProperty(a, "byteLength", { value: BIG });
    return a;
  };
  const out = [];
  const note = async (name, f) => {
    try { await f(); out.push(name + " ok"); }
    catch (e) { out.push(name + " " + e.name + " " + (e.code ?? "-")); }
  };
`;

// Bug: `new CpuMover().memcpy(dst, liar, VdmFlags.NO_CACHE_HINT)` of a
// 16-byte array claiming 1 MiB into a 1 MiB dst copied 1 MiB of heap
// (a crash on Deno), and a lying dst took a 4 KiB copy into its 16 bytes;
// a flush of a liar flushed 1 MiB past it. Cause: checkOp, executeOnCpu
// and the device submissions took lengths from `byteLength` properties.
test("a mover takes no length from an array's byteLength property", () => {
  const r = runScript(`
    import { CpuMover, ThreadMover, VdmFlags, wait } from "@root/mod.ts";
    ${LIARS}
    const movers = [
      ["cpu", new CpuMover()],
      ["threads", new ThreadMover({ threads: 1, inlineThreshold: 0 })],
    ];
    for (const [name, m] of movers) {
      for (const flags of [0, VdmFlags.NO_CACHE_HINT, VdmFlags.DURABLE]) {
        const tag = name + "/" + flags;
        const dst = new Uint8Array(BIG);
        await note(tag + " src liar", () =>
          m.memcpy(dst, new Liar(16).fill(7), flags));
        await note(tag + " src own", () =>
          m.memmove(dst, own(16).fill(7), flags));
        await note(tag + " src turncoat", () =>
          m.memcpy(dst, turncoat(16, 1).fill(7), flags));
        await note(tag + " src small", () =>
          m.memcpy(dst, new Small(64).fill(7), flags));
        out.push(tag + " dst " + dst.subarray(0, 64).every((b) => b === 7) +
          " " + dst.subarray(64).every((b) => b === 0));
        await note(tag + " dst liar", () =>
          m.memcpy(new Liar(16), new Uint8Array(4096), flags));
        await note(tag + " dst own", () =>
          m.memcpy(own(16), new Uint8Array(4096), flags));
        await note(tag + " batch", () =>
          m.batch([{ op: "memcpy", dst: own(16), src: new Uint8Array(4096),
            flags }]));
        await note(tag + " flush", () => m.flush(own(16), flags));
        await note(tag + " memset", () => m.memset(new Liar(16), 1, flags));
      }
      m.close();
    }
    console.log(out.join("\\n"));
  `);
  const got = printed(r);
  const want: string[] = [];
  for (const name of ["cpu", "threads"]) {
    for (const flags of [0, 2, 1]) {
      const tag = `${name}/${flags}`;
      want.push(
        `${tag} src liar ok`,
        `${tag} src own ok`,
        `${tag} src turncoat ok`,
        `${tag} src small ok`,
        `${tag} dst true true`,
        `${tag} dst liar RangeError -`,
        `${tag} dst own RangeError -`,
        `${tag} batch RangeError -`,
        `${tag} flush ok`,
        `${tag} memset ok`,
      );
    }
  }
  assert.equal(got, want.join("\n"));
});

// Bug: `crc32c(liar)` of 16 bytes claiming 1 MiB hashed 1 MiB of the heap
// past them (a crash where that is unmapped), and its flags went to the
// shim unchecked (Bun truncated 2^32 + 1 to CRC_SOFTWARE, Deno threw its
// own error). Cause: the length was `bytes.byteLength`; no flags check.
test("crc32c hashes only the array's bytes and checks its flags", () => {
  const r = runScript(`
    import { crc32c, CRC_SOFTWARE } from "@root/pmem2/crc32c.ts";
    ${LIARS}
    const honest = crc32c(new Uint8Array(16).fill(3));
    const same = (name, a) => {
      a.fill(3);
      return note(name, () => {
        const c = crc32c(a);
        if (c !== honest) throw new Error("crc " + c);
      });
    };
    await same("liar", new Liar(16));
    await same("own", own(16));
    await same("turncoat", turncoat(16, 0));
    await note("liar range", () => crc32c(new Liar(16), 0, 4096));
    await note("own offset", () => crc32c(own(16), 4096, 16));
    for (const f of [2 ** 32 + 1, 4, 3, -1, 1.5, "1", 1n]) {
      await note("flags " + String(f), () => crc32c(new Uint8Array(16), 0, 16, 0, f));
    }
    await note("software", () => {
      if (crc32c(new Uint8Array(16).fill(3), 0, 16, 0, CRC_SOFTWARE) !==
          honest) throw new Error("software differs");
    });
    await note("fake", () => crc32c(Object.create(Uint8Array.prototype)));
    console.log(out.join("\\n"));
  `);
  assert.equal(
    printed(r),
    [
      "liar ok",
      "own ok",
      "turncoat ok",
      "liar range RangeError -",
      "own offset RangeError -",
      "flags 4294967297 RangeError -",
      "flags 4 RangeError -",
      "flags 3 RangeError -",
      "flags -1 RangeError -",
      "flags 1.5 TypeError -",
      "flags 1 TypeError -",
      "flags 1 TypeError -",
      "software ok",
      "fake TypeError -",
    ].join("\n"),
  );
});

// Bug: a LogStream or PmemLog append of an array claiming more bytes than
// it has copied heap memory into the durable log (a crash on Deno where
// unmapped); one claiming fewer took a place of that size and then copied
// all its bytes into it, over what follows (the next entry's header, the
// next append); a getter honest at the check lied at the copy. Cause:
// checkData, appendAlone, the async copies, writeEntry and PmemLog's
// buffer checks each read `data.byteLength`.
test("a log entry holds exactly its array's bytes, whatever byteLength says", () => {
  const r = runScript(`
    import { LogStream, PmemLog } from "@root/mod.ts";
    ${LIARS}
    const show = (b) => b.length + ":" + (b.length ? b[0] : "-") + ":" +
      b.every((x) => x === b[0]);
    // both sizes: Bun sees a stream above 64 MiB through windows
    for (const size of [4 << 20, 80 << 20]) {
      const path = ${JSON.stringify(tempPath("s"))} + size;
      {
        using s = LogStream.create(path, { size });
        const a = s.allocateRegion(2 << 20);
        await note("liar", () => s.append(a, new Liar(16).fill(1)));
        await note("small", () => s.append(a, new Small(64).fill(2)));
        await note("async own", () => s.appendAsync(a, own(16).fill(3)));
        await note("async small", () => s.appendAsync(a, new Small(64).fill(4)));
        await note("turncoat", () => s.append(a, turncoat(16).fill(5)));
        await note("async turncoat", () =>
          s.appendAsync(a, turncoat(64, 1, 4).fill(6)));
        const both = [s.appendAsync(a, own(16).fill(7)),
          s.appendAsync(a, new Small(64).fill(8))];
        await note("async both", () => Promise.all(both));
        await note("tail", () => s.append(a, new Uint8Array(8).fill(9)));
      }
      using s = LogStream.open(path, { size });
      out.push(size + " " + [...s.entries(s.regions()[0])]
        .map((e) => show(e.data)).join(" "));
    }
    const lpath = ${JSON.stringify(tempPath("l"))};
    {
      using log = PmemLog.create(lpath, { poolSize: 2 << 20 });
      await note("log liar", () => log.append(new Liar(16).fill(1)));
      await note("log v", () =>
        log.appendv([new Small(64).fill(2), own(16).fill(3)]));
      await note("log async", () => log.appendAsync(new Small(64).fill(4)));
      await note("log async turncoat", () =>
        log.appendAsync(turncoat(16, 1).fill(5)));
      await note("log tail", () => log.append(new Uint8Array(8).fill(9)));
    }
    using log = PmemLog.open(lpath);
    let all = new Uint8Array(0);
    log.walk(0, (c) => { all = c.slice(); return true; });
    const runs = [];
    for (let i = 0; i < all.length;) {
      let j = i;
      while (j < all.length && all[j] === all[i]) j++;
      runs.push(all[i] + "x" + (j - i));
      i = j;
    }
    out.push("log " + log.tell() + " " + runs.join(" "));
    console.log(out.join("\\n"));
  `);
  const got = printed(r);
  const stream = (size: number) => [
    "liar ok",
    "small ok",
    "async own ok",
    "async small ok",
    "turncoat ok",
    "async turncoat ok",
    "async both ok",
    "tail ok",
    `${size} 16:1:true 64:2:true 16:3:true 64:4:true 16:5:true 64:6:true ` +
    "16:7:true 64:8:true 8:9:true",
  ];
  assert.equal(
    got,
    [
      ...stream(4 << 20),
      ...stream(80 << 20),
      "log liar ok",
      "log v ok",
      "log async ok",
      "log async turncoat ok",
      "log tail ok",
      "log 184 1x16 2x64 3x16 4x64 5x16 9x8",
    ].join("\n"),
  );
});

// Bug: `tx.write(o, 60, a)` of a 64-byte array whose `length` said 4
// passed the bounds check of a 64-byte object, then copied all 64 bytes:
// over the next object (or past the transaction's log entry); a map
// node was sized by its key's and value's `length` and the copies ran
// past it. Cause: Transaction.write, the log's copy and the map's set
// read `.length`, a property a subclass or an own property answers.
test("an object write copies no more bytes than it checked", () => {
  const path = tempPath("o");
  const r = runScript(`
    import { ObjectPool, PersistentMap } from "@root/mod.ts";
    ${LIARS}
    class Short extends Uint8Array {
      get length() { return 4; }
    }
    const shortOwn = (n) => {
      const a = new Uint8Array(n);
      Object.defineProperty(a, "length", { value: 4 });
      return a;
    };
    let a, b;
    {
      using pool = ObjectPool.create(${JSON.stringify(path)}, {
        size: 8 << 20, layout: "l",
      });
      [a, b] = pool.tx((tx) => {
        const a = tx.alloc(64), b = tx.alloc(64);
        tx.write(b, 0, new Uint8Array(64).fill(0xbb));
        return [a.offset, b.offset];
      });
      const A = pool.object(a);
      await note("write", () => pool.tx((tx) => tx.write(A, 60, new Short(4096).fill(1))));
      await note("write own", () => pool.tx((tx) => tx.write(A, 60, shortOwn(4096).fill(1))));
      await note("write async", () =>
        pool.txAsync((tx) => tx.write(A, 60, new Short(4096).fill(1))));
      await note("write fresh", () => pool.tx((tx) => {
        const c = tx.alloc(64);
        tx.alloc(64);
        tx.write(c, 60, new Short(64).fill(1));
      }));
      await note("write liar", () => pool.tx((tx) => tx.write(A, 0, new Liar(64).fill(2))));
      using m = PersistentMap.open(pool, "m");
      await note("set", () => m.set(new Short(64).fill(3), new Short(64).fill(4)));
      await note("set own", () => m.set(shortOwn(64).fill(5), shortOwn(64).fill(6)));
      await note("setAsync", () => m.setAsync(new Short(64).fill(7), new Short(64).fill(8)));
    }
    using pool = ObjectPool.open(${JSON.stringify(path)}, { layout: "l" });
    using m = PersistentMap.open(pool, "m");
    const show = (v) => v === undefined ? "none" : v.length + ":" + v[0] + ":" +
      v.every((x) => x === v[0]);
    out.push("a " + show(pool.read(pool.object(a))));
    out.push("b " + show(pool.read(pool.object(b))));
    for (const k of [3, 5, 7]) {
      out.push("get " + k + " " + show(m.get(new Uint8Array(64).fill(k))));
    }
    console.log(out.join("\\n"));
  `);
  assert.equal(
    printed(r),
    [
      "write RangeError -",
      "write own RangeError -",
      "write async RangeError -",
      "write fresh RangeError -",
      "write liar ok",
      "set ok",
      "set own ok",
      "setAsync ok",
      "a 64:2:true",
      "b 64:187:true",
      "get 3 64:4:true",
      "get 5 64:6:true",
      "get 7 64:8:true",
    ].join("\n"),
  );
});

// Bug (Bun, pools above 64 MiB): an asynchronous block write of an array
// whose byteLength was honest at the write's check and smaller at its
// copy left stale bytes in a block that spans two of the mapping's
// windows. Cause: the windows split the copy by `data.byteLength`.
test("a block write spanning two windows copies the whole block", () => {
  const r = runScript(`
    import { BlockPool } from "@root/mod.ts";
    ${LIARS}
    // blocks that now and then span a 4 MiB even window (lba 1216 copies
    // into the first)
    const size = 4352;
    using pool = BlockPool.create(${JSON.stringify(tempPath("b"))}, {
      blockSize: size, poolSize: 80 << 20,
    });
    let bad = 0;
    for (let lba = 0; lba < 1300; lba++) {
      await pool.writeAsync(lba, turncoat(size, 2, size - 1).fill(lba & 255 || 1));
    }
    for (let lba = 0; lba < 1300; lba++) {
      if (!pool.read(lba).every((b) => b === (lba & 255 || 1))) bad++;
    }
    console.log("bad " + bad);
  `);
  assert.equal(printed(r), "bad 0");
});

// Bug (Bun, streams above 64 MiB), with the log entry test above: an
// asynchronous append of an array whose byteLength said one byte less
// than it has left a stale byte in an entry spanning two of the
// mapping's windows. Cause: the windows split the copy by
// `data.byteLength`.
test("a log entry spanning two windows holds all its bytes", () => {
  const r = runScript(`
    import { LogStream } from "@root/mod.ts";
    ${LIARS}
    const n = 4352;
    using s = LogStream.create(${JSON.stringify(tempPath("w"))}, {
      size: 80 << 20,
    });
    const a = s.allocateRegion(16 << 20);
    for (let i = 0; i < 2000; i++) {
      await s.appendAsync(a, turncoat(n, 0, n - 1).fill((i & 255) || 1));
    }
    let i = 0, bad = 0;
    for (const e of s.entries(a)) {
      const v = (i++ & 255) || 1;
      if (e.data.length !== n || !e.data.every((b) => b === v)) bad++;
    }
    console.log(i + " bad " + bad);
  `);
  assert.equal(printed(r), "2000 bad 0");
});

// Bug (Bun, pools above 64 MiB), with the object write test above: a
// transaction's write of an array whose `length` said one byte less than
// it has left a stale byte where the write spans two of the mapping's
// windows. Cause: the windows split the copy by `src.length`.
test("an object write spanning two windows stores all its bytes", () => {
  const r = runScript(`
    import { ObjectPool } from "@root/mod.ts";
    const n = 4352;
    class Short extends Uint8Array {
      get length() { return n - 1; }
    }
    using pool = ObjectPool.create(${JSON.stringify(tempPath("ow"))}, {
      size: 80 << 20, layout: "w",
    });
    const objs = [];
    for (let i = 0; i < 2000; i++) {
      const v = (i & 255) || 1;
      objs.push(pool.tx((tx) => {
        const o = tx.alloc(n);
        tx.write(o, 0, new Short(n).fill(v)); // staged with the object
        return o;
      }));
      if (i % 2) pool.tx((tx) => tx.write(objs[i], 0, new Short(n).fill(v)));
    }
    let bad = 0;
    objs.forEach((o, i) => {
      const v = (i & 255) || 1;
      if (!pool.read(o).every((b) => b === v)) bad++;
    });
    console.log("bad " + bad);
  `);
  assert.equal(printed(r), "bad 0");
});

// Bug: a map set with a 64-byte key whose `length` said 4 stored the 64
// bytes, but the map's index keyed it by 4 of them: get() of the same 64
// bytes found nothing until the pool was reopened, and get() of the first
// 4 found it. Cause: binKey turned the key into a string through
// `b.subarray()` (a subclass's species) and `String.fromCharCode.apply`,
// which reads `length`.
test("a map's index keys a byte key by its true bytes", () => {
  const r = runScript(`
    import { ObjectPool, PersistentMap } from "@root/mod.ts";
    class Short extends Uint8Array {
      get length() { return 4; }
    }
    using pool = ObjectPool.create(${JSON.stringify(tempPath("k"))}, {
      size: 8 << 20, layout: "k",
    });
    using m = PersistentMap.open(pool, "m");
    m.set(new Short(64).fill(3), "v");
    const show = (v) => String(v);
    console.log([
      m.get(new Uint8Array(64).fill(3)),
      m.get(new Uint8Array(4).fill(3)),
      m.get(new Short(64).fill(3)),
      m.has(new Uint8Array(64).fill(3)),
    ].map(show).join(" "));
  `);
  assert.equal(printed(r), "v undefined v true");
});

// Bug: EvenWindows (the view windows of Bun's large mappings) split a copy
// across a window end by `src.length` / `src.byteLength`: an array whose
// property said one byte less than it holds left the last byte stale,
// for any caller that handed it on unguarded.
test("a copy across a window end stores every byte of its array", () => {
  const r = runScript(`
    import { mapFile } from "@root/mod.ts";
    import { EvenWindows } from "@root/pmem2/even_windows.ts";
    ${LIARS}
    using map = mapFile(${JSON.stringify(tempPath("e"))}, { size: 12 << 20 });
    const win = new EvenWindows(map);
    const end = 4 << 20; // the first even window's end
    const fill = (v) => {
      const a = new Uint8Array(4096).fill(v);
      Object.defineProperty(a, "byteLength", { value: 4095 });
      Object.defineProperty(a, "length", { value: 4095 });
      return a;
    };
    win.set(fill(7), end - 2048);
    const ops = [];
    win.storeOps(end + (4 << 20) - 2048, fill(9), ops);
    for (const op of ops) {
      op.dst.set(
        op.src.subarray(op.srcOffset ?? 0, (op.srcOffset ?? 0) + (op.length ?? 4096)),
        op.dstOffset,
      );
    }
    const got = new Uint8Array(4096);
    map.read(end - 2048, got);
    const a = got.every((b) => b === 7);
    map.read(end + (4 << 20) - 2048, got);
    console.log(a + " " + got.every((b) => b === 9));
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), "true true");
});
