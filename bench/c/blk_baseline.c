/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * blk_baseline.c -- the native floor of the "blk" bench suite: libpmemblk
 *
 * Usage: blk_baseline <pool-file> [case...]
 *
 * Creates libpmemblk pools at <pool-file> (pmemblk_create; the file must
 * not exist), writes every block once so that reads copy real data (and
 * the BTT is laid out), then measures at random LBAs, and removes the
 * pool. With case names (or prefixes ending in '*'), only those cases run
 * (and only the pools they need are made). The cases:
 *   write <n>              pmemblk_write, one thread    (64 MiB pools)
 *   read <n>               pmemblk_read into one buffer, one thread
 *   write 4 KiB 2 threads  pmemblk_write from 2 threads on one pool
 *   read 4 KiB 2 threads   pmemblk_read from 2 threads on one pool
 *   write 4 KiB 1 GiB      as "write 4 KiB" on a 1 GiB pool
 *   read 4 KiB 1 GiB       as "read 4 KiB" on a 1 GiB pool
 *   spin / spin 2 threads  a control: 256 dependent multiply-adds per op,
 *                          touching no memory, from 1 or 2 threads (how
 *                          much a second thread can add on this machine
 *                          at the moment, whatever the pool does)
 * for n = 512 B and 4 KiB. Each thread draws LBAs from its own xorshift32
 * generator (thread t: seed 2463534242 + t; lba = x % nblock), as
 * bench/blk_bench.ts and its Workers do (shared/reference/pmemblk.md
 * section 4). A multi-threaded case counts the operations of all threads
 * over the wall time. On tmpfs libpmemblk runs in its default msync mode
 * (four msync calls per write), the persistence asyncpmem's
 * page-granularity mappings use; set PMEM_IS_PMEM_FORCE=1 for its flush
 * mode instead.
 *
 * Method (as bench/lib.ts): the iteration count is tuned so one run takes
 * about 25 ms, and tuned again after each of 2 warm-up runs; then 7 timed
 * runs, of which the median ns/op is reported. Prints one JSON line per
 * case, in bench/lib.ts's format.
 *
 * Built and run by bench/run.ts and bench/blk_compare.ts (gcc -O2 ...
 * -lpmem2 -lpmemblk).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libpmemblk.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "bench.h"

#define SUITE "blk"
#define SEED 2463534242u
#define MAX_THREADS 2

/* one thread's state */
struct worker {
	pthread_t tid;
	unsigned char *buf;
	uint32_t x; /* xorshift32 state */
	size_t n;   /* operations of the current run */
	int (*op)(PMEMblkpool *, void *, long long);
};

/* what the loops operate on; set before each case */
static struct {
	PMEMblkpool *pbp;
	size_t nblock;
	size_t bsize;
	int threads;
	int (*op)(PMEMblkpool *, void *, long long);
	struct worker w[MAX_THREADS];
} Ctx;

static char **Only; /* case prefixes, or NULL: every case */
static int NOnly;

/* die -- print what failed, with libpmemblk's message, and exit */
static void
die(const char *what)
{
	fprintf(stderr, "blk_baseline: %s: %s\n", what, pmemblk_errormsg());
	exit(1);
}

/* wanted -- whether the case named runs (a name, or a prefix and '*') */
static int
wanted(const char *name)
{
	if (Only == NULL)
		return 1;
	for (int i = 0; i < NOnly; i++) {
		size_t n = strlen(Only[i]);
		if (n > 0 && Only[i][n - 1] == '*' ?
				strncmp(name, Only[i], n - 1) == 0 :
				strcmp(name, Only[i]) == 0)
			return 1;
	}
	return 0;
}

/* next_lba -- the next random LBA of a thread (xorshift32) */
static inline long long
next_lba(struct worker *w)
{
	uint32_t x = w->x;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	w->x = x;
	return (long long)(x % Ctx.nblock);
}

/* run_ops -- a thread's operations at random LBAs */
static void *
run_ops(void *arg)
{
	struct worker *w = arg;
	for (size_t i = 0; i < w->n; i++) {
		if (w->op(Ctx.pbp, w->buf, next_lba(w)) != 0)
			die("pmemblk operation");
		__asm__ volatile("" : : "r"(w->buf) : "memory");
	}
	return NULL;
}

