/* SPDX-License-Identifier: MIT */
/* proa/errno.h compiles on its own, first and alone (STYLE.md 3). */
#include "proa/errno.h"
#include "proa/errno.h" /* and guards against a second inclusion */

int proa_header_errno(void);

int proa_header_errno(void)
{
	return 0;
}
