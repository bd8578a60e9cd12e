// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The one symbol table of the native shim (`c/asyncpmem.h`), written in
 * Deno's shape and translated for Bun at load. Each parameter names its C
 * type. Sizes and offsets are `f64` (C `double`) so both runtimes stay on
 * their fast call paths with plain numbers.
 *
 * @module
 */

/** A native type as both backends understand it (Deno spelling). */
export type NativeType =
  | "i32"
  | "u32"
  | "u8"
  | "f64"
  | "pointer"
  | "buffer"
  | "function"
  | "void";

/** One C function. */
export interface SymbolDefinition {
  readonly parameters: readonly NativeType[];
  readonly result: NativeType;
  /** Deno only: run on a pool thread and return a Promise. */
  readonly nonblocking?: boolean;
  /** The C name when the key differs from it. */
  readonly name?: string;
}

/** Every exported shim function. */
export const SYMBOLS = {
  ap_abi_version: { parameters: [], result: "i32" },
  // int ap_errormsg(char *buf, uint32_t cap)
  ap_errormsg: { parameters: ["buffer", "u32"], result: "i32" },
  // int ap_err_to_errno(int code)
  ap_err_to_errno: { parameters: ["i32"], result: "i32" },

  // int ap_source_open(ap_source **out, const char *path, double path_len,
  //                    double size, uint32_t flags, uint32_t mode)
  ap_source_open: {
    parameters: ["buffer", "buffer", "f64", "f64", "u32", "u32"],
    result: "i32",
  },
  // int ap_source_from_fd(ap_source **out, int fd)
  ap_source_from_fd: { parameters: ["buffer", "i32"], result: "i32" },
  // int ap_source_from_anon(ap_source **out, double size)
  ap_source_from_anon: { parameters: ["buffer", "f64"], result: "i32" },
  // void ap_source_delete(ap_source **src)
  ap_source_delete: { parameters: ["buffer"], result: "void" },
  // int ap_source_size(ap_source *src, double *out)
  ap_source_size: { parameters: ["pointer", "buffer"], result: "i32" },
  // int ap_source_alignment(ap_source *src, double *out)
  ap_source_alignment: { parameters: ["pointer", "buffer"], result: "i32" },
  // int ap_source_fd(ap_source *src)
  ap_source_fd: { parameters: ["pointer"], result: "i32" },
  // int ap_source_device_usc(ap_source *src, double *out)
  ap_source_device_usc: { parameters: ["pointer", "buffer"], result: "i32" },
  // int ap_source_device_id(ap_source *src, char *buf, uint32_t cap,
  //                         uint32_t *len)
  ap_source_device_id: {
    parameters: ["pointer", "buffer", "u32", "buffer"],
    result: "i32",
  },
  // int ap_source_numa_node(ap_source *src, int32_t *out)
  ap_source_numa_node: { parameters: ["pointer", "buffer"], result: "i32" },
  // int ap_badblocks(ap_source *src, double *out, uint32_t max_pairs)
  ap_badblocks: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  // int ap_badblock_clear(ap_source *src, double offset, double length)
  ap_badblock_clear: { parameters: ["pointer", "f64", "f64"], result: "i32" },

  // int ap_map_new(ap_map **out, ap_source *src, uint32_t granularity,
  //                double offset, double length, uint32_t sharing,
  //                uint32_t protection)
  ap_map_new: {
    parameters: ["buffer", "pointer", "u32", "f64", "f64", "u32", "u32"],
    result: "i32",
  },
  // int ap_map_delete(ap_map **map)
  ap_map_delete: { parameters: ["buffer"], result: "i32" },
  // int ap_map_durable_log(ap_map *map, double *out, uint32_t cap)
  ap_map_durable_log: {
    parameters: ["pointer", "buffer", "u32"],
    result: "i32",
  },
  // void *ap_map_address(ap_map *map)
  ap_map_address: { parameters: ["pointer"], result: "pointer" },
  // double ap_map_size(ap_map *map)
  ap_map_size: { parameters: ["pointer"], result: "f64" },
  // uint32_t ap_map_granularity(ap_map *map)
  ap_map_granularity: { parameters: ["pointer"], result: "u32" },
  // int ap_map_persist(ap_map *map, double offset, double length)
  ap_map_persist: { parameters: ["pointer", "f64", "f64"], result: "i32" },
  // int ap_map_flush(ap_map *map, double offset, double length)
  ap_map_flush: { parameters: ["pointer", "f64", "f64"], result: "i32" },
  // int ap_map_drain(ap_map *map)
  ap_map_drain: { parameters: ["pointer"], result: "i32" },
  // int ap_map_deep_flush(ap_map *map, double offset, double length)
  ap_map_deep_flush: { parameters: ["pointer", "f64", "f64"], result: "i32" },
  // int ap_map_memcpy(ap_map *map, double dst_off, const void *src,
  //                   double src_len, double len, uint32_t flags)
  ap_map_memcpy: {
    parameters: ["pointer", "f64", "buffer", "f64", "f64", "u32"],
    result: "i32",
  },
  // int ap_map_memmove(ap_map *map, double dst_off, double src_off,
  //                    double len, uint32_t flags)
  ap_map_memmove: {
    parameters: ["pointer", "f64", "f64", "f64", "u32"],
    result: "i32",
  },
  // int ap_map_memset(ap_map *map, double dst_off, uint32_t c, double len,
  //                   uint32_t flags)
  ap_map_memset: {
    parameters: ["pointer", "f64", "u32", "f64", "u32"],
    result: "i32",
  },
  // int ap_read_range(const char *base, double size, double offset,
  //                   void *buf, double buf_len, double len)
  ap_read_range: {
    parameters: ["pointer", "f64", "f64", "buffer", "f64", "f64"],
    result: "i32",
  },
  // the same, with buf as a pointer (see Backend.pointerTo)
  ap_read_range_to: {
    name: "ap_read_range",
    parameters: ["pointer", "f64", "f64", "pointer", "f64", "f64"],
    result: "i32",
  },
  // int ap_cpu_flush(void *buf, double buf_len, double off, double len)
  ap_cpu_flush: { parameters: ["buffer", "f64", "f64", "f64"], result: "i32" },
  // int ap_cpu_copy(void *dst, double dst_len, double dst_off,
  //                 const void *src, double src_len, double src_off,
  //                 double len, uint32_t flags)
  ap_cpu_copy: {
    parameters: ["buffer", "f64", "f64", "buffer", "f64", "f64", "f64", "u32"],
    result: "i32",
  },
  // int ap_cpu_fill(void *dst, double dst_len, double off, double len,
  //                 uint32_t value, uint32_t flags)
  ap_cpu_fill: {
    parameters: ["buffer", "f64", "f64", "f64", "u32", "u32"],
    result: "i32",
  },
  // double ap_streamed_bytes(void)
  ap_streamed_bytes: { parameters: [], result: "f64" },
  // int ap_overlap(const void *dst, double dst_len, double dst_off,
  //                const void *src, double src_len, double src_off,
  //                double len)
  ap_overlap: {
    parameters: ["buffer", "f64", "f64", "buffer", "f64", "f64", "f64"],
    result: "i32",
  },

  // int ap_dev_new(ap_dev **out, uint32_t nthreads, uint32_t wq_size,
  //                uint32_t nrec, uint32_t nbatch, double max_xfer)
  ap_dev_new: {
    parameters: ["buffer", "u32", "u32", "u32", "u32", "f64"],
    result: "i32",
  },
  // int ap_dev_stop(ap_dev *dev)
  ap_dev_stop: { parameters: ["pointer"], result: "i32" },
  // int ap_dev_quiesce(ap_dev *dev, double timeout_ms)
  ap_dev_quiesce: { parameters: ["pointer", "f64"], result: "i32" },
  // void ap_dev_delete(ap_dev **dev)
  ap_dev_delete: { parameters: ["buffer"], result: "void" },
  // void *ap_dev_records(ap_dev *dev)
  ap_dev_records: { parameters: ["pointer"], result: "pointer" },
  // int ap_dev_info(ap_dev *dev, double *out, uint32_t cap)
  ap_dev_info: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  // int ap_dev_submit(ap_dev *dev, uint32_t rec, uint32_t opcode,
  //                   uint32_t flags, void *dst, double dst_len,
  //                   double dst_off, const void *src, double src_len,
  //                   double src_off, double len, uint32_t c)
  ap_dev_submit: {
    parameters: [
      "pointer",
      "u32",
      "u32",
      "u32",
      "buffer",
      "f64",
      "f64",
      "buffer",
      "f64",
      "f64",
      "f64",
      "u32",
    ],
    result: "i32",
  },
  // int ap_dev_batch_set(ap_dev *dev, uint32_t list, uint32_t idx,
  //                      uint32_t rec, uint32_t opcode, uint32_t flags,
  //                      void *dst, double dst_len, double dst_off,
  //                      const void *src, double src_len, double src_off,
  //                      double len, uint32_t c)
  ap_dev_batch_set: {
    parameters: [
      "pointer",
      "u32",
      "u32",
      "u32",
      "u32",
      "u32",
      "buffer",
      "f64",
      "f64",
      "buffer",
      "f64",
      "f64",
      "f64",
      "u32",
    ],
    result: "i32",
  },
  // int ap_dev_submit_raw(ap_dev *dev, uint32_t rec, const void *desc,
  //                       double desc_len)
  ap_dev_submit_raw: {
    parameters: ["pointer", "u32", "buffer", "f64"],
    result: "i32",
  },
  // int ap_dev_batch_submit(ap_dev *dev, uint32_t rec, uint32_t list,
  //                         uint32_t count)
  ap_dev_batch_submit: {
    parameters: ["pointer", "u32", "u32", "u32"],
    result: "i32",
  },
  // int ap_dev_release(ap_dev *dev, uint32_t rec)
  ap_dev_release: { parameters: ["pointer", "u32"], result: "i32" },
  // int ap_dev_wait(ap_dev *dev, uint32_t seq, uint32_t timeout_ms,
  //                 uint32_t min_advance)
  ap_dev_wait: { parameters: ["pointer", "u32", "u32", "u32"], result: "i32" },
  // the same, on Deno's blocking pool (Deno only; Bun uses the doorbell)
  ap_dev_wait_nb: {
    name: "ap_dev_wait",
    parameters: ["pointer", "u32", "u32", "u32"],
    result: "i32",
    nonblocking: true,
  },
  // int ap_dev_set_doorbell(ap_dev *dev, void (*fn)(void))
  ap_dev_set_doorbell: { parameters: ["pointer", "function"], result: "i32" },
  // int ap_dev_inject_fault(ap_dev *dev, double at_byte, uint32_t status,
  //                         uint32_t count)
  ap_dev_inject_fault: {
    parameters: ["pointer", "f64", "u32", "u32"],
    result: "i32",
  },
  // int ap_dsa_layout(uint32_t *out, uint32_t cap)
  ap_dsa_layout: { parameters: ["buffer", "u32"], result: "i32" },
  // double ap_crc32c(const void *buf, double buf_len, double off,
  //                  double len, uint32_t crc, uint32_t flags)
  ap_crc32c: {
    parameters: ["buffer", "f64", "f64", "f64", "u32", "u32"],
    result: "f64",
  },
  // int ap_log_append(ap_map *map, const void *data, double data_len,
  //                   double at, double next, double ts, uint32_t seed)
  ap_log_append: {
    parameters: ["pointer", "buffer", "f64", "f64", "f64", "f64", "u32"],
    result: "i32",
  },
  // int ap_log_headers(ap_map *map, const double *desc, double desc_len,
  //                    double count, uint32_t seed)
  ap_log_headers: {
    parameters: ["pointer", "buffer", "f64", "f64", "u32"],
    result: "i32",
  },
  // int ap_share_open(ap_share **out, const char *path, double path_len,
  //                   double size)
  ap_share_open: {
    parameters: ["buffer", "buffer", "f64", "f64"],
    result: "i32",
  },
  // void *ap_share_address(ap_share *s)
  ap_share_address: { parameters: ["pointer"], result: "pointer" },
  // int ap_share_close(ap_share *s)
  ap_share_close: { parameters: ["pointer"], result: "i32" },

  // ABI 4: DSA hardware

  // int ap_dev_touch(ap_dev *dev, uint32_t rec, void *dst, double dst_len,
  //                  const void *src, double src_len)
  ap_dev_touch: {
    parameters: ["pointer", "u32", "buffer", "f64", "buffer", "f64"],
    result: "i32",
  },
  // int ap_dsa_list(const char *lib, double lib_len, char *out,
  //                 uint32_t cap)
  ap_dsa_list: {
    parameters: ["buffer", "f64", "buffer", "u32"],
    result: "i32",
  },
  // int ap_dsa_open(ap_dev **out, const char *path, double path_len,
  //                 uint32_t shared, uint32_t wq_size, uint32_t max_batch,
  //                 double max_xfer, double gen_cap, uint32_t engines,
  //                 uint32_t nrec, uint32_t nbatch, uint32_t flags)
  ap_dsa_open: {
    parameters: [
      "buffer",
      "buffer",
      "f64",
      "u32",
      "u32",
      "u32",
      "f64",
      "f64",
      "u32",
      "u32",
      "u32",
      "u32",
    ],
    result: "i32",
  },
  // int ap_dsa_open_test(ap_dev **out, uint32_t kind, uint32_t wq_size,
  //                      uint32_t max_batch, double max_xfer,
  //                      uint32_t engines, uint32_t nrec, uint32_t nbatch,
  //                      uint32_t flags)
  ap_dsa_open_test: {
    parameters: [
      "buffer",
      "u32",
      "u32",
      "u32",
      "f64",
      "u32",
      "u32",
      "u32",
      "u32",
    ],
    result: "i32",
  },
  // int ap_dsa_inject_busy(ap_dev *dev, uint32_t count)
  ap_dsa_inject_busy: { parameters: ["pointer", "u32"], result: "i32" },
  // int ap_dsa_counters(ap_dev *dev, double *out, uint32_t cap)
  ap_dsa_counters: {
    parameters: ["pointer", "buffer", "u32"],
    result: "i32",
  },

  // ABI 6: block store reads

  // int ap_read_blocks(const char *base, double size, const double *offsets,
  //                    double offsets_len, double count, double len,
  //                    void *buf, double buf_len)
  ap_read_blocks: {
    parameters: [
      "pointer",
      "f64",
      "buffer",
      "f64",
      "f64",
      "f64",
      "buffer",
      "f64",
    ],
    result: "i32",
  },
  // int ap_prefetch_blocks(const char *base, double size,
  //                        const double *offsets, double offsets_len,
  //                        double count, double len)
  ap_prefetch_blocks: {
    parameters: ["pointer", "f64", "buffer", "f64", "f64", "f64"],
    result: "i32",
  },
  // int ap_read_indexed(const char *base, double size, const double *desc,
  //                     double desc_len, double index, void *buf,
  //                     double buf_len, double len, const int32_t *guard,
  //                     double guard_len)
  // (desc and guard are passed as pointers: each buffer argument costs a
  // Deno fast call about 15 ns)
  ap_read_indexed: {
    parameters: [
      "pointer",
      "f64",
      "pointer",
      "f64",
      "f64",
      "buffer",
      "f64",
      "f64",
      "pointer",
      "f64",
    ],
    result: "i32",
  },
  // the same, with buf as a pointer (see Backend.pointerTo)
  ap_read_indexed_to: {
    name: "ap_read_indexed",
    parameters: [
      "pointer",
      "f64",
      "pointer",
      "f64",
      "f64",
      "pointer",
      "f64",
      "f64",
      "pointer",
      "f64",
    ],
    result: "i32",
  },
} as const satisfies Record<string, SymbolDefinition>;

