/* SPDX-License-Identifier: MIT */
/*
 * files.c - see files.h.
 */
#include "files.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <proa.h>
#include <proa/pool.h>

#include "http_util.h"

/* A lookup on the file lane: an open (@path, for the waiters) or a
 * revalidation (@reval).  The worker reads the inputs and writes the
 * outputs; the loop thread touches nothing of it until the future is
 * done. */
struct file_lookup {
	struct file_cache *c;
	struct file_lookup *hnext; /* pending chain (opens only) */
	uint32_t hash;
	struct proa_link waiters;
	struct proa_link link; /* c->lookups */
	/* the cache is closing and nobody waits for this one any more: its
	 * op is cancelled and no further step starts */
	bool cancelled;
	struct proa_future fut;
	struct proa_future pfut; /* a chain's look at the directories */
	/* in */
	int rootfd;
	bool map_files;
	size_t data_room; /* small files' content that still fits */
	struct fentry *reval;
	bool list; /* a directory listing of @path (its key ends in '/') */
	/* out */
	enum file_result fr;
	struct fentry *e; /* FILE_OK: the new entry */
	bool changed;	  /* revalidation: the path names something else */
	/* the chain of operations of an open or a revalidation (below) */
	struct proa_op op;
	int step;    /* enum chain_step: what @op is doing */
	int pfd, fd; /* the O_PATH descriptor; the reopened one, or -1 */
	struct proa_open_how how;
	struct statx stx, stx2; /* the file; the reopened one (no /proc) */
	char *data;		/* a small file's content while it is read */
	size_t got;
	char proc[40]; /* /proc/self/fd/N */
	char path[];
};

static bool fault_stall_fifo;

void files_fault_from_env(void)
{
	/* main's call, before any thread starts */
	/* NOLINTNEXTLINE(concurrency-mt-unsafe) */
	const char *v = getenv("PROA_HTTPD_FAULT_STALL_FIFO");

	fault_stall_fifo = v && *v == '1';
}

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

int files_root_open(const char *dir, int *rootfd)
{
	struct stat st;
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		close(fd);
		return -ENOTDIR;
	}
	/* Probe openat2 once: without it (Linux < 5.6) there is no safe way
	 * to open beneath the root, and we refuse to serve rather than fall
	 * back to string checks. */
	struct open_how how = {.flags = O_PATH | O_CLOEXEC,
			       .resolve = RESOLVE_BENEATH};
	int probe = (int)syscall(SYS_openat2, fd, ".", &how, sizeof(how));
	if (probe < 0) {
		int err = errno;

		close(fd);
		return err == ENOSYS ? -ENOSYS : -err;
	}
	close(probe);
	*rootfd = fd;
	return 0;
}

static uint32_t hash_path(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 16777619u;
	}
	return h;
}

int file_cache_init(struct file_cache *c, struct proa_loop *loop, int rootfd,
		    unsigned max, size_t data_max)
{
	memset(c, 0, sizeof(*c));
	c->loop = loop;
	c->rootfd = rootfd;
	c->max = max ? max : 1;
	c->data_max = data_max;
	c->nbuckets = 1;
	while (c->nbuckets < c->max)
		c->nbuckets <<= 1;
	c->table = calloc(c->nbuckets, sizeof(struct fentry *));
	c->npending_buckets = 256;
	c->pending = calloc(c->npending_buckets, sizeof(struct file_lookup *));
	if (!c->table || !c->pending) {
		free(c->table);
		free(c->pending);
		c->table = NULL;
		c->pending = NULL;
		return -ENOMEM;
	}
	c->lru.lnext = c->lru.lprev = &c->lru;
	proa_list_init(&c->lookups);
	/* A ring that opens and stats runs every step as its own op. */
	c->chains = proa_loop_feature(loop, PROA_FEAT_OP_OPENAT2) &&
		    proa_loop_feature(loop, PROA_FEAT_OP_STATX) &&
		    proa_loop_feature(loop, PROA_FEAT_OP_READ);
	return 0;
}

static void entry_free(struct file_cache *c, struct fentry *e)
{
	if (e->data && !e->listing)
		c->data_bytes -= e->size;
	if (e->listing)
		c->list_bytes -= e->size;
	if (e->map)
		munmap(e->map, e->size);
	if (e->fd >= 0)
		close(e->fd);
	free(e->data);
	free(e->path);
	free(e);
}

static void lru_unlink(struct fentry *e)
{
	e->lprev->lnext = e->lnext;
	e->lnext->lprev = e->lprev;
	e->lnext = e->lprev = e;
}

static void lru_push(struct file_cache *c, struct fentry *e)
{
	e->lnext = c->lru.lnext;
	e->lprev = &c->lru;
	c->lru.lnext->lprev = e;
	c->lru.lnext = e;
}

