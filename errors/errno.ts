// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The Linux errno values the library raises or tests for, one place for
 * them all. Positive, as in `<errno.h>`: a `PmemError`'s code is the
 * negated value (`-EINVAL`), and its `errno` the value itself.
 * Internal (not exported by `errors/mod.ts`).
 *
 * @module
 */
/** No such file. */
export const ENOENT = 2;
/** I/O error: a failed persist, a block in the error state, a lost record. */
export const EIO = 5;
/** Bad file descriptor: the errno of a closed object (`AP_E_CLOSED`). */
export const EBADF = 9;
/** Try again: a store or lock held elsewhere; a DSA WQ with no room. */
export const EAGAIN = 11;
/** Permission denied: a mapping whose protection forbids the access. */
export const EACCES = 13;
/** Bad address: a DSA record whose address could not be translated. */
export const EFAULT = 14;
/**
 * Device or resource busy: a block, lane or region in use; a shared DSA WQ
 * that kept answering retry.
 */
export const EBUSY = 16;
/** File exists. */
export const EEXIST = 17;
/** Invalid argument; also a file that is not an intact store. */
export const EINVAL = 22;
/** No space left on device. */
export const ENOSPC = 28;
/** Read-only file system: a write to a store opened read-only. */
export const EROFS = 30;
/** Resource deadlock would occur: a blocking wait on this thread's own work. */
export const EDEADLK = 35;
/** Value too large: a log's timestamps are exhausted. */
export const EOVERFLOW = 75;
/** Operation not supported (the same value as `EOPNOTSUPP` on Linux). */
export const ENOTSUP = 95;
/** Timed out. */
export const ETIMEDOUT = 110;
/** Stale handle: no live object at an offset. */
export const ESTALE = 116;
/** Structure needs cleaning: a corrupt object-store structure. */
export const EUCLEAN = 117;
/** Owner died: a thread or Worker ended holding a lane or lock. */
export const EOWNERDEAD = 130;
