/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * asyncpmem.h -- the native shim under the asyncpmem TypeScript library.
 *
 * Concepts:
 * - Every function returns 0 or a negative code: -errno for OS failures,
 *   PMEM2_E_* (<= -100000) for libpmem2 failures, AP_E_* for the shim's own.
 *   On failure the shim stores a message in a thread-local buffer before it
 *   returns; ap_errormsg() copies it out. libpmem2's own message is emptied
 *   before each call into libpmem2 and captured in the same call that
 *   failed, so it can never be stale.
 * - Sizes and offsets cross the boundary as doubles (exact up to 2^53), so the
 *   JavaScript runtimes stay on their fast FFI paths; every one is checked for
 *   being a non-negative integer before use.
 * - Every caller buffer arrives with its byte length, and every range is
 *   checked against that length here, after TypeScript checked it too.
 * - A software DSA device (ap_dev) executes 64-byte DSA descriptors on worker
 *   threads and writes 32-byte DSA completion records: all other fields first,
 *   the status byte last with release semantics. JavaScript polls the status
 *   bytes through a view of the record arena.
 * - A DSA work queue is an ap_dev too (ap_dsa_open): the same records,
 *   builder and functions; its descriptors go to the WQ's portal, and a
 *   watcher thread notices their completions. libaccel-config is loaded
 *   with dlopen (ap_dsa_list), never linked.
 * - Only the functions declared here (AP_API) are exported from the shared
 *   library; everything else is hidden.
 */
#ifndef ASYNCPMEM_H
#define ASYNCPMEM_H 1

#include <stdint.h>

#define AP_API __attribute__((visibility("default")))

#define AP_ABI_VERSION 10

/* shim error codes (disjoint from -errno and PMEM2_E_*); errors/mod.ts
 * ShimCode mirrors them and a test checks the two agree */
#define AP_E_INVALID_ARG (-200001)
#define AP_E_RANGE (-200002)
#define AP_E_CLOSED (-200003)
#define AP_E_BUSY (-200004)

/* granularity values, as enum pmem2_granularity */
#define AP_GRAN_BYTE 0
#define AP_GRAN_CACHE_LINE 1
#define AP_GRAN_PAGE 2

/* ap_source_open flags */
#define AP_OPEN_CREATE (1u << 0)   /* create the file when missing */
#define AP_OPEN_SPARSE (1u << 1)   /* extend with ftruncate, not fallocate */
#define AP_OPEN_READONLY (1u << 2) /* open O_RDONLY */
#define AP_OPEN_EXCLUSIVE (1u << 3) /* fail if the file exists */

struct ap_source;
struct ap_map;
struct ap_dev;

/* ap_abi_version -- the AP_ABI_VERSION this library was built with */
AP_API int ap_abi_version(void);

/*
 * ap_errormsg -- copy the calling thread's last error message into buf
 * (NUL-terminated, truncated to cap); returns the message length.
 */
AP_API int ap_errormsg(char *buf, uint32_t cap);

/* ap_err_to_errno -- map a shim or libpmem2 code to an errno value */
AP_API int ap_err_to_errno(int code);

/*
 * ap_source_open -- open (and, with size > 0, create or extend) a file as a
 * pmem2 source. path is UTF-8, NUL-terminated within its path_len bytes.
 * The fd stays open for the source's lifetime and is closed by
 * ap_source_delete. The open never blocks (a FIFO is refused, not waited
 * on), and a file this call created is removed again when it fails.
 * Returns 1 when this call created the file (0 when it was there).
 */
AP_API int ap_source_open(struct ap_source **out, const char *path,
	double path_len, double size, uint32_t flags, uint32_t mode);

/* ap_source_from_fd -- wrap a caller-owned fd (not closed by delete) */
AP_API int ap_source_from_fd(struct ap_source **out, int fd);

/* ap_source_from_anon -- an anonymous source of size bytes */
AP_API int ap_source_from_anon(struct ap_source **out, double size);

/* ap_source_delete -- close and free; *src becomes NULL; NULL is a no-op */
AP_API void ap_source_delete(struct ap_source **src);

/* ap_source_size / ap_source_alignment -- write the value to *out */
AP_API int ap_source_size(struct ap_source *src, double *out);
AP_API int ap_source_alignment(struct ap_source *src, double *out);

