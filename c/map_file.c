/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * map_file.c -- map a regular file that offers no MAP_SYNC without the
 * address-space hole pmem2_map_new leaves.
 *
 * pmem2_map_new reserves an aligned range, then maps the file over it
 * with MAP_FIXED | MAP_SHARED_VALIDATE | MAP_SYNC and, when that fails,
 * again with MAP_FIXED | MAP_SHARED. On a file system that accepts the
 * MAP_SYNC flag but not for this file (ext4 or xfs without DAX), the
 * kernel unmaps the reservation before its mmap handler refuses: until
 * the second mmap, the range is free, and another thread's mmap (a
 * Worker's mapping, the JavaScript engine's heap) can be given it -- the
 * second MAP_FIXED then maps the file over that thread's memory. Worker
 * threads mapping pools on ext4 crashed the process within a few hundred
 * maps (reproduced in C with pthreads and libpmem2 1.12.1 alone).
 *
 * So for a shared map of a regular file, the shim first asks the kernel,
 * with a mapping at an address of its own choosing (nothing to unmap on
 * failure), whether the file takes MAP_SYNC. If it does, pmem2_map_new's
 * first mmap succeeds and leaves no hole. If not, the file is mapped here
 * -- into a reservation of the same alignment, with plain MAP_SHARED,
 * whose handler does not refuse after the unmap -- at page granularity
 * (or the one PMEM2_FORCE_GRANULARITY names, as pmem2_map_new honours
 * it). Such a map has no pmem2_map of its own (m->map is NULL): libpmem2's
 * persist and copy functions take any address, so they come from one
 * template map per granularity, made once over a page of this process's
 * memory and kept. (A pmem2_map made and deleted per map with
 * pmem2_map_from_existing crashed the runtime at a thread's exit, in a
 * destructor of libpmem2's per-map buffers.) Anything unusual (an offset
 * or length libpmem2 would refuse, a device) still goes to
 * pmem2_map_new, which refuses it before mapping.
 *
 * A private map of a regular file is made here too, whether the file
 * takes MAP_SYNC or not: pmem2_map_new maps it writable without
 * MAP_NORESERVE, which the kernel charges in full against the memory it
 * will commit, so a pool larger than memory and swap could not be opened
 * read-only (the CLI's info and check). Here it is MAP_NORESERVE: only
 * the pages written (recovery's, on the copy) take memory. Its
 * granularity is byte, as pmem2_map_new gives a private map (there is
 * nothing to make durable).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif
#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif

#define AP_MIB ((size_t)1 << 20)
#define AP_GIB ((size_t)1 << 30)

/* ap_forced_granularity -- PMEM2_FORCE_GRANULARITY, or -1 (as libpmem2) */
static int
ap_forced_granularity(void)
{
	const char *v = getenv("PMEM2_FORCE_GRANULARITY");
	if (v == NULL)
		return -1;
	char s[11];
	size_t n = strlen(v);
	if (n >= sizeof(s))
		return -1;
	for (size_t i = 0; i <= n; i++)
		s[i] = (char)toupper((unsigned char)v[i]);
	if (strcmp(s, "BYTE") == 0)
		return AP_GRAN_BYTE;
	if (strcmp(s, "CACHE_LINE") == 0 || strcmp(s, "CACHELINE") == 0)
		return AP_GRAN_CACHE_LINE;
	if (strcmp(s, "PAGE") == 0)
		return AP_GRAN_PAGE;
	return -1;
}

/* one template map per granularity, made on first use and kept */
static pthread_mutex_t ap_templates_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pmem2_map *ap_templates[AP_GRAN_PAGE + 1];

/* ap_template -- the template map of a granularity, or NULL (message set) */
static struct pmem2_map *
ap_template(uint32_t granularity, struct ap_source *src, size_t page)
{
	pthread_mutex_lock(&ap_templates_lock);
	struct pmem2_map *t = ap_templates[granularity];
	if (t == NULL) {
		/* a page of its own, never unmapped: the template describes it */
		void *p = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
		if (p == MAP_FAILED)
			ap_fail(-errno, "cannot map a template page: %s",
				strerror(errno));
		else if (pmem2_map_from_existing(&t, src->src, p, page,
				(enum pmem2_granularity)granularity) != 0) {
			ap_fail_pmem2(-EINVAL, "pmem2_map_from_existing");
			munmap(p, page);
			t = NULL;
		} else {
			ap_templates[granularity] = t;
		}
	}
	pthread_mutex_unlock(&ap_templates_lock);
	return t;
}

/* ap_takes_map_sync -- 1 when the file maps with MAP_SYNC, 0 when not,
 * -1 when the probe failed otherwise (libpmem2 then decides) */
static int
ap_takes_map_sync(int fd, size_t off, size_t page)
{
	void *p = mmap(NULL, page, PROT_READ, MAP_SHARED_VALIDATE | MAP_SYNC,
		fd, (off_t)off);
	if (p != MAP_FAILED) {
		munmap(p, page);
		return 1;
	}
	return errno == EOPNOTSUPP || errno == EINVAL ? 0 : -1;
}

/* ap_prot -- PMEM2_PROT_* bits as mmap's */
static int
ap_prot(uint32_t protection)
{
	int prot = PROT_NONE;
	if (protection & PMEM2_PROT_EXEC)
		prot |= PROT_EXEC;
	if (protection & PMEM2_PROT_READ)
		prot |= PROT_READ;
	if (protection & PMEM2_PROT_WRITE)
		prot |= PROT_WRITE;
	return prot;
}

/*
 * ap_map_file -- map [off, off + len) of src's regular file into m (addr,
 * size, granularity, functions; m->map stays NULL): shared when the file
 * offers no MAP_SYNC, private (sharing 1) always. Returns 0 when mapped,
 * 1 when pmem2_map_new should map it instead (it is safe there, or
 * refused by it before any mapping), or an error code.
 */
int
ap_map_file(struct ap_map *m, struct ap_source *src, uint32_t granularity,
	size_t off, size_t len, uint32_t sharing, uint32_t protection)
{
	struct stat st;
	if (src->fd < 0 || fstat(src->fd, &st) != 0 || !S_ISREG(st.st_mode))
		return 1;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t size = (size_t)st.st_size;
	/* what pmem2_map_new maps without complaint; the rest it refuses */
	if (off % page || len % page || off >= size ||
			(len != 0 && len > size - off))
		return 1;
	if (len == 0)
		len = size - off;
	if (!sharing && ap_takes_map_sync(src->fd, off, page) != 0)
		return 1;
	int forced = ap_forced_granularity();
	uint32_t effective = sharing ? AP_GRAN_BYTE :
		forced >= 0 ? (uint32_t)forced : AP_GRAN_PAGE;
	if (effective > granularity)
		return ap_fail(PMEM2_E_GRANULARITY_NOT_SUPPORTED, "pmem2_map_new: "
			"requested granularity not available because fd doesn't "
			"point to DAX-enabled file or kernel doesn't support "
			"MAP_SYNC flag (Linux >= 4.15)");
	struct pmem2_map *t = ap_template(effective, src, page);
	if (t == NULL)
		return ap_fail(-EINVAL, "no template map for granularity %u",
			effective);
	/* the reservation pmem2_map_new would make: 2 MiB aligned, 1 GiB
	 * from 2 GiB on */
	size_t align = len >= 2 * AP_GIB ? AP_GIB : 2 * AP_MIB;
	size_t span = (len + page - 1) / page * page;
	char *res = mmap(NULL, span + align, PROT_READ,
		MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED)
		return ap_fail(-errno, "cannot reserve %zu bytes: %s",
			span + align, strerror(errno));
	char *at = (char *)(((uintptr_t)res + align - 1) & ~(uintptr_t)(align - 1));
	/* checked before the reservation is touched: a refused protection
	 * leaves it whole (do_mmap refuses write access to a read-only file
	 * before it unmaps anything) */
	char *addr = mmap(at, len, ap_prot(protection), MAP_FIXED | (sharing ?
		MAP_PRIVATE | MAP_NORESERVE : MAP_SHARED), src->fd, (off_t)off);
	if (addr == MAP_FAILED) {
		int e = errno;
		if (e == EACCES || e == EPERM) {
			munmap(res, span + align);
			return ap_fail(PMEM2_E_NO_ACCESS,
				"pmem2_map_new: mmap: %s", strerror(e));
		}
		/* a handler that failed after the unmap may have left a hole
		 * another thread now uses: the reservation is left as it is
		 * (address space, not memory) rather than unmapped blindly */
		return ap_fail(-e, "cannot map the file: %s", strerror(e));
	}
	if (at > res)
		munmap(res, (size_t)(at - res));
	size_t after = (size_t)(res + span + align - (at + span));
	if (after)
		munmap(at + span, after);
	m->map = NULL;
	m->addr = addr;
	m->size = len;
	m->own_len = span;
	m->granularity = effective;
	m->persist = pmem2_get_persist_fn(t);
	m->flush = pmem2_get_flush_fn(t);
	m->drain = pmem2_get_drain_fn(t);
	m->memcpy_fn = pmem2_get_memcpy_fn(t);
	m->memmove_fn = pmem2_get_memmove_fn(t);
	m->memset_fn = pmem2_get_memset_fn(t);
	return 0;
}
