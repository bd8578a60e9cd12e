/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dsa_discover.c -- finding DSA devices and work queues with
 * libaccel-config, loaded with dlopen so the shim builds and loads on
 * machines without it (or without the idxd driver). The answer is one
 * JSON document that TypeScript parses and chooses from: no library, no
 * driver and zero devices are all normal answers, with the reason said.
 *
 * The recipe is DTO's, DML's and SPDK's (reference dsa.md 3.2): every
 * device with its type, state, PASID, GENCAP and limits; every WQ with
 * its state, type, mode and limits, and the path of its character
 * device. OPCAP (and a DSA 2.0 WQ's op_config) come from sysfs, in the
 * kernel's bitmap format: libaccel-config's getter for it changed shape
 * between releases.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "accfg.h"
#include "device.h"

/* the resolved functions */
struct ap_accfg {
#define AP_FIELD(name, ret, args) ret (*name) args;
	AP_ACCFG_FUNCTIONS(AP_FIELD)
	AP_ACCFG_OPTIONAL(AP_FIELD)
#undef AP_FIELD
};

/* a growing JSON document */
struct ap_json {
	char *buf;
	size_t len, cap;
	int oom;
};

/* ap_put -- append formatted text */
__attribute__((format(printf, 2, 3))) static void
ap_put(struct ap_json *j, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(j->buf ? j->buf + j->len : NULL,
			j->buf ? j->cap - j->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0 || j->oom)
			return;
		if (j->buf != NULL && (size_t)n < j->cap - j->len) {
			j->len += (size_t)n;
			return;
		}
		size_t cap = (j->cap ? j->cap * 2 : 1024) + (size_t)n;
		char *b = realloc(j->buf, cap);
		if (b == NULL) {
			j->oom = 1;
			return;
		}
		j->buf = b;
		j->cap = cap;
	}
}

/* ap_put_str -- append a JSON string (NULL is null) */
static void
ap_put_str(struct ap_json *j, const char *s)
{
	if (s == NULL) {
		ap_put(j, "null");
		return;
	}
	ap_put(j, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			ap_put(j, "\\%c", c);
		else if (c < 0x20)
			ap_put(j, "\\u%04x", c);
		else
			ap_put(j, "%c", c);
	}
	ap_put(j, "\"");
}

/*
 * ap_sysfs_bitmap -- the low 64 bits of a sysfs bitmap attribute, as a
 * hex string; NULL when the attribute is missing. Kernels wrote OPCAP
 * three ways: "%*pb" since 6.3 ("…,0000000x,yyyyyyyy": 32-bit groups,
 * most significant first, comma-separated); four 64-bit words, least
 * significant first, separated by spaces ("0x1003f03ff 0x0 0x0 0x0",
 * 5.13 to 6.2); and word 0 alone before that.
 */
static const char *
ap_sysfs_bitmap(const char *dir, const char *name, char *out, size_t cap)
{
	char path[512], text[256];
	snprintf(path, sizeof(path), "/sys/bus/dsa/devices/%s/%s", dir, name);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return NULL;
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	uint64_t words[16];
	int count = 0;
	for (char *p = text, *end; *p && count < 16; p = end + (*end == ',')) {
		unsigned long long v = strtoull(p, &end, 16);
		if (end == p)
			break;
		words[count++] = v;
	}
	if (count == 0)
		return NULL;
	uint64_t low = strchr(text, ',') == NULL ? words[0] :
		words[count - 1] | (count > 1 ? words[count - 2] << 32 : 0);
	snprintf(out, cap, "0x%llx", (unsigned long long)low);
	return out;
}

static const char *
ap_state_name(int s)
{
	return s == AP_ACCFG_WQ_ENABLED ? "enabled" :
		s == AP_ACCFG_WQ_DISABLED ? "disabled" :
		s == AP_ACCFG_WQ_QUIESCING ? "quiescing" :
		s == AP_ACCFG_WQ_LOCKED ? "locked" : "unknown";
}