/* Take @e out of the table; it is freed now or at its last release. */
static void entry_drop(struct file_cache *c, struct fentry *e)
{
	struct fentry **pp = &c->table[e->hash & (c->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(e);
	c->count--;
	e->stale = true;
	if (e->refs == 0)
		entry_free(c, e);
}

void file_cache_destroy(struct file_cache *c)
{
	for (unsigned i = 0; c->table && i < c->nbuckets; i++) {
		struct fentry *e = c->table[i], *next;

		for (; e; e = next) {
			next = e->hnext;
			entry_free(c, e);
		}
	}
	free(c->table);
	free(c->pending);
	c->table = NULL;
	c->pending = NULL;
}

static enum file_result errno_result(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		return FILE_NOT_FOUND;
	case ENAMETOOLONG:
		return FILE_TOO_LONG;
	case EINTR:	/* an open interrupted by a cancel */
	case ECANCELED: /* a step cancelled (file_cache_close_soon()) */
	case EMFILE:
	case ENFILE:
	case ENOMEM:
		return FILE_UNAVAILABLE;
	default: /* EXDEV (would leave the root), ELOOP, EACCES, ENXIO... */
		return FILE_FORBIDDEN;
	}
}

static void fill_validators(struct fentry *e, const char *path)
{
	snprintf(e->etag, sizeof(e->etag), "\"%llx-%llx-%x\"",
		 (unsigned long long)e->size, (unsigned long long)e->mtime_sec,
		 e->mtime_nsec);
	http_date_format((time_t)e->mtime_sec, e->lastmod);
	e->mime = http_mime_type(path, strlen(path));
}

static int open_beneath(int rootfd, const char *path, uint64_t flags)
{
	struct open_how how = {.flags = flags | O_CLOEXEC,
			       .resolve =
				   RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};

	return (int)syscall(SYS_openat2, rootfd, *path ? path : ".", &how,
			    sizeof(how));
}

/*
 * A lookup of a file, as a chain of io_uring operations, where the ring
 * opens and stats (c->chains; Linux 5.6): the loop never waits for the
 * file system and no thread of ours is held by a slow one.  An open of a
 * cached name and a read from the page cache complete inside the loop's
 * own io_uring_enter; statx (always handed to a worker by the kernel) and
 * whatever must wait for the disk run in io_uring's workers.  One
 * operation at a time per lookup; the chain ends in chain_end(), which
 * resolves the lookup's future.  Elsewhere (epoll, older kernels) the
 * same steps run as one job on the pool's file lane (entry_open()).
 *
 *   opath:  openat2(root, path, O_PATH, RESOLVE_BENEATH|NO_MAGICLINKS),
 *           which opens nothing (no FIFO reader appears, no device
 *           driver's open() runs)
 *   stat:   statx of that descriptor; only a regular file goes on
 *   reopen: the object the O_PATH descriptor names, opened for reading
 *           through /proc/self/fd: that very object, with the permission
 *           check of a real open
 *   again, check: without /proc (a bare chroot) the path opened again
 *           beneath the root, and statx'ed: it must still be the same
 *           inode - a window in which a device swapped in would be
 *           opened, which only /proc closes
 *   read:   a small file's content, read until complete
 *   fault:  the fault hook (files_fault_from_env()): an open of the FIFO
 *           that blocks as a hung file system would
 * A revalidation is one step, a statx of the path.
 */
enum chain_step {
	STEP_OPATH,
	STEP_STAT,
	STEP_REOPEN,
	STEP_AGAIN,
	STEP_CHECK,
	STEP_READ,
	STEP_FAULT,
	STEP_REVAL,
};

#define LOOKUP_STATX_MASK                                                      \
	(STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_MTIME | STATX_INO)

static void chain_step_done(struct proa_op *op);

static bool same_inode(const struct statx *a, const struct statx *b)
{
	return a->stx_ino == b->stx_ino &&
	       a->stx_dev_major == b->stx_dev_major &&
	       a->stx_dev_minor == b->stx_dev_minor;
}

/* Whether what @stx saw at @e's path is still @e. */
static bool entry_matches(const struct fentry *e, const struct statx *stx)
{
	/* A chmod changes no mtime: the mode is compared too. */
	return stx->stx_mode == e->mode && stx->stx_ino == e->ino &&
	       ((uint64_t)stx->stx_dev_major << 32 | stx->stx_dev_minor) ==
		   e->dev &&
	       stx->stx_size == e->size &&
	       stx->stx_mtime.tv_sec == e->mtime_sec &&
	       stx->stx_mtime.tv_nsec == e->mtime_nsec;
}

/* The entry for the regular file @fd that @stx describes; NULL without
 * memory (the descriptor is then the caller's still). */
static struct fentry *entry_new(const char *path, int fd,
				const struct statx *stx)
{
	struct fentry *e = calloc(1, sizeof(*e));

	if (!e || !(e->path = strdup(path))) {
		free(e);
		return NULL;
	}
	e->fd = fd;
	e->size = stx->stx_size;
	e->dev = (uint64_t)stx->stx_dev_major << 32 | stx->stx_dev_minor;
	e->ino = stx->stx_ino;
	e->mode = stx->stx_mode;
	e->mtime_sec = stx->stx_mtime.tv_sec;
	e->mtime_nsec = stx->stx_mtime.tv_nsec;
	e->lnext = e->lprev = e;
	fill_validators(e, path);
	return e;
}

/* The end of a chain: @fr (and l->e for FILE_OK) go to lookup_done()
 * through the future, which runs its callback in a later iteration. */
static void chain_end(struct file_lookup *l, enum file_result fr)
{
	if (l->pfd >= 0)
		close(l->pfd); /* O_PATH: no file system work on close */
	if (l->fd >= 0)
		close(l->fd); /* reopened, not yet checked */
	l->pfd = l->fd = -1;
	free(l->data); /* a read cut short, or not started */
	l->data = NULL;
	if (fr != FILE_OK && l->e) {
		/* Not in a table, not accounted: just let it go. */
		free(l->e->data);
		l->e->data = NULL;
		if (l->e->fd >= 0)
			close(l->e->fd);
		free(l->e->path);
		free(l->e);
		l->e = NULL;
	}
	if (l->cancelled && fr != FILE_OK)
		fr = FILE_UNAVAILABLE;
	l->fr = fr;
	/* Only -EINVAL (the future is not pending) could fail: it is. */
	(void)proa_future_set_result(&l->fut, 0, NULL);
}

/* After the submission of the next step (l->step set first): a refused
 * one (the ring's queue full and no room on the file lane) ends the chain
 * as "unavailable". */
static void chain_check(struct file_lookup *l, int ret)
{
	if (ret < 0)
		chain_end(l, FILE_UNAVAILABLE);
}

static void chain_openat2(struct file_lookup *l, enum chain_step step,
			  int dirfd, const char *path, uint64_t flags,
			  uint64_t resolve)
{
	l->how = (struct proa_open_how){.flags = flags, .resolve = resolve};
	l->step = step;
	chain_check(l, l->cancelled ? -ECANCELED
				    : proa_op_openat2(l->c->loop, &l->op, dirfd,
						      path, &l->how));
}

/* Step @step: a statx of @fd (l->pfd or l->fd: chain_end closes it) into
 * @into. */
static void chain_statx(struct file_lookup *l, enum chain_step step, int fd,
			unsigned mask, struct statx *into)
{
	l->step = step;
	chain_check(l, l->cancelled ? -ECANCELED
				    : proa_op_statx(l->c->loop, &l->op, fd, "",
						    AT_EMPTY_PATH, mask, into));
}

static void chain_read_end(struct file_lookup *l, bool whole);

static void chain_read_more(struct file_lookup *l)
{
	struct fentry *e = l->e;

	l->step = STEP_READ;
	if (l->cancelled) {
		chain_end(l, FILE_UNAVAILABLE);
		return;
	}
	/* Refused: served from the descriptor instead. */
	if (proa_op_read(l->c->loop, &l->op, e->fd, l->data + l->got,
			 e->size - l->got, (int64_t)l->got) < 0)
		chain_read_end(l, false);
}

static void map_bigger(struct fentry *e, bool map_files);

/* The file is open for reading (@fd) and is what l->stx says.  One too
 * big to keep a copy of is mapped, where asked for, as entry_open() does
 * on the pool. */
static void chain_opened(struct file_lookup *l, int fd)
{
	struct fentry *e = entry_new(l->path, fd, &l->stx);

	if (!e) {
		close(fd);
		chain_end(l, FILE_UNAVAILABLE);
		return;
	}
	l->e = e;
	close(l->pfd);
	l->pfd = -1;
	if (e->size <= FILE_CACHE_DATA_MAX && e->size <= l->data_room &&
	    (l->data = malloc(e->size ? e->size : 1))) {
		l->got = 0;
		if (e->size) {
			chain_read_more(l);
			return;
		}
		e->data = l->data;
		l->data = NULL;
	}
	map_bigger(e, l->map_files);
	chain_end(l, FILE_OK);
}

/* A small file's content is in, or could not be read whole: a file that
 * changed under the read is served from the descriptor instead (the next
 * revalidation catches up).  Then the mapping, where asked for. */
static void chain_read_end(struct file_lookup *l, bool whole)
{
	if (whole)
		l->e->data = l->data;
	else
		free(l->data);
	l->data = NULL;
	map_bigger(l->e, l->map_files);
	chain_end(l, FILE_OK);
}

/* Whether @path (beneath the root) names a directory others may search. */
static bool searchable_beneath(int rootfd, const char *path)
{
	struct stat st;

	return fstatat(rootfd, path, &st, 0) == 0 && S_ISDIR(st.st_mode) &&
	       (st.st_mode & S_IXOTH);
}

/*
 * Running as root, CAP_DAC_OVERRIDE passes the directories above a file
 * too, so a 0644 file in a 0700 home directory would be published: every
 * directory between the root and the object @fd (opened at @path beneath
 * @rootfd) must be one others may search (the root itself is the
 * operator's choice).  The object's real path, from /proc, names the
 * directories a symlink led through; without /proc, @path's own prefixes.
 * The dentries were just walked by the open, so these stats find them in
 * memory.
 */
static bool others_may_reach(int rootfd, int fd, const char *path)
{
	char root[PATH_MAX], obj[PATH_MAX], proc[40], *c;
	ssize_t rn, on;
	size_t base;
	bool ok = true;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", rootfd);
	rn = readlink(proc, root, sizeof(root) - 1);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	on = readlink(proc, obj, sizeof(obj) - 1);
	if (rn > 0 && on > 0 && root[0] == '/') {
		root[rn] = 0;
		obj[on] = 0;
		base = rn == 1 ? 0 : (size_t)rn; /* a root of "/" */
		if (strncmp(obj, root, (size_t)rn) != 0 || obj[base] != '/')
			return false;
		for (c = strchr(obj + base + 1, '/'); c && ok;
		     c = strchr(c + 1, '/')) {
			*c = 0;
			ok = searchable_beneath(AT_FDCWD, obj);
			*c = '/';
		}
		return ok;
	}
	if (strlen(path) >= sizeof(obj))
		return false;
	memcpy(obj, path, strlen(path) + 1);
	for (c = strchr(obj, '/'); c && ok; c = strchr(c + 1, '/')) {
		*c = 0;
		ok = searchable_beneath(rootfd, obj);
		*c = '/';
	}
	return ok;
}

/* What a statx of the O_PATH descriptor @pfd, opened at @path, says:
 * FILE_OK for a regular file we may serve, else what to answer.  Root
 * reads every file (CAP_DAC_OVERRIDE), so running as root would publish a
 * 0600 or 000 file, or one in a private directory: serve only what any
 * user may reach and read.  Asked each time: once --user has dropped root,
 * the kernel's own check on the open is the rule.  The directories are
 * looked at with system calls, which a loop thread must not make: a chain
 * asks without @parents, and has them looked at on the pool after. */
static enum file_result stat_verdict(const struct statx *stx, int rootfd,
				     int pfd, const char *path, bool parents)
{
	const mode_t mode = stx->stx_mode;

	if (S_ISDIR(mode))
		return FILE_IS_DIR;
	if (!S_ISREG(mode))
		return FILE_FORBIDDEN;
	if (geteuid() != 0)
		return FILE_OK;
	if (!(mode & S_IROTH))
		return FILE_FORBIDDEN;
	if (parents && !others_may_reach(rootfd, pfd, path))
		return FILE_FORBIDDEN;
	return FILE_OK;
}

static void chain_reopen(struct file_lookup *l)
{
	snprintf(l->proc, sizeof(l->proc), "/proc/self/fd/%d", l->pfd);
	chain_openat2(l, STEP_REOPEN, AT_FDCWD, l->proc,
		      O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
}

/* On the file lane: stat_verdict()'s directories, for a chain as root.
 * 1: others may reach the file; 0: they may not. */
static int32_t parents_job(void *arg, void **value)
{
	struct file_lookup *l = arg;

	(void)value;
	return others_may_reach(l->rootfd, l->pfd, l->path) ? 1 : 0;
}

static void parents_done(struct proa_future *fut, void *arg)
{
	struct file_lookup *l = arg;
	int res = proa_future_result(fut, NULL);

	proa_future_fini(fut);
	if (l->cancelled || res < 0)
		chain_end(l, FILE_UNAVAILABLE);
	else if (res == 0)
		chain_end(l, FILE_FORBIDDEN);
	else
		chain_reopen(l);
}

/* As root, before the reopen: the directories above the file, on the pool
 * (a few stats of dentries the open just walked, but system calls all the
 * same, which a loop thread does not make). */
static void chain_parents(struct file_lookup *l)
{
	struct proa_loop *loop = l->c->loop;

	proa_future_init(&l->pfut, loop);
	if (proa_future_add_done_callback(&l->pfut, parents_done, l) < 0 ||
	    proa_pool_submit(loop, PROA_LANE_FILE, parents_job, l, &l->pfut) <
		0) {
		proa_future_remove_done_callback(&l->pfut, parents_done, l);
		proa_future_fini(&l->pfut);
		chain_end(l, FILE_UNAVAILABLE);
	}
}

static void chain_after_stat(struct file_lookup *l)
{
	enum file_result fr =
	    stat_verdict(&l->stx, l->rootfd, l->pfd, l->path, false);

	if (fr == FILE_FORBIDDEN && fault_stall_fifo &&
	    S_ISFIFO(l->stx.stx_mode)) {
		snprintf(l->proc, sizeof(l->proc), "/proc/self/fd/%d", l->pfd);
		chain_openat2(l, STEP_FAULT, AT_FDCWD, l->proc, O_RDONLY, 0);
		return;
	}
	if (fr != FILE_OK)
		chain_end(l, fr);
	else if (geteuid() == 0)
		chain_parents(l);
	else
		chain_reopen(l);
}

static void chain_step_done(struct proa_op *op)
{
	struct file_lookup *l = op->data;
	const int res = op->res;

	switch ((enum chain_step)l->step) {
	case STEP_OPATH:
		if (res < 0) {
			chain_end(l, errno_result(-res));
			return;
		}
		l->pfd = res;
		chain_statx(l, STEP_STAT, l->pfd, LOOKUP_STATX_MASK, &l->stx);
		return;
	case STEP_STAT:
		if (res < 0)
			chain_end(l, errno_result(-res));
		else
			chain_after_stat(l);
		return;
	case STEP_REOPEN:
		if (res >= 0)
			chain_opened(l, res);
		else if (res == -ENOENT) /* no /proc */
			chain_openat2(l, STEP_AGAIN, l->rootfd,
				      *l->path ? l->path : ".",
				      O_RDONLY | O_NONBLOCK | O_NOCTTY,
				      RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
		else
			chain_end(l, errno_result(-res));
		return;
	case STEP_AGAIN:
		if (res < 0) {
			chain_end(l, errno_result(-res));
			return;
		}
		l->fd = res;
		chain_statx(l, STEP_CHECK, l->fd, STATX_INO, &l->stx2);
		return;
	case STEP_CHECK:
		if (res < 0 || !same_inode(&l->stx, &l->stx2)) {
			/* replaced meanwhile: as if not there */
			chain_end(l, FILE_NOT_FOUND);
		} else {
			const int fd = l->fd;

			l->fd = -1; /* chain_opened() owns it now */
			chain_opened(l, fd);
		}
		return;
	case STEP_READ:
		if (res > 0) {
			l->got += (size_t)res;
			if (l->got < l->e->size) {
				chain_read_more(l);
				return;
			}
		}
		chain_read_end(l, l->got == l->e->size);
		return;
	case STEP_FAULT:
		if (res >= 0)
			close(res);
		chain_end(l, FILE_FORBIDDEN);
		return;
	case STEP_REVAL:
		l->changed = res < 0 || !entry_matches(l->reval, &l->stx);
		chain_end(l, FILE_OK);
		return;
	}
}

/* The first step of an open or a revalidation: 0, or the error of its
 * submission (nothing was started). */
static int chain_start(struct file_lookup *l)
{
	proa_op_init(&l->op, chain_step_done, l);
	l->pfd = l->fd = -1;
	if (l->reval) {
		const char *p = l->reval->path;

		l->step = STEP_REVAL;
		return proa_op_statx(l->c->loop, &l->op, l->rootfd,
				     *p ? p : ".", 0, LOOKUP_STATX_MASK,
				     &l->stx);
	}
	l->how = (struct proa_open_how){.flags = O_PATH,
					.resolve = RESOLVE_BENEATH |
						   RESOLVE_NO_MAGICLINKS};
	l->step = STEP_OPATH;
	return proa_op_openat2(l->c->loop, &l->op, l->rootfd,
			       *l->path ? l->path : ".", &l->how);
}

/*
 * The same lookups as one job on the pool's file lane, for a loop whose
 * ring cannot open and stat (the epoll backend, a kernel before 5.6):
 * there each step of the chain would be a job of its own, and the read's
 * would need an fstat on the loop thread to find the file regular.  The
 * steps and the rules are the chain's, above.
 */

/* The fault hook's stall, as a blocking open of the FIFO. */
static void fault_stall(int pfd)
{
	char proc[40];
	int fd;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	fd = open(proc, O_RDONLY | O_CLOEXEC); /* blocks until a writer */
	if (fd >= 0)
		close(fd);
}

/* The same, as a listing that meets a FIFO in its directory sees it. */
static void fault_stall_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);

	if (fd >= 0)
		close(fd);
}

/* reopen and again/check, above. */
static int reopen_read(int rootfd, const char *path, int pfd,
		       const struct statx *stx)
{
	const uint64_t flags = O_RDONLY | O_NONBLOCK | O_NOCTTY;
	struct statx now;
	char proc[40];
	int fd;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	fd = open(proc, (int)flags | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	fd = open_beneath(rootfd, path, flags);
	if (fd < 0)
		return fd;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_INO, &now) < 0 ||
	    !same_inode(stx, &now)) {
		close(fd);
		errno = ENOENT; /* replaced meanwhile: as if not there */
		return -1;
	}
	return fd;
}

