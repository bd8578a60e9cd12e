/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * share.c -- process-wide shares of a file: an exclusive flock for the
 * process, and a block of zeroed memory every opener of the file in this
 * process (any thread, any JavaScript Worker) sees.
 *
 * A Worker cannot be handed a mapping or an object of another isolate;
 * it opens the file by its path. The first open of a file in the process
 * takes the flock (so another process, or libpmemblk/libpmemlog, is
 * refused with EAGAIN, as libpmem* refuse it) and allocates the block;
 * later opens of the same file (same device and inode) in this process
 * join it and get the same block, in which the openers keep their
 * coordination state with atomic operations. The last close drops the
 * lock and frees the block.
 *
 * Each open is a handle of its own (struct ap_share), owned by the thread
 * that opened it. A thread that ends with opens it never closed (a
 * JavaScript Worker terminated before it closed its pool) leaves them
 * through a thread-exit hook: they stop counting, so the last close of
 * the others still unlocks the file and frees the block. Whatever the
 * ended open held in the block (locks, lanes) it still holds: the others
 * learn of it from the status words after the caller's bytes, where each
 * open has a slot:
 *
 *   int32 word 0   opens that ended with their thread
 *   int32 word 1   the token of the open that created the share
 *   int32 word 16+ slot i: its generation << 2 | its state (SLOT_FREE,
 *                  SLOT_OPEN, SLOT_ENDED)
 *
 * at byte AP_SHARE_STATUS_AT(size) of the block. An open's slot (-1 when
 * every slot is taken) is the first int32 of its handle, where
 * pmem2/file_share.ts reads it; its token is slot + 1 + AP_SHARE_SLOTS *
 * generation. A slot is taken again once its open closed (the generation
 * moves on at the close) or, when no slot is free, once it ended (the
 * generation moves on at the take): the tokens the old open left in the
 * block then name an open that is gone, which file_share.ts tells from
 * the generation. Without it, a process whose Workers ended with 1024
 * opens of a file (Workers recycled by terminate while another keeps the
 * file open) gave every later open no slot, and a lock such an open held
 * when its Worker ended was waited for by the others for ever.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "device.h"

/* how long an open retries a lock held elsewhere (see ap_share_open) */
#define AP_LOCK_RETRY_US 100000
#include "internal.h"

void ap_pin_self(void); /* device.c */

/* slots of opens per share (an open beyond them has none) */
#define AP_SHARE_SLOTS 1024
/* the status words: the counters, then one word per slot */
#define AP_SHARE_STATUS_HEAD 16
#define AP_SHARE_STATUS_BYTES ((AP_SHARE_STATUS_HEAD + AP_SHARE_SLOTS) * 4)
/* where the status words start in a block of n bytes for the caller */
#define AP_SHARE_STATUS_AT(n) (((n) + 63) & ~(size_t)63)

enum { ST_ENDED = 0, ST_CREATOR = 1 };
enum { SLOT_FREE = 0, SLOT_OPEN = 1, SLOT_ENDED = 2 };
/* a slot word's state, and its generation (18 bits: tokens stay < 2^28) */
#define AP_SLOT_STATE(w) ((w) & 3)
#define AP_SLOT_GEN_MASK 0x3ffff
#define AP_SLOT_GEN(w) (((uint32_t)(w) >> 2) & AP_SLOT_GEN_MASK)
#define AP_SLOT_WORD(gen, state) \
	((int32_t)((((uint32_t)(gen) & AP_SLOT_GEN_MASK) << 2) | (state)))

/* one file's share: the lock, the block, its opens */
struct ap_share_file {
	dev_t dev;
	ino_t ino;
	int fd;            /* holds the flock */
	uint32_t refs;     /* opens not closed and not ended */
	size_t size;       /* bytes the caller asked for */
	void *mem;         /* zeroed at creation, 64-aligned, status after */
	_Atomic int32_t *status;
	struct ap_share *opens; /* linked through file_next */
	struct ap_share_file *next;
};

/* the opens of one thread (its thread-specific value) */
struct ap_thread_opens {
	struct ap_share *opens; /* linked through thread_next */
	struct ap_dev *devs;    /* devices it opened, through owner_next */
};

