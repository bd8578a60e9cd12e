/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * device.c -- the devices' lifecycle: allocate, start, stop and free a
 * software DSA device (a DSA WQ is allocated the same way, dsa_portal.c),
 * report its configuration, and the test hooks: fault injection and the
 * layout check against <linux/idxd.h>.
 *
 * Descriptors are DSA's 64-byte struct dsa_hw_desc, completion records DSA's
 * 32-byte struct dsa_completion_record (both from <linux/idxd.h>); building
 * and submitting them is dev_submit.c, the work queue dev_ring.c, the
 * engines dev_exec.c, waiting for completions dev_wait.c.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include "dsa.h"

/* ap_calibrate_spins -- pause iterations that take about AP_SPIN_NS */
static uint32_t
ap_calibrate_spins(void)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 2000; i++)
		ap_pause();
	clock_gettime(CLOCK_MONOTONIC, &b);
	long ns = (b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec);
	if (ns <= 0)
		ns = 1;
	uint64_t spins = (uint64_t)AP_SPIN_NS * 2000 / (uint64_t)ns;
	return spins < 64 ? 64 : spins > 1000000 ? 1000000 : (uint32_t)spins;
}

/* ap_pow2 -- is v a power of two */
static int
ap_pow2(uint32_t v)
{
	return v != 0 && (v & (v - 1)) == 0;
}

/* ap_cpu_has -- whether CPUID leaf 7.0 reports ECX bit `bit` */
int
ap_cpu_has(unsigned bit)
{
#if defined(__x86_64__)
	unsigned a, b, c, x;
	if (__get_cpuid_count(7, 0, &a, &b, &c, &x))
		return (c >> bit) & 1;
#else
	(void)bit;
#endif
	return 0;
}

/* ap_dev_free -- release what ap_dev_alloc allocated (threads joined) */
void
ap_dev_free(struct ap_dev *d)
{
	if (d->portal != NULL)
		ap_portal_free(d);
	if (d->tport != NULL)
		ap_tport_free(d);
	/* a DSA WQ's arena was mlock()ed, and a small one lies in the heap:
	 * freed locked, its pages would stay locked (a leaked arena is NULL) */
	if (d->records != NULL)
		munlock(d->records, (size_t)d->nrec * AP_RECORD_STRIDE +
			AP_CTRL_SIZE);
	free(d->ring);
	free(d->records);
	free(d->refs);
	free(d->lists);
	free(d->workers);
	free(d);
}

/*
 * ap_dev_alloc -- a device's memory: the record arena and its control
 * block, region references, batch lists, and -- for a software device
 * (nthreads > 0) -- the ring and the engines' slots. Nothing is started.
 */
int
ap_dev_alloc(struct ap_dev **out, uint32_t wq_size, uint32_t nrec,
	uint32_t nbatch, size_t max_xfer, uint32_t nthreads)
{
	struct ap_dev *d;
	if (posix_memalign((void **)&d, 64, sizeof(*d)))
		return ap_fail(-ENOMEM, "cannot allocate device");
	memset(d, 0, sizeof(*d));
	d->wq_size = wq_size;
	d->nthreads = nthreads;
	d->nrec = nrec;
	d->nbatch = nbatch;
	d->max_batch = AP_MAX_BATCH;
	d->max_xfer = max_xfer;
	d->gen_cap = AP_GEN_CAP_BOF | AP_GEN_CAP_OVERLAP | AP_GEN_CAP_CC_MEM |
		AP_GEN_CAP_DRDBK | (31ull << 16) | (10ull << 21);
	atomic_store(&d->fault_at, -1);
	d->spins = ap_calibrate_spins();
	d->movdir64b = ap_cpu_has(AP_CPU_MOVDIR64B);
	size_t rec_bytes = (size_t)nrec * AP_RECORD_STRIDE + AP_CTRL_SIZE;
	if ((nthreads && posix_memalign((void **)&d->ring, 64,
			sizeof(struct ap_slot) * wq_size)) ||
	    posix_memalign((void **)&d->records, 4096, rec_bytes) ||
	    posix_memalign((void **)&d->lists, 64, sizeof(struct dsa_hw_desc) *
			AP_MAX_BATCH * (nbatch ? nbatch : 1)) ||
	    (nthreads && posix_memalign((void **)&d->workers, 64,
			sizeof(struct ap_worker) * nthreads)) ||
	    (d->refs = calloc(nrec, sizeof(struct ap_refs))) == NULL) {
		ap_dev_free(d);
		return ap_fail(-ENOMEM, "cannot allocate device memory");
	}
	/* touch every page now: a device must never fault on a record or a
	 * list (a CR it cannot write is lost on DSA 1.0) */
	memset(d->records, 0, rec_bytes);
	memset(d->lists, 0, sizeof(struct dsa_hw_desc) * AP_MAX_BATCH *
		(nbatch ? nbatch : 1));
	if (nthreads) {
		memset(d->workers, 0, sizeof(struct ap_worker) * nthreads);
		for (uint32_t i = 0; i < wq_size; i++)
			atomic_store(&d->ring[i].seq, i);
	}
	*out = d;
	return 0;
}

