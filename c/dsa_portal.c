/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dsa_portal.c -- a DSA work queue as a device: open the WQ's character
 * device, map its portal, and send descriptors there instead of into the
 * software device's ring. Everything else -- the record arena, the one
 * descriptor builder, region references, the completion sequence -- is
 * the software device's (device.c); noticing completions is dsa_watch.c.
 *
 * Submission, as the kernel and Intel's libraries do it (reference
 * dsa.md 3.3-3.4):
 * - dedicated WQ: SFENCE, MOVDIR64B to the portal at a rotating 64-byte
 *   offset. Posted, so the WQ cannot say it is full: a credit per
 *   descriptor (a BATCH is one), returned when its completion is noticed,
 *   keeps what is outstanding within the WQ's size.
 * - shared WQ: SFENCE, ENQCMD; ZF=1 means retry. A few immediate retries
 *   with a growing PAUSE backoff; then, if descriptors of ours are in
 *   flight, -EAGAIN (wait for one to complete, as for a full queue), else
 *   -EBUSY: others keep the WQ full, so the caller backs off in its event
 *   loop and finishes on the CPU after a bound.
 * - write(2) on the WQ's file, where the portal cannot be mapped (since
 *   the CVE-2024-21823 fix, mapping needs CAP_SYS_RAWIO): one syscall per
 *   descriptor; kernels with that fix refuse BATCH there, so none is sent.
 *   A shared WQ's EAGAIN (the kernel's ENQCMDS retries ran out) is
 *   answered as ENQCMD's retries are.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "dsa.h"

/*
 * ap_enqcmd -- SFENCE, then ENQCMD: a non-posted 64-byte store to a shared
 * WQ's portal, which inserts the process's PASID. Returns 1 when the WQ
 * answered retry (ZF=1), 0 when it accepted the descriptor. Bits 31:0 of
 * the descriptor (PASID, priv) must be 0; the builder leaves them so.
 */
static int
ap_enqcmd(void *portal, const void *desc)
{
#if defined(__x86_64__)
	uint8_t retry;
	__asm__ volatile("sfence\n\tenqcmd (%2), %1\n\tsetz %0"
		: "=q"(retry)
		: "r"(portal), "r"(desc)
		: "memory", "cc");
	return retry;
#else
	(void)portal;
	(void)desc;
	return 1;
#endif
}

/* ap_slot_next -- the next 64-byte offset of the portal page */
static char *
ap_slot_next(struct ap_portal *p)
{
	uint64_t n = atomic_fetch_add_explicit(&p->next, 1,
		memory_order_relaxed);
	return p->page + (n % AP_PORTAL_SLOTS) * 64;
}

/* ap_backoff -- spin 64 << i PAUSEs between tries */
static void
ap_backoff(unsigned i)
{
	for (uint32_t k = 0; k < (64u << i); k++)
		ap_pause();
}

/*
 * ap_full_answer -- a shared WQ stayed full past our retries (ENQCMD's,
 * or the kernel's ENQCMDS retries behind write(2)): with descriptors of
 * ours in flight, our own load may fill it -- wait for a completion
 * (-EAGAIN); with none, others keep it full (-EBUSY). Settle what
 * completed first: the watcher may lag.
 */
static int
ap_full_answer(struct ap_dev *d, struct ap_portal *p)
{
	/* read before the reap: ours that completed during it were what
	 * filled the WQ, and left room for the next try */
	uint32_t ours = atomic_load(&p->npend);
	ap_reap(d, 0);
	if (ours > 1 || atomic_load(&p->npend) > 1)
		return -EAGAIN;
	atomic_fetch_add(&p->count[AP_DSA_BUSY], 1);
	return -EBUSY;
}

/* ap_write_desc -- the write(2) path: one descriptor per 64 bytes */
static int
ap_write_desc(struct ap_dev *d, struct ap_portal *p,
	const struct dsa_hw_desc *h)
{
	if (h->opcode == DSA_OPCODE_BATCH)
		return ap_fail(AP_E_INVALID_ARG, "a BATCH cannot go through "
			"write(2): kernels with the CVE-2024-21823 fix refuse it");
	for (;;) {
		ssize_t n = p->target != NULL ?
			ap_tport_write(p->target, p->fd, h) :
			write(p->fd, h, sizeof(*h));
		if (n == (ssize_t)sizeof(*h))
			return 0;
		if (n >= 0)
			return ap_fail(-EIO, "write(2) to the WQ took %zd of 64 "
				"bytes", n);
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) /* the kernel's ENQCMDS retries ran out */
			return p->shared ? ap_full_answer(d, p) : -EAGAIN;
		int e = errno;
		return ap_fail(-e, "write(2) to the WQ failed: %s%s",
			strerror(e), e == EPERM ? " (a process other than the "
			"opener: the WQ must be opened again after fork)" : "");
	}
}

