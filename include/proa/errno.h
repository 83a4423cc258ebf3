/* SPDX-License-Identifier: MIT */
/*
 * proa/errno.h - error codes.
 *
 * Every proa function that can fail returns 0 (or a documented count) on
 * success and a negative errno value on failure, and every operation result
 * (proa_op.res, a future's result) has the shape of a CQE result: a count
 * >= 0 or -errno.  Conditions that no errno value names sit below
 * -PROA_ERRNO_BASE so they can never collide with a kernel error.
 */
#ifndef PROA_ERRNO_H
#define PROA_ERRNO_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PROA_ERRNO_BASE 4096

/* The loop has been closed; nothing more can be queued on it. */
#define PROA_ECLOSED (-(PROA_ERRNO_BASE + 1))
/* The future has not completed yet, so it has no result to give. */
#define PROA_EPENDING (-(PROA_ERRNO_BASE + 2))
/* Name resolution: the name or service does not resolve (EAI_NONAME). */
#define PROA_ENONAME (-(PROA_ERRNO_BASE + 3))
/* Name resolution: the resolver failed for good (EAI_FAIL). */
#define PROA_EDNSFAIL (-(PROA_ERRNO_BASE + 4))
/* A stream ended before a read had its bytes (proa_stream_read_exactly). */
#define PROA_EINCOMPLETE (-(PROA_ERRNO_BASE + 5))
/* TLS: the handshake or the protocol failed (alert, bad record). */
#define PROA_ETLS (-(PROA_ERRNO_BASE + 6))
/* TLS: the peer's certificate did not verify (unknown CA, expired, wrong
 * host name); the reason in words goes to the caller's error buffer. */
#define PROA_ETLSVERIFY (-(PROA_ERRNO_BASE + 7))
/* TLS: the connection ended without close_notify (possibly cut short by
 * an attacker), as opposed to a clean end. */
#define PROA_ETRUNCATED (-(PROA_ERRNO_BASE + 8))

/**
 * proa_strerror() - describe an error code.
 * @err: a negative errno value, a PROA_E* code, or 0.
 *
 * Return: a static string ("Success", "Connection refused", "loop is
 *         closed", ...); never NULL, also for unknown codes.
 * Thread: any.
 */
PROA_API const char *proa_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* PROA_ERRNO_H */
