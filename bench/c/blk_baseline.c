/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * blk_baseline.c -- the native floor of the "blk" bench suite: libpmemblk
 *
 * Usage: blk_baseline <pool-file>
 *
 * For each block size (512 B, then 4 KiB) creates a 64 MiB libpmemblk pool
 * at <pool-file> (pmemblk_create; the file must not exist), writes every
 * block once so that reads copy real data (and the BTT is laid out), then
 * measures, from one thread, at random LBAs:
 *   write <n>    pmemblk_write(pbp, buf, lba)   durable on return
 *   read <n>     pmemblk_read(pbp, buf, lba)
 * for n = 512 B and 4 KiB, and removes the pool. The LBAs come from a
 * xorshift32 generator (seed 2463534242, lba = x % nblock), the one
 * bench/blk_bench.ts uses (shared/reference/pmemblk.md section 4). On
 * tmpfs libpmemblk runs in its default msync mode (four msync calls per
 * write), the persistence asyncpmem's page-granularity mappings use; set
 * PMEM_IS_PMEM_FORCE=1 for its flush mode instead.
 *
 * Method (as bench/lib.ts): the iteration count is tuned so one run takes
 * about 25 ms, and tuned again after each of 2 warm-up runs; then 7 timed
 * runs, of which the median ns/op is reported. Prints one JSON line per
 * case, in bench/lib.ts's format.
 *
 * Built and run by bench/run.ts (gcc -O2 ... -lpmem2 -lpmemblk).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libpmemblk.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "bench.h"

#define SUITE "blk"
#define POOL_SIZE ((size_t)64 << 20)
#define SEED 2463534242u

/* what the loops operate on; set before each case */
static struct {
	PMEMblkpool *pbp;
	size_t nblock;
	size_t bsize;
	unsigned char *buf;
	uint32_t x; /* xorshift32 state */
} Ctx;

/* die -- print what failed, with libpmemblk's message, and exit */
static void
die(const char *what)
{
	fprintf(stderr, "blk_baseline: %s: %s\n", what, pmemblk_errormsg());
	exit(1);
}

/* next_lba -- the next random LBA (xorshift32) */
static inline long long
next_lba(void)
{
	uint32_t x = Ctx.x;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	Ctx.x = x;
	return (long long)(x % Ctx.nblock);
}

/* loop_write -- n pmemblk_write calls at random LBAs */
static void
loop_write(size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (pmemblk_write(Ctx.pbp, Ctx.buf, next_lba()) != 0)
			die("pmemblk_write");
	}
}

/* loop_read -- n pmemblk_read calls at random LBAs into one buffer */
static void
loop_read(size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (pmemblk_read(Ctx.pbp, Ctx.buf, next_lba()) != 0)
			die("pmemblk_read");
		__asm__ volatile("" : : "r"(Ctx.buf) : "memory");
	}
}

/* bench -- measure one case and print its JSON line */
static void
bench(const char *name, void (*loop)(size_t))
{
	bench_case(SUITE, name, loop, 1, Ctx.bsize);
}

/* suite -- create and pre-fill a pool of one block size, measure, remove */
static void
suite(const char *path, size_t bsize, const char *label)
{
	if (unlink(path) != 0 && errno != ENOENT) {
		perror(path);
		exit(1);
	}
	Ctx.pbp = pmemblk_create(path, bsize, POOL_SIZE, 0600);
	if (Ctx.pbp == NULL)
		die("pmemblk_create");
	Ctx.bsize = bsize;
	Ctx.nblock = pmemblk_nblock(Ctx.pbp);
	Ctx.buf = aligned_alloc(64, bsize);
	if (Ctx.buf == NULL) {
		perror("aligned_alloc");
		exit(1);
	}
	memset(Ctx.buf, 0xa5, bsize);
	for (size_t lba = 0; lba < Ctx.nblock; lba++) {
		if (pmemblk_write(Ctx.pbp, Ctx.buf, (long long)lba) != 0)
			die("pmemblk_write (pre-fill)");
	}
	Ctx.x = SEED;

	char name[64];
	snprintf(name, sizeof(name), "write %s", label);
	bench(name, loop_write);
	snprintf(name, sizeof(name), "read %s", label);
	bench(name, loop_read);

	pmemblk_close(Ctx.pbp);
	free(Ctx.buf);
	if (unlink(path) != 0) {
		perror(path);
		exit(1);
	}
}

int
main(int argc, char *argv[])
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s <pool-file>\n", argv[0]);
		return 2;
	}
	suite(argv[1], 512, "512 B");
	suite(argv[1], 4096, "4 KiB");
	return 0;
}
