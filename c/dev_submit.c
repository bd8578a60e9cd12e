/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dev_submit.c -- building descriptors from checked arguments (the one
 * descriptor builder, for the software device and DSA hardware alike) and
 * submitting them, singly or as a BATCH, to wherever the device sends
 * them (ap_send: the software device's ring, or a DSA WQ's portal).
 * Every address a descriptor carries was checked here against the length
 * of the buffer it came with, and the descriptor holds a reference on
 * each mapping its buffers lie in until it finishes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include "dsa.h"

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
 * ap_rec_busy -- whether record rec still belongs to a descriptor: it
 * holds mapping references, or (on a DSA WQ) the watcher has not yet
 * settled its completion, or that of a BATCH it is a member of. A record
 * JavaScript reuses has completed (or its batch has), so on a DSA WQ one
 * reap settles it (the watcher may just be slower). The pending marks are
 * read first: the watcher clears them after dropping the references.
 */
static int
ap_rec_busy(struct ap_dev *d, uint32_t rec)
{
	for (int reaped = 0;; reaped = 1) {
		int busy = d->portal != NULL && ap_rec_pending(d, rec);
		struct ap_refs *r = &d->refs[rec];
		busy = busy || r->dst != NULL || r->src != NULL;
		if (!busy || d->portal == NULL || reaped)
			return busy;
		ap_reap_ready(d);
	}
}

/*
 * ap_list_busy -- whether a BATCH in flight on a DSA WQ still reads batch
 * list `list` (its completion not yet settled: one reap settles it once
 * its record is written). The software device's engines are done with a
 * list before they write the batch's record.
 */
static int
ap_list_busy(struct ap_dev *d, uint32_t list)
{
	if (d->portal == NULL || !ap_list_pending(d, list))
		return 0;
	ap_reap_ready(d);
	return ap_list_pending(d, list);
}

/*
 * ap_build -- fill a descriptor from checked arguments (every check first),
 * then take region references into refs (dropped when the descriptor
 * finishes). The one builder of descriptors: single submissions and batch
 * members, for the software device and DSA hardware, come through it.
 *
 * Flags the device's GENCAP does not offer are dropped (CC without bit 2,
 * DRDBK without bit 8), as a device would refuse them with 0x11. Returns
 * 1 when the caller must then persist the destination itself once the
 * descriptor completed: a DSA WQ cannot msync, so neither its readback
 * nor its CFLUSH makes a page-granularity mapping durable, and without
 * DRDBK nothing does. Else 0, or a negative code.
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
	if (ap_rec_busy(d, rec))
		return ap_fail(AP_E_BUSY, "record %u is still in use", rec);
	int persist = 0;
	if ((flags & IDXD_OP_FLAG_DRDBK) && !(d->gen_cap & AP_GEN_CAP_DRDBK)) {
		flags &= ~IDXD_OP_FLAG_DRDBK;
		persist = 1;
	}
	if ((flags & IDXD_OP_FLAG_CC) && (opcode == DSA_OPCODE_CFLUSH ?
			!(d->gen_cap & AP_GEN_CAP_CC_FLUSH) :
			!(d->gen_cap & AP_GEN_CAP_CC_MEM)))
		flags &= ~IDXD_OP_FLAG_CC;
	struct ap_refs *refs = &d->refs[rec];
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
	if (rc) {
		ap_release_refs(refs);
		return rc;
	}
	if (d->portal != NULL && refs->dst != NULL && (opcode ==
			DSA_OPCODE_CFLUSH || (flags & IDXD_OP_FLAG_DRDBK)) &&
			ap_region_map(refs->dst)->granularity == AP_GRAN_PAGE) {
		/* the caller msyncs afterwards: a readback buys nothing */
		h->flags &= ~IDXD_OP_FLAG_DRDBK;
		persist = 1;
	}
	return persist;
}

/* ap_clear_record -- zero a record before (re)submission */
static void
ap_clear_record(struct ap_dev *d, uint32_t rec)
{
	memset(d->records + (size_t)rec * AP_RECORD_STRIDE, 0, 32);
}

/*
 * ap_send -- hand a built descriptor to the device: the software device's
 * ring, or a DSA WQ's portal (the only place the two differ). On failure
 * nothing was queued: -EAGAIN when the queue is full (or a dedicated WQ
 * has no credit left), -EBUSY when a shared WQ kept answering "retry".
 */
