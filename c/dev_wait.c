/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dev_wait.c -- sleeping until completions arrive: the completion
 * sequence in the control block after the record arena is bumped after
 * every published completion (by a software device's engines, or by a DSA
 * WQ's watcher thread); a thread reads it, checks its records, then sleeps
 * until the sequence moves, so no wake-up is lost. Bun's event loop is
 * woken instead through a doorbell function.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <time.h>
#include "device.h"

/*
 * ap_lower_wake_at -- make workers wake waiters once the sequence reaches
 * target, unless an earlier live target is set (a target the sequence has
 * passed is stale and is replaced)
 */
static void
ap_lower_wake_at(struct ap_dev *d, uint32_t target)
{
	_Atomic uint32_t *at = ap_ctrl(d, AP_CTRL_WAKE_AT);
	uint32_t cur = atomic_load(at);
	for (;;) {
		uint32_t now = atomic_load(ap_ctrl(d, AP_CTRL_SEQ));
		int stale = (int32_t)(cur - now) <= 0;
		if (!stale && (int32_t)(cur - target) <= 0)
			return;
		if (atomic_compare_exchange_weak(at, &cur, target))
			return;
	}
}

int
ap_dev_wait(struct ap_dev *d, uint32_t seq, uint32_t timeout_ms,
	uint32_t min_advance)
{
	_Atomic uint32_t *w = ap_ctrl(d, AP_CTRL_SEQ);
	uint32_t target = seq + (min_advance ? min_advance : 1);
	atomic_fetch_add(ap_ctrl(d, AP_CTRL_WAITERS), 1);
	struct timespec end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += timeout_ms / 1000;
	end.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	int rc = 0;
	for (;;) {
		ap_lower_wake_at(d, target);
		uint32_t now = atomic_load(w);
		if (now != seq && (int32_t)(now - target) >= 0)
			break;
		if (atomic_load(&d->stopping))
			break;
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left = (end.tv_sec - t.tv_sec) * 1000000000L +
			(end.tv_nsec - t.tv_nsec);
		if (left <= 0) {
			rc = -ETIMEDOUT; /* the target was not reached in time */
			break;
		}
		struct timespec ts = { left / 1000000000L, left % 1000000000L };
		if (ap_futex(w, FUTEX_WAIT_PRIVATE, now, &ts) != 0 &&
				errno == ETIMEDOUT) {
			/* the deadline, not a wake, ended the sleep: say so even
			 * if the target was reached meanwhile (a lost wake-up) */
			rc = -ETIMEDOUT;
			break;
		}
	}
	atomic_fetch_sub(ap_ctrl(d, AP_CTRL_WAITERS), 1);
	return rc;
}

int
ap_dev_set_doorbell(struct ap_dev *d, void (*fn)(void))
{
	atomic_store(&d->doorbell, fn);
	return 0;
}
