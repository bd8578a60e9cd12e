// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A PmemLog workload recorded for the crash checks (`kill_power_pmemlog.ts`):
 * a log created traced, then appends (one at a time, or several
 * `appendAsync`s completing together) and rewinds, each labelled for a
 * {@linkcode PmemLogLedger}: the log's contents a crash may leave.
 *
 * Labels: `I append OP LEN` / `A append OP` (the entry's bytes are
 * {@linkcode entryBytes}), `I rewind` / `A rewind`.
 *
 * @module
 */
import { rmSync } from "node:fs";
import { Buffer } from "node:buffer";
import { waitAll } from "../../future/mod.ts";
import { mapFile, type Mapping } from "../../pmem2/mod.ts";
import { createPmemLogWith, type PmemLog } from "../../stream/pmemlog.ts";
import type { PersistenceModel } from "./model.ts";
import { type CrashMover, crashMover } from "./movers.ts";
import { pick, xorshift } from "./random.ts";
import { spareCopy } from "./spare_buffers.ts";
import { CrashTracer, type TraceEvent } from "./tracer.ts";

/** The size of a traced log pool: libpmemlog's minimum. */
export const LOG_POOL_SIZE = 2 * 1024 * 1024;

/** The mark that says `PmemLog.create` returned. */
export const LOG_CREATED = "ack create";

/** The bytes op `op` appends: `length` of them, naming the op. */
export function entryBytes(op: number, length: number): Uint8Array {
  const b = new Uint8Array(length);
  for (let i = 0; i < length; i++) b[i] = (op * 31 + i * 7) & 255;
  new DataView(b.buffer).setUint32(0, op, true);
  return b;
}

/** The log's whole contents, as `walk` gives them. */
export function logContents(log: PmemLog): Uint8Array {
  let out = new Uint8Array(0);
  log.walk(0, (chunk) => void (out = chunk.slice()));
  return out;
}

/** What a crash may leave of a log: its acknowledged contents, and what is in flight. */
export class PmemLogLedger {
  #acked: Uint8Array;
  /** Appends in flight, in log order, or a rewind (`null`). */
  #inFlight: { op: number; bytes: Uint8Array }[] | null = [];

  /** @param acked the contents acknowledged before the first label */
  constructor(acked: Uint8Array = new Uint8Array(0)) {
    this.#acked = acked;
  }

  /** A copy that goes on on its own. */
  copy(): PmemLogLedger {
    const c = new PmemLogLedger(this.#acked);
    c.#inFlight = this.#inFlight === null ? null : [...this.#inFlight];
    return c;
  }

  /** Record a label; false when it is not one of the ledger's. */
  record(label: string): boolean {
    const [phase, what, op, length] = label.split(" ");
    if (what === "rewind") {
      if (phase === "I") this.#inFlight = null;
      else if (phase === "A") {
        this.#acked = new Uint8Array(0);
        this.#inFlight = [];
      } else return false;
      return true;
    }
    if (what !== "append" || this.#inFlight === null) return false;
    if (phase === "I") {
      this.#inFlight.push({
        op: Number(op),
        bytes: entryBytes(Number(op), Number(length)),
      });
      return true;
    }
    if (phase !== "A") return false;
    // the write offset only grows: an append acknowledged is durable with
    // every one before it in the log
    const i = this.#inFlight.findIndex((e) => e.op === Number(op));
    if (i < 0) return true; // made durable by a later one's ack
    this.#acked = Buffer.concat([
      this.#acked,
      ...this.#inFlight.slice(0, i + 1).map((e) => e.bytes),
    ]);
    this.#inFlight = this.#inFlight.slice(i + 1);
    return true;
  }

  /** Why `shown` is not a state a crash may leave, or null when it is. */
  judge(shown: Uint8Array): string | null {
    const states = [this.#acked];
    if (this.#inFlight === null) states.push(new Uint8Array(0));
    else {
      let s = this.#acked;
      for (const e of this.#inFlight) {
        states.push(s = Buffer.concat([s, e.bytes]));
      }
    }
    if (states.some((s) => Buffer.compare(s, shown) === 0)) return null;
    return `the log holds ${shown.length} bytes, expected one of ${
      states.map((s) => s.length).join(", ")
    } bytes as acknowledged (or in flight)`;
  }
}

/** A recorded PmemLog workload. */
export interface PmemLogTrace {
  workload: { name: string };
  model: PersistenceModel;
  seed: number;
  ops: number;
  mover: CrashMover;
  /** The file before the create (zeros). */
  base: Uint8Array;
  events: TraceEvent[];
  /** Operations issued. */
  operations: number;
}

/** Label and run `ops` operations on `log`; returns the ops issued. */
function run(
  log: PmemLog,
  mark: (label: string) => void,
  rand: () => number,
  ops: number,
): number {
  let op = 1;
  for (let i = 0; i < ops; i++) {
    const x = rand();
    if (x < 0.1) {
      mark("I rewind");
      log.rewind();
      mark("A rewind");
    } else if (x < 0.6) {
      const bytes = entryBytes(op, 1 + pick(rand, 300));
      mark(`I append ${op} ${bytes.length}`);
      log.append(bytes);
      mark(`A append ${op++}`);
    } else {
      const batch = [];
      for (let n = 1 + pick(rand, 3); n > 0; n--) {
        const bytes = entryBytes(op, 1 + pick(rand, 300));
        mark(`I append ${op} ${bytes.length}`);
        batch.push({ op: op++, f: log.appendAsync(bytes) });
      }
      waitAll(batch.map((b) => b.f));
      for (const b of batch) mark(`A append ${b.op}`);
    }
  }
  return op - 1;
}

/**
 * Create a log at `path` traced, run `ops` operations on it with
 * `mover` (its `appendAsync` copies), close it: the trace (the file is
 * removed afterwards).
 */
export function recordPmemLogTrace(
  model: PersistenceModel,
  seed: number,
  ops: number,
  path: string,
  mover: CrashMover,
): PmemLogTrace {
  const base = new Uint8Array(LOG_POOL_SIZE);
  const shadow = spareCopy(base);
  let probe: Mapping | undefined;
  const tracer = new CrashTracer({
    live: () => (probe = mapFile(path)).view(),
    shadow,
    flushGranularity: model.flushGranularity,
  });
  const vdm = crashMover(mover);
  let log: PmemLog | undefined;
  try {
    log = createPmemLogWith(path, { poolSize: LOG_POOL_SIZE, mover: vdm }, {
      tracer,
    });
    tracer.mark(LOG_CREATED);
    const operations = run(log, (l) => tracer.mark(l), xorshift(seed), ops);
    log.close();
    return {
      workload: { name: "pmemlog" },
      model,
      seed,
      ops,
      mover,
      base,
      events: tracer.finish(),
      operations,
    };
  } finally {
    log?.close();
    vdm.close();
    probe?.close();
    rmSync(path, { force: true });
  }
}
