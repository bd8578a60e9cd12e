/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dsa_test.c -- a test portal: the software device behind a DSA work
 * queue's interface, so the hardware path runs end to end on a machine
 * without DSA.
 *
 * ap_dsa_open_test makes two devices. The client is a DSA WQ exactly as
 * ap_dsa_open makes one (dsa_portal.c: credits, the watcher, the same
 * store instructions), except that its portal is not the WQ's mmap:
 * - dedicated: a 4 KiB page in ordinary memory, which the client writes
 *   with MOVDIR64B at rotating 64-byte offsets, as a dedicated WQ's portal
 *   (a CPU without MOVDIR64B stores the first 8 bytes last instead);
 * - shared: the same page, behind an emulation of ENQCMD (this CPU has no
 *   ENQCMD): it answers "retry" when the WQ is full, when a test injected
 *   busy answers, or while the slot still holds an undrained descriptor,
 *   and otherwise stores as the dedicated kind does;
 * - write: a SOCK_SEQPACKET socket the client write(2)s 64-byte
 *   descriptors to, as to the WQ's character device; with
 *   AP_DSA_TEST_SHARED_WRITE, a shared WQ's: write(2) fails with EAGAIN
 *   while the WQ is full, as the kernel's once its ENQCMDS retries ran
 *   out.
 * The target is a software device whose engines take what the client
 * stored (the first 8 bytes of a stored descriptor are never zero: the
 * builder sets CRAV) into their ring before taking work off it. A ring
 * full of undispatched descriptors then drops one and counts it, as a
 * dedicated WQ written past its size drops one into SWERR: a credit bug
 * shows up as drops and records that never complete. The engines write the client's
 * records as hardware does -- the record only: they neither bump the
 * client's sequence nor touch its references.
 *
 * After each store the client kicks the target's engines (a futex wake),
 * so they need not spin on a page nobody wrote; that kick is the only
 * code a real WQ's path does not run. Engines take stored descriptors in
 * the order they were stored (each slot's number in `order`), not slot by
 * slot: after the rotation wraps, a descriptor in a low slot was stored
 * after those in high ones, and a DRAIN taken ahead of them completed
 * before them. A page slot is reused only when its last descriptor was
 * drained: the WQ size of a test portal is at most 32, half the page's
 * 64 slots, and engines drain every stored descriptor at each pass.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "dsa.h"

/* ap_word0 -- the first 8 bytes of a page slot (0: empty) */
static _Atomic uint64_t *
ap_word0(char *slot)
{
	return (_Atomic uint64_t *)(void *)slot;
}

/* ap_tport_owns -- whether [addr, addr+len) is the client's records or lists */
int
ap_tport_owns(struct ap_dev *t, uint64_t addr, size_t len)
{
	struct ap_dev *c = t->tport->client;
	if (c == NULL)
		return 0;
	uintptr_t r = (uintptr_t)c->records;
	size_t rlen = (size_t)c->nrec * AP_RECORD_STRIDE;
	uintptr_t l = (uintptr_t)c->lists;
	size_t llen = (size_t)(c->nbatch ? c->nbatch : 1) * AP_MAX_BATCH * 64;
	return (addr >= r && len <= rlen && addr - r <= rlen - len) ||
		(addr >= l && len <= llen && addr - l <= llen - len);
}

/* ap_occupancy -- descriptors in the WQ, not yet dispatched to an engine */
static uint64_t
ap_occupancy(struct ap_dev *t)
{
	struct ap_tport *tp = t->tport;
	return (atomic_load(&tp->sent) - atomic_load(&tp->taken)) +
		(atomic_load(&t->tail) - atomic_load(&t->head));
}

/*
 * ap_tport_store -- store a descriptor into a page slot as the client's
 * CPU can: with MOVDIR64B where it has it (a dedicated WQ's instruction),
 * else bytes 8..63 first and the first 8 last with a release store --
 * engines take a slot once its first 8 bytes are non-zero, so they never
 * read half a descriptor (MOVDIR64B is SIGILL on a CPU without it)
 */
void
ap_tport_store(struct ap_dev *c, void *slot, const void *desc)
{
	struct ap_tport *tp = c->portal->target->tport;
	size_t i = (size_t)((char *)slot - tp->page) / 64;
	atomic_store_explicit(&tp->order[i],
		atomic_fetch_add_explicit(&tp->stored, 1, memory_order_relaxed),
		memory_order_relaxed);
	/* the number before the descriptor: MOVDIR64B is weakly ordered */
	atomic_thread_fence(memory_order_seq_cst);
	if (c->movdir64b) {
		ap_movdir64b(slot, desc);
		return;
	}
	uint64_t w0;
	memcpy((char *)slot + 8, (const char *)desc + 8, 56);
	memcpy(&w0, desc, sizeof(w0));
	atomic_store_explicit(ap_word0(slot), w0, memory_order_release);
}

/*
 * ap_tport_enqcmd -- ENQCMD as this WQ answers it: 1 for retry, else the
 * descriptor is stored (as ap_tport_store: the store ENQCMD makes) and 0.
 * One submitting thread per client (JavaScript's), as for its ring.
 */
int
ap_tport_enqcmd(struct ap_dev *t, void *slot, const void *desc)
{
	struct ap_tport *tp = t->tport;
	uint32_t busy = atomic_load(&tp->busy);
	while (busy != 0)
		if (atomic_compare_exchange_weak(&tp->busy, &busy, busy - 1))
			return 1;
	if (ap_occupancy(t) >= t->wq_size || atomic_load(ap_word0(slot)) != 0)
		return 1;
	ap_tport_store(tp->client, slot, desc);
	atomic_fetch_add(&tp->sent, 1);
	return 0;
}

/*
 * ap_tport_write -- write(2) of one descriptor to this WQ's socket, as
 * the kernel's write(2) on the WQ's file answers it: on a shared WQ, -1
 * with EAGAIN while the WQ is full (the kernel's ENQCMDS retries ran
 * out). One submitting thread per client, as for its ring.
 */
ssize_t
ap_tport_write(struct ap_dev *t, int fd, const void *desc)
{
	struct ap_tport *tp = t->tport;
	if (tp->client->portal->shared && ap_occupancy(t) >= t->wq_size) {
		errno = EAGAIN;
		return -1;
	}
	ssize_t n = write(fd, desc, sizeof(struct dsa_hw_desc));
	if (n == (ssize_t)sizeof(struct dsa_hw_desc))
		atomic_fetch_add(&tp->sent, 1); /* ap_accept counts it taken */
	return n;
}

/* ap_tport_kick -- a descriptor was stored: wake an engine */
void
ap_tport_kick(struct ap_dev *t)
{
	ap_wake_engines(t);
}

/*
 * ap_accept -- one descriptor arrived: into the ring, or dropped. The ring
 * also refuses while an engine that claimed the slot's last descriptor
 * has not yet copied it out (preempted there): that one was dispatched
 * already, so a WQ would take this one -- wait for the slot. Only a WQ
 * holding wq_size undispatched descriptors drops one.
 */
static void
ap_accept(struct ap_dev *t, const struct dsa_hw_desc *h)
{
	struct ap_tport *tp = t->tport;
	while (ap_enqueue(t, h) != 0) {
		if (atomic_load(&t->tail) - atomic_load(&t->head) >=
				t->wq_size) {
			atomic_fetch_add(&tp->drops, 1); /* SWERR: no record */
			break;
		}
		sched_yield();
	}
	atomic_fetch_add(&tp->taken, 1);
}

/* ap_tport_drain -- move every stored descriptor into the ring */
void
ap_tport_drain(struct ap_dev *t)
{
	struct ap_tport *tp = t->tport;
	if (atomic_exchange(&tp->lock, 1))
		return; /* another engine is draining */
	struct dsa_hw_desc h __attribute__((aligned(64)));
	if (tp->page != NULL) {
		for (;;) {
			/* the slot of the next descriptor in submission order,
			 * once it is stored (a later one waits for it) */
			char *slot = NULL;
			for (uint32_t i = 0; i < AP_PORTAL_SLOTS; i++) {
				char *s = tp->page + (size_t)i * 64;
				if (atomic_load_explicit(ap_word0(s),
						memory_order_acquire) != 0 &&
						atomic_load_explicit(&tp->order[i],
						memory_order_relaxed) == tp->next_take) {
					slot = s;
					break;
				}
			}
			if (slot == NULL)
				break;
			memcpy(&h, slot, sizeof(h));
			/* a shared WQ accepted it (its ENQCMD counted the room):
			 * when the ring is briefly full -- an engine has taken
			 * a slot but not yet released it -- it waits here */
			if (tp->kind == AP_SUBMIT_SWQ && ap_enqueue(t, &h) != 0)
				break;
			atomic_store_explicit(ap_word0(slot), 0,
				memory_order_release);
			tp->next_take++;
			if (tp->kind == AP_SUBMIT_SWQ)
				atomic_fetch_add(&tp->taken, 1);
			else
				ap_accept(t, &h);
		}
	} else {
		while (recv(tp->sock[1], &h, sizeof(h), MSG_DONTWAIT) ==
				(ssize_t)sizeof(h))
			ap_accept(t, &h);
	}
	atomic_store(&tp->lock, 0);
}

/* ap_tport_idle -- nothing stored that the engines have not taken */
int
ap_tport_idle(struct ap_dev *t)
{
	struct ap_tport *tp = t->tport;
	if (tp->page != NULL) {
		for (uint32_t i = 0; i < AP_PORTAL_SLOTS; i++)
			if (atomic_load(ap_word0(tp->page + (size_t)i * 64)))
				return 0;
		return 1;
	}
	char b;
	return recv(tp->sock[1], &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0;
}

/* ap_tport_free -- free a target's portal side (engines joined) */
void
ap_tport_free(struct ap_dev *t)
{
	struct ap_tport *tp = t->tport;
	if (tp == NULL)
		return;
	free(tp->page);
	if (tp->sock[0] >= 0) {
		close(tp->sock[0]);
		close(tp->sock[1]);
	}
	free(tp);
	t->tport = NULL;
}

/* ap_tport_new -- the target: a software device with a portal side */
static int
ap_tport_new(struct ap_dev **out, int kind, uint32_t wq_size,
	uint32_t max_batch, size_t max_xfer, uint32_t engines)
{
	struct ap_dev *t;
	int rc = ap_dev_alloc(&t, wq_size, 1, 0, max_xfer, engines);
	if (rc)
		return rc;
	t->max_batch = max_batch;
	struct ap_tport *tp = calloc(1, sizeof(*tp));
	if (tp == NULL) {
		ap_dev_free(t);
		return ap_fail(-ENOMEM, "cannot allocate the test portal");
	}
	tp->kind = kind;
	tp->sock[0] = tp->sock[1] = -1;
	t->tport = tp;
	if (kind == AP_SUBMIT_WRITE) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK |
				SOCK_CLOEXEC, 0, tp->sock) != 0) {
			rc = ap_fail(-errno, "cannot make the test portal's "
				"socket: %s", strerror(errno));
			goto fail;
		}
	} else if (posix_memalign((void **)&tp->page, AP_PORTAL_SIZE,
			AP_PORTAL_SIZE)) {
		rc = ap_fail(-ENOMEM, "cannot allocate the test portal's page");
		goto fail;
	} else {
		memset(tp->page, 0, AP_PORTAL_SIZE);
	}
	*out = t;
	return 0;
