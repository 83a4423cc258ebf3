/* SPDX-License-Identifier: MIT */
/*
 * net/net_int.h - private to net/: the per-loop state every socket of a
 * loop shares, the transport record, and the functions net/'s files share.
 *
 * Threads: all of it belongs to the loop thread.
 */
#ifndef PROA_NET_INT_H
#define PROA_NET_INT_H

#include <sys/socket.h>
#include <sys/uio.h>

#include "proa/dns.h"
#include "proa/net.h"
#include "proactor/proactor_int.h"

/*
 * A piece of a transport's write buffer: bytes copied into @data, or a
 * receive buffer of the loop's ring lent to the write (@bid >= 0: the
 * bytes stay where the kernel put them and the buffer goes back to the
 * ring once sent), or the caller's memory (PROA__CHUNK_EXTERNAL), or a
 * range of a file (PROA__CHUNK_FILE: @fd from @foff, @head and @tail
 * count bytes of it; spliced, never read into memory).
 */
struct proa__chunk {
	struct proa__chunk *next;
	unsigned char *base; /* @data, or the ring buffer */
	uint32_t cap;
	uint32_t head; /* first byte not yet sent */
	uint32_t tail; /* first free byte */
	int32_t bid;   /* ring buffer id, -1, or PROA__CHUNK_EXTERNAL */
	/* zero-copy sends whose notification is owed, that sent from this
	 * chunk: a put waits for the last one (proa__chunk_unpin()) */
	uint16_t zc_pins;
	bool zc_dropped; /* put while pinned */
	/* PROA__CHUNK_EXTERNAL: the caller's memory (write_ref), handed
	 * back with release(release_arg) once sent or dropped */
	void (*release)(void *arg);
	void *release_arg;
	int fd;	       /* PROA__CHUNK_FILE */
	uint64_t foff; /* PROA__CHUNK_FILE: the file offset of byte 0 */
	/* descriptors to pass (SCM_RIGHTS) with byte 0, or NULL: closed
	 * with the chunk unless a sendmsg took them first */
	struct proa__fdmsg *fds;
	unsigned char data[];
};

/*
 * Descriptors to send with SCM_RIGHTS (proa_transport_write_fds()): dups
 * the transport owns, laid out as the control message itself.
 */
struct proa__fdmsg {
	unsigned n;
	size_t len;	      /* CMSG_SPACE of the descriptors */
	struct cmsghdr ctl[]; /* one SCM_RIGHTS message */
};

/* Close the descriptors of @m and free it (NULL: nothing). */
void proa__fdmsg_free(struct proa__fdmsg *m);

#define PROA__CHUNK_EXTERNAL (-2)
#define PROA__CHUNK_FILE (-3)
#define PROA__CHUNK_SIZE (16384u - sizeof(struct proa__chunk))
/* Chunks a loop keeps for reuse (16 MiB at most, and only as many as its
 * busiest moment had in use).  A chunk freed past the cache goes back to
 * malloc, which trims the heap and faults the pages in again next time
 * (about 9 us a page fault on a PVM guest).  With 256, proa on the epoll
 * backend echoing 256 x 64 KiB, whose echoes are copied (the ring is
 * under half free when they are shown), ran at 13.4k msgs/s and 75 us of
 * CPU a message; with 1024, 31.8k and 31.5 us.  io_uring: no change. */
#define PROA__CHUNK_CACHE 1024
#define PROA__SEND_IOV 64 /* chunks gathered into one sendmsg */

/*
 * A pipe that file chunks are spliced through (file -> pipe -> socket).
 * A transport holds one only while it is sending a file, so a loop needs
 * as many as it has files in flight, not one per connection.
 */
struct proa__pipe {
	struct proa__pipe *next;
	int rd, wr;
	uint32_t cap; /* bytes the pipe holds (F_GETPIPE_SZ) */
};

#define PROA__PIPE_SIZE (1024u * 1024) /* asked for; see netloop.c */
#define PROA__PIPE_CACHE 16	       /* idle pipes a loop keeps */

/*
 * Per loop: the provided-buffer ring every socket receives into, the
 * transports that found it empty (-ENOBUFS) and wait for buffers to come
 * back, transports with writes to hand to the kernel at the end of the
 * iteration, and a cache of write chunks.
 */
