/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * device.c -- a software DSA device.
 *
 * Descriptors are DSA's 64-byte struct dsa_hw_desc, completion records DSA's
 * 32-byte struct dsa_completion_record (both from <linux/idxd.h>). A
 * submitter builds the descriptor, zeroes the record, reserves a slot of a
 * bounded multi-producer/multi-consumer ring (the work queue) and stores the
 * descriptor with MOVDIR64B where the CPU has it -- the same instruction a
 * dedicated hardware WQ takes. Worker threads (the engines) execute MEMMOVE,
 * MEMFILL, CFLUSH, NOOP, DRAIN and BATCH, then publish the record: every other
 * field first, the status byte last with a release store. A sequence word in
 * the control block after the records is bumped after each publication;
 * JavaScript reads it to sleep without losing a wake-up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <linux/idxd.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif
#include "internal.h"

_Static_assert(sizeof(struct dsa_hw_desc) == 64, "descriptor size");
_Static_assert(sizeof(struct dsa_completion_record) == 32, "record size");

/* capabilities this model advertises (SPR values, see reference dsa.md) */
#define AP_GEN_CAP_BOF (1ull << 0)
#define AP_GEN_CAP_OVERLAP (1ull << 1)
#define AP_GEN_CAP_CC_MEM (1ull << 2)
#define AP_GEN_CAP_DRDBK (1ull << 8)
#define AP_OP_CAP ((1ull << DSA_OPCODE_NOOP) | (1ull << DSA_OPCODE_BATCH) | \
	(1ull << DSA_OPCODE_DRAIN) | (1ull << DSA_OPCODE_MEMMOVE) | \
	(1ull << DSA_OPCODE_MEMFILL) | (1ull << DSA_OPCODE_CFLUSH))
#define AP_MAX_BATCH 32u
#define AP_SPIN_NS 20000 /* how long an idle worker spins before sleeping */
#define AP_IDLE (~0ull)

struct ap_slot {
	_Atomic uint64_t seq;
	char pad[56];
	struct dsa_hw_desc desc;
} __attribute__((aligned(64)));

/* regions referenced by the descriptor completing into each record */
struct ap_refs {
	struct ap_region *dst;
	struct ap_region *src;
};

struct ap_worker {
	struct ap_dev *dev;
	pthread_t thread;
	_Atomic uint64_t pos; /* ring position being executed, or AP_IDLE */
	int started;
} __attribute__((aligned(64)));

struct ap_dev {
	_Atomic uint64_t tail __attribute__((aligned(64)));
	_Atomic uint64_t head __attribute__((aligned(64)));
	_Atomic uint32_t work __attribute__((aligned(64)));
	_Atomic uint32_t sleepers;
	_Atomic uint32_t stopping;
	_Atomic int64_t fault_at;
	_Atomic uint32_t fault_status;
	_Atomic uint32_t fault_count;
	void (*_Atomic doorbell)(void);
	uint32_t wq_size, nthreads, nrec, nbatch;
	uint32_t spins; /* pause iterations in AP_SPIN_NS, calibrated */
	size_t max_xfer;
	uint64_t gen_cap;
	int movdir64b;
	struct ap_slot *ring;
	char *records; /* nrec * AP_RECORD_STRIDE, then AP_CTRL_SIZE */
	struct ap_refs *refs;
	struct dsa_hw_desc *lists; /* nbatch * AP_MAX_BATCH descriptors */
	struct ap_worker *workers;
};

/* ap_futex -- thin futex(2) wrapper on a 32-bit word */
static long
ap_futex(_Atomic uint32_t *w, int op, uint32_t val,
	const struct timespec *ts)
{
	return syscall(SYS_futex, (uint32_t *)w, op, val, ts, NULL, 0);
}

static inline void
ap_pause(void)
{
#if defined(__x86_64__)
	_mm_pause();
#endif
}

static _Atomic uint32_t *
ap_ctrl(struct ap_dev *d, unsigned off)
{
	return (_Atomic uint32_t *)(d->records + (size_t)d->nrec *
		AP_RECORD_STRIDE + off);
}