/* ap_put_wq -- one work queue */
static void
ap_put_wq(struct ap_json *j, struct ap_accfg *a, struct accfg_wq *wq)
{
	const char *name = a->accfg_wq_get_devname(wq);
	char path[512] = "", bits[32];
	int found = a->accfg_wq_get_user_dev_path != NULL &&
		a->accfg_wq_get_user_dev_path(wq, path, sizeof(path)) == 0;
	if (!found)
		snprintf(path, sizeof(path), "/dev/dsa/%s", name ? name : "");
	int type = a->accfg_wq_get_type(wq);
	int mode = a->accfg_wq_get_mode(wq);
	ap_put(j, "{\"name\":");
	ap_put_str(j, name);
	ap_put(j, ",\"path\":");
	ap_put_str(j, path);
	/* a missing attribute reads as -errno in libaccel-config, whatever
	 * the getter's type: numbers are written signed, so that it shows */
	ap_put(j, ",\"pathFound\":%s,\"state\":\"%s\",\"type\":\"%s\","
		"\"mode\":\"%s\",\"size\":%lld,\"maxBatch\":%d,"
		"\"maxTransfer\":%lld,\"blockOnFault\":%d,\"threshold\":%d,"
		"\"priority\":%d,\"opConfig\":",
		found ? "true" : "false",
		ap_state_name(a->accfg_wq_get_state(wq)),
		type == AP_ACCFG_WQT_USER ? "user" :
		type == AP_ACCFG_WQT_KERNEL ? "kernel" : "none",
		mode == AP_ACCFG_WQ_DEDICATED ? "dedicated" :
		mode == AP_ACCFG_WQ_SHARED ? "shared" : "unknown",
		(long long)a->accfg_wq_get_size(wq),
		(int)a->accfg_wq_get_max_batch_size(wq),
		(long long)a->accfg_wq_get_max_transfer_size(wq),
		a->accfg_wq_get_block_on_fault(wq),
		a->accfg_wq_get_threshold(wq), a->accfg_wq_get_priority(wq));
	ap_put_str(j, name ? ap_sysfs_bitmap(name, "op_config", bits,
		sizeof(bits)) : NULL);
	ap_put(j, "}");
}

/* ap_put_device -- one device and its work queues */
static void
ap_put_device(struct ap_json *j, struct ap_accfg *a, struct accfg_device *d)
{
	const char *name = a->accfg_device_get_devname(d);
	int type = a->accfg_device_get_type(d);
	int state = a->accfg_device_get_state(d);
	char bits[32];
	ap_put(j, "{\"name\":");
	ap_put_str(j, name);
	ap_put(j, ",\"type\":\"%s\",\"state\":\"%s\",\"pasidEnabled\":%s,"
		"\"version\":%u,\"genCap\":\"0x%llx\",\"numaNode\":%d,"
		"\"maxBatch\":%d,\"maxTransfer\":%lld,\"engines\":%d,"
		"\"complSize\":%u,\"opCap\":",
		type == AP_ACCFG_DEVICE_DSA ? "dsa" :
		type == AP_ACCFG_DEVICE_IAX ? "iax" : "unknown",
		state == AP_ACCFG_DEVICE_ENABLED ? "enabled" :
		state == AP_ACCFG_DEVICE_DISABLED ? "disabled" : "unknown",
		a->accfg_device_get_pasid_enabled(d) ? "true" : "false",
		a->accfg_device_get_version(d),
		(unsigned long long)a->accfg_device_get_gen_cap(d),
		a->accfg_device_get_numa_node(d),
		(int)a->accfg_device_get_max_batch_size(d),
		(long long)a->accfg_device_get_max_transfer_size(d),
		(int)a->accfg_device_get_max_engines(d),
		a->accfg_device_get_compl_size != NULL ?
			a->accfg_device_get_compl_size(d) : 0);
	ap_put_str(j, name ? ap_sysfs_bitmap(name, "op_cap", bits,
		sizeof(bits)) : NULL);
	ap_put(j, ",\"wqs\":[");
	int first = 1;
	for (struct accfg_wq *wq = a->accfg_wq_get_first(d); wq != NULL;
	     wq = a->accfg_wq_get_next(wq)) {
		ap_put(j, first ? "" : ",");
		first = 0;
		ap_put_wq(j, a, wq);
	}
	ap_put(j, "]}");
}