/* ap_source_fd -- the source's fd, or a negative code for anon sources */
AP_API int ap_source_fd(struct ap_source *src);

/* RAS: unsafe shutdown count, device id (cap bytes), NUMA node */
AP_API int ap_source_device_usc(struct ap_source *src, double *out);
AP_API int ap_source_device_id(struct ap_source *src, char *buf,
	uint32_t cap, uint32_t *len);
AP_API int ap_source_numa_node(struct ap_source *src, int32_t *out);
/* ap_badblocks -- fill out[2 * max_pairs] with (offset, length) pairs;
 * returns the number of bad blocks (which may exceed max_pairs) */
AP_API int ap_badblocks(struct ap_source *src, double *out,
	uint32_t max_pairs);
AP_API int ap_badblock_clear(struct ap_source *src, double offset,
	double length);

/*
 * ap_map_new -- map a source. granularity is the coarsest store granularity
 * the caller can cope with (AP_GRAN_*); sharing 0 = shared, 1 = private;
 * protection is PMEM2_PROT_* bits. length 0 maps to the end of the source.
 */
AP_API int ap_map_new(struct ap_map **out, struct ap_source *src,
	uint32_t granularity, double offset, double length, uint32_t sharing,
	uint32_t protection);

/*
 * ap_map_delete -- leave a mapping; *map becomes NULL; NULL is a no-op.
 * Every mapping is entered in a process-wide region table when created.
 * Descriptors submitted to any device whose buffers lie in a mapping hold a
 * reference on it. Delete refuses new references, waits a bounded time for
 * the held ones, and leaves the unmap to the last holder if some remain:
 * it never hangs, and no worker or device writes into unmapped memory.
 */
AP_API int ap_map_delete(struct ap_map **map);

/*
 * ap_map_durable_log -- test hook: the mapping's newest write-back notes,
 * at most cap, as (offset, length, kind) triples in out[3 * cap], newest
 * first (kind 1: durable, 2: flushed, 3: a drain); returns how many
 * notes were ever made. From the first call on, every path that persists
 * the mapping's bytes notes it, so a test can prove an operation persisted
 * what it wrote; before it, nothing is noted (noting costs a locked add
 * per persist).
 */
AP_API int ap_map_durable_log(struct ap_map *map, double *out, uint32_t cap);

/* accessors */
AP_API void *ap_map_address(struct ap_map *map);
AP_API double ap_map_size(struct ap_map *map);
AP_API uint32_t ap_map_granularity(struct ap_map *map);

/*
 * persistence on a range of the mapping; ranges are checked against the
 * mapping. On PAGE maps the shim calls msync itself (retrying EINTR) and
 * returns its error instead of letting libpmem2 abort the process.
 */
AP_API int ap_map_persist(struct ap_map *map, double offset, double length);
AP_API int ap_map_flush(struct ap_map *map, double offset, double length);
AP_API int ap_map_drain(struct ap_map *map);
AP_API int ap_map_deep_flush(struct ap_map *map, double offset,
	double length);

/*
 * ap_map_memcpy/memmove/memset -- libpmem2's copy functions with
 * PMEM2_F_MEM_* flags (durable unless the flags say otherwise). memcpy's
 * src is a caller buffer of src_len bytes, of which len are copied.
 */
AP_API int ap_map_memcpy(struct ap_map *map, double dst_off, const void *src,
	double src_len, double len, uint32_t flags);
AP_API int ap_map_memmove(struct ap_map *map, double dst_off, double src_off,
	double len, uint32_t flags);
AP_API int ap_map_memset(struct ap_map *map, double dst_off, uint32_t c,
	double len, uint32_t flags);

/*
 * ap_read_range -- copy len bytes at offset of [base, base + size) into the
 * first len bytes of buf (buf_len bytes)
 */
AP_API int ap_read_range(const char *base, double size, double offset,
	void *buf, double buf_len, double len);

/*
 * ap_read_blocks -- copy count blocks of len bytes each from [base, base +
 * size) into buf (buf_len bytes): block i from byte offset offsets[i] to
 * buf + i * len, or zeros where offsets[i] is negative. offsets is an
 * array of doubles, offsets_len bytes long. Every offset is checked before
 * anything is copied; returns 0, or AP_E_RANGE / AP_E_INVALID_ARG.
 */
AP_API int ap_read_blocks(const char *base, double size,
	const double *offsets, double offsets_len, double count, double len,
	void *buf, double buf_len);

