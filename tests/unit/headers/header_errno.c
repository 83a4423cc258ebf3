/* SPDX-License-Identifier: MIT */
/* proa/errno.h compiles on its own, first and alone
 * (docs/architecture.md, "Public headers"). */
#include "proa/errno.h"
#include "proa/errno.h" /* and guards against a second inclusion */

int proa_header_errno(void);

int proa_header_errno(void)
{
	return 0;
}
