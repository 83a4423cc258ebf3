/* SPDX-License-Identifier: MIT */
/* proa/watch.h compiles on its own, first and alone
 * (docs/architecture.md, "Public headers"). */
#include "proa/watch.h"
#include "proa/watch.h" /* and guards against a second inclusion */

int proa_header_watch(void);

int proa_header_watch(void)
{
	return 0;
}
