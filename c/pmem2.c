/* SPDX-License-Identifier: BSD-3-Clause */
/* pmem2.c -- mappings and persistence over libpmem2 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

/* the system's page size: msync wants a page-aligned address, and a
 * page is 64 KiB on some arm64 and ppc64le kernels */
static uintptr_t
ap_page_size(void)
{
	static uintptr_t page;
	if (page == 0)
		page = (uintptr_t)sysconf(_SC_PAGESIZE);
	return page;
}


/* ap_map_new -- configure and create a mapping */
int
ap_map_new(struct ap_map **out, struct ap_source *src, uint32_t granularity,
	double offset, double length, uint32_t sharing, uint32_t protection)
{
	size_t off, len;
	int rc = ap_to_size(offset, &off, "offset");
	if (rc || (rc = ap_to_size(length, &len, "length")))
		return rc;
	if (granularity > AP_GRAN_PAGE || sharing > 1)
		return ap_fail(AP_E_INVALID_ARG, "invalid granularity/sharing");
	*out = NULL;
	ap_pmem2_reset();
	struct pmem2_config *cfg;
	if ((rc = pmem2_config_new(&cfg)))
		return ap_fail_pmem2(rc, "pmem2_config_new");
	if ((rc = pmem2_config_set_required_store_granularity(cfg,
			(enum pmem2_granularity)granularity))) {
		rc = ap_fail_pmem2(rc, "granularity");
		goto out_cfg;
	}
	if ((rc = pmem2_config_set_offset(cfg, off))) {
		rc = ap_fail_pmem2(rc, "offset");
		goto out_cfg;
	}
	pmem2_config_set_length(cfg, len);
	if ((rc = pmem2_config_set_sharing(cfg, sharing ? PMEM2_PRIVATE :
			PMEM2_SHARED))) {
		rc = ap_fail_pmem2(rc, "sharing");
		goto out_cfg;
	}
	if ((rc = pmem2_config_set_protection(cfg, protection))) {
		rc = ap_fail_pmem2(rc, "protection");
		goto out_cfg;
	}
	struct ap_map *m = calloc(1, sizeof(*m));
	if (m == NULL) {
		rc = ap_fail(-ENOMEM, "cannot allocate map");
		goto out_cfg;
	}
	/* a shared map of a regular file without MAP_SYNC is made by
	 * map_file.c: pmem2_map_new leaves a hole another thread can take;
	 * and so is a private map of a regular file: pmem2_map_new's is
	 * charged in full against the memory the kernel commits */
	rc = ap_map_file(m, src, granularity, off, len, sharing, protection);
	if (rc < 0) {
		free(m);
		goto out_cfg;
	}
	if (rc == 1) {
		if ((rc = pmem2_map_new(&m->map, cfg, src->src))) {
			rc = ap_fail_pmem2(rc, "pmem2_map_new");
			free(m);
			goto out_cfg;
		}
		m->addr = pmem2_map_get_address(m->map);
		m->size = pmem2_map_get_size(m->map);
		m->granularity = pmem2_map_get_store_granularity(m->map);
		m->persist = pmem2_get_persist_fn(m->map);
		m->flush = pmem2_get_flush_fn(m->map);
		m->drain = pmem2_get_drain_fn(m->map);
		m->memcpy_fn = pmem2_get_memcpy_fn(m->map);
		m->memmove_fn = pmem2_get_memmove_fn(m->map);
		m->memset_fn = pmem2_get_memset_fn(m->map);
	}
	m->protection = protection;
	if ((rc = ap_region_add(m))) {
		if (m->map == NULL)
			munmap(m->addr, m->own_len);
		else
			pmem2_map_delete(&m->map);
		free(m);
		goto out_cfg;
	}
	*out = m;
out_cfg:
	pmem2_config_delete(&cfg);
	return rc;
}

