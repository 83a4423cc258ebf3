/* SPDX-License-Identifier: MIT */
/* proa/dns.h compiles on its own, first and alone
 * (docs/architecture.md, "Public headers"). */
#include "proa/dns.h"
#include "proa/dns.h" /* and guards against a second inclusion */

int proa_header_dns(void);

int proa_header_dns(void)
{
	return 0;
}