struct proa__netloop {
	struct proa__loop_hook hook;
	struct proa_loop *loop;
	struct proa_buf_ring *br; /* NULL: single-shot recv, own buffers */
	/* The big class: fewer, larger buffers for connections that stream
	 * (proa__netloop_big()); NULL until one does, or if it cannot be. */
	struct proa_buf_ring *big;
	bool big_failed; /* no big class on this loop */
	/* Holders of each buffer of @br and @big: the receive showing it,
	 * and each write it is lent to; back to the kernel at zero. */
	uint32_t *refs;
	uint32_t *big_refs;
	bool multishot; /* multishot recv on br */
	bool started;	/* a socket exists: sizes are fixed */
	/* tests: go on with zero-copy where the kernel copies (loopback,
	 * where every test runs), as it would where a device does not */
	bool zc_keep_copied;
	unsigned nbufs;
	size_t bufsize;
	unsigned big_nbufs; /* 0: computed from @nbufs when first needed */
	size_t big_bufsize;
	struct proa_link starved; /* transports waiting for buffers */
	struct proa_link dirty;	  /* transports with writes to submit */
	struct proa_link sealing; /* TLS transports with gathered plaintext */
	/* Set by the socket kind (sock.c), which fills the two lists: re-arm
	 * the receives of @starved while buffers last, and submit the writes
	 * of @dirty.  The hook runs them without knowing what a socket is. */
	void (*feed)(struct proa__netloop *nl);
	void (*flush)(struct proa__netloop *nl);
	/* Set by the TLS kind (tls.c): encrypt what the transports of
	 * @sealing gathered this iteration, before @flush sends it. */
	void (*seal)(struct proa__netloop *nl);
	struct proa_link all; /* every live transport */
	struct proa__chunk *free_chunks;
	unsigned nfree;
	struct proa__chunk *free_refs; /* headers of lent ring buffers */
	unsigned nfree_refs;
	struct proa__pipe *free_pipes;
	unsigned nfree_pipes;
	uint64_t enobufs;  /* receives the empty ring ended (tests read it) */
	uint64_t lent;	   /* ring buffers sent from without a copy */
	uint64_t promoted; /* connections moved to the big class (tests) */
	uint64_t demoted;  /* and moved back */
	size_t rx_max;	   /* the largest receive (tests) */
	/* proa_net_set_send_zc(): writes of this many bytes or more go by
	 * zero-copy sends; 0 never */
	size_t zc_min;
	uint64_t zc_sends;  /* zero-copy sends made (tests) */
	uint64_t zc_notifs; /* and notified */
	uint64_t zc_copied; /* of which the kernel copied after all */
	/* the ring buffer a data_received is being shown, which a write of
	 * its bytes - to this connection or another (a proxy) - may borrow
	 * instead of copying */
	const unsigned char *cur;
	size_t cur_len;
	int32_t cur_bid; /* -1: none; PROA__BID_BIG set: a buffer of @big */
};

/* In a buffer id that net/ keeps (cur_bid, a lent chunk's bid): the
 * buffer is one of the big class's.  Ring ids are below 32768. */
#define PROA__BID_BIG (1 << 20)

/* The big class's ring of @nl, made on first use; NULL if the loop has
 * none (no buffer ring, buffers already this big, or it could not be
 * registered: then connections stay on the shared ring). */
struct proa_buf_ring *proa__netloop_big(struct proa__netloop *nl);
/* Take a hold on ring buffer @bid (PROA__BID_BIG set: of the big class);
 * drop it, the last one giving the buffer back to the kernel. */
void proa__netloop_buf_hold(struct proa__netloop *nl, int32_t bid);
void proa__netloop_buf_put(struct proa__netloop *nl, int32_t bid);

/* The netloop of @loop, made on first use (sizes fixed from then on). */
struct proa__netloop *proa__netloop_get(struct proa_loop *loop);
/* The netloop of @loop if it has one yet, else NULL; made by nothing.
 * The loop keeps it as a hook (proa__loop_hook_find()). */
struct proa__netloop *proa__netloop_peek(struct proa_loop *loop);

struct proa__chunk *proa__chunk_get(struct proa__netloop *nl);
/* A chunk that lends ring buffer @bid (@len bytes at @p) to a write;
 * @bid as nl->cur_bid. */
struct proa__chunk *proa__chunk_lend(struct proa__netloop *nl, int32_t bid,
				     const void *p, size_t len);
