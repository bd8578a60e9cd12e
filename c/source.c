/* SPDX-License-Identifier: BSD-3-Clause */
/* source.c -- sources over libpmem2: files, fds, anonymous memory, and
 * their device's properties and bad blocks */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "internal.h"

/* ap_source_wrap -- build an ap_source around an fd or anon pmem2 source */
static int
ap_source_wrap(struct ap_source **out, struct pmem2_source *ps, int fd,
	int owns)
{
	struct ap_source *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		pmem2_source_delete(&ps);
		if (owns)
			close(fd);
		return ap_fail(-ENOMEM, "cannot allocate source");
	}
	s->src = ps;
	s->fd = fd;
	s->owns_fd = owns;
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
			major(st.st_dev) == 0) {
		s->keeps_refusals = 1;
		s->refusal_dev = st.st_dev;
	}
	*out = s;
	return 0;
}

/*
 * ap_pmem2_source -- pmem2_source_from_fd with a message for every
 * refusal: libpmem2 sets none for a character device that is not device
 * DAX (/dev/null), so the error said only "failed (code -100005)"; path
 * names the file (NULL: a caller's fd)
 */
static int
ap_pmem2_source(struct pmem2_source **ps, int fd, const char *path)
{
	int rc = pmem2_source_from_fd(ps, fd);
	if (rc == 0)
		return 0;
	const char *why = pmem2_errormsg();
	if (rc == PMEM2_E_INVALID_FILE_TYPE && (why == NULL || !*why)) {
		if (path == NULL)
			return ap_fail(rc, "cannot map fd %d: not a regular file "
				"or a device DAX character device", fd);
		return ap_fail(rc, "cannot map '%s': not a regular file or a "
			"device DAX character device", path);
	}
	return ap_fail_pmem2(rc, "pmem2_source_from_fd");
}

/*
 * ap_source_create -- open path, creating it when missing; *created tells
 * whether this call made the file (so a failure after it removes it). A
 * plain O_CREAT cannot tell: the open is tried without it first, then
 * with O_EXCL. A file made by another process in between (EEXIST) is
 * opened as found, as is a dangling symlink's target, which O_EXCL
 * refuses to create (then *created stays 0: the file is not removed).
 */
static int
ap_source_create(const char *path, int oflags, mode_t mode, int *created)
{
	*created = 0;
	int fd = ap_open_file(path, oflags, 0);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	fd = ap_open_file(path, oflags | O_CREAT | O_EXCL, mode);
	if (fd >= 0) {
		*created = 1;
		return fd;
	}
	if (errno != EEXIST)
		return -1;
	return ap_open_file(path, oflags | O_CREAT, mode);
}

/*
 * ap_source_open -- open/create a file, extend it to size, wrap it;
 * returns 1 when this call created the file, 0 when it was there
 */
int
ap_source_open(struct ap_source **out, const char *path, double path_len,
	double size, uint32_t flags, uint32_t mode)
{
	size_t want;
	int rc = ap_to_size(size, &want, "size");
	if (rc || (rc = ap_path_arg(path, path_len)))
		return rc;
	if (out == NULL)
		return ap_fail(AP_E_INVALID_ARG, "source: missing argument");
	*out = NULL;
	ap_pmem2_reset();
	int oflags = (flags & AP_OPEN_READONLY) ? O_RDONLY : O_RDWR;
	int created = 0;
	int fd;
	if (flags & AP_OPEN_EXCLUSIVE) {
		fd = ap_open_file(path, oflags | O_CREAT | O_EXCL, (mode_t)mode);
		created = fd >= 0;
	} else if (flags & AP_OPEN_CREATE) {
		fd = ap_source_create(path, oflags, (mode_t)mode, &created);
	} else {
		fd = ap_open_file(path, oflags, 0);
	}
	if (fd < 0)
		return ap_fail(-errno, "cannot open '%s': %s", path,
			strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = ap_fail(-errno, "cannot stat '%s': %s", path,
			strerror(errno));
		goto err;
	}
	if (want > 0 && S_ISREG(st.st_mode) && (size_t)st.st_size < want) {
		if (flags & AP_OPEN_READONLY) {
			rc = ap_fail(AP_E_INVALID_ARG,
				"cannot extend '%s': opened read-only", path);
			goto err;
		}
		/*
		 * Refuse at once what the file system cannot hold: on tmpfs
		 * posix_fallocate takes the space a page at a time and gives
		 * it back only when it fails, so a size beyond the free space
		 * filled the whole file system for as long as that took (a
		 * minute for 20 GB), failing every other writer meanwhile
		 */
		struct statvfs fs;
		if (!(flags & AP_OPEN_SPARSE) && fstatvfs(fd, &fs) == 0 &&
				fs.f_frsize > 0 && (want - (size_t)st.st_size) /
				fs.f_frsize > fs.f_bavail) {
			rc = ap_fail(-ENOSPC, "cannot extend '%s' to %zu bytes: "
				"%s (%llu bytes are free on its file system)",
				path, want, strerror(ENOSPC),
				(unsigned long long)fs.f_bavail * fs.f_frsize);
			goto err;
		}
		int e = (flags & AP_OPEN_SPARSE) ?
			(ftruncate(fd, (off_t)want) == 0 ? 0 : errno) :
			posix_fallocate(fd, 0, (off_t)want);
		if (e != 0) {
			rc = ap_fail(-e, "cannot extend '%s' to %zu bytes: %s",
				path, want, strerror(e));
			goto err;
		}
	}
	struct pmem2_source *ps;
	rc = ap_pmem2_source(&ps, fd, path);
	if (rc)
		goto err;
	rc = ap_source_wrap(out, ps, fd, 1);
	if (rc) {
		/* the wrap closed the fd; the file is not left behind */
		if (created)
			unlink(path);
		return rc;
	}
	/* 1: this call made the file (a mapping that fails removes it) */
	return created ? 1 : 0;
err:
	close(fd);
	/* a file this call created is not left behind: a create that failed
	 * to extend it (ENOSPC) would leave an empty file, and an exclusive
	 * retry would then fail with EEXIST */
	if (created)
		unlink(path);
	return rc;
}