/*
 * ap_prefetch_blocks -- start bringing count blocks of len bytes of [base,
 * base + size) (offsets as ap_read_blocks') into the CPU's caches and
 * return, for copies of them that follow: the first line of each and the
 * whole of the first two. Returns 0, or AP_E_RANGE / AP_E_INVALID_ARG for
 * a bad offset.
 */
AP_API int ap_prefetch_blocks(const char *base, double size,
	const double *offsets, double offsets_len, double count, double len);

/*
 * ap_read_indexed -- copy len bytes of the record that entry `index` of a
 * u32 table in [base, base + size) names, if the entry marks it present
 * and the int32 guard word (of guard, guard_len bytes) holds its expected
 * value before the lookup and after the copy. desc (desc_len bytes) holds
 * 9 doubles: the table's offset and entries, the mask of an entry's record
 * bits and the other bits of a present entry, the records' offset, count
 * and stride, the guard word's index and expected value. Returns 0 when
 * copied with the guard unchanged, 1 when the caller must take its general
 * path, AP_E_RANGE / AP_E_INVALID_ARG for bad arguments.
 */
AP_API int ap_read_indexed(const char *base, double size,
	const double *desc, double desc_len, double index, void *buf,
	double buf_len, double len, const int32_t *guard, double guard_len);

/*
 * ap_cpu_flush -- make [buf+off, buf+off+len) of a buf_len-byte buffer
 * durable: through its mapping when it lies in one (msync on PAGE maps),
 * else write back its cache lines (CLWB, else CLFLUSHOPT, else CLFLUSH),
 * then SFENCE.
 */
AP_API int ap_cpu_flush(void *buf, double buf_len, double off, double len);

/*
 * ap_cpu_copy -- memmove len bytes from src+src_off to dst+dst_off (each
 * range within its buffer's length); flags bit 0 asks for non-temporal
 * stores when the ranges do not overlap.
 */
AP_API int ap_cpu_copy(void *dst, double dst_len, double dst_off,
	const void *src, double src_len, double src_off, double len,
	uint32_t flags);

/*
 * ap_cpu_fill -- set len bytes at dst+off (within dst_len bytes) to value
 * (0..255); flags bit 0 asks for non-temporal stores.
 */
AP_API int ap_cpu_fill(void *dst, double dst_len, double off, double len,
	uint32_t value, uint32_t flags);

/*
 * ap_streamed_bytes -- bytes the shim wrote with non-temporal stores on the
 * CPU (copies and fills asked not to leave the destination in the cache),
 * process-wide; 0 where the CPU has no such stores. For tests.
 */
AP_API double ap_streamed_bytes(void);

/* ap_overlap -- 1 if dst lies above src and they overlap, -1 below, 0 not */
AP_API int ap_overlap(const void *dst, double dst_len, double dst_off,
	const void *src, double src_len, double src_off, double len);

/* ---- software DSA device ---- */

/* control words after the record arena (offsets from the arena's end) */
#define AP_CTRL_SEQ 0     /* u32: bumped after every published completion */
#define AP_CTRL_ARMED 4   /* u32: ring the doorbell when SEQ reaches it; 0 = off */
#define AP_CTRL_WAITERS 8 /* u32: threads blocked in ap_dev_wait */
#define AP_CTRL_WAKE_AT 12 /* u32: wake waiters when SEQ reaches this */
#define AP_CTRL_SIZE 64

#define AP_RECORD_STRIDE 64 /* records are 32-B DSA CRs on a 64-B stride */
#define AP_DEV_INFO_FIELDS 12

/*
 * ap_dev_new -- start a software DSA device with nthreads workers, a work
 * queue of wq_size descriptor slots (power of two), nrec completion
 * records and nbatch batch descriptor lists. max_xfer bounds one
 * descriptor's transfer size.
 */
AP_API int ap_dev_new(struct ap_dev **out, uint32_t nthreads,
	uint32_t wq_size, uint32_t nrec, uint32_t nbatch, double max_xfer);

/*
 * ap_dev_stop -- stop accepting work, let every accepted descriptor finish
 * and join the workers; the record arena stays readable. Idempotent.
 */
AP_API int ap_dev_stop(struct ap_dev *dev);

