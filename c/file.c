/* SPDX-License-Identifier: BSD-3-Clause */
/* file.c -- opening files without blocking, and advisory whole-file locks
 * (flock), as libpmemblk takes them */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "internal.h"

/*
 * ap_open_file -- open(2) that never blocks in the open itself: a FIFO
 * opened O_RDONLY waits for a writer (for ever, when none comes), so every
 * open is made O_NONBLOCK, and the flag is cleared again on the descriptor
 * (the caller gets an ordinary one). A conflicting lease makes a
 * nonblocking open of a regular file fail with EWOULDBLOCK: that open is
 * then retried blocking, as a plain open would have waited for the lease's
 * break. Returns the fd, or -1 with errno set.
 */
int
ap_open_file(const char *path, int flags, mode_t mode)
{
	int fd = open(path, flags | O_NONBLOCK | O_CLOEXEC, mode);
	if (fd < 0 && errno == EWOULDBLOCK)
		return open(path, flags | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* ap_file_lock -- open path and flock it exclusively; returns the fd */
int
ap_file_lock(const char *path, double path_len)
{
	int rc = ap_path_arg(path, path_len);
	if (rc)
		return rc;
	int fd = ap_open_file(path, O_RDONLY, 0);
	if (fd < 0)
		return ap_fail(-errno, "cannot open '%s' to lock it: %s", path,
			strerror(errno));
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EINTR)
			continue;
		int e = errno == EWOULDBLOCK ? EAGAIN : errno;
		close(fd);
		return ap_fail(-e, "cannot lock '%s': %s", path,
			e == EAGAIN ? "it is locked by another open" :
			strerror(e));
	}
	return fd;
}

/* ap_file_unlock -- close a descriptor from ap_file_lock (drops the lock) */
int
ap_file_unlock(int fd)
{
	if (fd < 0)
		return ap_fail(AP_E_INVALID_ARG, "unlock: bad descriptor %d", fd);
	if (close(fd) != 0)
		return ap_fail(-errno, "unlock: %s", strerror(errno));
	return 0;
}
