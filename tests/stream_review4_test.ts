// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Found by a fourth review of the log store (probes first, then these
// tests).
import { LogStream } from "../stream/mod.ts";
import { ThreadMover } from "../mover/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;

test("`appendAsync()` of a stale view overlapping the entry's own place, across a view window's end, stores the bytes the view held", async () => {
  // Bug: on Bun a stream over 64 MiB is stored through windows, and a
  // mover copies an entry across a window's end as one piece per window;
  // pieces run as separate copies, in any order or at once, so with data
  // that is a view of the mapping overlapping the entry's own place (an
  // entries() view kept across a truncate()) one piece overwrote bytes
  // another still had to read: the entry held wrong bytes from the
  // window's end on.
  using mover = new ThreadMover();
  using s = LogStream.create(tempPath(), { size: 128 * MiB, mover });
  const r = s.allocateRegion(120 * MiB);
  const lead = 2 * MiB - 16 - 8192 - 1000; // next entry spans 2 MiB
  const len = 3 * MiB;
  for (const shift of [1, -1, 4099, -4099]) {
    s.append(r, new Uint8Array(lead));
    const base = new Uint8Array(len + 16384);
    for (let i = 0; i < base.length; i++) base[i] = (i * 31 + (i >> 8)) & 255;
    s.append(r, base);
    const old = [...s.entries(r)].at(-1)!;
    s.truncate(r, old.timestamp + 1); // drop both: their place is reused
    s.append(r, new Uint8Array(lead));
    const src = old.data.subarray(8192 + shift, 8192 + shift + len);
    const want = base.slice(8192 + shift, 8192 + shift + len);
    await s.appendAsync(r, src);
    const got = [...s.entries(r)].at(-1)!.data;
    assert.equal(got.byteOffset, old.data.byteOffset, "the same place");
    assert.equal(got.length, len);
    let diff = -1;
    for (let i = 0; i < len; i++) {
      if (got[i] !== want[i]) {
        diff = i;
        break;
      }
    }
    assert.equal(diff, -1, `shift ${shift}: first wrong byte`);
    s.truncate(r, s.committedTimestamp + 1);
  }
});
