/* SPDX-License-Identifier: MIT */
/*
 * proa/version.h - the version of the headers, and of the library at run time.
 * CMakeLists.txt reads the three numbers below; change them only here.
 */
#ifndef PROA_VERSION_H
#define PROA_VERSION_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PROA_VERSION_MAJOR 0
#define PROA_VERSION_MINOR 2
#define PROA_VERSION_PATCH 0

/**
 * proa_version() - the version of the library that is linked in.
 *
 * Return: a static string "MAJOR.MINOR.PATCH".
 * Thread: any.
 */
PROA_API const char *proa_version(void);

#ifdef __cplusplus
}
#endif

#endif /* PROA_VERSION_H */
