/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dsa_watch.c -- noticing completions on a DSA work queue.
 *
 * DSA hardware writes a completion record and nothing else: it does not
 * bump the completion sequence the executor sleeps on, drop the mapping
 * references a descriptor holds, or return a dedicated WQ's credit. The
 * software device's engines do all three when they publish a record; for
 * a WQ, a watcher thread does them when it sees a record's status byte
 * turn non-zero (reference dsa.md 4.2: wait in C, never on the JS thread).
 *
 * The watcher scans the records in flight. While some are, it spins for
 * about AP_SPIN_NS, then waits with UMONITOR/UMWAIT on the first record's
 * status line where the CPU has WAITPKG, else sleeps with a backoff from
 * 1 to 50 us; with none in flight it spins as long, then sleeps on a
 * futex until a submission. Every completion it notices bumps the sequence once, wakes
 * ap_dev_wait's sleepers when their target is reached and rings Bun's
 * doorbell -- ap_signal, the engines' own -- so the executor's protocol
 * (read the sequence, check, sleep) loses no wake-up on either device.
 *
 * A submitter that reuses a record before the watcher saw it complete
 * (JavaScript saw the status first) reaps it itself under the same lock,
 * and signals it the same way: every completion is signalled once. The
 * same holds for a BATCH's member records and its list, which JavaScript
 * reuses once it saw the batch's record: the watcher settles the members
 * by reading the list, so a list rewritten before that would have the
 * new members' references dropped and the old ones' kept for good.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <sys/prctl.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif
#include "dsa.h"

/* how long the watcher sleeps at most between scans while work is out */
#define AP_WATCH_MAX_SLEEP_NS 50000L
/* UMWAIT's deadline: about 30 us at 3 GHz (the OS caps it anyway) */
#define AP_UMWAIT_CYCLES 100000ull

/*
 * ap_batch_mark -- a BATCH over list[0..count) went out (delta 1) or was
 * settled or taken back (delta -1): count it on its members' records and
 * on the batch lists it reads, so that none is reused before the watcher
 * (or a submitter) has settled it
 */
void
ap_batch_mark(struct ap_dev *d, const struct dsa_hw_desc *list,
	uint32_t count, int32_t delta)
{
	struct ap_portal *p = d->portal;
	if (list == NULL || count == 0)
		return;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t idx;
		if (ap_record(d, list[i].completion_addr, &idx) != NULL &&
				idx != AP_FOREIGN)
			atomic_fetch_add(&p->owner[idx], (uint32_t)delta);
	}
	const size_t span = (size_t)AP_MAX_BATCH * sizeof(*list);
	uintptr_t off = (uintptr_t)list - (uintptr_t)d->lists;
	size_t last = (off + (size_t)count * sizeof(*list) - 1) / span;
	for (size_t l = off / span; l <= last && l < p->nlists; l++)
		atomic_fetch_add(&p->list_pend[l], (uint32_t)delta);
}

/*
 * ap_reap_one -- rec's descriptor completed: settle what it held. Its
 * pending mark is cleared last: a submitter that finds it clear (or a
 * member's or a list's) finds everything settled.
 */
static void
ap_reap_one(struct ap_dev *d, struct ap_portal *p, uint32_t rec)
{
	const struct dsa_hw_desc *list = p->lists[rec];
	if (list != NULL) {
		/* its members hold references too; abandoned ones got no CR */
		ap_abandon(d, list, 0, p->counts[rec]);
		ap_batch_mark(d, list, p->counts[rec], -1);
		p->lists[rec] = NULL;
	}
	ap_release_refs(&d->refs[rec]);
	if (p->credited)
		atomic_fetch_add(&p->credits, 1);
	atomic_store_explicit(&p->pend[rec], 0, memory_order_release);
	atomic_fetch_sub(&p->npend, 1);
	ap_signal(d);
}

/*
 * ap_reap -- settle every record in flight whose status has arrived;
 * returns how many. Under a lock, so that when it returns no other reap
 * is half done. (A refused submission takes its pending mark back while
 * its status is still 0: no reap can claim it.)
 */
uint32_t
ap_reap(struct ap_dev *d, int by_watcher)
{
	struct ap_portal *p = d->portal;
	if (atomic_load(&p->npend) == 0)
		return 0;
	uint32_t n = 0;
	pthread_mutex_lock(&p->reap_lock);
	uint32_t hi = atomic_load(&p->hi);
	for (uint32_t i = 0; i < hi; i++) {
		if (atomic_load_explicit(&p->pend[i], memory_order_acquire) == 0)
			continue;
		const uint8_t *status = (const uint8_t *)d->records +
			(size_t)i * AP_RECORD_STRIDE;
		if (__atomic_load_n(status, __ATOMIC_ACQUIRE) == 0)
			continue;
		ap_reap_one(d, p, i);
		n++;
	}
	pthread_mutex_unlock(&p->reap_lock);
	if (n)
		atomic_fetch_add(&p->count[by_watcher ? AP_DSA_REAPED :
			AP_DSA_REAPED_INLINE], n);
	return n;
}

/* ap_reap_ready -- a submitter's reap (see ap_rec_busy in dev_submit.c) */
uint32_t
ap_reap_ready(struct ap_dev *d)
{
	return ap_reap(d, 0);
}

