/* SPDX-License-Identifier: MIT */
/* proa.h - everything: the loop, operations, futures, errors. */
#ifndef PROA_H
#define PROA_H

#include "proa/base.h"
#include "proa/errno.h"
#include "proa/version.h"
#include "proa/op.h"
#include "proa/loop.h"
#include "proa/watch.h"
#include "proa/dns.h"
#include "proa/future.h"
#include "proa/pool.h"
#include "proa/net.h"
#include "proa/tls.h"
#include "proa/process.h"

#endif /* PROA_H */
