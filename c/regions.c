/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * regions.c -- the process-wide table of live mappings.
 *
 * Asynchronous work (worker threads, DSA) may hold raw addresses into a
 * mapping after the JavaScript call that submitted it has returned. Every
 * such submission takes a reference on the region its buffers lie in. The
 * region's own entry counts as one more reference, dropped by
 * ap_region_remove: whoever drops the last one unmaps. So deleting a
 * mapping waits a bounded time for the work on it to finish and, if some
 * is still held (a descriptor built but never submitted, a worker still
 * copying), leaves the unmap to the last holder -- it never hangs, and no
 * worker ever writes into unmapped memory.
 */
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <stdatomic.h>
#include <unistd.h>
#include "internal.h"

#define AP_MAX_REGIONS 1024
/* how long ap_region_remove waits for holders before deferring the unmap */
#define AP_REMOVE_WAIT_NS 500000000L

struct ap_region {
	char *base;
	size_t len;
	struct ap_map *map;
	_Atomic uint64_t refs; /* holders, plus 1 for the entry itself */
	int dead;
};

static pthread_rwlock_t ap_regions_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct ap_region ap_regions[AP_MAX_REGIONS];
/* slots at or above this index have never been used: lookups stop there */
static int ap_regions_hi;

/* ap_region_add -- enter a new mapping; called by ap_map_new */
int
ap_region_add(struct ap_map *m)
{
	int rc = AP_E_BUSY;
	pthread_rwlock_wrlock(&ap_regions_lock);
	for (int i = 0; i < AP_MAX_REGIONS; i++) {
		if (ap_regions[i].map == NULL) {
			ap_regions[i].base = m->addr;
			ap_regions[i].len = m->size;
			ap_regions[i].map = m;
			atomic_store(&ap_regions[i].refs, 1);
			ap_regions[i].dead = 0;
			if (i + 1 > ap_regions_hi)
				ap_regions_hi = i + 1;
			rc = 0;
			break;
		}
	}
	pthread_rwlock_unlock(&ap_regions_lock);
	/* the message only on failure: a successful map left "too many live
	 * mappings" as the thread's last message */
	if (rc)
		return ap_fail(rc, "too many live mappings (max %d)",
			AP_MAX_REGIONS);
	return 0;
}

/* ap_region_get -- look up a range and take a reference */
struct ap_region *
ap_region_get(const void *addr, size_t len, int *rc)
{
	uintptr_t a = (uintptr_t)addr;
	struct ap_region *found = NULL;
	*rc = 0;
	pthread_rwlock_rdlock(&ap_regions_lock);
	for (int i = 0; i < ap_regions_hi; i++) {
		struct ap_region *r = &ap_regions[i];
		if (r->map == NULL)
			continue;
		uintptr_t b = (uintptr_t)r->base;
		if (a < b || a >= b + r->len)
			continue;
		if (r->dead)
			*rc = ap_fail(AP_E_CLOSED, "mapping is being closed");
		else if (len > b + r->len - a)
			*rc = ap_fail(AP_E_RANGE, "range leaves its mapping");
		else {
			atomic_fetch_add(&r->refs, 1);
			found = r;
		}
		break;
	}
	pthread_rwlock_unlock(&ap_regions_lock);
	return found;
}

/* ap_region_destroy -- the last reference is gone: unmap, free the entry */
static void
ap_region_destroy(struct ap_region *r)
{
	struct ap_map *m = r->map;
	pthread_rwlock_wrlock(&ap_regions_lock);
	r->map = NULL;
	r->base = NULL;
	r->len = 0;
	pthread_rwlock_unlock(&ap_regions_lock);
	ap_map_destroy(m);
}

/* ap_region_put -- drop a reference taken by ap_region_get */
void
ap_region_put(struct ap_region *r)
{
	if (r != NULL && atomic_fetch_sub_explicit(&r->refs, 1,
			memory_order_acq_rel) == 1)
		ap_region_destroy(r);
}

struct ap_map *
ap_region_map(struct ap_region *r)
{
	return r->map;
}

/* ap_now_ns -- CLOCK_MONOTONIC in nanoseconds */
static long long
ap_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/*
 * ap_region_remove -- refuse new references, wait a bounded time for the
 * holders, then drop the entry's own reference. Returns 1 when the caller
 * dropped the last one (the mapping is unmapped now), 0 when a holder
 * will unmap it when it lets go.
 */
int
ap_region_remove(struct ap_map *m)
{
	struct ap_region *r = NULL;
	pthread_rwlock_wrlock(&ap_regions_lock);
	for (int i = 0; i < ap_regions_hi; i++)
		if (ap_regions[i].map == m && !ap_regions[i].dead) {
			r = &ap_regions[i];
			r->dead = 1;
			break;
		}
	pthread_rwlock_unlock(&ap_regions_lock);
	if (r == NULL) {
		ap_map_destroy(m);
		return 1;
	}
	long long end = ap_now_ns() + AP_REMOVE_WAIT_NS;
	for (unsigned spins = 0;
	     atomic_load_explicit(&r->refs, memory_order_acquire) > 1 &&
	     ap_now_ns() < end;
	     spins++) {
		if (spins < 1000)
			sched_yield();
		else
			usleep(100);
	}
	if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
		ap_region_destroy(r);
		return 1;
	}
	return 0;
}
