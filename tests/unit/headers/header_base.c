/* SPDX-License-Identifier: MIT */
/* proa/base.h compiles on its own, first and alone
 * (docs/architecture.md, "Public headers"). */
#include "proa/base.h"
#include "proa/base.h" /* and guards against a second inclusion */

int proa_header_base(void);

int proa_header_base(void)
{
	return 0;
}
