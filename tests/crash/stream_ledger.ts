// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode StreamLedger}: what a log-stream workload issued and what was
 * acknowledged, from labels (a tracer's marks, or a child's stdout), and
 * the judge of what a stream reopened after a crash shows.
 *
 * Labels of the workload:
 *
 * - `I entry OP TS R LEN` an append (of any kind) took timestamp TS in
 *   region R (written `slot/generation`); `A entry OP` it was
 *   acknowledged as persisted; `C entry OP` acknowledged as committed;
 * - `X entry OP` a reservation was cancelled (its timestamp is padding);
 * - `P entry OP R LEN` a synchronous append started (its timestamp comes
 *   with its `I` label, after the call);
 * - `I truncate R UPTO` / `A truncate R UPTO`;
 * - `I free R` / `A free R`; `I alloc SIZE` / `A alloc R SIZE`;
 * - and the stream's own marks: `commit TS` (headers up to TS are about to
 *   be written) and `persisted TS` (entries up to TS are durable).
 *
 * A stream after a crash must show, in every region that exists, entries
 * that were appended there, whole; their timestamps at most the highest
 * commit mark (visible ⊆ committed); every entry up to the highest
 * persisted mark (persisted ⊆ visible) and every entry below the highest
 * visible timestamp (no gap), except those truncated or in freed regions.
 *
 * @module
 */

/** An appended entry. */
interface EntryRecord {
  op: number;
  ts: number;
  /** `slot/generation`. */
  region: string;
  length: number;
  /** A cancelled reservation: padding, never visible. */
  cancelled: boolean;
}

/** A region's life as the ledger knows it. */
interface RegionRecord {
  /** Allocated and acknowledged; `free` issued; `free` acknowledged. */
  state: "live" | "freeing" | "freed";
  /** Truncations: everything at or below `upto` goes (if `acked`). */
  truncations: { upto: number; acked: boolean }[];
}

/** What a reopened stream showed: per region, its entries. */
export interface Visible {
  /**
   * Region (`slot/generation`) → size and entries (timestamp, and the
   * payload's op, or a sentence saying what is wrong with the data).
   */
  regions: Map<
    string,
    { size: number; entries: { ts: number; op: number | string }[] }
  >;
}

/** The ledger of one trace (or of a child's run). */
export class StreamLedger {
  #entries = new Map<number, EntryRecord>(); // by op
  #byTs = new Map<number, EntryRecord>();
  /** Synchronous appends started, timestamp not yet known (by op). */
  #started = new Map<number, { region: string; length: number }>();
  #regions = new Map<string, RegionRecord>();
  /** Allocations issued and not acknowledged (their sizes). */
  #allocating: number[] = [];
  /** The highest `commit` mark. */
  committed = 0;
  /** The highest `persisted` mark (or acknowledged persisted entry). */
  persisted = 0;
  /** The stream's creation was acknowledged. */
  created = true;