/* ap_store -- put one descriptor into the WQ; 0, -EAGAIN or -EBUSY */
static int
ap_store(struct ap_dev *d, struct ap_portal *p, const struct dsa_hw_desc *h)
{
	int rc = 0;
	switch (p->kind) {
	case AP_SUBMIT_DWQ:
		if (p->target != NULL) /* a test portal: maybe no MOVDIR64B */
			ap_tport_store(d, ap_slot_next(p), h);
		else
			ap_movdir64b(ap_slot_next(p), h);
		break;
	case AP_SUBMIT_SWQ:
		for (unsigned i = 0;; i++) {
			void *slot = ap_slot_next(p);
			int retry = p->target != NULL ?
				ap_tport_enqcmd(p->target, slot, h) :
				ap_enqcmd(slot, h);
			if (!retry)
				break;
			atomic_fetch_add(&p->count[AP_DSA_RETRIES], 1);
			/* full with ours in flight: only one of their
			 * completions makes room, and the backoff would spin
			 * the caller's thread meanwhile -- answer "wait" now */
			if (i + 1 == AP_ENQ_TRIES ||
					atomic_load(&p->npend) > 1)
				return ap_full_answer(d, p);
			ap_backoff(i);
		}
		break;
	case AP_SUBMIT_WRITE:
		rc = ap_write_desc(d, p, h);
		break;
	}
	if (rc == 0 && p->target != NULL)
		ap_tport_kick(p->target); /* a test portal's only addition */
	return rc;
}

/* ap_take_credit -- one descriptor more may go to a dedicated WQ */
static int
ap_take_credit(struct ap_portal *p)
{
	int32_t c = atomic_load(&p->credits);
	do {
		if (c <= 0)
			return 0;
	} while (!atomic_compare_exchange_weak(&p->credits, &c, c - 1));
	return 1;
}

/*
 * ap_portal_send -- send a built descriptor completing into record rec.
 * The record is announced to the watcher first, so its completion can
 * never precede the announcement; a refused send takes it back (its
 * status is still 0, so the watcher cannot have claimed it).
 */
int
ap_portal_send(struct ap_dev *d, const struct dsa_hw_desc *h, uint32_t rec)
{
	struct ap_portal *p = d->portal;
	const struct dsa_hw_desc *list = NULL;
	uint32_t count = 0;
	if (h->opcode == DSA_OPCODE_BATCH)
		list = ap_list_in_arena(d, h, &count);
	if (p->credited && !ap_take_credit(p)) {
		atomic_fetch_add(&p->count[AP_DSA_CREDIT_WAITS], 1);
		return -EAGAIN;
	}
	p->lists[rec] = list;
	p->counts[rec] = count;
	ap_batch_mark(d, list, count, 1);
	atomic_store(&p->pend[rec], 1);
	uint32_t hi = atomic_load(&p->hi);
	while (rec >= hi && !atomic_compare_exchange_weak(&p->hi, &hi, rec + 1))
		;
	atomic_fetch_add(&p->npend, 1);
	int rc = ap_store(d, p, h);
	if (rc) {
		if (atomic_exchange(&p->pend[rec], 0))
			atomic_fetch_sub(&p->npend, 1);
		ap_batch_mark(d, list, count, -1);
		p->lists[rec] = NULL;
		if (p->credited)
			atomic_fetch_add(&p->credits, 1);
		return rc;
	}
	atomic_fetch_add(&p->count[AP_DSA_SENT], 1);
	/* wake an idle watcher (it checks npend after announcing idleness) */
	atomic_fetch_add(&p->wake, 1);
	if (atomic_load(&p->idle))
		ap_futex(&p->wake, FUTEX_WAKE_PRIVATE, 1, NULL);
	return 0;
}

/* ap_portal_target -- a test portal's software WQ (fault injection) */
struct ap_dev *
ap_portal_target(struct ap_dev *d)
{
	return d->portal->target;
}

/*
 * ap_portal_new -- make d a DSA WQ: descriptors go to page (a portal, or
 * a test portal's page) or to fd with write(2). Starts nothing.
 */
