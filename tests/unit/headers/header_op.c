/* SPDX-License-Identifier: MIT */
/* proa/op.h compiles on its own, first and alone
 * (docs/architecture.md, "Public headers"). */
#include "proa/op.h"
#include "proa/op.h" /* and guards against a second inclusion */

int proa_header_op(void);

int proa_header_op(void)
{
	return 0;
}
