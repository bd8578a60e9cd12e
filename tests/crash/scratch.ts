// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode ScratchImage}: one pool file reused for every crash image of
 * a trace. The file holds the durable image of the current crash point
 * (`ref`, kept in memory too); an image is made by storing its pending
 * words into the mapped file, checked, then undone word by word, so no
 * 16 MiB copy happens per image. A fingerprint of each image (a hash of
 * every word that differs from the trace's base) lets the sweep skip
 * images it has already checked. Also {@linkcode scratchDir}, where a
 * sweep keeps its files.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mapFile, type Mapping } from "../../pmem2/mod.ts";
import { recycle, spareCopy } from "./spare_buffers.ts";
import { u32View, Words } from "./words.ts";

/** The reusable pool file of a trace's crash images. */
export class ScratchImage implements Disposable {
  #path: string;
  #map: Mapping;
  #live: Uint8Array;
  #ref: Uint8Array;
  #shadow: Uint8Array;
  #live32: Uint32Array;
  #ref32: Uint32Array;
  #shadow32: Uint32Array;
  #base32: Uint32Array;
  #touched = new Words(64);
  /** The fingerprint of `ref`: two 32-bit sums of word hashes. */
  #fpA = 0;
  #fpB = 0;
  /**
   * Per word of the file, the number of the last fingerprint that met it
   * (made at the first fingerprint: its pages are only touched where
   * images store, the metadata and a few blocks).
   */
  #met: Uint32Array | undefined;
  #fingerprints = 0;

  /**
   * Write `base` to a new file at `path` and map it.
   *
   * @param path where the file goes (removed by close)
   * @param base the trace's starting image; kept by reference, unchanged
   */
  constructor(path: string, base: Uint8Array) {
    writeFileSync(path, base);
    this.#path = path;
    this.#map = mapFile(path);
    this.#live = this.#map.view();
    this.#ref = spareCopy(base);
    this.#shadow = spareCopy(base);
    this.#live32 = u32View(this.#live);
    this.#ref32 = u32View(this.#ref);
    this.#shadow32 = u32View(this.#shadow);
    this.#base32 = u32View(base);
  }

  /** The pool file. */
  get path(): string {
    return this.#path;
  }

  /** The mapped file (what a pool opened on it sees). */
  get live(): Uint8Array {
    return this.#live;
  }

  /**
   * A shadow of the file for a {@linkcode CrashTracer} on it: equal to
   * the file except for what the traced program changed.
   */
  get shadow(): Uint8Array {
    return this.#shadow;
  }

  /** Make words durable: the crash point moved past a fence. */
  commit(words: Words): void {
    const ref = this.#ref32;
    const base = this.#base32;
    for (let i = 0; i < words.length; i++) {
      const w = words.index(i) * 2;
      const lo = words.lo(i);
      const hi = words.hi(i);
      if (ref[w] !== base[w] || ref[w + 1] !== base[w + 1]) {
        this.#addHash(w, ref[w], ref[w + 1], -1);
      }
      if (lo !== base[w] || hi !== base[w + 1]) this.#addHash(w, lo, hi, 1);
      ref[w] = this.#live32[w] = this.#shadow32[w] = lo;
      ref[w + 1] = this.#live32[w + 1] = this.#shadow32[w + 1] = hi;
    }
  }

