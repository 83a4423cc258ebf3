/* SPDX-License-Identifier: MIT */
/*
 * completion/annot.h - Clang thread-safety annotations, empty elsewhere.
 *
 * In C these attach to functions and globals only; clang 14 rejects
 * guarded_by on struct members in C, so members carry a comment instead:
 * guarded_by: mu.
 */
#ifndef PROA_ANNOT_H
#define PROA_ANNOT_H

#if defined(__clang__)
#define PROA__TSA(x) __attribute__((x))
#else
#define PROA__TSA(x)
#endif

#define PROA_CAPABILITY(x) PROA__TSA(capability(x))
#define PROA_REQUIRES(...) PROA__TSA(requires_capability(__VA_ARGS__))
#define PROA_ACQUIRE(...) PROA__TSA(acquire_capability(__VA_ARGS__))
#define PROA_RELEASE(...) PROA__TSA(release_capability(__VA_ARGS__))
#define PROA_EXCLUDES(...) PROA__TSA(locks_excluded(__VA_ARGS__))
#define PROA_GUARDED_BY(x) PROA__TSA(guarded_by(x))
#define PROA_NO_TSA PROA__TSA(no_thread_safety_analysis)

#endif /* PROA_ANNOT_H */
