// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A Worker for `stream_workers_review_test.ts`: it opens the log stream
 * at a path first in its process (so the tracer it gives is the
 * mapping's), with flushes over region 0's slot failing while armed; on
 * `{ free: true }` it frees region 0 with both the clearing persist and
 * the restore of the slot failing, and replies with the error's message.
 * It never closes the stream: the test terminates it.
 *
 * Posts "ready" when loaded; then `{ path }` → `{ ok: "open" }`,
 * `{ free: true }` → `{ ok: message }`.
 *
 * @module
 */
import { slotOffset } from "../../stream/layout.ts";
import type { LogStream } from "../../stream/mod.ts";
import { openStreamWith } from "../../stream/stream.ts";
import { failingAt } from "../crash/kill_image.ts";

// deno-lint-ignore no-explicit-any
const self_ = globalThis as any;
let armed = false;
let stream: LogStream | undefined;
const noTracer = { flush() {}, drain() {} };

self_.onmessage = (e: MessageEvent) => {
  try {
    if (e.data.path !== undefined) {
      stream = openStreamWith(e.data.path, {}, {
        tracer: failingAt(noTracer, slotOffset(0), () => armed),
      });
      self_.postMessage({ ok: "open" });
      return;
    }
    const s = stream!;
    armed = true;
    let message = "none";
    try {
      s.freeRegion(s.regions()[0]);
    } catch (err) {
      message = (err as Error).message;
    }
    armed = false;
    self_.postMessage({ ok: message });
  } catch (err) {
    self_.postMessage({ error: String(err) });
  }
};
self_.postMessage("ready");
