/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * device.h -- a device's internals. One struct ap_dev serves two kinds:
 * - the software DSA device: a work queue (dev_ring.c) and engines that
 *   execute descriptors and publish completion records (dev_exec.c);
 * - a DSA work queue (dsa_portal.c): descriptors go to the hardware's
 *   portal instead of the ring, and a watcher thread (dsa_watch.c) stands
 *   in for the engines' bookkeeping.
 * Both share the API that builds descriptors and waits for completions
 * (device.c): the record arena, the one descriptor builder, the region
 * references, the completion sequence. Only where descriptors go differs
 * (ap_send), and who notices that they completed.
 */
#ifndef AP_DEVICE_H
#define AP_DEVICE_H 1

#include <linux/idxd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include "internal.h"

_Static_assert(sizeof(struct dsa_hw_desc) == 64, "descriptor size");
_Static_assert(sizeof(struct dsa_completion_record) == 32, "record size");

/* capabilities this model advertises (SPR values, see reference dsa.md) */
#define AP_GEN_CAP_BOF (1ull << 0)
#define AP_GEN_CAP_OVERLAP (1ull << 1)
#define AP_GEN_CAP_CC_MEM (1ull << 2)
#define AP_GEN_CAP_CC_FLUSH (1ull << 3) /* 0 on SPR: never advertised */
#define AP_GEN_CAP_DRDBK (1ull << 8)
#define AP_OP_CAP ((1ull << DSA_OPCODE_NOOP) | (1ull << DSA_OPCODE_BATCH) | \
	(1ull << DSA_OPCODE_DRAIN) | (1ull << DSA_OPCODE_MEMMOVE) | \
	(1ull << DSA_OPCODE_MEMFILL) | (1ull << DSA_OPCODE_CFLUSH))
#define AP_MAX_BATCH 32u /* members of one list (a WQ may allow fewer) */
#define AP_SPIN_NS 20000 /* how long an idle worker spins before sleeping */
#define AP_IDLE (~0ull)

/* one work-queue slot: a sequence word, then the 64-byte descriptor */
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
	/* a test portal's hook (AP_DSA_TEST_SLOW_CLAIM): an engine pauses
	 * between claiming a slot of the ring and releasing it */
	uint32_t slow_claim;
	void (*_Atomic doorbell)(void);
	uint32_t wq_size, nthreads, nrec, nbatch;
	uint32_t max_batch; /* members a BATCH may have (<= AP_MAX_BATCH) */
	uint32_t spins; /* pause iterations in AP_SPIN_NS, calibrated */
	size_t max_xfer;
	uint64_t gen_cap;
	int movdir64b;
	struct ap_slot *ring;
	char *records; /* nrec * AP_RECORD_STRIDE, then AP_CTRL_SIZE */
	struct ap_refs *refs;
	struct dsa_hw_desc *lists; /* nbatch * AP_MAX_BATCH descriptors */
	struct ap_worker *workers;
	/* a DSA WQ: where descriptors go instead of the ring (dsa_portal.c) */
	struct ap_portal *portal;
	/* a test portal's software WQ: where its engines also take
	 * descriptors from, for a client device (dsa_test.c) */
	struct ap_tport *tport;
	/* the thread that opened it, which stops it when it ends without
	 * deleting it (share.c; under its lock) */
	struct ap_thread_opens *owner;
	struct ap_dev *owner_next;
};

/* what executing a descriptor produced, before it is published */
struct ap_result {
	uint8_t status;
	uint8_t result;
	uint32_t bytes_completed;
	uint64_t fault_addr;
	uint32_t invalid_flags;
};

/* record index of a record in a test portal's client arena (no refs here) */
#define AP_FOREIGN UINT32_MAX

/*
 * ap_movdir64b -- SFENCE, then MOVDIR64B: one 64-byte direct store with
 * 64-byte write atomicity, the instruction a dedicated WQ portal takes
 * (posted: it reports nothing). The fence orders the descriptor, the
 * cleared record and the source data before it, as the SDM requires of
 * direct stores. dst must be 64-byte aligned.
 */
static inline void
ap_movdir64b(void *dst, const void *src)
{
#if defined(__x86_64__)
	__asm__ volatile("sfence\n\tmovdir64b (%1), %0"
		:
		: "r"(dst), "r"(src)
		: "memory");
#else
	(void)dst;
	(void)src;
#endif
}

/* ap_sfence -- order earlier stores (direct stores included) */
static inline void
ap_sfence(void)
{
#if defined(__x86_64__)
	__asm__ volatile("sfence" ::: "memory");
#else
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

static inline void
ap_pause(void)
{
#if defined(__x86_64__)
	_mm_pause();
#endif
}

/* ap_ctrl -- a control word after the record arena */
static inline _Atomic uint32_t *
ap_ctrl(struct ap_dev *d, unsigned off)
{
	return (_Atomic uint32_t *)(d->records + (size_t)d->nrec *
		AP_RECORD_STRIDE + off);
}

/* ap_cpu_has -- CPUID.7.0:ECX bit (28 MOVDIR64B, 29 ENQCMD, 5 WAITPKG) */
int ap_cpu_has(unsigned ecx_bit);
#define AP_CPU_WAITPKG 5
#define AP_CPU_MOVDIR64B 28
#define AP_CPU_ENQCMD 29

/* device.c */
int ap_dev_alloc(struct ap_dev **out, uint32_t wq_size, uint32_t nrec,
	uint32_t nbatch, size_t max_xfer, uint32_t nthreads);
void ap_dev_free(struct ap_dev *d);
int ap_dev_start(struct ap_dev *d);
void ap_pin_self(void);

/* dev_ring.c */
long ap_futex(_Atomic uint32_t *w, int op, uint32_t val,
	const struct timespec *ts);
int ap_enqueue(struct ap_dev *d, const struct dsa_hw_desc *desc);
void ap_wake_engines(struct ap_dev *d);
int ap_dequeue(struct ap_dev *d, struct ap_worker *w,
	struct dsa_hw_desc *out);

/* dev_exec.c */
struct dsa_completion_record *ap_record(struct ap_dev *d, uint64_t addr,
	uint32_t *idx);
void ap_release_refs(struct ap_refs *refs);
void ap_abandon(struct ap_dev *d, const struct dsa_hw_desc *list,
	uint32_t from, uint32_t to);
const struct dsa_hw_desc *ap_list_in_arena(struct ap_dev *d,
	const struct dsa_hw_desc *h, uint32_t *count);
void *ap_worker_main(void *arg);
void ap_signal(struct ap_dev *d);

/* dsa_portal.c: the hardware path (a NULL portal is the ring) */
int ap_portal_send(struct ap_dev *d, const struct dsa_hw_desc *h,
	uint32_t rec);
struct ap_dev *ap_portal_target(struct ap_dev *d);
void ap_portal_stop(struct ap_dev *d);
void ap_portal_free(struct ap_dev *d);
int ap_portal_info(struct ap_dev *d, double *out);

/* dsa_watch.c: noticing completions on a hardware WQ */
uint32_t ap_reap_ready(struct ap_dev *d);
int ap_rec_pending(struct ap_dev *d, uint32_t rec);
int ap_list_pending(struct ap_dev *d, uint32_t list);

/* dsa_test.c: a test portal's WQ */
void ap_tport_drain(struct ap_dev *d);
int ap_tport_idle(struct ap_dev *d);
int ap_tport_owns(struct ap_dev *d, uint64_t addr, size_t len);

#endif
