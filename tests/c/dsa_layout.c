/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dsa_layout.c -- the layouts and constants of <linux/idxd.h> that
 * mover/dsa_format.ts hard-codes, printed as JSON keyed by the TypeScript
 * name ("DsaDescriptor.DST_ADDR"); tests/dsa_test.ts builds and runs it
 * and compares. Where libaccel-config's header is installed, it also
 * checks c/accfg.h's mirror of its enums (a mismatch fails the build).
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <linux/idxd.h>
#include "../../c/accfg.h"

#if __has_include(<accel-config/libaccel_config.h>)
#include <accel-config/libaccel_config.h>
_Static_assert(AP_ACCFG_DEVICE_DSA == ACCFG_DEVICE_DSA, "device type");
_Static_assert(AP_ACCFG_DEVICE_IAX == ACCFG_DEVICE_IAX, "device type");
_Static_assert(AP_ACCFG_DEVICE_ENABLED == ACCFG_DEVICE_ENABLED, "state");
_Static_assert(AP_ACCFG_DEVICE_DISABLED == ACCFG_DEVICE_DISABLED, "state");
_Static_assert(AP_ACCFG_WQ_SHARED == ACCFG_WQ_SHARED, "wq mode");
_Static_assert(AP_ACCFG_WQ_DEDICATED == ACCFG_WQ_DEDICATED, "wq mode");
_Static_assert(AP_ACCFG_WQ_ENABLED == ACCFG_WQ_ENABLED, "wq state");
_Static_assert(AP_ACCFG_WQ_DISABLED == ACCFG_WQ_DISABLED, "wq state");
_Static_assert(AP_ACCFG_WQ_QUIESCING == ACCFG_WQ_QUIESCING, "wq state");
_Static_assert(AP_ACCFG_WQ_LOCKED == ACCFG_WQ_LOCKED, "wq state");
_Static_assert(AP_ACCFG_WQT_USER == ACCFG_WQT_USER, "wq type");
_Static_assert(AP_ACCFG_WQT_KERNEL == ACCFG_WQT_KERNEL, "wq type");
_Static_assert(AP_ACCFG_WQT_NONE == ACCFG_WQT_NONE, "wq type");
#define ACCFG_CHECKED 1
#else
#define ACCFG_CHECKED 0
#endif

static int first = 1;

static void
put(const char *name, unsigned long v)
{
	printf("%s\n  \"%s\": %lu", first ? "{" : ",", name, v);
	first = 0;
}

/* first_byte -- offset of the first non-zero byte of an object */
static unsigned long
first_byte(const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i = 0;
	while (i < n && b[i] == 0)
		i++;
	return i;
}