/* ap_source_from_fd -- wrap a caller-owned fd */
int
ap_source_from_fd(struct ap_source **out, int fd)
{
	struct pmem2_source *ps;
	ap_pmem2_reset();
	int rc = ap_pmem2_source(&ps, fd, NULL);
	if (rc)
		return rc;
	return ap_source_wrap(out, ps, fd, 0);
}

/* ap_source_from_anon -- anonymous memory as a source */
int
ap_source_from_anon(struct ap_source **out, double size)
{
	size_t n;
	int rc = ap_to_size(size, &n, "size");
	if (rc)
		return rc;
	struct pmem2_source *ps;
	ap_pmem2_reset();
	rc = pmem2_source_from_anon(&ps, n);
	if (rc)
		return ap_fail_pmem2(rc, "pmem2_source_from_anon");
	return ap_source_wrap(out, ps, -1, 0);
}

/* ap_source_delete -- free the source and close an owned fd */
void
ap_source_delete(struct ap_source **src)
{
	if (src == NULL || *src == NULL)
		return;
	struct ap_source *s = *src;
	pmem2_source_delete(&s->src);
	if (s->owns_fd && s->fd >= 0)
		close(s->fd);
	free(s);
	*src = NULL;
}

/* ap_source_size -- current size (st_size for regular files) */
int
ap_source_size(struct ap_source *src, double *out)
{
	size_t n;
	ap_pmem2_reset();
	int rc = pmem2_source_size(src->src, &n);
	if (rc)
		return ap_fail_pmem2(rc, "pmem2_source_size");
	*out = (double)n;
	return 0;
}

/* ap_source_alignment -- required mapping alignment */
int
ap_source_alignment(struct ap_source *src, double *out)
{
	size_t n;
	ap_pmem2_reset();
	int rc = pmem2_source_alignment(src->src, &n);
	if (rc)
		return ap_fail_pmem2(rc, "pmem2_source_alignment");
	*out = (double)n;
	return 0;
}

/* ap_source_fd -- the fd behind the source */
int
ap_source_fd(struct ap_source *src)
{
	if (src->fd < 0)
		return ap_fail(PMEM2_E_FILE_DESCRIPTOR_NOT_SET,
			"anonymous source has no file descriptor");
	return src->fd;
}

/*
 * A device query refused for a file on a file system with no device of
 * its own (major number 0: tmpfs, overlayfs, FUSE) is kept, code and
 * message, and given again for every file there. libpmem2 spends about
 * 0.4 ms to find that no ndctl namespace backs such a file (it builds
 * ndctl and kmod contexts and walks sysfs), and every open of a pool
 * asks it three times (the shutdown state's count and id); no namespace
 * is ever a major-0 device, so the answer cannot change while the
 * process runs. A device with a number of its own is asked every time:
 * numbers are reused when devices come and go. Only a regular file's
 * refusal is kept: a device DAX node lies on devtmpfs (major 0) too, but
 * libpmem2 asks about the device it names, which answers for itself (an
 * hmem device refuses, a PMem namespace's gives its count). What the
 * source's file was is recorded when the source is made (ap_source_wrap),
 * as libpmem2 records what it answers for: a caller may close its fd and
 * the number go to another file.
 */
#define AP_QUERY_USC 0
#define AP_QUERY_ID 1
#define AP_REFUSALS 8

struct ap_refusal {
	dev_t dev;
	int query;
	int code;
	char msg[256];
};

static struct ap_refusal ap_refusals[AP_REFUSALS];
static int ap_refusal_count;
static pthread_mutex_t ap_refusals_lock = PTHREAD_MUTEX_INITIALIZER;

