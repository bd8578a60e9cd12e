/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * baseline.c -- the native floor of the "pmem2" bench suite
 *
 * Usage: baseline <pool-file>
 *
 * Creates the pool file if needed (4 MiB), maps it with libpmem2 at page
 * granularity and measures, in C, what bench/pmem2_bench.ts measures from
 * TypeScript:
 *   ffi call              an empty out-of-line function call
 *   memcpy NOFLUSH <n>    pmem2_get_memcpy_fn(map)(dst, src, n, NOFLUSH)
 *   memcpy durable <n>    the same with flags 0 (on a page map: + msync)
 *   persist 64 B          pmem2_get_persist_fn(map)(dst, 64) (msync)
 *   plain copy <n>        memcpy(dst, src, n)
 * for n = 64 B, 4 KiB, 1 MiB, always to offset 0 of the mapping.
 *
 * Method (as bench/lib.ts): the iteration count is tuned so one run takes
 * about 25 ms, and tuned again after each of 2 warm-up runs; then 7 timed
 * runs, of which the median ns/op is reported. Prints one JSON line per
 * case, in bench/lib.ts's format.
 *
 * Built and run by bench/run.ts (gcc -O2 ... -lpmem2).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <libpmem2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "bench.h"

#define SUITE "pmem2"
#define POOL_SIZE ((size_t)4 << 20)
#define MAX_COPY ((size_t)1 << 20)

/* what the loops operate on; set before each case */
static struct {
	char *dst;
	char *src;
	size_t len;
	unsigned flags;
	pmem2_memcpy_fn memcpy_fn;
	pmem2_persist_fn persist_fn;
} Ctx;

/* noop -- an empty function the optimizer may neither inline nor drop */
__attribute__((noipa)) static void
noop(void)
{
}

/* loop_call -- n empty calls */
static void
loop_call(size_t n)
{
	for (size_t i = 0; i < n; i++)
		noop();
}

/* loop_pmem2_memcpy -- n copies with libpmem2's memcpy and Ctx.flags */
static void
loop_pmem2_memcpy(size_t n)
{
	for (size_t i = 0; i < n; i++)
		Ctx.memcpy_fn(Ctx.dst, Ctx.src, Ctx.len, Ctx.flags);
}

/* loop_persist -- n persists of the first Ctx.len bytes */
static void
loop_persist(size_t n)
{
	for (size_t i = 0; i < n; i++)
		Ctx.persist_fn(Ctx.dst, Ctx.len);
}

/* loop_memcpy -- n libc copies, each kept by a compiler barrier */
static void
loop_memcpy(size_t n)
{
	for (size_t i = 0; i < n; i++) {
		memcpy(Ctx.dst, Ctx.src, Ctx.len);
		__asm__ volatile("" : : "r"(Ctx.dst) : "memory");
	}
}

/* bench -- measure one case and print its JSON line */
static void
bench(const char *name, void (*loop)(size_t))
{
	bench_case(SUITE, name, loop, 1, 0);
}

/* copies -- one case per size for a copy loop */
static void
copies(const char *what, void (*loop)(size_t))
{
	static const struct {
		const char *label;
		size_t len;
	} sizes[] = {
		{ "64 B", 64 },
		{ "4 KiB", 4096 },
		{ "1 MiB", MAX_COPY },
	};
	char name[64];
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		Ctx.len = sizes[i].len;
		snprintf(name, sizeof(name), "%s %s", what, sizes[i].label);
		bench(name, loop);
	}
}


int
main(int argc, char *argv[])
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s <pool-file>\n", argv[0]);
		return 2;
	}
	struct pmem2_map *map = bench_map_file(argv[1], POOL_SIZE);

	Ctx.dst = pmem2_map_get_address(map);
	Ctx.src = aligned_alloc(64, MAX_COPY);
	if (Ctx.src == NULL) {
		perror("aligned_alloc");
		exit(1);
	}
	memset(Ctx.src, 0xa5, MAX_COPY);
	Ctx.memcpy_fn = pmem2_get_memcpy_fn(map);
	Ctx.persist_fn = pmem2_get_persist_fn(map);

	bench("ffi call", loop_call);
	Ctx.flags = PMEM2_F_MEM_NOFLUSH;
	copies("memcpy NOFLUSH", loop_pmem2_memcpy);
	Ctx.flags = 0;
	copies("memcpy durable", loop_pmem2_memcpy);
	Ctx.len = 64;
	bench("persist 64 B", loop_persist);
	copies("plain copy", loop_memcpy);

	free(Ctx.src);
	pmem2_map_delete(&map);
	return 0;
}
