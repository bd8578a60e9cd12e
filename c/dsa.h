/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dsa.h -- the hardware path's internals, shared by its parts: the
 * submission backends of a DSA work queue (dsa_portal.c), the watcher that
 * notices its completions (dsa_watch.c), and the test portal that puts
 * the software device behind a WQ's interface (dsa_test.c).
 *
 * A DSA WQ is a struct ap_dev like the software device (same record
 * arena, lists, references, builder, sequence); its struct ap_portal says
 * where descriptors go instead of the ring.
 */
#ifndef AP_DSA_H
#define AP_DSA_H 1

#include <sys/types.h>
#include "device.h"

/* where a WQ's descriptors go (also ap_dev_info field 9) */
#define AP_SUBMIT_RING 0  /* the software device's ring */
#define AP_SUBMIT_DWQ 1   /* MOVDIR64B into a dedicated WQ's portal */
#define AP_SUBMIT_SWQ 2   /* ENQCMD into a shared WQ's portal */
#define AP_SUBMIT_WRITE 3 /* write(2) on the WQ's file (no portal mapping) */

#define AP_PORTAL_SIZE 4096u
#define AP_PORTAL_SLOTS (AP_PORTAL_SIZE / 64)

/*
 * ENQCMD answers "retry" while a shared WQ is full (or at its threshold).
 * Up to this many immediate tries per submission, with a pause backoff
 * doubling from 64 PAUSEs between them; then -EAGAIN or -EBUSY (see
 * dsa_portal.c), and the caller backs off in its event loop (the
 * reference's advice: never spin unboundedly).
 */
#define AP_ENQ_TRIES 6

/* counters of ap_dsa_counters */
enum {
	AP_DSA_CREDIT_WAITS, /* refused: no credit left on a dedicated WQ */
	AP_DSA_RETRIES,      /* "retry" answers of ENQCMD (or its emulation) */
	AP_DSA_BUSY,         /* submissions given up after AP_ENQ_TRIES */
	AP_DSA_DROPS,        /* test portal: descriptors a full WQ dropped */
	AP_DSA_SENT,         /* descriptors handed to the WQ */
	AP_DSA_REAPED,       /* completions the watcher noticed */
	AP_DSA_REAPED_INLINE, /* completions a submitter noticed first */
	AP_DSA_SLEEPS,       /* watcher sleeps while work was in flight */
	AP_DSA_NCOUNTERS
};

struct ap_portal {
	int kind;              /* AP_SUBMIT_* */
	int shared;            /* a shared WQ: it answers "retry" itself */
	int credited;          /* a dedicated WQ: software counts credits */
	int fd;                /* the WQ's file; -1 when none */
	int owns_fd;           /* close fd with the portal (not a test's) */
	char *page;            /* the portal page; NULL on the write() path */
	int mapped;            /* page is the WQ's mmap (else a test page) */
	uint32_t engines;      /* reported as the device's engines */
	_Atomic uint64_t next; /* portal offset rotation, 64-B stride */
	_Atomic int32_t credits;
	struct ap_dev *target; /* a test portal's software WQ, else NULL */
	int leak_arena;        /* records still owned by the device at stop */
	/* the watcher (dsa_watch.c) */
	pthread_t watcher;
	int watching;
	pthread_mutex_t reap_lock;
	_Atomic uint8_t *pend; /* per record: its descriptor is in flight */
	const struct dsa_hw_desc **lists; /* per record: a BATCH's members */
	uint32_t *counts;
	/* per record: in-flight BATCHes it is a member of; per batch list:
	 * in-flight BATCHes that read it. Hardware writes neither member
	 * records nor lists after the batch's record, but the watcher settles
	 * a batch (drops its members' references) by reading its list: until
	 * it has, neither may be reused (ap_rec_pending, ap_list_pending) */
	_Atomic uint32_t *owner;
	_Atomic uint32_t *list_pend;
	uint32_t nlists;
	_Atomic uint32_t npend;
	_Atomic uint32_t hi;   /* records at or above are never pending */
	_Atomic uint32_t wake; /* futex word of an idle watcher */
	_Atomic uint32_t idle;
	_Atomic uint32_t stop;
	int waitpkg;
	uint32_t spins;
	_Atomic uint64_t count[AP_DSA_NCOUNTERS];
};

/* a test portal's WQ: where the software device's engines take work */
struct ap_tport {
	int kind;              /* AP_SUBMIT_DWQ, _SWQ or _WRITE */
	char *page;            /* the page the client stores descriptors in */
	int sock[2];           /* write(): [0] the client's end, [1] ours */
	_Atomic uint32_t lock; /* one engine drains at a time */
	_Atomic uint64_t sent; /* descriptors stored into the page */
	/* per page slot, the number in submission order of the descriptor
	 * stored there: engines take them in that order, as a WQ accepts
	 * them, though the client's rotation wraps (a DRAIN then waits for
	 * every descriptor submitted before it) */
	_Atomic uint64_t order[AP_PORTAL_SLOTS];
	_Atomic uint64_t stored; /* descriptors stored, numbered from 0 */
	uint64_t next_take;      /* the number engines take next (under lock) */
	_Atomic uint64_t taken; /* descriptors moved into the ring */
	_Atomic uint32_t busy; /* injected "retry" answers left */
	_Atomic uint64_t drops;
	struct ap_dev *client; /* whose records and lists engines may use */
};

/* dsa_portal.c */
int ap_portal_new(struct ap_dev *d, int kind, int fd, char *page,
	int mapped, uint32_t engines, struct ap_dev *target);

/* dsa_watch.c */
int ap_watch_start(struct ap_dev *d);
void ap_watch_stop(struct ap_dev *d);
uint32_t ap_reap(struct ap_dev *d, int by_watcher);
void ap_batch_mark(struct ap_dev *d, const struct dsa_hw_desc *list,
	uint32_t count, int32_t delta);

/* dsa_test.c */
void ap_tport_store(struct ap_dev *c, void *slot, const void *desc);
int ap_tport_enqcmd(struct ap_dev *t, void *slot, const void *desc);
void ap_tport_kick(struct ap_dev *t);
void ap_tport_free(struct ap_dev *t);
ssize_t ap_tport_write(struct ap_dev *t, int fd, const void *desc);

#endif
