/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * asyncpmem.h -- the native shim under the asyncpmem TypeScript library.
 *
 * Concepts:
 * - Every function returns 0 or a negative code: -errno for OS failures,
 *   PMEM2_E_* (<= -100000) for libpmem2 failures, AP_E_* for the shim's own.
 *   On failure the shim stores a message in a thread-local buffer before it
 *   returns; ap_errormsg() copies it out. libpmem2's own message is captured
 *   in the same call that failed, so it can never be stale.
 * - Sizes and offsets cross the boundary as doubles (exact up to 2^53), so the
 *   JavaScript runtimes stay on their fast FFI paths; every one is checked for
 *   being a non-negative integer before use.
 * - A software DSA device (ap_dev) executes 64-byte DSA descriptors on worker
 *   threads and writes 32-byte DSA completion records: all other fields first,
 *   the status byte last with release semantics. JavaScript polls the status
 *   bytes through a view of the record arena.
 */
#ifndef ASYNCPMEM_H
#define ASYNCPMEM_H 1

#include <stdint.h>

#define AP_ABI_VERSION 2

/* shim error codes (disjoint from -errno and PMEM2_E_*) */
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
int ap_abi_version(void);

/*
 * ap_errormsg -- copy the calling thread's last error message into buf
 * (NUL-terminated, truncated to cap); returns the message length.
 */
int ap_errormsg(char *buf, uint32_t cap);

/* ap_err_to_errno -- map a shim or libpmem2 code to an errno value */
int ap_err_to_errno(int code);

/*
 * ap_source_open -- open (and, with size > 0, create or extend) a file as a
 * pmem2 source. path is a NUL-terminated UTF-8 string. The fd stays open
 * for the source's lifetime and is closed by ap_source_delete.
 */
int ap_source_open(struct ap_source **out, const char *path, double size,
	uint32_t flags, uint32_t mode);

/* ap_source_from_fd -- wrap a caller-owned fd (not closed by delete) */
int ap_source_from_fd(struct ap_source **out, int fd);

/* ap_source_from_anon -- an anonymous source of size bytes */
int ap_source_from_anon(struct ap_source **out, double size);

/* ap_source_delete -- close and free; *src becomes NULL; NULL is a no-op */
void ap_source_delete(struct ap_source **src);

/* ap_source_size / ap_source_alignment -- write the value to *out */
int ap_source_size(struct ap_source *src, double *out);
int ap_source_alignment(struct ap_source *src, double *out);

/* ap_source_fd -- the source's fd, or a negative code for anon sources */
int ap_source_fd(struct ap_source *src);

/* RAS: unsafe shutdown count, device id, NUMA node, bad blocks */
int ap_source_device_usc(struct ap_source *src, double *out);
int ap_source_device_id(struct ap_source *src, char *buf, uint32_t cap,
	uint32_t *len);
int ap_source_numa_node(struct ap_source *src, int32_t *out);
/* ap_badblocks -- fill out[] with (offset, length) pairs; returns the count */
int ap_badblocks(struct ap_source *src, double *out, uint32_t max_pairs);
int ap_badblock_clear(struct ap_source *src, double offset, double length);

/*
 * ap_map_new -- map a source. granularity is the coarsest store granularity
 * the caller can cope with (AP_GRAN_*); sharing 0 = shared, 1 = private;
 * protection is PMEM2_PROT_* bits. length 0 maps to the end of the source.
 */
int ap_map_new(struct ap_map **out, struct ap_source *src,
	uint32_t granularity, double offset, double length, uint32_t sharing,
	uint32_t protection);

/*
 * ap_map_delete -- unmap and free; *map becomes NULL; NULL is a no-op.
 * Every mapping is entered in a process-wide region table when created.
 * Descriptors submitted to any device whose buffers lie in a mapping hold a
 * reference on it; delete refuses new ones and waits until those finish, so
 * no worker or device ever writes into unmapped memory.
 */
int ap_map_delete(struct ap_map **map);

/* accessors */
void *ap_map_address(struct ap_map *map);
double ap_map_size(struct ap_map *map);
uint32_t ap_map_granularity(struct ap_map *map);

