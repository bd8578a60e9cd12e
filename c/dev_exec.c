/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dev_exec.c -- the software device's engines: worker threads that take
 * descriptors off the work queue, validate them as a device decodes them,
 * execute MEMMOVE, MEMFILL, CFLUSH, NOOP, DRAIN and BATCH, and publish DSA
 * completion records: every other field first, the status byte last with
 * a release store. A sequence word in the control block after the records
 * is bumped after each publication; sleepers read it and cannot lose a
 * wake-up.
 *
 * Every descriptor's mapping references (taken when it was built) are
 * dropped when it finishes, whether or not it ran: a member a batch
 * abandons, or a batch the device rejects, must not keep a mapping from
 * being unmapped.
 *
 * As a test portal's WQ (dsa_test.c), the engines also execute a client
 * device's descriptors, whose records and lists lie in the client's
 * arena: those they write as DSA hardware would -- the record only. The
 * client holds the references and notices the completion itself.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include "device.h"

/*
 * ap_record -- the record at a completion address: one of the device's
 * own (its index in *idx), one of a test portal client's (*idx is
 * AP_FOREIGN), or NULL for any other address (CRA_XLAT: hardware writes
 * nothing there either)
 */
struct dsa_completion_record *
ap_record(struct ap_dev *d, uint64_t addr, uint32_t *idx)
{
	uintptr_t base = (uintptr_t)d->records;
	if (addr >= base && addr < base + (size_t)d->nrec * AP_RECORD_STRIDE &&
			(addr - base) % AP_RECORD_STRIDE == 0) {
		*idx = (uint32_t)((addr - base) / AP_RECORD_STRIDE);
		return (struct dsa_completion_record *)(uintptr_t)addr;
	}
	if (d->tport != NULL && addr % 32 == 0 &&
			ap_tport_owns(d, addr, 32)) {
		*idx = AP_FOREIGN;
		return (struct dsa_completion_record *)(uintptr_t)addr;
	}
	return NULL;
}

/* ap_release_refs -- drop a record's mapping references */
void
ap_release_refs(struct ap_refs *refs)
{
	ap_region_put(refs->dst);
	ap_region_put(refs->src);
	refs->dst = refs->src = NULL;
}

/* ap_refs_of -- the references of the descriptor completing into h's record */
static struct ap_refs *
ap_refs_of(struct ap_dev *d, const struct dsa_hw_desc *h)
{
	uint32_t idx;
	if (ap_record(d, h->completion_addr, &idx) == NULL ||
			idx == AP_FOREIGN)
		return NULL;
	return &d->refs[idx];
}

/*
 * ap_abandon -- members [from, to) of a batch list will never run: drop
 * their references (their records stay unwritten, as a device leaves them)
 */
void
ap_abandon(struct ap_dev *d, const struct dsa_hw_desc *list, uint32_t from,
	uint32_t to)
{
	for (uint32_t i = from; i < to; i++) {
		struct ap_refs *refs = ap_refs_of(d, &list[i]);
		if (refs != NULL)
			ap_release_refs(refs);
	}
}

/*
 * ap_list_in_arena -- a BATCH descriptor's member list when it lies in the
 * device's list arena (the only lists descriptors are built with), or a
 * test portal client's, with the member count clamped to it; NULL
 * otherwise
 */
const struct dsa_hw_desc *
ap_list_in_arena(struct ap_dev *d, const struct dsa_hw_desc *h, uint32_t *count)
{
	uintptr_t a = (uintptr_t)h->desc_list_addr;
	uintptr_t base = (uintptr_t)d->lists;
	size_t n = (size_t)(d->nbatch ? d->nbatch : 1) * AP_MAX_BATCH;
	if (d->tport != NULL && (a < base || a >= base + n * 64)) {
		/* a client's list: the member count is clamped by the WQ */
		uint32_t c = h->desc_count < AP_MAX_BATCH ? h->desc_count :
			AP_MAX_BATCH;
		if (a % 64 != 0 || !ap_tport_owns(d, a, (size_t)c * 64))
			return NULL;
		*count = c;
		return (const struct dsa_hw_desc *)a;
	}
	if (a < base || a % 64 != 0 || a >= base + n * 64)
		return NULL;
	size_t room = (base + n * 64 - a) / 64;
	uint32_t c = h->desc_count < AP_MAX_BATCH ? h->desc_count :
		AP_MAX_BATCH;
	*count = c < room ? c : (uint32_t)room;
	return (const struct dsa_hw_desc *)a;
}

