// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Kill, recover, power failure (`kill_power.ts`) over the object store's
 * workload (`obj_workload.ts`, recorded by `obj_sweep.ts` from the pool's
 * creation): at sampled crash points (one in the create, the others
 * after it) the process is killed, the pool opened on what it left
 * visible (its log replayed, traced), its state read, one more
 * transaction committed (an object put into a root slot, the old one
 * freed), the pool closed; then each sampled power failure during or
 * after that open is checked by the sweep's {@linkcode ObjImageChecker}:
 * before the read, a state a crash at the kill allows; once read, the
 * state the open showed, or once the transaction after it was
 * acknowledged, that state with its effect; and the heap holding exactly
 * the objects the state reaches (`checkObjectPool`).
 *
 * @module
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ObjectPool } from "../../obj/mod.ts";
import { openPoolWith } from "../../obj/pool_access.ts";
import { describeError, isTypedError } from "./checker.ts";
import { tracedRun } from "./kill_image.ts";
import {
  checkPowerFailures,
  type KillPowerOptions,
  type KillPowerReport,
  READ_BACK,
  sampledKills,
} from "./kill_power.ts";
import { crashMover, parseCrashMover } from "./movers.ts";
import { ObjImageChecker } from "./obj_checker.ts";
import { CREATED, recordObjTrace } from "./obj_sweep.ts";
import {
  fingerprint,
  OBJ_OPTIONS,
  ObjDriver,
  observe,
  SLOTS,
} from "./obj_workload.ts";
import { xorshift } from "./random.ts";
import { countTrace, traceProblems } from "./sweep_report.ts";
import type { TraceEvent } from "./tracer.ts";

/** The check's settings of an image: no crash of its own recovery. */
const SETTINGS = {
  subsets: { exhaustiveLimit: 0, prefixes: 0, random: 0, evict: 0 },
  recoveryImages: 0,
  maxImages: Infinity,
  dir: "",
};

/** The transaction after a kill: slot 0 gets a new object, the old one is freed. */
function putSlot0(d: ObjDriver): void {
  const data = new Uint8Array(200).fill(0x5a);
  d.commit((tx) => {
    const root = d.root;
    const old = tx.getU64(root, 0);
    const o = tx.alloc(data.length);
    tx.write(o, 0, data);
    tx.setU64(root, 0, o.offset);
    if (old !== 0) tx.free(tx.object(old));
    tx.setU64(root, 8 * SLOTS, tx.getU64(root, 8 * SLOTS) + 1);
  }, (s) => {
    s.slots[0] = data;
    s.counter++;
  });
}

/**
 * Record the object workload with `mover`, kill it at sampled crash
 * points and check power failures after each kill's open, adding to
 * `report`.
 */
export function killPowerObj(
  mover: string,
  options: KillPowerOptions,
  report: KillPowerReport,
): void {
  const trace = recordObjTrace(
    options.model,
    options.seed,
    options.ops,
    join(options.dir, "trace"),
    mover,
  );
  countTrace(report, trace);
  const rand = xorshift(options.seed ^ 0x6b111);
  const fail = traceProblems(report, {
    ...trace,
    workload: { name: "obj" },
    ops: options.ops,
  });
  const path = join(options.dir, "killed");
  const created = trace.events.findIndex((e) =>
    e.kind === "mark" && e.label === CREATED
  );
  const at = { created: false, acked: 0, issued: 0 };
  const kills = sampledKills(new Uint8Array(OBJ_OPTIONS.size), trace.events, {
    model: options.model,
    rand,
    ranges: [
      { from: 0, to: created, count: options.createKills },
      { from: created, to: trace.events.length, count: options.kills },
    ],
    mark(label) {
      if (label === CREATED) at.created = true;
      else if (label.startsWith("ack ")) {
        at.acked = Math.max(at.acked, Number(label.slice(4)));
      } else if (label.startsWith("issue ")) {
        at.issued = Math.max(at.issued, Number(label.slice(6)));
      }
    },
  });
  for (const kill of kills) {
    const atKill = { ...at, issued: Math.max(at.issued, at.acked) };
    writeFileSync(path, kill.visible);
    let after: string[] = [];
    let events: TraceEvent[];
    const vdm = crashMover(parseCrashMover(mover));
    try {
      events = tracedRun(path, kill.durable, (tracer) => {
        const pool = openPoolWith(path, {
          layout: OBJ_OPTIONS.layout,
          mover: vdm,
        }, { tracer });
        return { pool, tracer, close: () => pool.close() };
      }, ({ pool, tracer }) => {
        after = readAndPut(pool, (l) => tracer.mark(l));
      }, options.model);
    } catch (e) {
      if (!atKill.created && isTypedError(e)) {
        report.refused++;
        continue;
      }
      fail(kill.event, [], [`the open after the kill: ${describeError(e)}`]);
      continue;
    } finally {
      vdm.close();
    }
    report.kills++;
    const ks = after.length === 0
      ? undefined
      : trace.states.flatMap((s, k) => s === after[0] ? [k] : []);
    if (
      ks !== undefined &&
      !ks.some((k) => k >= atKill.acked && k <= atKill.issued)
    ) {
      fail(kill.event, [], [
        `the open after the kill shows the state after ${
          ks.join(" or ") || "no transaction prefix"
        }, acknowledged ${atKill.acked}, issued ${atKill.issued}`,
      ]);
      continue;
    }
    // the power failures' marks: the read, then the transaction after it
    // ("issue 1", "ack 1"; state k of `after`)
    const now = { read: false, acked: 0, issued: 0 };
    const reopened = {
      durable: kill.durable,
      events,
      mark(label: string) {
        if (label === READ_BACK) now.read = true;
        else if (label.startsWith("ack ")) now.acked = Number(label.slice(4));
        else if (label.startsWith("issue ")) {
          now.issued = Number(label.slice(6));
        }
      },
    };
    const counts = {
      refused: 0,
      recovered: 0,
      recoveryImages: 0,
      inFlightSeen: 0,
      continued: 0,
    };
    checkPowerFailures(reopened, options, rand, report, (scratch) => {
      const before = new ObjImageChecker(scratch, options.model, trace.states);
      const since = after.length === 0
        ? before
        : new ObjImageChecker(scratch, options.model, after);
      return (image) => {
        if (!now.read || after.length === 0) {
          return before.check(
            image,
            atKill.created,
            atKill.acked,
            atKill.issued,
            SETTINGS,
            rand,
            counts,
          );
        }
        return since.check(
          image,
          true,
          now.acked,
          Math.max(now.issued, now.acked),
          SETTINGS,
          rand,
          counts,
        );
      };
    }, (units, problems) => fail(kill.event, units, problems));
  }
}

/**
 * Read the pool the open after a kill gave, mark the read, commit one
 * transaction: the states from the one read (k = 0) on, or none when
 * the kill left the pool without its setup (nothing to build on).
 */
function readAndPut(
  pool: ObjectPool,
  mark: (label: string) => void,
): string[] {
  if (pool.rootSize === 0) {
    mark(READ_BACK);
    return [];
  }
  const { state } = observe(pool);
  mark(READ_BACK);
  const d = new ObjDriver(pool, mark, () => 0, {
    state,
    states: [fingerprint(state)],
  });
  putSlot0(d);
  return d.states;
}
