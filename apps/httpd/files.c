/* SPDX-License-Identifier: MIT */
/*
 * files.c - see files.h.
 */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "http_util.h"

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

int file_cache_init(struct file_cache *c, int rootfd, unsigned max,
		    size_t data_max)
{
	memset(c, 0, sizeof(*c));
	c->rootfd = rootfd;
	c->max = max ? max : 1;
	c->data_max = data_max;
	c->nbuckets = 1;
	while (c->nbuckets < c->max)
		c->nbuckets <<= 1;
	c->table = calloc(c->nbuckets, sizeof(struct fentry *));
	if (!c->table)
		return -ENOMEM;
	c->lru.lnext = c->lru.lprev = &c->lru;
	return 0;
}

static void entry_free(struct file_cache *c, struct fentry *e)
{
	if (e->data)
		c->data_bytes -= e->size;
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
	c->table = NULL;
}

static enum file_result errno_result(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		return FILE_NOT_FOUND;
	case ENAMETOOLONG:
		return FILE_TOO_LONG;
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
 * The object the O_PATH descriptor @pfd names, opened for reading.
 * Through /proc/self/fd it is that very object, with the permission
 * check of a real open; without /proc (a bare chroot) the path is
 * opened again and must still be the same inode - a window in which a
 * device swapped in would be opened, which only /proc closes.
 */
static int reopen_read(int rootfd, const char *path, int pfd,
		       const struct statx *stx)
{
	const uint64_t flags = O_RDONLY | O_NONBLOCK | O_NOCTTY;
	char proc[40];
	struct stat st;
	int fd;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	fd = open(proc, (int)flags | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	fd = open_beneath(rootfd, path, flags);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || st.st_ino != stx->stx_ino ||
	    major(st.st_dev) != stx->stx_dev_major ||
	    minor(st.st_dev) != stx->stx_dev_minor) {
		close(fd);
		errno = ENOENT; /* replaced meanwhile: as if not there */
		return -1;
	}
	return fd;
}

/*
 * Open @path beneath the root; FILE_OK with a new entry (not in the
 * table).  The path is opened with O_PATH first, which opens nothing
 * (no FIFO reader appears, no device driver's open() runs), and only a
 * regular file is then opened for reading, through that descriptor.
 */
static enum file_result entry_open(struct file_cache *c, const char *path,
				   struct fentry **out)
{
	struct statx stx;
	struct fentry *e;
	int pfd, fd;

	pfd = open_beneath(c->rootfd, path, O_PATH);
	if (pfd < 0)
		return errno_result(errno);
	if (statx(pfd, "", AT_EMPTY_PATH,
		  STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_MTIME |
		      STATX_INO,
		  &stx) < 0) {
		int err = errno;

		close(pfd);
		return errno_result(err);
	}
	if (S_ISDIR(stx.stx_mode)) {
		close(pfd);
		return FILE_IS_DIR;
	}
	/* Root reads every file (CAP_DAC_OVERRIDE), so running as root
	 * would publish a 0600 or 000 file: serve only what any user may
	 * read.  Asked each time: once --user has dropped root, the
	 * kernel's own check on the open below is the rule. */
	if (!S_ISREG(stx.stx_mode) ||
	    (!(stx.stx_mode & S_IROTH) && geteuid() == 0)) {
		close(pfd);
		return FILE_FORBIDDEN;
	}
	fd = reopen_read(c->rootfd, path, pfd, &stx);
	if (fd < 0) {
		int err = errno;

		close(pfd);
		return errno_result(err);
	}
	close(pfd);
	e = calloc(1, sizeof(*e));
	if (!e || !(e->path = strdup(path))) {
		free(e);
		close(fd);
		return FILE_UNAVAILABLE;
	}
	e->cache = c;
	e->fd = fd;
	e->size = stx.stx_size;
	e->dev = (uint64_t)stx.stx_dev_major << 32 | stx.stx_dev_minor;
	e->ino = stx.stx_ino;
	e->mode = stx.stx_mode;
	e->mtime_sec = stx.stx_mtime.tv_sec;
	e->mtime_nsec = stx.stx_mtime.tv_nsec;
	e->lnext = e->lprev = e;
	fill_validators(e, path);
	if (e->size <= FILE_CACHE_DATA_MAX &&
	    c->data_bytes + e->size <= c->data_max) {
		char *d = malloc(e->size ? e->size : 1);
		size_t got = 0;

		while (d && got < e->size) {
			ssize_t n =
			    pread(fd, d + got, e->size - got, (off_t)got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		/* A file that changed under the read is served from the
		 * descriptor instead; the next revalidation catches up. */
		if (d && got == e->size) {
			e->data = d;
			c->data_bytes += e->size;
		} else {
			free(d);
		}
	}
	if (c->map_files && !e->data && e->size > 0 &&
	    e->size <= FILE_CACHE_MAP_MAX) {
		void *m = mmap(NULL, e->size, PROT_READ, MAP_SHARED, fd, 0);

		/* Without a mapping the file is read instead. */
		if (m != MAP_FAILED)
			e->map = m;
	}
	*out = e;
	return FILE_OK;
}

/* Whether @e still names what is at its path now. */
static bool entry_valid(struct file_cache *c, struct fentry *e)
{
	struct statx stx;

	c->revalidated++;
	if (statx(c->rootfd, *e->path ? e->path : ".", 0,
		  STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_MTIME |
		      STATX_INO,
		  &stx) < 0)
		return false;
	/* A chmod changes no mtime: the mode is compared too. */
	return stx.stx_mode == e->mode && stx.stx_ino == e->ino &&
	       ((uint64_t)stx.stx_dev_major << 32 | stx.stx_dev_minor) ==
		   e->dev &&
	       stx.stx_size == e->size &&
	       stx.stx_mtime.tv_sec == e->mtime_sec &&
	       stx.stx_mtime.tv_nsec == e->mtime_nsec;
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

enum file_result file_cache_get(struct file_cache *c, const char *path,
				uint64_t now_ns, struct fentry **out)
{
	uint32_t h = hash_path(path);
	struct fentry *e;
	enum file_result r;

	for (e = c->table[h & (c->nbuckets - 1)]; e; e = e->hnext) {
		if (e->hash == h && strcmp(e->path, path) == 0)
			break;
	}
	if (e && now_ns - e->checked_ns >= FILE_CACHE_VALID_NS) {
		if (entry_valid(c, e)) {
			e->checked_ns = now_ns;
		} else {
			entry_drop(c, e);
			e = NULL;
		}
	}
	if (e) {
		c->hits++;
		lru_unlink(e);
		lru_push(c, e);
		e->refs++;
		*out = e;
		return FILE_OK;
	}
	c->misses++;
	r = entry_open(c, path, &e);
	if (r != FILE_OK)
		return r;
	while (c->count >= c->max)
		evict_one(c);
	e->hash = h;
	e->checked_ns = now_ns;
	e->hnext = c->table[h & (c->nbuckets - 1)];
	c->table[h & (c->nbuckets - 1)] = e;
	lru_push(c, e);
	c->count++;
	e->refs = 1;
	*out = e;
	return FILE_OK;
}

void file_cache_release(struct file_cache *c, struct fentry *e)
{
	if (--e->refs == 0 && e->stale)
		entry_free(c, e);
}