/* ap_refusal_find -- give a kept refusal of src's query again; else 0 */
static int
ap_refusal_find(const struct ap_source *src, int query)
{
	if (!src->keeps_refusals)
		return 0;
	int code = 0;
	pthread_mutex_lock(&ap_refusals_lock);
	for (int i = 0; i < ap_refusal_count; i++) {
		struct ap_refusal *r = &ap_refusals[i];
		if (r->dev == src->refusal_dev && r->query == query) {
			code = ap_fail(r->code, "%s", r->msg);
			break;
		}
	}
	pthread_mutex_unlock(&ap_refusals_lock);
	return code;
}

/*
 * ap_refusal_keep -- keep this thread's failure (code) of src's query
 * when it may be given again (a refusal, of a source that keeps them);
 * returns code
 */
static int
ap_refusal_keep(const struct ap_source *src, int query, int code)
{
	if (!src->keeps_refusals || code != PMEM2_E_NOSUPP)
		return code;
	pthread_mutex_lock(&ap_refusals_lock);
	if (ap_refusal_count < AP_REFUSALS) {
		struct ap_refusal *r = &ap_refusals[ap_refusal_count++];
		r->dev = src->refusal_dev;
		r->query = query;
		r->code = code;
		ap_errormsg(r->msg, sizeof(r->msg));
	}
	pthread_mutex_unlock(&ap_refusals_lock);
	return code;
}

/* ap_source_device_usc -- unsafe shutdown count */
int
ap_source_device_usc(struct ap_source *src, double *out)
{
	int rc = ap_refusal_find(src, AP_QUERY_USC);
	if (rc)
		return rc;
	uint64_t usc = 0;
	ap_pmem2_reset();
	rc = pmem2_source_device_usc(src->src, &usc);
	if (rc)
		return ap_refusal_keep(src, AP_QUERY_USC,
			ap_fail_pmem2(rc, "unsafe shutdown count"));
	*out = (double)usc;
	return 0;
}

/* ap_source_device_id -- two-step: length, then the id itself */
int
ap_source_device_id(struct ap_source *src, char *buf, uint32_t cap,
	uint32_t *len)
{
	int rc = ap_refusal_find(src, AP_QUERY_ID);
	if (rc)
		return rc;
	size_t n = 0;
	ap_pmem2_reset();
	rc = pmem2_source_device_id(src->src, NULL, &n);
	if (rc)
		return ap_refusal_keep(src, AP_QUERY_ID,
			ap_fail_pmem2(rc, "device id"));
	*len = (uint32_t)n;
	if (buf == NULL || cap < n)
		return 0;
	rc = pmem2_source_device_id(src->src, buf, &n);
	if (rc)
		return ap_fail_pmem2(rc, "device id");
	return 0;
}

/* ap_source_numa_node -- NUMA node of the backing device */
int
ap_source_numa_node(struct ap_source *src, int32_t *out)
{
	int node = -1;
	ap_pmem2_reset();
	int rc = pmem2_source_numa_node(src->src, &node);
	if (rc)
		return ap_fail_pmem2(rc, "numa node");
	*out = node;
	return 0;
}

/* ap_badblocks -- list up to max_pairs bad blocks; returns the count */
int
ap_badblocks(struct ap_source *src, double *out, uint32_t max_pairs)
{
	struct pmem2_badblock_context *ctx;
	ap_pmem2_reset();
	int rc = pmem2_badblock_context_new(&ctx, src->src);
	if (rc)
		return ap_fail_pmem2(rc, "bad block context");
	struct pmem2_badblock bb;
	int n = 0;
	while ((rc = pmem2_badblock_next(ctx, &bb)) == 0) {
		if ((uint32_t)n < max_pairs) {
			out[2 * n] = (double)bb.offset;
			out[2 * n + 1] = (double)bb.length;
		}
		n++;
	}
	if (rc != PMEM2_E_NO_BAD_BLOCK_FOUND) {
		rc = ap_fail_pmem2(rc, "bad block iteration");
		pmem2_badblock_context_delete(&ctx);
		return rc;
	}
	pmem2_badblock_context_delete(&ctx);
	return n;
}

/* ap_badblock_clear -- clear one bad block range */
int
ap_badblock_clear(struct ap_source *src, double offset, double length)
{
	size_t off, len;
	int rc = ap_to_size(offset, &off, "offset");
	if (rc || (rc = ap_to_size(length, &len, "length")))
		return rc;
	struct pmem2_badblock_context *ctx;
	ap_pmem2_reset();
	rc = pmem2_badblock_context_new(&ctx, src->src);
	if (rc)
		return ap_fail_pmem2(rc, "bad block context");
	struct pmem2_badblock bb = { .offset = off, .length = len };
	rc = pmem2_badblock_clear(ctx, &bb);
	if (rc)
		rc = ap_fail_pmem2(rc, "bad block clear");
	pmem2_badblock_context_delete(&ctx);
	return rc;
}
