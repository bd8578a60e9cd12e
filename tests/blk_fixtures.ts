// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Pool files the block-store tests share.
 *
 * @module
 */
import { BlockPool, poolGeometry } from "../blk/mod.ts";
import {
  BaseMover,
  type CheckedOp,
  CpuMover,
  type Future,
  VdmFlags,
} from "../mod.ts";
import { patch, tempPath } from "./_harness.ts";

const MiB = 1 << 20;

/**
 * A pool file without a BTT, as libpmemblk creates them: ours, with its
 * info blocks wiped (the map of a fresh file is all zero).
 */
export function unformatted(): string {
  const path = tempPath();
  BlockPool.create(path, { blockSize: 512, poolSize: 32 * MiB }).close();
  const g = poolGeometry(32 * MiB, 512).arenas[0];
  patch(path, 8192, new Uint8Array(4096));
  patch(path, 8192 + g.infoOff, new Uint8Array(4096));
  return path;
}

/** A CPU mover that counts the operations it is given. */
export class CountingMover extends BaseMover {
  ops = 0;
  batches = 0;
  #inner = new CpuMover();
  constructor() {
    super("CountingMover", "counting", VdmFlags.DURABLE);
  }
  get closed(): boolean {
    return this.#inner.closed;
  }
  protected run(op: CheckedOp): Future<void> {
    this.ops++;
    return this.#inner.batch([{ op: "memcpy", dst: op.dst, src: op.src! }]);
  }
  protected runBatch(ops: CheckedOp[]): Future<void> {
    this.batches++;
    return this.#inner.batch(
      ops.map((op) => ({ op: "memcpy", dst: op.dst, src: op.src! })),
    );
  }
  close(): void {
    this.#inner.close();
  }
}
