/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * accfg.h -- the part of libaccel-config's API (accel-config 3.5,
 * <accel-config/libaccel_config.h>) that discovery calls. The library is
 * loaded with dlopen at run time, so the shim builds and loads where
 * neither it nor its header is installed; these mirror its enums and
 * prototypes (a test compiles them against the real header where present).
 */
#ifndef AP_ACCFG_H
#define AP_ACCFG_H 1

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* the soname dlopen asks for unless told another */
#define AP_ACCFG_SONAME "libaccel-config.so.1"

/* enum accfg_device_type */
#define AP_ACCFG_DEVICE_DSA 0
#define AP_ACCFG_DEVICE_IAX 1
/* enum accfg_device_state */
#define AP_ACCFG_DEVICE_DISABLED 0
#define AP_ACCFG_DEVICE_ENABLED 1
/* enum accfg_wq_mode */
#define AP_ACCFG_WQ_SHARED 0
#define AP_ACCFG_WQ_DEDICATED 1
/* enum accfg_wq_state */
#define AP_ACCFG_WQ_DISABLED 0
#define AP_ACCFG_WQ_ENABLED 1
#define AP_ACCFG_WQ_QUIESCING 2
#define AP_ACCFG_WQ_LOCKED 3
/* enum accfg_wq_type */
#define AP_ACCFG_WQT_NONE 0
#define AP_ACCFG_WQT_KERNEL 1
#define AP_ACCFG_WQT_USER 2

struct accfg_ctx;
struct accfg_device;
struct accfg_wq;

/* the functions discovery resolves, by name (X: name, return, arguments) */
#define AP_ACCFG_FUNCTIONS(X) \
	X(accfg_new, int, (struct accfg_ctx **)) \
	X(accfg_unref, struct accfg_ctx *, (struct accfg_ctx *)) \
	X(accfg_device_get_first, struct accfg_device *, \
		(struct accfg_ctx *)) \
	X(accfg_device_get_next, struct accfg_device *, \
		(struct accfg_device *)) \
	X(accfg_device_get_devname, const char *, (struct accfg_device *)) \
	X(accfg_device_get_type, int, (struct accfg_device *)) \
	X(accfg_device_get_state, int, (struct accfg_device *)) \
	X(accfg_device_get_pasid_enabled, _Bool, (struct accfg_device *)) \
	X(accfg_device_get_version, unsigned int, (struct accfg_device *)) \
	X(accfg_device_get_gen_cap, uint64_t, (struct accfg_device *)) \
	X(accfg_device_get_numa_node, int, (struct accfg_device *)) \
	X(accfg_device_get_max_batch_size, unsigned int, \
		(struct accfg_device *)) \
	X(accfg_device_get_max_transfer_size, uint64_t, \
		(struct accfg_device *)) \
	X(accfg_device_get_max_engines, unsigned int, (struct accfg_device *)) \
	X(accfg_wq_get_first, struct accfg_wq *, (struct accfg_device *)) \
	X(accfg_wq_get_next, struct accfg_wq *, (struct accfg_wq *)) \
	X(accfg_wq_get_devname, const char *, (struct accfg_wq *)) \
	X(accfg_wq_get_mode, int, (struct accfg_wq *)) \
	X(accfg_wq_get_size, uint64_t, (struct accfg_wq *)) \
	X(accfg_wq_get_priority, int, (struct accfg_wq *)) \
	X(accfg_wq_get_block_on_fault, int, (struct accfg_wq *)) \
	X(accfg_wq_get_state, int, (struct accfg_wq *)) \
	X(accfg_wq_get_type, int, (struct accfg_wq *)) \
	X(accfg_wq_get_max_batch_size, unsigned int, (struct accfg_wq *)) \
	X(accfg_wq_get_max_transfer_size, uint64_t, (struct accfg_wq *)) \
	X(accfg_wq_get_threshold, int, (struct accfg_wq *))

/* accfg_set_log_fn's logger */
typedef void (*ap_accfg_log_fn)(struct accfg_ctx *, int, const char *, int,
	const char *, const char *, va_list);

/* resolved when present (older releases lack them, or differ) */
#define AP_ACCFG_OPTIONAL(X) \
	X(accfg_set_log_fn, void, (struct accfg_ctx *, ap_accfg_log_fn)) \
	X(accfg_device_get_compl_size, unsigned int, (struct accfg_device *)) \
	X(accfg_wq_get_user_dev_path, int, (struct accfg_wq *, char *, size_t))

#endif