/* A small file's content, read whole, or NULL. */
static char *read_whole(int fd, uint64_t size)
{
	char *d = malloc(size ? size : 1);
	size_t got = 0;

	while (d && got < size) {
		ssize_t n = pread(fd, d + got, size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(d);
			return NULL;
		}
		got += (size_t)n;
	}
	return d;
}

static void map_bigger(struct fentry *e, bool map_files)
{
	if (map_files && !e->data && e->size > 0 &&
	    e->size <= FILE_CACHE_MAP_MAX) {
		/* Memory, not the file system: the pages are only mapped. */
		void *m = mmap(NULL, e->size, PROT_READ, MAP_SHARED, e->fd, 0);

		/* Without a mapping the file is read instead. */
		if (m != MAP_FAILED)
			e->map = m;
	}
}

static enum file_result entry_open(int rootfd, const char *path, bool map_files,
				   size_t data_room, struct fentry **out)
{
	struct statx stx;
	struct fentry *e;
	enum file_result fr;
	int pfd, fd;

	pfd = open_beneath(rootfd, path, O_PATH);
	if (pfd < 0)
		return errno_result(errno);
	if (statx(pfd, "", AT_EMPTY_PATH, LOOKUP_STATX_MASK, &stx) < 0) {
		fr = errno_result(errno);
		close(pfd);
		return fr;
	}
	fr = stat_verdict(&stx, rootfd, pfd, path, true);
	if (fr != FILE_OK) {
		if (fr == FILE_FORBIDDEN && fault_stall_fifo &&
		    S_ISFIFO(stx.stx_mode))
			fault_stall(pfd);
		close(pfd);
		return fr;
	}
	fd = reopen_read(rootfd, path, pfd, &stx);
	fr = fd < 0 ? errno_result(errno) : FILE_OK;
	close(pfd);
	if (fd < 0)
		return fr;
	if (!(e = entry_new(path, fd, &stx))) {
		close(fd);
		return FILE_UNAVAILABLE;
	}
	/* A file that changed under the read is served from the descriptor
	 * instead; the next revalidation catches up. */
	if (e->size <= FILE_CACHE_DATA_MAX && e->size <= data_room)
		e->data = read_whole(fd, e->size);
	map_bigger(e, map_files);
	*out = e;
	return FILE_OK;
}

