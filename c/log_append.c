/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * log_append.c -- the lone synchronous append of the log store in one
 * call: the entry's data, its header and the zero header after it are
 * stored, then persisted together. The TypeScript path does the same in
 * four crossings (a copy, a CRC, a fill and a persist); an append that
 * waits for nothing else is bound by one persist, so the crossings and
 * the copies around it are most of what remains.
 *
 * The order of the stores does not matter for crash consistency: none
 * of them is durable before the one persist that covers them all, and
 * the header's CRC covers the data, so a torn entry is never valid.
 */
#include <string.h>
#include "internal.h"

#define AP_ENTRY_HEADER 16
#define AP_ENTRY_MAX 0x7fffffffu

/*
 * ap_log_append -- store data (data_len bytes) at at + 16 of the mapping,
 * the entry header at at (CRC-32C from seed of the header's last 12
 * bytes and the data; length word; timestamp as two u32 halves), 16 zero
 * bytes at next, and persist [at, next + 16) with one fence
 */
int
ap_log_append(struct ap_map *map, const void *data, double data_len,
	double at, double next, double ts, uint32_t seed)
{
	size_t len, a, n;
	int rc;
	if (map == NULL)
		return ap_fail(AP_E_INVALID_ARG, "log append: map is NULL");
	if ((rc = ap_to_size(data_len, &len, "data length")) != 0 ||
			(rc = ap_to_size(at, &a, "offset")) != 0 ||
			(rc = ap_to_size(next, &n, "next offset")) != 0)
		return rc;
	if (data == NULL && len > 0)
		return ap_fail(AP_E_INVALID_ARG, "log append: data is NULL");
	if (len > AP_ENTRY_MAX)
		return ap_fail(AP_E_RANGE, "log append: %zu bytes exceed an "
			"entry's maximum", len);
	if (a % 8 != 0 || n < a + AP_ENTRY_HEADER + len ||
			n > map->size || map->size - n < AP_ENTRY_HEADER)
		return ap_fail(AP_E_RANGE, "log append: an entry of %zu bytes "
			"at %zu followed by a header at %zu leaves the %zu-byte "
			"mapping or overlaps", len, a, n, map->size);
	if (!(ts >= 0 && ts <= AP_MAX_SAFE) || ts != (double)(uint64_t)ts)
		return ap_fail(AP_E_RANGE, "log append: bad timestamp %g", ts);
	if ((rc = ap_map_access(map, PMEM2_PROT_WRITE, "log append")) != 0)
		return rc;
	char *e = map->addr + a;
	/* memmove: data may be a view of the mapping itself */
	if (len)
		memmove(e + AP_ENTRY_HEADER, data, len);
	uint64_t t = (uint64_t)ts;
	uint32_t h[3] = { (uint32_t)len, (uint32_t)t, (uint32_t)(t >> 32) };
	memcpy(e + 4, h, sizeof(h));
	uint32_t crc = ap_crc32c_update(seed, e + 4, 12 + len);
	memcpy(e, &crc, 4);
	memset(map->addr + n, 0, AP_ENTRY_HEADER);
	return ap_map_sync(map, e, n + AP_ENTRY_HEADER - a);
}

/*
 * ap_log_headers -- the headers of count entries whose data is in place,
 * as (offset, length word, timestamp) triples of doubles in desc
 * (desc_len bytes): each header's CRC-32C from seed covers its last 12
 * bytes and, unless the word's top bit marks padding, the word's bytes
 * of data after it. Every triple is checked before anything is stored.
 */
int
ap_log_headers(struct ap_map *map, const double *desc, double desc_len,
	double count, uint32_t seed)
{
	size_t dlen, n;
	int rc;
	if (map == NULL || desc == NULL)
		return ap_fail(AP_E_INVALID_ARG, "log headers: NULL argument");
	if ((rc = ap_to_size(desc_len, &dlen, "descriptor length")) != 0 ||
			(rc = ap_to_size(count, &n, "count")) != 0)
		return rc;
	if (n > dlen / (3 * sizeof(double)))
		return ap_fail(AP_E_RANGE, "log headers: %zu headers do not "
			"fit %zu descriptor bytes", n, dlen);
	for (size_t i = 0; i < n; i++) {
		double at = desc[3 * i], word = desc[3 * i + 1];
		double ts = desc[3 * i + 2];
		/* each bound before its cast: a double beyond the integer
		 * type is undefined behaviour there */
		if (!(at >= 0 && at <= AP_MAX_SAFE && word >= 0 &&
				word <= 4294967295.0 && ts >= 0 &&
				ts <= AP_MAX_SAFE) ||
				at != (double)(size_t)at ||
				word != (double)(uint32_t)word ||
				ts != (double)(uint64_t)ts)
			return ap_fail(AP_E_RANGE, "log headers: bad header %zu",
				i);
		size_t a = (size_t)at;
		uint32_t w = (uint32_t)word;
		size_t covered = AP_ENTRY_HEADER +
			((w & 0x80000000u) ? 0 : (size_t)w);
		if (a % 8 != 0 || a > map->size || map->size - a < covered)
			return ap_fail(AP_E_RANGE, "log headers: header %zu at "
				"%zu (%zu bytes) leaves the %zu-byte mapping", i,
				a, covered, map->size);
	}
	if (n > 0 && (rc = ap_map_access(map, PMEM2_PROT_WRITE,
			"log headers")) != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		char *e = map->addr + (size_t)desc[3 * i];
		uint32_t w = (uint32_t)desc[3 * i + 1];
		uint64_t t = (uint64_t)desc[3 * i + 2];
		uint32_t h[3] = { w, (uint32_t)t, (uint32_t)(t >> 32) };
		memcpy(e + 4, h, sizeof(h));
		size_t covered = 12 + ((w & 0x80000000u) ? 0 : (size_t)w);
		uint32_t crc = ap_crc32c_update(seed, e + 4, covered);
		memcpy(e, &crc, 4);
	}
	return 0;
}
