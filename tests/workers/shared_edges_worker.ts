// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The Worker of `tests/blk_shared_edges_test.ts`: it opens a pool by path
 * and does one job at a time (`SharedEdgesJob`), posting `{ ok }` or
 * `{ error }` for each, so a test can open, hold, write and close a pool
 * in another thread in the order it wants. A pool it opens stays open
 * between jobs until a `close` job; a job that holds shared state (a
 * lock, a lane, a read) keeps it until the Worker is terminated.
 *
 * @module
 */
import { BlockPool } from "../../blk/mod.ts";
import { LaneTable } from "../../blk/lanes.ts";
import {
  lockWord,
  maxArenas,
  PoolShared,
  unlockWord,
} from "../../blk/shared.ts";
import { readBucket } from "../../blk/read_tracking.ts";
import {
  LANE_BASE,
  LANE_PENDING,
  LANE_WORDS,
  LANES,
  LEDGER_OWNER_BASE,
  LEDGERS,
  READ_BUCKETS,
  RING_BASE,
  RING_HEAD,
  RING_IDLE,
  RING_LOCK,
  RING_OP,
  RING_OP_HEAD,
  RING_OP_IDLE,
  RING_OP_LANE,
  RING_OP_SLOT,
  RING_POP,
} from "../../blk/arena_words.ts";
import { FileShare } from "../../pmem2/file_share.ts";
import { openPoolFile } from "../../blk/open.ts";
import { layOutBtt } from "../../blk/btt.ts";
import { PmemError } from "../../errors/mod.ts";
import { closeSync, openSync, readSync, statSync, writeSync } from "node:fs";
import {
  FLOG_ENTRY_SIZE,
  FLOG_SLOT_SIZE,
  MAP_ENTRY_SIZE,
  MAP_LBA_MASK,
  MAP_ZERO,
} from "../../blk/layout.ts";
import { effectiveMapEntry } from "../../blk/flog.ts";
import { arena0Regions } from "./arena0.ts";
import { stamp } from "./blk_blocks.ts";

