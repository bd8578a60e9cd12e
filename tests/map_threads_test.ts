// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Mappings made by several threads at once, on a disk-backed file system.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  assert,
  FS_EXT4,
  FS_XFS,
  ROOT_URL,
  runScript,
  systemTempOn,
  tempDir,
  test,
} from "./_harness.ts";

/** ext4 and xfs take the MAP_SYNC flag, then refuse it for a non-DAX file. */
const disk = systemTempOn([FS_EXT4, FS_XFS]);

// Bug: pmem2_map_new maps a file over its reservation with MAP_FIXED and
// MAP_SYNC first; on ext4 or xfs without DAX the kernel unmaps the
// reservation before it refuses MAP_SYNC, and until pmem2_map_new's
// second mmap another thread can be given that range -- which the second
// MAP_FIXED then maps the file over. Three Workers mapping files in a
// loop crashed the process (SIGSEGV) or failed with "pmem2_map_new
// failed (code -17)" (two mappings at one address) within a few hundred
// maps, on both runtimes. The shim now maps such files itself, without
// the hole (c/map_file.c).
test(
  "Workers mapping files at once on ext4 or xfs neither crash nor collide",
  () => {
    const dir = tempDir(disk);
    {
      const worker = join(dir, "worker.ts");
      writeFileSync(
        worker,
        `import { Mapping, Source } from "${ROOT_URL}mod.ts";
      const self_ = globalThis as any;
      self_.onmessage = (e: MessageEvent) => {
        const { path, count } = e.data;
        try {
          for (let i = 0; i < count; i++) {
            const src = Source.open(path);
            const map = Mapping.map(src);
            src.close();
            const v = map.view(0, 4096);
            new BigUint64Array(v.buffer, v.byteOffset, 1)[0] = BigInt(i);
            map.close();
          }
          self_.postMessage({ done: count });
        } catch (err) {
          self_.postMessage({ error: String(err) });
        }
      };
      self_.postMessage("ready");`,
      );
      const r = runScript(
        `
      import { Source } from "@root/mod.ts";
      const paths = [0, 1, 2].map((i) => {
        const p = ${JSON.stringify(dir)} + "/pool-" + i;
        Source.open(p, { size: 8 << 20, create: true }).close();
        return p;
      });
      const results = await Promise.all(paths.map((path) =>
        new Promise((resolve) => {
          const w = new Worker(${
          JSON.stringify("file://" + worker)
        }, { type: "module" });
          // (Bun drops what is posted before the module set onmessage)
          w.onmessage = (e) => {
            if (e.data === "ready") return w.postMessage({ path, count: 300 });
            resolve(e.data.done ?? e.data.error);
            w.terminate();
          };
          w.onerror = (e) => { resolve(String(e.message)); w.terminate(); };
        })
      ));
      console.log("results", results.join(","));
    `,
        120_000,
      );
      assert.equal(r.signal, null, r.stderr);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /results 300,300,300/, r.stdout + r.stderr);
    }
  },
  {
    timeout: 150_000,
    skip: disk === undefined &&
      "the temp dir is not on ext4 or xfs (where MAP_SYNC fails after the unmap)",
  },
);
