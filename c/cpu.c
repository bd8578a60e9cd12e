/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cpu.c -- copies and cache write-back on the calling thread: the reads of
 * mappings, the CPU mover's native copies and flushes, and the helpers the
 * device's engines share. Every buffer arrives with its byte length, and
 * every range is checked against it before a byte moves.
 */
#include <string.h>
#include "internal.h"
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

/*
 * ap_read_range -- copy len bytes at offset of [base, base + size) into buf
 * (buf_len bytes)
 *
 * Mapping.read and the block store's reads (one call per block) come here
 * with the mapping's address and size, so the call dereferences no handle
 * and the valid case is one chain of compares, then a copy: a loop of reads
 * from random places overlaps one copy's cache misses with the next only
 * while each iteration's instructions fit the CPU's reorder window.
 */
int
ap_read_range(const char *base, double size, double offset, void *buf,
	double buf_len, double len)
{
	if (!(offset >= 0 && len >= 0 && offset + len <= size &&
			len <= buf_len)) {
		size_t off, n, cap;
		int rc = ap_to_size(offset, &off, "offset");
		if (rc || (rc = ap_to_size(len, &n, "length")) ||
				(rc = ap_to_size(buf_len, &cap, "buffer length")))
			return rc;
		if ((rc = ap_range(0, n, cap, "read into the buffer")))
			return rc;
		return ap_range(off, n, (size_t)size, "read");
	}
	size_t off = (size_t)offset;
	size_t n = (size_t)len;
	if (off != offset || n != len)
		return ap_fail(AP_E_INVALID_ARG,
			"read: offset %g and length %g must be integers", offset,
			len);
	if (n == 0)
		return 0;
	if (base == NULL || buf == NULL)
		return ap_fail(AP_E_INVALID_ARG, "read: a buffer is NULL");
	/* memmove: buf may be a view of the same mapping (same cost) */
	memmove(buf, base + off, n);
	return 0;
}

/*
 * ap_span -- check (off, len) against a buffer of buf_len bytes, all
 * doubles from JavaScript; the offset and length as sizes
 */
static int
ap_span(double buf_len, double off, double len, size_t *o, size_t *n,
	const char *what)
{
	size_t cap;
	int rc = ap_to_size(buf_len, &cap, what);
	if (rc || (rc = ap_to_size(off, o, what)) ||
			(rc = ap_to_size(len, n, what)))
		return rc;
	return ap_range(*o, *n, cap, what);
}

/* cache write-back instruction choice, probed once */
static int ap_wb_kind = -1; /* 0 clflush, 1 clflushopt, 2 clwb */

#if defined(__x86_64__)
static void
ap_wb_probe(void)
{
	unsigned a, b, c, d;
	int k = 0;
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
		if (b & (1u << 24))
			k = 2;
		else if (b & (1u << 23))
			k = 1;
	}
	__atomic_store_n(&ap_wb_kind, k, __ATOMIC_RELAXED);
}
#endif

