/* SPDX-License-Identifier: MIT */
/*
 * proactor/iterhook.c - prepare and check hooks (proa/loop.h): callbacks
 * run by iterate() on every iteration, before the loop may block and after
 * it has reaped completions.
 *
 * A pass moves the hooks of its kind to a list on the stack and takes them
 * back one at a time before calling each (libuv's way): a hook stopped by
 * an earlier callback has left that list and is not called, and a hook
 * started meanwhile joins the loop's list, so it waits for the next pass,
 * and the pass ends however callbacks start and stop hooks.
 */
#include <errno.h>

#include "proactor_int.h"

void proa__iter_hooks_init(struct proa_loop *loop)
{
	proa_list_init(&loop->iter_hooks[PROA_HOOK_PREPARE]);
	proa_list_init(&loop->iter_hooks[PROA_HOOK_CHECK]);
}

void proa__iter_hooks_run(struct proa_loop *loop, int kind)
{
	struct proa_link *head = &loop->iter_hooks[kind];
	struct proa_link pass;
	struct proa_iter_hook *h;

	if (proa_list_empty(head))
		return;
	proa_list_init(&pass);
	proa__list_splice_tail(head, &pass);
	while (!proa_list_empty(&pass)) {
		h = proa_container_of(pass.next, struct proa_iter_hook,
				      priv.link);
		proa_list_del(&h->priv.link);
		proa_list_add_tail(head, &h->priv.link);
		h->fn(h, h->arg);
	}
}

void proa__iter_hooks_stop_all(struct proa_loop *loop)
{
	struct proa_iter_hook *h;
	int kind;

	for (kind = PROA_HOOK_PREPARE; kind <= PROA_HOOK_CHECK; kind++) {
		while (!proa_list_empty(&loop->iter_hooks[kind])) {
			h = proa_container_of(loop->iter_hooks[kind].next,
					      struct proa_iter_hook, priv.link);
			proa_iter_hook_stop(h);
		}
	}
}

int proa_iter_hook_start(struct proa_loop *loop, struct proa_iter_hook *h,
			 enum proa_iter_hook_kind kind, proa_iter_hook_fn fn,
			 void *arg)
{
	if (!loop || !h || !fn ||
	    (kind != PROA_HOOK_PREPARE && kind != PROA_HOOK_CHECK))
		return -EINVAL;
	PROA__LOOP_CHECK(loop);
	if (loop->closed)
		return PROA_ECLOSED;
	if (h->priv.loop)
		return -EBUSY;
	h->fn = fn;
	h->arg = arg;
	h->priv.loop = loop;
	h->priv.kind = (int)kind;
	proa_list_add_tail(&loop->iter_hooks[kind], &h->priv.link);
	return 0;
}

int proa_iter_hook_stop(struct proa_iter_hook *h)
{
	if (!h || !h->priv.loop)
		return -ENOENT;
	PROA__LOOP_CHECK(h->priv.loop);
	proa_list_del(&h->priv.link);
	h->priv.loop = NULL;
	return 0;
}

bool proa_iter_hook_is_active(const struct proa_iter_hook *h)
{
	return h && h->priv.loop;
}
