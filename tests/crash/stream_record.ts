// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Recording a log-stream workload for the crash sweep: the workload runs
 * on the production path with a {@linkcode CrashTracer} on the stream's
 * mapping, its operations labelled for a {@linkcode StreamLedger}.
 *
 * @module
 */
import { rmSync } from "node:fs";
import { mapFile, type Mapping } from "../../pmem2/mod.ts";
import { LogStream } from "../../stream/mod.ts";
import {
  createStreamWith,
  openStreamWith,
  streamMedia,
} from "../../stream/stream.ts";
import type { PersistenceModel } from "./model.ts";
import { xorshift } from "./random.ts";
import { recycle, spareCopy } from "./spare_buffers.ts";
import { StreamLedger } from "./stream_ledger.ts";
import {
  STREAM_OPTIONS,
  StreamDriver,
  type StreamWorkload,
} from "./stream_workload.ts";
import {
  CrashTracer,
  faultyTracer,
  type TraceEvent,
  traceFile,
} from "./tracer.ts";
import { crashMover, parseCrashMover } from "./movers.ts";

/** The mark that says `LogStream.create` returned. */
export const CREATED_MARK = "ack create";

/** A recorded workload. */
export interface StreamTrace {
  workload: StreamWorkload;
  model: PersistenceModel;
  seed: number;
  /** The mover of the run. */
  mover: string;
  /** The file when tracing started (durable). */
  base: Uint8Array;
  events: TraceEvent[];
  /** The untraced preparation; the trace's marks add to it. */
  ledger: StreamLedger;
  ops: number;
  /** Operations issued while traced. */
  operations: number;
  /** Whether the store saw the stream through view windows. */
  windowed: boolean;
  /** The ranges the tracers scan (`CrashTracer`); unset: the whole file. */
  scan?: { offset: number; length: number }[];
  /**
   * Words stored outside `scan` while traced (flushed or not): none, or
   * the ranges missed crash points.
   */
  strays: number;
}

/** Faults to inject into a recording, to show the checker sees them. */
export interface StreamRecordFaults {
  /** Hide every fence from the tracer. */
  dropFences?: boolean;
}

/**
 * Run a workload on a new stream at `path`, traced (the file is removed
 * afterwards).
 */
export function recordStreamTrace(
  w: StreamWorkload,
  model: PersistenceModel,
  seed: number,
  ops: number,
  path: string,
  mover: string,
  faults: StreamRecordFaults = {},
): StreamTrace {
  const rand = xorshift(seed);
  const ledger = new StreamLedger();
  const vdm = crashMover(parseCrashMover(mover));
  let probe: Mapping | undefined;
  let s: LogStream | undefined;
  const geometry = w.geometry ?? STREAM_OPTIONS;
  try {
    let base: Uint8Array;
    let tracer: CrashTracer;
    let shadow: Uint8Array;
    let firstOp = 1;
    let scan: { offset: number; length: number }[] | undefined;
    if (w.fromCreate) {
      ledger.created = false;
      base = new Uint8Array(geometry.size);
      shadow = spareCopy(base);
      tracer = new CrashTracer({
        live: () => (probe = mapFile(path)).view(),
        shadow,
        flushGranularity: model.flushGranularity,
      });
      s = createStreamWith(path, { ...geometry, mover: vdm }, {
        tracer: faultyTracer(tracer, faults),
      });
      tracer.mark(CREATED_MARK);
    } else {
      s = LogStream.create(path, { ...geometry, mover: vdm });
      const d = new StreamDriver(s, (l) => ledger.record(l), rand);
      w.prepare(d);
      firstOp = d.nextOp;
      // everything prepared is committed and persisted (it was untraced)
      ledger.committed = ledger.persisted = s.committedTimestamp;
      s.close();
      scan = w.scan?.(path);
      ({ probe, base, tracer, shadow } = traceFile(path, model, scan));
      s = openStreamWith(path, { mover: vdm }, {
        tracer: faultyTracer(tracer, faults),
      });
    }
    const windowed = streamMedia(s).whole === undefined;
    const t = tracer;
    const d = new StreamDriver(s, (l) => t.mark(l), rand, firstOp);
    w.run(d, rand, ops);
    s.close();
    const events = tracer.finish();
    recycle(shadow);
    const strays = tracer.strays + tracer.unscanned();
    return {
      workload: w,
      model,
      seed,
      mover,
      base,
      events,
      ledger,
      ops,
      operations: d.issued,
      windowed,
      scan,
      strays,
    };
  } finally {
    s?.close();
    probe?.close();
    vdm.close();
    rmSync(path, { force: true });
  }
}