/*
 * ap_pin_self -- keep this library mapped for the life of the process once
 * it runs threads: a runtime may unload the libraries of a finished module
 * (deno test drops each test file's), and a device left open would then
 * run its engines or watcher on unmapped code
 */
void
ap_pin_self(void)
{
	static _Atomic int pinned;
	Dl_info info;
	if (atomic_exchange(&pinned, 1) == 0 &&
			dladdr((void *)ap_pin_self, &info) && info.dli_fname)
		dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

/* ap_dev_start -- start a software device's engines */
int
ap_dev_start(struct ap_dev *d)
{
	ap_pin_self();
	for (uint32_t i = 0; i < d->nthreads; i++) {
		struct ap_worker *w = &d->workers[i];
		w->dev = d;
		atomic_store(&w->pos, AP_IDLE);
		int rc = pthread_create(&w->thread, NULL, ap_worker_main, w);
		if (rc)
			return ap_fail(-rc, "cannot start worker thread");
		w->started = 1;
	}
	return 0;
}

int
ap_dev_new(struct ap_dev **out, uint32_t nthreads, uint32_t wq_size,
	uint32_t nrec, uint32_t nbatch, double max_xfer)
{
	size_t mx;
	int rc = ap_to_size(max_xfer, &mx, "max_xfer");
	if (rc)
		return rc;
	if (nthreads == 0 || nthreads > 64 || !ap_pow2(wq_size) ||
			wq_size > 4096 || nrec == 0 || nrec > (1u << 20) ||
			nbatch > 4096 || mx == 0 || mx > UINT32_MAX)
		return ap_fail(AP_E_INVALID_ARG,
			"device: bad configuration (threads %u, wq %u, "
			"records %u, batches %u, max_xfer %zu)",
			nthreads, wq_size, nrec, nbatch, mx);
	struct ap_dev *d;
	if ((rc = ap_dev_alloc(&d, wq_size, nrec, nbatch, mx, nthreads)))
		return rc;
	if ((rc = ap_dev_start(d))) {
		ap_dev_delete(&d);
		return rc;
	}
	ap_thread_adopt_dev(d);
	*out = d;
	return 0;
}

int
ap_dev_stop(struct ap_dev *d)
{
	if (atomic_exchange(&d->stopping, 1) == 0) {
		/* a DSA WQ: wait for what it accepted, stop the watcher */
		if (d->portal != NULL)
			ap_portal_stop(d);
		atomic_fetch_add(&d->work, 1);
		ap_futex(&d->work, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
		for (uint32_t i = 0; i < d->nthreads; i++)
			if (d->workers[i].started) {
				pthread_join(d->workers[i].thread, NULL);
				d->workers[i].started = 0;
			}
		/* members of batches never submitted: drop their references */
		for (uint32_t i = 0; i < d->nrec; i++)
			ap_release_refs(&d->refs[i]);
	}
	/* wake blocked waiters and let them leave */
	atomic_fetch_add(ap_ctrl(d, AP_CTRL_SEQ), 1);
	while (atomic_load(ap_ctrl(d, AP_CTRL_WAITERS)) != 0) {
		ap_futex(ap_ctrl(d, AP_CTRL_SEQ), FUTEX_WAKE_PRIVATE, INT_MAX,
			NULL);
		sched_yield();
	}
	return 0;
}

/*
 * ap_dev_idle -- nothing accepted is left to run: on a DSA WQ (or a test
 * portal), no descriptor whose completion the watcher has not settled; on
 * the software device, none in the ring and no engine busy (in that
 * order: a descriptor taken from the ring has an engine's position)
 */
static int
ap_dev_idle(struct ap_dev *d)
{
	if (d->portal != NULL)
		return atomic_load(&d->portal->npend) == 0;
	if (atomic_load(&d->head) != atomic_load(&d->tail))
		return 0;
	for (uint32_t i = 0; i < d->nthreads; i++)
		if (atomic_load(&d->workers[i].pos) != AP_IDLE)
			return 0;
	return 1;
}

int
ap_dev_quiesce(struct ap_dev *d, double timeout_ms)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!ap_dev_idle(d)) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		double ms = (double)(now.tv_sec - start.tv_sec) * 1e3 +
			(double)(now.tv_nsec - start.tv_nsec) / 1e6;
		if (!(ms < timeout_ms))
			return ap_fail(-ETIMEDOUT, "quiesce: work still running "
				"after %g ms", timeout_ms);
		struct timespec ts = { 0, 100 * 1000 };
		nanosleep(&ts, NULL);
	}
	return 0;
}

