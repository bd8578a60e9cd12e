/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * device.c -- the software DSA device's API: create and stop a device,
 * build descriptors from checked arguments (the one descriptor builder),
 * submit them singly or as a BATCH, and wait for completions.
 *
 * Descriptors are DSA's 64-byte struct dsa_hw_desc, completion records DSA's
 * 32-byte struct dsa_completion_record (both from <linux/idxd.h>); the work
 * queue is in dev_ring.c, the engines in dev_exec.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include "device.h"

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

/* ap_dev_free -- release what ap_dev_new allocated (workers joined) */
static void
ap_dev_free(struct ap_dev *d)
{
	free(d->ring);
	free(d->records);
	free(d->refs);
	free(d->lists);
	free(d->workers);
	free(d);
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
	if (posix_memalign((void **)&d, 64, sizeof(*d)))
		return ap_fail(-ENOMEM, "cannot allocate device");
	memset(d, 0, sizeof(*d));
	d->wq_size = wq_size;
	d->nthreads = nthreads;
	d->nrec = nrec;
	d->nbatch = nbatch;
	d->max_xfer = mx;
	d->gen_cap = AP_GEN_CAP_BOF | AP_GEN_CAP_OVERLAP | AP_GEN_CAP_CC_MEM |
		AP_GEN_CAP_DRDBK | (31ull << 16) | (10ull << 21);
	atomic_store(&d->fault_at, -1);
	d->spins = ap_calibrate_spins();
#if defined(__x86_64__)
	unsigned a, b, c, x;
	if (__get_cpuid_count(7, 0, &a, &b, &c, &x))
		d->movdir64b = (c >> 28) & 1;
#endif
	size_t rec_bytes = (size_t)nrec * AP_RECORD_STRIDE + AP_CTRL_SIZE;
	if (posix_memalign((void **)&d->ring, 64, sizeof(struct ap_slot) *
			wq_size) ||
	    posix_memalign((void **)&d->records, 4096, rec_bytes) ||
	    posix_memalign((void **)&d->lists, 64, sizeof(struct dsa_hw_desc) *
			AP_MAX_BATCH * (nbatch ? nbatch : 1)) ||
	    posix_memalign((void **)&d->workers, 64,
			sizeof(struct ap_worker) * nthreads) ||
	    (d->refs = calloc(nrec, sizeof(struct ap_refs))) == NULL) {
		ap_dev_free(d);
		return ap_fail(-ENOMEM, "cannot allocate device memory");
	}
	memset(d->records, 0, rec_bytes);
	memset(d->workers, 0, sizeof(struct ap_worker) * nthreads);
	for (uint32_t i = 0; i < wq_size; i++)
		atomic_store(&d->ring[i].seq, i);
	for (uint32_t i = 0; i < nthreads; i++) {
		struct ap_worker *w = &d->workers[i];
		w->dev = d;
		atomic_store(&w->pos, AP_IDLE);
		if ((rc = pthread_create(&w->thread, NULL, ap_worker_main, w))) {
			rc = ap_fail(-rc, "cannot start worker thread");
			ap_dev_delete(&d);
			return rc;
		}
		w->started = 1;
	}
	*out = d;
	return 0;
}

