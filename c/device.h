/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * device.h -- the software DSA device's internals, shared by its three
 * parts: the work queue (dev_ring.c), the engines that execute
 * descriptors and publish completion records (dev_exec.c), and the API
 * that builds descriptors and waits for completions (device.c).
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
#define AP_GEN_CAP_DRDBK (1ull << 8)
#define AP_OP_CAP ((1ull << DSA_OPCODE_NOOP) | (1ull << DSA_OPCODE_BATCH) | \
	(1ull << DSA_OPCODE_DRAIN) | (1ull << DSA_OPCODE_MEMMOVE) | \
	(1ull << DSA_OPCODE_MEMFILL) | (1ull << DSA_OPCODE_CFLUSH))
#define AP_MAX_BATCH 32u
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

/* what executing a descriptor produced, before it is published */
struct ap_result {
	uint8_t status;
	uint8_t result;
	uint32_t bytes_completed;
	uint64_t fault_addr;
	uint32_t invalid_flags;
};

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

/* dev_ring.c */
long ap_futex(_Atomic uint32_t *w, int op, uint32_t val,
	const struct timespec *ts);
int ap_enqueue(struct ap_dev *d, const struct dsa_hw_desc *desc);
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

#endif