/* A chunk that sends the caller's @len bytes at @p (write_ref). */
struct proa__chunk *proa__chunk_external(struct proa__netloop *nl,
					 const void *p, size_t len,
					 void (*release)(void *arg), void *arg);
/* A chunk that splices @len bytes of file @fd from @off (sendfile). */
struct proa__chunk *proa__chunk_file(struct proa__netloop *nl, int fd,
				     uint64_t off, size_t len,
				     void (*release)(void *arg), void *arg);
void proa__chunk_put(struct proa__netloop *nl, struct proa__chunk *c);
/* A zero-copy send that sent from @c was notified: the put it waited for,
 * if there was one, happens now. */
void proa__chunk_unpin(struct proa__netloop *nl, struct proa__chunk *c);

/* A pipe to splice through: a cached one or a new one; NULL with errno
 * set.  Put back with @clean false if bytes may be left in it (then it is
 * closed, never reused). */
struct proa__pipe *proa__pipe_get(struct proa__netloop *nl);
void proa__pipe_put(struct proa__netloop *nl, struct proa__pipe *p, bool clean);

/*
 * A transport is a base (this) and a kind: the socket kind (struct
 * proa__sock, sock.c; pipes and ttys are its records with is_pipe set)
 * and the TLS kind (tls.c, over a socket transport).
 * The public proa_transport_* calls check their arguments and the thread
 * in transport.c and go to the kind through its vtable, so transport.c
 * knows no kind and the kinds call down into it, never the other way.
 *
 * Every entry is called with a non-NULL @t on the loop thread, the public
 * call's checks done (proa/net.h says what each returns).
 */
struct proa__transport_vt {
	const char *name; /* for traces: "socket", "tls" */
	int (*write)(struct proa_transport *t, const void *data, size_t len);
	int (*writev)(struct proa_transport *t, const struct iovec *iov,
		      int iovcnt);
	int (*write_ref)(struct proa_transport *t, const void *data, size_t len,
			 void (*release)(void *arg), void *arg);
	/* @fd a regular file, the range within it (checked) */
	int (*sendfile)(struct proa_transport *t, int fd, uint64_t off,
			size_t len, void (*release)(void *arg), void *arg);
	int (*write_eof)(struct proa_transport *t);
	bool (*can_write_eof)(const struct proa_transport *t);
	int (*close)(struct proa_transport *t);
	int (*abort)(struct proa_transport *t);
	int (*pause_reading)(struct proa_transport *t);
	int (*resume_reading)(struct proa_transport *t);
	bool (*is_reading)(const struct proa_transport *t);
	/* the write buffer: the socket's, also under TLS */
	size_t (*write_buffer_size)(const struct proa_transport *t);
	int (*set_limits)(struct proa_transport *t, size_t high, size_t low);
	void (*limits)(const struct proa_transport *t, size_t *high,
		       size_t *low);
	int (*set_timeouts)(struct proa_transport *t, uint64_t idle_ns,
			    uint64_t write_ns);
	/* the socket's descriptor, or -EINVAL once it is gone */
	int (*fd)(const struct proa_transport *t);
};

/* What the user holds as a struct proa_transport *: the start of each
 * kind's record.  @state is the public state (enum proa_transport_state),
 * which each kind keeps up to date through proa__transport_set_state(). */
struct proa_transport {
	const struct proa__transport_vt *vt;
	struct proa_loop *loop;
	struct proa_protocol *proto;
	uint8_t state; /* enum proa_transport_state */
	bool made;     /* connection_made() called */
};

/* Move @t to @s, traced in debug mode (a connection's life should be
 * readable from the log). */
void proa__transport_set_state(struct proa_transport *t,
			       enum proa_transport_state s);

/* The water marks of @t's write buffer (the socket's, also under TLS);
 * 0, 0 once it has none. */
void proa__transport_limits(const struct proa_transport *t, size_t *high,
			    size_t *low);

/* write_ref for a kind that copies what it is given (TLS, or 0 bytes):
 * the bytes go through vt->write in the call, and @release(@arg) runs from
 * the ready queue after it - never inside the call, and only if the write
 * was taken. */
int proa__transport_write_ref_copy(struct proa_transport *t, const void *data,
				   size_t len, void (*release)(void *arg),
				   void *arg);

/* sendfile for a kind that cannot splice: the range is mapped and written
 * with vt->write_ref, unmapped when that releases it. */
int proa__transport_sendfile_mapped(struct proa_transport *t, int fd,
				    uint64_t off, size_t len,
				    void (*release)(void *arg), void *arg);

