/* SPDX-License-Identifier: MIT */
/* proa/net.h compiles on its own, first and alone
 * (docs/architecture.md, "Public headers"). */
#include "proa/net.h"
#include "proa/net.h" /* and guards against a second inclusion */

int proa_header_net(void);

int proa_header_net(void)
{
	return 0;
}
