/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench.h -- the measurement method every C baseline shares, the same as
 * bench/lib.ts: double the iteration count until a run takes CALIBRATE_NS,
 * WARMUPS re-tuned warm-up runs of about RUN_NS, then RUNS timed runs; one
 * JSON line per case with the median, minimum and maximum ns per op.
 */
#ifndef BENCH_H
#define BENCH_H 1

#include <fcntl.h>
#include <libpmem2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RUN_NS 25e6
#define CALIBRATE_NS 1e6
#define WARMUPS 2
#define RUNS 7

/* now_ns -- CLOCK_MONOTONIC in nanoseconds */
static double
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* time_ns -- wall time of one loop(n) */
static double
time_ns(void (*loop)(size_t), size_t n)
{
	double t = now_ns();
	loop(n);
	return now_ns() - t;
}

/* retune -- the count that makes a run take RUN_NS, when n took t ns */
static size_t
retune(size_t n, double t)
{
	size_t m = (size_t)((double)n * RUN_NS / t + 0.5);
	return m ? m : 1;
}

/* cmp_double -- qsort order for doubles */
static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/*
 * bench_case -- measure loop, which does `per` operations per iteration of
 * `bytes` each (0: not a copy), and print its JSON line
 */
static void
bench_case(const char *suite, const char *name, void (*loop)(size_t),
	size_t per, size_t bytes)
{
	size_t n = 1;
	double t;
	while ((t = time_ns(loop, n)) < CALIBRATE_NS)
		n *= 2;
	for (int i = 0; i < WARMUPS; i++) {
		n = retune(n, t);
		t = time_ns(loop, n);
	}
	n = retune(n, t);
	double ns[RUNS];
	for (int i = 0; i < RUNS; i++)
		ns[i] = time_ns(loop, n) / (double)(n * per);
	qsort(ns, RUNS, sizeof(ns[0]), cmp_double);
	printf("{\"suite\":\"%s\",\"case\":\"%s\",\"runtime\":\"c\","
		"\"nsPerOp\":%.4g,\"minNsPerOp\":%.4g,\"maxNsPerOp\":%.4g,"
		"\"iterations\":%zu,\"runs\":%d",
		suite, name, ns[RUNS / 2], ns[0], ns[RUNS - 1], n * per, RUNS);
	if (bytes)
		printf(",\"bytes\":%zu", bytes);
	printf("}\n");
	fflush(stdout);
}

/*
 * bench_open_file -- open or create the pool file at path, at least size
 * bytes (allocated, not sparse); exits with a message on failure
 */
static inline int
bench_open_file(const char *path, size_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		perror(path);
		exit(1);
	}
	if ((size_t)st.st_size < size) {
		int e = posix_fallocate(fd, 0, (off_t)size);
		if (e != 0) {
			fprintf(stderr, "%s: %s\n", path, strerror(e));
			exit(1);
		}
	}
	return fd;
}

/*
 * bench_map_file -- bench_open_file, then map the whole file with
 * libpmem2 at page granularity (the kind asyncpmem's pools use on tmpfs);
 * the config, source and descriptor are released once mapped. Exits with
 * libpmem2's message on failure.
 */
static inline struct pmem2_map *
bench_map_file(const char *path, size_t size)
{
	int fd = bench_open_file(path, size);
	struct pmem2_config *cfg = NULL;
	struct pmem2_source *src = NULL;
	struct pmem2_map *map = NULL;
	const char *what = NULL;
	if (pmem2_config_new(&cfg))
		what = "pmem2_config_new";
	else if (pmem2_config_set_required_store_granularity(cfg,
			PMEM2_GRANULARITY_PAGE))
		what = "granularity";
	else if (pmem2_source_from_fd(&src, fd))
		what = "pmem2_source_from_fd";
	else if (pmem2_map_new(&map, cfg, src))
		what = "pmem2_map_new";
	if (what != NULL) {
		fprintf(stderr, "%s: %s: %s\n", path, what, pmem2_errormsg());
		exit(1);
	}
	pmem2_source_delete(&src);
	pmem2_config_delete(&cfg);
	close(fd);
	return map;
}

#endif
