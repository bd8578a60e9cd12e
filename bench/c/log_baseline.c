/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * log_baseline.c -- the native floor of the "stream" bench suite:
 * libpmemlog's pmemlog_append, and a plain memcpy loop
 *
 * Usage: log_baseline <pool-file>
 *
 * Creates a 256 MiB libpmemlog pool at <pool-file> (pmemlog_create; the
 * file must not exist), fills it once and rewinds it (so every page is in
 * memory, as in a log that has been running: a first touch of a tmpfs
 * page costs more than the append), and measures, from one thread:
 *   append <n>    pmemlog_append(plp, buf, n), durable on return; when the
 *                 log is full it is rewound (pmemlog_rewind, counted)
 * for n = 64 B, 1 KiB and 4 KiB, then removes the pool; and
 *   memcpy <n>    memcpy of n bytes from consecutive places of a 64 MiB
 *                 buffer into one n-byte buffer (plain memory bandwidth,
 *                 the floor of iterating entries and reading their data)
 * On tmpfs libpmemlog runs in its msync mode (two msync calls per append:
 * the data, then the write offset), the persistence asyncpmem's page-
 * granularity mappings use; set PMEM_IS_PMEM_FORCE=1 for its flush mode.
 *
 * Method (as bench/lib.ts): the iteration count is tuned so one run takes
 * about 25 ms, and tuned again after each of 2 warm-up runs; then 7 timed
 * runs, of which the median ns/op is reported. Prints one JSON line per
 * case, in bench/lib.ts's format.
 *
 * Built and run by bench/run.ts (gcc -O2 ... -lpmem2 -lpmemlog).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libpmemlog.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bench.h"

#define SUITE "stream"
#define POOL_SIZE ((size_t)256 << 20)
#define COPY_SPAN ((size_t)64 << 20)

/* what the loops operate on; set before each case */
static struct {
	PMEMlogpool *plp;
	size_t len;
	unsigned char *buf;
	unsigned char *span;
	size_t at;
} Ctx;

/* die -- print what failed, with libpmemlog's message, and exit */
static void
die(const char *what)
{
	fprintf(stderr, "log_baseline: %s: %s\n", what, pmemlog_errormsg());
	exit(1);
}

/* loop_append -- n appends, rewinding when the log is full */
static void
loop_append(size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (pmemlog_append(Ctx.plp, Ctx.buf, Ctx.len) != 0) {
			if (errno != ENOSPC)
				die("pmemlog_append");
			pmemlog_rewind(Ctx.plp);
			i--;
		}
	}
}

/* loop_memcpy -- n copies of len bytes walking through the span */
static void
loop_memcpy(size_t n)
{
	size_t at = Ctx.at;
	for (size_t i = 0; i < n; i++) {
		if (at + Ctx.len > COPY_SPAN)
			at = 0;
		memcpy(Ctx.buf, Ctx.span + at, Ctx.len);
		__asm__ volatile("" : : "r"(Ctx.buf) : "memory");
		at += Ctx.len;
	}
	Ctx.at = at;
}

int
main(int argc, char *argv[])
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s <pool-file>\n", argv[0]);
		return 2;
	}
	const char *path = argv[1];
	if (unlink(path) != 0 && errno != ENOENT) {
		perror(path);
		return 1;
	}
	Ctx.plp = pmemlog_create(path, POOL_SIZE, 0600);
	if (Ctx.plp == NULL)
		die("pmemlog_create");
	Ctx.buf = aligned_alloc(64, 4096);
	Ctx.span = aligned_alloc(64, COPY_SPAN);
	if (Ctx.buf == NULL || Ctx.span == NULL) {
		perror("aligned_alloc");
		return 1;
	}
	memset(Ctx.buf, 0xa5, 4096);
	memset(Ctx.span, 0x5a, COPY_SPAN);
	while (pmemlog_append(Ctx.plp, Ctx.buf, 4096) == 0)
		;
	pmemlog_rewind(Ctx.plp);
	const size_t sizes[] = {64, 1024, 4096};
	const char *labels[] = {"64 B", "1 KiB", "4 KiB"};
	char name[64];
	for (int i = 0; i < 3; i++) {
		Ctx.len = sizes[i];
		snprintf(name, sizeof(name), "append %s", labels[i]);
		bench_case(SUITE, name, loop_append, 1, sizes[i]);
	}
	pmemlog_close(Ctx.plp);
	if (unlink(path) != 0) {
		perror(path);
		return 1;
	}
	for (int i = 0; i < 3; i++) {
		Ctx.len = sizes[i];
		Ctx.at = 0;
		snprintf(name, sizeof(name), "memcpy %s", labels[i]);
		bench_case(SUITE, name, loop_memcpy, 1, sizes[i]);
	}
	free(Ctx.buf);
	free(Ctx.span);
	return 0;
}