/* Whether @e still names what is at its path now. */
static bool entry_valid(int rootfd, const struct fentry *e)
{
	struct statx stx;

	return statx(rootfd, *e->path ? e->path : ".", 0, LOOKUP_STATX_MASK,
		     &stx) == 0 &&
	       entry_matches(e, &stx);
}

static void evict_one(struct file_cache *c)
{
	struct fentry *e;

	/* The least recently used entry nobody is sending from. */
	for (e = c->lru.lprev; e != &c->lru; e = e->lprev) {
		if (e->refs == 0) {
			entry_drop(c, e);
			return;
		}
	}
	/* All in use: drop the oldest anyway; it lives until released. */
	if (c->lru.lprev != &c->lru)
		entry_drop(c, c->lru.lprev);
}

static struct fentry *table_find(struct file_cache *c, const char *path,
				 uint32_t h)
{
	struct fentry *e;

	for (e = c->table[h & (c->nbuckets - 1)]; e; e = e->hnext) {
		if (e->hash == h && strcmp(e->path, path) == 0)
			return e;
	}
	return NULL;
}

static void table_insert(struct file_cache *c, struct fentry *e, uint32_t h,
			 uint64_t now_ns)
{
	while (c->count >= c->max)
		evict_one(c);
	e->cache = c;
	e->hash = h;
	e->checked_ns = now_ns;
	e->hnext = c->table[h & (c->nbuckets - 1)];
	c->table[h & (c->nbuckets - 1)] = e;
	lru_push(c, e);
	c->count++;
}

