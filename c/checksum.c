/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * checksum.c -- CRC-32C (Castagnoli), the checksum of the log store's
 * entries and headers.
 *
 * On x86-64 with SSE4.2 the CRC32 instruction runs three independent
 * streams over 3 x 256-byte (or 344, 1360 or 4 KiB) blocks, whose CRCs
 * are then
 * combined by shifting through precomputed "append n zero bytes"
 * operators (the method of Mark Adler's crc32c.c, rewritten here): one
 * stream is limited by the instruction's 3-cycle latency, three keep its
 * unit busy. Elsewhere a byte-wise table is used. Both give the same
 * result; tests compare them.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "internal.h"

#define POLY 0x82f63b78u /* CRC-32C, reflected */
#define SHORT_BLOCK 256
/* the blocks of one round over an entry of 1 KiB or 4 KiB of data with
 * its header's 12 bytes (from the 8-aligned start): few bytes are then
 * left for the single stream, whose dependent chain is 3 times slower */
#define MID_BLOCK 344
#define BIG_BLOCK 1360
#define LONG_BLOCK 4096

static uint32_t crc_table[256];
/* crc_short[k][b]: the CRC of byte b in position k of a CRC, shifted
 * through SHORT_BLOCK zero bytes (likewise crc_long) */
static uint32_t crc_short[4][256];
static uint32_t crc_mid[4][256];
static uint32_t crc_big[4][256];
static uint32_t crc_long[4][256];
static int crc_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

/* gf2_times -- multiply the 32x32 GF(2) matrix mat by vec */
static uint32_t
gf2_times(const uint32_t *mat, uint32_t vec)
{
	uint32_t sum = 0;
	while (vec) {
		if (vec & 1)
			sum ^= *mat;
		vec >>= 1;
		mat++;
	}
	return sum;
}

/* gf2_square -- square = mat * mat */
static void
gf2_square(uint32_t *square, const uint32_t *mat)
{
	for (int n = 0; n < 32; n++)
		square[n] = gf2_times(mat, mat[n]);
}

/*
 * zeros_op -- the operator that appends len zero bytes to a CRC: the
 * operators of 1, 2, 4 ... zero bytes (each the square of the last),
 * composed for the bits set in len
 */
static void
zeros_op(uint32_t *op, size_t len)
{
	uint32_t sq[32], tmp[32];
	/* the operator for one zero bit, squared three times: one byte */
	sq[0] = POLY;
	uint32_t row = 1;
	for (int n = 1; n < 32; n++) {
		sq[n] = row;
		row <<= 1;
	}
	for (int i = 0; i < 3; i++) {
		gf2_square(tmp, sq);
		memcpy(sq, tmp, sizeof(sq));
	}
	for (int n = 0; n < 32; n++)
		op[n] = 1u << n;
	while (len) {
		if (len & 1) {
			for (int n = 0; n < 32; n++)
				tmp[n] = gf2_times(sq, op[n]);
			memcpy(op, tmp, sizeof(tmp));
		}
		len >>= 1;
		if (len) {
			gf2_square(tmp, sq);
			memcpy(sq, tmp, sizeof(sq));
		}
	}
}

/* zeros_table -- byte-wise tables of the operator for len zero bytes */
static void
zeros_table(uint32_t zeros[][256], size_t len)
{
	uint32_t op[32];
	zeros_op(op, len);
	for (uint32_t n = 0; n < 256; n++) {
		zeros[0][n] = gf2_times(op, n);
		zeros[1][n] = gf2_times(op, n << 8);
		zeros[2][n] = gf2_times(op, n << 16);
		zeros[3][n] = gf2_times(op, n << 24);
	}
}

/* shift -- apply a zeros table to crc */
static inline uint32_t
shift(uint32_t zeros[][256], uint32_t crc)
{
	return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^
		zeros[2][(crc >> 16) & 0xff] ^ zeros[3][crc >> 24];
}

/* crc_init -- build the tables once; detect the CRC32 instruction */
static void
crc_init(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		crc_table[n] = c;
	}
	zeros_table(crc_short, SHORT_BLOCK);
	zeros_table(crc_mid, MID_BLOCK);
	zeros_table(crc_big, BIG_BLOCK);
	zeros_table(crc_long, LONG_BLOCK);
#if defined(__x86_64__)
	__builtin_cpu_init();
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

/* crc_sw -- byte-wise CRC-32C update of the inverted state crc */
static uint32_t
crc_sw(uint32_t crc, const unsigned char *p, size_t len)
{
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
/* streams3 -- three CRC streams over 3 x block bytes, combined */
__attribute__((target("sse4.2"))) static inline uint32_t
streams3(uint32_t crc0, const unsigned char **next, size_t block,
	uint32_t zeros[][256])
{
	const unsigned char *p = *next;
	const unsigned char *end = p + block;
	uint64_t c0 = crc0, c1 = 0, c2 = 0;
	do {
		uint64_t a, b, c;
		memcpy(&a, p, 8);
		memcpy(&b, p + block, 8);
		memcpy(&c, p + 2 * block, 8);
		c0 = __builtin_ia32_crc32di(c0, a);
		c1 = __builtin_ia32_crc32di(c1, b);
		c2 = __builtin_ia32_crc32di(c2, c);
		p += 8;
	} while (p < end);
	uint32_t crc = shift(zeros, (uint32_t)c0) ^ (uint32_t)c1;
	crc = shift(zeros, crc) ^ (uint32_t)c2;
	*next = p + 2 * block;
	return crc;
}

/* crc_hw_update -- CRC-32C update of the inverted state crc, SSE4.2 */
__attribute__((target("sse4.2"))) static uint32_t
crc_hw_update(uint32_t crc, const unsigned char *p, size_t len)
{
	while (len && ((uintptr_t)p & 7)) {
		crc = __builtin_ia32_crc32qi(crc, *p++);
		len--;
	}
	/* short inputs (most entries) skip the rounds */
	if (len >= 3 * SHORT_BLOCK) {
		while (len >= 3 * LONG_BLOCK) {
			crc = streams3(crc, &p, LONG_BLOCK, crc_long);
			len -= 3 * LONG_BLOCK;
		}
		while (len >= 3 * BIG_BLOCK) {
			crc = streams3(crc, &p, BIG_BLOCK, crc_big);
			len -= 3 * BIG_BLOCK;
		}
		while (len >= 3 * MID_BLOCK) {
			crc = streams3(crc, &p, MID_BLOCK, crc_mid);
			len -= 3 * MID_BLOCK;
		}
		while (len >= 3 * SHORT_BLOCK) {
			crc = streams3(crc, &p, SHORT_BLOCK, crc_short);
			len -= 3 * SHORT_BLOCK;
		}
	}
	uint64_t c = crc;
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	crc = (uint32_t)c;
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

/* ap_crc32c_raw -- crc32c continuing from crc (0 to start), hw or sw */
static uint32_t
ap_crc32c_raw(uint32_t crc, const void *buf, size_t len, int sw)
{
	pthread_once(&crc_once, crc_init);
	uint32_t c = crc ^ 0xffffffffu;
#if defined(__x86_64__)
	if (crc_hw && !sw)
		return crc_hw_update(c, buf, len) ^ 0xffffffffu;
#endif
	(void)sw;
	return crc_sw(c, buf, len) ^ 0xffffffffu;
}

/* ap_crc32c_update -- CRC-32C of len bytes at buf, continuing from crc */
uint32_t
ap_crc32c_update(uint32_t crc, const void *buf, size_t len)
{
	return ap_crc32c_raw(crc, buf, len, 0);
}

/* ap_crc32c -- CRC-32C of buf[off, off+len), continuing from crc */
double
ap_crc32c(const void *buf, double buf_len, double off, double len,
	uint32_t crc, uint32_t flags)
{
	size_t o, n, cap;
	int rc;
	if (buf == NULL && len > 0)
		return ap_fail(AP_E_INVALID_ARG, "crc32c: buffer is NULL");
	if ((rc = ap_to_size(off, &o, "offset")) != 0 ||
			(rc = ap_to_size(len, &n, "length")) != 0 ||
			(rc = ap_to_size(buf_len, &cap, "buffer length")) != 0 ||
			(rc = ap_range(o, n, cap, "crc32c")) != 0)
		return rc;
	return ap_crc32c_raw(crc, (const unsigned char *)buf + o, n,
		flags & AP_CRC_SOFTWARE);
}
