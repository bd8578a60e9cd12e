// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The jobs of the block-store test Worker (`blk_worker.ts`) and the block
 * contents its writers write: every block carries its writer, block and
 * sequence number and a pattern derived from them ({@linkcode stamp}), so
 * a reader can tell a whole block from a torn one and name the write that
 * put it there.
 *
 * @module
 */

/** A job for the Worker. */
export type Job =
  | {
    kind: "write";
    path: string;
    /** The writer's number (1, 2, …), in every block it writes. */
    id: number;
    /** Updates to make. */
    count: number;
    /** Blocks 0 .. lbas - 1 are written. */
    lbas: number;
    seed: number;
    mover: "cpu" | "threads";
  }
  | {
    kind: "read";
    path: string;
    /** Reads to make (each of one block, or a readMany of several). */
    count: number;
    lbas: number;
    seed: number;
  };

/** What a writer did: per block, the sequence numbers it wrote, in order. */
export interface Written {
  id: number;
  /** `writes[lba]`: sequence numbers written to the block, in order. */
  writes: number[][];
  /** Reads it made between its writes (all checked whole). */
  reads: number;
}

/** What a reader saw. */
export interface Seen {
  /** Blocks read. */
  reads: number;
  /** Blocks read as never written (zeros). */
  zeros: number;
  /** Torn or misplaced blocks: a description of each (none expected). */
  bad: string[];
}

/** The block that writer `id` writes to `lba` as its `seq`-th update. */
export function stamp(
  id: number,
  lba: number,
  seq: number,
  size: number,
): Uint8Array {
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, id, true);
  dv.setUint32(4, lba, true);
  dv.setUint32(8, seq, true);
  let x = (id * 0x9e3779b1 + lba * 0x85ebca6b + seq * 0xc2b2ae35) | 1;
  for (let i = 12; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    dv.setUint32(i, x, true);
  }
  return b;
}

/**
 * What a block read holds: `[id, seq]` of the write that put it there,
 * `null` for zeros, or a string saying what is wrong with it.
 */
export function decode(
  block: Uint8Array,
  lba: number,
): [number, number] | null | string {
  const dv = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const id = dv.getUint32(0, true);
  if (id === 0 && block.every((v) => v === 0)) return null;
  const at = dv.getUint32(4, true);
  const seq = dv.getUint32(8, true);
  if (at !== lba) return `block ${lba} holds block ${at}'s data`;
  const want = stamp(id, lba, seq, block.byteLength);
  for (let i = 0; i < block.byteLength; i++) {
    if (block[i] !== want[i]) {
      return `block ${lba} is torn: writer ${id} seq ${seq}, byte ${i} differs`;
    }
  }
  return [id, seq];
}
