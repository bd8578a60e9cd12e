// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The test side of a job Worker (tests/workers/*_worker.ts): start one,
// wait for its first message (ready), then send it jobs one at a time and
// get each job's `ok`, or its `error` as a rejection.

/** Start the Worker of module `url` and wait until it is ready for a job. */
export async function startWorker(url: string): Promise<Worker> {
  const w = new Worker(url, { type: "module" });
  await new Promise<void>((resolve, reject) => {
    w.onmessage = () => resolve();
    w.onerror = (e) => reject(new Error(`worker: ${e.message}`));
  });
  return w;
}

/** Give a Worker a job; its result. */
export function ask<T>(w: Worker, job: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    w.onmessage = (e) =>
      e.data.error ? reject(new Error(e.data.error)) : resolve(e.data.ok);
    w.onerror = (e) => reject(new Error(`worker: ${e.message}`));
    w.postMessage(job);
  });
}

/**
 * Terminate `w` and wait until `share` saw its thread end (its opens end
 * with it); fails after 10 s (Deno ends a Worker only at a turn of its
 * event loop).
 */
export async function terminateAndWait(
  w: Worker,
  share: { readonly endedOpens: number },
): Promise<void> {
  const before = share.endedOpens;
  w.terminate();
  const t0 = performance.now();
  while (share.endedOpens === before) {
    if (performance.now() - t0 > 10000) throw new Error("never ended");
    await new Promise((r) => setTimeout(r, 2));
  }
}
