/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * regions.c -- the process-wide table of live mappings.
 *
 * Asynchronous work (worker threads, DSA) may hold raw addresses into a
 * mapping after the JavaScript call that submitted it has returned. Every
 * such submission takes a reference on the region its buffers lie in, and
 * ap_map_delete waits for those references before unmapping.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>
#include "internal.h"

#define AP_MAX_REGIONS 1024

struct ap_region {
	char *base;
	size_t len;
	struct ap_map *map;
	_Atomic uint64_t refs;
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
	int rc = ap_fail(AP_E_BUSY, "too many live mappings (max %d)",
		AP_MAX_REGIONS);
	pthread_rwlock_wrlock(&ap_regions_lock);
	for (int i = 0; i < AP_MAX_REGIONS; i++) {
		if (ap_regions[i].map == NULL) {
			ap_regions[i].base = m->addr;
			ap_regions[i].len = m->size;
			ap_regions[i].map = m;
			atomic_store(&ap_regions[i].refs, 0);
			ap_regions[i].dead = 0;
			if (i + 1 > ap_regions_hi)
				ap_regions_hi = i + 1;
			rc = 0;
			break;
		}
	}
	pthread_rwlock_unlock(&ap_regions_lock);
	return rc;
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

/* ap_region_put -- drop a reference taken by ap_region_get */
void
ap_region_put(struct ap_region *r)
{
	if (r != NULL)
		atomic_fetch_sub_explicit(&r->refs, 1, memory_order_release);
}

struct ap_map *
ap_region_map(struct ap_region *r)
{
	return r->map;
}

/* ap_region_remove -- mark dead, wait for references, then forget it */
void
ap_region_remove(struct ap_map *m)
{
	struct ap_region *r = NULL;
	pthread_rwlock_wrlock(&ap_regions_lock);
	for (int i = 0; i < AP_MAX_REGIONS; i++)
		if (ap_regions[i].map == m) {
			r = &ap_regions[i];
			r->dead = 1;
			break;
		}
	pthread_rwlock_unlock(&ap_regions_lock);
	if (r == NULL)
		return;
	for (unsigned spins = 0;
	     atomic_load_explicit(&r->refs, memory_order_acquire) != 0;
	     spins++) {
		if (spins < 1000)
			sched_yield();
		else
			usleep(100);
	}
	pthread_rwlock_wrlock(&ap_regions_lock);
	r->map = NULL;
	r->base = NULL;
	r->len = 0;
	pthread_rwlock_unlock(&ap_regions_lock);
}
