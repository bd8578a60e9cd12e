// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// A view handed out whose buffer the runtime will not detach when its
// mapping closes: on Bun, an asynchronous node:fs write of the view
// (`fs/promises.writeFile`, `fs.write` with a callback) pins its buffer
// while it runs, and `transfer(0)` then copies the buffer instead of
// detaching it. The close unmapped the memory all the same, and the view,
// its length intact, segfaulted the process at its next read (as did the
// write's own read of it). Each case runs in a child process, so a crash
// fails the test instead of killing the runner.
import { join } from "node:path";
import { assert, printed, runScript, tempDir, test } from "./_harness.ts";

/**
 * The child's source: `open` (TypeScript, in a scope with `path`) makes a
 * store and its view of 4096 bytes of 7s; the view's write to a file
 * starts, the store closes, and the view is read. It prints the view's
 * length and first byte after the close, and what the write left.
 */
function script(dir: string, imports: string, open: string): string {
  return `
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
${imports}
const path = ${JSON.stringify(join(dir, "store"))};
const out = ${JSON.stringify(join(dir, "out"))};
const { view, close } = (() => { ${open} })();
const writing = writeFile(out, view).then(() => "written", (e) => String(e));
close();
const after = { length: view.byteLength, first: view[0] ?? null };
const write = await writing;
const bytes = write === "written" ? [...new Set(readFileSync(out))] : [];
console.log(JSON.stringify({ ...after, write, bytes }));
`;
}

/** What the child printed: the view detached, or still reading its bytes. */
function check(source: string): void {
  const r = JSON.parse(printed(runScript(source)));
  // detached (Deno; Bun where nothing pinned it), or pinned and left
  // over memory still mapped: never a read of unmapped memory
  if (r.length !== 0) {
    assert.deepEqual([r.length, r.first], [4096, 7], JSON.stringify(r));
  }
  // the write saw the view's bytes, or failed as the view detached
  if (r.write === "written") assert.deepEqual(r.bytes, [7]);
  else assert.match(r.write, /detached/);
}

test("a mapping closed while an asynchronous node:fs write of its view runs leaves no view over unmapped memory", () => {
  const dir = tempDir();
  check(script(
    dir,
    `import { mapFile } from "@root/pmem2/mod.ts";`,
    `const map = mapFile(path, { size: 1 << 20 });
     map.memset(0, 7, 4096);
     return { view: map.view(0, 4096), close: () => map.close() };`,
  ));
});

test("an object pool closed while an asynchronous node:fs write of an object's view runs leaves no view over unmapped memory", () => {
  const dir = tempDir();
  check(script(
    dir,
    `import { ObjectPool } from "@root/obj/mod.ts";`,
    `const pool = ObjectPool.create(path, { size: 8 << 20, layout: "pin" });
     const root = pool.root(4096);
     pool.tx((tx) => tx.write(root, 0, new Uint8Array(4096).fill(7)));
     return { view: pool.view(root), close: () => pool.close() };`,
  ));
});
