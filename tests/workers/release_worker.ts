// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The Worker of `tests/share_lock_retry_test.ts`: it holds a file's
 * `flock` on a descriptor of its own -- an open file description apart
 * from the library's, so the lock excludes the library's open as a
 * lock of another process does -- and lets it go once the test's thread
 * is asleep in the open's wait for the lock: the open found it held, and
 * sees it go within its wait, however the machine schedules the two.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { RUNTIME } from "../../ffi/_runtime.ts";

/** A job: the file to lock, the opener's thread, the handshake's words. */
export interface ReleaseJob {
  path: string;
  /** The opener's thread: its `/proc/thread-self`, "pid/task/tid". */
  thread: string;
  /**
   * Word 0: 1 from the test as it opens, 2 once it is done; word 1: 1
   * from here once the lock is held.
   */
  words: SharedArrayBuffer;
}

/** libc's open, flock and close. */
interface Libc {
  open(path: Uint8Array, flags: number): number;
  flock(fd: number, op: number): number;
  close(fd: number): number;
}

const O_RDWR = 2;
const LOCK_EX = 2;
const LOCK_NB = 4;
/** nanosleep and clock_nanosleep (usleep(), the open's wait), by arch. */
const SLEEPS = process.arch === "arm64" ? ["101", "115"] : ["35", "230"];

/**
 * Whether `thread` ("pid/task/tid") sleeps in a syscall: the first field
 * of its `syscall` file is the number of the one it is blocked in
 * ("running" when it runs). Not the process's main thread: `deno test`
 * runs the tests' JavaScript on another.
 */
function sleeps(thread: string): boolean {
  const f = readFileSync(`/proc/${thread}/syscall`, "utf8").split(" ")[0];
  return SLEEPS.includes(f);
}

/** The Worker's scope, as much of it as this file uses. */
const self_ = globalThis as unknown as {
  onmessage: ((e: MessageEvent<ReleaseJob>) => void) | null;
  postMessage(message: unknown): void;
};

async function libc(): Promise<Libc> {
  if (RUNTIME === "deno") {
    // deno-lint-ignore no-explicit-any
    const Deno = (globalThis as any).Deno;
    return Deno.dlopen("libc.so.6", {
      open: { parameters: ["buffer", "i32"], result: "i32" },
      flock: { parameters: ["i32", "i32"], result: "i32" },
      close: { parameters: ["i32"], result: "i32" },
    }).symbols;
  }
  const spec = "bun:ffi"; // (a literal would be resolved on Deno too)
  const ffi = await import(spec);
  return ffi.dlopen("libc.so.6", {
    open: { args: ["ptr", "i32"], returns: "i32" },
    flock: { args: ["i32", "i32"], returns: "i32" },
    close: { args: ["i32"], returns: "i32" },
  }).symbols;
}

const c = await libc();

self_.onmessage = ({ data: { path, thread, words } }) => {
  try {
    const w = new Int32Array(words);
    const fd = c.open(new TextEncoder().encode(path + "\0"), O_RDWR);
    if (fd < 0) throw new Error(`open ${path} failed`);
    if (c.flock(fd, LOCK_EX | LOCK_NB) !== 0) throw new Error("flock failed");
    Atomics.store(w, 1, 1);
    Atomics.notify(w, 1);
    Atomics.wait(w, 0, 0);
    // until the open sleeps between its tries (or the test is done, or
    // 10 s passed: a test that failed to open must not wait here)
    const end = performance.now() + 10_000;
    while (
      Atomics.load(w, 0) === 1 && !sleeps(thread) &&
      performance.now() < end
    );
    c.close(fd); // the lock goes with the descriptor
    self_.postMessage({ ok: true });
  } catch (err) {
    self_.postMessage({ error: String((err as Error)?.stack ?? err) });
  }
};
self_.postMessage("ready");