/* ap_map_destroy -- unmap and free; called when no reference is left */
void
ap_map_destroy(struct ap_map *m)
{
	/* a map made by map_file.c has no pmem2_map: unmapped here */
	if (m->map == NULL ? munmap(m->addr, m->own_len) != 0 :
			pmem2_map_delete(&m->map) != 0) {
		/* the munmap failed: keep the memory mapped (leaked) rather
		 * than free what a view might still reach */
		return;
	}
	free(m);
}

/*
 * ap_map_delete -- leave the mapping; it is unmapped now, or by the last
 * device operation still holding it (see regions.c)
 */
int
ap_map_delete(struct ap_map **map)
{
	if (map == NULL || *map == NULL)
		return 0;
	ap_region_remove(*map);
	*map = NULL;
	return 0;
}

void *
ap_map_address(struct ap_map *map)
{
	return map->addr;
}

double
ap_map_size(struct ap_map *map)
{
	return (double)map->size;
}

uint32_t
ap_map_granularity(struct ap_map *map)
{
	return map->granularity;
}

void
ap_map_note(struct ap_map *m, const void *addr, size_t len, uint32_t kind)
{
	if (!atomic_load_explicit(&m->noting, memory_order_relaxed))
		return;
	uint64_t n = atomic_fetch_add_explicit(&m->notes, 1,
		memory_order_relaxed);
	struct ap_note *e = &m->log[n % AP_DURABLE_LOG];
	e->off = addr ? (uint64_t)((const char *)addr - m->addr) : 0;
	e->len = len;
	e->kind = kind;
}

/*
 * ap_map_durable_log -- copy the newest notes (at most cap) into out as
 * (offset, length, kind) triples, newest first; returns how many notes
 * were ever made
 */
int
ap_map_durable_log(struct ap_map *map, double *out, uint32_t cap)
{
	atomic_store_explicit(&map->noting, 1, memory_order_relaxed);
	uint64_t n = atomic_load(&map->notes);
	uint64_t k = n < AP_DURABLE_LOG ? n : AP_DURABLE_LOG;
	for (uint64_t i = 0; i < k && i < cap; i++) {
		const struct ap_note *e = &map->log[(n - 1 - i) % AP_DURABLE_LOG];
		out[3 * i] = (double)e->off;
		out[3 * i + 1] = (double)e->len;
		out[3 * i + 2] = e->kind;
	}
	return n > INT32_MAX ? INT32_MAX : (int)n;
}

/* ap_map_access -- refuse an access the mapping's protection forbids */
int
ap_map_access(const struct ap_map *m, uint32_t prot, const char *op)
{
	if ((m->protection & prot) == prot)
		return 0;
	return ap_fail(-EACCES, "%s: the mapping is %s", op,
		(m->protection & PMEM2_PROT_READ) ? "read-only" :
		"not accessible (protection none)");
}

/* ap_map_sync -- durable write-back of a range, never aborting */
int
ap_map_sync(struct ap_map *m, const void *addr, size_t len)
{
	if (len == 0)
		return 0;
	if (m->granularity != AP_GRAN_PAGE) {
		m->persist(addr, len);
		ap_map_note(m, addr, len, AP_NOTE_DURABLE);
		return 0;
	}
	uintptr_t a = (uintptr_t)addr;
	uintptr_t base = a & ~(ap_page_size() - 1);
	size_t n = len + (a - base);
	while (msync((void *)base, n, MS_SYNC) != 0) {
		if (errno == EINTR)
			continue;
		return ap_fail(-errno, "msync failed: %s", strerror(errno));
	}
	ap_map_note(m, addr, len, AP_NOTE_DURABLE);
	return 0;
}

/*
 * ap_map_readable -- refuse to flush a mapping without read access: a
 * cache-line flush (CLFLUSH, CLWB) of a page that cannot be read faults,
 * so persist on a PROT_NONE map below page granularity killed the
 * process; msync on a page map would not fault, but is refused alike so
 * that a "none" mapping behaves the same on every storage
 */
static int
ap_map_readable(const struct ap_map *m, const char *op)
{
	return ap_map_access(m, PMEM2_PROT_READ, op);
}