/* ap_take_fault -- consume an injected fault that falls inside size */
static int
ap_take_fault(struct ap_dev *d, size_t size, size_t *at, uint8_t *status)
{
	int64_t f = atomic_load(&d->fault_at);
	if (f < 0 || (size_t)f >= size)
		return 0;
	uint32_t c = atomic_load(&d->fault_count);
	do {
		if (c == 0)
			return 0;
	} while (!atomic_compare_exchange_weak(&d->fault_count, &c, c - 1));
	*at = (size_t)f;
	*status = (uint8_t)atomic_load(&d->fault_status);
	return 1;
}

/*
 * ap_forward_fault -- for an operation that runs forward from dst: if an
 * injected fault falls inside it, record a partial completion and return
 * how many bytes to process; else return n
 */
static size_t
ap_forward_fault(struct ap_dev *d, char *dst, size_t n, struct ap_result *res)
{
	size_t at;
	uint8_t fst;
	if (!ap_take_fault(d, n, &at, &fst))
		return n;
	res->status = fst;
	res->bytes_completed = (uint32_t)at;
	res->fault_addr = (uint64_t)(uintptr_t)(dst + at);
	return at;
}

/* ap_make_durable -- persist a written range as DRDBK asks */
static int
ap_make_durable(struct ap_region *r, const void *addr, size_t len)
{
	if (r != NULL)
		return ap_map_sync(ap_region_map(r), addr, len);
	ap_cache_writeback(addr, len);
	return 0;
}

/* ap_exec_move -- MEMMOVE with partial completion on injected faults */
static void
ap_exec_move(struct ap_dev *d, const struct dsa_hw_desc *h,
	struct ap_refs *refs, struct ap_result *res)
{
	char *dst = (char *)(uintptr_t)h->dst_addr;
	const char *src = (const char *)(uintptr_t)h->src_addr;
	size_t n = h->xfer_size;
	int descending = dst > src && dst < src + n;
	int durable = (h->flags & IDXD_OP_FLAG_DRDBK) != 0;
	struct ap_region *r = refs ? refs->dst : NULL;
	size_t at;
	uint8_t fst;
	if (ap_take_fault(d, n, &at, &fst)) {
		/* the top of a descending copy, else the bottom */
		size_t from = descending ? n - at : 0;
		memmove(dst + from, src + from, at);
		res->status = fst;
		res->result = (uint8_t)descending;
		res->bytes_completed = (uint32_t)at;
		/* where it faulted: a write fault (bit 7) on the destination,
		 * a read fault on the source -- the byte after the done part */
		const char *side = (fst & DSA_COMP_STATUS_WRITE) ? dst : src;
		res->fault_addr = (uint64_t)(uintptr_t)(descending ?
			side + n - at - 1 : side + at);
		/* DRDBK: what it did write is durable before the record; the
		 * mover persists only the remainder it redoes */
		if (durable && ap_make_durable(r, dst + from, at) != 0)
			res->status = DSA_COMP_HW_ERR1;
		return;
	}
	struct ap_map *m = r ? ap_region_map(r) : NULL;
	if (durable && m != NULL && m->granularity != AP_GRAN_PAGE) {
		/* libpmem2's durable copy: non-temporal stores and a fence */
		m->memmove_fn(dst, src, n, 0);
		ap_map_note(m, dst, n, AP_NOTE_DURABLE);
		return;
	}
	if (!(h->flags & IDXD_OP_FLAG_CC) && !descending &&
			!(src < dst + n && dst < src + n))
		ap_stream_copy(dst, src, n); /* CC=0: write to memory */
	else
		memmove(dst, src, n);
	if (durable && ap_make_durable(r, dst, n) != 0)
		res->status = DSA_COMP_HW_ERR1;
}