/* A file range mapped for sending (mmap, MAP_SHARED, read only): @data is
 * its first byte.  proa__fmap_release(@arg = m) unmaps it, then calls
 * @release(@arg): it has the shape of a write_ref release. */
struct proa__fmap {
	void *base;
	size_t maplen;
	unsigned char *data;
	void (*release)(void *arg);
	void *arg;
};
/* NULL with errno set (as proa__pipe_get). */
struct proa__fmap *proa__fmap_new(int fd, uint64_t off, size_t len,
				  void (*release)(void *arg), void *arg);
void proa__fmap_release(void *arg);

/* Told when a connection it opened is gone (a server counts them); the
 * socket kind calls @gone once, after connection_lost. */
struct proa__conn_owner {
	void (*gone)(struct proa__conn_owner *o);
};

struct proa__fdrx;

/* The socket kind: a TCP or UNIX stream socket on the ring (sock.c). */
struct proa__sock {
	struct proa_transport base; /* first: what the user holds */
	struct proa__netloop *nl;
	struct proa__conn_owner *owner; /* told when it is gone, or NULL */
	int fd;		     /* read from; the socket, or a pipe's read end */
	int wfd;	     /* written to: @fd, a pipe's write end, or -1 */
	bool is_pipe;	     /* the pipe kind: read/writev, not recv/sendmsg */
	bool rpoll;	     /* pipe: rop waits for input (fd was O_NONBLOCK) */
	bool watch_hup;	     /* write-only FIFO: rop polls for its reader */
	bool want_read;	     /* reading not paused by the protocol */
	bool proto_paused;   /* over the high mark, not yet back to the low */
	bool told_paused;    /* pause_writing() delivered, resume not yet */
	bool pause_owed;     /* crossed the high mark, pause_writing due */
	bool oneshot;	     /* single-shot receives (see pause_reading) */
	bool sock_nonempty;  /* the last receive left data in the socket */
	bool big;	     /* streams: receives from nl->big (sock.c) */
	bool armed_big;	     /* @rop selects from nl->big */
	uint8_t small_run;   /* big: receives in a row that a small buffer
			      * would have held */
	bool notify_queued;  /* @notify scheduled */
	bool eof_pending;    /* write_eof(): shut down once flushed */
	bool wr_shut;	     /* SHUT_WR done */
	bool on_starved;     /* on nl->starved */
	bool on_dirty;	     /* on nl->dirty */
	bool closing_by_eof; /* teardown after EOF: connection_lost(0) */
	int err;	     /* the first error: connection_lost's */

	struct proa_op rop; /* receive */
	struct proa_op wop; /* sendmsg, a splice, or a poll for room */
	struct proa_op xop; /* shutdown, then close */
	struct msghdr msg;  /* of the sendmsg in flight */
	struct iovec iov[PROA__SEND_IOV];

	struct proa__chunk *whead, *wtail;
	struct proa__fdmsg *fds_sent; /* on the sendmsg in flight */
	/* the zero-copy send in flight (wop idle meanwhile), until its
	 * first callback; the one whose notification decides whether this
	 * connection goes on with zero-copy (sock.c) */
	struct proa__zcsend *zc_send, *zc_trial;
	uint8_t zc;		 /* enum in sock.c */
	struct proa__fdrx *fdrx; /* receiving descriptors, or NULL */
	size_t wbytes;		 /* buffered, not yet sent */
	uint8_t wkind;		 /* what wop is doing: enum in sock.c */
	bool room;		 /* wop's poll for room saw it (sock.c) */
	/* the gather in flight took more than one piece; the last one
	 * faulted in the caller's memory, so the next stops before it */
	bool gathered, split_ref;
	uint32_t piped;		 /* bytes of the head file chunk in @pipe */
	struct proa__pipe *pipe; /* while a file chunk is being sent */
	size_t high, low;	 /* water marks */

	/* data that arrived after pause_reading(), before the cancel did */
	unsigned char *held;
	size_t held_len;
	unsigned char *rbuf; /* own read buffer (pipes, or no buffer ring) */
	size_t rlen;	     /* its size */

	uint64_t idle_ns, write_ns;
	uint64_t last_io;	/* loop time of the last receive or send */
	uint64_t last_progress; /* loop time the write buffer last moved */
	struct proa_timer idle_timer;
	struct proa_timer write_timer;
	struct proa_handle notify; /* pause/resume_writing, deferred */
	struct proa_handle resume; /* held data after resume_reading() */
	struct proa_handle lost;   /* connection_lost if close(2) was ours */
	bool eof_seen;		   /* EOF arrived (maybe held while paused) */

