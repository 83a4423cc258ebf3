/* SPDX-License-Identifier: MIT */
/*
 * net/transport.c - the transport base (net_int.h): the public
 * proa_transport_* calls, which check their arguments and the calling
 * thread and go to the transport's kind through its vtable; the state
 * every kind keeps; and what more than one kind shares (write_ref by
 * copy, sendfile from a mapping).  It knows no kind: sock.c (TCP and
 * UNIX sockets) and tls.c (TLS over a socket transport) call down into
 * it, never the other way.
 *
 * Thread: loop, everything.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net_int.h"

_Static_assert(sizeof(struct proa_transport) <= 32,
	       "the transport base stays small: a kind adds its own state");

const char *proa_transport_state_name(enum proa_transport_state s)
{
	static const char *const names[] = {
	    [PROA_TS_OPEN] = "OPEN",
	    [PROA_TS_HALF_LOCAL] = "HALF_LOCAL",
	    [PROA_TS_HALF_PEER] = "HALF_PEER",
	    [PROA_TS_CLOSING] = "CLOSING",
	    [PROA_TS_TEARDOWN] = "TEARDOWN",
	    [PROA_TS_CLOSED] = "CLOSED",
	};

	if ((unsigned)s < sizeof(names) / sizeof(names[0]))
		return names[s];
	return "?";
}

void proa__transport_set_state(struct proa_transport *t,
			       enum proa_transport_state s)
{
	if (proa__unlikely(t->loop->sched.debug))
		proa__log(PROA_LOG_DEBUG, "transport %p (%s, fd %d): %s -> %s",
			  (void *)t, t->vt->name, t->vt->fd(t),
			  proa_transport_state_name(
			      (enum proa_transport_state)t->state),
			  proa_transport_state_name(s));
	t->state = (uint8_t)s;
}

/* ---- writing ------------------------------------------------------------ */

int proa_transport_write(struct proa_transport *t, const void *data, size_t len)
{
	if (!t)
		return -EINVAL;
	/* Here, before the kind's function, so that a wrong thread is named
	 * as this call. */
	PROA__LOOP_CHECK(t->loop);
	return t->vt->write(t, data, len);
}

int proa_transport_writev(struct proa_transport *t, const struct iovec *iov,
			  int iovcnt)
{
	if (!t || iovcnt < 0 || (!iov && iovcnt > 0))
		return -EINVAL;
	PROA__LOOP_CHECK(t->loop);
	return t->vt->writev(t, iov, iovcnt);
}

int proa_transport_write_ref(struct proa_transport *t, const void *data,
			     size_t len, void (*release)(void *arg), void *arg)
{
	if (!t || !release || (!data && len > 0) || len > UINT32_MAX)
		return -EINVAL;
	PROA__LOOP_CHECK(t->loop);
	return t->vt->write_ref(t, data, len, release, arg);
}

/* The checks both sendfile calls share; @size is the file's size. */
static int sendfile_checked(struct proa_transport *t, int fd, uint64_t off,
			    size_t len, uint64_t size,
			    void (*release)(void *arg), void *arg)
{
	/* Only bytes the file has: a range past its end would hang the
	 * splice loop or fault the mapping. */
	if (off > size || len > size - off)
		return -EINVAL;
	return t->vt->sendfile(t, fd, off, len, release, arg);
}

int proa_transport_sendfile(struct proa_transport *t, int fd, uint64_t off,
			    size_t len, void (*release)(void *arg), void *arg)
{
	struct stat st;

	if (!t || !release || len > UINT32_MAX)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	PROA__LOOP_CHECK(t->loop);
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	return sendfile_checked(t, fd, off, len, (uint64_t)st.st_size, release,
				arg);
}

int proa_transport_sendfile_sized(struct proa_transport *t, int fd,
				  uint64_t off, size_t len, uint64_t size,
				  void (*release)(void *arg), void *arg)
{
	if (!t || !release || len > UINT32_MAX)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	PROA__LOOP_CHECK(t->loop);
	return sendfile_checked(t, fd, off, len, size, release, arg);
}

/* write_ref on a kind that copies: the bytes are taken in the call, and
 * the memory handed back from the ready queue, so that release never runs
 * inside write_ref. */
struct ref_release {
	struct proa_handle h;
	void (*release)(void *arg);
	void *arg;
};

static void ref_release_run(void *arg)
{
	struct ref_release *r = arg;

	r->release(r->arg);
	free(r);
}

int proa__transport_write_ref_copy(struct proa_transport *t, const void *data,
				   size_t len, void (*release)(void *arg),
				   void *arg)
{
	struct ref_release *r = malloc(sizeof(*r));
	int ret;

	if (!r)
		return -ENOMEM;
	*r = (struct ref_release){.release = release, .arg = arg};
	/* The release is scheduled before the bytes are taken, so that a
	 * failure leaves nothing half done: either both happen or
	 * neither. */
	ret = proa_loop_call_soon(t->loop, &r->h, ref_release_run, r);
	if (ret == 0) {
		ret = t->vt->write(t, data, len);
		if (ret < 0)
			proa_handle_cancel(&r->h);
	}
	if (ret < 0)
		free(r);
	return ret;
}

