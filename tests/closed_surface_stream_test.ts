// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Use after `close()` throws ClosedError and touches no unmapped memory:
 * every member of a closed LogStream (its regions and
 * reservations too) and PmemLog (the check itself, and the fixtures: `_closed_surface.ts`).
 *
 * @module
 */
import { PmemLog } from "../mod.ts";
import { tempPath, test } from "./_harness.ts";
import { checkClosedSurface, ENTRY, makeStream } from "./_closed_surface.ts";

test("every member of a closed LogStream, and of its regions and reservations, throws ClosedError", async () => {
  await checkClosedSurface("LogStream", () => {
    const { s, calls } = makeStream();
    return { obj: s, close: () => s.close(), calls };
  }, {
    allowed: {
      path: "the file's path, a JS string",
      recovery: "the report of open, a JS object",
      mover: "the mover given at open, a JS object",
    },
  });
  await checkClosedSurface("Region of a closed stream", () => {
    const { s, r } = makeStream();
    return {
      obj: r,
      close: () => s.close(),
      calls: {
        size: (r) => r.size,
        used: (r) => r.used,
      },
    };
  }, {
    allowed: {
      id: "its slot number, a JS number",
      generation: "a JS number",
      // what follow() and callers ask before a use: a handle of a closed
      // stream reads as freed (RegionHandles.close), as `closed` reads true
      freed: "a state query, as `closed`: true once the handle is unusable",
    },
  });
  await checkClosedSurface("Reservation of a closed stream", () => {
    const { s, r } = makeStream();
    const res = s.reserve(r, 8);
    return {
      obj: res,
      close: () => s.close(),
      calls: {},
    };
  }, {
    openCheck: false,
    allowed: {
      stream: "the stream that made it",
      settled: "a JS boolean: close cancels it",
      timestamp: "a JS number",
      region: "its region (whose members throw, above)",
      data: "a view of the mapping, detached by close (tested below)",
    },
  });
});

test("every member of a closed PmemLog throws ClosedError", async () => {
  await checkClosedSurface("PmemLog", () => {
    const log = PmemLog.create(tempPath(), { poolSize: 2 << 20 });
    return {
      obj: log,
      close: () => log.close(),
      calls: {
        tell: (l) => l.tell(),
        nbyte: (l) => l.nbyte(),
        append: (l) => l.append(ENTRY),
        appendv: (l) => l.appendv([ENTRY, ENTRY]),
        appendAsync: (l) => l.appendAsync(ENTRY),
        rewind: (l) => l.rewind(),
        walk: (l) => l.walk(4096, () => {}),
      },
    };
  }, { allowed: { mover: "the mover given at open, a JS object" } });
});