  #addHash(w: number, lo: number, hi: number, sign: number): void {
    const a = mix(mix(w, lo), hi);
    const b = mix(mix(w ^ 0x5bd1e995, hi), lo ^ 0x27d4eb2f);
    this.#fpA = (this.#fpA + sign * a) >>> 0;
    this.#fpB = (this.#fpB + sign * b) >>> 0;
  }

  /**
   * The fingerprint of the durable image with `units` stored over it, in
   * order: equal images have equal fingerprints.
   */
  fingerprint(units: readonly Words[]): string {
    // The image's words are the last value stored at each index. Walking
    // the units backwards meets that value first, and a stamp per word
    // skips the earlier ones: no map of every word per call (a sweep
    // fingerprints every candidate image, some with thousands of words).
    // The sums do not depend on the order the words are added in.
    const met = this.#met ??= new Uint32Array(this.#ref32.length >> 1);
    if (++this.#fingerprints === 0x1_0000_0000) {
      met.fill(0);
      this.#fingerprints = 1;
    }
    const stamp = this.#fingerprints;
    const [a0, b0] = [this.#fpA, this.#fpB];
    const ref = this.#ref32;
    const base = this.#base32;
    for (let u = units.length - 1; u >= 0; u--) {
      const words = units[u];
      for (let i = words.length - 1; i >= 0; i--) {
        const index = words.index(i);
        if (met[index] === stamp) continue;
        met[index] = stamp;
        const w = index * 2;
        const lo = words.lo(i);
        const hi = words.hi(i);
        if (ref[w] !== base[w] || ref[w + 1] !== base[w + 1]) {
          this.#addHash(w, ref[w], ref[w + 1], -1);
        }
        if (lo !== base[w] || hi !== base[w + 1]) this.#addHash(w, lo, hi, 1);
      }
    }
    const fp = `${this.#fpA.toString(36)}.${this.#fpB.toString(36)}`;
    this.#fpA = a0;
    this.#fpB = b0;
    return fp;
  }

  /** Store words into the file (and the shadow) for the image at hand. */
  apply(words: Words): void {
    const live = this.#live32;
    const shadow = this.#shadow32;
    for (let i = 0; i < words.length; i++) {
      const w = words.index(i) * 2;
      live[w] = shadow[w] = words.lo(i);
      live[w + 1] = shadow[w + 1] = words.hi(i);
    }
    this.touch(words);
  }

  /** Remember words a program changed in the file, to undo them. */
  touch(words: Words): void {
    for (let i = 0; i < words.length; i++) {
      this.#touched.push(words.index(i), 0, 0);
    }
  }

  /**
   * Take the file's value of `words` into the shadow (stores a traced
   * program never flushed), and remember them to undo.
   */
  settle(words: Words): void {
    for (let i = 0; i < words.length; i++) {
      const w = words.index(i) * 2;
      this.#shadow32[w] = this.#live32[w];
      this.#shadow32[w + 1] = this.#live32[w + 1];
    }
    this.touch(words);
  }

  /** Undo every word stored or touched since the last revert. */
  revert(): void {
    const t = this.#touched;
    for (let i = 0; i < t.length; i++) {
      const w = t.index(i) * 2;
      this.#live32[w] = this.#shadow32[w] = this.#ref32[w];
      this.#live32[w + 1] = this.#shadow32[w + 1] = this.#ref32[w + 1];
    }
    this.#touched = new Words(64);
  }

  /**
   * Compare the whole file and shadow with the durable image (a check of
   * the bookkeeping: after {@linkcode ScratchImage.revert} they must be
   * equal) and repair them.
   *
   * @returns whether they were equal
   */
  verify(): boolean {
    const same = Buffer.compare(this.#live, this.#ref) === 0 &&
      Buffer.compare(this.#shadow, this.#ref) === 0;
    if (!same) {
      this.#live.set(this.#ref);
      this.#shadow.set(this.#ref);
    }
    return same;
  }

  /** Unmap and remove the file. Idempotent. */
  close(): void {
    if (this.#map.closed) return;
    this.#map.close();
    rmSync(this.#path, { force: true });
    recycle(this.#ref, this.#shadow);
  }

  /** Same as {@linkcode ScratchImage.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** A 32-bit mix of two u32s (murmur3's finaliser over a combination). */
function mix(a: number, b: number): number {
  let h = Math.imul(a ^ (a >>> 16), 0x85ebca6b) ^ b;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** /dev/shm when it is writable (pool files there are page cache only). */
function fastTmp(): string {
  try {
    rmSync(mkdtempSync("/dev/shm/.probe-"), { recursive: true });
    return "/dev/shm";
  } catch {
    return tmpdir();
  }
}

/**
 * A directory for a sweep's files: `given` (made if missing), else a new
 * one named `prefix…` in /dev/shm when writable, else the temp dir. The
 * caller removes it.
 */
export function scratchDir(prefix: string, given?: string): string {
  if (given === undefined) return mkdtempSync(join(fastTmp(), prefix));
  mkdirSync(given, { recursive: true });
  return given;
}