/*
 * ap_rec_pending -- whether record rec's descriptor is still in flight,
 * or a BATCH in flight has it as a member (acquire: once it says no, the
 * record's references are settled)
 */
int
ap_rec_pending(struct ap_dev *d, uint32_t rec)
{
	struct ap_portal *p = d->portal;
	return atomic_load_explicit(&p->pend[rec], memory_order_acquire) != 0 ||
		atomic_load_explicit(&p->owner[rec], memory_order_acquire) != 0;
}

/* ap_list_pending -- whether a BATCH in flight reads batch list `list` */
int
ap_list_pending(struct ap_dev *d, uint32_t list)
{
	struct ap_portal *p = d->portal;
	return list < p->nlists && atomic_load_explicit(&p->list_pend[list],
		memory_order_acquire) != 0;
}

/* ap_first_pending -- the status byte of some record in flight, or NULL */
static const uint8_t *
ap_first_pending(struct ap_dev *d, struct ap_portal *p)
{
	uint32_t hi = atomic_load(&p->hi);
	for (uint32_t i = 0; i < hi; i++)
		if (atomic_load_explicit(&p->pend[i], memory_order_relaxed))
			return (const uint8_t *)d->records +
				(size_t)i * AP_RECORD_STRIDE;
	return NULL;
}

#if defined(__x86_64__)
/*
 * ap_umwait -- UMONITOR the status line, re-check it (a store between the
 * check and the monitor would be lost), then UMWAIT in C0.1 until it is
 * written or the deadline passes
 */
__attribute__((target("waitpkg"))) static void
ap_umwait(const uint8_t *status)
{
	_umonitor((void *)status);
	if (__atomic_load_n(status, __ATOMIC_ACQUIRE) == 0)
		_umwait(1, __rdtsc() + AP_UMWAIT_CYCLES);
}
#endif

/* ap_watch_wait -- wait a little for records in flight (idle-th time) */
static void
ap_watch_wait(struct ap_dev *d, struct ap_portal *p, uint32_t idle)
{
	if (idle < p->spins) {
		ap_pause();
		return;
	}
	atomic_fetch_add(&p->count[AP_DSA_SLEEPS], 1);
#if defined(__x86_64__)
	const uint8_t *status;
	if (p->waitpkg && (status = ap_first_pending(d, p)) != NULL) {
		ap_umwait(status);
		return;
	}
#else
	(void)d;
#endif
	uint32_t step = idle - p->spins;
	long ns = step >= 6 ? AP_WATCH_MAX_SLEEP_NS : 1000L << step;
	if (ns > AP_WATCH_MAX_SLEEP_NS)
		ns = AP_WATCH_MAX_SLEEP_NS;
	struct timespec ts = { 0, ns };
	nanosleep(&ts, NULL);
}

/* ap_watch_main -- the watcher thread */
static void *
ap_watch_main(void *arg)
{
	struct ap_dev *d = arg;
	struct ap_portal *p = d->portal;
	uint32_t idle = 0, quiet = 0;
	/* its sleeps are microseconds: the default 50 us timer slack would
	 * stretch each to the slack, and a completion's notice with it */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	prctl(PR_SET_NAME, "ap-watch", 0, 0, 0);
	for (;;) {
		if (ap_reap(d, 1)) {
			idle = 0;
			continue;
		}
		if (atomic_load(&p->npend) != 0) {
			quiet = 0;
			ap_watch_wait(d, p, idle++);
			continue;
		}
		if (atomic_load(&p->stop))
			break;
		idle = 0;
		/* nothing in flight: spin a while (the next submission often
		 * follows a completion at once, and waking a sleeper costs
		 * more), then sleep until a submission (it bumps wake after
		 * npend, and wakes us if idle is set) */
		if (quiet++ < p->spins) {
			ap_pause();
			continue;
		}
		atomic_store(&p->idle, 1);
		uint32_t v = atomic_load(&p->wake);
		if (atomic_load(&p->npend) == 0 && !atomic_load(&p->stop)) {
			struct timespec ts = { 0, 200 * 1000 * 1000 };
			ap_futex(&p->wake, FUTEX_WAIT_PRIVATE, v, &ts);
		}
		atomic_store(&p->idle, 0);
		quiet = 0;
	}
	return NULL;
}

/* ap_watch_start -- start the watcher of a WQ */
int
ap_watch_start(struct ap_dev *d)
{
	struct ap_portal *p = d->portal;
	ap_pin_self();
	int rc = pthread_create(&p->watcher, NULL, ap_watch_main, d);
	if (rc)
		return ap_fail(-rc, "cannot start the completion watcher");
	p->watching = 1;
	return 0;
}

/* ap_watch_stop -- stop the watcher once nothing is in flight */
void
ap_watch_stop(struct ap_dev *d)
{
	struct ap_portal *p = d->portal;
	if (!p->watching)
		return;
	atomic_store(&p->stop, 1);
	atomic_fetch_add(&p->wake, 1);
	ap_futex(&p->wake, FUTEX_WAKE_PRIVATE, 1, NULL);
	if (atomic_load(&p->npend) != 0)
		atomic_store(&p->npend, 0); /* abandoned: leak_arena is set */
	pthread_join(p->watcher, NULL);
	p->watching = 0;
}
