/* SPDX-License-Identifier: MIT */
/* proa/process.h compiles on its own, first and alone
 * (docs/architecture.md, "Public headers"). */
#include "proa/process.h"
#include "proa/process.h" /* and guards against a second inclusion */

int proa_header_process(void);

int proa_header_process(void)
{
	return 0;
}
