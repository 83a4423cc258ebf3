/* SPDX-License-Identifier: MIT */
/*
 * ring/ring_priv.h - inside ring/ only: the ring's common state and the
 * backend vtable.
 *
 * ring.c keeps what every backend shares: the queue of ops waiting for
 * submission space, the list of ops in flight, the ops away on the
 * executor, ops completed without the kernel (cancelled while still
 * queued, or home from the executor), counters.  It alone writes an op's
 * state.  A backend (uring.c,
 * epoll.c) only turns ops into kernel work and kernel results into
 * struct proa__cqe records.
 */
#ifndef PROA_RING_PRIV_H
#define PROA_RING_PRIV_H

#include "ring_int.h"

struct proa__backend_ops {
	const char *name;
	/* Give @op to the kernel: 0, -EAGAIN when there is no room now (the
	 * op waits in line), or another -errno (the submission fails). */
	int (*issue)(struct proa__ring *r, struct proa_op *op);
	/* Ask the kernel to cancel @op: 0, or -EAGAIN when there is no room. */
	int (*issue_cancel)(struct proa__ring *r, struct proa_op *op);
	int (*wait)(struct proa__ring *r, int64_t timeout_ns);
	bool (*has_pending)(struct proa__ring *r);
	unsigned (*reap)(struct proa__ring *r, struct proa__cqe *out,
			 unsigned max);
	int (*enable)(struct proa__ring *r);
	/* The backend's own lines; ring.c appends the features. */
	int (*describe)(const struct proa__ring *r, char *buf, size_t len);
	void (*exit)(struct proa__ring *r);
	/* Whether a user file op should run on the pool instead (the epoll
	 * backend: a regular file does not poll).  NULL: never. */
	bool (*offload)(struct proa__ring *r, const struct proa_op *op);
	/* Provided-buffer rings: set up @br->kring and register it; undo;
	 * add buffer @id to the ring's tail. */
	int (*buf_ring_register)(struct proa__ring *r,
				 struct proa_buf_ring *br);
	void (*buf_ring_unregister)(struct proa__ring *r,
				    struct proa_buf_ring *br);
	void (*buf_ring_push)(struct proa_buf_ring *br, unsigned id);
	/* Registered files: make the kernel's sparse table of @nr slots;
	 * put @fd in @slot (-1 empties it).  NULL, or -EOPNOTSUPP from
	 * files_init: ring.c emulates the table with descriptors of its
	 * own. */
	int (*files_init)(struct proa__ring *r, unsigned nr);
	int (*files_set)(struct proa__ring *r, unsigned slot, int fd);
	/* Registered buffers: register @nr iovecs with the kernel, or
	 * unregister them.  NULL: ring.c only records them. */
	int (*bufs_register)(struct proa__ring *r, const struct iovec *iov,
			     unsigned nr);
	void (*bufs_unregister)(struct proa__ring *r);
	/* The emulated file table is about to close @fd, its own duplicate,
	 * with no op on it: forget what the backend knows about it.  NULL:
	 * nothing to forget. */
	void (*forget_fd)(struct proa__ring *r, int fd);
};

/* A slot of the registered-file table (struct proa__files.fds). */
#define PROA__SLOT_FREE (-1)
#define PROA__SLOT_KERNEL (-2) /* the kernel holds the file */

/*
 * The loop's registered-file table.  With the kernel's table (kernel
 * true) a slot holds only PROA__SLOT_KERNEL: the kernel keeps its own
 * reference to the file, and ops name the slot (IOSQE_FIXED_FILE).
 * Emulated (the epoll backend, or a kernel without registered files), a
 * slot holds a duplicate descriptor the table owns, and ops use it as a
 * plain fd.  Either way the caller's descriptor is not kept.
 */
struct proa__files {
	int *fds;
	uint32_t nr; /* slots; 0 until the first registration */
	uint32_t used;
	bool kernel;
};

/* The loop's registered buffers: a copy of the caller's iovecs.  kernel:
 * registered with IORING_REGISTER_BUFFERS, so read/write_fixed use
 * READ_FIXED/WRITE_FIXED; else plain reads and writes into them. */
struct proa__bufs {
	struct iovec *iov;
	unsigned nr; /* 0: none registered */
	bool kernel;
};

struct proa__ring {
	const struct proa__backend_ops *ops;
	struct proa_link queued;   /* QUEUED ops, in submission order */
	struct proa_link inflight; /* INFLIGHT ops the backend has */
	struct proa_link away;	   /* INFLIGHT ops the executor has */
	struct proa_link done;	   /* completed without the backend */
	unsigned nr_user;	   /* user ops QUEUED or INFLIGHT */
	const struct proa__executor *exec;
	unsigned nr_cancel_backlog;
	uint64_t features; /* bit per enum proa_feature */
	struct proa_link buf_rings;
	struct proa__files files;
	struct proa__bufs bufs;
	struct proa__ring_stats stats;
};

/* One bit per feature in a uint64_t (features, hide_features). */
_Static_assert(PROA_FEAT__COUNT <= 64, "proa_feature bits overflow");

static inline void proa__ring_set_feature(struct proa__ring *r,
					  enum proa_feature f, bool on)
{
	if (on)
		r->features |= UINT64_C(1) << f;
}

/* Set a feature the backend found by probing, unless the tests hide it
 * (proa__ring_faults.hide_features); both backends go through here, so a
 * hidden feature is absent whichever one a loop runs on.  Setup facts
 * (ring flags the caller asked for) use proa__ring_set_feature(). */
static inline void proa__ring_set_probed(struct proa__ring *r,
					 enum proa_feature f, bool on)
{
	proa__ring_set_feature(
	    r, f,
	    on && !(proa__ring_faults.hide_features & (UINT64_C(1) << f)));
}

/* user_data values below this are tags, not op pointers. */
#define PROA__UD_IGNORE 1ULL /* cancel requests */
#define PROA__UD_TAGS 4096ULL

int proa__uring_new(struct proa__ring **out, const struct proa__ring_params *p,
		    char *reason, size_t reason_len);
int proa__uring_probe(char *reason, size_t len);
/* The epoll backend; @why (may be NULL) says why io_uring is not used, for
 * proa_loop_describe().  Makes no io_uring system call. */
int proa__epoll_new(struct proa__ring **out, const char *why);

#endif /* PROA_RING_PRIV_H */
