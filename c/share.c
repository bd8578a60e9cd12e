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
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

struct ap_share {
	dev_t dev;
	ino_t ino;
	int fd;            /* holds the flock */
	uint32_t refs;
	size_t size;
	void *mem;         /* size bytes, zeroed at creation, 64-aligned */
	struct ap_share *next;
};

static pthread_mutex_t ap_shares_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ap_share *ap_shares;

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
	int fd = open(path, O_RDONLY | O_CLOEXEC);
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
	struct ap_share *s = ap_shares;
	while (s != NULL && (s->dev != st.st_dev || s->ino != st.st_ino))
		s = s->next;
	if (s != NULL) {
		close(fd);
		if (s->size != n) {
			rc = ap_fail(AP_E_INVALID_ARG,
				"'%s' is open in this process with %zu bytes "
				"of shared state, not %zu", path, s->size, n);
		} else {
			s->refs++;
			*out = s;
			rc = 0;
		}
		pthread_mutex_unlock(&ap_shares_lock);
		return rc;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EINTR)
			continue;
		int e = errno == EWOULDBLOCK ? EAGAIN : errno;
		close(fd);
		pthread_mutex_unlock(&ap_shares_lock);
		return ap_fail(-e, "cannot lock '%s': %s", path, e == EAGAIN ?
			"it is open in another process (or locked by another "
			"open)" : strerror(e));
	}
	s = calloc(1, sizeof(*s));
	void *mem = NULL;
	if (s == NULL || posix_memalign(&mem, 64, n) != 0) {
		free(s);
		close(fd);
		pthread_mutex_unlock(&ap_shares_lock);
		return ap_fail(-ENOMEM, "share: out of memory (%zu bytes)", n);
	}
	memset(mem, 0, n);
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->fd = fd;
	s->refs = 1;
	s->size = n;
	s->mem = mem;
	s->next = ap_shares;
	ap_shares = s;
	*out = s;
	pthread_mutex_unlock(&ap_shares_lock);
	return 1;
}

/* ap_share_address -- the shared block of a share */
void *
ap_share_address(struct ap_share *s)
{
	return s == NULL ? NULL : s->mem;
}

/* ap_share_close -- leave a share; returns the opens that remain */
int
ap_share_close(struct ap_share *s)
{
	if (s == NULL)
		return ap_fail(AP_E_INVALID_ARG, "share: NULL handle");
	pthread_mutex_lock(&ap_shares_lock);
	struct ap_share **link = &ap_shares;
	while (*link != NULL && *link != s)
		link = &(*link)->next;
	if (*link == NULL || s->refs == 0) {
		pthread_mutex_unlock(&ap_shares_lock);
		return ap_fail(AP_E_INVALID_ARG, "share: not open");
	}
	int left = (int)--s->refs;
	if (left == 0) {
		*link = s->next;
		close(s->fd);
		free(s->mem);
		free(s);
	}
	pthread_mutex_unlock(&ap_shares_lock);
	return left;
}