int
ap_portal_new(struct ap_dev *d, int kind, int fd, char *page, int mapped,
	uint32_t engines, struct ap_dev *target)
{
	struct ap_portal *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return ap_fail(-ENOMEM, "cannot allocate the portal");
	p->nlists = d->nbatch ? d->nbatch : 1;
	p->pend = calloc(d->nrec, sizeof(*p->pend));
	p->lists = calloc(d->nrec, sizeof(*p->lists));
	p->counts = calloc(d->nrec, sizeof(*p->counts));
	p->owner = calloc(d->nrec, sizeof(*p->owner));
	p->list_pend = calloc(p->nlists, sizeof(*p->list_pend));
	if (p->pend == NULL || p->lists == NULL || p->counts == NULL ||
			p->owner == NULL || p->list_pend == NULL) {
		free(p->pend);
		free(p->lists);
		free(p->counts);
		free(p->owner);
		free(p->list_pend);
		free(p);
		return ap_fail(-ENOMEM, "cannot allocate the portal");
	}
	p->kind = kind;
	p->shared = kind == AP_SUBMIT_SWQ;
	p->credited = !p->shared;
	atomic_store(&p->credits, (int32_t)d->wq_size);
	p->fd = fd;
	p->owns_fd = target == NULL;
	p->page = page;
	p->mapped = mapped;
	p->engines = engines;
	p->target = target;
	p->waitpkg = ap_cpu_has(AP_CPU_WAITPKG);
	p->spins = d->spins;
	pthread_mutex_init(&p->reap_lock, NULL);
	d->portal = p;
	return 0;
}

/* ap_portal_info -- ap_dev_info's fields a WQ reports differently */
int
ap_portal_info(struct ap_dev *d, double *out)
{
	struct ap_portal *p = d->portal;
	out[4] = p->engines;
	out[9] = p->kind;
	out[10] = p->target != NULL;
	out[11] = p->mapped;
	return 0;
}

/* ap_now_ms -- CLOCK_MONOTONIC in milliseconds */
static long long
ap_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

/*
 * ap_portal_stop -- no more submissions (stopping is set): wait for every
 * descriptor in flight, then stop the watcher. Hardware that has not
 * written a record after 5 s (a CR it could not write on DSA 1.0, or a
 * descriptor a dedicated WQ dropped) is drained by closing the WQ's file;
 * a test portal's WQ is stopped. Records still claimed after that are
 * never freed: the device may yet write them.
 */
void
ap_portal_stop(struct ap_dev *d)
{
	struct ap_portal *p = d->portal;
	long long end = ap_now_ms() + 5000;
	while (atomic_load(&p->npend) != 0 && ap_now_ms() < end) {
		struct timespec ts = { 0, 100000 };
		nanosleep(&ts, NULL);
	}
	if (atomic_load(&p->npend) != 0) {
		if (p->page != NULL && p->mapped)
			munmap(p->page, AP_PORTAL_SIZE);
		if (p->mapped)
			p->page = NULL;
		if (p->owns_fd && p->fd >= 0) {
			close(p->fd); /* the kernel drains the WQ (or PASID) */
			p->fd = -1;
		}
		if (p->target != NULL) /* its engines finish what they hold */
			ap_dev_stop(p->target);
		ap_reap(d, 0);
		if (atomic_load(&p->npend) != 0)
			p->leak_arena = 1;
	}
	ap_watch_stop(d);
	ap_reap(d, 0);
	if (p->target != NULL) {
		ap_dev_delete(&p->target); /* nothing of ours is left in it */
		p->target = NULL;
	}
}

/* ap_portal_free -- unmap the portal, close the WQ, free the tables */
void
ap_portal_free(struct ap_dev *d)
{
	struct ap_portal *p = d->portal;
	if (p->target != NULL)
		ap_dev_delete(&p->target);
	if (p->page != NULL && p->mapped)
		munmap(p->page, AP_PORTAL_SIZE);
	if (p->fd >= 0 && p->owns_fd)
		close(p->fd);
	if (p->leak_arena) {
		/* the device may still write these: never reuse them */
		d->records = NULL;
		d->lists = NULL;
	}
	pthread_mutex_destroy(&p->reap_lock);
	free(p->pend);
	free(p->lists);
	free(p->counts);
	free(p->owner);
	free(p->list_pend);
	free(p);
	d->portal = NULL;
}

/* ap_wq_open_error -- the reason an open(2) of a WQ failed */
static int
ap_wq_open_error(const char *path, int e)
{
	switch (e) {
	case EACCES:
	case EPERM:
		return ap_fail(-e, "no permission on %s: %s (an administrator "
			"grants it: chown/chmod the device, or a udev rule)", path,
			strerror(e));
	case EBUSY:
		return ap_fail(-e, "%s is a dedicated WQ that another process "
			"has open", path);
	case ENOENT:
	case ENODEV:
	case ENXIO:
		return ap_fail(-e, "%s does not exist: the WQ is not enabled "
			"as a user WQ", path);
	default:
		return ap_fail(-e, "cannot open %s: %s", path, strerror(e));
	}
}

/*
 * ap_write_probe -- whether write(2) submission works: a NOOP into record
 * 0, polled for up to 100 ms (DTO probes the same way)
 */
