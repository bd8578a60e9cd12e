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
 * unit busy. Where the CPU also has AVX-512 carry-less multiplication
 * (VPCLMULQDQ), inputs of 512 bytes and more are first folded 256 bytes
 * at a time in four 512-bit registers, near twice the rate of the three
 * streams (4108 bytes: 105 against 179 ns a call from TypeScript, on the
 * 2-CPU AMD VM): the log store checksums every entry it appends, and for
 * 4 KiB entries the CRC was the largest single cost of an append. CPUs
 * with VPCLMULQDQ (Ice Lake and Zen 4 on) barely lower their clock for
 * 512-bit work, unlike the Skylake parts without it.
 * Elsewhere a byte-wise table is used. All give the same result; tests
 * compare them.
 */
#include <immintrin.h>
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
static int crc_fold;
/*
 * fold_k[d]: the constants that fold a 16-byte chunk forward over
 * FOLD_DISTANCES[d] bytes (see fold_constants)
 */
#define FOLD_16 0
#define FOLD_32 1
#define FOLD_48 2
#define FOLD_64 3
#define FOLD_128 4
#define FOLD_192 5
#define FOLD_256 6
static const unsigned FOLD_DISTANCES[] = { 16, 32, 48, 64, 128, 192, 256 };
static uint64_t fold_k[7][2];
/* the fold runs for inputs of at least this many bytes */
#define FOLD_MIN 512
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

/* bit_reverse64 -- v with its bit order reversed */
static uint64_t
bit_reverse64(uint64_t v)
{
	uint64_t r = 0;
	for (int i = 0; i < 64; i++) {
		r = (r << 1) | (v & 1);
		v >>= 1;
	}
	return r;
}

/* x_pow_mod -- x^e mod the CRC-32C polynomial, bit i the coefficient of
 * x^i */
static uint64_t
x_pow_mod(unsigned e)
{
	const uint64_t poly = 0x11edc6f41ull; /* x^32 + ... (not reflected) */
	uint64_t v = 1;
	while (e--) {
		v <<= 1;
		if (v & (1ull << 32))
			v ^= poly;
	}
	return v;
}

/*
 * fold_constants -- the constants of each fold distance. A 16-byte chunk
 * loaded little-endian holds its 128 coefficients bit-reversed (bit i is
 * the coefficient of x^(127-i)), so its low 8 bytes H are the high half
 * and its high 8 bytes L the low half: the chunk is H x^64 + L. Moved
 * forward over D bytes it is worth, modulo the polynomial,
 * H (x^(8D+64) mod P) + L (x^(8D) mod P), which has degree < 96 and so
 * fits the chunk D bytes later, where it is XORed in. The carry-less
 * product of two bit-reversed 64-bit values comes out bit-reversed in
 * 127 bits, one place short of 128, hence the constants' exponents one
 * less; each is stored bit-reversed in 64 bits like the data.
 */
static void
fold_constants(void)
{
	for (size_t d = 0; d < sizeof(FOLD_DISTANCES) / sizeof(FOLD_DISTANCES[0]);
			d++) {
		unsigned bits = 8 * FOLD_DISTANCES[d];
		fold_k[d][0] = bit_reverse64(x_pow_mod(bits + 64 - 1));
		fold_k[d][1] = bit_reverse64(x_pow_mod(bits - 1));
	}
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
	/* libgcc reports AVX-512 only where the OS saves its registers */
	crc_fold = crc_hw && __builtin_cpu_supports("avx512f") &&
		__builtin_cpu_supports("avx512vl") &&
		__builtin_cpu_supports("pclmul") &&
		__builtin_cpu_supports("vpclmulqdq");
	if (crc_fold)
		fold_constants();
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

#define FOLD_TARGET "avx512f,avx512vl,pclmul,vpclmulqdq,sse4.2"

/* fold512 -- x moved forward over the distance of k (in each lane) */
__attribute__((target(FOLD_TARGET))) static inline __m512i
fold512(__m512i x, __m512i k)
{
	return _mm512_xor_si512(_mm512_clmulepi64_epi128(x, k, 0x00),
		_mm512_clmulepi64_epi128(x, k, 0x11));
}

/* fold128 -- x moved forward over the distance of fold_k[d] */
__attribute__((target(FOLD_TARGET))) static inline __m128i
fold128(__m128i x, int d)
{
	__m128i k = _mm_set_epi64x((long long)fold_k[d][1],
		(long long)fold_k[d][0]);
	return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00),
		_mm_clmulepi64_si128(x, k, 0x11));
}

