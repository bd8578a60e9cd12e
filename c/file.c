/* SPDX-License-Identifier: BSD-3-Clause */
/* file.c -- advisory whole-file locks (flock), as libpmemblk takes them */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "internal.h"

/* ap_file_lock -- open path and flock it exclusively; returns the fd */
int
ap_file_lock(const char *path, double path_len)
{
	int rc = ap_path_arg(path, path_len);
	if (rc)
		return rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
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