/* ap_cache_writeback -- write back every line overlapping the range */
void
ap_cache_writeback(const void *addr, size_t len)
{
#if defined(__x86_64__)
	if (__atomic_load_n(&ap_wb_kind, __ATOMIC_RELAXED) < 0)
		ap_wb_probe();
	uintptr_t p = (uintptr_t)addr & ~(uintptr_t)63;
	uintptr_t end = (uintptr_t)addr + len;
	int k = ap_wb_kind;
	for (; p < end; p += 64) {
		if (k == 2)
			__asm__ volatile("clwb %0" : "+m"(*(volatile char *)p));
		else if (k == 1)
			__asm__ volatile("clflushopt %0"
				: "+m"(*(volatile char *)p));
		else
			__asm__ volatile("clflush %0"
				: "+m"(*(volatile char *)p));
	}
	__asm__ volatile("sfence" ::: "memory");
#else
	(void)addr;
	(void)len;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

/*
 * ap_cpu_flush -- make [buf+off, buf+off+len) of a buf_len-byte buffer
 * durable: msync/flush through its mapping when it lies in one, else write
 * back its cache lines
 */
int
ap_cpu_flush(void *buf, double buf_len, double off, double len)
{
	size_t o, n;
	int rc = ap_span(buf_len, off, len, &o, &n, "flush");
	if (rc)
		return rc;
	if (n == 0)
		return 0;
	if (buf == NULL)
		return ap_fail(AP_E_INVALID_ARG, "flush: buffer is NULL");
	char *p = (char *)buf + o;
	struct ap_region *r = ap_region_get(p, n, &rc);
	if (rc)
		return rc;
	if (r != NULL) {
		rc = ap_map_sync(ap_region_map(r), p, n);
		ap_region_put(r);
		return rc;
	}
	ap_cache_writeback(p, n);
	return 0;
}

/*
 * bytes written with non-temporal stores, process-wide: what tells a test
 * that a cache hint was honoured (the bytes are the same either way)
 */
static uint64_t ap_streamed;

/* ap_note_streamed -- count n bytes written with non-temporal stores */
static void
ap_note_streamed(size_t n)
{
	if (n != 0)
		__atomic_fetch_add(&ap_streamed, (uint64_t)n, __ATOMIC_RELAXED);
}

/* ap_streamed_bytes -- the bytes written with non-temporal stores so far */
double
ap_streamed_bytes(void)
{
	return (double)__atomic_load_n(&ap_streamed, __ATOMIC_RELAXED);
}

/* ap_stream_copy -- forward copy with non-temporal stores where aligned */
void
ap_stream_copy(char *dst, const char *src, size_t n)
{
#if defined(__x86_64__)
	while (n > 0 && ((uintptr_t)dst & 15)) {
		*dst++ = *src++;
		n--;
	}
	ap_note_streamed(n & ~(size_t)63);
	for (; n >= 64; n -= 64, dst += 64, src += 64) {
		__m128i a = _mm_loadu_si128((const __m128i *)src);
		__m128i b = _mm_loadu_si128((const __m128i *)(src + 16));
		__m128i c = _mm_loadu_si128((const __m128i *)(src + 32));
		__m128i d = _mm_loadu_si128((const __m128i *)(src + 48));
		_mm_stream_si128((__m128i *)dst, a);
		_mm_stream_si128((__m128i *)(dst + 16), b);
		_mm_stream_si128((__m128i *)(dst + 32), c);
		_mm_stream_si128((__m128i *)(dst + 48), d);
	}
	_mm_sfence();
#endif
	memcpy(dst, src, n);
}

/*
 * ap_stream_fill -- fill with non-temporal stores where aligned, as
 * ap_stream_copy copies: what PMDK's memset picks for a NONTEMPORAL hint
 */
void
ap_stream_fill(char *dst, int c, size_t n)
{
#if defined(__x86_64__)
	while (n > 0 && ((uintptr_t)dst & 15)) {
		*dst++ = (char)c;
		n--;
	}
	ap_note_streamed(n & ~(size_t)63);
	__m128i v = _mm_set1_epi8((char)c);
	for (; n >= 64; n -= 64, dst += 64) {
		_mm_stream_si128((__m128i *)dst, v);
		_mm_stream_si128((__m128i *)(dst + 16), v);
		_mm_stream_si128((__m128i *)(dst + 32), v);
		_mm_stream_si128((__m128i *)(dst + 48), v);
	}
	_mm_sfence();
#endif
	memset(dst, c, n);
}

/*
 * ap_cpu_fill -- set len bytes at dst+off (within dst_len) to value;
 * flags bit 0 asks for non-temporal stores
 */
int
ap_cpu_fill(void *dst, double dst_len, double off, double len,
	uint32_t value, uint32_t flags)
{
	size_t o, n;
	int rc = ap_span(dst_len, off, len, &o, &n, "fill");
	if (rc)
		return rc;
	if (value > 255)
		return ap_fail(AP_E_INVALID_ARG, "fill: value %u > 255", value);
	if (n == 0)
		return 0;
	if (dst == NULL)
		return ap_fail(AP_E_INVALID_ARG, "fill: buffer is NULL");
	if (flags & 1)
		ap_stream_fill((char *)dst + o, (int)value, n);
	else
		memset((char *)dst + o, (int)value, n);
	return 0;
}

/*
 * ap_cpu_copy -- memmove len bytes from src+src_off to dst+dst_off, each
 * range checked against its buffer's length; flags bit 0 asks for
 * non-temporal stores (used when the ranges do not overlap)
 */
int
ap_cpu_copy(void *dst, double dst_len, double dst_off, const void *src,
	double src_len, double src_off, double len, uint32_t flags)
{
	size_t doff, soff, n;
	int rc = ap_span(dst_len, dst_off, len, &doff, &n, "copy destination");
	if (rc || (rc = ap_span(src_len, src_off, len, &soff, &n,
			"copy source")))
		return rc;
	if (n == 0)
		return 0;
	if (dst == NULL || src == NULL)
		return ap_fail(AP_E_INVALID_ARG, "copy: buffer is NULL");
	char *d = (char *)dst + doff;
	const char *s = (const char *)src + soff;
	int overlap = d < s + n && s < d + n;
	if ((flags & 1) && !overlap)
		ap_stream_copy(d, s, n);
	else
		memmove(d, s, n);
	return 0;
}

/*
 * ap_overlap -- of two checked ranges: 1 when dst lies above src and they
 * overlap, -1 below, 0 when disjoint
 */
int
ap_overlap(const void *dst, double dst_len, double dst_off, const void *src,
	double src_len, double src_off, double len)
{
	size_t doff, soff, n;
	int rc = ap_span(dst_len, dst_off, len, &doff, &n, "destination");
	if (rc || (rc = ap_span(src_len, src_off, len, &soff, &n, "source")))
		return rc;
	uintptr_t d = (uintptr_t)dst + doff, s = (uintptr_t)src + soff;
	if (n == 0 || d == s || d >= s + n || s >= d + n)
		return 0;
	return d > s ? 1 : -1;
}