	struct proa_link link;	      /* on nl->all */
	struct proa_link starve_link; /* on nl->starved */
	struct proa_link dirty_link;  /* on nl->dirty */
};

/* @t as a socket transport, or NULL if it is another kind (TLS). */
struct proa__sock *proa__sock_of(const struct proa_transport *t);

/* Wrap the connected socket @fd (non-blocking, close-on-exec) in a
 * transport; the factory's protocol gets connection_made.  On failure @fd
 * is closed and a negative errno returned.  @out may be NULL. */
int proa__transport_open(struct proa_loop *loop, int fd,
			 const struct proa_transport_options *opt,
			 proa_protocol_factory factory, void *arg,
			 struct proa__conn_owner *owner,
			 struct proa_transport **out);

/*
 * A transport on descriptors made elsewhere, connected to @proto at once:
 * the connected stream socket @rfd == @wfd (non-blocking, close-on-exec),
 * or with @is_pipe the pipe kind (sock.c, a socket's record run with
 * read(2)/writev(2)): @rfd read from, @wfd written to, either -1, or both
 * the same descriptor (a tty).  On failure nothing is closed and -errno
 * returned.
 */
int proa__transport_adopt(struct proa_loop *loop, int rfd, int wfd,
			  bool is_pipe,
			  const struct proa_transport_options *opt,
			  struct proa_protocol *proto,
			  struct proa_transport **out);

/* Whether @fd is a stream socket that listens (1) or not (0); -ENOTSOCK,
 * -EINVAL for a socket of another type, other -errno (pipe.c). */
int proa__stream_socket_listens(int fd);
/* Set O_NONBLOCK and FD_CLOEXEC on an adopted socket; 0 or -errno. */
int proa__fd_adopt_flags(int fd);

/* TLS over the connected socket @fd (net/tls.c).  The factory's protocol
 * is made and connected once the handshake is done; a client's @fut then
 * resolves with the TLS transport (or the handshake's error).  On
 * failure to start, @fd is closed and -errno returned. */
struct proa__tls_args {
	struct proa_tls_context *ctx;
	bool server;
	const char *hostname; /* client: SNI and verification */
	uint64_t timeout_ns;
	char *errbuf;
	size_t errlen;
	struct proa_future *fut; /* client */
};
int proa__tls_open(struct proa_loop *loop, int fd,
		   const struct proa__tls_args *a,
		   const struct proa_transport_options *topt,
		   proa_protocol_factory factory, void *arg,
		   struct proa__conn_owner *owner);

/* Offer the session last kept for server @name, if any (tls_ctx.c). */
void proa__tls_context_resume(struct proa_tls_context *ctx, void *ssl,
			      const char *name);

/* Whether a client context checks the peer's certificate. */
bool proa__tls_verifies(struct proa_tls_context *ctx);

/* Loop groups: hand each accepted socket to @fn instead of opening a
 * transport here; @fn owns @fd from then on (closes it on failure). */
typedef int (*proa__handoff_fn)(void *arg, int fd);
/* Open the accepted socket @fd as a server with options @o does: TLS when
 * @o has a context, else a socket transport; @owner told when it is gone.
 * On failure @fd is closed and -errno returned.  Thread: @loop's. */
int proa__serve_accepted(struct proa_loop *loop, int fd,
			 const struct proa_server_options *o,
			 proa_protocol_factory factory, void *arg,
			 struct proa__conn_owner *owner);
void proa__server_set_handoff(struct proa_server *s, proa__handoff_fn fn,
			      void *arg);

/* Socket options of struct proa_transport_options on @fd. */
void proa__sock_tune(int fd, int family,
		     const struct proa_transport_options *opt);

/* Parse "1.2.3.4", "::1", "[::1]" with @port into @ss; -EINVAL if not
 * numeric. */
int proa__parse_numeric(const char *host, uint16_t port,
			struct sockaddr_storage *ss, socklen_t *len);
/* A UNIX address for @path ('@' first: abstract); -ENAMETOOLONG. */
int proa__unix_addr(const char *path, struct sockaddr_storage *ss,
		    socklen_t *len);

#endif /* PROA_NET_INT_H */
