// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// `refusedBy` (mover/_refused.ts) words a store's call whose copy its
// closed mover refused; it must word only the mover's own ClosedError.
import { ClosedError, mapFile } from "../mod.ts";
import { refusedBy } from "../mover/_refused.ts";
import { assert, moverTest, tempPath } from "./_harness.ts";

// Bug: any ClosedError met while the store's mover was closed (a shared
// mover closed by its owner) became "writeAsync: its data mover (X) is
// closed", one of the store's own mapping ("Mapping is closed") or of a
// buffer resized under a copy included: the user was told to look at the
// mover for what another object did.
moverTest(
  "refusedBy words only the closed mover's own ClosedError as the store's call",
  (mover) => {
    const map = mapFile(tempPath(), { size: 1 << 16 });
    map.close();
    let mapping: unknown;
    try {
      map.persist(0, 64);
    } catch (e) {
      mapping = e;
    }
    assert.ok(mapping instanceof ClosedError, String(mapping));
    mover.close();
    let own: unknown;
    try {
      mover.batch([{ op: "memset", dst: new Uint8Array(64), value: 1 }]);
    } catch (e) {
      own = e;
    }
    assert.ok(own instanceof ClosedError, String(own));
    const worded = refusedBy(own, mover, "writeAsync");
    assert.ok(worded instanceof ClosedError);
    assert.equal(worded.op, "writeAsync");
    assert.match(
      worded.message,
      /^writeAsync: its data mover \(\w+\) is closed/,
    );
    assert.equal(refusedBy(mapping, mover, "writeAsync"), mapping);
    // a copy's array that is a view of a mapping closed since (see
    // still_attached.ts), and one resized since: not the mover's
    const unmapped = new ClosedError(
      "the mapping",
      "memcpy",
      "src was detached: its mapping closed before the operation started",
    );
    assert.equal(refusedBy(unmapped, mover, "appendAsync"), unmapped);
    const resized = new RangeError(
      "Cannot memcpy: src shrank before the operation ran (its buffer was resized)",
    );
    assert.equal(refusedBy(resized, mover, "appendAsync"), resized);
    const pool = new ClosedError("BlockPool", "access");
    assert.equal(refusedBy(pool, mover, "readAsync"), pool);
  },
);
