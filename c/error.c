/* SPDX-License-Identifier: BSD-3-Clause */
/* error.c -- thread-local error messages and code conversion */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "internal.h"

#define AP_MSG_MAX 512

static __thread char ap_msg[AP_MSG_MAX];

/* ap_fail -- format the message for the calling thread and return code */
int
ap_fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ap_msg, sizeof(ap_msg), fmt, ap);
	va_end(ap);
	return code;
}

/* ap_fail_pmem2 -- capture libpmem2's thread-local message right now */
int
ap_fail_pmem2(int code, const char *what)
{
	const char *m = pmem2_errormsg();
	/*
	 * libpmem2 leaves no message for some refusals (device id of a file
	 * not on DAX): a bare code tells a user nothing
	 */
	if ((m == NULL || m[0] == '\0') && code == PMEM2_E_NOSUPP)
		return ap_fail(code, "%s: not supported for this source", what);
	if (m == NULL || m[0] == '\0')
		return ap_fail(code, "%s failed (code %d)", what, code);
	return ap_fail(code, "%s: %s", what, m);
}

/*
 * ap_pmem2_reset -- empty libpmem2's thread-local message. libpmem2 has no
 * call for it; pmem2_errormsg() returns that thread's message buffer
 * (malloc'd per thread, or a thread-local array in later releases), which
 * is written here only when it holds a message, so never a literal "".
 */
void
ap_pmem2_reset(void)
{
	char *m = (char *)pmem2_errormsg();
	if (m != NULL && m[0] != '\0')
		m[0] = '\0';
}

/* ap_abi_version -- the ABI this build implements */
int
ap_abi_version(void)
{
	return AP_ABI_VERSION;
}

/* ap_errormsg -- copy the last message of this thread into buf */
int
ap_errormsg(char *buf, uint32_t cap)
{
	size_t n = strnlen(ap_msg, sizeof(ap_msg));
	if (buf != NULL && cap > 0) {
		size_t c = n < cap - 1 ? n : cap - 1;
		memcpy(buf, ap_msg, c);
		buf[c] = '\0';
	}
	return (int)n;
}

/* ap_err_to_errno -- libpmem2's rule (its own copy is not exported) */
int
ap_err_to_errno(int code)
{
	if (code >= 0)
		return 0;
	if (code == PMEM2_E_NOSUPP)
		return ENOTSUP;
	if (code == AP_E_RANGE)
		return ERANGE;
	if (code == AP_E_CLOSED)
		return EBADF;
	if (code == AP_E_BUSY)
		return EBUSY;
	if (code <= -100000)
		return EINVAL;
	return -code;
}

/* ap_to_size -- a double that must hold a non-negative safe integer */
int
ap_to_size(double v, size_t *out, const char *name)
{
	if (!(v >= 0) || v > AP_MAX_SAFE || v != (double)(uint64_t)v)
		return ap_fail(AP_E_INVALID_ARG,
			"%s must be a non-negative integer: %g", name, v);
	*out = (size_t)v;
	return 0;
}

/* ap_path_arg -- a path from JavaScript: NUL-terminated within path_len */
int
ap_path_arg(const char *path, double path_len)
{
	size_t n = 0;
	int rc = ap_to_size(path_len, &n, "path length");
	if (rc)
		return rc;
	if (path == NULL || n == 0 || memchr(path, 0, n) == NULL)
		return ap_fail(AP_E_INVALID_ARG,
			"path is not NUL-terminated within its %zu bytes", n);
	return 0;
}

/* ap_range -- [off, off+len) must lie inside [0, size) */
int
ap_range(size_t off, size_t len, size_t size, const char *what)
{
	if (off > size || len > size - off)
		return ap_fail(AP_E_RANGE,
			"%s out of range: offset %zu + length %zu > %zu",
			what, off, len, size);
	return 0;
}
