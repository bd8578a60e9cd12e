/* SPDX-License-Identifier: BSD-3-Clause */
/* file.c -- opening files without blocking */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
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

