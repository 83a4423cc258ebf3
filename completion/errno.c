/* SPDX-License-Identifier: MIT */
/* completion/errno.c - proa_strerror() and proa_version(). */
#include <string.h>

#include "completion_int.h"
#include "proa/version.h"

#define PROA__STR(x) #x
#define PROA__XSTR(x) PROA__STR(x)

const char *proa_version(void)
{
	return PROA__XSTR(PROA_VERSION_MAJOR) "." PROA__XSTR(
	    PROA_VERSION_MINOR) "." PROA__XSTR(PROA_VERSION_PATCH);
}

const char *proa_strerror(int err)
{
	const char *s;

	switch (err) {
	case 0:
		return "Success";
	case PROA_ECLOSED:
		return "loop is closed";
	case PROA_EPENDING:
		return "future is still pending";
	case PROA_ENONAME:
		return "name or service does not resolve";
	case PROA_EDNSFAIL:
		return "name resolution failed";
	case PROA_EINCOMPLETE:
		return "end of stream before the bytes asked for";
	case PROA_ETLS:
		return "TLS handshake or protocol failure";
	case PROA_ETLSVERIFY:
		return "TLS certificate verification failed";
	case PROA_ETRUNCATED:
		return "TLS stream truncated (no close_notify)";
	default:
		break;
	}
	if (err < 0 && err > -PROA_ERRNO_BASE) {
		/* strerrordesc_np() is thread-safe and locale-free, unlike
		 * strerror(). */
		s = strerrordesc_np(-err);
		if (s)
			return s;
	}
	return "Unknown error";
}
