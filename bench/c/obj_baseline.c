/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * obj_baseline.c -- the native floor of the "obj" bench suite:
 * libpmemobj's transactions
 *
 * Usage: obj_baseline <pool-file> [--quick]
 *
 * Creates a 64 MiB libpmemobj pool at <pool-file> (the file must not
 * exist) with a 16 KiB root object, and measures, from one thread:
 *   tx <k> x 64 B        one transaction that snapshots k ranges of 64 B
 *                        of the root, 256 B apart (pmemobj_tx_add_range),
 *                        and overwrites them (memset), for k = 1, 8, 64
 *   tx alloc+free <n>    a transaction that allocates n bytes
 *                        (pmemobj_tx_alloc), then one that frees the
 *                        object (pmemobj_tx_free), its PMEMoid kept in
 *                        DRAM; one op is the pair, for n = 64 B and 4 KiB
 * then removes the pool. On tmpfs libpmemobj runs in its msync mode (the
 * persistence asyncpmem's page-granularity mappings use); set
 * PMEM_IS_PMEM_FORCE=1 for its flush mode. --quick runs each case a few
 * times (a smoke test: tests/obj_baseline_test.ts) instead of measuring.
 *
 * Method (as bench/lib.ts): the iteration count is tuned so one run takes
 * about 25 ms, and tuned again after each of 2 warm-up runs; then 7 timed
 * runs, of which the median ns/op is reported. Prints one JSON line per
 * case, in bench/lib.ts's format.
 *
 * Built and run by bench/run.ts (gcc -O2 ... -lpmem2 -lpmemobj).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libpmemobj.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bench.h"

#define SUITE "obj"
#define POOL_SIZE ((size_t)64 << 20)
#define ROOT_SIZE 16384

/* what the loops operate on; set before each case */
static struct {
	PMEMobjpool *pop;
	PMEMoid root;
	size_t ranges;
	size_t size;
} Ctx;

/* die -- print what failed, with libpmemobj's message, and exit */
static void
die(const char *what)
{
	fprintf(stderr, "obj_baseline: %s: %s\n", what, pmemobj_errormsg());
	exit(1);
}

/* loop_ranges -- n transactions of Ctx.ranges ranges of 64 B */
static void
loop_ranges(size_t n)
{
	char *base = pmemobj_direct(Ctx.root);
	for (size_t i = 0; i < n; i++) {
		TX_BEGIN(Ctx.pop) {
			for (size_t r = 0; r < Ctx.ranges; r++) {
				pmemobj_tx_add_range(Ctx.root, r * 256, 64);
				memset(base + r * 256, (int)i, 64);
			}
		} TX_ONABORT {
			die("transaction");
		} TX_END
	}
}

/* loop_alloc_free -- n pairs: a tx allocating, a tx freeing */
static void
loop_alloc_free(size_t n)
{
	for (volatile size_t i = 0; i < n; i++) {
		PMEMoid oid = OID_NULL;
		TX_BEGIN(Ctx.pop) {
			oid = pmemobj_tx_alloc(Ctx.size, 1);
		} TX_ONABORT {
			die("tx alloc");
		} TX_END
		TX_BEGIN(Ctx.pop) {
			pmemobj_tx_free(oid);
		} TX_ONABORT {
			die("tx free");
		} TX_END
	}
}

int
main(int argc, char *argv[])
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s <pool-file> [--quick]\n", argv[0]);
		return 2;
	}
	const char *path = argv[1];
	int quick = argc > 2 && strcmp(argv[2], "--quick") == 0;
	if (unlink(path) != 0 && errno != ENOENT) {
		perror(path);
		return 1;
	}
	Ctx.pop = pmemobj_create(path, "bench", POOL_SIZE, 0600);
	if (Ctx.pop == NULL)
		die("pmemobj_create");
	Ctx.root = pmemobj_root(Ctx.pop, ROOT_SIZE);
	if (OID_IS_NULL(Ctx.root))
		die("pmemobj_root");
	const size_t ranges[] = {1, 8, 64};
	char name[64];
	for (int i = 0; i < 3; i++) {
		Ctx.ranges = ranges[i];
		snprintf(name, sizeof(name), "tx %zu x 64 B", ranges[i]);
		if (quick) {
			loop_ranges(3);
			printf("{\"suite\":\"%s\",\"case\":\"%s\"}\n", SUITE, name);
		} else {
			bench_case(SUITE, name, loop_ranges, 1, 0);
		}
	}
	const size_t sizes[] = {64, 4096};
	const char *labels[] = {"64 B", "4 KiB"};
	for (int i = 0; i < 2; i++) {
		Ctx.size = sizes[i];
		snprintf(name, sizeof(name), "tx alloc+free %s", labels[i]);
		if (quick) {
			loop_alloc_free(3);
			printf("{\"suite\":\"%s\",\"case\":\"%s\"}\n", SUITE, name);
		} else {
			bench_case(SUITE, name, loop_alloc_free, 1, 0);
		}
	}
	pmemobj_close(Ctx.pop);
	if (unlink(path) != 0) {
		perror(path);
		return 1;
	}
	return 0;
}