/* ap_exec_fill -- MEMFILL with an 8-byte pattern */
static void
ap_exec_fill(struct ap_dev *d, const struct dsa_hw_desc *h,
	struct ap_refs *refs, struct ap_result *res)
{
	char *dst = (char *)(uintptr_t)h->dst_addr;
	size_t n = h->xfer_size;
	uint64_t pat = h->pattern;
	n = ap_forward_fault(d, dst, n, res);
	const uint8_t *p = (const uint8_t *)&pat;
	int uniform = 1;
	for (int i = 1; i < 8; i++)
		uniform &= p[i] == p[0];
	int durable = (h->flags & IDXD_OP_FLAG_DRDBK) != 0;
	struct ap_region *r = refs ? refs->dst : NULL;
	struct ap_map *m = r ? ap_region_map(r) : NULL;
	if (uniform && durable && m != NULL && m->granularity != AP_GRAN_PAGE) {
		m->memset_fn(dst, p[0], n, 0); /* durable itself */
		ap_map_note(m, dst, n, AP_NOTE_DURABLE);
		return;
	}
	if (uniform && !(h->flags & IDXD_OP_FLAG_CC))
		ap_stream_fill(dst, p[0], n); /* CC=0: write to memory */
	else if (uniform)
		memset(dst, p[0], n);
	else
		for (size_t i = 0; i < n; i++)
			dst[i] = (char)p[i % 8];
	if (durable && ap_make_durable(r, dst, n) != 0)
		res->status = DSA_COMP_HW_ERR1;
}

/* ap_exec_flush -- CFLUSH: write back lines (msync inside PAGE mappings) */
static void
ap_exec_flush(struct ap_dev *d, const struct dsa_hw_desc *h,
	struct ap_refs *refs, struct ap_result *res)
{
	char *dst = (char *)(uintptr_t)h->dst_addr;
	size_t n = h->xfer_size;
	n = ap_forward_fault(d, dst, n, res);
	if (ap_make_durable(refs ? refs->dst : NULL, dst, n) != 0)
		res->status = DSA_COMP_HW_ERR1;
}

static void ap_execute(struct ap_dev *d, struct ap_worker *w,
	const struct dsa_hw_desc *h, int in_batch, struct ap_result *res);

/*
 * ap_publish -- finish a descriptor: drop its references, then write its
 * record when it asks for one (fields first, the status byte last)
 */
static void
ap_publish(struct ap_dev *d, const struct dsa_hw_desc *h,
	const struct ap_result *res)
{
	uint32_t idx;
	struct dsa_completion_record *cr = ap_record(d, h->completion_addr,
		&idx);
	if (cr == NULL)
		return; /* CRA_XLAT: hardware writes nothing either */
	if (idx != AP_FOREIGN)
		ap_release_refs(&d->refs[idx]);
	if (!(h->flags & IDXD_OP_FLAG_CRAV))
		return;
	if (!(h->flags & IDXD_OP_FLAG_RCR) && res->status == DSA_COMP_SUCCESS)
		return;
	cr->result = res->result;
	cr->bytes_completed = res->bytes_completed;
	cr->fault_addr = res->fault_addr;
	if (res->status == DSA_COMP_INVALID_FLAGS)
		cr->invalid_flags = res->invalid_flags;
	__atomic_store_n(&cr->status, res->status, __ATOMIC_RELEASE);
}