fail:
	ap_tport_free(t);
	ap_dev_free(t);
	return rc;
}

int
ap_dsa_open_test(struct ap_dev **out, uint32_t kind, uint32_t wq_size,
	uint32_t max_batch, double max_xfer, uint32_t engines, uint32_t nrec,
	uint32_t nbatch, uint32_t flags)
{
	size_t mx;
	int rc = ap_to_size(max_xfer, &mx, "max_xfer");
	if (rc)
		return rc;
	if (out == NULL || kind < AP_SUBMIT_DWQ || kind > AP_SUBMIT_WRITE ||
			wq_size < 2 || wq_size > AP_PORTAL_SLOTS / 2 ||
			(wq_size & (wq_size - 1)) || max_batch == 1 ||
			max_batch > AP_MAX_BATCH || engines == 0 || engines > 8 ||
			nrec == 0 || nrec > (1u << 20) || nbatch > 4096 ||
			mx == 0 || mx > UINT32_MAX ||
			(flags & ~(AP_DSA_TEST_NO_OVERLAP | AP_DSA_TEST_SLOW_CLAIM |
			AP_DSA_TEST_SHARED_WRITE)) ||
			((flags & AP_DSA_TEST_SHARED_WRITE) &&
			kind != AP_SUBMIT_WRITE))
		return ap_fail(AP_E_INVALID_ARG, "test portal: bad configuration "
			"(kind %u, wq %u, max_batch %u, engines %u, records %u, "
			"batches %u, max_xfer %zu)", kind, wq_size, max_batch,
			engines, nrec, nbatch, mx);
	if (kind == AP_SUBMIT_WRITE)
		max_batch = 0; /* as the kernel's write(2) path on fixed parts */
	struct ap_dev *t = NULL, *c = NULL;
	if ((rc = ap_tport_new(&t, (int)kind, wq_size, max_batch, mx, engines)))
		return rc;
	if ((rc = ap_dev_alloc(&c, wq_size, nrec, nbatch, mx, 0))) {
		ap_tport_free(t);
		ap_dev_free(t);
		return rc;
	}
	c->max_batch = max_batch;
	t->slow_claim = (flags & AP_DSA_TEST_SLOW_CLAIM) != 0;
	if (flags & AP_DSA_TEST_NO_OVERLAP) {
		/* both sides: the client reports it, the engines enforce it */
		t->gen_cap &= ~AP_GEN_CAP_OVERLAP;
		c->gen_cap &= ~AP_GEN_CAP_OVERLAP;
	}
	struct ap_tport *tp = t->tport;
	if ((rc = ap_portal_new(c, (int)kind, tp->sock[0], tp->page, 0,
			engines, t))) {
		ap_tport_free(t);
		ap_dev_free(t);
		ap_dev_free(c);
		return rc;
	}
	if (flags & AP_DSA_TEST_SHARED_WRITE) {
		c->portal->shared = 1; /* as ap_dsa_open makes a shared WQ's */
		c->portal->credited = 0;
	}
	tp->client = c;
	if ((rc = ap_dev_start(t)) || (rc = ap_watch_start(c))) {
		ap_dev_delete(&c); /* stops and frees the target too */
		return rc;
	}
	ap_thread_adopt_dev(c);
	*out = c;
	return 0;
}

int
ap_dsa_inject_busy(struct ap_dev *d, uint32_t count)
{
	if (d->portal == NULL || d->portal->target == NULL ||
			d->portal->kind != AP_SUBMIT_SWQ)
		return ap_fail(-ENOTSUP, "busy answers can only be injected "
			"into a shared test portal");
	atomic_store(&d->portal->target->tport->busy, count);
	return 0;
}

int
ap_dsa_counters(struct ap_dev *d, double *out, uint32_t cap)
{
	if (out == NULL || cap < AP_DSA_NCOUNTERS)
		return ap_fail(AP_E_INVALID_ARG, "dsa counters need %d fields",
			AP_DSA_NCOUNTERS);
	if (d->portal == NULL)
		return ap_fail(-ENOTSUP, "not a DSA work queue");
	struct ap_portal *p = d->portal;
	for (int i = 0; i < AP_DSA_NCOUNTERS; i++)
		out[i] = (double)atomic_load(&p->count[i]);
	if (p->target != NULL)
		out[AP_DSA_DROPS] = (double)atomic_load(
			&p->target->tport->drops);
	return AP_DSA_NCOUNTERS;
}
