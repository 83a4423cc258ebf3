/* SPDX-License-Identifier: MIT */
/* proa/future.h compiles on its own, first and alone
 * (docs/architecture.md, "Public headers"). */
#include "proa/future.h"
#include "proa/future.h" /* and guards against a second inclusion */

int proa_header_future(void);

int proa_header_future(void)
{
	return 0;
}
