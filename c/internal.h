/* SPDX-License-Identifier: BSD-3-Clause */
/* internal.h -- helpers shared by the shim's translation units */
#ifndef AP_INTERNAL_H
#define AP_INTERNAL_H 1

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <libpmem2.h>
#include "asyncpmem.h"

#define AP_MAX_SAFE 9007199254740991.0 /* 2^53 - 1 */

struct ap_source {
	struct pmem2_source *src;
	int fd;       /* -1 for anonymous sources */
	int owns_fd;  /* close fd on delete */
	/*
	 * a regular file on a major-0 file system when the source was made
	 * (its device queries' refusals are kept, see source.c), and that
	 * file system's st_dev; recorded then, as libpmem2 records what it
	 * answers for: a caller's fd may be closed and its number reused
	 */
	int keeps_refusals;
	dev_t refusal_dev;
};

/* the durability log of a mapping: its latest write-backs, for tests */
#define AP_DURABLE_LOG 64
#define AP_NOTE_DURABLE 1 /* the range is durable now */
#define AP_NOTE_FLUSHED 2 /* written back; durable at the next drain */
#define AP_NOTE_DRAIN 3   /* a fence: every flushed range is durable */

struct ap_note {
	uint64_t off;
	uint64_t len;
	uint32_t kind;
};

struct ap_map {
	struct pmem2_map *map;
	char *addr;
	size_t size;
	size_t own_len; /* map NULL: mapped by map_file.c, unmapped by us */
	uint32_t granularity;
	uint32_t protection; /* PMEM2_PROT_* bits it was mapped with */
	pmem2_persist_fn persist;
	pmem2_flush_fn flush;
	pmem2_drain_fn drain;
	pmem2_memcpy_fn memcpy_fn;
	pmem2_memmove_fn memmove_fn;
	pmem2_memset_fn memset_fn;
	/*
	 * notes are made only once a test asked for them: the counter's
	 * locked add orders CLFLUSHOPT, so on cache-line mappings noting
	 * every persist would serialize flushes that otherwise overlap
	 */
	_Atomic uint32_t noting;
	_Atomic uint64_t notes; /* notes ever made; the log is a ring */
	struct ap_note log[AP_DURABLE_LOG];
};

/*
 * ap_map_note -- record that [addr, addr+len) of the map was made durable
 * (or flushed, or a drain): every path that persists a mapping's bytes
 * reports here, so tests can prove an operation persisted what it wrote
 * (the page cache reads the same whether or not it did)
 */
void ap_map_note(struct ap_map *m, const void *addr, size_t len,
	uint32_t kind);

/* ap_fail -- store a formatted message for the calling thread; return code */
int ap_fail(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ap_fail_pmem2 -- store libpmem2's current message with a prefix */
int ap_fail_pmem2(int code, const char *what);

/*
 * ap_pmem2_reset -- forget libpmem2's last message before a call into it:
 * libpmem2 fails some calls without setting one (pmem2_source_from_fd on
 * a character device that is no DAX device), and ap_fail_pmem2 would then
 * report the message of an earlier, unrelated failure
 */
void ap_pmem2_reset(void);

/* ap_open_file -- open(2) that never blocks (a FIFO); -1 with errno */
int ap_open_file(const char *path, int flags, mode_t mode);

/* ap_to_size -- convert a double argument to size_t; 0 or AP_E_INVALID_ARG */
int ap_to_size(double v, size_t *out, const char *name);

/* ap_path_arg -- check a path is NUL-terminated within path_len bytes */
int ap_path_arg(const char *path, double path_len);

/* ap_range -- check [off, off+len) lies within size, overflow-safe */
int ap_range(size_t off, size_t len, size_t size, const char *what);

/* ap_map_access -- 0 when the map allows prot (PMEM2_PROT_* bits), else
 * -EACCES with a message naming op: nothing writes a read-only mapping */
int ap_map_access(const struct ap_map *m, uint32_t prot, const char *op);

/* ap_map_sync -- make [addr, addr+len) of the map durable (msync on PAGE) */
int ap_map_sync(struct ap_map *m, const void *addr, size_t len);

/* ap_cache_writeback -- write back cache lines of a range, then fence */
void ap_cache_writeback(const void *addr, size_t len);

/* ap_crc32c_update -- CRC-32C of len bytes at buf, continuing from crc
 * (0 starts one), SSE4.2 where the CPU has it */
uint32_t ap_crc32c_update(uint32_t crc, const void *buf, size_t len);


/* ap_stream_copy -- forward copy with non-temporal stores, then SFENCE */
void ap_stream_copy(char *dst, const char *src, size_t n);

/* ap_stream_fill -- fill with non-temporal stores, then SFENCE */
void ap_stream_fill(char *dst, int c, size_t n);

/* ---- process-wide table of live mappings (regions.c) ---- */
struct ap_region;

/*
 * ap_region_get -- find the live mapping containing [addr, addr+len) and
 * take a reference; NULL when the range lies in no mapping. Returns
 * AP_E_RANGE through *rc if the range starts in a mapping but leaves it,
 * AP_E_CLOSED if that mapping is being deleted.
 */
struct ap_region *ap_region_get(const void *addr, size_t len, int *rc);
void ap_region_put(struct ap_region *r);
struct ap_map *ap_region_map(struct ap_region *r);
int ap_region_add(struct ap_map *m);

/*
 * ap_thread_adopt_dev -- the device d, just opened, is stopped when the
 * calling thread ends without deleting it (share.c): a Worker terminated
 * with copies queued no longer leaves them landing after its files'
 * locks are released, nor its engines running for good
 */
struct ap_dev;
void ap_thread_adopt_dev(struct ap_dev *d);
/* ap_thread_drop_dev -- d is being deleted: its thread need not stop it */
void ap_thread_drop_dev(struct ap_dev *d);
/*
 * ap_region_remove -- refuse new references, wait a bounded time for the
 * holders, then leave the unmap (ap_map_destroy) to the last of them;
 * returns 1 when it unmapped at once
 */
int ap_region_remove(struct ap_map *m);

/* ap_map_destroy -- unmap and free a mapping nothing references (pmem2.c) */
void ap_map_destroy(struct ap_map *m);

/*
 * ap_map_file -- map a regular file that takes no MAP_SYNC, or any
 * regular file privately (sharing 1), into m (map_file.c): 0 when mapped,
 * 1 to leave it to pmem2_map_new, or an error code
 */
int ap_map_file(struct ap_map *m, struct ap_source *src, uint32_t granularity,
	size_t off, size_t len, uint32_t sharing, uint32_t protection);
#endif