/*
 * ap_dev_quiesce -- wait until every descriptor the device (the software
 * device's engines, a DSA WQ) accepted has run, at most timeout_ms; the
 * device keeps running. -ETIMEDOUT when work is still running then. For a
 * runtime about to free the memory the descriptors write.
 */
AP_API int ap_dev_quiesce(struct ap_dev *dev, double timeout_ms);

/* ap_dev_delete -- ap_dev_stop, then free everything; NULL is a no-op */
AP_API void ap_dev_delete(struct ap_dev **dev);

/* ap_dev_records -- the record arena: nrec * 64 bytes, then the control */
AP_API void *ap_dev_records(struct ap_dev *dev);

/*
 * ap_dev_info -- fill out[0..11] (cap >= AP_DEV_INFO_FIELDS): gen_cap,
 * max_xfer, max_batch (0: no BATCH), wq_size, engines, nrec, nbatch,
 * op_cap word 0, the address of the batch list arena (for raw
 * descriptors in tests), where descriptors go (0 the software device's
 * ring, 1 MOVDIR64B to a dedicated WQ, 2 ENQCMD to a shared WQ, 3
 * write(2)), whether it is a test portal, whether a portal is mapped
 */
AP_API int ap_dev_info(struct ap_dev *dev, double *out, uint32_t cap);

/*
 * ap_dev_submit -- build one DSA descriptor (MEMMOVE, MEMFILL, CFLUSH, NOOP
 * or DRAIN) completing into record rec and enqueue it. dst and src are
 * caller buffers of dst_len and src_len bytes that stay alive until the
 * record's status is non-zero; the operation covers len bytes from dst_off
 * (and src_off). For MEMFILL the pattern is the byte c repeated. Flags the
 * device's GENCAP lacks (CC, DRDBK) are dropped. Returns 0, or 1 when the
 * caller must persist the destination itself after completion (a DSA WQ
 * writing into a page-granularity mapping, which only msync makes
 * durable, or lacking DRDBK). Returns -EAGAIN when the queue is full (or a
 * dedicated WQ has no credit left, or a shared WQ kept answering retry
 * while descriptors of ours are in flight), -EBUSY when a shared WQ kept
 * answering retry with none of ours in flight: retry later; nothing is
 * held.
 */
AP_API int ap_dev_submit(struct ap_dev *dev, uint32_t rec, uint32_t opcode,
	uint32_t flags, void *dst, double dst_len, double dst_off,
	const void *src, double src_len, double src_off, double len,
	uint32_t c);

/*
 * ap_dev_batch_set -- write member idx of batch list list into the
 * device's descriptor-list arena (arguments as ap_dev_submit; FENCE is
 * honoured); the member holds its mapping references until its batch
 * runs it, abandons it, or ap_dev_release drops them.
 * ap_dev_batch_submit -- submit a BATCH descriptor over members
 * [0, count) of list, completing into record rec.
 */
AP_API int ap_dev_batch_set(struct ap_dev *dev, uint32_t list, uint32_t idx,
	uint32_t rec, uint32_t opcode, uint32_t flags, void *dst,
	double dst_len, double dst_off, const void *src, double src_len,
	double src_off, double len, uint32_t c);
AP_API int ap_dev_batch_submit(struct ap_dev *dev, uint32_t rec,
	uint32_t list, uint32_t count);

/* ap_dev_release -- drop the references of a member never submitted */
AP_API int ap_dev_release(struct ap_dev *dev, uint32_t rec);

/*
 * ap_dev_touch -- record rec completed with a page fault (0x03): touch the
 * faulting page when it lies inside dst or src (the operation's buffers,
 * of dst_len and src_len bytes; never anything else), so a resubmission
 * of the remainder does not fault again -- a write fault with an atomic
 * add of 0, a read fault with a read. Returns 1 when touched, 0 when the
 * address lies in neither buffer (finish on the CPU instead).
 */
AP_API int ap_dev_touch(struct ap_dev *dev, uint32_t rec, void *dst,
	double dst_len, const void *src, double src_len);

/*
 * ap_dev_submit_raw -- enqueue a caller-built 64-byte descriptor (desc_len
 * must be 64) completing into record rec, as a device portal accepts one:
 * the engines decode and validate it like hardware. Addresses a memory
 * operation touches must lie in live mappings, and a BATCH's list in the
 * device's list arena; anything else is refused here. A DSA WQ also
 * refuses one without CRAV and RCR: it notices completions only by
 * their records.
 */