/**
 * An opaque native pointer (a Deno pointer object or a Bun number). Only
 * the library creates and consumes them.
 */
export type Ptr = { readonly __nativePointer: unique symbol } | number;

/** What a `buffer` parameter accepts. */
export type BufferArg = ArrayBufferView | ArrayBuffer | null;

type JsArg<T> = T extends "i32" | "u32" | "u8" | "f64" ? number
  : T extends "pointer" | "function" ? Ptr | null
  : T extends "buffer" ? BufferArg
  : never;
type JsResult<T> = T extends "void" ? void
  : T extends "pointer" ? Ptr | null
  : number;
type JsArgs<P extends readonly NativeType[]> = { [K in keyof P]: JsArg<P[K]> };
type JsFunction<D> = D extends {
  parameters: infer P extends readonly NativeType[];
  result: infer R;
  nonblocking: true;
} ? (...args: JsArgs<P>) => Promise<JsResult<R>>
  : D extends {
    parameters: infer P extends readonly NativeType[];
    result: infer R;
  } ? (...args: JsArgs<P>) => JsResult<R>
  : never;

/** The shim's functions as JavaScript sees them. */
export type NativeSymbols = {
  [K in keyof typeof SYMBOLS]: JsFunction<typeof SYMBOLS[K]>;
};