/* k512 -- the constants of fold distance d in all four lanes */
__attribute__((target(FOLD_TARGET))) static inline __m512i
k512(int d)
{
	return _mm512_broadcast_i32x4(_mm_set_epi64x((long long)fold_k[d][1],
		(long long)fold_k[d][0]));
}

/*
 * crc_fold_update -- the inverted state crc carried over the largest
 * multiple of 64 bytes of the len (>= 256) at *next, by folding; *next
 * and *left advance past them. The state enters as the first 4 bytes
 * XORed into the data (a CRC without final inversion is linear, so this
 * is the same as starting from it), and leaves as the CRC of the one
 * 16-byte chunk everything was folded into (the zeros before it add
 * nothing to a CRC from state 0).
 */
__attribute__((target(FOLD_TARGET))) static uint32_t
crc_fold_update(uint32_t crc, const unsigned char **next, size_t *left)
{
	const unsigned char *p = *next;
	size_t len = *left;
	__m512i x0 = _mm512_loadu_si512((const void *)p);
	__m512i x1 = _mm512_loadu_si512((const void *)(p + 64));
	__m512i x2 = _mm512_loadu_si512((const void *)(p + 128));
	__m512i x3 = _mm512_loadu_si512((const void *)(p + 192));
	x0 = _mm512_xor_si512(x0, _mm512_zextsi128_si512(
		_mm_cvtsi32_si128((int)crc)));
	p += 256;
	len -= 256;
	const __m512i k256 = k512(FOLD_256);
	while (len >= 256) {
		x0 = _mm512_xor_si512(fold512(x0, k256),
			_mm512_loadu_si512((const void *)p));
		x1 = _mm512_xor_si512(fold512(x1, k256),
			_mm512_loadu_si512((const void *)(p + 64)));
		x2 = _mm512_xor_si512(fold512(x2, k256),
			_mm512_loadu_si512((const void *)(p + 128)));
		x3 = _mm512_xor_si512(fold512(x3, k256),
			_mm512_loadu_si512((const void *)(p + 192)));
		p += 256;
		len -= 256;
	}
	/* the four registers into the last: each lane of x0 is 192 bytes
	 * before its lane of x3 */
	__m512i x = _mm512_xor_si512(x3, fold512(x0, k512(FOLD_192)));
	x = _mm512_xor_si512(x, fold512(x1, k512(FOLD_128)));
	x = _mm512_xor_si512(x, fold512(x2, k512(FOLD_64)));
	const __m512i k64 = k512(FOLD_64);
	while (len >= 64) {
		x = _mm512_xor_si512(fold512(x, k64),
			_mm512_loadu_si512((const void *)p));
		p += 64;
		len -= 64;
	}
	/* the four lanes into the last */
	__m128i r = _mm512_extracti32x4_epi32(x, 3);
	r = _mm_xor_si128(r, fold128(_mm512_extracti32x4_epi32(x, 0),
		FOLD_48));
	r = _mm_xor_si128(r, fold128(_mm512_extracti32x4_epi32(x, 1),
		FOLD_32));
	r = _mm_xor_si128(r, fold128(_mm512_extracti32x4_epi32(x, 2),
		FOLD_16));
	uint64_t c = 0;
	c = _mm_crc32_u64(c, (uint64_t)_mm_cvtsi128_si64(r));
	c = _mm_crc32_u64(c, (uint64_t)_mm_extract_epi64(r, 1));
	*next = p;
	*left = len;
	return (uint32_t)c;
}

/* crc_hw_update -- CRC-32C update of the inverted state crc, SSE4.2 */
__attribute__((target("sse4.2"))) static uint32_t
crc_hw_update(uint32_t crc, const unsigned char *p, size_t len, int fold)
{
	if (fold && len >= FOLD_MIN)
		crc = crc_fold_update(crc, &p, &len);
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
ap_crc32c_raw(uint32_t crc, const void *buf, size_t len, uint32_t flags)
{
	pthread_once(&crc_once, crc_init);
	uint32_t c = crc ^ 0xffffffffu;
#if defined(__x86_64__)
	if (crc_hw && !(flags & AP_CRC_SOFTWARE))
		return crc_hw_update(c, buf, len,
			crc_fold && !(flags & AP_CRC_STREAMS)) ^ 0xffffffffu;
#endif
	(void)flags;
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
	if (flags & ~(AP_CRC_SOFTWARE | AP_CRC_STREAMS))
		return ap_fail(AP_E_INVALID_ARG, "crc32c: unknown flags 0x%x",
			flags);
	return ap_crc32c_raw(crc, (const unsigned char *)buf + o, n, flags);
}
