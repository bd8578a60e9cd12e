/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mover_baseline.c -- the native floor of the "mover" bench suite
 *
 * Usage: mover_baseline <pool-file>
 *
 * The physical reference of bench/mover_bench.ts (miniasync's method, see
 * shared/reference/miniasync.md section 3.2): sixteen distinct buffer pairs,
 * pre-faulted, copied sequentially on one core.
 *   memcpy <n> x1          one memcpy(dst[k], src[k], n) per iteration,
 *                          k cycling over the 16 pairs
 *   memcpy <n> x16         the 16 pairs copied in turn per iteration
 *   pmem2 NOFLUSH 1 MiB xD pmem2_get_memcpy_fn(map)(dst[k], src[k], 1 MiB,
 *                          PMEM2_F_MEM_NOFLUSH), dst[k] at k MiB of a
 *                          page-granularity mapping of the pool file
 *   pmem2 durable 1 MiB xD the same with flags 0 (a copy, then msync)
 * for n = 64 B, 4 KiB, 64 KiB, 1 MiB. Source k lies at k * n of one
 * 4 KiB-aligned region and destination k at 16 MiB + k * n, the layout
 * mover_bench.ts uses on the JavaScript heap. Each case reports ns per
 * copy (not per iteration).
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

#define SUITE "mover"
#define PAIRS 16
#define MAX_COPY ((size_t)1 << 20)
#define REGION (2 * PAIRS * MAX_COPY)
#define POOL_SIZE (PAIRS * MAX_COPY)

/* what the loops operate on; set before each case */
static struct {
	char *src;
	char *dst;
	size_t len;
	unsigned flags;
	pmem2_memcpy_fn memcpy_fn;
} Ctx;

/* loop_memcpy1 -- n copies, cycling over the pairs */
static void
loop_memcpy1(size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t off = (i % PAIRS) * Ctx.len;
		memcpy(Ctx.dst + off, Ctx.src + off, Ctx.len);
		__asm__ volatile("" : : "r"(Ctx.dst) : "memory");
	}
}

/* loop_memcpy16 -- n rounds of the 16 pairs copied in turn */
static void
loop_memcpy16(size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < PAIRS; k++) {
			size_t off = k * Ctx.len;
			memcpy(Ctx.dst + off, Ctx.src + off, Ctx.len);
			__asm__ volatile("" : : "r"(Ctx.dst) : "memory");
		}
	}
}

/* loop_pmem2_1 -- n libpmem2 copies into the mapping, cycling */
static void
loop_pmem2_1(size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t k = i % PAIRS;
		Ctx.memcpy_fn(Ctx.dst + k * MAX_COPY, Ctx.src + k * MAX_COPY,
			MAX_COPY, Ctx.flags);
	}
}

/* loop_pmem2_16 -- n rounds of 16 libpmem2 copies into the mapping */
static void
loop_pmem2_16(size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < PAIRS; k++)
			Ctx.memcpy_fn(Ctx.dst + k * MAX_COPY,
				Ctx.src + k * MAX_COPY, MAX_COPY, Ctx.flags);
}

/* bench -- measure one case of `per` copies per iteration; print its line */
static void
bench(const char *name, void (*loop)(size_t), size_t per)
{
	bench_case(SUITE, name, loop, per, Ctx.len);
}


int
main(int argc, char *argv[])
{
	static const struct {
		const char *label;
		size_t len;
	} sizes[] = {
		{ "64 B", 64 },
		{ "4 KiB", 4096 },
		{ "64 KiB", 64 << 10 },
		{ "1 MiB", MAX_COPY },
	};
	if (argc != 2) {
		fprintf(stderr, "usage: %s <pool-file>\n", argv[0]);
		return 2;
	}
	char *region = aligned_alloc(4096, REGION);
	if (region == NULL) {
		perror("aligned_alloc");
		exit(1);
	}
	memset(region, 0xa5, REGION / 2);
	memset(region + REGION / 2, 0, REGION / 2);

	char name[64];
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		Ctx.src = region;
		Ctx.dst = region + REGION / 2;
		Ctx.len = sizes[i].len;
		snprintf(name, sizeof(name), "memcpy %s x1", sizes[i].label);
		bench(name, loop_memcpy1, 1);
		snprintf(name, sizeof(name), "memcpy %s x16", sizes[i].label);
		bench(name, loop_memcpy16, PAIRS);
	}

	struct pmem2_map *map = bench_map_file(argv[1], POOL_SIZE);
	Ctx.src = region;
	Ctx.dst = pmem2_map_get_address(map);
	Ctx.len = MAX_COPY;
	Ctx.memcpy_fn = pmem2_get_memcpy_fn(map);
	memset(Ctx.dst, 0, POOL_SIZE);
	Ctx.flags = PMEM2_F_MEM_NOFLUSH;
	bench("pmem2 NOFLUSH 1 MiB x1", loop_pmem2_1, 1);
	bench("pmem2 NOFLUSH 1 MiB x16", loop_pmem2_16, PAIRS);
	Ctx.flags = 0;
	bench("pmem2 durable 1 MiB x1", loop_pmem2_1, 1);
	bench("pmem2 durable 1 MiB x16", loop_pmem2_16, PAIRS);

	pmem2_map_delete(&map);
	free(region);
	return 0;
}
