// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Movers used from a JavaScript Worker: the runtime frees a Worker's heap
 * when it ends, while the movers' native threads go on, so a copy into
 * or out of the Worker's own arrays must not reach those threads.
 */
import { assert, lastJsonLine, runScript, test } from "./_harness.ts";

/**
 * A script that writes `worker` beside itself, runs it in a Worker, and
 * posts back what the Worker posts; `@root/` is the repository root.
 */
function withWorker(worker: string, main: string): string {
  return `
import { writeFileSync } from "node:fs";
const workerUrl = new URL("./worker.ts", import.meta.url);
writeFileSync(workerUrl, ${JSON.stringify(worker)});
${main}
`;
}

test(
  "a Worker terminated while its ThreadMover copies its own arrays does not crash the process",
  () => {
    // Before: Deno freed the Worker's arrays at terminate() while the
    // engines were still copying between them: SIGSEGV, every time.
    const r = runScript(
      withWorker(
        `
import { ThreadMover } from "@root/mod.ts";
const mover = new ThreadMover({ threads: 2, inlineThreshold: 0 });
const kept = [];
for (let i = 0; i < 4; i++) {
  const src = new Uint8Array(16 << 20).fill(i + 1);
  const dst = new Uint8Array(16 << 20);
  const f = mover.memcpy(dst, src);
  f.poll();
  kept.push(f);
}
postMessage("started");
`,
        `
for (let round = 0; round < 2; round++) {
  const w = new Worker(workerUrl.href, { type: "module" });
  await new Promise((resolve) => { w.onmessage = resolve; });
  w.terminate();
  // the heap goes on: touch memory the freed arrays may have held
  const junk = [];
  for (let i = 0; i < 4; i++) junk.push(new Uint8Array(64 << 20).fill(0x5a));
  await new Promise((resolve) => setTimeout(resolve, 50));
  for (const j of junk) {
    for (let k = 0; k < j.length; k += 4096) {
      if (j[k] !== 0x5a) throw new Error("memory written after terminate()");
    }
  }
}
console.log("survived");
`,
      ),
      120_000,
    );
    assert.equal(
      r.status,
      0,
      `exit ${r.status} (signal ${r.signal}): ${r.stderr.slice(-600)}`,
    );
    assert.match(r.stdout, /survived/);
  },
  { timeout: 120_000 },
);

/** How each kind of Worker is started, and how it posts back. */
const WORKER_KINDS = {
  web: {
    post: "postMessage(states);",
    start: `
const w = new Worker(workerUrl.href, { type: "module" });
const states = await new Promise((resolve) => { w.onmessage = (e) => resolve(e.data); });
w.terminate();`,
  },
  // Deno's node:worker_threads says "main thread" in a web Worker, and
  // WorkerGlobalScope is not there in its own Workers: both are asked
  "node:worker_threads": {
    post:
      `(await import("node:worker_threads")).parentPort.postMessage(states);`,
    start: `
const { Worker: NodeWorker } = await import("node:worker_threads");
const w = new NodeWorker(workerUrl);
const states = await new Promise((resolve) => w.once("message", resolve));
await w.terminate();`,
  },
};

for (const [kind, { post, start }] of Object.entries(WORKER_KINDS)) {
  test(
    `in a Worker (${kind}), a copy between views of a mapping still goes to the engines; one over the Worker's arrays runs inline`,
    () => {
      const r = runScript(withWorker(
        `
import { mapFile, ThreadMover } from "@root/mod.ts";
const mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
const size = 32 << 20;
const path = new URL("./pool", import.meta.url).pathname;
const map = mapFile(path, { size: 2 * size, mover });
const pmemDst = map.view(0, size);
const pmemSrc = map.view(size, size).fill(3);
const heap = new Uint8Array(size).fill(4);
const states = {};
// an operation still running after its first poll went to an engine;
// one run inline is complete by then
const f1 = mover.memcpy(pmemDst, pmemSrc);
states.mappingToMapping = f1.poll();
while (f1.poll() !== "complete") {}
const f2 = mover.memcpy(pmemDst, heap);
states.heapToMapping = f2.poll();
while (f2.poll() !== "complete") {}
const f3 = mover.memcpy(heap, pmemSrc);
states.mappingToHeap = f3.poll();
while (f3.poll() !== "complete") {}
states.copied = pmemDst[size - 1] === 4 && heap[0] === 3;
map.close();
mover.close();
${post}
`,
        `${start}
console.log(JSON.stringify(states));
`,
      ));
      assert.deepEqual(lastJsonLine(r), {
        mappingToMapping: "running",
        heapToMapping: "complete",
        mappingToHeap: "complete",
        copied: true,
      });
    },
    { timeout: 60_000 },
  );
}

test("in the main thread, a copy between heap arrays still goes to the engines", async () => {
  const { ThreadMover } = await import("../mod.ts");
  using mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
  const src = new Uint8Array(32 << 20).fill(9);
  const dst = new Uint8Array(32 << 20);
  const f = mover.memcpy(dst, src);
  assert.equal(f.poll(), "running");
  await f;
  assert.equal(dst[dst.length - 1], 9);
});
