/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * logutil.c -- libpmemlog (PMDK 1.12.1) on the other side of the log
 * interop tests.
 *
 *   logutil create PATH POOLSIZE      pmemlog_create; prints "nbyte N"
 *   logutil apply PATH SPEC           run the spec's operations, one a line:
 *                                       A SEED LEN       append pattern(SEED, LEN)
 *                                       V S1 L1 S2 L2    appendv of two patterns
 *                                       R                rewind
 *   logutil try PATH SPEC             run the spec's operations, going on after
 *                                     a failed one; prints "RC ERRNO TELL" for each.
 *                                     Also: W N S1 L1 ... SN LN (appendv of N)
 *   logutil dump PATH OUT             write the log's data (walk, chunk 0) to OUT;
 *                                     prints "tell N nbyte N"
 *   logutil walk PATH CHUNK           prints the length of each chunk of a walk
 *   logutil open PATH                 open and close; prints "ok" or "errno N"
 *   logutil hold PATH                 open, print "held", wait for a line on stdin
 *
 * pattern(seed, len) is an xorshift32 stream (tests/c/logutil.ts mirrors it).
 */
#include <errno.h>
#include <libpmemlog.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* fill_pattern -- the bytes of (seed, len) */
static void
fill_pattern(unsigned char *buf, uint32_t seed, size_t len)
{
	uint32_t x = (seed * 2654435761u) ^ 0x9e3779b9u;
	if (x == 0)
		x = 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
}

/* die -- print what failed with libpmemlog's message; exit 1 */
static void
die(const char *what)
{
	fprintf(stderr, "logutil: %s: %s (errno %d)\n", what,
		pmemlog_errormsg(), errno);
	exit(1);
}

static PMEMlogpool *
open_log(const char *path)
{
	PMEMlogpool *plp = pmemlog_open(path);
	if (plp == NULL)
		die("pmemlog_open");
	return plp;
}

/* print_chunk -- walk callback: print the chunk's length */
static int
print_chunk(const void *buf, size_t len, void *arg)
{
	(void)buf;
	(void)arg;
	printf("%zu\n", len);
	return 1;
}

/* write_chunk -- walk callback: write the chunk to a FILE */
static int
write_chunk(const void *buf, size_t len, void *arg)
{
	if (len > 0 && fwrite(buf, 1, len, (FILE *)arg) != len)
		die("fwrite");
	return 0;
}

int
main(int argc, char *argv[])
{
	if (argc < 3) {
		fprintf(stderr, "usage: logutil create|apply|try|dump|walk|open|hold PATH ...\n");
		return 2;
	}
	const char *cmd = argv[1], *path = argv[2];
	if (strcmp(cmd, "create") == 0 && argc == 4) {
		PMEMlogpool *plp = pmemlog_create(path,
			(size_t)strtoull(argv[3], NULL, 10), 0600);
		if (plp == NULL)
			die("pmemlog_create");
		printf("nbyte %zu\n", pmemlog_nbyte(plp));
		pmemlog_close(plp);
		return 0;
	}
	if (strcmp(cmd, "apply") == 0 && argc == 4) {
		FILE *spec = fopen(argv[3], "r");
		if (spec == NULL)
			die("fopen spec");
		PMEMlogpool *plp = open_log(path);
		char line[256];
		while (fgets(line, sizeof(line), spec) != NULL) {
			unsigned s1, s2;
			size_t l1, l2;
			if (line[0] == 'A' &&
					sscanf(line, "A %u %zu", &s1, &l1) == 2) {
				unsigned char *b = malloc(l1 + 1);
				fill_pattern(b, s1, l1);
				if (pmemlog_append(plp, b, l1) != 0)
					die("pmemlog_append");
				free(b);
			} else if (line[0] == 'V' && sscanf(line,
					"V %u %zu %u %zu", &s1, &l1, &s2, &l2) == 4) {
				unsigned char *a = malloc(l1 + 1);
				unsigned char *b = malloc(l2 + 1);
				fill_pattern(a, s1, l1);
				fill_pattern(b, s2, l2);
				struct iovec iov[2] = {{a, l1}, {b, l2}};
				if (pmemlog_appendv(plp, iov, 2) != 0)
					die("pmemlog_appendv");
				free(a);
				free(b);
			} else if (line[0] == 'R') {
				pmemlog_rewind(plp);
			}
		}
		fclose(spec);
		pmemlog_close(plp);
		return 0;
	}
	if (strcmp(cmd, "try") == 0 && argc == 4) {
		FILE *spec = fopen(argv[3], "r");
		if (spec == NULL)
			die("fopen spec");
		PMEMlogpool *plp = open_log(path);
		char line[1024];
		while (fgets(line, sizeof(line), spec) != NULL) {
			int rc = 0;
			errno = 0;
			if (line[0] == 'A' || line[0] == 'W') {
				/* A SEED LEN is W 1 SEED LEN */
				struct iovec iov[8];
				char *p = line + 1;
				long n = line[0] == 'A' ? 1 : strtol(p, &p, 10);
				if (n < 0 || n > 8) {
					fprintf(stderr, "logutil: bad line %s", line);
					return 2;
				}
				for (long i = 0; i < n; i++) {
					unsigned seed = (unsigned)strtoul(p, &p, 10);
					size_t len = (size_t)strtoull(p, &p, 10);
					iov[i].iov_base = malloc(len + 1);
					iov[i].iov_len = len;
					fill_pattern(iov[i].iov_base, seed, len);
				}
				rc = line[0] == 'A'
					? pmemlog_append(plp, iov[0].iov_base,
						iov[0].iov_len)
					: pmemlog_appendv(plp, iov, (int)n);
				int saved = errno;
				for (long i = 0; i < n; i++)
					free(iov[i].iov_base);
				errno = saved;
			} else if (line[0] == 'R') {
				pmemlog_rewind(plp);
			}
			printf("%d %d %lld\n", rc, rc != 0 ? errno : 0,
				pmemlog_tell(plp));
		}
		fclose(spec);
		pmemlog_close(plp);
		return 0;
	}
	if (strcmp(cmd, "dump") == 0 && argc == 4) {
		PMEMlogpool *plp = open_log(path);
		FILE *out = fopen(argv[3], "wb");
		if (out == NULL)
			die("fopen out");
		pmemlog_walk(plp, 0, write_chunk, out);
		fclose(out);
		printf("tell %lld nbyte %zu\n", pmemlog_tell(plp),
			pmemlog_nbyte(plp));
		pmemlog_close(plp);
		return 0;
	}
	if (strcmp(cmd, "walk") == 0 && argc == 4) {
		PMEMlogpool *plp = open_log(path);
		pmemlog_walk(plp, (size_t)strtoull(argv[3], NULL, 10),
			print_chunk, NULL);
		pmemlog_close(plp);
		return 0;
	}
	if (strcmp(cmd, "open") == 0) {
		PMEMlogpool *plp = pmemlog_open(path);
		if (plp == NULL) {
			printf("errno %d\n", errno);
			return 0;
		}
		printf("ok\n");
		pmemlog_close(plp);
		return 0;
	}
	if (strcmp(cmd, "hold") == 0) {
		PMEMlogpool *plp = open_log(path);
		printf("held\n");
		fflush(stdout);
		char line[8];
		if (fgets(line, sizeof(line), stdin) == NULL)
			line[0] = 0;
		pmemlog_close(plp);
		return 0;
	}
	fprintf(stderr, "logutil: bad command\n");
	return 2;
}