AP_API int ap_dev_submit_raw(struct ap_dev *dev, uint32_t rec,
	const void *desc, double desc_len);

/*
 * ap_dev_wait -- block until the completion sequence has advanced from seq
 * by min_advance (at least 1), the device stops, or timeout_ms passes;
 * workers wake waiters only when a target is reached, so a thread waiting
 * for many completions is not woken for each. Returns 0 when woken with
 * the target reached (or the device stopped), -ETIMEDOUT when the deadline
 * ended the wait -- even if the target was reached by then, so a wake-up
 * that never came is seen as one.
 */
AP_API int ap_dev_wait(struct ap_dev *dev, uint32_t seq, uint32_t timeout_ms,
	uint32_t min_advance);

/*
 * ap_dev_set_doorbell -- fn is called (from a worker) after a completion
 * that brings the sequence to the ARMED control word (when non-zero); the
 * worker clears the word first.
 */
AP_API int ap_dev_set_doorbell(struct ap_dev *dev, void (*fn)(void));

/*
 * ap_dev_inject_fault -- test hook: the next count MEMMOVE/MEMFILL/CFLUSH
 * descriptors longer than at_byte stop after at_byte bytes with status
 * (e.g. 0x03 | 0x80 for a write fault). count 0 disarms. On a test
 * portal the faults are injected into its software WQ.
 */
AP_API int ap_dev_inject_fault(struct ap_dev *dev, double at_byte,
	uint32_t status, uint32_t count);

/* ap_dsa_layout -- offsets and sizes from <linux/idxd.h>, for tests */
AP_API int ap_dsa_layout(uint32_t *out, uint32_t cap);

/* ---- checksum.c: CRC-32C of the log store ---- */

/* ap_crc32c flags: use the byte-wise table even where SSE4.2 exists */
#define AP_CRC_SOFTWARE (1u << 0)
/* ... or the three CRC32 streams even where AVX-512 folding exists */
#define AP_CRC_STREAMS (1u << 1)

/*
 * ap_crc32c -- CRC-32C (Castagnoli) of buf[off, off+len) of a buf_len-byte
 * buffer, continuing from crc (0 for a new checksum; the result of an
 * earlier call chains). Returns the CRC (0 .. 2^32-1) or a negative code
 * for a bad argument or a range that leaves the buffer.
 */
AP_API double ap_crc32c(const void *buf, double buf_len, double off,
	double len, uint32_t crc, uint32_t flags);

/* ---- log_append.c: the log store's lone synchronous append ---- */

/*
 * ap_log_append -- one entry of the log store, stored and persisted in
 * one call: data (data_len bytes, at most 2^31 - 1) at at + 16 of the
 * mapping, the entry header at at (the CRC-32C, continuing from seed, of
 * the header's last 12 bytes and the data; the length word; the
 * timestamp ts as two u32 halves, low first), 16 zero bytes at next (at
 * or after the data's end), then one persist of [at, next + 16). at is
 * 8-aligned. Returns 0, or AP_E_RANGE / AP_E_INVALID_ARG for bad
 * arguments (nothing stored), or the persist's error.
 */
AP_API int ap_log_append(struct ap_map *map, const void *data,
	double data_len, double at, double next, double ts, uint32_t seed);

/*
 * ap_log_headers -- the headers of count entries of the log store whose
 * data is in place (a commit of many in one call): desc (desc_len bytes)
 * holds count triples of doubles, an 8-aligned offset, the length word
 * and the timestamp; each header is what ap_log_append stores, its CRC
 * covering the header's last 12 bytes and, unless the word's top bit
 * marks padding, the word's bytes of data after the header. Nothing is
 * persisted. Returns 0, or AP_E_RANGE / AP_E_INVALID_ARG (nothing
 * stored).
 */
AP_API int ap_log_headers(struct ap_map *map, const double *desc,
	double desc_len, double count, uint32_t seed);

/* ---- share.c: process-wide shares of a file (Workers) ---- */
struct ap_share;

/*
 * ap_share_open -- join this process's share of the file at path, or
 * create it: the first open flocks the file exclusively (-EAGAIN when
 * another process holds a lock on it) and allocates size zeroed bytes;
 * later opens of the same file (device and inode) in this process get the
 * same share and block, and must ask for the same size (-EAGAIN when
 * the share exists with another size: the file is open in this process
 * as something else). path is NUL-terminated within its path_len bytes.
 * Returns 1 when this open created the share, 0 when it joined one.
 */