/* ap_validate -- the decode checks of a real device, first failure wins */
static int
ap_validate(struct ap_dev *d, const struct dsa_hw_desc *h, int in_batch,
	struct ap_result *res)
{
	if (h->rsvd || h->rsvd1 || (h->flags & (1u << 6))) {
		res->status = DSA_COMP_NOZERO_RESERVE;
		return 0;
	}
	if (h->priv) {
		res->status = DSA_COMP_PRIV_BAD;
		return 0;
	}
	if (h->opcode >= 64 || !(AP_OP_CAP & (1ull << h->opcode)) ||
			(in_batch && (h->opcode == DSA_OPCODE_BATCH ||
			h->opcode == DSA_OPCODE_DRAIN))) {
		res->status = DSA_COMP_BAD_OPCODE;
		return 0;
	}
	uint32_t bad = h->flags & (IDXD_OP_FLAG_RCI | IDXD_OP_FLAG_BOF |
		IDXD_OP_FLAG_CRSTS | 0x1e00u /* TCS */ | 0xff0000u);
	if (h->opcode == DSA_OPCODE_CFLUSH)
		bad |= h->flags & IDXD_OP_FLAG_CC; /* GENCAP bit 3 is 0 */
	if (!in_batch)
		bad |= h->flags & IDXD_OP_FLAG_FENCE;
	if (bad) {
		res->status = DSA_COMP_INVALID_FLAGS;
		res->invalid_flags = bad;
		return 0;
	}
	if (h->opcode == DSA_OPCODE_BATCH) {
		if (h->desc_count < 2 || h->desc_count > d->max_batch) {
			res->status = DSA_COMP_DESC_CNT_ERANGE;
			return 0;
		}
		if (h->desc_list_addr % 64) {
			res->status = DSA_COMP_DESCLIST_ALIGN;
			return 0;
		}
	} else if (h->xfer_size > d->max_xfer) {
		res->status = DSA_COMP_XFER_ERANGE;
		return 0;
	} else if (h->opcode == DSA_OPCODE_MEMMOVE &&
			!(d->gen_cap & AP_GEN_CAP_OVERLAP) &&
			h->src_addr < h->dst_addr + h->xfer_size &&
			h->dst_addr < h->src_addr + h->xfer_size) {
		/* a device without GENCAP bit 1 copies no overlapping ranges */
		res->status = DSA_COMP_OVERLAP_BUFFERS;
		return 0;
	}
	return 1;
}

/* ap_exec_batch -- members in order; FENCE after a failure abandons */
static void
ap_exec_batch(struct ap_dev *d, struct ap_worker *w,
	const struct dsa_hw_desc *h, struct ap_result *res)
{
	uint32_t count;
	const struct dsa_hw_desc *list = ap_list_in_arena(d, h, &count);
	if (list == NULL || count < h->desc_count) {
		/* a list it cannot read: what a fault on the list reports */
		res->status = DSA_COMP_BATCH_PAGE_FAULT;
		res->fault_addr = h->desc_list_addr;
		return;
	}
	uint32_t done = 0;
	int failed = 0;
	for (uint32_t i = 0; i < h->desc_count; i++) {
		struct dsa_hw_desc m;
		memcpy(&m, &list[i], sizeof(m));
		if (failed && (m.flags & IDXD_OP_FLAG_FENCE)) {
			ap_abandon(d, list, i, h->desc_count);
			break;
		}
		struct ap_result r = { .status = DSA_COMP_SUCCESS };
		ap_execute(d, w, &m, 1, &r);
		ap_publish(d, &m, &r);
		if (r.status != DSA_COMP_SUCCESS)
			failed = 1;
		done++;
	}
	res->status = failed ? DSA_COMP_BATCH_FAIL : DSA_COMP_SUCCESS;
	res->result = (uint8_t)failed;
	res->bytes_completed = done; /* descs_completed */
}

/* ap_exec_drain -- wait for every descriptor accepted before this one */
static void
ap_exec_drain(struct ap_dev *d, struct ap_worker *self, uint64_t pos)
{
	for (uint32_t i = 0; i < d->nthreads; i++) {
		struct ap_worker *w = &d->workers[i];
		if (w == self)
			continue;
		while (atomic_load(&w->pos) < pos)
			ap_pause();
	}
}