/** A job of this Worker. */
export type SharedEdgesJob =
  | { kind: "open"; path: string; readOnly?: boolean; blockSize?: number }
  | { kind: "close" }
  | { kind: "write"; lba: number; value: number }
  | { kind: "read"; lba: number }
  /** Check the open pool: its problems. */
  | { kind: "check" }
  /** Open, write `lba` with `value`, read it back, close: `times` times. */
  | { kind: "reopen"; path: string; lba: number; times: number }
  /**
   * Write block `lba` with stamps of writer `id`, seq 1, 2, …, `count`
   * (sync writes): after each, store its seq in `words[slot]`.
   */
  | {
    kind: "seqWrite";
    path: string;
    id: number;
    lba: number;
    count: number;
    words: SharedArrayBuffer;
    slot: number;
  }
  /**
   * Read block `lba` until `words[stop]` is set: the seqs of writer `id`
   * it sees never go back, and never fall below what the writer had
   * published in `words[slot]` before the read began.
   */
  | {
    kind: "seqRead";
    path: string;
    id: number;
    lba: number;
    words: SharedArrayBuffer;
    slot: number;
    stop: number;
  }
  /**
   * Join the pool's share and take a stripe lock, the ring lock, the
   * shutdown state's lock or the layout lock (`layout`: as a layout under
   * way, not yet marked done; `laidOut`: opening the pool file and laying
   * its BTT out for real, marked done, the lock kept as a layout that
   * ends before its unlock keeps it; `attach`: as an open takes it to
   * attach to a layout already made), or
   * what a check() holds (`check`: the layout lock and every stripe, as
   * check() takes them; with `lanes`, after taking that many lanes of
   * arena 0 first, as writes of its in flight do, and with `spoil`, then
   * making the first one's flog slot name a block beyond the arena, so
   * the others cannot recover it online); with `halfPop`, then begin
   * taking a lane off the ring and stop half way; with `zero` (lock
   * `stripe`), then store block `pre`'s map entry with the zero flag,
   * not persisted, as a setZero does before its persist.
   */
  | {
    kind: "holdLock";
    path: string;
    lock:
      | "stripe"
      | "ring"
      | "state"
      | "layout"
      | "laidOut"
      | "attach"
      | "check";
    pre: number;
    halfPop?: boolean;
    lanes?: number;
    spoil?: boolean;
    zero?: boolean;
  }
  /**
   * Join the pool's share and take `n` lanes of arena 0 off the idle
   * ring, as a write does before its data is copied; with `stripe`, also
   * hold that block's stripe (a commit under way); with `spoil`, also
   * make the first lane's flog slot name a block beyond the arena (so
   * the others cannot recover the lane online: a reopen refuses the pool);
   * with `halfPending` (and `stripe`: a commit publishes under it), then
   * record block `halfPending`'s map entry as pending through the first
   * lane and undo the lane's word of it, as a publish cut short between
   * its mark in the pending filter and its lane word leaves them.
   */
  | {
    kind: "holdLanes";
    path: string;
    n: number;
    stripe?: number;
    spoil?: boolean;
    halfPending?: number;
  }
  /**
   * Join the pool's share and count a read of every lane's free block of
   * arena 0 (`times` reads, default 1), as reads in flight do (writers
   * then skip every lane).
   */
  | { kind: "holdReads"; path: string; times?: number }
  /**
   * Join the pool's share and, `rounds` times: count a read of a block of
   * every read-tracking bucket of arena 0 `times` times (default 1), then
   * give the ledger back (`ReadTracker.leave`) and claim one again, each
   * under the ring lock. `words[0]` counts the give-backs begun and ended
   * (odd while one runs), `words[1]` is set to 1 + the ledger's slot
   * before the first, `words[2]` once all ended.
   */
  | {
    kind: "giveBackRounds";
    path: string;
    rounds: number;
    times?: number;
    words: SharedArrayBuffer;
  }
  /** Join the pool's share as its first open, and stop there. */
  | { kind: "joinShare"; path: string }
  /** Open the pool and write asynchronously forever (to be terminated). */
  | { kind: "writeForever"; path: string; lbas: number }
  /**
   * Open the pool and check it; at the check's first progress call (its
   * locks held, the map's scan begun) reply, then block there for good
   * (to be terminated inside the check).
   */
  | { kind: "checkForever"; path: string }
  /**
   * Open the pool and check it twice back to back: the first check, at
   * its first progress call, sets `words[0]` and waits there until
   * `words[1]` is set; the second, at its first, reads block `lba`. The
   * first byte it read.
   */
  | { kind: "checkTwice"; path: string; lba: number; words: SharedArrayBuffer };

// deno-lint-ignore no-explicit-any
const self_ = globalThis as any;

let pool: BlockPool | null = null;
/** What a holding job keeps alive (never closed). */
const held: unknown[] = [];

/**
 * Join the pool's share as an opener of its own, and arena 0's lane
 * table (kept alive by the caller: a holding job never closes it).
 */
function joinArena0(
  path: string,
): { share: FileShare; shared: PoolShared; table: LaneTable } {
  const size = statSync(path).size;
  const share = FileShare.open(path, PoolShared.bytes(size));
  const shared = new PoolShared(share.memory, maxArenas(size));
  return { share, shared, table: new LaneTable(shared.arena(0), 0x7777) };
}

/** Make both entries of `lane`'s flog slot in arena 0 name block 2^31 - 1. */
function spoilFlogSlot(path: string, lane: number): void {
  const slot = arena0Regions(path).flog[0] + lane * FLOG_SLOT_SIZE;
  const lba = new Uint8Array(new Uint32Array([0x7fffffff]).buffer);
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, lba, 0, 4, slot);
    writeSync(fd, lba, 0, 4, slot + FLOG_ENTRY_SIZE);
  } finally {
    closeSync(fd);
  }
}

/**
 * Store block `pre`'s map entry in arena 0 with the zero flag through the
 * page cache, not persisted (a setZero's store, before its persist).
 */
function storeZeroEntry(path: string, pre: number): void {
  const at = arena0Regions(path).map[0] + pre * MAP_ENTRY_SIZE;
  const entry = new Uint32Array(1);
  const bytes = new Uint8Array(entry.buffer);
  const fd = openSync(path, "r+");
  try {
    readSync(fd, bytes, 0, 4, at);
    entry[0] = (effectiveMapEntry(entry[0], pre) & MAP_LBA_MASK) | MAP_ZERO;
    writeSync(fd, bytes, 0, 4, at);
  } finally {
    closeSync(fd);
  }
}

