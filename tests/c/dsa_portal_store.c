/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dsa_portal_store.c -- a test portal of each kind (dedicated, shared,
 * write) takes a MEMFILL and completes it. Run under valgrind, whose CPU
 * has no MOVDIR64B (CPUID says so, and the instruction is SIGILL): the
 * test portal must then store descriptors without it, as the testing
 * entry point promises ("written with MOVDIR64B where the CPU has it").
 * Prints "ok" and exits 0, else names what failed.
 */
#include <stdio.h>
#include <string.h>
#include "../../c/asyncpmem.h"

#define MEMFILL 4
#define SUCCESS 1

static int
one(uint32_t kind)
{
	struct ap_dev *d = NULL;
	int rc = ap_dsa_open_test(&d, kind, 4, 0, 4096, 1, 4, 1, 0);
	if (rc) {
		printf("kind %u: open failed (%d)\n", kind, rc);
		return 1;
	}
	static char buf[4096];
	memset(buf, 0, sizeof(buf));
	uint8_t *records = ap_dev_records(d);
	uint32_t *seq = (uint32_t *)(void *)(records + 4 * AP_RECORD_STRIDE +
		AP_CTRL_SEQ);
	for (uint32_t i = 0; i < 8 && rc == 0; i++) {
		uint32_t rec = i % 4;
		rc = ap_dev_submit(d, rec, MEMFILL, 0, buf, sizeof(buf), 0, buf,
			sizeof(buf), 0, sizeof(buf), 7 + i);
		uint8_t st = 0;
		for (int t = 0; rc == 0 && t < 100; t++) {
			uint32_t now = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
			st = __atomic_load_n(&records[rec * AP_RECORD_STRIDE],
				__ATOMIC_ACQUIRE);
			if (st != 0)
				break;
			ap_dev_wait(d, now, 100, 1);
		}
		if (rc == 0 && st != SUCCESS) {
			printf("kind %u: record %u status 0x%x\n", kind, rec, st);
			rc = 1;
		} else if (rc == 0 && buf[4095] != (char)(7 + i)) {
			printf("kind %u: fill %u not done\n", kind, i);
			rc = 1;
		} else if (rc) {
			printf("kind %u: submit failed (%d)\n", kind, rc);
		}
	}
	ap_dev_delete(&d);
	return rc != 0;
}

int
main(void)
{
	int bad = 0;
	for (uint32_t kind = 1; kind <= 3; kind++) {
		bad |= one(kind);
		fflush(stdout);
	}
	if (!bad)
		printf("ok\n");
	return bad;
}
