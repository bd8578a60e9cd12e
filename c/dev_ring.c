/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dev_ring.c -- the software device's work queue: a bounded
 * multi-producer/multi-consumer ring of 64-byte descriptor slots.
 *
 * A submitter reserves a slot and stores the descriptor with MOVDIR64B
 * where the CPU has it -- the instruction a dedicated hardware WQ takes --
 * so submission costs what it would on DSA. A full ring answers -EAGAIN,
 * as a full WQ refuses a descriptor.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "device.h"

/* ap_futex -- thin futex(2) wrapper on a 32-bit word */
long
ap_futex(_Atomic uint32_t *w, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, (uint32_t *)w, op, val, ts, NULL, 0);
}

/* ap_store64 -- store a descriptor into a 64-B aligned slot */
static void
ap_store64(struct ap_dev *d, void *dst, const void *src)
{
	if (d->movdir64b) {
		ap_movdir64b(dst, src); /* as a dedicated WQ's portal takes it */
		ap_sfence();
		return;
	}
	memcpy(dst, src, 64);
}

/* ap_wake_engines -- new work is visible: wake a sleeping engine */
void
ap_wake_engines(struct ap_dev *d)
{
	atomic_fetch_add(&d->work, 1);
	if (atomic_load(&d->sleepers) != 0)
		ap_futex(&d->work, FUTEX_WAKE_PRIVATE, 1, NULL);
}

/* ap_enqueue -- reserve a slot and store the descriptor; -EAGAIN if full */
int
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
	ap_wake_engines(d);
	return 0;
}

/* ap_dequeue -- take the oldest descriptor; 0 when the ring is empty */
int
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
				if (d->slow_claim && (pos & (2 * mask + 1)) == 0) {
					/* a test's preempted engine (every other
					 * lap of slot 0), 20 ms */
					struct timespec ts = { 0, 20000000 };
					nanosleep(&ts, NULL);
				}
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