/* FNV-1a, 64 bits: a listing page's ETag. */
static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (n--) {
		h ^= (unsigned char)*p++;
		h *= 0x100000001b3ull;
	}
	return h;
}

/* A growing buffer of the listing's HTML; @fail once it could not grow. */
struct hbuf {
	char *p;
	size_t len, cap;
	bool fail;
};

static void hb_put(struct hbuf *b, const char *s, size_t n)
{
	if (b->fail)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		char *p;

		while (cap < b->len + n)
			cap *= 2;
		if (!(p = realloc(b->p, cap))) {
			b->fail = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void hb_puts(struct hbuf *b, const char *s)
{
	hb_put(b, s, strlen(s));
}

/* @s as HTML text (and attribute value): & < > " ' escaped. */
static void hb_html(struct hbuf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			hb_puts(b, "&amp;");
			break;
		case '<':
			hb_puts(b, "&lt;");
			break;
		case '>':
			hb_puts(b, "&gt;");
			break;
		case '"':
			hb_puts(b, "&quot;");
			break;
		case '\'':
			hb_puts(b, "&#39;");
			break;
		default:
			hb_put(b, s, 1);
		}
	}
}

/* @s as a relative URL path segment: everything but unreserved bytes
 * percent-encoded, so that a name holding "?", "#", ":" or a newline
 * links to itself and to nothing else. */
