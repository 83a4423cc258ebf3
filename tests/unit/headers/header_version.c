/* SPDX-License-Identifier: MIT */
/* proa/version.h compiles on its own, first and alone
 * (docs/architecture.md, "Public headers"). */
#include "proa/version.h"
#include "proa/version.h" /* and guards against a second inclusion */

int proa_header_version(void);

int proa_header_version(void)
{
	return 0;
}
