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
 * fails that send (EFAULT) instead of raising SIGBUS.  A spliced file
 * truncated in place can instead send zeros in the promised length: the
 * pipe holds page-cache pages, which the truncation zeroes (docs/httpd.md,
 * "A file truncated while it is being sent").
 *
 * No file-system call runs on a loop thread while serving: a miss (openat2
 * with O_PATH, statx, the open for reading, the small file's read) is a
 * chain of io_uring operations where the ring has the opcodes, and one
 * job on the pool's file lane where it does not (the epoll backend, Linux
 * before 5.6); directory listings always take the file lane.  The request
 * waits (struct file_waiter) while the loop goes on with everyone else.
 * All requests for one path that miss together wait on one lookup.  What
 * a lookup found that is not a file (missing, a directory, forbidden) is
 * remembered for FILE_CACHE_NEG_NS, so a flood of 404s costs one lookup a
 * second, not one each.  Revalidation is one statx the same way: the
 * entry is served while it runs (for at most that one round trip after
 * FILE_CACHE_VALID_NS), and dropped if the file changed.
 *
 * A lookup that blocks (a hung NFS server) holds no loop: its waiters time
 * out (the caller's timer), everything cached goes on being served, and
 * at most FILE_LOOKUPS_MAX lookups are in flight per cache.  The threads
 * such lookups hold are the file lane's (4) or io_uring's own (the
 * kernel's limit for work that may block: 4 per CPU for each
 * submitting thread, 8 on a 2-CPU machine).
 *
 * Thread: a cache belongs to one loop thread; files_root_open() any.
 */
#ifndef HTTPD_FILES_H
#define HTTPD_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <proa/base.h>

#define FILE_CACHE_DATA_MAX ((uint64_t)64 * 1024)
#define FILE_CACHE_VALID_NS 1000000000ull
/* How long a "not found", "directory" or "forbidden" is remembered. */
#define FILE_CACHE_NEG_NS 1000000000ull
/* Lookups (opens and revalidations) in flight per cache: beyond, 503. */
#define FILE_LOOKUPS_MAX 1024
/* Entries a directory listing shows at most (the page says how many it
 * leaves out). */
#define FILE_LIST_MAX 10000
/* The most bytes a listing's page takes (entries beyond are counted as
 * not listed), and the most all pages of one cache hold at once, those
 * being made included: beyond, a listing is 503.  So a client that asks
 * for listings and never reads them holds at most this much per loop. */
#define FILE_LIST_PAGE_MAX ((size_t)1 << 20)
#define FILE_LIST_BUDGET ((size_t)16 << 20)
/* Longest path a lookup takes (the HTTP layer's limit is lower). */
#define FILE_PATH_MAX 4352
/* Files above FILE_CACHE_DATA_MAX and up to this are mapped, so that a
 * response is sent from the page cache with one copy (the socket's) and
 * no read; bigger ones are read a piece at a time. */
#define FILE_CACHE_MAP_MAX ((uint64_t)1 << 30)

struct file_cache;
struct file_lookup;
struct proa_loop;

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
	/* A negative entry (fd -1): what the lookup found instead of a
	 * file (FILE_NOT_FOUND, FILE_IS_DIR, FILE_FORBIDDEN, FILE_TOO_LONG). */
	int neg;
	bool revalidating; /* a statx is on the file lane */
	bool listing;	   /* a directory listing's page, in no table */
};

struct file_cache {
	int rootfd;
	struct fentry **table;
	unsigned nbuckets;
	unsigned count, max;
	size_t data_bytes, data_max;
	size_t list_bytes; /* listing pages alive or being made */
	bool map_files;	   /* map bigger files (see above); set after init */
	struct fentry lru; /* sentinel */
	struct proa_loop *loop;	      /* whose pool looks files up */
	struct file_lookup **pending; /* opens in flight, by path */
	unsigned npending_buckets;
	unsigned nlookups; /* opens and revalidations in flight */
	/* opens and revalidations as chains of ring ops, not pool jobs */
	bool chains;
	bool closing;		  /* file_cache_close_soon() ran */
	struct proa_link lookups; /* every lookup in flight */
	/* Called when the last lookup in flight ends (a shutdown waits for
	 * that: the loop cannot close with pool jobs out). */
	void (*idle)(void *arg);
	void *idle_arg;
	uint64_t hits, misses, revalidated, negative_hits, joined;
};

