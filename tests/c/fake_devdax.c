/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fake_devdax.c -- an LD_PRELOAD library that makes libpmem2 take the
 * character devices /dev/null and /dev/zero for two device DAX devices:
 * a source of either is libpmem2's anonymous source, and the unsafe
 * shutdown count of /dev/null's is 42 (a PMem namespace in devdax mode),
 * while /dev/zero's is refused as an anonymous source's is, with
 * PMEM2_E_NOSUPP (a DAX device no namespace backs, like an hmem one).
 * Every other source goes to libpmem2 as it is. Device nodes live on
 * devtmpfs, a file system with no device number of its own (major 0),
 * as /dev/dax* do.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <libpmem2.h>

/* the source made for /dev/null (its count is 42) */
static struct pmem2_source *counted;

/* real -- libpmem2's own `name` (loaded by the shim, in its own scope) */
static void *
real(const char *name)
{
	void *lib = dlopen("libpmem2.so.1", RTLD_NOW | RTLD_NOLOAD);
	return lib == NULL ? NULL : dlsym(lib, name);
}

int
pmem2_source_from_fd(struct pmem2_source **src, int fd)
{
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) &&
			major(st.st_rdev) == 1 &&
			(minor(st.st_rdev) == 3 || minor(st.st_rdev) == 5)) {
		int (*anon)(struct pmem2_source **, size_t) =
			(int (*)(struct pmem2_source **, size_t))
			real("pmem2_source_from_anon");
		int rc = anon(src, 4096);
		if (rc == 0 && minor(st.st_rdev) == 3)
			counted = *src;
		return rc;
	}
	int (*from_fd)(struct pmem2_source **, int) =
		(int (*)(struct pmem2_source **, int))
		real("pmem2_source_from_fd");
	return from_fd(src, fd);
}

int
pmem2_source_device_usc(const struct pmem2_source *src, uint64_t *usc)
{
	if (src != NULL && src == counted) {
		*usc = 42;
		return 0;
	}
	int (*device_usc)(const struct pmem2_source *, uint64_t *) =
		(int (*)(const struct pmem2_source *, uint64_t *))
		real("pmem2_source_device_usc");
	return device_usc(src, usc);
}