/* ap_store64 -- store a descriptor into a 64-B aligned slot */
static void
ap_store64(struct ap_dev *d, void *dst, const void *src)
{
#if defined(__x86_64__)
	if (d->movdir64b) {
		__asm__ volatile("sfence\n\tmovdir64b (%1), %0\n\tsfence"
			:
			: "r"(dst), "r"(src)
			: "memory");
		return;
	}
#endif
	memcpy(dst, src, 64);
}

/* ap_enqueue -- reserve a slot and store the descriptor; -EAGAIN if full */
static int
ap_enqueue(struct ap_dev *d, const struct dsa_hw_desc *desc)
{
	uint64_t mask = d->wq_size - 1;
	uint64_t pos = atomic_load_explicit(&d->tail, memory_order_relaxed);
	struct ap_slot *s;
	for (;;) {
		s = &d->ring[pos & mask];
		uint64_t seq = atomic_load_explicit(&s->seq,
			memory_order_acquire);
		int64_t diff = (int64_t)(seq - pos);
		if (diff == 0) {
			if (atomic_compare_exchange_weak(&d->tail, &pos,
					pos + 1))
				break;
		} else if (diff < 0) {
			return -EAGAIN;
		} else {
			pos = atomic_load_explicit(&d->tail,
				memory_order_relaxed);
		}
	}
	ap_store64(d, &s->desc, desc);
	atomic_store_explicit(&s->seq, pos + 1, memory_order_release);
	atomic_fetch_add(&d->work, 1);
	if (atomic_load(&d->sleepers) != 0)
		ap_futex(&d->work, FUTEX_WAKE_PRIVATE, 1, NULL);
	return 0;
}

/* ap_dequeue -- take the oldest descriptor; 0 when the ring is empty */
static int
ap_dequeue(struct ap_dev *d, struct ap_worker *w, struct dsa_hw_desc *out)
{
	uint64_t mask = d->wq_size - 1;
	uint64_t pos = atomic_load_explicit(&d->head, memory_order_relaxed);
	for (;;) {
		struct ap_slot *s = &d->ring[pos & mask];
		uint64_t seq = atomic_load_explicit(&s->seq,
			memory_order_acquire);
		int64_t diff = (int64_t)(seq - (pos + 1));
		if (diff == 0) {
			/* announce before claiming, so DRAIN never misses it */
			atomic_store(&w->pos, pos);
			if (atomic_compare_exchange_weak(&d->head, &pos,
					pos + 1)) {
				memcpy(out, &s->desc, sizeof(*out));
				atomic_store_explicit(&s->seq, pos + mask + 1,
					memory_order_release);
				return 1;
			}
		} else if (diff < 0) {
			atomic_store(&w->pos, AP_IDLE);
			return 0;
		} else {
			pos = atomic_load_explicit(&d->head,
				memory_order_relaxed);
		}
	}
}

/* ap_record -- the record at a completion address, or NULL if foreign */
static struct dsa_completion_record *
ap_record(struct ap_dev *d, uint64_t addr, uint32_t *idx)
{
	uintptr_t base = (uintptr_t)d->records;
	if (addr < base || addr >= base + (size_t)d->nrec * AP_RECORD_STRIDE ||
			(addr - base) % AP_RECORD_STRIDE != 0)
		return NULL;
	*idx = (uint32_t)((addr - base) / AP_RECORD_STRIDE);
	return (struct dsa_completion_record *)addr;
}

struct ap_result {
	uint8_t status;
	uint8_t result;
	uint32_t bytes_completed;
	uint64_t fault_addr;
	uint32_t invalid_flags;
};

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
	size_t at;
	uint8_t fst;
	if (ap_take_fault(d, n, &at, &fst)) {
		if (descending)
			memmove(dst + n - at, src + n - at, at);
		else
			memmove(dst, src, at);
		res->status = fst;
		res->result = (uint8_t)descending;
		res->bytes_completed = (uint32_t)at;
		res->fault_addr = (uint64_t)(uintptr_t)(descending ?
			dst + n - at - 1 : dst + at);
		return;
	}
	int durable = (h->flags & IDXD_OP_FLAG_DRDBK) != 0;
	struct ap_region *r = refs ? refs->dst : NULL;
	struct ap_map *m = r ? ap_region_map(r) : NULL;
	if (durable && m != NULL && m->granularity != AP_GRAN_PAGE) {
		/* libpmem2's durable copy: non-temporal stores and a fence */
		m->memmove_fn(dst, src, n, 0);
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
		return;
	}
	if (uniform)
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

