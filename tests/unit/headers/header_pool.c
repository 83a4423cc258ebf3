/* SPDX-License-Identifier: MIT */
/* proa/pool.h compiles on its own, first and alone
 * (docs/architecture.md, "Public headers"). */
#include "proa/pool.h"
#include "proa/pool.h" /* and guards against a second inclusion */

int proa_header_pool(void);

int proa_header_pool(void)
{
	return 0;
}