AP_API int ap_share_open(struct ap_share **out, const char *path,
	double path_len, double size);

/* ap_share_address -- the shared block (64-byte aligned) */
AP_API void *ap_share_address(struct ap_share *s);

/*
 * ap_share_close -- leave a share; the last close unlocks the file and
 * frees the block. Returns the number of opens left.
 */
AP_API int ap_share_close(struct ap_share *s);

/* ---- DSA hardware ---- */

/* ap_dsa_open flags */
#define AP_DSA_WRITE_ONLY (1u << 0) /* submit with write(2), never map */

/*
 * ap_dsa_list -- enumerate DSA devices and work queues with
 * libaccel-config, loaded with dlopen from lib (NUL-terminated within
 * lib_len; "" for libaccel-config.so.1). Writes a JSON document to out
 * (NUL-terminated) when it fits in cap bytes, and returns its length (a
 * length >= cap asks for a larger buffer). A missing library or driver,
 * and zero devices, are answers in the document, not errors.
 */
AP_API int ap_dsa_list(const char *lib, double lib_len, char *out,
	uint32_t cap);

/*
 * ap_dsa_open -- open the user WQ at path (its character device): map its
 * portal and submit with MOVDIR64B (dedicated, shared == 0) or ENQCMD
 * (shared), or -- when the portal cannot be mapped (CAP_SYS_RAWIO is
 * needed since the CVE-2024-21823 fix), the CPU lacks the instruction, or
 * flags ask for it -- with write(2) after a probe, and then without
 * BATCH. wq_size, max_batch, max_xfer and gen_cap are the WQ's and its
 * device's (from ap_dsa_list); engines is reported by ap_dev_info. The
 * result is an ap_dev for every ap_dev_* function. An open that fails
 * returns -errno with the reason (no permission, a dedicated WQ held by
 * another process, no such WQ).
 */
AP_API int ap_dsa_open(struct ap_dev **out, const char *path,
	double path_len, uint32_t shared, uint32_t wq_size, uint32_t max_batch,
	double max_xfer, double gen_cap, uint32_t engines, uint32_t nrec,
	uint32_t nbatch, uint32_t flags);

/* ap_dsa_open_test flags */
#define AP_DSA_TEST_NO_OVERLAP (1u << 0) /* GENCAP bit 1 clear */
/* an engine stalls 20 ms after claiming a descriptor at every other lap
 * of the WQ's first slot, as one preempted there (tests of the portal) */
#define AP_DSA_TEST_SLOW_CLAIM (1u << 1)
/* kind 3 (write) on a shared WQ: no credits, and write(2) fails with
 * EAGAIN while the WQ holds wq_size undispatched descriptors, as the
 * kernel's write(2) on a shared WQ once its ENQCMDS retries ran out */
#define AP_DSA_TEST_SHARED_WRITE (1u << 2)

/*
 * ap_dsa_open_test -- a DSA WQ of kind 1 (dedicated: MOVDIR64B into a
 * watched page), 2 (shared: an emulated ENQCMD into it) or 3 (write(2) to
 * a socket), served by a software device with engines threads: the test
 * portal that runs the hardware path without hardware. wq_size is a power
 * of two in 2..32; max_batch 0 (no BATCH) or 2..32. With
 * AP_DSA_TEST_NO_OVERLAP the device reports no overlapping-copy support
 * and fails an overlapping MEMMOVE with status 0x16, as such a device.
 */
AP_API int ap_dsa_open_test(struct ap_dev **out, uint32_t kind,
	uint32_t wq_size, uint32_t max_batch, double max_xfer, uint32_t engines,
	uint32_t nrec, uint32_t nbatch, uint32_t flags);

/* ap_dsa_inject_busy -- a shared test portal answers retry count times */
AP_API int ap_dsa_inject_busy(struct ap_dev *dev, uint32_t count);

/*
 * ap_dsa_counters -- a WQ's counters into out[0..7]: refusals for want of
 * credit, retry answers, submissions given up as busy, descriptors a test
 * portal dropped, descriptors sent, completions the watcher noticed,
 * completions a submitter noticed first, watcher sleeps
 */
AP_API int ap_dsa_counters(struct ap_dev *dev, double *out, uint32_t cap);

#endif