/*
 * persistence on a range of the mapping; ranges are checked against the
 * mapping. On PAGE maps the shim calls msync itself (retrying EINTR) and
 * returns its error instead of letting libpmem2 abort the process.
 */
int ap_map_persist(struct ap_map *map, double offset, double length);
int ap_map_flush(struct ap_map *map, double offset, double length);
int ap_map_drain(struct ap_map *map);
int ap_map_deep_flush(struct ap_map *map, double offset, double length);

/*
 * ap_map_memcpy/memmove/memset -- libpmem2's copy functions with
 * PMEM2_F_MEM_* flags (durable unless the flags say otherwise).
 * src points at src_len readable bytes owned by the caller.
 */
int ap_map_memcpy(struct ap_map *map, double dst_off, const void *src,
	double len, uint32_t flags);
int ap_map_memmove(struct ap_map *map, double dst_off, double src_off,
	double len, uint32_t flags);
int ap_map_memset(struct ap_map *map, double dst_off, uint32_t c,
	double len, uint32_t flags);

/* ap_read_range -- copy len bytes at offset of [base, base + size) into buf */
int ap_read_range(const char *base, double size, double offset, void *buf,
	double len);

/*
 * ap_cpu_flush -- make [buf+off, buf+off+len) durable: through its mapping
 * when it lies in one (msync on PAGE maps), else write back its cache lines
 * (CLWB, else CLFLUSHOPT, else CLFLUSH), then SFENCE.
 */
int ap_cpu_flush(void *buf, double off, double len);

/*
 * ap_cpu_copy -- memmove len bytes between caller buffers; flags bit 0
 * asks for non-temporal stores when the ranges do not overlap.
 */
int ap_cpu_copy(void *dst, double dst_off, const void *src, double src_off,
	double len, uint32_t flags);

/* ap_overlap -- 1 if dst lies above src and they overlap, -1 below, 0 not */
int ap_overlap(const void *dst, double dst_off, const void *src,
	double src_off, double len);

/*
 * ap_file_lock -- open path read-only and take an exclusive, non-blocking
 * flock (libpmemblk's pool lock); returns the fd, or -EAGAIN when another
 * open file (in any process) holds it. ap_file_unlock closes the fd.
 */
int ap_file_lock(const char *path);
int ap_file_unlock(int fd);

/* ---- software DSA device ---- */

/* control words after the record arena (offsets from ap_dev_control) */
#define AP_CTRL_SEQ 0     /* u32: bumped after every published completion */
#define AP_CTRL_ARMED 4   /* u32: ring the doorbell when SEQ reaches it; 0 = off */
#define AP_CTRL_WAITERS 8 /* u32: threads blocked in ap_dev_wait */
#define AP_CTRL_WAKE_AT 12 /* u32: wake waiters when SEQ reaches this */
#define AP_CTRL_SIZE 64

#define AP_RECORD_STRIDE 64 /* records are 32-B DSA CRs on a 64-B stride */

/*
 * ap_dev_new -- start a software DSA device with nthreads workers, a work
 * queue of wq_size descriptor slots (power of two) and nrec completion
 * records. max_xfer bounds one descriptor's transfer size.
 */
int ap_dev_new(struct ap_dev **out, uint32_t nthreads, uint32_t wq_size,
	uint32_t nrec, uint32_t nbatch, double max_xfer);

/*
 * ap_dev_stop -- stop accepting work, let every accepted descriptor finish
 * and join the workers; the record arena stays readable. Idempotent.
 */
int ap_dev_stop(struct ap_dev *dev);

/* ap_dev_delete -- ap_dev_stop, then free everything; NULL is a no-op */
void ap_dev_delete(struct ap_dev **dev);

/* ap_dev_records -- the record arena: nrec * 64 bytes, then the control */
void *ap_dev_records(struct ap_dev *dev);

/*
 * ap_dev_info -- fill out[0..7]: gen_cap, max_xfer, max_batch, wq_size,
 * nthreads, nrec, nbatch, op_cap word 0
 */
int ap_dev_info(struct ap_dev *dev, double *out);

