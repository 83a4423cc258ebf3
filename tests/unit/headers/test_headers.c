/* SPDX-License-Identifier: MIT */
/*
 * The public headers: each compiles alone (the header_*.c files beside this
 * one, built into this test), and the caller-embedded structs keep their
 * sizes, which are ABI (docs/architecture.md, "Public headers").  Change a
 * size only on purpose, here.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "proa.h"
#include "proa/net.h"
#include "proa/pool.h"
#include "proa/tls.h"

#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(sizeof(struct proa_op) == 96, "struct proa_op size");
_Static_assert(sizeof(struct proa_handle) == 64, "struct proa_handle size");
_Static_assert(sizeof(struct proa_timer) == 112, "struct proa_timer size");
_Static_assert(sizeof(struct proa_future) == 176, "struct proa_future size");
_Static_assert(sizeof(struct proa_signal) == 48, "struct proa_signal size");
_Static_assert(sizeof(struct proa_iter_hook) == 48,
	       "struct proa_iter_hook size");
#endif
/* The structs a caller fills and the library reads, or the library fills
 * for a caller: their sizes are ABI too.  They grow only into their
 * reserved tails; a size change here is a new SONAME (README, "ABI"). */
_Static_assert(sizeof(struct proa_loop_opts) == 56,
	       "struct proa_loop_opts size");
_Static_assert(sizeof(struct proa_loop_stats) == 176,
	       "struct proa_loop_stats size");
_Static_assert(sizeof(struct proa_transport_options) == 80,
	       "struct proa_transport_options size");
_Static_assert(sizeof(struct proa_server_options) == 152,
	       "struct proa_server_options size");
_Static_assert(sizeof(struct proa_server_stats) == 72,
	       "struct proa_server_stats size");
_Static_assert(sizeof(struct proa_connect_options) == 168,
	       "struct proa_connect_options size");
_Static_assert(sizeof(struct proa_udp_options) == 72,
	       "struct proa_udp_options size");
_Static_assert(sizeof(struct proa_loop_group_options) == 40,
	       "struct proa_loop_group_options size");
_Static_assert(sizeof(struct proa_spawn_opts) == 120,
	       "struct proa_spawn_opts size");
_Static_assert(sizeof(struct proa_pool_lane_opts) == 16,
	       "struct proa_pool_lane_opts size");
_Static_assert(sizeof(struct proa_pool_opts) == 88,
	       "struct proa_pool_opts size");
_Static_assert(sizeof(struct proa_pool_lane_stats) == 104,
	       "struct proa_pool_lane_stats size");
_Static_assert(sizeof(struct proa_pool_stats) == 352,
	       "struct proa_pool_stats size");
_Static_assert(sizeof(struct proa_pool_work) == 368,
	       "struct proa_pool_work size");
_Static_assert(sizeof(struct proa_tls_options) == 96,
	       "struct proa_tls_options size");

_Static_assert(offsetof(struct proa_op, cb) == 0, "cb first");
_Static_assert(PROA_OP_IDLE == 0, "zeroed memory is an idle op");
_Static_assert(PROA_FUTURE_PENDING == 0, "zeroed future state is pending");

int proa_header_base(void);
int proa_header_errno(void);
int proa_header_version(void);
int proa_header_op(void);
int proa_header_loop(void);
int proa_header_future(void);
int proa_header_pool(void);
int proa_header_net(void);
int proa_header_tls(void);
int proa_header_watch(void);
int proa_header_dns(void);

static void test_headers_each_compiles_alone(void **state)
{
	assert_int_equal(
	    proa_header_base() + proa_header_errno() + proa_header_version() +
		proa_header_op() + proa_header_loop() + proa_header_future() +
		proa_header_pool() + proa_header_net() + proa_header_tls() +
		proa_header_watch() + proa_header_dns(),
	    0);
	(void)state;
}

static void test_zeroed_objects_are_idle(void **state)
{
	struct proa_op op = {0};
	struct proa_handle h = {0};
	struct proa_timer t = {0};

	assert_true(proa_op_is_idle(&op));
	assert_int_equal(proa_op_state(&op), PROA_OP_IDLE);
	assert_true(proa_handle_is_idle(&h));
	assert_false(proa_timer_is_active(&t));
	proa_op_init(&op, NULL, &op);
	assert_ptr_equal(op.data, &op);
	assert_true(proa_op_is_idle(&op));
	(void)state;
}

static void test_strerror_covers_both_ranges(void **state)
{
	assert_string_equal(proa_strerror(0), "Success");
	assert_string_equal(proa_strerror(-ECONNREFUSED), "Connection refused");
	assert_string_equal(proa_strerror(-ECANCELED), "Operation canceled");
	assert_string_equal(proa_strerror(PROA_ECLOSED), "loop is closed");
	assert_string_equal(proa_strerror(PROA_EPENDING),
			    "future is still pending");
	assert_string_equal(proa_strerror(-PROA_ERRNO_BASE - 99),
			    "Unknown error");
	assert_string_equal(proa_strerror(-4000), "Unknown error");
	assert_string_equal(proa_strerror(12), "Unknown error");
	(void)state;
}

/* A caller built against a later proa may fill what is reserved here:
 * every constructor refuses that with -EINVAL instead of ignoring it. */
static void test_reserved_fields_must_be_zero(void **state)
{
	struct proa_loop_opts lo = {.reserved[2] = 1};
	struct proa_pool_opts po = {.lanes[1].reserved[0] = 1};
	struct proa_pool_opts po2 = {.reserved[0] = 1};
	struct proa_loop_group_options go = {.reserved[2] = 1};
	struct proa_tls_options to = {.reserved[1] = 1};
	struct proa_loop *loop = NULL;
	struct proa_pool *pool = NULL;
	struct proa_loop_group *g = NULL;
	struct proa_tls_context *tls = NULL;
	char err[128];

	(void)state;
	assert_int_equal(proa_loop_new(&loop, &lo), -EINVAL);
	assert_null(loop);
	assert_int_equal(proa_pool_new(&pool, &po), -EINVAL);
	assert_int_equal(proa_pool_new(&pool, &po2), -EINVAL);
	assert_null(pool);
	assert_int_equal(proa_loop_group_new(&g, &go), -EINVAL);
	assert_null(g);
	assert_int_equal(
	    proa_tls_context_new(&tls, PROA_TLS_CLIENT, &to, err, sizeof(err)),
	    -EINVAL);
	assert_null(tls);
	assert_non_null(strstr(err, "reserved"));
}

static void test_version_matches_header(void **state)
{
	char want[32];

	snprintf(want, sizeof(want), "%d.%d.%d", PROA_VERSION_MAJOR,
		 PROA_VERSION_MINOR, PROA_VERSION_PATCH);
	assert_string_equal(proa_version(), want);
	(void)state;
}

static void test_feature_names_are_complete(void **state)
{
	int f;

	for (f = 0; f < PROA_FEAT__COUNT; f++)
		assert_string_not_equal(proa_feature_name(f), "?");
	assert_string_equal(proa_feature_name(PROA_FEAT__COUNT), "?");
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_headers_each_compiles_alone),
	    cmocka_unit_test(test_zeroed_objects_are_idle),
	    cmocka_unit_test(test_strerror_covers_both_ranges),
	    cmocka_unit_test(test_version_matches_header),
	    cmocka_unit_test(test_reserved_fields_must_be_zero),
	    cmocka_unit_test(test_feature_names_are_complete),
	};

	return cmocka_run_group_tests_name("unit.headers", tests, NULL, NULL);
}