void
ap_dev_delete(struct ap_dev **dev)
{
	if (dev == NULL || *dev == NULL)
		return;
	ap_thread_drop_dev(*dev);
	ap_dev_stop(*dev);
	ap_dev_free(*dev);
	*dev = NULL;
}

void *
ap_dev_records(struct ap_dev *dev)
{
	return dev->records;
}

int
ap_dev_info(struct ap_dev *d, double *out, uint32_t cap)
{
	if (out == NULL || cap < AP_DEV_INFO_FIELDS)
		return ap_fail(AP_E_INVALID_ARG, "device info needs %d fields",
			AP_DEV_INFO_FIELDS);
	out[0] = (double)d->gen_cap;
	out[1] = (double)d->max_xfer;
	out[2] = d->max_batch;
	out[3] = d->wq_size;
	out[4] = d->nthreads;
	out[5] = d->nrec;
	out[6] = d->nbatch;
	out[7] = (double)AP_OP_CAP;
	out[8] = (double)(uintptr_t)d->lists;
	out[9] = 0; /* submission: the ring */
	out[10] = 0; /* not a test portal */
	out[11] = 0; /* no portal mapping */
	if (d->portal != NULL)
		return ap_portal_info(d, out);
	return 0;
}

int
ap_dev_inject_fault(struct ap_dev *d, double at_byte, uint32_t status,
	uint32_t count)
{
	if (d->portal != NULL && (d = ap_portal_target(d)) == NULL)
		return ap_fail(-ENOTSUP, "faults can only be injected into the "
			"software device (or a test portal's)");
	if (at_byte < 0 || count == 0) {
		atomic_store(&d->fault_count, 0);
		atomic_store(&d->fault_at, -1);
		return 0;
	}
	size_t at;
	int rc = ap_to_size(at_byte, &at, "at_byte");
	if (rc)
		return rc;
	atomic_store(&d->fault_status, status & 0xff);
	atomic_store(&d->fault_at, (int64_t)at);
	atomic_store(&d->fault_count, count);
	return 0;
}

/* ap_dsa_layout -- offsets the TypeScript side hard-codes, for checking */
int
ap_dsa_layout(uint32_t *out, uint32_t cap)
{
	/* invalid_flags is a bit-field: find its first byte by probing */
	struct dsa_completion_record probe;
	memset(&probe, 0, sizeof(probe));
	probe.invalid_flags = 0xffffff;
	uint32_t inv = 0;
	while (inv < sizeof(probe) && ((uint8_t *)&probe)[inv] == 0)
		inv++;
	uint32_t v[] = {
		sizeof(struct dsa_hw_desc),
		offsetof(struct dsa_hw_desc, completion_addr),
		offsetof(struct dsa_hw_desc, src_addr),
		offsetof(struct dsa_hw_desc, dst_addr),
		offsetof(struct dsa_hw_desc, xfer_size),
		offsetof(struct dsa_hw_desc, int_handle),
		sizeof(struct dsa_completion_record),
		offsetof(struct dsa_completion_record, status),
		offsetof(struct dsa_completion_record, result),
		offsetof(struct dsa_completion_record, bytes_completed),
		offsetof(struct dsa_completion_record, fault_addr),
		inv,
		DSA_OPCODE_MEMMOVE, DSA_OPCODE_MEMFILL, DSA_OPCODE_CFLUSH,
		DSA_OPCODE_BATCH, DSA_OPCODE_NOOP, DSA_OPCODE_DRAIN,
		IDXD_OP_FLAG_CRAV, IDXD_OP_FLAG_RCR, IDXD_OP_FLAG_CC,
		IDXD_OP_FLAG_DRDBK, IDXD_OP_FLAG_FENCE,
		DSA_COMP_SUCCESS, DSA_COMP_PAGE_FAULT_NOBOF,
		DSA_COMP_BATCH_FAIL, DSA_COMP_STATUS_WRITE,
	};
	uint32_t n = sizeof(v) / sizeof(v[0]);
	for (uint32_t i = 0; i < n && i < cap; i++)
		out[i] = v[i];
	return (int)n;
}