static void hb_url(struct hbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("-._~", ch))
			hb_put(b, (const char *)&ch, 1);
		else
			hb_put(b, e, 3);
	}
}

struct dirent_name {
	char *name;
	bool dir;
	uint64_t size;
};

static int name_cmp(const void *a, const void *b)
{
	const struct dirent_name *x = a, *y = b;

	if (x->dir != y->dir)
		return x->dir ? -1 : 1; /* directories first */
	return strcmp(x->name, y->name);
}

/*
 * The listing of the directory @path beneath the root, as an HTML page in
 * a new entry that no table holds (fd -1, the page as its data).  Names
 * starting with "." are left out, as nginx's autoindex does, and as root
 * what others may not read (files) or enter (directories); at most
 * FILE_LIST_MAX entries, or FILE_LIST_PAGE_MAX bytes, are listed, and the
 * page says how many were not.  On a pool worker.
 */
static enum file_result list_dir(int rootfd, const char *path,
				 struct fentry **out)
{
	struct dirent_name *names = NULL;
	size_t n = 0, cap = 0, more = 0;
	struct hbuf b = {0};
	struct statx stx;
	struct dirent *d;
	struct fentry *e;
	char num[32];
	DIR *dir;
	int fd;

	fd = open_beneath(rootfd, path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return errno_result(errno);
	if (statx(fd, "", AT_EMPTY_PATH, STATX_MTIME | STATX_MODE, &stx) < 0 ||
	    (geteuid() == 0 && (!(stx.stx_mode & S_IROTH) ||
				!others_may_reach(rootfd, fd, path)))) {
		close(fd);
		return FILE_FORBIDDEN;
	}
	if (!(dir = fdopendir(fd))) {
		close(fd);
		return FILE_UNAVAILABLE;
	}
	/* readdir(3) is safe on a stream no other thread uses (glibc) */
	while ((d = readdir(dir)) != NULL) { /* NOLINT(concurrency-mt-unsafe) */
		struct stat st;

		if (d->d_name[0] == '.')
			continue;
		if (n == FILE_LIST_MAX) {
			more++;
			continue;
		}
		if (n == cap) {
			struct dirent_name *p;

			cap = cap ? cap * 2 : 64;
			if (!(p = realloc(names, cap * sizeof(*names))))
				break;
			names = p;
		}
		if (fstatat(dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) <
		    0)
			continue; /* gone meanwhile */
		if (fault_stall_fifo && S_ISFIFO(st.st_mode))
			fault_stall_at(dirfd(dir), d->d_name);
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
			continue; /* nothing we would serve */
		/* As root, nor what others could not read or enter: its name
		 * and size are not the world's either. */
		if (geteuid() == 0 &&
		    !(st.st_mode & (S_ISDIR(st.st_mode) ? S_IXOTH : S_IROTH)))
			continue;
		if (!(names[n].name = strdup(d->d_name)))
			break;
		names[n].dir = S_ISDIR(st.st_mode);
		names[n].size = (uint64_t)st.st_size;
		n++;
	}
	closedir(dir);
	if (n > 1)
		qsort(names, n, sizeof(*names), name_cmp);
	hb_puts(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
		    "<title>Index of /");
	hb_html(&b, path);
	hb_puts(&b, *path ? "/</title></head><body><h1>Index of /"
			  : "</title></head><body><h1>Index of /");
	hb_html(&b, path);
	hb_puts(&b, *path ? "/</h1><hr><pre><a href=\"../\">../</a>\n"
			  : "</h1><hr><pre>\n");
	for (size_t i = 0; i < n; i++) {
		/* Room for this entry at its longest (a name escapes to at
		 * most 9 bytes a byte: 3 in the link, 6 in the text) and for
		 * the tail ("... and N more", the end tags). */
		if (b.len + 9 * strlen(names[i].name) + 64 + 256 >
		    FILE_LIST_PAGE_MAX) {
			more += n - i;
			for (; i < n; i++)
				free(names[i].name);
			break;
		}
		hb_puts(&b, "<a href=\"");
		hb_url(&b, names[i].name);
		hb_puts(&b, names[i].dir ? "/\">" : "\">");
		hb_html(&b, names[i].name);
		hb_puts(&b, names[i].dir ? "/</a>\n" : "</a>");
		if (!names[i].dir) {
			snprintf(num, sizeof(num), "  %llu\n",
				 (unsigned long long)names[i].size);
			hb_puts(&b, num);
		}
		free(names[i].name);
	}
	free(names);
	if (more) {
		snprintf(num, sizeof(num), "%zu", more);
		hb_puts(&b, "... and ");
		hb_puts(&b, num);
		hb_puts(&b, " more not listed\n");
	}
	hb_puts(&b, "</pre><hr></body></html>\n");
	e = b.fail ? NULL : calloc(1, sizeof(*e));
	if (!e) {
		free(b.p);
		return FILE_UNAVAILABLE;
	}
	e->fd = -1;
	e->data = b.p;
	e->size = b.len;
	e->listing = true;
	e->mode = stx.stx_mode;
	e->mtime_sec = stx.stx_mtime.tv_sec;
	e->mtime_nsec = stx.stx_mtime.tv_nsec;
	e->lnext = e->lprev = e;
	fill_validators(e, "index.html");
	/* The page's own bytes: a file rewritten to another size of as many
	 * digits changes the page, not its length nor the directory's mtime
	 * (a strong validator must change with the representation). */
	snprintf(e->etag, sizeof(e->etag), "\"%016llx-%llx\"",
		 (unsigned long long)fnv1a(e->data, e->size),
		 (unsigned long long)e->size);
	*out = e;
	return FILE_OK;
}

/* The pool's half of a lookup: a directory listing (no io_uring opcode
 * reads a directory), or an open or a revalidation where the ring cannot
 * run the chain. */
static int32_t lookup_job(void *arg, void **value)
{
	struct file_lookup *l = arg;

	(void)value;
	if (l->reval)
		l->changed = !entry_valid(l->rootfd, l->reval);
	else if (l->list) {
		/* The key is the directory's path and a '/'. */
		char dir[FILE_PATH_MAX];
		size_t n = strlen(l->path) - 1;

		memcpy(dir, l->path, n);
		dir[n] = '\0';
		l->fr = list_dir(l->rootfd, dir, &l->e);
	} else
		l->fr = entry_open(l->rootfd, l->path, l->map_files,
				   l->data_room, &l->e);
	return 0;
}

static void lookup_free(struct file_lookup *l)
{
	struct file_cache *c = l->c;

	proa_list_del(&l->link);
	proa_future_fini(&l->fut);
	free(l);
	if (--c->nlookups == 0 && c->idle)
		c->idle(c->idle_arg);
}

static void reval_done(struct file_lookup *l)
{
	struct file_cache *c = l->c;
	struct fentry *e = l->reval;

	e->revalidating = false;
	c->revalidated++;
	if (!e->stale) {
		if (l->changed || proa_future_result(&l->fut, NULL) < 0)
			entry_drop(c, e);
		else
			e->checked_ns = proa_loop_time(c->loop);
	}
	file_cache_release(c, e);
}

/* An open came back: cache what it found and hand it to each waiter. */
static void open_done(struct file_lookup *l)
{
	struct file_cache *c = l->c;
	struct file_lookup **pp =
	    &c->pending[l->hash & (c->npending_buckets - 1)];
	enum file_result fr = l->fr;
	struct fentry *e = l->e, *old;

	while (*pp != l)
		pp = &(*pp)->hnext;
	*pp = l->hnext;
	if (proa_future_result(&l->fut, NULL) < 0) {
		/* Refused by the pool (shut down, cancelled): nothing ran. */
		fr = FILE_UNAVAILABLE;
		e = NULL;
	}
	if (l->list) {
		/* A page made for these waiters: in no table, freed when the
		 * last of them has sent it.  Its reservation becomes its
		 * size. */
		c->list_bytes -= FILE_LIST_PAGE_MAX;
		if (fr == FILE_OK) {
			e->cache = c;
			e->stale = true;
			c->list_bytes += e->size;
		}
		goto hand_out;
	}
	if ((old = table_find(c, l->path, l->hash)))
		entry_drop(c, old);
	if (fr == FILE_OK) {
		/* Content read while other files filled the budget: the
		 * budget wins; the body then comes from the descriptor. */
		if (e->data && c->data_bytes + e->size > c->data_max) {
			free(e->data);
			e->data = NULL;
		}
		if (e->data)
			c->data_bytes += e->size;
	} else if (fr != FILE_UNAVAILABLE) {
		/* Remembered for a while; out of memory, simply not. */
		e = calloc(1, sizeof(*e));
		if (e && !(e->path = strdup(l->path))) {
			free(e);
			e = NULL;
		}
		if (e) {
			e->fd = -1;
			e->neg = fr;
			e->lnext = e->lprev = e;
		}
	}
	if (e)
		table_insert(c, e, l->hash, proa_loop_time(c->loop));
hand_out:
	if (fr != FILE_OK)
		e = NULL;
	/* Hold the entry across the callbacks: one of them may evict it. */
	if (e)
		e->refs++;
	while (!proa_list_empty(&l->waiters)) {
		struct file_waiter *w = proa_container_of(
		    l->waiters.next, struct file_waiter, link);

		proa_list_del(&w->link);
		w->l = NULL;
		if (e)
			e->refs++;
		w->done(w, l->path, fr, e);
	}
	if (e)
		file_cache_release(c, e);
}

static void lookup_done(struct proa_future *fut, void *arg)
{
	struct file_lookup *l = arg;

	(void)fut;
	if (l->reval)
		reval_done(l);
	else
		open_done(l);
	lookup_free(l);
}

static struct file_lookup *lookup_new(struct file_cache *c, const char *path)
{
	size_t n = strlen(path) + 1;
	struct file_lookup *l;