function open(path: string, readOnly?: boolean, blockSize?: number) {
  return BlockPool.open(path, { readOnly, blockSize });
}

function run(job: SharedEdgesJob): unknown {
  switch (job.kind) {
    case "open":
      pool = open(job.path, job.readOnly, job.blockSize);
      return pool.blockCount;
    case "close":
      pool?.close();
      pool = null;
      return true;
    case "write":
      pool!.write(job.lba, new Uint8Array(pool!.blockSize).fill(job.value));
      return true;
    case "read":
      return pool!.read(job.lba)[0];
    case "check":
      return pool!.check().problems;
    case "reopen": {
      const seen: number[] = [];
      for (let i = 1; i <= job.times; i++) {
        using p = BlockPool.open(job.path);
        p.write(job.lba, new Uint8Array(p.blockSize).fill(i));
        seen.push(p.read(job.lba)[0]);
      }
      return seen;
    }
    case "seqWrite": {
      using p = BlockPool.open(job.path);
      const words = new Int32Array(job.words);
      for (let seq = 1; seq <= job.count; seq++) {
        p.write(job.lba, stamp(job.id, job.lba, seq, p.blockSize));
        Atomics.store(words, job.slot, seq);
      }
      return job.count;
    }
    case "seqRead": {
      using p = BlockPool.open(job.path);
      const words = new Int32Array(job.words);
      const into = new Uint8Array(p.blockSize);
      let last = 0;
      let reads = 0;
      for (let stopping = false; !stopping;) {
        // (the read after the stop sees the writer's last update)
        stopping = Atomics.load(words, job.stop) !== 0;
        const floor = Atomics.load(words, job.slot);
        p.read(job.lba, into);
        reads++;
        const dv = new DataView(into.buffer);
        const id = dv.getUint32(0, true);
        const seq = id === 0 ? 0 : dv.getUint32(8, true);
        if (id !== 0 && id !== job.id) throw new Error(`foreign writer ${id}`);
        if (seq < last) throw new Error(`seq went back: ${last} then ${seq}`);
        if (seq < floor) {
          throw new Error(
            `read seq ${seq} after the writer published ${floor}`,
          );
        }
        last = seq;
      }
      return { reads, last };
    }
    case "holdLock": {
      const { share, shared, table } = joinArena0(job.path);
      if (job.lock === "stripe") {
        table.lockStripe(job.pre);
        if (job.zero) storeZeroEntry(job.path, job.pre);
      } else if (job.lock === "state") shared.lockShutdownState();
      else if (job.lock === "layout") shared.lockLayout("write");
      else if (job.lock === "laidOut") {
        // what BlockPool's first write does, short of the unlock (the
        // pool file's own share is the one whose lock it holds)
        const file = openPoolFile(job.path, {}, {});
        file.join.shared.lockLayout("write");
        layOutBtt(file);
      } else if (job.lock === "attach") {
        // (what BlockPool's #layOut takes, finding the BTT laid out)
        shared.lockLayout("read");
      } else if (job.lock === "check") {
        const lanes: number[] = [];
        if (job.lanes && !table.take(job.lanes, lanes)) {
          throw new Error("no idle lanes");
        }
        if (job.spoil) spoilFlogSlot(job.path, lanes[0]);
        shared.lockLayout("check", true);
        table.lockStripes();
      } else lockWord(table.words, RING_LOCK, share.token);
      if (job.halfPop) {
        // what LaneTable's pop does, up to the swap: logged, half changed
        const w = table.words;
        const head = w[RING_HEAD];
        const slot = (head + 1) % w[LANES];
        w[RING_OP_LANE] = w[RING_BASE + slot];
        w[RING_OP_SLOT] = slot;
        w[RING_OP_HEAD] = head;
        w[RING_OP_IDLE] = w[RING_IDLE];
        Atomics.store(w, RING_OP, RING_POP);
        w[RING_BASE + slot] = w[RING_BASE + head];
      }
      held.push(share, shared, table);
      return true;
    }
    case "holdLanes": {
      const { share, table } = joinArena0(job.path);
      const lanes: number[] = [];
      if (!table.take(job.n, lanes)) throw new Error("no idle lanes");
      if (job.stripe !== undefined) table.lockStripe(job.stripe);
      if (job.spoil) spoilFlogSlot(job.path, lanes[0]);
      if (job.halfPending !== undefined) {
        const lane = lanes[0];
        // (its previous entry cleared, as the commit's flush would)
        const seq = table.pending(lane);
        if (seq !== 0) table.clearPending(lane, seq);
        table.addPending(lane, job.halfPending);
        Atomics.store(
          table.words,
          LANE_BASE + lane * LANE_WORDS + LANE_PENDING,
          0,
        );
      }
      held.push(share, table);
      return lanes;
    }
    case "holdReads": {
      const { share, table } = joinArena0(job.path);
      for (let lane = 0; lane < table.lanes; lane++) {
        for (let i = 0; i < (job.times ?? 1); i++) {
          table.reads.track(table.free(lane));
        }
      }
      held.push(share, table);
      return table.lanes;
    }
    case "giveBackRounds": {
      const { share, table } = joinArena0(job.path);
      const words = new Int32Array(job.words);
      const w = table.words;
      // a block of each bucket, found by hashing blocks in turn
      const blocks: number[] = [];
      const seen = new Set<number>();
      for (let b = 0; seen.size < READ_BUCKETS; b++) {
        if (!seen.has(readBucket(b))) blocks.push(b);
        seen.add(readBucket(b));
      }
      let slot = -1;
      for (let s = 0; s < LEDGERS; s++) {
        if (w[LEDGER_OWNER_BASE + s] === table.token) slot = s;
      }
      Atomics.store(words, 1, slot + 1);
      for (let r = 0; r < job.rounds; r++) {
        for (const b of blocks) {
          for (let i = 0; i < (job.times ?? 1); i++) table.reads.track(b);
        }
        lockWord(w, RING_LOCK, table.token);
        Atomics.add(words, 0, 1);
        table.reads.leave();
        Atomics.add(words, 0, 1);
        table.reads.claim();
        unlockWord(w, RING_LOCK);
      }
      Atomics.store(words, 2, 1);
      table.leave();
      share.close();
      return slot;
    }
    case "joinShare": {
      const size = statSync(job.path).size;
      const share = FileShare.open(job.path, PoolShared.bytes(size));
      held.push(share);
      return share.first;
    }
    case "writeForever": {
      const p = BlockPool.open(job.path);
      held.push(p);
      const size = p.blockSize;
      // reply, then write until terminated, giving the event loop a turn
      // between writes (Deno ends a Worker only there)
      queueMicrotask(async () => {
        for (let i = 0;; i++) {
          try {
            await p.writeAsync(i % job.lbas, stamp(9, i % job.lbas, i, size));
          } catch (e) {
            if (!(e instanceof PmemError)) throw e;
          }
          await new Promise((r) => setTimeout(r, 0));
        }
      });
      return true;
    }
    case "checkForever": {
      const p = BlockPool.open(job.path);
      held.push(p);
      const never = new Int32Array(new SharedArrayBuffer(4));
      p.check({
        onProgress: () => {
          self_.postMessage({ ok: "inside" });
          // Bun ends a Worker here (Deno only at a turn of its event loop)
          for (;;) Atomics.wait(never, 0, 0);
        },
      });
      throw new Error("unreachable: the check was never blocked");
    }
    case "checkTwice": {
      using p = BlockPool.open(job.path);
      const words = new Int32Array(job.words);
      let inside = false;
      p.check({
        onProgress: () => {
          if (inside) return;
          inside = true;
          Atomics.store(words, 0, 1);
          while (Atomics.load(words, 1) === 0) Atomics.wait(words, 1, 0, 50);
        },
      });
      let read = -1;
      p.check({
        onProgress: () => {
          if (read < 0) read = p.read(job.lba)[0];
        },
      });
      return read;
    }
  }
}

self_.onmessage = async (e: MessageEvent<SharedEdgesJob>) => {
  try {
    self_.postMessage({ ok: await run(e.data) });
  } catch (err) {
    self_.postMessage({ error: String((err as Error)?.stack ?? err) });
  }
};
self_.postMessage("ready");