/* one open: the handle ap_share_open gives out */
struct ap_share {
	int32_t slot;      /* first: read by file_share.ts (-1: none) */
	struct ap_share_file *file;
	struct ap_thread_opens *thread;
	struct ap_share *file_next;
	struct ap_share *thread_next;
};

static pthread_mutex_t ap_shares_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ap_share_file *ap_shares;
/*
 * under the lock: the block of the share closed last, kept for the next
 * share of its size. A fresh block of a megabyte (a block pool's) came
 * from mmap, so zeroing it faulted in every page and freeing it unmapped
 * them: a third of a pool's open and close on Deno. The same pages,
 * reused, are zeroed without faults (a crash sweep opens thousands of
 * pools of one size).
 */
static void *ap_spare_mem;
static size_t ap_spare_total;
static pthread_key_t ap_thread_key;
static int ap_thread_key_ok;
static pthread_once_t ap_thread_key_once = PTHREAD_ONCE_INIT;

static void ap_thread_end(void *value);

static void
ap_thread_key_init(void)
{
	/* the hook runs from threads' exits: never unmap its code */
	ap_pin_self();
	ap_thread_key_ok = pthread_key_create(&ap_thread_key, ap_thread_end)
		== 0;
}

/* the calling thread's record of opens (NULL if it cannot have one) */
static struct ap_thread_opens *
ap_this_thread(void)
{
	pthread_once(&ap_thread_key_once, ap_thread_key_init);
	if (!ap_thread_key_ok)
		return NULL;
	struct ap_thread_opens *t = pthread_getspecific(ap_thread_key);
	if (t != NULL)
		return t;
	t = calloc(1, sizeof(*t));
	if (t != NULL && pthread_setspecific(ap_thread_key, t) != 0) {
		free(t);
		t = NULL;
	}
	return t;
}

/* under the lock: drop one reference; the last unlocks and frees */
static int
ap_file_drop(struct ap_share_file *f)
{
	int left = (int)--f->refs;
	if (left == 0) {
		struct ap_share_file **link = &ap_shares;
		while (*link != f)
			link = &(*link)->next;
		*link = f->next;
		close(f->fd);
		free(ap_spare_mem);
		ap_spare_mem = f->mem;
		ap_spare_total = AP_SHARE_STATUS_AT(f->size) +
			AP_SHARE_STATUS_BYTES;
		free(f);
	}
	return left;
}

/* under the lock: take an open out of its file's and thread's lists */
static void
ap_unlink_open(struct ap_share *o)
{
	struct ap_share **link = &o->file->opens;
	while (*link != o)
		link = &(*link)->file_next;
	*link = o->file_next;
	if (o->thread != NULL) {
		link = &o->thread->opens;
		while (*link != NULL && *link != o)
			link = &(*link)->thread_next;
		if (*link == o)
			*link = o->thread_next;
	}
}

/*
 * ap_thread_end -- a thread ends: its opens that were never closed end
 * with it (their slots say so; they no longer keep the share)
 */
static void
ap_thread_end(void *value)
{
	struct ap_thread_opens *t = value;
	pthread_mutex_lock(&ap_shares_lock);
	struct ap_dev *devs = t->devs;
	t->devs = NULL;
	for (struct ap_dev *d = devs; d != NULL; d = d->owner_next)
		d->owner = NULL;
	pthread_mutex_unlock(&ap_shares_lock);
	/*
	 * Its devices first: every copy they accepted lands (or fails) before
	 * the locks of its files go, so none lands under the next opener's
	 * writes. Stopped, not freed: a wait the runtime queued for the
	 * ended thread may still look at one (a stopped device answers it).
	 */
	while (devs != NULL) {
		struct ap_dev *d = devs;
		devs = d->owner_next;
		d->owner_next = NULL;
		ap_dev_stop(d);
	}
	pthread_mutex_lock(&ap_shares_lock);
	while (t->opens != NULL) {
		struct ap_share *o = t->opens;
		struct ap_share_file *f = o->file;
		t->opens = o->thread_next;
		o->thread = NULL;
		ap_unlink_open(o);
		if (o->slot >= 0) {
			_Atomic int32_t *w =
				&f->status[AP_SHARE_STATUS_HEAD + o->slot];
			atomic_store(w, AP_SLOT_WORD(AP_SLOT_GEN(*w),
				SLOT_ENDED));
		}
		atomic_fetch_add(&f->status[ST_ENDED], 1);
		ap_file_drop(f);
		free(o);
	}
	pthread_mutex_unlock(&ap_shares_lock);
	free(t);
}

