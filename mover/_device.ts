// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A native device that executes DSA descriptors and writes DSA completion
 * records into an arena this module views once: the software device, or
 * a DSA work queue (the hardware writes the same records; the shim's
 * watcher thread bumps the completion sequence for it). Futures poll the
 * status bytes with `Atomics.load` (a plain read can be hoisted out of a
 * polling loop by Bun's JIT): no FFI call per poll. The device is also the
 * wake source the executor sleeps on.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import {
  backend,
  check,
  fromCell,
  native,
  newCell,
  type Ptr,
} from "../ffi/lib.ts";
import { RUNTIME } from "../ffi/_runtime.ts";
import { Future, NO_CONTEXT, type WakeSource } from "../future/future.ts";
import { DsaRecord } from "./dsa_format.ts";

/** Devices not yet closed (weakly: an unclosed one may still be collected). */
const openDevices = new Set<WeakRef<CompletionDevice>>();
let exitGuarded = false;
/** How long the exit guard waits for one device's accepted work (ms). */
const QUIESCE_MS = 10_000;

/**
 * Wait until the work every open device accepted has run. Deno reports an
 * uncaught error or rejection with these events, then frees the isolate's
 * arrays on its way out while the engines may still be writing into them:
 * the process died with SIGSEGV rather than the error. The devices stay
 * open (a listener may handle the error, and the program go on).
 */
function quiesceOpenDevices(): void {
  for (const ref of openDevices) ref.deref()?.quiesce();
}

/**
 * Install {@linkcode quiesceOpenDevices} once, on Deno only: Bun ends the
 * process without freeing its heap first.
 */
function guardExit(): void {
  if (exitGuarded || RUNTIME !== "deno") return;
  exitGuarded = true;
  globalThis.addEventListener("error", quiesceOpenDevices);
  globalThis.addEventListener("unhandledrejection", quiesceOpenDevices);
}

let sendGathered: ((dev: CompletionDevice) => void) | undefined;

/**
 * Install what sends the operations a device gathered during a sweep
 * (`DeviceOp`'s, which imports this module). Internal.
 */
export function setGatherSender(fn: (dev: CompletionDevice) => void): void {
  sendGathered = fn;
}

/** Records sit on a 64-byte stride (no false sharing between records). */
export const RECORD_STRIDE = 64;
const CONTROL_SIZE = 64;

/** Where a device's descriptors go. */
export type Submission = "ring" | "dedicated" | "shared" | "write";

const SUBMISSIONS: readonly Submission[] = [
  "ring",
  "dedicated",
  "shared",
  "write",
];
const INFO_FIELDS = 12;

/** Static facts a device reports. */
export interface DeviceInfo {
  /** DSA GENCAP register value. */
  genCap: number;
  /** Largest transfer of one descriptor, in bytes. */
  maxTransfer: number;
  /** Most descriptors in one BATCH (0: the device takes no BATCH). */
  maxBatch: number;
  /** Work-queue slots. */
  queueSize: number;
  /** Engines (worker threads of the software device). */
  threads: number;
  /** Completion records. */
  records: number;
  /** Batch descriptor lists. */
  batchLists: number;
  /** Word 0 of the DSA OPCAP register: bit n = opcode n supported. */
  opCap: number;
  /**
   * Where descriptors go: the software device's `ring`, a `dedicated`
   * WQ's portal (MOVDIR64B), a `shared` WQ's portal (ENQCMD), or
   * `write(2)` on the WQ's file.
   */
  submission: Submission;
  /** A test portal: the software device behind a WQ's interface. */
  testPortal: boolean;
  /** The WQ's portal page is mapped (else submission is by write(2)). */
  portalMapped: boolean;
}

/**
 * What a device counted: how its sleepers fared and how its partial
 * completions were finished. Read by tests through the testing entry
 * point; each counter is a plain increment on a path already taken.
 */
export interface DeviceStats {
  /** Sleeps (blocking or not) taken on the device. */
  sleeps: number;
  /**
   * Sleeps that ran into their timeout with their target reached when
   * the sequence was read after it: a lost wake-up (none are, by design),
   * or a completion published between the deadline and that read, which
   * the count cannot tell apart. A test that asserts none gives its
   * sleeps timeouts far longer than the work (the executor's own are 10
   * and 50 ms, which a slow machine can overrun honestly).
   */
  lostWakeups: number;
  /** Records that came back as a partial completion (a page fault). */
  partialCompletions: number;
  /** Remainders of partial completions submitted again to the device. */
  resubmissions: number;
  /** Remainders (or abandoned batch members) finished on the CPU. */
  cpuFallbacks: number;
  /** Faulting pages touched before a remainder was resubmitted. */
  pagesTouched: number;
  /** Submissions a shared WQ refused as busy (each after its retries). */
  busyAnswers: number;
  /** Destinations persisted on the CPU after the device wrote them. */
  cpuPersists: number;
  /** BATCH descriptors made of operations polled in one executor sweep. */
  sweepBatches: number;
}

/** A descriptor-executing device with a completion-record arena. */
export class CompletionDevice implements WakeSource {
  #cell: BigUint64Array;
  #handle: Ptr | null;
  #records: Uint8Array;
  #fields: DataView;
  #control: Uint32Array;
  #freeRecords: number[];
  #freeLists: number[];
  #holders: (object | undefined)[];
  #outstanding = 0;
  /** The sequence the last {@linkcode reclaim} pass began at. */
  #reclaimedAt = -1;
  /** Sleeps submitted and not yet returned (see `sleep`). */
  #pendingSleeps = 0;
  /** Where the batch lists lie (for raw descriptors built by tests). */
  #listsAddress: number;
  #deleteWhenIdle = false;
  #freed = false;
  /** Its entry in `openDevices`, until closed. */
  #openRef: WeakRef<CompletionDevice>;
  /** See {@linkcode DeviceStats}. */
  readonly stats: DeviceStats = {
    sleeps: 0,
    lostWakeups: 0,
    partialCompletions: 0,
    resubmissions: 0,
    cpuFallbacks: 0,
    pagesTouched: 0,
    busyAnswers: 0,
    cpuPersists: 0,
    sweepBatches: 0,
  };
  readonly info: DeviceInfo;
  readonly name: string;
  /**
   * Whether operations polled in one executor sweep go out as one BATCH:
   * a DSA WQ that takes BATCH, where one submission (an ENQCMD, a
   * MOVDIR64B) then carries many. The software device's engines run
   * separate descriptors in parallel instead, so it does not gather.
   */
  readonly gathers: boolean;
  /** Operations gathered in the current sweep (see `DeviceOp`). */
  gathered: object[] = [];

  /**
   * @param name for messages ("ThreadMover")
   * @param create the native constructor (`ap_dev_new`, `ap_dsa_open`),
   * filling `cell`
   */
  constructor(name: string, create: (cell: BigUint64Array) => number) {
    this.name = name;
    this.#cell = newCell();
    check(create(this.#cell), "create");
    this.#handle = fromCell(this.#cell);
    this.#openRef = new WeakRef(this);
    openDevices.add(this.#openRef);
    guardExit();
    const out = new Float64Array(INFO_FIELDS);
    check(native.ap_dev_info(this.#handle, out, out.length), "create");
    this.info = {
      genCap: out[0],
      maxTransfer: out[1],
      maxBatch: out[2],
      queueSize: out[3],
      threads: out[4],
      records: out[5],
      batchLists: out[6],
      opCap: out[7],
      submission: SUBMISSIONS[out[9]] ?? "ring",
      testPortal: out[10] !== 0,
      portalMapped: out[11] !== 0,
    };
    this.#listsAddress = out[8];
    this.gathers = this.info.submission !== "ring" && this.info.maxBatch >= 2 &&
      this.info.batchLists > 0 && this.info.records >= 3;
    const bytes = this.info.records * RECORD_STRIDE;
    const arena = backend.view(
      native.ap_dev_records(this.#handle)!,
      bytes + CONTROL_SIZE,
    );
    this.#records = new Uint8Array(arena, 0, bytes);
    this.#fields = new DataView(arena, 0, bytes);
    this.#control = new Uint32Array(arena, bytes, CONTROL_SIZE / 4);
    this.#freeRecords = Array.from(
      { length: this.info.records },
      (_, i) => this.info.records - 1 - i,
    );
    this.#holders = new Array(this.info.records).fill(undefined);
    this.#freeLists = Array.from(
      { length: this.info.batchLists },
      (_, i) => this.info.batchLists - 1 - i,
    );
  }

  /** The address of the batch list arena (tests build raw batches on it). */
  get listsAddress(): number {
    return this.#listsAddress;
  }

  /** Whether the device has been closed. */
  get closed(): boolean {
    return this.#handle === null;
  }

  /** The native handle; throws `ClosedError` once closed. */
  handle(op: string): Ptr {
    if (this.#handle === null) throw new ClosedError(this.name, op);
    return this.#handle;
  }

  /** Operations holding a record (in flight or about to be). */
  get inFlight(): number {
    return this.info.records - this.#freeRecords.length;
  }

  /** Spinning pays only while an engine is idle to finish work quickly. */
  shouldSpin(): boolean {
    return this.inFlight < this.info.threads;
  }

  /**
   * Take a free record index, or -1 when all are in use. `holder` (the
   * operation, which holds its buffers) stays referenced by the device
   * until the record is released, so buffers a worker writes into can
   * never be collected, even if every other reference to the operation is
   * dropped while it is in flight.
   */
  acquireRecord(holder: object): number {
    const rec = this.#freeRecords.pop() ?? -1;
    if (rec >= 0) this.#holders[rec] = holder;
    return rec;
  }

  /**
   * Poll every started future that holds a record, so those whose work
   * completed settle and give theirs back. For a poller that blocks its
   * thread (`PollContext.blocking`) and found no record free: an awaited
   * or adopted future frees its record only when polled after completing,
   * and the event loop's pump, which would poll it, cannot run while the
   * thread is blocked, so the blocked wait never got a record. Holders
   * are leaves (they poll no other future), never on the stack here.
   * Once per completion sequence: with none since the last pass, nothing
   * more can be freed (each op short of a record would repeat the pass).
   */
  reclaim(): void {
    const seq = this.sequence(); // before the polls: a later completion moves it
    if (seq === this.#reclaimedAt) return;
    this.#reclaimedAt = seq;
    const holders = this.#holders;
    for (let rec = 0; rec < holders.length; rec++) {
      const h = holders[rec];
      if (h instanceof Future && h.state === "running") h.poll(NO_CONTEXT);
    }
  }

  /** Return a record taken with {@linkcode acquireRecord}. */
  releaseRecord(rec: number): void {
    this.#holders[rec] = undefined;
    this.#freeRecords.push(rec);
  }

  /** Take a free batch list, or -1. */
  acquireList(): number {
    return this.#freeLists.pop() ?? -1;
  }

  /** Return a batch list. */
  releaseList(list: number): void {
    this.#freeLists.push(list);
  }

  /** The status byte of a record (0 while not complete). */
  status(rec: number): number {
    return Atomics.load(this.#records, rec * RECORD_STRIDE);
  }

  /** The `result` byte (direction of a partial MEMMOVE). */
  result(rec: number): number {
    return this.#records[rec * RECORD_STRIDE + DsaRecord.RESULT];
  }

  /** `bytes_completed` (or `descs_completed` of a batch). */
  bytesCompleted(rec: number): number {
    return this.#fields.getUint32(
      rec * RECORD_STRIDE + DsaRecord.BYTES_COMPLETED,
      true,
    );
  }

  /** The executor's sweep is over: send what was gathered during it. */
  sweepEnded(): void {
    if (this.gathered.length !== 0) sendGathered?.(this);
  }

  /** The completion sequence (bumped after every published record). */
  sequence(): number {
    return this.#handle === null ? -1 : Atomics.load(this.#control, 0);
  }

  /**
   * How many completions a sleeper waiting for `waiting` operations should
   * sleep through: all it waits for that are in flight (fewer wakes steal
   * less CPU from the engines).
   */
  #advance(waiting = 1): number {
    return Math.max(1, Math.min(waiting, this.#outstanding));
  }

  /** A descriptor was queued: its completion will bump the sequence. */
  submitted(): void {
    this.#outstanding++;
  }

  /** A future saw the completion of a descriptor it had queued. */
  observed(): void {
    this.#outstanding--;
  }

  /**
   * Block this thread until the sequence reaches `seq` plus the advance
   * for `waiting` operations, or `timeoutMs` passes; true when woken.
   */
  block(seq: number, timeoutMs: number, waiting?: number): boolean {
    if (this.#handle === null) return true;
    this.stats.sleeps++;
    const advance = this.#advance(waiting);
    const rc = native.ap_dev_wait(this.#handle, seq >>> 0, timeoutMs, advance);
    if (rc === 0) return true;
    this.#countLost(seq, advance);
    return false;
  }

  /**
   * Resolve once the sequence reaches `seq` plus the advance for `waiting`
   * operations (true), or after `timeoutMs` (false). The device is not
   * freed while a sleep is pending: on Deno the wait is a native call
   * queued on the runtime's blocking pool, which may start after
   * {@linkcode CompletionDevice.close} returned, so a sleep is counted from
   * its submission, not from its entry into native code.
   */
  async sleep(
    seq: number,
    timeoutMs: number,
    waiting?: number,
  ): Promise<boolean> {
    if (this.#handle === null) return true;
    this.stats.sleeps++;
    const advance = this.#advance(waiting);
    this.#pendingSleeps++;
    let woken: boolean;
    try {
      woken = await backend.sleep(
        native,
        this.#handle,
        this.#control,
        seq >>> 0,
        timeoutMs,
        advance,
      );
    } finally {
      if (--this.#pendingSleeps === 0 && this.#deleteWhenIdle) {
        this.#delete();
      }
    }
    if (!woken) this.#countLost(seq, advance);
    return woken;
  }

  /**
   * A sleep timed out: count it as a lost wake-up if the sequence has
   * reached its target by now (a completion that should have woken it, or
   * one just after the deadline: see `DeviceStats.lostWakeups`). A timeout
   * with the target unreached is an honest one.
   */
  #countLost(seq: number, advance: number): void {
    if (this.#handle === null) return;
    if (((this.sequence() - ((seq + advance) >>> 0)) | 0) >= 0) {
      this.stats.lostWakeups++;
    }
  }

  /** Free the native device (no sleep may still reach it). */
  #delete(): void {
    this.#deleteWhenIdle = false;
    this.#freed = true;
    native.ap_dev_delete(this.#cell);
  }

  /** Whether the native device has been freed (after close, once no sleep is pending). */
  get freed(): boolean {
    return this.#freed;
  }

  /**
   * Block until every descriptor the device accepted has run (at most
   * {@linkcode QUIESCE_MS}); it stays open. What the process-exit guard
   * calls (see `quiesceOpenDevices`).
   */
  quiesce(): void {
    if (this.#handle !== null) native.ap_dev_quiesce(this.#handle, QUIESCE_MS);
  }

  /**
   * Stop the device: every accepted descriptor runs to completion, workers
   * exit, then the arena is freed. The final records are kept in a copy so
   * futures still polling read their outcome, never freed memory.
   */
  close(): void {
    const h = this.#handle;
    if (h === null) return;
    this.#handle = null;
    openDevices.delete(this.#openRef);
    this.gathered = [];
    native.ap_dev_stop(h); // every accepted descriptor done, workers joined
    const arena = this.#records.buffer as ArrayBuffer;
    const copy = this.#records.slice();
    this.#records = copy;
    this.#fields = new DataView(copy.buffer);
    this.#control = new Uint32Array(16);
    arena.transfer(0);
    backend.forget(native, h);
    if (this.#pendingSleeps === 0) this.#delete();
    else this.#deleteWhenIdle = true; // the last sleep to return frees it
  }
}
