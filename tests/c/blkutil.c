// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/*
 * blkutil -- drive libpmemblk from the asyncpmem interop tests
 *
 *   blkutil create PATH BSIZE POOLSIZE   create a pool, print "nblock N"
 *   blkutil info PATH                    print "bsize B nblock N"
 *   blkutil apply PATH SPEC              run the ops in SPEC on the pool
 *   blkutil verify PATH SPEC             check the states in SPEC
 *   blkutil check PATH BSIZE             pmemblk_check; print "check R"
 *   blkutil open PATH                    try to open; print "ok" or
 *                                        "errno E"
 *   blkutil hold PATH                    open, print "held", close when
 *                                        stdin ends
 *
 * SPEC holds one op per line: "W lba seed" (write the pattern of seed),
 * "Z lba" (set zero), "E lba" (set error). verify reads the same lines as
 * expectations: the pattern, all zeros, or a read that fails with EIO.
 * The pattern must match patternByte() in tests/c/blkutil.ts.
 */
#include <errno.h>
#include <libpmemblk.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* fill_pattern -- the bytes of block lba written with seed */
static void
fill_pattern(unsigned char *buf, size_t len, unsigned long long lba,
	uint32_t seed)
{
	uint32_t x = ((uint32_t)lba * 2654435761u) ^ (seed * 2246822519u) ^
		0x9e3779b9u;
	if (x == 0)
		x = 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)(x & 0xff);
	}
}

/* fail -- print the library's message and exit with 2 */
static int
fail(const char *what)
{
	fprintf(stderr, "%s: %s (errno %d)\n", what, pmemblk_errormsg(),
		errno);
	return 2;
}

/* run_spec -- apply (verify == 0) or verify the ops of a spec file */
static int
run_spec(const char *path, const char *spec, int verify)
{
	PMEMblkpool *pbp = pmemblk_open(path, 0);
	if (pbp == NULL)
		return fail("pmemblk_open");
	size_t bsize = pmemblk_bsize(pbp);
	unsigned char *buf = malloc(bsize);
	unsigned char *want = malloc(bsize);
	FILE *f = fopen(spec, "r");
	if (buf == NULL || want == NULL || f == NULL) {
		perror("spec");
		return 2;
	}
	char op;
	unsigned long long lba;
	unsigned seed = 0;
	int bad = 0;
	long count = 0;
	while (fscanf(f, " %c %llu", &op, &lba) == 2) {
		if (op == 'W' && fscanf(f, " %u", &seed) != 1) {
			fprintf(stderr, "bad spec line\n");
			return 2;
		}
		count++;
		int rc;
		if (!verify) {
			if (op == 'W') {
				fill_pattern(buf, bsize, lba, seed);
				rc = pmemblk_write(pbp, buf, (long long)lba);
			} else if (op == 'Z') {
				rc = pmemblk_set_zero(pbp, (long long)lba);
			} else {
				rc = pmemblk_set_error(pbp, (long long)lba);
			}
			if (rc != 0)
				return fail("op");
			continue;
		}
		errno = 0;
		rc = pmemblk_read(pbp, buf, (long long)lba);
		if (op == 'E') {
			if (rc == 0 || errno != EIO) {
				printf("lba %llu: expected EIO, got rc %d errno %d\n",
					lba, rc, errno);
				bad++;
			}
			continue;
		}
		if (rc != 0) {
			printf("lba %llu: read failed, errno %d\n", lba, errno);
			bad++;
			continue;
		}
		if (op == 'W')
			fill_pattern(want, bsize, lba, seed);
		else
			memset(want, 0, bsize);
		if (memcmp(buf, want, bsize) != 0) {
			printf("lba %llu: content differs from '%c'\n", lba, op);
			bad++;
		}
	}
	fclose(f);
	free(buf);
	free(want);
	pmemblk_close(pbp);
	printf("%s %ld ops, %d bad\n", verify ? "verified" : "applied", count,
		bad);
	return bad ? 1 : 0;
}

int
main(int argc, char *argv[])
{
	if (argc < 3) {
		fprintf(stderr, "usage: blkutil create|info|apply|verify|check|"
			"open|hold PATH ...\n");
		return 2;
	}
	const char *cmd = argv[1];
	const char *path = argv[2];
	if (strcmp(cmd, "create") == 0 && argc == 5) {
		PMEMblkpool *pbp = pmemblk_create(path,
			strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0),
			0644);
		if (pbp == NULL)
			return fail("pmemblk_create");
		printf("nblock %zu\n", pmemblk_nblock(pbp));
		pmemblk_close(pbp);
		return 0;
	}
	if (strcmp(cmd, "info") == 0) {
		PMEMblkpool *pbp = pmemblk_open(path, 0);
		if (pbp == NULL)
			return fail("pmemblk_open");
		printf("bsize %zu nblock %zu\n", pmemblk_bsize(pbp),
			pmemblk_nblock(pbp));
		pmemblk_close(pbp);
		return 0;
	}
	if ((strcmp(cmd, "apply") == 0 || strcmp(cmd, "verify") == 0) &&
			argc == 4)
		return run_spec(path, argv[3], cmd[0] == 'v');
	if (strcmp(cmd, "check") == 0 && argc == 4) {
		int rc = pmemblk_check(path, strtoull(argv[3], NULL, 0));
		printf("check %d\n", rc);
		if (rc < 0)
			return fail("pmemblk_check");
		return rc == 1 ? 0 : 1;
	}
	if (strcmp(cmd, "open") == 0) {
		PMEMblkpool *pbp = pmemblk_open(path, 0);
		if (pbp == NULL) {
			printf("errno %d\n", errno);
			return 0;
		}
		printf("ok\n");
		pmemblk_close(pbp);
		return 0;
	}
	if (strcmp(cmd, "hold") == 0) {
		PMEMblkpool *pbp = pmemblk_open(path, 0);
		if (pbp == NULL)
			return fail("pmemblk_open");
		printf("held\n");
		fflush(stdout);
		while (getchar() != EOF)
			;
		pmemblk_close(pbp);
		return 0;
	}
	fprintf(stderr, "blkutil: bad command '%s'\n", cmd);
	return 2;
}