	if (c->nlookups >= FILE_LOOKUPS_MAX || !(l = calloc(1, sizeof(*l) + n)))
		return NULL;
	memcpy(l->path, path, n);
	l->c = c;
	l->rootfd = c->rootfd;
	proa_list_init(&l->waiters);
	proa_future_init(&l->fut, c->loop);
	return l;
}

static bool lookup_submit(struct file_lookup *l)
{
	struct file_cache *c = l->c;

	/* The callback first: the future cannot be done before submit
	 * returns, but a failed submit must leave nothing behind. */
	if (proa_future_add_done_callback(&l->fut, lookup_done, l) < 0)
		goto fail;
	if ((!l->list && c->chains
		 ? chain_start(l)
		 : proa_pool_submit(c->loop, PROA_LANE_FILE, lookup_job, l,
				    &l->fut)) < 0) {
		proa_future_remove_done_callback(&l->fut, lookup_done, l);
		goto fail;
	}
	proa_list_add_tail(&c->lookups, &l->link);
	c->nlookups++;
	return true;
fail:
	proa_future_fini(&l->fut);
	free(l);
	return false;
}

/* Start a statx of @e's path unless one runs; on failure, try again at the
 * next request (the entry is served meanwhile). */
static void revalidate(struct file_cache *c, struct fentry *e)
{
	struct file_lookup *l;

	if (e->revalidating || !(l = lookup_new(c, "")))
		return;
	l->reval = e;
	e->refs++;
	e->revalidating = true;
	if (!lookup_submit(l)) {
		/* Not file_cache_release(): @e is in the table, so not stale,
		 * and the caller goes on using it (gcc's -Wuse-after-free
		 * cannot see that the release would not free it). */
		e->revalidating = false;
		e->refs--;
	}
}

/* Wait on the lookup of @path (an open, or a listing) in flight, or start
 * one: FILE_PENDING, or FILE_UNAVAILABLE when none can be started. */
static enum file_result lookup_join(struct file_cache *c, const char *path,
				    uint32_t h, bool list,
				    struct file_waiter *w)
{
	struct file_lookup *l;