  /** A copy that goes on on its own (a kill's, while the trace walks on). */
  copy(): StreamLedger {
    const c = new StreamLedger();
    for (const [op, e] of this.#entries) {
      const copy = { ...e };
      c.#entries.set(op, copy);
      c.#byTs.set(copy.ts, copy);
    }
    for (const [op, s] of this.#started) c.#started.set(op, { ...s });
    for (const [k, r] of this.#regions) {
      c.#regions.set(k, {
        state: r.state,
        truncations: r.truncations.map((t) => ({ ...t })),
      });
    }
    c.#allocating = [...this.#allocating];
    c.committed = this.committed;
    c.persisted = this.persisted;
    c.created = this.created;
    return c;
  }

  /** Record a label; false when it is not one of the ledger's. */
  record(label: string): boolean {
    const w = label.split(" ");
    const n = (i: number) => Number(w[i]);
    switch (w[0]) {
      case "commit":
        this.committed = Math.max(this.committed, n(1));
        return true;
      case "persisted":
        this.persisted = Math.max(this.persisted, n(1));
        return true;
      case "I":
      case "A":
      case "C":
      case "X":
      case "P":
        break;
      default:
        return false;
    }
    const [phase, what] = w;
    if (what === "entry") {
      if (phase === "P") {
        this.#started.set(n(2), { region: w[3], length: n(4) });
      } else if (phase === "I") {
        this.#started.delete(n(2));
        const e: EntryRecord = {
          op: n(2),
          ts: n(3),
          region: w[4],
          length: n(5),
          cancelled: false,
        };
        this.#entries.set(e.op, e);
        this.#byTs.set(e.ts, e);
      } else {
        const e = this.#entries.get(n(2));
        if (e === undefined) return false;
        if (phase === "A") this.persisted = Math.max(this.persisted, e.ts);
        if (phase === "C") this.committed = Math.max(this.committed, e.ts);
        if (phase === "X") e.cancelled = true;
      }
      return true;
    }
    if (what === "truncate") {
      const r = this.#regions.get(w[2]);
      if (r === undefined) return false;
      if (phase === "I") r.truncations.push({ upto: n(3), acked: false });
      else {
        for (const t of r.truncations) if (t.upto === n(3)) t.acked = true;
      }
      return true;
    }
    if (what === "free") {
      const r = this.#regions.get(w[2]);
      if (r === undefined) return false;
      r.state = phase === "I" ? "freeing" : "freed";
      return true;
    }
    if (what === "alloc") {
      if (phase === "I") this.#allocating.push(n(2));
      else {
        this.#allocating.splice(this.#allocating.indexOf(n(3)), 1);
        this.#regions.set(w[2], { state: "live", truncations: [] });
      }
      return true;
    }
    return false;
  }

  /** A region (`slot/generation`) allocated before tracing. */
  addRegion(key: string): void {
    this.#regions.set(key, { state: "live", truncations: [] });
  }

  /** The op of the entry with timestamp `ts`. */
  opOf(ts: number): number | undefined {
    return this.#byTs.get(ts)?.op;
  }

  /** The length and region of an op's entry. */
  entry(op: number): { length: number; region: string; ts: number } | null {
    const e = this.#entries.get(op);
    if (e !== undefined) return e;
    const s = this.#started.get(op);
    return s === undefined ? null : { ...s, ts: -1 };
  }

  /**
   * After a reopen was judged sound, take what it showed as the new
   * acknowledged state: entries in flight that show are durable now, the
   * others are lost for good; truncations, frees and allocations in
   * flight happened or not, as the stream shows. (For kill rounds, whose
   * ledger goes on over several crashes.)
   */
  resolve(v: Visible): void {
    const shown = new Set<number>();
    for (const [k, r] of v.regions) {
      for (const e of r.entries) {
        shown.add(e.ts);
        // a synchronous append the crash interrupted, shown: an entry
        // now, whose timestamp the stream gave (judged sound already)
        const started = typeof e.op === "number"
          ? this.#started.get(e.op)
          : undefined;
        if (started !== undefined && !this.#entries.has(e.op as number)) {
          const entry: EntryRecord = {
            op: e.op as number,
            ts: e.ts,
            region: k,
            length: started.length,
            cancelled: false,
          };
          this.#entries.set(entry.op, entry);
          this.#byTs.set(entry.ts, entry);
        }
      }
    }
    for (const e of this.#entries.values()) {
      if (shown.has(e.ts)) this.persisted = Math.max(this.persisted, e.ts);
      else if (e.ts > this.persisted) e.cancelled = true;
    }
    this.#started.clear();
    for (const [k, r] of this.#regions) {
      if (r.state === "freeing") r.state = v.regions.has(k) ? "live" : "freed";
      const entries = v.regions.get(k)?.entries ?? [];
      r.truncations = r.truncations.filter((t) => t.acked);
      const first = entries[0]?.ts ?? Infinity;
      // everything below the first entry shown is gone for good
      r.truncations.push({ upto: first - 1, acked: true });
    }
    this.#allocating = [];
    for (const [k, r] of v.regions) {
      if (!this.#regions.has(k)) {
        this.#regions.set(k, { state: "live", truncations: [] });
      }
      void r;
    }
  }

  /**
   * What is wrong with what a reopened stream showed.
   *
   * @returns one sentence per violated rule
   */
  judge(v: Visible): string[] {
    const problems: string[] = [];
    // regions
    for (const [k, r] of this.#regions) {
      const shown = v.regions.has(k);
      if (r.state === "live" && !shown) {
        problems.push(
          `region ${k} is gone, but its allocation was acknowledged`,
        );
      }
      if (r.state === "freed" && shown) {
        problems.push(`region ${k} is back, but its free was acknowledged`);
      }
    }
    const pending = [...this.#allocating];
    for (const [k, shownRegion] of v.regions) {
      if (this.#regions.has(k)) continue;
      const i = pending.indexOf(shownRegion.size);
      if (i < 0) {
        problems.push(
          `region ${k} (${shownRegion.size} bytes) was never allocated`,
        );
        continue;
      }
      pending.splice(i, 1);
      if (shownRegion.entries.length > 0) {
        problems.push(`region ${k}, allocated as the crash came, is not empty`);
      }
    }
    // entries: whole, in their region, at most committed
    let maxTs = 0;
    const visible = new Set<number>();
    for (const [k, { entries }] of v.regions) {
      for (const { ts, op } of entries) {
        if (typeof op === "string") {
          problems.push(`region ${k}: the entry of timestamp ${ts} is ${op}`);
          continue;
        }
        const started = this.#started.get(op);
        if (started !== undefined && !this.#entries.has(op)) {
          // a synchronous append the crash interrupted
          if (started.region !== k) {
            problems.push(
              `op ${op} shows in region ${k}, appended to ${started.region}`,
            );
          }
          if (ts > this.committed) {
            problems.push(
              `timestamp ${ts} shows, above the last commit (${this.committed})`,
            );
          }
          visible.add(ts);
          maxTs = Math.max(maxTs, ts);
          continue;
        }
        const e = this.#entries.get(op);
        if (e === undefined || e.ts !== ts) {
          problems.push(
            `region ${k}: timestamp ${ts} holds op ${op}'s data, which was appended as timestamp ${e?.ts}`,
          );
          continue;
        }
        if (e.region !== k) {
          problems.push(
            `timestamp ${ts} shows in region ${k}, appended to ${e.region}`,
          );
        }
        if (e.cancelled) {
          problems.push(`timestamp ${ts} was cancelled but shows`);
        }
        if (ts > this.committed) {
          problems.push(
            `timestamp ${ts} shows, above the last commit (${this.committed})`,
          );
        }
        visible.add(ts);
        maxTs = Math.max(maxTs, ts);
      }
    }
    // every entry up to max(persisted, highest visible) shows, unless
    // truncated away or in a region that is gone
    const needed = Math.max(this.persisted, maxTs);
    const truncPending = new Map<
      string,
      { upto: number; some: boolean; all: boolean }[]
    >();
    for (const e of this.#entries.values()) {
      if (e.cancelled || e.ts > needed) continue;
      const r = this.#regions.get(e.region);
      if (r === undefined || !v.regions.has(e.region)) continue;
      // removed by an acknowledged truncation: no pending one decides it
      const acked = r.truncations.some((t) => t.acked && e.ts <= t.upto);
      let pendingCover = false;
      for (const t of r.truncations) {
        if (acked || t.acked || e.ts > t.upto) continue;
        pendingCover = true;
        const list = truncPending.get(e.region) ?? [];
        let rec = list.find((x) => x.upto === t.upto);
        if (rec === undefined) {
          rec = { upto: t.upto, some: false, all: true };
          list.push(rec);
          truncPending.set(e.region, list);
        }
        if (visible.has(e.ts)) rec.some = true;
        else rec.all = false;
      }
      const gone = acked || pendingCover;
      if (gone || visible.has(e.ts)) continue;
      const why = e.ts <= this.persisted
        ? `it was persisted (persisted up to ${this.persisted})`
        : `timestamp ${maxTs} shows (a gap)`;
      problems.push(
        `timestamp ${e.ts} (region ${e.region}) is missing, but ${why}`,
      );
    }
    for (const [k, list] of truncPending) {
      for (const t of list) {
        if (t.some && !t.all) {
          problems.push(
            `region ${k}: a truncation up to ${t.upto} in flight took only part of its entries`,
          );
        }
      }
    }
    return problems;
  }
}
