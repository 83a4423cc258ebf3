/* SPDX-License-Identifier: MIT */
/* proa/tls.h compiles on its own, first and alone
 * (docs/architecture.md, "Public headers"). */
#include "proa/tls.h"
#include "proa/tls.h" /* and guards against a second inclusion */

int proa_header_tls(void);

int proa_header_tls(void)
{
	return 0;
}