/* Open @dir as a served root.  0 or -errno (and @why in words). */
int files_root_open(const char *dir, int *rootfd);

/* 0 or -ENOMEM.  @max entries, @data_max bytes of small files' content;
 * lookups go to @loop's default pool.  Thread: any, before the loop runs. */
int file_cache_init(struct file_cache *c, struct proa_loop *loop, int rootfd,
		    unsigned max, size_t data_max);
/* Close every entry (those still referenced included: call it when no
 * response runs any more and no lookup is in flight). */
void file_cache_destroy(struct file_cache *c);

/* What file_cache_lookup() found. */
enum file_result {
	FILE_OK = 0,	  /* *out referenced: release it */
	FILE_IS_DIR,	  /* a directory: try its index */
	FILE_NOT_FOUND,	  /* 404 */
	FILE_FORBIDDEN,	  /* 403: outside the root, not regular, no access */
	FILE_TOO_LONG,	  /* 414 */
	FILE_UNAVAILABLE, /* 503: out of descriptors, memory or lookups */
	FILE_PENDING,	  /* looked up on the pool: the waiter is called */
};

struct file_waiter;
/* The lookup a waiter waited for ended with @r (and, for FILE_OK, @e with
 * a reference that is the callee's); @path is the path asked for (valid
 * during the call). */
typedef void (*file_waiter_fn)(struct file_waiter *w, const char *path,
			       enum file_result r, struct fentry *e);

/* A request waiting for a lookup: embedded in the caller's object. */
struct file_waiter {
	struct proa_link link; /* on the lookup's list while waiting */
	struct file_lookup *l; /* NULL when not waiting */
	file_waiter_fn done;
};

/**
 * file_cache_lookup() - the regular file at @path (relative to the root,
 * no leading slash, "" for the root), from the cache, or FILE_PENDING:
 * then it is being looked up on the pool's file lane and @w->done runs
 * (on the loop thread, later, never from within this call) with the
 * result, unless file_waiter_cancel(@w) ran first.
 * @now_ns: the loop's clock, for revalidation and negative entries.
 * Thread: the cache's loop.
 */
enum file_result file_cache_lookup(struct file_cache *c, const char *path,
				   uint64_t now_ns, struct fentry **out,
				   struct file_waiter *w);
/**
 * file_cache_list() - an HTML listing of the directory @path (as
 * file_cache_lookup() takes it), made on the file lane: FILE_PENDING, and
 * @w->done is called with the page as an entry (FILE_OK; its data is the
 * page, it has no descriptor, it is in no table) or with why not; its
 * @path argument is @path and a '/'.  Never cached: made for each request
 * (those in flight together share one).
 * Thread: the cache's loop.
 */
enum file_result file_cache_list(struct file_cache *c, const char *path,
				 struct file_waiter *w);
/* Stop waiting (the connection went away or timed out); the lookup goes
 * on and its result is cached.  Harmless when @w is not waiting. */
void file_waiter_cancel(struct file_waiter *w);

/*
 * The cache's loop is shutting down: lookups nobody waits for (a
 * revalidation, an open whose requests are gone) are cancelled now, and
 * each other one when its last waiter is cancelled, so that a lookup stuck
 * on a hung file system does not keep the loop from closing.  Only
 * lookups made of io_uring operations can be; a file-lane job runs until
 * the file system answers.  Loop thread.
 */
void file_cache_close_soon(struct file_cache *c);

/* Test hook: with PROA_HTTPD_FAULT_STALL_FIFO=1 in the environment, a
 * lookup that finds a FIFO opens it for reading and blocks until a writer
 * comes (and then answers 403 as usual), and so does a listing of a
 * directory that holds one (then leaves it out as usual), so that a test
 * can stall the file lane on purpose. */
void files_fault_from_env(void);

void file_cache_release(struct file_cache *c, struct fentry *e);

/* One more reference to @e, which the caller holds one of already. */
static inline void file_cache_hold(struct fentry *e)
{
	e->refs++;
}

#endif /* HTTPD_FILES_H */
