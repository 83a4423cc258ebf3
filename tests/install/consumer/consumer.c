/* SPDX-License-Identifier: MIT */
/* A program outside the tree, built against an installed proa: it must
 * compile with the installed headers alone and run a loop to a clean
 * close.  Exit 77 when io_uring is refused here, as the tests do. */
#include <proa.h>
#include <stdio.h>

static void done(struct proa_op *op)
{
	*(int *)op->data = op->res == 0 ? 1 : -1;
}

int main(void)
{
	struct proa_loop *loop;
	struct proa_op op;
	char why[256];
	int ok = 0, ret;

	ret = proa_io_uring_probe(why, sizeof(why));
	if (ret < 0) {
		fprintf(stderr, "skipped: %s\n", why);
		return 77;
	}
	if (proa_loop_new(&loop, NULL) != 0)
		return 1;
	proa_op_init(&op, done, &ok);
	if (proa_op_nop(loop, &op) != 0 ||
	    proa_loop_run(loop, PROA_RUN_DEFAULT) != 0 || ok != 1)
		return 2;
	if (proa_loop_close(loop) != 0 || proa_loop_free(loop) != 0)
		return 3;
	printf("consumer: proa %s on %s: ok\n", proa_version(),
	       proa_loop_backend(loop) ? "io_uring" : "?");
	return 0;
}