/*
 * ap_dev_submit -- build one DSA descriptor (opcode MEMMOVE, MEMFILL, CFLUSH
 * or NOOP) completing into record rec and enqueue it. dst/src are the bases
 * of caller-owned buffers that stay alive until the record's status is
 * non-zero; offsets are added to them. For MEMFILL the pattern is the byte
 * c repeated. Returns -EAGAIN when the queue is full (retry later).
 */
int ap_dev_submit(struct ap_dev *dev, uint32_t rec, uint32_t opcode,
	uint32_t flags, void *dst, double dst_off, const void *src,
	double src_off, double len, uint32_t c);

/*
 * ap_dev_batch_set -- write member idx of batch list list into the
 * device's descriptor-list arena (same arguments as ap_dev_submit);
 * ap_dev_batch_submit -- submit a BATCH descriptor over members
 * [0, count) of list, completing into record rec.
 */
int ap_dev_batch_set(struct ap_dev *dev, uint32_t list, uint32_t idx,
	uint32_t rec, uint32_t opcode, uint32_t flags, void *dst,
	double dst_off, const void *src, double src_off, double len,
	uint32_t c);
int ap_dev_batch_submit(struct ap_dev *dev, uint32_t rec, uint32_t list,
	uint32_t count);

/*
 * ap_dev_release -- drop the mapping references a batch member written by
 * ap_dev_batch_set took, when its batch will not be submitted
 */
int ap_dev_release(struct ap_dev *dev, uint32_t rec);

/*
 * ap_dev_wait -- block until the completion sequence has advanced from seq
 * by min_advance (at least 1), the device closes, or timeout_ms passes;
 * workers wake waiters only when a target is reached, so a thread waiting
 * for many completions is not woken for each. Returns 0, or -ETIMEDOUT
 * when the sequence did not move at all.
 */
int ap_dev_wait(struct ap_dev *dev, uint32_t seq, uint32_t timeout_ms,
	uint32_t min_advance);

/*
 * ap_dev_set_doorbell -- fn is called (from a worker) after a completion
 * that brings the sequence to the ARMED control word (when non-zero); the
 * worker clears the word first.
 */
int ap_dev_set_doorbell(struct ap_dev *dev, void (*fn)(void));

/*
 * ap_dev_inject_fault -- test hook: the next count MEMMOVE/MEMFILL/CFLUSH
 * descriptors longer than at_byte stop after at_byte bytes with status
 * (e.g. 0x03 | 0x80 for a write fault). count 0 disarms.
 */
int ap_dev_inject_fault(struct ap_dev *dev, double at_byte, uint32_t status,
	uint32_t count);

/* ap_dsa_layout -- offsets and sizes from <linux/idxd.h>, for tests */
int ap_dsa_layout(uint32_t *out, uint32_t cap);

/* ---- checksum.c: CRC-32C of the log store ---- */

/* ap_crc32c flags: use the byte-wise table even where SSE4.2 exists */
#define AP_CRC_SOFTWARE (1u << 0)

/*
 * ap_crc32c -- CRC-32C (Castagnoli) of buf[off, off+len), continuing from
 * crc (0 for a new checksum; the result of an earlier call chains). The
 * caller checked the range. Returns the CRC (0 .. 2^32-1) or a negative
 * code for a bad argument.
 */
double ap_crc32c(const void *buf, double off, double len, uint32_t crc,
	uint32_t flags);

/* ---- share.c: process-wide shares of a file (Workers) ---- */
struct ap_share;

/*
 * ap_share_open -- join this process's share of the file at path, or
 * create it: the first open flocks the file exclusively (-EAGAIN when
 * another process holds a lock on it) and allocates size zeroed bytes;
 * later opens of the same file (device and inode) in this process get the
 * same share and block, and must ask for the same size. Returns 1 when
 * this open created the share, 0 when it joined one.
 */
int ap_share_open(struct ap_share **out, const char *path, double size);

/* ap_share_address -- the shared block (64-byte aligned) */
void *ap_share_address(struct ap_share *s);

/*
 * ap_share_close -- leave a share; the last close unlocks the file and
 * frees the block. Returns the number of opens left.
 */
int ap_share_close(struct ap_share *s);

#endif