void
ap_thread_adopt_dev(struct ap_dev *d)
{
	struct ap_thread_opens *t = ap_this_thread();
	if (t == NULL)
		return; /* no thread hook: it stops only when deleted */
	pthread_mutex_lock(&ap_shares_lock);
	d->owner = t;
	d->owner_next = t->devs;
	t->devs = d;
	pthread_mutex_unlock(&ap_shares_lock);
}

void
ap_thread_drop_dev(struct ap_dev *d)
{
	pthread_mutex_lock(&ap_shares_lock);
	struct ap_thread_opens *t = d->owner;
	if (t != NULL) {
		struct ap_dev **link = &t->devs;
		while (*link != NULL && *link != d)
			link = &(*link)->owner_next;
		if (*link == d)
			*link = d->owner_next;
		d->owner = NULL;
		d->owner_next = NULL;
	}
	pthread_mutex_unlock(&ap_shares_lock);
}

/* under the lock: a new open of f by the calling thread */
static struct ap_share *
ap_new_open(struct ap_share_file *f)
{
	struct ap_share *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return NULL;
	o->file = f;
	o->slot = -1;
	/*
	 * (under the lock, which every change of a slot word holds) a free
	 * slot, else one whose open ended, in a new generation: its tokens
	 * left in the block must not name this open
	 */
	for (int pass = 0; pass < 2 && o->slot < 0; pass++) {
		for (int i = 0; i < AP_SHARE_SLOTS; i++) {
			_Atomic int32_t *w = &f->status[AP_SHARE_STATUS_HEAD + i];
			int32_t v = atomic_load(w);
			if (AP_SLOT_STATE(v) != (pass == 0 ? SLOT_FREE : SLOT_ENDED))
				continue;
			atomic_store(w, AP_SLOT_WORD(AP_SLOT_GEN(v) + pass,
				SLOT_OPEN));
			o->slot = i;
			break;
		}
	}
	o->file_next = f->opens;
	f->opens = o;
	o->thread = ap_this_thread();
	if (o->thread != NULL) {
		o->thread_next = o->thread->opens;
		o->thread->opens = o;
	}
	f->refs++;
	return o;
}

