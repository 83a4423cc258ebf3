/* SPDX-License-Identifier: MIT */
/*
 * proactor/bufring.c - the public side of provided-buffer rings
 * (proa/op.h): argument checks and the loop's thread rule; the memory and
 * the kernel registration are ring/'s.
 */
#include <errno.h>
#include <stdlib.h>

#include "proactor_int.h"

int proa_buf_ring_new(struct proa_buf_ring **out, struct proa_loop *loop,
		      unsigned nbufs, size_t bufsize)
{
	struct proa_buf_ring *br;
	int ret;

	if (!loop || !out)
		return -EINVAL;
	PROA__LOOP_CHECK(loop);
	if (loop->closed)
		return PROA_ECLOSED;
	/* The kernel's limits: a power of two up to 32768 entries; a
	 * buffer's length is 32 bits. */
	if (nbufs == 0 || nbufs > 32768 || (nbufs & (nbufs - 1)) ||
	    bufsize == 0 || bufsize > (1u << 30))
		return -EINVAL;
	if (!proa__ring_feature(loop->ring, PROA_FEAT_BUF_RING))
		return -EOPNOTSUPP;
	br = calloc(1, sizeof(*br));
	if (!br)
		return -ENOMEM;
	br->nbufs = nbufs;
	br->bufsize = (bufsize + 63) & ~(size_t)63;
	br->owner = loop;
	ret = proa__buf_ring_register(loop->ring, br);
	if (ret < 0) {
		free(br);
		return ret;
	}
	*out = br;
	return 0;
}

int proa_buf_ring_free(struct proa_buf_ring *br)
{
	if (!br)
		return 0;
	PROA__LOOP_CHECK((struct proa_loop *)br->owner);
	return proa__buf_ring_unregister(br);
}

void *proa_buf_ring_buf(const struct proa_buf_ring *br, unsigned id)
{
	if (!br || id >= br->nbufs)
		return NULL;
	return br->mem + (size_t)id * br->bufsize;
}

size_t proa_buf_ring_bufsize(const struct proa_buf_ring *br)
{
	return br ? br->bufsize : 0;
}

unsigned proa_buf_ring_nbufs(const struct proa_buf_ring *br)
{
	return br ? br->nbufs : 0;
}

int proa_buf_ring_put(struct proa_buf_ring *br, unsigned id)
{
	if (!br || id >= br->nbufs)
		return -EINVAL;
	PROA__LOOP_CHECK((struct proa_loop *)br->owner);
	if (br->in_ring[id])
		return -EALREADY;
	proa__buf_ring_push(br, id);
	return 0;
}

unsigned proa_buf_ring_available(const struct proa_buf_ring *br)
{
	return br ? br->avail : 0;
}