/* ap_map_range -- convert and check an (offset, length) pair */
static int
ap_map_range(struct ap_map *m, double offset, double length, size_t *off,
	size_t *len, const char *what)
{
	int rc = ap_to_size(offset, off, "offset");
	if (rc || (rc = ap_to_size(length, len, "length")))
		return rc;
	return ap_range(*off, *len, m->size, what);
}

int
ap_map_persist(struct ap_map *map, double offset, double length)
{
	size_t off, len;
	int rc = ap_map_range(map, offset, length, &off, &len, "persist");
	if (rc || (rc = ap_map_readable(map, "persist")))
		return rc;
	return ap_map_sync(map, map->addr + off, len);
}

int
ap_map_flush(struct ap_map *map, double offset, double length)
{
	size_t off, len;
	int rc = ap_map_range(map, offset, length, &off, &len, "flush");
	if (rc || (rc = ap_map_readable(map, "flush")))
		return rc;
	if (map->granularity == AP_GRAN_PAGE)
		return ap_map_sync(map, map->addr + off, len);
	if (len) {
		map->flush(map->addr + off, len);
		ap_map_note(map, map->addr + off, len, AP_NOTE_FLUSHED);
	}
	return 0;
}

int
ap_map_drain(struct ap_map *map)
{
	if (map->granularity != AP_GRAN_PAGE) {
		map->drain();
		ap_map_note(map, NULL, 0, AP_NOTE_DRAIN);
	}
	return 0;
}

int
ap_map_deep_flush(struct ap_map *map, double offset, double length)
{
	size_t off, len;
	int rc = ap_map_range(map, offset, length, &off, &len, "deep flush");
	if (rc || (rc = ap_map_readable(map, "deep flush")))
		return rc;
	if (map->map == NULL) {
		/* a regular file without MAP_SYNC (map_file.c): what
		 * pmem2_deep_flush does for one, msync of the pages */
		uintptr_t a = (uintptr_t)(map->addr + off);
		uintptr_t start = a & ~(ap_page_size() - 1);
		if (len != 0 && msync((void *)start, a + len - start, MS_SYNC))
			return ap_fail(-errno, "deep flush: msync: %s",
				strerror(errno));
		return 0;
	}
	ap_pmem2_reset();
	rc = pmem2_deep_flush(map->map, map->addr + off, len);
	if (rc)
		return ap_fail_pmem2(rc, "pmem2_deep_flush");
	return 0;
}

/* ap_note_copy -- what libpmem2's copy with flags made of the range */
static void
ap_note_copy(struct ap_map *m, const void *addr, size_t n, uint32_t flags)
{
	if (flags & PMEM2_F_MEM_NOFLUSH)
		return;
	ap_map_note(m, addr, n, (flags & PMEM2_F_MEM_NODRAIN) ?
		AP_NOTE_FLUSHED : AP_NOTE_DURABLE);
}

/* ap_check_flags -- PMEM2_F_MEM_* flags and their exclusions */
static int
ap_check_flags(uint32_t flags)
{
	if (flags & ~PMEM2_F_MEM_VALID_FLAGS)
		return ap_fail(AP_E_INVALID_ARG, "unknown flags 0x%x", flags);
	if ((flags & PMEM2_F_MEM_NONTEMPORAL) && (flags & PMEM2_F_MEM_TEMPORAL))
		return ap_fail(AP_E_INVALID_ARG,
			"NONTEMPORAL and TEMPORAL exclude each other");
	if ((flags & PMEM2_F_MEM_WC) && (flags & PMEM2_F_MEM_WB))
		return ap_fail(AP_E_INVALID_ARG, "WC and WB exclude each other");
	if ((flags & PMEM2_F_MEM_NOFLUSH) &&
			(flags & (PMEM2_F_MEM_NONTEMPORAL | PMEM2_F_MEM_WC)))
		return ap_fail(AP_E_INVALID_ARG,
			"NOFLUSH excludes NONTEMPORAL and WC");
	return 0;
}

