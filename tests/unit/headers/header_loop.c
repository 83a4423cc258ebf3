/* SPDX-License-Identifier: MIT */
/* proa/loop.h compiles on its own, first and alone
 * (docs/architecture.md, "Public headers"). */
#include "proa/loop.h"
#include "proa/loop.h" /* and guards against a second inclusion */

int proa_header_loop(void);

int proa_header_loop(void)
{
	return 0;
}