int
ap_dev_stop(struct ap_dev *d)
{
	if (atomic_exchange(&d->stopping, 1) == 0) {
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

void
ap_dev_delete(struct ap_dev **dev)
{
	if (dev == NULL || *dev == NULL)
		return;
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
	out[2] = AP_MAX_BATCH;
	out[3] = d->wq_size;
	out[4] = d->nthreads;
	out[5] = d->nrec;
	out[6] = d->nbatch;
	out[7] = (double)AP_OP_CAP;
	out[8] = (double)(uintptr_t)d->lists;
	return 0;
}

/* a buffer argument: base, its byte length, and an offset into it */
struct ap_buf {
	char *base;
	size_t len;
	size_t off;
};

/* ap_buf_arg -- check a (base, length, offset) triple from JavaScript */
static int
ap_buf_arg(struct ap_buf *b, const void *base, double len, double off,
	const char *name)
{
	int rc = ap_to_size(len, &b->len, name);
	if (rc || (rc = ap_to_size(off, &b->off, name)))
		return rc;
	b->base = (char *)base;
	return 0;
}

/*
 * ap_build -- fill a descriptor from checked arguments (every check first),
 * then take region references into refs (dropped when the descriptor
 * finishes). The one builder of descriptors: single submissions and batch
 * members come through it.
 */
static int
ap_build(struct ap_dev *d, struct dsa_hw_desc *h, uint32_t rec,
	uint32_t opcode, uint32_t flags, const struct ap_buf *dst,
	const struct ap_buf *src, double len, uint32_t c)
{
	size_t n;
	int rc = ap_to_size(len, &n, "length");
	if (rc)
		return rc;
	if (rec >= d->nrec)
		return ap_fail(AP_E_INVALID_ARG, "record %u out of range", rec);
	if (n > UINT32_MAX)
		return ap_fail(AP_E_INVALID_ARG, "transfer of %zu bytes > 4 GiB",
			n);
	if (opcode != DSA_OPCODE_MEMMOVE && opcode != DSA_OPCODE_MEMFILL &&
			opcode != DSA_OPCODE_CFLUSH && opcode != DSA_OPCODE_NOOP &&
			opcode != DSA_OPCODE_DRAIN)
		return ap_fail(AP_E_INVALID_ARG, "opcode 0x%x not submittable",
			opcode);
	if (flags & ~0xffffffu)
		return ap_fail(AP_E_INVALID_ARG, "flags 0x%x exceed 24 bits",
			flags);
	if (opcode == DSA_OPCODE_MEMFILL && c > 255)
		return ap_fail(AP_E_INVALID_ARG, "fill value %u > 255", c);
	int moves = opcode == DSA_OPCODE_MEMMOVE;
	int touches = moves || opcode == DSA_OPCODE_MEMFILL ||
		opcode == DSA_OPCODE_CFLUSH;
	if (touches && (dst->base == NULL || (moves && src->base == NULL)))
		return ap_fail(AP_E_INVALID_ARG, "missing buffer");
	if (touches && (rc = ap_range(dst->off, n, dst->len, "destination")))
		return rc;
	if (moves && (rc = ap_range(src->off, n, src->len, "source")))
		return rc;
	struct ap_refs *refs = &d->refs[rec];
	if (refs->dst != NULL || refs->src != NULL)
		return ap_fail(AP_E_BUSY, "record %u is still in use", rec);
	memset(h, 0, sizeof(*h));
	h->opcode = opcode;
	h->flags = flags | IDXD_OP_FLAG_CRAV | IDXD_OP_FLAG_RCR;
	h->completion_addr = (uint64_t)(uintptr_t)(d->records +
		(size_t)rec * AP_RECORD_STRIDE);
	if (!touches)
		return 0;
	char *dp = dst->base + dst->off;
	h->dst_addr = (uint64_t)(uintptr_t)dp;
	h->xfer_size = (uint32_t)n;
	if (opcode == DSA_OPCODE_MEMFILL)
		h->pattern = 0x0101010101010101ull * c;
	refs->dst = ap_region_get(dp, n, &rc);
	if (rc == 0 && refs->dst != NULL)
		rc = ap_map_access(ap_region_map(refs->dst), opcode ==
			DSA_OPCODE_CFLUSH ? PMEM2_PROT_READ : PMEM2_PROT_WRITE,
			"destination");
	if (rc == 0 && moves) {
		const char *sp = src->base + src->off;
		h->src_addr = (uint64_t)(uintptr_t)sp;
		refs->src = ap_region_get(sp, n, &rc);
		if (rc == 0 && refs->src != NULL)
			rc = ap_map_access(ap_region_map(refs->src),
				PMEM2_PROT_READ, "source");
	}
	if (rc)
		ap_release_refs(refs);
	return rc;
}

/* ap_clear_record -- zero a record before (re)submission */
static void
ap_clear_record(struct ap_dev *d, uint32_t rec)
{
	memset(d->records + (size_t)rec * AP_RECORD_STRIDE, 0, 32);
}

int
ap_dev_submit(struct ap_dev *d, uint32_t rec, uint32_t opcode,
	uint32_t flags, void *dst, double dst_len, double dst_off,
	const void *src, double src_len, double src_off, double len,
	uint32_t c)
{
	if (atomic_load(&d->stopping))
		return ap_fail(AP_E_CLOSED, "device is closed");
	struct ap_buf db, sb;
	int rc = ap_buf_arg(&db, dst, dst_len, dst_off, "destination");
	if (rc || (rc = ap_buf_arg(&sb, src, src_len, src_off, "source")))
		return rc;
	struct dsa_hw_desc h __attribute__((aligned(64)));
	if ((rc = ap_build(d, &h, rec, opcode, flags, &db, &sb, len, c)))
		return rc;
	ap_clear_record(d, rec);
	rc = ap_enqueue(d, &h);
	if (rc) {
		ap_release_refs(&d->refs[rec]);
		return ap_fail(rc, "work queue is full");
	}
	return 0;
}

int
ap_dev_batch_set(struct ap_dev *d, uint32_t list, uint32_t idx, uint32_t rec,
	uint32_t opcode, uint32_t flags, void *dst, double dst_len,
	double dst_off, const void *src, double src_len, double src_off,
	double len, uint32_t c)
{
	if (list >= d->nbatch || idx >= AP_MAX_BATCH)
		return ap_fail(AP_E_INVALID_ARG, "batch slot %u/%u out of range",
			list, idx);
	if (opcode == DSA_OPCODE_DRAIN)
		return ap_fail(AP_E_INVALID_ARG, "DRAIN cannot be batched");
	struct ap_buf db, sb;
	int rc = ap_buf_arg(&db, dst, dst_len, dst_off, "destination");
	if (rc || (rc = ap_buf_arg(&sb, src, src_len, src_off, "source")))
		return rc;
	struct dsa_hw_desc h;
	if ((rc = ap_build(d, &h, rec, opcode, flags & ~IDXD_OP_FLAG_FENCE,
			&db, &sb, len, c)))
		return rc;
	h.flags |= flags & IDXD_OP_FLAG_FENCE;
	ap_clear_record(d, rec);
	d->lists[(size_t)list * AP_MAX_BATCH + idx] = h;
	return 0;
}

int
ap_dev_release(struct ap_dev *d, uint32_t rec)
{
	if (rec >= d->nrec)
		return ap_fail(AP_E_INVALID_ARG, "record %u out of range", rec);
	ap_release_refs(&d->refs[rec]);
	return 0;
}

int
ap_dev_batch_submit(struct ap_dev *d, uint32_t rec, uint32_t list,
	uint32_t count)
{
	if (atomic_load(&d->stopping))
		return ap_fail(AP_E_CLOSED, "device is closed");
	if (list >= d->nbatch || rec >= d->nrec || count > AP_MAX_BATCH)
		return ap_fail(AP_E_INVALID_ARG, "batch %u, record %u or count "
			"%u out of range", list, rec, count);
	struct dsa_hw_desc h __attribute__((aligned(64)));
	memset(&h, 0, sizeof(h));
	h.opcode = DSA_OPCODE_BATCH;
	h.flags = IDXD_OP_FLAG_CRAV | IDXD_OP_FLAG_RCR;
	h.completion_addr = (uint64_t)(uintptr_t)(d->records +
		(size_t)rec * AP_RECORD_STRIDE);
	h.desc_list_addr = (uint64_t)(uintptr_t)&d->lists[(size_t)list *
		AP_MAX_BATCH];
	h.desc_count = count;
	ap_clear_record(d, rec);
	int rc = ap_enqueue(d, &h);
	if (rc)
		return ap_fail(rc, "work queue is full");
	return 0;
}

/*
 * ap_raw_refs -- take the references of a raw descriptor's buffers, which
 * must lie in live mappings (nothing else can be checked of a raw address)
 */
static int
ap_raw_refs(struct ap_dev *d, const struct dsa_hw_desc *h, struct ap_refs *r)
{
	int rc = 0;
	switch (h->opcode) {
	case DSA_OPCODE_MEMMOVE:
		r->src = ap_region_get((void *)(uintptr_t)h->src_addr,
			h->xfer_size, &rc);
		if (rc == 0 && r->src == NULL)
			rc = ap_fail(AP_E_RANGE, "source lies in no mapping");
		if (rc == 0)
			rc = ap_map_access(ap_region_map(r->src),
				PMEM2_PROT_READ, "source");
		if (rc)
			break;
		/* fallthrough */
	case DSA_OPCODE_MEMFILL:
	case DSA_OPCODE_CFLUSH:
		r->dst = ap_region_get((void *)(uintptr_t)h->dst_addr,
			h->xfer_size, &rc);
		if (rc == 0 && r->dst == NULL)
			rc = ap_fail(AP_E_RANGE, "destination lies in no mapping");
		if (rc == 0)
			rc = ap_map_access(ap_region_map(r->dst), h->opcode ==
				DSA_OPCODE_CFLUSH ? PMEM2_PROT_READ :
				PMEM2_PROT_WRITE, "destination");
		break;
	case DSA_OPCODE_BATCH: {
		/* the engine reads the members: they must be the device's own
		 * (alignment is the engine's check, DESCLIST_ALIGN) */
		uintptr_t a = (uintptr_t)h->desc_list_addr;
		uintptr_t base = (uintptr_t)d->lists;
		size_t room = (size_t)(d->nbatch ? d->nbatch : 1) *
			AP_MAX_BATCH * sizeof(struct dsa_hw_desc);
		uint32_t n = h->desc_count < AP_MAX_BATCH ? h->desc_count :
			AP_MAX_BATCH;
		if (a < base || a - base > room ||
				(size_t)n * sizeof(struct dsa_hw_desc) >
				room - (a - base))
			rc = ap_fail(AP_E_RANGE, "descriptor list lies outside "
				"the device's list arena");
		break;
	}
	}
	if (rc)
		ap_release_refs(r);
	return rc;
}

int
ap_dev_submit_raw(struct ap_dev *d, uint32_t rec, const void *desc,
	double desc_len)
{
	if (atomic_load(&d->stopping))
		return ap_fail(AP_E_CLOSED, "device is closed");
	if (desc == NULL || desc_len != (double)sizeof(struct dsa_hw_desc))
		return ap_fail(AP_E_INVALID_ARG, "a descriptor is %zu bytes",
			sizeof(struct dsa_hw_desc));
	if (rec >= d->nrec)
		return ap_fail(AP_E_INVALID_ARG, "record %u out of range", rec);
	struct ap_refs *refs = &d->refs[rec];
	if (refs->dst != NULL || refs->src != NULL)
		return ap_fail(AP_E_BUSY, "record %u is still in use", rec);
	struct dsa_hw_desc h __attribute__((aligned(64)));
	memcpy(&h, desc, sizeof(h));
	h.completion_addr = (uint64_t)(uintptr_t)(d->records +
		(size_t)rec * AP_RECORD_STRIDE);
	int rc = ap_raw_refs(d, &h, refs);
	if (rc)
		return rc;
	ap_clear_record(d, rec);
	rc = ap_enqueue(d, &h);
	if (rc) {
		ap_release_refs(refs);
		return ap_fail(rc, "work queue is full");
	}
	return 0;
}

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

int
ap_dev_inject_fault(struct ap_dev *d, double at_byte, uint32_t status,
	uint32_t count)
{
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