static int
ap_send(struct ap_dev *d, const struct dsa_hw_desc *h, uint32_t rec)
{
	int rc = d->portal != NULL ? ap_portal_send(d, h, rec) :
		ap_enqueue(d, h);
	if (rc == -EAGAIN)
		return ap_fail(rc, "work queue is full");
	if (rc == -EBUSY)
		return ap_fail(rc, "shared work queue is busy (it kept "
			"answering retry)");
	return rc; /* 0, or a code whose message is set */
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
	int persist = ap_build(d, &h, rec, opcode, flags, &db, &sb, len, c);
	if (persist < 0)
		return persist;
	ap_clear_record(d, rec);
	if ((rc = ap_send(d, &h, rec))) {
		ap_release_refs(&d->refs[rec]);
		return rc;
	}
	return persist;
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
	if (ap_list_busy(d, list))
		return ap_fail(AP_E_BUSY, "batch list %u is still in use", list);
	struct ap_buf db, sb;
	int rc = ap_buf_arg(&db, dst, dst_len, dst_off, "destination");
	if (rc || (rc = ap_buf_arg(&sb, src, src_len, src_off, "source")))
		return rc;
	struct dsa_hw_desc h;
	int persist = ap_build(d, &h, rec, opcode, flags & ~IDXD_OP_FLAG_FENCE,
		&db, &sb, len, c);
	if (persist < 0)
		return persist;
	h.flags |= flags & IDXD_OP_FLAG_FENCE;
	ap_clear_record(d, rec);
	d->lists[(size_t)list * AP_MAX_BATCH + idx] = h;
	return persist;
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
ap_dev_touch(struct ap_dev *d, uint32_t rec, void *dst, double dst_len,
	const void *src, double src_len)
{
	size_t dl, sl;
	int rc = ap_to_size(dst_len, &dl, "destination length");
	if (rc || (rc = ap_to_size(src_len, &sl, "source length")))
		return rc;
	if (rec >= d->nrec)
		return ap_fail(AP_E_INVALID_ARG, "record %u out of range", rec);
	const struct dsa_completion_record *cr = (const void *)(d->records +
		(size_t)rec * AP_RECORD_STRIDE);
	uint8_t status = __atomic_load_n(&cr->status, __ATOMIC_ACQUIRE);
	if ((status & 0x7f) != DSA_COMP_PAGE_FAULT_NOBOF)
		return ap_fail(AP_E_INVALID_ARG, "record %u holds no page fault "
			"(status 0x%x)", rec, status);
	uintptr_t a = (uintptr_t)cr->fault_addr;
	uintptr_t db = (uintptr_t)dst, sb = (uintptr_t)src;
	int in_dst = dst != NULL && a >= db && a - db < dl;
	int in_src = src != NULL && a >= sb && a - sb < sl;
	if (!in_dst && !in_src)
		return 0; /* not ours to touch: finish on the CPU */
	if ((status & DSA_COMP_STATUS_WRITE) && in_dst)
		__atomic_fetch_add((char *)a, 0, __ATOMIC_RELAXED);
	else
		(void)*(volatile const char *)a;
	return 1;
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
	if (ap_rec_busy(d, rec))
		return ap_fail(AP_E_BUSY, "record %u is still in use", rec);
	if (ap_list_busy(d, list))
		return ap_fail(AP_E_BUSY, "batch list %u is still in use", list);
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
	return ap_send(d, &h, rec);
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
	if (ap_rec_busy(d, rec))
		return ap_fail(AP_E_BUSY, "record %u is still in use", rec);
	struct ap_refs *refs = &d->refs[rec];
	struct dsa_hw_desc h __attribute__((aligned(64)));
	memcpy(&h, desc, sizeof(h));
	h.completion_addr = (uint64_t)(uintptr_t)(d->records +
		(size_t)rec * AP_RECORD_STRIDE);
	/* a WQ's completions are noticed only by their records: one that
	 * succeeded without writing its record would keep the record, and
	 * a dedicated WQ's credit, for good */
	if (d->portal != NULL && (h.flags & (IDXD_OP_FLAG_CRAV |
			IDXD_OP_FLAG_RCR)) != (IDXD_OP_FLAG_CRAV |
			IDXD_OP_FLAG_RCR))
		return ap_fail(AP_E_INVALID_ARG, "a descriptor sent to a DSA "
			"work queue must set CRAV and RCR (flags 0x%x)",
			(unsigned)h.flags);
	int rc = ap_raw_refs(d, &h, refs);
	if (rc)
		return rc;
	ap_clear_record(d, rec);
	if ((rc = ap_send(d, &h, rec)))
		ap_release_refs(refs);
	return rc;
}