/* ap_share_open -- join this process's share of path, or create it */
int
ap_share_open(struct ap_share **out, const char *path, double path_len,
	double size)
{
	size_t n;
	int rc;
	if (out == NULL)
		return ap_fail(AP_E_INVALID_ARG, "share: NULL argument");
	if ((rc = ap_path_arg(path, path_len)) != 0 ||
			(rc = ap_to_size(size, &n, "size")) != 0)
		return rc;
	if (n == 0)
		return ap_fail(AP_E_INVALID_ARG, "share: size is 0");
	/*
	 * never a plain open: on a FIFO it waits for a writer, for ever.
	 * The descriptor only holds the flock, which any access mode takes:
	 * a file its creator may write but not read (mode 0200, as
	 * libpmemlog's create allows: it locks the descriptor it created the
	 * file with) is opened write-only instead.
	 */
	int fd = ap_open_file(path, O_RDONLY, 0);
	if (fd < 0 && errno == EACCES) {
		fd = ap_open_file(path, O_WRONLY, 0);
		if (fd < 0)
			errno = EACCES; /* the read-only open's answer */
	}
	if (fd < 0)
		return ap_fail(-errno, "cannot open '%s': %s", path,
			strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = ap_fail(-errno, "cannot stat '%s': %s", path,
			strerror(errno));
		close(fd);
		return rc;
	}
	pthread_mutex_lock(&ap_shares_lock);
	struct ap_share_file *f = ap_shares;
	while (f != NULL && (f->dev != st.st_dev || f->ino != st.st_ino))
		f = f->next;
	if (f != NULL) {
		close(fd);
		struct ap_share *o = NULL;
		if (f->size != n) {
			/* busy, as a lock held by another open is */
			rc = ap_fail(-EAGAIN,
				"cannot lock '%s': it is open in this process "
				"as something else (a store of another kind, "
				"or a lock: %zu bytes of shared state, not %zu)",
				path, f->size, n);
		} else if ((o = ap_new_open(f)) == NULL) {
			rc = ap_fail(-ENOMEM, "share: out of memory");
		} else {
			*out = o;
			rc = 0;
		}
		pthread_mutex_unlock(&ap_shares_lock);
		return rc;
	}
	/*
	 * a lock held elsewhere is retried for a moment before the refusal:
	 * a child that another thread of this process forks holds a copy of
	 * every descriptor until its exec closes the O_CLOEXEC ones, and with
	 * it the lock of a store this process just closed, so an open at once
	 * after the close found its own old lock
	 */
	int waited_us = 0;
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK && waited_us < AP_LOCK_RETRY_US) {
			usleep(1000);
			waited_us += 1000;
			continue;
		}
		int e = errno == EWOULDBLOCK ? EAGAIN : errno;
		close(fd);
		pthread_mutex_unlock(&ap_shares_lock);
		return ap_fail(-e, "cannot lock '%s': %s", path, e == EAGAIN ?
			"it is open in another process (or locked by another "
			"open)" : strerror(e));
	}
	size_t total = AP_SHARE_STATUS_AT(n) + AP_SHARE_STATUS_BYTES;
	f = calloc(1, sizeof(*f));
	void *mem = NULL;
	if (f != NULL && ap_spare_mem != NULL && ap_spare_total == total) {
		mem = ap_spare_mem;
		ap_spare_mem = NULL;
	}
	if (f == NULL || total < n ||
	    (mem == NULL && posix_memalign(&mem, 64, total) != 0)) {
		free(f);
		close(fd);
		pthread_mutex_unlock(&ap_shares_lock);
		return ap_fail(-ENOMEM, "share: out of memory (%zu bytes)", n);
	}
	memset(mem, 0, total);
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->fd = fd;
	f->size = n;
	f->mem = mem;
	f->status = (_Atomic int32_t *)((char *)mem + AP_SHARE_STATUS_AT(n));
	struct ap_share *o = ap_new_open(f);
	if (o == NULL) {
		free(mem);
		free(f);
		close(fd);
		pthread_mutex_unlock(&ap_shares_lock);
		return ap_fail(-ENOMEM, "share: out of memory");
	}
	atomic_store(&f->status[ST_CREATOR], o->slot + 1); /* generation 0 */
	f->next = ap_shares;
	ap_shares = f;
	*out = o;
	pthread_mutex_unlock(&ap_shares_lock);
	return 1;
}

/* ap_share_address -- the shared block of a share */
void *
ap_share_address(struct ap_share *s)
{
	return s == NULL ? NULL : s->file->mem;
}

/* ap_share_close -- leave a share; returns the opens that remain */
int
ap_share_close(struct ap_share *s)
{
	if (s == NULL)
		return ap_fail(AP_E_INVALID_ARG, "share: NULL handle");
	pthread_mutex_lock(&ap_shares_lock);
	/* find the open among the live ones before touching it */
	struct ap_share_file *f = ap_shares;
	struct ap_share *o = NULL;
	for (; f != NULL && o == NULL; f = f->next) {
		for (o = f->opens; o != NULL && o != s; o = o->file_next)
			;
	}
	if (o == NULL) {
		pthread_mutex_unlock(&ap_shares_lock);
		return ap_fail(AP_E_INVALID_ARG, "share: not open");
	}
	f = o->file;
	ap_unlink_open(o);
	if (o->slot >= 0) {
		/* the next open of the slot is told apart from this one */
		_Atomic int32_t *w = &f->status[AP_SHARE_STATUS_HEAD + o->slot];
		atomic_store(w, AP_SLOT_WORD(AP_SLOT_GEN(*w) + 1, SLOT_FREE));
	}
	free(o);
	int left = ap_file_drop(f);
	pthread_mutex_unlock(&ap_shares_lock);
	return left;
}
