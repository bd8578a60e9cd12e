// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The log store in one script: create a stream, append synchronously, in
 * place and asynchronously (through a thread mover), follow a region,
 * iterate, truncate, reopen; then the libpmemlog-compatible log.
 *
 *   deno run -A examples/log_stream.ts [dir]     bun examples/log_stream.ts [dir]
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { all, ThreadMover } from "@asyncpmem/asyncpmem";
import { LogStream, PmemLog } from "@asyncpmem/asyncpmem/stream";

const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), "asyncpmem-"));
const path = join(dir, "events.stream");
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

{
  using mover = new ThreadMover({ threads: 2 });
  using s = LogStream.create(path, { size: 8 << 20, mover });
  const orders = s.allocateRegion(1 << 20);
  const audit = s.allocateRegion(256 << 10);

  // a follower, woken by each commit in this thread
  const followed: string[] = [];
  const stop = new AbortController();
  const following = (async () => {
    for await (const e of s.follow(audit, { signal: stop.signal })) {
      followed.push(`${e.timestamp}:${dec(e.data)}`);
    }
  })();

  // 1. synchronous: committed and persisted (one persist) on return
  const t1 = s.append(orders, enc("order 1"));
  s.append(audit, enc(`wrote ${t1}`));

  // 2. in place: reserve, fill the mapping directly, publish
  const res = s.reserve(orders, 7);
  res.data.set(enc("order 2"));
  s.publish(res);

  // 3. asynchronous: copied by the mover, committed in timestamp order,
  //    the ones completing together persisted with one fence
  const stamps = await all(
    [3, 4, 5].map((n) => s.appendAsync(orders, enc(`order ${n}`))),
  );
  s.append(audit, enc(`wrote ${stamps.join(",")}`));
  console.log(
    `committed ${s.committedTimestamp}, persisted ${s.persistedTimestamp}`,
  );

  await new Promise((resolve) => setTimeout(resolve, 10));
  stop.abort();
  await following;
  console.log(`followed: ${followed.join(" | ")}`);

  // drop the orders up to the reserved one; their space is reused
  s.truncate(orders, res.timestamp);
}

{
  using s = LogStream.open(path);
  const [orders] = s.regions();
  const texts = [...s.entries(orders)].map((e) => dec(e.data));
  console.log(`reopened ${path}: ${texts.join(", ")}`);
}

// libpmemlog's format: files libpmemlog and pmempool accept
{
  using log = PmemLog.create(join(dir, "legacy.log"), { poolSize: 2 << 20 });
  log.append(enc("HELLO"));
  log.appendv([enc(" "), enc("WORLD")]);
  let text = "";
  log.walk(0, (chunk) => {
    text = dec(chunk);
    return true;
  });
  console.log(`pmemlog: ${log.tell()} bytes, "${text}"`);
}

if (process.argv[2] === undefined) rmSync(dir, { recursive: true });
