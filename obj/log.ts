// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode RedoLog}: the pool's redo log, one ring of records. A record
 * holds the entries of one group of transactions (one, or every
 * transaction staged before the group was sealed) and is the group's
 * commit point: it is valid when its CRC matches and its position field
 * is the position it lies at, so a torn record, or one left from an
 * earlier lap of the ring, ends the log.
 *
 * Entries are staged straight into the ring (their payload is copied
 * once, from the caller's bytes); sealing writes the header and CRC and
 * persists the record with one fence (two, once a lap, for a record
 * that moved to the next lap: its WRAP record first). Entries are
 * applied to their homes after that, and the homes are persisted only at
 * a checkpoint, which then moves the replay start (the one word stored
 * outside the log) past every record: so a transaction costs one
 * persist, and replaying any suffix of records that starts at the
 * checkpoint, in order, rebuilds the state (every entry is idempotent
 * and every change of the heap and the state page is logged).
 *
 * A record as it is staged, with its transactions, is a `Group`
 * (`obj/log_group.ts`); an entry's parse when a record is read back and
 * its application to its home are in `obj/log_entry.ts`.
 *
 * @module
 */
import { OutOfSpaceError } from "../errors/mod.ts";
import { byteLengthOf } from "../ffi/validate.ts";
import {
  CHECKPOINT_AT,
  ENTRY_HEADER,
  type Geometry,
  LOG_OFFSET,
  OP_COPY,
  OP_ZERO,
  RECORD,
  RECORD_HEADER,
  WRAP,
} from "./layout.ts";
import { applyOne, type Entry, parseRecord, payloadOf } from "./log_entry.ts";
import { COMMITTED, Group, NO_KEY } from "./log_group.ts";
import type { ObjMedia } from "./media.ts";

/** The pool's redo log ring. */
export class RedoLog {
  #media: ObjMedia;
  #g: Geometry;
  readonly size: number;
  /** Largest record. */
  readonly maxRecord: number;
  /** Logical position of the next record. */
  head: number;
  /** Logical position replay starts at (the persisted checkpoint). */
  tail: number;

  /**
   * @param media the pool's media
   * @param g its geometry
   * @param tail the checkpoint position; `head` starts there too
   */
  constructor(media: ObjMedia, g: Geometry, tail: number) {
    this.#media = media;
    this.#g = g;
    this.size = g.logSize;
    // a checkpoint once a quarter is used, records of 3/8 at most: a
    // record that moves to the next lap wastes less than its own size, so
    // the ring never reaches the checkpoint (1/4 + 2 × 3/8)
    this.maxRecord = Math.floor(g.logSize * 3 / 8 / 8) * 8;
    this.tail = tail;
    this.head = tail;
  }

  /** The file offset of logical position `pos`. */
  phys(pos: number): number {
    return LOG_OFFSET + pos % this.size;
  }

  /** `pos`, moved to the next lap when a header would not fit before the end. */
  normalize(pos: number): number {
    const left = this.size - pos % this.size;
    return left < RECORD_HEADER ? pos + left : pos;
  }

  /** Whether a checkpoint is due before a new record starts. */
  get full(): boolean {
    return this.head - this.tail > this.size / 4;
  }

  /** A new group at the head (the caller checkpointed if `full`). */
  begin(): Group {
    return new Group(this.normalize(this.head));
  }

  /**
   * Room for `bytes` (a multiple of 8) at the group's end: its logical
   * position. A record that would cross the ring's end moves, with what
   * it holds, to the start of the next lap (file offsets of its payloads
   * change; record-relative ones do not).
   *
   * @throws {OutOfSpaceError} when the record would outgrow the log
   */
  reserve(g: Group, bytes: number, op: string): number {
    const size = g.end - g.start;
    if (size + bytes > this.maxRecord) {
      throw new OutOfSpaceError(
        op,
        `the transaction needs more than ${this.maxRecord} bytes of redo log (3/8 of the log, less what transactions staged with it took; create the pool with a larger logSize)`,
      );
    }
    if (size + bytes > this.size - g.start % this.size) this.#relocate(g);
    const at = g.end;
    g.end += bytes;
    return at;
  }

  /** Move a group to the start of the next lap. */
  #relocate(g: Group): void {
    const to = g.start + (this.size - g.start % this.size);
    const from = this.phys(g.start);
    const size = g.end - g.start;
    // the record lies past 5/8 of the ring (it crosses the end and holds
    // 3/8 at most): the two places do not overlap
    this.#media.move(LOG_OFFSET, from, size);
    const shift = LOG_OFFSET - from;
    if (g.items !== null) {
      for (const e of g.items) if (e !== null) e.at += shift;
    }
    if (g.wrapAt < 0) g.wrapAt = g.start;
    g.end = to + size;
    g.start = to;
  }

  /** The file offset of the byte `rel` bytes into a group's record. */
  at(g: Group, rel: number): number {
    return LOG_OFFSET + (g.start + rel) % this.size;
  }

  /**
   * Stage an entry header for `payload` bytes after it; the file offset
   * of its payload.
   */
  #entry(
    g: Group,
    op: number,
    length: number,
    target: number,
    payload: number,
    key: number,
    name: string,
  ): number {
    const p = LOG_OFFSET +
      this.reserve(g, ENTRY_HEADER + payload, name) % this.size;
    const media = this.#media;
    media.setU32(p, op);
    media.setU32(p + 4, length);
    media.setU32(p + 8, target >>> 0);
    media.setU32(p + 12, (target - (target >>> 0)) / 2 ** 32);
    g.count++;
    g.keys.push(key);
    return p + ENTRY_HEADER;
  }

  /**
   * Stage a COPY of `length` bytes of `src` from `from` to `target`
   * (`key`: the object it changes); the file offset of its payload.
   */
  copy(
    g: Group,
    target: number,
    src: Uint8Array,
    from: number,
    length: number,
    op: string,
    key: number,
  ): number {
    const at = this.#entry(
      g,
      OP_COPY,
      length,
      target,
      (length + 7) & ~7,
      key,
      op,
    );
    // a subarray costs more than a short copy on some runtimes; the
    // engine's length (see `byteLengthOf`), not a `length` property
    if (from === 0 && length === byteLengthOf(src)) this.#media.set(src, at);
    else this.#media.set(src.subarray(from, from + length), at);
    return at;
  }

  /**
   * Stage a COPY of `length` bytes to `target` whose payload the caller
   * fills (every byte of it) before the group is sealed; the file offset
   * of its payload.
   */
  open(
    g: Group,
    target: number,
    length: number,
    op: string,
    key: number,
  ): number {
    return this.#entry(g, OP_COPY, length, target, (length + 7) & ~7, key, op);
  }

  /** Stage a COPY of one u64, given as its two u32 halves. */
  word(
    g: Group,
    target: number,
    lo: number,
    hi: number,
    op: string,
    key: number,
  ): void {
    const at = this.#entry(g, OP_COPY, 8, target, 8, key, op);
    this.#media.setU32(at, lo);
    this.#media.setU32(at + 4, hi);
  }

  /** Stage a ZERO of `length` bytes at `target`. */
  zero(g: Group, target: number, length: number, op: string, key: number) {
    this.#entry(g, OP_ZERO, length, target, 0, key, op);
  }

  /** Stage an OR64 or AND64 of the mask `lo`/`hi` into the word at `target`. */
  mask(
    g: Group,
    kind: number,
    target: number,
    lo: number,
    hi: number,
    op: string,
  ): void {
    const at = this.#entry(g, kind, 8, target, 8, NO_KEY, op);
    this.#media.setU32(at, lo);
    this.#media.setU32(at + 4, hi);
  }

  /** Forget the entries staged after a mark (an aborted transaction). */
  truncate(g: Group, size: number, count: number): void {
    g.end = g.start + size;
    g.count = count;
    g.keys.length = count;
  }

  /**
   * The entries of a group's record from the entry `first` (which starts
   * `rel` bytes into the record) on, as a list.
   */
  entries(g: Group, first = 0, rel = RECORD_HEADER): Entry[] {
    const media = this.#media;
    const out: Entry[] = [];
    let q = this.at(g, rel);
    for (let i = first; i < g.count; i++) {
      const op = media.getU32(q);
      const length = media.getU32(q + 4);
      const target = media.read64(q + 8);
      out.push({ op, target, length, at: q + ENTRY_HEADER });
      q += ENTRY_HEADER + payloadOf(op, length);
    }
    return out;
  }

  /** Apply a group's entries to their homes on this thread, in order. */
  applyAll(g: Group): void {
    const media = this.#media;
    let q = this.phys(g.start) + RECORD_HEADER;
    for (let i = 0, n = g.count; i < n; i++) {
      const op = media.getU32(q);
      const length = media.getU32(q + 4);
      const target = media.read64(q + 8);
      const at = q + ENTRY_HEADER;
      applyOne(media, op, target, length, at);
      q = at + payloadOf(op, length);
    }
  }

  /**
   * Seal a group: write its header and CRC (and, first, a WRAP record
   * where it started before it moved), then persist the record: the
   * commit point of every transaction in it.
   */
  seal(g: Group): void {
    const media = this.#media;
    const p = this.phys(g.start);
    const size = g.end - g.start;
    if (g.wrapAt >= 0) {
      // the WRAP durable before the record is written: persisted with one
      // fence, a crash could keep the record and lose the WRAP, and the
      // log then ended before a valid record, which the next records to
      // reach the lap's start (a clean checkpoint there) found and
      // replayed, a transaction never acknowledged and seen lost
      const w = this.phys(g.wrapAt);
      this.#header(w, WRAP, g.wrapAt, RECORD_HEADER, 0);
      media.persist(w, RECORD_HEADER);
    }
    this.#header(p, RECORD, g.start, size, g.count);
    media.persist(p, size);
    this.head = g.end;
    g.state = COMMITTED;
  }

  #header(p: number, kind: number, pos: number, size: number, n: number) {
    const media = this.#media;
    media.setU32(p + 4, kind);
    media.setU32(p + 8, pos % 2 ** 32);
    media.setU32(p + 12, Math.floor(pos / 2 ** 32));
    media.setU32(p + 16, size);
    media.setU32(p + 20, n);
    media.setU32(p + 24, 0);
    media.setU32(p + 28, 0);
    media.setU32(p, media.crc(p + 4, size - 4, this.#g.seed));
  }

  /**
   * Persist the homes stored to, then move the checkpoint to the head:
   * every record before it is applied and durable. The caller makes sure
   * every sealed group is applied.
   */
  checkpoint(): void {
    const media = this.#media;
    media.persistDirty();
    if (this.tail === this.head) return;
    media.write64(CHECKPOINT_AT, this.head);
    media.persist(CHECKPOINT_AT, 8);
    this.tail = this.head;
  }

  /**
   * Walk the records from the checkpoint (recovery): `visit` gets each
   * valid record's entries, in order; the head ends past the last one.
   *
   * @returns the records visited
   * @throws {CorruptPoolError} for a record whose CRC matches but whose
   *   entries do not parse, or leave the areas the log may change
   */
  replay(visit: (entries: Entry[]) => void): number {
    const media = this.#media;
    let pos = this.tail;
    let records = 0;
    for (;;) {
      pos = this.normalize(pos);
      const p = this.phys(pos);
      const kind = media.getU32(p + 4);
      const size = media.getU32(p + 16);
      const at = media.read64(p + 8);
      if (
        at !== pos || (kind !== RECORD && kind !== WRAP) ||
        size < RECORD_HEADER || size % 8 !== 0 ||
        size > this.size - pos % this.size
      ) break;
      if (media.getU32(p) !== media.crc(p + 4, size - 4, this.#g.seed)) break;
      if (kind === WRAP) {
        pos += this.size - pos % this.size;
        continue;
      }
      visit(parseRecord(media, this.#g, p, pos, size, media.getU32(p + 20)));
      records++;
      pos += size;
    }
    this.head = pos;
    return records;
  }

  /**
   * After {@linkcode RedoLog.replay}, before its entries are applied: make
   * the records from the checkpoint to the head durable (one fence; none
   * when there are none). After a crash of the process alone they may be
   * stores never persisted (a record sealed, killed before its fence):
   * applied and then lost to a power failure, they would leave their
   * transactions half done in the homes, with nothing to finish them.
   */
  persistReplayed(): void {
    const n = Math.min(this.head - this.tail, this.size);
    if (n <= 0) return;
    const start = this.tail % this.size;
    const first = Math.min(n, this.size - start);
    const ranges = [{ offset: LOG_OFFSET + start, length: first }];
    if (n > first) ranges.push({ offset: LOG_OFFSET, length: n - first });
    this.#media.persistRanges(ranges);
  }

  /**
   * After {@linkcode RedoLog.replay}: make the torn record where the log
   * ends (a header that names its position, its CRC not matching) durably
   * no record. Left, the next record there, its header's line lost to a
   * crash, read as that header over its own bytes: a transaction run again
   * with more writes, its record's start the same bytes, was replayed in
   * part (the torn record's entries, a prefix of its own).
   *
   * @returns whether it wrote to the pool
   */
  dropTorn(): boolean {
    const media = this.#media;
    const p = this.phys(this.head);
    if (media.read64(p + 8) !== this.head) return false;
    media.write64(p + 8, 0);
    media.persist(p + 8, 8);
    return true;
  }
}