/* loop -- n operations in all, split over Ctx.threads threads */
static void
loop(size_t n)
{
	int t = Ctx.threads;
	for (int i = 0; i < t; i++)
		Ctx.w[i].n = n / (size_t)t + ((size_t)i < n % (size_t)t);
	if (t == 1) {
		run_ops(&Ctx.w[0]);
		return;
	}
	for (int i = 0; i < t; i++)
		if (pthread_create(&Ctx.w[i].tid, NULL, run_ops, &Ctx.w[i]))
			die("pthread_create");
	for (int i = 0; i < t; i++)
		pthread_join(Ctx.w[i].tid, NULL);
}

/* write_op, read_op -- the measured calls, as function pointers */
static int
write_op(PMEMblkpool *p, void *buf, long long lba)
{
	return pmemblk_write(p, buf, lba);
}

static int
read_op(PMEMblkpool *p, void *buf, long long lba)
{
	return pmemblk_read(p, buf, lba);
}

/* spin_op -- the control: arithmetic only */
static int
spin_op(PMEMblkpool *p, void *buf, long long lba)
{
	(void)p;
	uint64_t x = (uint64_t)lba | 1;
	for (int i = 0; i < 256; i++)
		x = x * 6364136223846793005ull + 1442695040888963407ull;
	__asm__ volatile("" : : "r"(x));
	(void)buf;
	return 0;
}

/* measure -- one case: `threads` threads doing `op` */
static void
measure(const char *name, int threads, int (*op)(PMEMblkpool *, void *,
	long long))
{
	if (!wanted(name))
		return;
	Ctx.threads = threads;
	for (int i = 0; i < threads; i++) {
		Ctx.w[i].x = SEED + (uint32_t)i;
		Ctx.w[i].op = op;
	}
	bench_case(SUITE, name, loop, 1, Ctx.bsize);
}

/*
 * suite -- create and pre-fill a pool, run the cases named
 * "<op> <label><suffix>", remove the pool
 */
static void
suite(const char *path, size_t size, size_t bsize, const char *label,
	const char *suffix, int threads)
{
	char write_name[64], read_name[64];
	snprintf(write_name, sizeof(write_name), "write %s%s", label, suffix);
	snprintf(read_name, sizeof(read_name), "read %s%s", label, suffix);
	if (!wanted(write_name) && !wanted(read_name))
		return;
	if (unlink(path) != 0 && errno != ENOENT) {
		perror(path);
		exit(1);
	}
	Ctx.pbp = pmemblk_create(path, bsize, size, 0600);
	if (Ctx.pbp == NULL)
		die("pmemblk_create");
	Ctx.bsize = bsize;
	Ctx.nblock = pmemblk_nblock(Ctx.pbp);
	for (int i = 0; i < MAX_THREADS; i++) {
		Ctx.w[i].buf = aligned_alloc(64, bsize);
		if (Ctx.w[i].buf == NULL) {
			perror("aligned_alloc");
			exit(1);
		}
		memset(Ctx.w[i].buf, 0xa5, bsize);
	}
	for (size_t lba = 0; lba < Ctx.nblock; lba++) {
		if (pmemblk_write(Ctx.pbp, Ctx.w[0].buf, (long long)lba) != 0)
			die("pmemblk_write (pre-fill)");
	}
	measure(write_name, threads, write_op);
	measure(read_name, threads, read_op);
	pmemblk_close(Ctx.pbp);
	for (int i = 0; i < MAX_THREADS; i++)
		free(Ctx.w[i].buf);
	if (unlink(path) != 0) {
		perror(path);
		exit(1);
	}
}

int
main(int argc, char *argv[])
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s <pool-file> [case...]\n",
			argv[0]);
		return 2;
	}
	if (argc > 2) {
		Only = argv + 2;
		NOnly = argc - 2;
	}
	const size_t mib = (size_t)1 << 20;
	suite(argv[1], 64 * mib, 512, "512 B", "", 1);
	suite(argv[1], 64 * mib, 4096, "4 KiB", "", 1);
	suite(argv[1], 64 * mib, 4096, "4 KiB", " 2 threads", 2);
	suite(argv[1], 1024 * mib, 4096, "4 KiB", " 1 GiB", 1);
	if (wanted("spin") || wanted("spin 2 threads")) {
		Ctx.nblock = 1u << 20;
		Ctx.bsize = 0;
		measure("spin", 1, spin_op);
		measure("spin 2 threads", 2, spin_op);
	}
	return 0;
}