/*
 * ap_page_copy -- the copy of a PAGE map: msync makes it durable, so plain
 * libc copies (libpmem2's NOFLUSH path is slower, and its msync aborts on
 * failure); non-temporal stores when the flags ask for them
 */
static void
ap_page_copy(char *dst, const char *src, size_t n, uint32_t flags)
{
	int overlap = dst < src + n && src < dst + n;
	if ((flags & (PMEM2_F_MEM_NONTEMPORAL | PMEM2_F_MEM_WC)) && !overlap)
		ap_stream_copy(dst, src, n);
	else
		memmove(dst, src, n);
}

int
ap_map_memcpy(struct ap_map *map, double dst_off, const void *src,
	double src_len, double len, uint32_t flags)
{
	size_t off, n, have;
	int rc = ap_map_range(map, dst_off, len, &off, &n, "memcpy");
	if (rc || (rc = ap_check_flags(flags)) ||
			(rc = ap_to_size(src_len, &have, "source length")) ||
			(rc = ap_map_access(map, PMEM2_PROT_WRITE, "memcpy")))
		return rc;
	if (n > have)
		return ap_fail(AP_E_RANGE, "memcpy: %zu bytes from a source of "
			"%zu", n, have);
	if (n == 0)
		return 0;
	if (src == NULL)
		return ap_fail(AP_E_INVALID_ARG, "memcpy: source is NULL");
	if (map->granularity == AP_GRAN_PAGE) {
		ap_page_copy(map->addr + off, src, n, flags);
		if (flags & PMEM2_F_MEM_NOFLUSH)
			return 0;
		return ap_map_sync(map, map->addr + off, n);
	}
	map->memcpy_fn(map->addr + off, src, n, flags);
	ap_note_copy(map, map->addr + off, n, flags);
	return 0;
}

int
ap_map_memmove(struct ap_map *map, double dst_off, double src_off,
	double len, uint32_t flags)
{
	size_t doff, soff, n;
	int rc = ap_map_range(map, dst_off, len, &doff, &n, "memmove dst");
	if (rc || (rc = ap_map_range(map, src_off, len, &soff, &n,
			"memmove src")) || (rc = ap_check_flags(flags)) ||
			(rc = ap_map_access(map, PMEM2_PROT_READ |
			PMEM2_PROT_WRITE, "memmove")))
		return rc;
	if (n == 0)
		return 0;
	if (map->granularity == AP_GRAN_PAGE) {
		ap_page_copy(map->addr + doff, map->addr + soff, n, flags);
		if (flags & PMEM2_F_MEM_NOFLUSH)
			return 0;
		return ap_map_sync(map, map->addr + doff, n);
	}
	map->memmove_fn(map->addr + doff, map->addr + soff, n, flags);
	ap_note_copy(map, map->addr + doff, n, flags);
	return 0;
}

int
ap_map_memset(struct ap_map *map, double dst_off, uint32_t c, double len,
	uint32_t flags)
{
	size_t off, n;
	int rc = ap_map_range(map, dst_off, len, &off, &n, "memset");
	if (rc || (rc = ap_check_flags(flags)) ||
			(rc = ap_map_access(map, PMEM2_PROT_WRITE, "memset")))
		return rc;
	if (c > 255)
		return ap_fail(AP_E_INVALID_ARG, "memset value %u > 255", c);
	if (n == 0)
		return 0;
	if (map->granularity == AP_GRAN_PAGE) {
		/* the hint, as ap_page_copy takes it */
		if (flags & (PMEM2_F_MEM_NONTEMPORAL | PMEM2_F_MEM_WC))
			ap_stream_fill(map->addr + off, (int)c, n);
		else
			memset(map->addr + off, (int)c, n);
		if (flags & PMEM2_F_MEM_NOFLUSH)
			return 0;
		return ap_map_sync(map, map->addr + off, n);
	}
	map->memset_fn(map->addr + off, (int)c, n, flags);
	ap_note_copy(map, map->addr + off, n, flags);
	return 0;
}
