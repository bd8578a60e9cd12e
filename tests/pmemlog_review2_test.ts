// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// A second review of PmemLog (probes against libpmemlog 1.12.1 first, then
// these tests): the options of its asynchronous appends, and its appends'
// atomicity across crashes, checked image by image by this library and by
// libpmemlog.
import { PmemLog } from "../stream/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;

// Bug: `appendAsync(data, options)` took options that are not an object
// (a string such as LogStream's "committed", a number, null, an array of
// more data) as no options at all and appended, where LogStream's
// `appendAsync` refuses them; and a signal that is not an AbortSignal was refused in the words
// of the future's constructor ("Cannot make a future"), not the call's.
test("`appendAsync()` refuses options that are not an object, and a bad signal, naming itself", () => {
  using log = PmemLog.create(tempPath(), { poolSize: 2 * MiB });
  for (const bad of ["committed", 1, null]) {
    assert.throws(
      () => log.appendAsync(Uint8Array.of(1), bad as never),
      new TypeError("Cannot appendAsync: options must be an object"),
      JSON.stringify(bad),
    );
  }
  // (more data, as to appendv)
  assert.throws(
    () => log.appendAsync(Uint8Array.of(1), [Uint8Array.of(2)] as never),
    new TypeError(
      "Cannot appendAsync: options must be an object, got an array",
    ),
  );
  assert.throws(
    () => log.appendAsync(Uint8Array.of(1), { signal: {} as AbortSignal }),
    new TypeError("Cannot appendAsync: signal must be an AbortSignal"),
  );
  // nothing was queued: a later append goes first
  log.append(Uint8Array.of(9));
  assert.equal(log.tell(), 1);
});

// Bug: `appendAsync("x")` said "data must be Uint8Arrays", the words of
// `appendv`'s array check, for its one buffer; `append` says "a
// Uint8Array".
test("`appendAsync()` of something not a Uint8Array says it must be a `Uint8Array`", () => {
  using log = PmemLog.create(tempPath(), { poolSize: 2 * MiB });
  for (const bad of ["x", new Uint16Array(2), undefined]) {
    assert.throws(
      () => log.appendAsync(bad as never),
      new TypeError("Cannot appendAsync: data must be a Uint8Array"),
    );
  }
  assert.equal(log.tell(), 0);
});