struct proa__fmap *proa__fmap_new(int fd, uint64_t off, size_t len,
				  void (*release)(void *arg), void *arg)
{
	uint64_t skew = off % (uint64_t)sysconf(_SC_PAGESIZE);
	struct proa__fmap *m;
	struct stat st;
	int err;

	/* Whoever reads a mapping past the end of its file takes SIGBUS
	 * (TLS encrypts from it on this thread): the range is checked
	 * against the file as it is now, whatever the caller was told. */
	if (fstat(fd, &st) < 0)
		return NULL;
	if (!S_ISREG(st.st_mode) || off > (uint64_t)st.st_size ||
	    len > (uint64_t)st.st_size - off) {
		errno = EINVAL;
		return NULL;
	}
	m = malloc(sizeof(*m));
	if (!m)
		return NULL;
	m->maplen = (size_t)skew + len;
	m->base = mmap(NULL, m->maplen, PROT_READ, MAP_SHARED, fd,
		       (off_t)(off - skew));
	if (m->base == MAP_FAILED) {
		err = errno;
		free(m);
		errno = err;
		return NULL;
	}
	m->data = (unsigned char *)m->base + skew;
	m->release = release;
	m->arg = arg;
	return m;
}

void proa__fmap_release(void *arg)
{
	struct proa__fmap *m = arg;

	munmap(m->base, m->maplen);
	m->release(m->arg);
	free(m);
}

int proa__transport_sendfile_mapped(struct proa_transport *t, int fd,
				    uint64_t off, size_t len,
				    void (*release)(void *arg), void *arg)
{
	struct proa__fmap *m;
	int ret;

	m = proa__fmap_new(fd, off, len, release, arg);
	if (!m)
		return -errno;
	ret = t->vt->write_ref(t, m->data, len, proa__fmap_release, m);
	if (ret < 0) {
		munmap(m->base, m->maplen);
		free(m);
	}
	return ret;
}

/* ---- closing and reading control ---------------------------------------- */

int proa_transport_close(struct proa_transport *t)
{
	if (!t)
		return -EINVAL;
	PROA__LOOP_CHECK(t->loop);
	return t->vt->close(t);
}

int proa_transport_abort(struct proa_transport *t)
{
	if (!t)
		return -EINVAL;
	PROA__LOOP_CHECK(t->loop);
	return t->vt->abort(t);
}

int proa_transport_write_eof(struct proa_transport *t)
{
	if (!t)
		return -EINVAL;
	PROA__LOOP_CHECK(t->loop);
	return t->vt->write_eof(t);
}

bool proa_transport_can_write_eof(const struct proa_transport *t)
{
	return t && t->vt->can_write_eof(t);
}

int proa_transport_pause_reading(struct proa_transport *t)
{
	if (!t)
		return -EINVAL;
	PROA__LOOP_CHECK(t->loop);
	return t->vt->pause_reading(t);
}

int proa_transport_resume_reading(struct proa_transport *t)
{
	if (!t)
		return -EINVAL;
	PROA__LOOP_CHECK(t->loop);
	return t->vt->resume_reading(t);
}

bool proa_transport_is_reading(const struct proa_transport *t)
{
	return t && t->vt->is_reading(t);
}

bool proa_transport_is_closing(const struct proa_transport *t)
{
	return !t || t->state >= PROA_TS_CLOSING;
}

/* ---- buffers, timeouts, addresses --------------------------------------- */

int proa_transport_set_timeouts(struct proa_transport *t, uint64_t idle_ns,
				uint64_t write_ns)
{
	if (!t)
		return -EINVAL;
	PROA__LOOP_CHECK(t->loop);
	return t->vt->set_timeouts(t, idle_ns, write_ns);
}

int proa_transport_set_write_buffer_limits(struct proa_transport *t,
					   size_t high, size_t low)
{
	if (!t || (high && low > high))
		return -EINVAL;
	PROA__LOOP_CHECK(t->loop);
	return t->vt->set_limits(t, high, low);
}

void proa__transport_limits(const struct proa_transport *t, size_t *high,
			    size_t *low)
{
	*high = 0;
	*low = 0;
	if (t)
		t->vt->limits(t, high, low);
}

size_t proa_transport_write_buffer_size(const struct proa_transport *t)
{
	return t ? t->vt->write_buffer_size(t) : 0;
}

enum proa_transport_state proa_transport_state(const struct proa_transport *t)
{
	return t ? (enum proa_transport_state)t->state : PROA_TS_CLOSED;
}

int proa_transport_peername(const struct proa_transport *t,
			    struct sockaddr_storage *addr, socklen_t *len)
{
	int fd = t ? t->vt->fd(t) : -EINVAL;

	if (fd < 0 || !addr || !len)
		return -EINVAL;
	*len = sizeof(*addr);
	return getpeername(fd, (struct sockaddr *)addr, len) < 0 ? -errno : 0;
}

int proa_transport_sockname(const struct proa_transport *t,
			    struct sockaddr_storage *addr, socklen_t *len)
{
	int fd = t ? t->vt->fd(t) : -EINVAL;

	if (fd < 0 || !addr || !len)
		return -EINVAL;
	*len = sizeof(*addr);
	return getsockname(fd, (struct sockaddr *)addr, len) < 0 ? -errno : 0;
}

int proa_transport_fd(const struct proa_transport *t)
{
	return t ? t->vt->fd(t) : -EINVAL;
}

struct proa_loop *proa_transport_loop(const struct proa_transport *t)
{
	return t ? t->loop : NULL;
}

struct proa_protocol *proa_transport_protocol(const struct proa_transport *t)
{
	return t ? t->proto : NULL;
}

void proa_transport_set_protocol(struct proa_transport *t,
				 struct proa_protocol *p)
{
	if (t && p)
		t->proto = p;
}