	for (l = c->pending[h & (c->npending_buckets - 1)]; l; l = l->hnext) {
		if (l->hash == h && l->list == list &&
		    strcmp(l->path, path) == 0)
			break;
	}
	if (l) {
		c->joined++;
	} else {
		/* A page being made holds its room until it is done. */
		if (list &&
		    c->list_bytes + FILE_LIST_PAGE_MAX > FILE_LIST_BUDGET)
			return FILE_UNAVAILABLE;
		if (!(l = lookup_new(c, path)))
			return FILE_UNAVAILABLE;
		l->hash = h;
		l->list = list;
		l->map_files = c->map_files;
		l->data_room = c->data_max > c->data_bytes
				   ? c->data_max - c->data_bytes
				   : 0;
		if (!lookup_submit(l))
			return FILE_UNAVAILABLE;
		if (list)
			c->list_bytes += FILE_LIST_PAGE_MAX;
		l->hnext = c->pending[h & (c->npending_buckets - 1)];
		c->pending[h & (c->npending_buckets - 1)] = l;
	}
	w->l = l;
	proa_list_add_tail(&l->waiters, &w->link);
	return FILE_PENDING;
}

enum file_result file_cache_lookup(struct file_cache *c, const char *path,
				   uint64_t now_ns, struct fentry **out,
				   struct file_waiter *w)
{
	uint32_t h = hash_path(path);
	struct fentry *e = table_find(c, path, h);
	if (e && e->neg) {
		if (now_ns - e->checked_ns < FILE_CACHE_NEG_NS) {
			c->negative_hits++;
			return (enum file_result)e->neg;
		}
		entry_drop(c, e);
		e = NULL;
	}
	if (e) {
		if (now_ns - e->checked_ns >= FILE_CACHE_VALID_NS)
			revalidate(c, e);
		c->hits++;
		lru_unlink(e);
		lru_push(c, e);
		e->refs++;
		*out = e;
		return FILE_OK;
	}
	c->misses++;
	return lookup_join(c, path, h, false, w);
}

enum file_result file_cache_list(struct file_cache *c, const char *path,
				 struct file_waiter *w)
{
	char key[FILE_PATH_MAX];
	size_t n = strlen(path);

	if (n + 2 > sizeof(key))
		return FILE_TOO_LONG;
	memcpy(key, path, n);
	key[n] = '/';
	key[n + 1] = '\0';
	return lookup_join(c, key, hash_path(key), true, w);
}

/* Cancel @l's chain: its op now (io_uring interrupts a worker blocked in
 * an interruptible wait, such as an open of a FIFO or of a file on a hung
 * NFS mount), and every step after it.  A job on the file lane cannot be
 * cancelled once it runs; it ends when the file system answers. */
static void lookup_cancel(struct file_lookup *l)
{
	if (l->cancelled || l->list || !l->c->chains)
		return;
	l->cancelled = true;
	if (!proa_op_is_idle(&l->op))
		(void)proa_op_cancel(&l->op); /* -EALREADY: on its way */
}

void file_cache_close_soon(struct file_cache *c)
{
	struct proa_link *k, *next;

	c->closing = true;
	for (k = c->lookups.next; k != &c->lookups; k = next) {
		struct file_lookup *l =
		    proa_container_of(k, struct file_lookup, link);

		next = k->next;
		if (proa_list_empty(&l->waiters))
			lookup_cancel(l);
	}
}

void file_waiter_cancel(struct file_waiter *w)
{
	struct file_lookup *l = w->l;

	if (!l)
		return;
	proa_list_del(&w->link);
	w->l = NULL;
	if (l->c->closing && proa_list_empty(&l->waiters))
		lookup_cancel(l);
}

void file_cache_release(struct file_cache *c, struct fentry *e)
{
	if (--e->refs == 0 && e->stale)
		entry_free(c, e);
}
