/* SPDX-License-Identifier: MIT */
/*
 * files.h - proa-httpd's served root and its open-file cache.
 *
 * Files are opened relative to the root's descriptor with openat2() and
 * RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, so that no "..", absolute
 * symlink or symlink chain leads outside the root whatever the path
 * decoding let through; only regular files are served, and a path is
 * opened for reading only once O_PATH and statx have shown it to be one
 * (a FIFO or a device node is never opened).  While the process is root,
 * only files "other" may read (S_IROTH) are served.
 *
 * Each loop has its own cache (no lock): an entry holds the open file, its
 * statx identity, the ETag and Last-Modified strings, and, for files of at
 * most FILE_CACHE_DATA_MAX bytes, their content, so that a small file is
 * answered with one write of memory.  An entry is trusted for
 * FILE_CACHE_VALID_NS and then revalidated with statx (device, inode,
 * size, mtime): a file replaced or changed is reopened.  Entries in use by
 * a response are never closed under it (reference count).
 *
 * Bigger files are spliced from the descriptor (proa-httpd's sendfile
 * path).  Where that is not the path - a loop that cannot splice, or
 * --send-path map - files up to FILE_CACHE_MAP_MAX are mapped (MAP_SHARED,
 * read-only; @map_files) and sent from the mapping with
 * proa_transport_write_ref(): the process itself never touches the pages,
 * only the kernel's socket copy does, so a file truncated under a response
 * fails that send (EFAULT) instead of raising SIGBUS.
 *
 * Opening and the small files' first read are synchronous on the loop
 * thread, as nginx's open_file_cache does them: a cold, uncached file
 * costs the loop one open and, for a small one, one read, once.
 *
 * Thread: a cache belongs to one loop thread; files_root_open() any.
 */
#ifndef HTTPD_FILES_H
#define HTTPD_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FILE_CACHE_DATA_MAX ((uint64_t)64 * 1024)
#define FILE_CACHE_VALID_NS 1000000000ull
/* Files above FILE_CACHE_DATA_MAX and up to this are mapped, so that a
 * response is sent from the page cache with one copy (the socket's) and
 * no read; bigger ones are read a piece at a time. */
#define FILE_CACHE_MAP_MAX ((uint64_t)1 << 30)

struct file_cache;

struct fentry {
	struct file_cache *cache;
	struct fentry *hnext;	      /* hash chain */
	struct fentry *lprev, *lnext; /* LRU, most recent first */
	char *path; /* relative to the root; "" is the root itself */
	uint32_t hash;
	int fd;
	unsigned refs;
	bool stale; /* out of the table: freed at refs 0 */
	uint64_t size;
	uint64_t dev, ino;
	uint32_t mode; /* st_mode when opened: a chmod is a change */
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint64_t checked_ns;
	const char *mime;
	char etag[48];	  /* with its quotes */
	char lastmod[30]; /* IMF-fixdate */
	char *data;	  /* the content, for small files; else NULL */
	char *map;	  /* bigger files: mapped read-only, or NULL */
};

struct file_cache {
	int rootfd;
	struct fentry **table;
	unsigned nbuckets;
	unsigned count, max;
	size_t data_bytes, data_max;
	bool map_files;	   /* map bigger files (see above); set after init */
	struct fentry lru; /* sentinel */
	uint64_t hits, misses, revalidated;
};

/* Open @dir as a served root.  0 or -errno (and @why in words). */
int files_root_open(const char *dir, int *rootfd);

/* 0 or -ENOMEM.  @max entries, @data_max bytes of small files' content. */
int file_cache_init(struct file_cache *c, int rootfd, unsigned max,
		    size_t data_max);
/* Close every entry (those still referenced included: call it when no
 * response runs any more). */
void file_cache_destroy(struct file_cache *c);

/* What file_cache_get() found. */
enum file_result {
	FILE_OK = 0,	  /* *out referenced: release it */
	FILE_IS_DIR,	  /* a directory: try its index */
	FILE_NOT_FOUND,	  /* 404 */
	FILE_FORBIDDEN,	  /* 403: outside the root, not regular, no access */
	FILE_TOO_LONG,	  /* 414 */
	FILE_UNAVAILABLE, /* 503: out of descriptors or memory */
};

/**
 * file_cache_get() - the regular file at @path (relative to the root, no
 * leading slash, "" for the root), from the cache or opened now.
 * @now_ns: the loop's clock, for revalidation.
 */
enum file_result file_cache_get(struct file_cache *c, const char *path,
				uint64_t now_ns, struct fentry **out);
void file_cache_release(struct file_cache *c, struct fentry *e);

/* One more reference to @e, which the caller holds one of already. */
static inline void file_cache_hold(struct fentry *e)
{
	e->refs++;
}

#endif /* HTTPD_FILES_H */