/*
 * ap_quiet -- libaccel-config's logger: it reports to stderr what the
 * listing already says (a WQ without /dev/dsa node, a missing device)
 */
static void
ap_quiet(struct accfg_ctx *ctx, int priority, const char *file, int line,
	const char *fn, const char *format, va_list args)
{
	(void)ctx;
	(void)priority;
	(void)file;
	(void)line;
	(void)fn;
	(void)format;
	(void)args;
}

/* ap_resolve -- dlopen the library and resolve every function */
static void *
ap_resolve(const char *lib, struct ap_accfg *a, char *why, size_t cap)
{
	/* kept loaded: unloading a library with its own dependencies'
	 * destructors is not worth the risk for a few kilobytes */
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		const char *e = dlerror();
		snprintf(why, cap, "%s", e ? e : "dlopen failed");
		return NULL;
	}
#define AP_REQUIRED(name, ret, args) \
	if ((a->name = (ret(*) args)dlsym(h, #name)) == NULL) { \
		snprintf(why, cap, "%s has no %s", lib, #name); \
		return NULL; \
	}
#define AP_OPTIONAL(name, ret, args) \
	a->name = (ret(*) args)dlsym(h, #name);
	AP_ACCFG_FUNCTIONS(AP_REQUIRED)
	AP_ACCFG_OPTIONAL(AP_OPTIONAL)
#undef AP_REQUIRED
#undef AP_OPTIONAL
	return h;
}

int
ap_dsa_list(const char *lib, double lib_len, char *out, uint32_t cap)
{
	int rc = ap_path_arg(lib, lib_len);
	if (rc)
		return rc;
	const char *name = lib[0] ? lib : AP_ACCFG_SONAME;
	struct ap_json j = { 0 };
	struct ap_accfg a;
	char why[600] = "";
	memset(&a, 0, sizeof(a));
	void *h = ap_resolve(name, &a, why, sizeof(why));
	int driver = access("/sys/bus/dsa", F_OK) == 0;
	ap_put(&j, "{\"library\":");
	ap_put_str(&j, name);
	ap_put(&j, ",\"loaded\":%s,\"loadError\":", h ? "true" : "false");
	ap_put_str(&j, h ? NULL : why);
	ap_put(&j, ",\"driver\":%s,\"cpu\":{\"movdir64b\":%s,\"enqcmd\":%s,"
		"\"waitpkg\":%s},\"devices\":[", driver ? "true" : "false",
		ap_cpu_has(AP_CPU_MOVDIR64B) ? "true" : "false",
		ap_cpu_has(AP_CPU_ENQCMD) ? "true" : "false",
		ap_cpu_has(AP_CPU_WAITPKG) ? "true" : "false");
	struct accfg_ctx *ctx = NULL;
	int ctx_rc = 0;
	if (h != NULL && driver && (ctx_rc = a.accfg_new(&ctx)) == 0) {
		if (a.accfg_set_log_fn != NULL)
			a.accfg_set_log_fn(ctx, ap_quiet);
		int first = 1;
		for (struct accfg_device *d = a.accfg_device_get_first(ctx);
		     d != NULL; d = a.accfg_device_get_next(d)) {
			ap_put(&j, first ? "" : ",");
			first = 0;
			ap_put_device(&j, &a, d);
		}
		a.accfg_unref(ctx);
	}
	ap_put(&j, "],\"contextError\":%d}", ctx_rc);
	if (j.oom) {
		free(j.buf);
		return ap_fail(-ENOMEM, "dsa: cannot allocate the device list");
	}
	if (out != NULL && j.len < cap) {
		memcpy(out, j.buf, j.len);
		out[j.len] = '\0';
	}
	free(j.buf);
	if (j.len > INT32_MAX - 1)
		return ap_fail(-E2BIG, "dsa: device list too long");
	return (int)j.len; /* the length: larger than cap asks for more */
}