/* ap_publish -- write a record: fields first, the status byte last */
static void
ap_publish(struct ap_dev *d, const struct dsa_hw_desc *h,
	const struct ap_result *res)
{
	if (!(h->flags & IDXD_OP_FLAG_CRAV))
		return;
	if (!(h->flags & IDXD_OP_FLAG_RCR) && res->status == DSA_COMP_SUCCESS)
		return;
	uint32_t idx;
	struct dsa_completion_record *cr = ap_record(d, h->completion_addr,
		&idx);
	if (cr == NULL)
		return; /* CRA_XLAT: hardware writes nothing either */
	struct ap_refs *refs = &d->refs[idx];
	ap_region_put(refs->dst);
	ap_region_put(refs->src);
	refs->dst = refs->src = NULL;
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
		if (h->desc_count < 2 || h->desc_count > AP_MAX_BATCH) {
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
	}
	return 1;
}

/* ap_exec_batch -- members in order; FENCE after a failure abandons */
static void
ap_exec_batch(struct ap_dev *d, struct ap_worker *w,
	const struct dsa_hw_desc *h, struct ap_result *res)
{
	const struct dsa_hw_desc *list =
		(const struct dsa_hw_desc *)(uintptr_t)h->desc_list_addr;
	uint32_t done = 0;
	int failed = 0;
	for (uint32_t i = 0; i < h->desc_count; i++) {
		struct dsa_hw_desc m;
		memcpy(&m, &list[i], sizeof(m));
		if (failed && (m.flags & IDXD_OP_FLAG_FENCE))
			break;
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
	if (!ap_validate(d, h, in_batch, res))
		return;
	uint32_t idx;
	struct ap_refs *refs = NULL;
	if (ap_record(d, h->completion_addr, &idx) != NULL)
		refs = &d->refs[idx];
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

/* ap_signal -- after a publication: bump the sequence, wake, ring */
static void
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
static void *
ap_worker_main(void *arg)
{
	struct ap_worker *w = arg;
	struct ap_dev *d = w->dev;
	struct dsa_hw_desc h;
	unsigned idle = 0;
	for (;;) {
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
		if (head == tail && !atomic_load(&d->stopping)) {
			struct timespec ts = { 0, 200 * 1000 * 1000 };
			ap_futex(&d->work, FUTEX_WAIT_PRIVATE, v, &ts);
		}
		atomic_fetch_sub(&d->sleepers, 1);
		idle = d->spins / 2;
	}
	return NULL;
}

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
		for (uint32_t i = 0; i < d->nrec; i++) {
			ap_region_put(d->refs[i].dst);
			ap_region_put(d->refs[i].src);
			d->refs[i].dst = d->refs[i].src = NULL;
		}
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
ap_dev_info(struct ap_dev *d, double *out)
{
	out[0] = (double)d->gen_cap;
	out[1] = (double)d->max_xfer;
	out[2] = AP_MAX_BATCH;
	out[3] = d->wq_size;
	out[4] = d->nthreads;
	out[5] = d->nrec;
	out[6] = d->nbatch;
	out[7] = (double)AP_OP_CAP;
	return 0;
}

/*
 * ap_build -- fill a descriptor from checked arguments; takes region
 * references into refs (released when the record is published)
 */
static int
ap_build(struct ap_dev *d, struct dsa_hw_desc *h, struct ap_refs *refs,
	uint32_t rec, uint32_t opcode, uint32_t flags, void *dst,
	double dst_off, const void *src, double src_off, double len,
	uint32_t c)
{
	size_t doff, soff, n;
	int rc = ap_to_size(dst_off, &doff, "dst offset");
	if (rc || (rc = ap_to_size(src_off, &soff, "src offset")) ||
			(rc = ap_to_size(len, &n, "length")))
		return rc;
	if (rec >= d->nrec)
		return ap_fail(AP_E_INVALID_ARG, "record %u out of range", rec);
	if (n > UINT32_MAX)
		return ap_fail(AP_E_INVALID_ARG, "transfer of %zu bytes > 4 GiB",
			n);
	if (opcode != DSA_OPCODE_MEMMOVE && opcode != DSA_OPCODE_MEMFILL &&
			opcode != DSA_OPCODE_CFLUSH && opcode != DSA_OPCODE_NOOP)
		return ap_fail(AP_E_INVALID_ARG, "opcode 0x%x not submittable",
			opcode);
	if (flags & ~0xffffffu)
		return ap_fail(AP_E_INVALID_ARG, "flags 0x%x exceed 24 bits",
			flags);
	if (refs->dst != NULL || refs->src != NULL)
		return ap_fail(AP_E_BUSY, "record %u is still in use", rec);
	memset(h, 0, sizeof(*h));
	h->opcode = opcode;
	h->flags = flags | IDXD_OP_FLAG_CRAV | IDXD_OP_FLAG_RCR;
	h->completion_addr = (uint64_t)(uintptr_t)(d->records +
		(size_t)rec * AP_RECORD_STRIDE);
	if (opcode == DSA_OPCODE_NOOP)
		return 0;
	if (dst == NULL || (opcode == DSA_OPCODE_MEMMOVE && src == NULL))
		return ap_fail(AP_E_INVALID_ARG, "missing buffer");
	char *dp = (char *)dst + doff;
	h->dst_addr = (uint64_t)(uintptr_t)dp;
	h->xfer_size = (uint32_t)n;
	refs->dst = ap_region_get(dp, n, &rc);
	if (rc)
		return rc;
	if (opcode == DSA_OPCODE_MEMMOVE) {
		const char *sp = (const char *)src + soff;
		h->src_addr = (uint64_t)(uintptr_t)sp;
		refs->src = ap_region_get(sp, n, &rc);
		if (rc) {
			ap_region_put(refs->dst);
			refs->dst = NULL;
			return rc;
		}
	} else if (opcode == DSA_OPCODE_MEMFILL) {
		if (c > 255)
			return ap_fail(AP_E_INVALID_ARG, "fill value %u > 255",
				c);
		h->pattern = 0x0101010101010101ull * c;
	}
	return 0;
}

/* ap_clear_record -- zero a record before (re)submission */
static void
ap_clear_record(struct ap_dev *d, uint32_t rec)
{
	memset(d->records + (size_t)rec * AP_RECORD_STRIDE, 0, 32);
}

/* ap_release_refs -- undo ap_build's references after a failed submit */
static void
ap_release_refs(struct ap_refs *refs)
{
	ap_region_put(refs->dst);
	ap_region_put(refs->src);
	refs->dst = refs->src = NULL;
}

int
ap_dev_submit(struct ap_dev *d, uint32_t rec, uint32_t opcode,
	uint32_t flags, void *dst, double dst_off, const void *src,
	double src_off, double len, uint32_t c)
{
	if (atomic_load(&d->stopping))
		return ap_fail(AP_E_CLOSED, "device is closed");
	struct dsa_hw_desc h __attribute__((aligned(64)));
	if (rec >= d->nrec)
		return ap_fail(AP_E_INVALID_ARG, "record %u out of range", rec);
	struct ap_refs *refs = &d->refs[rec];
	int rc = ap_build(d, &h, refs, rec, opcode, flags, dst, dst_off, src,
		src_off, len, c);
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

int
ap_dev_batch_set(struct ap_dev *d, uint32_t list, uint32_t idx, uint32_t rec,
	uint32_t opcode, uint32_t flags, void *dst, double dst_off,
	const void *src, double src_off, double len, uint32_t c)
{
	if (list >= d->nbatch || idx >= AP_MAX_BATCH)
		return ap_fail(AP_E_INVALID_ARG, "batch slot %u/%u out of range",
			list, idx);
	if (rec >= d->nrec)
		return ap_fail(AP_E_INVALID_ARG, "record %u out of range", rec);
	struct dsa_hw_desc h;
	int rc = ap_build(d, &h, &d->refs[rec], rec, opcode,
		flags & ~IDXD_OP_FLAG_FENCE, dst, dst_off, src, src_off, len, c);
	if (rc)
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
	if (list >= d->nbatch || rec >= d->nrec)
		return ap_fail(AP_E_INVALID_ARG, "batch %u or record %u out of "
			"range", list, rec);
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
			rc = now != seq ? 0 : -ETIMEDOUT;
			break;
		}
		struct timespec ts = { left / 1000000000L, left % 1000000000L };
		ap_futex(w, FUTEX_WAIT_PRIVATE, now, &ts);
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