/* ap_execute -- validate and run one descriptor */
static void
ap_execute(struct ap_dev *d, struct ap_worker *w, const struct dsa_hw_desc *h,
	int in_batch, struct ap_result *res)
{
	if (!ap_validate(d, h, in_batch, res)) {
		uint32_t count;
		const struct dsa_hw_desc *list;
		if (h->opcode == DSA_OPCODE_BATCH && !in_batch &&
				(list = ap_list_in_arena(d, h, &count)) != NULL)
			ap_abandon(d, list, 0, count); /* a rejected batch */
		return;
	}
	struct ap_refs *refs = ap_refs_of(d, h);
	switch (h->opcode) {
	case DSA_OPCODE_NOOP:
		break;
	case DSA_OPCODE_MEMMOVE:
		ap_exec_move(d, h, refs, res);
		break;
	case DSA_OPCODE_MEMFILL:
		ap_exec_fill(d, h, refs, res);
		break;
	case DSA_OPCODE_CFLUSH:
		ap_exec_flush(d, h, refs, res);
		break;
	case DSA_OPCODE_BATCH:
		ap_exec_batch(d, w, h, res);
		break;
	case DSA_OPCODE_DRAIN:
		ap_exec_drain(d, w, atomic_load(&w->pos));
		break;
	}
}

/*
 * ap_signal -- after a publication: bump the sequence, wake, ring. The
 * engines call it for their own records; a DSA WQ's watcher for each
 * completion it notices.
 */
void
ap_signal(struct ap_dev *d)
{
	uint32_t now = atomic_fetch_add_explicit(ap_ctrl(d, AP_CTRL_SEQ), 1,
		memory_order_seq_cst) + 1;
	if (atomic_load(ap_ctrl(d, AP_CTRL_WAITERS)) != 0 &&
			(int32_t)(now - atomic_load(ap_ctrl(d, AP_CTRL_WAKE_AT))) >= 0)
		ap_futex(ap_ctrl(d, AP_CTRL_SEQ), FUTEX_WAKE_PRIVATE, INT_MAX,
			NULL);
	/* ARMED holds the sequence to ring the doorbell at (0: disarmed) */
	uint32_t armed = atomic_load(ap_ctrl(d, AP_CTRL_ARMED));
	if (armed != 0 && (int32_t)(now - armed) >= 0 &&
			atomic_compare_exchange_strong(ap_ctrl(d, AP_CTRL_ARMED),
				&armed, 0)) {
		void (*fn)(void) = atomic_load(&d->doorbell);
		if (fn != NULL)
			fn();
	}
}

/* ap_worker_main -- an engine: dequeue, execute, publish; sleep when idle */
void *
ap_worker_main(void *arg)
{
	struct ap_worker *w = arg;
	struct ap_dev *d = w->dev;
	struct dsa_hw_desc h;
	unsigned idle = 0;
	/* named, so that a profile or ps -L tells the engines apart */
	prctl(PR_SET_NAME, "ap-engine", 0, 0, 0);
	for (;;) {
		if (d->tport != NULL)
			ap_tport_drain(d); /* what a test portal's client sent */
		if (ap_dequeue(d, w, &h)) {
			idle = 0;
			struct ap_result res = { .status = DSA_COMP_SUCCESS };
			ap_execute(d, w, &h, 0, &res);
			ap_publish(d, &h, &res);
			atomic_store(&w->pos, AP_IDLE);
			ap_signal(d);
			continue;
		}
		if (atomic_load(&d->stopping))
			break;
		if (++idle < d->spins) {
			ap_pause();
			continue;
		}
		atomic_fetch_add(&d->sleepers, 1);
		uint32_t v = atomic_load(&d->work);
		uint64_t head = atomic_load(&d->head);
		uint64_t tail = atomic_load(&d->tail);
		if (head == tail && !atomic_load(&d->stopping) &&
				(d->tport == NULL || ap_tport_idle(d))) {
			struct timespec ts = { 0, 200 * 1000 * 1000 };
			ap_futex(&d->work, FUTEX_WAIT_PRIVATE, v, &ts);
		}
		atomic_fetch_sub(&d->sleepers, 1);
		idle = d->spins / 2;
	}
	return NULL;
}