static int
ap_write_probe(struct ap_dev *d, int fd, const char *path)
{
	struct dsa_hw_desc h __attribute__((aligned(64)));
	memset(&h, 0, sizeof(h));
	h.opcode = DSA_OPCODE_NOOP;
	h.flags = IDXD_OP_FLAG_CRAV | IDXD_OP_FLAG_RCR;
	h.completion_addr = (uint64_t)(uintptr_t)d->records;
	memset(d->records, 0, 32);
	ap_sfence();
	if (write(fd, &h, sizeof(h)) != (ssize_t)sizeof(h))
		return ap_fail(-errno, "%s: the portal cannot be mapped and "
			"write(2) refuses descriptors too: %s", path,
			strerror(errno));
	long long end = ap_now_ms() + 100;
	while (__atomic_load_n((uint8_t *)d->records, __ATOMIC_ACQUIRE) == 0) {
		if (ap_now_ms() > end)
			return ap_fail(-ETIMEDOUT, "%s: a NOOP sent with write(2) "
				"did not complete within 100 ms", path);
		ap_pause();
	}
	uint8_t st = *(uint8_t *)d->records & 0x7f;
	memset(d->records, 0, 32);
	if (st != DSA_COMP_SUCCESS)
		return ap_fail(-EIO, "%s: a NOOP sent with write(2) completed "
			"with status 0x%x", path, st);
	return 0;
}

int
ap_dsa_open(struct ap_dev **out, const char *path, double path_len,
	uint32_t shared, uint32_t wq_size, uint32_t max_batch,
	double max_xfer, double gen_cap, uint32_t engines, uint32_t nrec,
	uint32_t nbatch, uint32_t flags)
{
	size_t mx, gc;
	int rc = ap_path_arg(path, path_len);
	if (rc || (rc = ap_to_size(max_xfer, &mx, "max_xfer")) ||
			(rc = ap_to_size(gen_cap, &gc, "gen_cap")))
		return rc;
	if (out == NULL || wq_size == 0 || wq_size > 4096 || nrec == 0 ||
			nrec > (1u << 20) || nbatch > 4096 || mx == 0 ||
			mx > UINT32_MAX || (flags & ~AP_DSA_WRITE_ONLY))
		return ap_fail(AP_E_INVALID_ARG, "dsa: bad configuration (wq %u, "
			"records %u, batches %u, max_xfer %zu, flags 0x%x)",
			wq_size, nrec, nbatch, mx, flags);
	int instr = ap_cpu_has(shared ? AP_CPU_ENQCMD : AP_CPU_MOVDIR64B);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return ap_wq_open_error(path, errno);
	char *page = NULL;
	const char *why = "";
	if (flags & AP_DSA_WRITE_ONLY)
		why = "write(2) asked for";
	else if (!instr)
		why = shared ? "no ENQCMD on this CPU" : "no MOVDIR64B on this CPU";
	else {
		void *m = mmap(NULL, AP_PORTAL_SIZE, PROT_WRITE,
			MAP_SHARED | MAP_POPULATE, fd, 0);
		if (m != MAP_FAILED)
			page = m;
		else
			why = errno == EPERM ? "mapping needs CAP_SYS_RAWIO" :
				strerror(errno);
	}
	struct ap_dev *d;
	if ((rc = ap_dev_alloc(&d, wq_size, nrec, nbatch, mx, 0))) {
		if (page != NULL)
			munmap(page, AP_PORTAL_SIZE);
		close(fd);
		return rc;
	}
	d->gen_cap = gc;
	d->max_batch = page == NULL ? 0 : max_batch < AP_MAX_BATCH ?
		max_batch : AP_MAX_BATCH;
	/* resident records: a fault on a CR loses it on DSA 1.0 (a fault on
	 * a batch list is reported, status 0x06, and handled) */
	mlock(d->records, (size_t)nrec * AP_RECORD_STRIDE + AP_CTRL_SIZE);
	if (page == NULL && (rc = ap_write_probe(d, fd, path)) != 0) {
		ap_fail(rc, "%s: cannot submit: no portal (%s), and write(2) "
			"failed", path, why);
		close(fd);
		ap_dev_free(d);
		return rc;
	}
	int kind = page == NULL ? AP_SUBMIT_WRITE : shared ? AP_SUBMIT_SWQ :
		AP_SUBMIT_DWQ;
	if ((rc = ap_portal_new(d, kind, fd, page, page != NULL, engines,
			NULL))) {
		if (page != NULL)
			munmap(page, AP_PORTAL_SIZE);
		close(fd);
		ap_dev_free(d);
		return rc;
	}
	d->portal->shared = shared != 0;
	d->portal->credited = !shared;
	if ((rc = ap_watch_start(d))) {
		ap_dev_free(d);
		return rc;
	}
	ap_thread_adopt_dev(d);
	*out = d;
	return 0;
}