int
main(void)
{
	struct dsa_hw_desc d;
	struct dsa_completion_record r;
	put("DsaDescriptor.SIZE", sizeof(d));
	memset(&d, 0, sizeof(d));
	d.flags = 0xffffff;
	put("DsaDescriptor.FLAGS", first_byte(&d, sizeof(d)));
	memset(&d, 0, sizeof(d));
	d.opcode = 0xff;
	put("DsaDescriptor.OPCODE", first_byte(&d, sizeof(d)));
	put("DsaDescriptor.COMPLETION_ADDR",
		offsetof(struct dsa_hw_desc, completion_addr));
	put("DsaDescriptor.SRC_ADDR", offsetof(struct dsa_hw_desc, src_addr));
	put("DsaDescriptor.PATTERN", offsetof(struct dsa_hw_desc, pattern));
	put("DsaDescriptor.DESC_LIST_ADDR",
		offsetof(struct dsa_hw_desc, desc_list_addr));
	put("DsaDescriptor.DST_ADDR", offsetof(struct dsa_hw_desc, dst_addr));
	put("DsaDescriptor.XFER_SIZE", offsetof(struct dsa_hw_desc, xfer_size));
	put("DsaDescriptor.DESC_COUNT",
		offsetof(struct dsa_hw_desc, desc_count));
	put("DsaDescriptor.INT_HANDLE",
		offsetof(struct dsa_hw_desc, int_handle));
	put("DsaDescriptor.RSVD1", offsetof(struct dsa_hw_desc, rsvd1));
	put("DsaRecord.SIZE", sizeof(r));
	put("DsaRecord.STATUS", offsetof(struct dsa_completion_record, status));
	put("DsaRecord.RESULT", offsetof(struct dsa_completion_record, result));
	put("DsaRecord.BYTES_COMPLETED",
		offsetof(struct dsa_completion_record, bytes_completed));
	put("DsaRecord.FAULT_ADDR",
		offsetof(struct dsa_completion_record, fault_addr));
	memset(&r, 0, sizeof(r));
	r.invalid_flags = 0xffffff;
	put("DsaRecord.INVALID_FLAGS", first_byte(&r, sizeof(r)));
	put("DsaOpcode.NOOP", DSA_OPCODE_NOOP);
	put("DsaOpcode.BATCH", DSA_OPCODE_BATCH);
	put("DsaOpcode.DRAIN", DSA_OPCODE_DRAIN);
	put("DsaOpcode.MEMMOVE", DSA_OPCODE_MEMMOVE);
	put("DsaOpcode.MEMFILL", DSA_OPCODE_MEMFILL);
	put("DsaOpcode.CFLUSH", DSA_OPCODE_CFLUSH);
	put("DsaFlag.FENCE", IDXD_OP_FLAG_FENCE);
	put("DsaFlag.BLOCK_ON_FAULT", IDXD_OP_FLAG_BOF);
	put("DsaFlag.COMPLETION_ADDR_VALID", IDXD_OP_FLAG_CRAV);
	put("DsaFlag.REQUEST_COMPLETION", IDXD_OP_FLAG_RCR);
	put("DsaFlag.CACHE_CONTROL", IDXD_OP_FLAG_CC);
	put("DsaFlag.DEST_READBACK", IDXD_OP_FLAG_DRDBK);
	put("DsaStatus.NONE", DSA_COMP_NONE);
	put("DsaStatus.SUCCESS", DSA_COMP_SUCCESS);
	put("DsaStatus.SUCCESS_PRED", DSA_COMP_SUCCESS_PRED);
	put("DsaStatus.PAGE_FAULT_NOBOF", DSA_COMP_PAGE_FAULT_NOBOF);
	put("DsaStatus.PAGE_FAULT_IR", DSA_COMP_PAGE_FAULT_IR);
	put("DsaStatus.BATCH_FAIL", DSA_COMP_BATCH_FAIL);
	put("DsaStatus.BATCH_PAGE_FAULT", DSA_COMP_BATCH_PAGE_FAULT);
	put("DsaStatus.DR_OFFSET_NOINC", DSA_COMP_DR_OFFSET_NOINC);
	put("DsaStatus.DR_OFFSET_ERANGE", DSA_COMP_DR_OFFSET_ERANGE);
	put("DsaStatus.DIF_ERR", DSA_COMP_DIF_ERR);
	put("DsaStatus.BAD_OPCODE", DSA_COMP_BAD_OPCODE);
	put("DsaStatus.INVALID_FLAGS", DSA_COMP_INVALID_FLAGS);
	put("DsaStatus.NOZERO_RESERVE", DSA_COMP_NOZERO_RESERVE);
	put("DsaStatus.XFER_ERANGE", DSA_COMP_XFER_ERANGE);
	put("DsaStatus.DESC_CNT_ERANGE", DSA_COMP_DESC_CNT_ERANGE);
	put("DsaStatus.DR_ERANGE", DSA_COMP_DR_ERANGE);
	put("DsaStatus.OVERLAP_BUFFERS", DSA_COMP_OVERLAP_BUFFERS);
	put("DsaStatus.DCAST_ERR", DSA_COMP_DCAST_ERR);
	put("DsaStatus.DESCLIST_ALIGN", DSA_COMP_DESCLIST_ALIGN);
	put("DsaStatus.INT_HANDLE_INVAL", DSA_COMP_INT_HANDLE_INVAL);
	put("DsaStatus.CRA_XLAT", DSA_COMP_CRA_XLAT);
	put("DsaStatus.CRA_ALIGN", DSA_COMP_CRA_ALIGN);
	put("DsaStatus.ADDR_ALIGN", DSA_COMP_ADDR_ALIGN);
	put("DsaStatus.PRIV_BAD", DSA_COMP_PRIV_BAD);
	put("DsaStatus.TRAFFIC_CLASS_CONF", DSA_COMP_TRAFFIC_CLASS_CONF);
	put("DsaStatus.PFAULT_RDBA", DSA_COMP_PFAULT_RDBA);
	put("DsaStatus.HW_ERR1", DSA_COMP_HW_ERR1);
	put("DsaStatus.HW_ERR_DRB", DSA_COMP_HW_ERR_DRB);
	put("DsaStatus.TRANSLATION_FAIL", DSA_COMP_TRANSLATION_FAIL);
	put("DSA_STATUS_MASK", DSA_COMP_STATUS_MASK);
	put("DSA_STATUS_WRITE_FAULT", DSA_COMP_STATUS_WRITE);
	put("accfgChecked", ACCFG_CHECKED);
	printf("\n}\n");
	return 0;
}
