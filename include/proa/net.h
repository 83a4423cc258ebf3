/* SPDX-License-Identifier: MIT */
/*
 * proa/net.h - TCP and UNIX stream sockets as transports with protocols,
 * pipes and ttys as transports of the same shape, sockets made elsewhere
 * adopted, descriptors passed over UNIX sockets, UDP endpoints, a
 * buffered stream layer, and loop groups.
 *
 * The shape is asyncio's.  A *transport* owns a connected socket, its
 * write buffer and its state; a *protocol* is the user's set of callbacks.
 * Servers take a protocol factory, called once per accepted connection.
 * Every callback runs on the loop thread, never inside the call that
 * caused it (a write never calls pause_writing before it returns; a close
 * never calls connection_lost before it returns).
 *
 * Receiving uses a provided-buffer ring shared by every socket of the loop
 * where the kernel has it (multishot receive: an idle connection holds no
 * read buffer); data_received() borrows the bytes for the call only.
 * Writes are copied into the transport's buffer, gathered into sendmsg and
 * sent in the next loop iteration, together with every other socket's:
 * no system call per write.
 *
 * Transport lifetime: proa allocates it, hands it to the protocol in
 * connection_made(), and frees it when connection_lost() returns.  The
 * protocol must not use the transport after that.  Closing follows
 * docs/architecture.md rule 6: operations in flight are cancelled and their
 * completions awaited before the descriptor is closed.
 *
 * Thread: loop, for every function here, unless its comment says
 * otherwise (the loop group's).
 */
#ifndef PROA_NET_H
#define PROA_NET_H

#include <sys/socket.h>

#include "base.h"
#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

struct addrinfo;
struct iovec;
struct proa_loop;
struct proa_transport;
struct proa_server;
struct proa_udp;
struct proa_stream;
struct proa_loop_group;
struct proa_tls_context;

/* ---- protocols --------------------------------------------------------- */

struct proa_protocol;

/*
 * A protocol's callbacks; any may be NULL except data_received.
 *
 * connection_made: @t is ready; the protocol may write at once.
 * data_received:   @len > 0 bytes arrived; borrowed for this call only.
 * eof_received:    the peer shut its write side.  Return true to keep our
 *                  write side open (half-close: write, then close() or
 *                  write_eof()); false (or NULL) closes the transport.
 *                  Over TLS this is the peer's close_notify, and true
 *                  keeps writing only on TLS 1.3 (RFC 8446 6.1); TLS 1.2
 *                  closes at once whatever it returns (RFC 5246 7.2.1).
 * connection_lost: the last call: @err is 0 for a clean close (close()
 *                  after the buffer drained, or EOF), or a negative errno
 *                  (-ECONNRESET, -EPIPE, -ETIMEDOUT for idle and write
 *                  timeouts, -ECONNABORTED for abort()).  The transport is
 *                  freed when it returns.
 * pause_writing / resume_writing: the write buffer went above the high
 *                  water mark / came back to the low one.  They alternate,
 *                  pause first, and come from the ready queue, never from
 *                  inside the write that crossed the mark.  A protocol
 *                  that sees proa_transport_write_buffer_size() above the
 *                  high mark may stop producing and rely on a
 *                  resume_writing to come once the buffer is back at the
 *                  low mark: if it drained before the pause was delivered,
 *                  both arrive back to back.
 */
struct proa_protocol_ops {
	void (*connection_made)(struct proa_protocol *p,
				struct proa_transport *t);
	void (*data_received)(struct proa_protocol *p, const void *data,
			      size_t len);
	bool (*eof_received)(struct proa_protocol *p);
	void (*connection_lost)(struct proa_protocol *p, int err);
	void (*pause_writing)(struct proa_protocol *p);
	void (*resume_writing)(struct proa_protocol *p);
};

/* Embed this in your protocol object; recover it with proa_container_of. */
struct proa_protocol {
	const struct proa_protocol_ops *ops;
};

/*
 * Make the protocol for a new connection @t (not yet connected to it:
 * connection_made follows at once, in the same callback, and
 * connection_lost always ends it, so memory allocated here can be freed
 * there).  Return NULL to refuse the connection: it is closed and nothing
 * else is called.
 */
typedef struct proa_protocol *(*proa_protocol_factory)(
    void *arg, struct proa_transport *t);

/* ---- options ----------------------------------------------------------- */

/*
 * Per-connection settings; zero means the default.
 * write_high / write_low: water marks of the write buffer (64 KiB and
 *     16 KiB; low must not exceed high).
 * idle_timeout_ns: close with -ETIMEDOUT after this long with nothing
 *     received and nothing sent (0: never).
 * write_timeout_ns: close with -ETIMEDOUT when buffered data makes no
 *     progress for this long (0: never).  Its timer is not re-armed per
 *     write: it stays armed up to this long after the buffer empties, and
 *     a run to completion waits for it as for idle_timeout_ns's (a write-
 *     only pipe transport that is never closed holds the loop that long).
 * rcvbuf / sndbuf: SO_RCVBUF / SO_SNDBUF (0: the system's).
 * no_delay: TCP_NODELAY (default on: -1 turns it off).
 * recv_oneshot: one receive buffer at a time instead of a multishot
 *     receive.  A multishot receive may deliver a burst of buffers (up to
 *     32 x the loop's buffer size) after pause_reading(), all of which the
 *     transport holds until resume_reading(); one-shot receives bound that
 *     to one buffer, for one more submission per receive.  A transport
 *     whose protocol paused reading once switches to one-shot receives
 *     anyway; set this where every connection's memory must be bounded
 *     from the start (a server facing clients that pipeline and never
 *     read).
 */
struct proa_transport_options {
	size_t write_high;
	size_t write_low;
	uint64_t idle_timeout_ns;
	uint64_t write_timeout_ns;
	int rcvbuf;
	int sndbuf;
	int no_delay;
	bool recv_oneshot;
	/* Must be zero: room for fields a later 0.x adds without changing
	 * the size (README, "ABI"); nonzero is -EINVAL. */
	uint64_t reserved[4];
};

/*
 * Listening settings; zero means the default.
 * backlog: listen(2)'s (511).
 * reuse_port: SO_REUSEPORT, so several listeners (one per loop) share
 *     the address.  The kernel lets any socket of the same user with
 *     SO_REUSEPORT join, another process's too.
 * reuse_port_exclusive: with reuse_port, first make sure nothing listens
 *     on the address (a bind without SO_REUSEPORT must succeed; else
 *     -EADDRINUSE), so that only listeners made after this one share it
 *     - a process's own.  Loop groups set it on their first loop.
 * no_reuse_addr: do not set SO_REUSEADDR (set by default for TCP).
 * family: AF_UNSPEC (every address the host resolves to), AF_INET or
 *     AF_INET6.
 * v6only: IPV6_V6ONLY on IPv6 listeners (default on when a name gives
 *     both families, so that they do not collide).
 * max_connections: over it, new connections are accepted and closed at
 *     once, and counted (0: no cap).
 * accept_retry_ns: after EMFILE/ENFILE/ENOBUFS/ENOMEM on accept, the
 *     listener pauses this long and then accepts again (100 ms).
 * tls: a server TLS context (proa/tls.h): every connection is TLS; the
 *     factory is called, and connection_made, once the handshake is done
 *     (a failed or timed-out handshake is logged at debug level and the
 *     socket closed: nothing of the protocol's is called).
 * tls_handshake_timeout_ns: 0 means 60 s.
 */
struct proa_server_options {
	struct proa_tls_context *tls;
	uint64_t tls_handshake_timeout_ns;
	int backlog;
	bool reuse_port;
	bool no_reuse_addr;
	bool reuse_port_exclusive;
	int family;
	unsigned max_connections;
	uint64_t accept_retry_ns;
	struct proa_transport_options transport;
	/* Must be zero: room for fields a later 0.x adds without changing
	 * the size (README, "ABI"); nonzero is -EINVAL. */
	uint64_t reserved[4];
};

/**
 * proa_net_set_buffers() - size the receive buffers @loop's sockets share:
 * @nbufs (a power of two) buffers of @bufsize bytes, in a provided-buffer
 * ring where the kernel has one (default 512 x 16 KiB: 8 MiB per loop,
 * whatever the number of connections).  Where it has none, each
 * connection gets a read buffer of @bufsize.
 * Return: 0; -EINVAL; -EBUSY once a socket of @loop has been opened.
 */
PROA_API int proa_net_set_buffers(struct proa_loop *loop, unsigned nbufs,
				  size_t bufsize);

/**
 * proa_net_set_stream_buffers() - size the second, bigger class of
 * receive buffers, for connections that stream.  A connection whose
 * receive fills a whole buffer of the shared ring receives from this
 * class from then on (a 64 KiB message then arrives in one completion
 * instead of four), and goes back to the shared ring after 8 receives in
 * a row that a shared buffer would have held, or when this class runs
 * dry.  Either way data_received is shown at most the shared @bufsize of
 * proa_net_set_buffers() at a time.  The class's ring is made when a
 * connection first streams.  Default: 64 KiB buffers, one for every 2 of
 * the shared ring (256, 16 MiB of address space, touched as used), at
 * least 16.  @nbufs a power of two up to 32768, or 0 to turn the class
 * off; a @bufsize not above the shared one turns it off as well.  Where the
 * kernel has no buffer ring, nothing changes. Return: 0; -EINVAL; -EBUSY once a
 * socket of @loop has been opened.
 */
PROA_API int proa_net_set_stream_buffers(struct proa_loop *loop, unsigned nbufs,
					 size_t bufsize);

/**
 * proa_net_set_send_zc() - send writes of at least @min_bytes (gathered
 * per connection and iteration, as every send) from their own memory,
 * without the kernel's copy (zero-copy sendmsg), on @loop's stream
 * sockets; 0 (the default) never.  The memory a write used - a chunk of
 * the write buffer, a lent receive buffer, a proa_transport_write_ref()
 * buffer, whose release waits - is kept until the kernel's notification,
 * which for TCP comes when the peer acknowledged the bytes.  A connection
 * tries once: where the kernel reports that it copied after all
 * (loopback, a device that cannot gather: PROA_FEAT_SEND_ZC_REPORT), or
 * the socket cannot (UNIX), the connection sends plainly from then on.
 * Zero-copy only pays where a device sends from the pages; over loopback
 * it measured slower at every size (docs/benchmarks.md), hence off by
 * default.  A connection that ends in an error or a timeout is reset, so
 * that the kernel lets go of its pages at once; one closed gracefully
 * keeps its unacknowledged bytes, and their memory, until the peer
 * acknowledges them or the kernel gives up on the socket
 * (tcp_orphan_retries), and proa_loop_close() is -EBUSY until then.
 * Takes effect for the sends that follow.
 * Return: 0; -EINVAL for a NULL @loop; -EOPNOTSUPP where the ring has no
 * zero-copy send (PROA_FEAT_OP_SENDMSG_ZC; the epoll backend); -ENOMEM.
 * Thread: loop.
 */
PROA_API int proa_net_set_send_zc(struct proa_loop *loop, size_t min_bytes);

/* ---- servers ----------------------------------------------------------- */

/**
 * proa_tcp_listen() - listen on @host:@port and accept connections.
 * @host: a numeric address, a name (resolved on the pool's DNS lane), or
 *        NULL / "" for every interface (0.0.0.0 and [::]).
 * @port: 0 lets the kernel pick; proa_server_sockname() tells which.
 * @fut:  resolves with res 0 and value the struct proa_server *, or with
 *        -errno (-EADDRINUSE, -EACCES, PROA_ENONAME, ...).  Every address
 *        the name gives gets a listener; any failure fails the whole.
 *
 * Return: 0 if started (@fut will resolve), or -EINVAL / PROA_ECLOSED /
 *         -EBUSY (fut already in use) with @fut untouched.
 */
PROA_API int proa_tcp_listen(struct proa_loop *loop, const char *host,
			     uint16_t port,
			     const struct proa_server_options *opt,
			     proa_protocol_factory factory, void *arg,
			     struct proa_future *fut);

/**
 * proa_tcp_listen_addr() - the same on one numeric address, at once.
 * Return: 0 and *@out, or -errno.
 */
PROA_API int proa_tcp_listen_addr(struct proa_server **out,
				  struct proa_loop *loop,
				  const struct sockaddr *addr,
				  socklen_t addrlen,
				  const struct proa_server_options *opt,
				  proa_protocol_factory factory, void *arg);

/**
 * proa_unix_listen() - listen on the UNIX socket @path; a path starting
 * with '@' is in the abstract namespace (no file).  A file that is already
 * there is -EADDRINUSE: it is never unlinked behind the caller's back.
 * The file is removed when the server closes.
 * Return: 0 and *@out; -ENAMETOOLONG; -EADDRINUSE; other -errno.
 */
PROA_API int proa_unix_listen(struct proa_server **out, struct proa_loop *loop,
			      const char *path,
			      const struct proa_server_options *opt,
			      proa_protocol_factory factory, void *arg);

/* The first descriptor a service manager passes (sd_listen_fds(3)). */
#define PROA_LISTEN_FDS_START 3

/**
 * proa_listen_fds() - the listening sockets systemd (or any service
 * manager speaking its protocol) passed to this process: descriptors
 * PROA_LISTEN_FDS_START .. PROA_LISTEN_FDS_START + n - 1, as
 * sd_listen_fds(3) counts them.  Only when LISTEN_PID is this process's
 * pid: a variable a child inherited names its parent and is not its.
 * The descriptors are made close-on-exec.  LISTEN_FDNAMES is not read.
 * @unset_environment: non-zero to remove LISTEN_PID, LISTEN_FDS and
 *                     LISTEN_FDNAMES from the environment (whatever the
 *                     result), so that children do not see them.
 * Return: n (0: nothing was passed, or not to this process); -EINVAL
 *         (LISTEN_PID or LISTEN_FDS is not a number), -EBADF (a counted
 *         descriptor is not open).  Serve each with proa_server_from_fd()
 *         or proa_loop_group_listen_fd().
 * Thread: the program's main thread before it starts any other (it reads
 * and changes the environment, which is not thread-safe).
 */
PROA_API int proa_listen_fds(int unset_environment);

/**
 * proa_server_from_fd() - serve on the listening stream socket @fd that
 * someone else made, bound and listened on: a socket handed over by
 * systemd (LISTEN_FDS: descriptors 3 and up; sd_listen_fds(3)) or by a
 * parent process.  TCP or UNIX; @opt's listening settings (backlog,
 * reuse_port, family) are the maker's business and are not applied, the
 * rest (tls, max_connections, transport) are.  @fd is made non-blocking
 * and close-on-exec, and closed with the server; a UNIX socket's file is
 * not removed (proa did not make it).
 * Return: 0 and *@out, the server owning @fd; -EBADF, -ENOTSOCK, -EINVAL
 *         (not a listening stream socket), -ENOMEM: then @fd is left open
 *         and still the caller's.
 * Thread: loop.
 */
PROA_API int proa_server_from_fd(struct proa_server **out,
				 struct proa_loop *loop, int fd,
				 const struct proa_server_options *opt,
				 proa_protocol_factory factory, void *arg);

/** proa_server_nsockets() - how many listening sockets @s has. */
PROA_API unsigned proa_server_nsockets(const struct proa_server *s);

/**
 * proa_server_sockname() - the bound address of listener @i.
 * Return: 0, or -EINVAL / -ENOENT for a bad @i.
 */
PROA_API int proa_server_sockname(const struct proa_server *s, unsigned i,
				  struct sockaddr_storage *addr,
				  socklen_t *len);

/** proa_server_port() - the port of the first listener (0 for UNIX). */
PROA_API uint16_t proa_server_port(const struct proa_server *s);

struct proa_server_stats {
	uint64_t accepted;     /* connections taken, not refused: TLS ones
				* count before their handshake, so also
				* those that then fail it */
	uint64_t refused;      /* closed at once: over the cap, or NULL */
	uint64_t accept_pause; /* pauses after EMFILE/ENFILE/... */
	uint64_t rearmed;      /* multishot accept re-armed by us */
	unsigned active;       /* connections open now */
	/* Zeroed by the library: room for counters a later release adds
	 * (README, "ABI"). */
	uint64_t reserved[4];
};

/**
 * proa_server_stats() - copy @s's counters into @out.
 * @s:   a server.
 * @out: filled whole (its reserved tail zeroed).
 *
 * Return: 0, or -EINVAL for NULL arguments.
 * Thread: loop (the server's).
 */
PROA_API int proa_server_stats(const struct proa_server *s,
			       struct proa_server_stats *out);

/**
 * proa_server_close() - stop listening; connections already accepted stay
 * open (close them yourself, as asyncio's Server.close()).  @done, if not
 * NULL, resolves with 0 once every listener is closed; the server is
 * freed then.  Return: 0, or -EALREADY; -EINVAL if @done is not a pending
 * future of the server's loop; -EBUSY if @done has a canceller (another
 * piece of work's, as a combinator's output).
 */
PROA_API int proa_server_close(struct proa_server *s, struct proa_future *done);

/* ---- clients ----------------------------------------------------------- */

/*
 * tls: a client TLS context: the future resolves after the handshake.
 * server_hostname: the name sent as SNI and checked against the
 *     certificate (default: the host connected to; with verification on,
 *     an empty name is refused with -EINVAL, never accepted silently, and
 *     a numeric one is checked against the certificate's IP addresses, not
 *     sent as SNI).  tls_error: where a handshake failure is explained in
 *     words (PROA_ETLSVERIFY: "certificate has expired", ...).
 */
struct proa_connect_options {
	struct proa_tls_context *tls;
	const char *server_hostname;
	uint64_t tls_handshake_timeout_ns; /* 0: 60 s */
	char *tls_error;
	size_t tls_error_len;
	uint64_t timeout_ns; /* whole connect, name lookup included (0: none) */
	int family;	     /* AF_UNSPEC, AF_INET, AF_INET6 */
	struct proa_transport_options transport;
	/* Happy Eyeballs (RFC 8305): how long an attempt has before the
	 * next address is tried beside it (0: 250 ms, the RFC's
	 * recommendation; UINT64_MAX: one address at a time, the next only
	 * when one fails). */
	uint64_t attempt_delay_ns;
	/* Must be zero: room for fields a later 0.x adds without changing
	 * the size (README, "ABI"); nonzero is -EINVAL. */
	uint64_t reserved[3];
};

/**
 * proa_tcp_connect() - connect to @host:@port: the addresses the name
 * gives race as Happy Eyeballs has them (RFC 8305): IPv6 and IPv4
 * interleaved, the first address's family first; an attempt starts every
 * @opt->attempt_delay_ns (250 ms) or as soon as one fails, at most 8 in
 * flight; the first to connect wins and the others are cancelled (their
 * sockets closed).  An address that never answers costs 250 ms, not the
 * kernel's SYN timeout.
 * @fut: resolves with res 0 and value the struct proa_transport * (the
 *       protocol's connection_made has been called), or -errno:
 *       -ECONNREFUSED, -ENETUNREACH, -EHOSTUNREACH, -ETIMEDOUT,
 *       PROA_ENONAME, -ECANCELED if @fut was cancelled.
 * Return: 0 if started, or -EINVAL / PROA_ECLOSED / -EBUSY.
 */
PROA_API int proa_tcp_connect(struct proa_loop *loop, const char *host,
			      uint16_t port,
			      const struct proa_connect_options *opt,
			      proa_protocol_factory factory, void *arg,
			      struct proa_future *fut);

/**
 * proa_tcp_connect_addrs() - proa_tcp_connect() to addresses the caller
 * resolved itself (a list from getaddrinfo(), proa_getaddrinfo() or one
 * made by hand; only its AF_INET and AF_INET6 entries are used, each with
 * its own port, and the list is copied before this returns).
 * Return: as proa_tcp_connect(); -EINVAL if @list has no such address.
 * Thread: loop.
 */
PROA_API int proa_tcp_connect_addrs(struct proa_loop *loop,
				    const struct addrinfo *list,
				    const struct proa_connect_options *opt,
				    proa_protocol_factory factory, void *arg,
				    struct proa_future *fut);

/** proa_unix_connect() - the same for a UNIX socket @path ('@': abstract). */
PROA_API int proa_unix_connect(struct proa_loop *loop, const char *path,
			       const struct proa_connect_options *opt,
			       proa_protocol_factory factory, void *arg,
			       struct proa_future *fut);

/* ---- transports -------------------------------------------------------- */

/* The explicit state of a connection (docs/architecture.md,
 * "Networking"; transitions traced in debug mode). */
enum proa_transport_state {
	PROA_TS_OPEN = 0,   /* reading and writing */
	PROA_TS_HALF_LOCAL, /* write_eof() done: reading only */
	PROA_TS_HALF_PEER,  /* EOF received, kept open: writing only */
	PROA_TS_CLOSING,    /* close(): flushing, then closing */
	PROA_TS_TEARDOWN,   /* waiting for operations in flight to end */
	PROA_TS_CLOSED,	    /* descriptor closed; connection_lost next */
};

/**
 * proa_transport_state_name() - the name of state @s ("OPEN",
 * "HALF_LOCAL", ...), or "?" for a value that is none.  Thread: any.
 */
PROA_API const char *proa_transport_state_name(enum proa_transport_state s);

/**
 * proa_transport_state() - where @t stands.  A TLS transport shows its
 * handshake and open states as OPEN, its close_notify exchange as
 * CLOSING and a failure as TEARDOWN; HALF_PEER after the peer's
 * close_notify when eof_received kept it open (TLS 1.3 only).
 * Return: the state; PROA_TS_CLOSED for NULL.
 */
PROA_API enum proa_transport_state
proa_transport_state(const struct proa_transport *t);

/**
 * proa_transport_write() - queue @len bytes (copied) for sending.
 * Return: 0; -EPIPE after write_eof() or close(), or once the connection
 *         failed; -ENOMEM.  Never calls back before returning.
 */
PROA_API int proa_transport_write(struct proa_transport *t, const void *data,
				  size_t len);

/**
 * proa_transport_writev() - queue the @iovcnt pieces of @iov (copied), in
 * order, as one write; empty pieces are allowed.
 * Return: 0; -EINVAL (a NULL piece with a length, @iovcnt < 0); -EPIPE as
 *         write; -ENOMEM, after which the pieces before the one that
 *         failed are queued (as a partial write would have sent them).
 */
PROA_API int proa_transport_writev(struct proa_transport *t,
				   const struct iovec *iov, int iovcnt);

/**
 * proa_transport_write_ref() - queue @len bytes for sending from the
 * caller's memory, without copying them (a file server's cache, a big
 * buffer).  The memory must stay unchanged until @release(@arg) runs, on
 * the loop thread, once the bytes are sent or the connection dropped them
 * (close, abort, failure: before connection_lost).  @release never runs
 * inside this call; on a transport that must copy anyway (TLS) it runs from
 * the ready queue after the copy.  Counted in the write buffer and its
 * water marks like any write.  Memory the kernel cannot read (a shared
 * mapping of a file cut short since) ends the connection with -EFAULT,
 * after everything queued before it has been sent.
 * Return: 0 (then @release runs exactly once); -EINVAL (a NULL @release,
 *         @len over 4 GiB); -EPIPE, -ENOMEM as write (then it never runs).
 */
PROA_API int proa_transport_write_ref(struct proa_transport *t,
				      const void *data, size_t len,
				      void (*release)(void *arg), void *arg);

/**
 * proa_transport_sendfile() - queue @len bytes of the regular file @fd from
 * offset @off, behind what is queued already, to be sent without passing
 * through user space: io_uring splices them file -> pipe -> socket, so the
 * socket takes references to the page cache and nothing is copied on the
 * sending side (asyncio's loop.sendfile, nginx's sendfile).  @fd must stay
 * open and the range unchanged until @release(@arg), with write_ref's
 * rules: exactly once, never inside this call, once the bytes are sent or
 * dropped, before connection_lost.  Counted in the write buffer and its
 * water marks like any write.
 *
 * Where nothing can splice (TLS, the epoll backend, a kernel without
 * IORING_OP_SPLICE) the range is mapped and sent from the mapping (TLS
 * encrypts from it): one copy, by the socket.  So is a range whose turn
 * comes when no pipe can be made (EMFILE, ENFILE): what was queued before
 * it is never left without it.  A file cut shorter while
 * its bytes are in flight ends the connection: -ENODATA when spliced,
 * -EFAULT from the socket's copy of a mapping - except under TLS, which
 * reads the mapping itself and so takes SIGBUS (keep a file sent over TLS
 * from shrinking, or read it instead).
 *
 * Return: 0 (then @release runs exactly once); -EBADF; -EINVAL (not a
 *         regular file, a range past its end now, a NULL @release, @len
 *         over 4 GiB); -EPIPE, -ENOMEM as write; what fstat or mmap said.
 * Thread: loop.
 */
PROA_API int proa_transport_sendfile(struct proa_transport *t, int fd,
				     uint64_t off, size_t len,
				     void (*release)(void *arg), void *arg);

/**
 * proa_transport_sendfile_sized() - proa_transport_sendfile() for a file
 * whose size the caller knows already (a statx on a pool thread, say):
 * the range is checked against @size instead of by fstat, so that nothing
 * touches the file system on the loop thread, where fstat can wait on a
 * network or FUSE file system.  @fd must be a regular file: not checked
 * on the splice path.  If the file is in fact shorter, the bytes that are
 * not there end the connection as for a file cut short in flight
 * (-ENODATA spliced); where the range is mapped instead (TLS, no splice)
 * the mapping is checked against the file as it is then (fstat) and a
 * range past its end is -EINVAL, never SIGBUS.
 * Return: as proa_transport_sendfile().
 * Thread: loop.
 */
PROA_API int proa_transport_sendfile_sized(struct proa_transport *t, int fd,
					   uint64_t off, size_t len,
					   uint64_t size,
					   void (*release)(void *arg),
					   void *arg);

/**
 * proa_transport_write_eof() - shut our write side (SHUT_WR; a pipe's
 * write end is closed) once the buffer has been sent; reading goes on
 * (HALF_LOCAL).
 * Return: 0; -EPIPE if already closing or shut; -EOPNOTSUPP over TLS,
 *         for a read-only pipe or a tty's single descriptor (see
 *         proa_transport_can_write_eof()); -EINVAL for NULL.
 */
PROA_API int proa_transport_write_eof(struct proa_transport *t);

/**
 * proa_transport_can_write_eof() - whether write_eof() can half-close
 * @t: true for TCP and UNIX sockets and for pipes with a write end of
 * their own, false over TLS (our close_notify may end both directions:
 * TLS 1.2 answers it by closing; a TLS 1.3 peer's is honoured, see
 * eof_received), for a
 * read-only pipe or a tty's single descriptor, and for NULL.
 */
PROA_API bool proa_transport_can_write_eof(const struct proa_transport *t);

/** proa_transport_close() - stop reading, send what is buffered, close;
 * connection_lost(0) follows (or an error, if sending fails). */
PROA_API int proa_transport_close(struct proa_transport *t);

/**
 * proa_transport_abort() - close at once, dropping the buffer.
 * @t: the transport.
 *
 * connection_lost(-ECONNABORTED) follows from the ready queue (the buffer's
 * write_ref and sendfile releases first).  Aborting a transport that is
 * already closing or aborted is harmless, as with close.
 *
 * Return: 0, or -EINVAL for NULL (an int like its siblings, so that
 *         callers can treat every closing call alike).
 * Thread: loop.
 */
PROA_API int proa_transport_abort(struct proa_transport *t);

/**
 * proa_transport_pause_reading() - no data_received until
 * resume_reading(); the kernel-side receive is cancelled, so data waits in
 * the socket (TCP flow control pushes back on the peer).  Bytes the
 * kernel had already received are held, and handed over after the
 * resume.  An EOF that arrives meanwhile is told after them.
 * Return: 0; -EPIPE if closing; -EINVAL for NULL.
 */
PROA_API int proa_transport_pause_reading(struct proa_transport *t);

/**
 * proa_transport_resume_reading() - undo pause_reading(): what was held
 * comes first, from the ready queue (never inside this call), then the
 * receive is armed again.
 * Return: 0 (also if not paused); -EPIPE if closing; -EINVAL for NULL.
 */
PROA_API int proa_transport_resume_reading(struct proa_transport *t);

/**
 * proa_transport_is_reading() - whether data_received can come: not
 * paused, and neither EOF nor a close has ended reading.  False for NULL.
 */
PROA_API bool proa_transport_is_reading(const struct proa_transport *t);

/**
 * proa_transport_is_closing() - whether close(), abort() or a failure has
 * begun to end @t (state CLOSING or later); true for NULL.
 */
PROA_API bool proa_transport_is_closing(const struct proa_transport *t);

/**
 * proa_transport_write_buffer_size() - bytes queued and not yet sent
 * (write, write_ref and sendfile alike; over TLS, the socket's ciphertext).
 * Return: the count; 0 for NULL.
 */
PROA_API size_t
proa_transport_write_buffer_size(const struct proa_transport *t);

/**
 * proa_transport_set_write_buffer_limits() - set the water marks
 * that drive pause_writing / resume_writing (0, 0: 64 KiB and 16 KiB; a
 * @high with @low 0: @high / 4).  A buffer already past the new mark is
 * told so from the ready queue.
 * Return: 0; -EINVAL if @low > @high, or for NULL.
 */
PROA_API int proa_transport_set_write_buffer_limits(struct proa_transport *t,
						    size_t high, size_t low);

/**
 * proa_transport_set_timeouts() - from now on, close with -ETIMEDOUT after
 * @idle_ns with nothing received or sent, or after @write_ns with
 * buffered data making no progress (0: no such timeout).
 * Return: 0; -EPIPE once the transport is tearing down; -EINVAL for NULL.
 */
PROA_API int proa_transport_set_timeouts(struct proa_transport *t,
					 uint64_t idle_ns, uint64_t write_ns);

/**
 * proa_transport_peername() - the peer's address (getpeername(2) of the
 * socket, also under TLS), asyncio's get_extra_info('peername').
 * Return: 0 and @addr, *@len; -EINVAL for NULL arguments or a transport
 *         whose socket is gone; what getpeername(2) said.
 */
PROA_API int proa_transport_peername(const struct proa_transport *t,
				     struct sockaddr_storage *addr,
				     socklen_t *len);

/**
 * proa_transport_sockname() - our own address, as peername() (getsockname).
 */
PROA_API int proa_transport_sockname(const struct proa_transport *t,
				     struct sockaddr_storage *addr,
				     socklen_t *len);

/**
 * proa_transport_fd() - the socket's descriptor (the one under TLS), for
 * socket options and the like; a pipe transport's read end, or its write
 * end if it has none.  Reading or writing it behind the transport's back
 * breaks the stream.
 * Return: the descriptor; -EINVAL for NULL or once the socket is gone.
 */
PROA_API int proa_transport_fd(const struct proa_transport *t);

/** proa_transport_loop() - the loop @t belongs to; NULL for NULL.
 * Thread: any. */
PROA_API struct proa_loop *proa_transport_loop(const struct proa_transport *t);

/** proa_transport_protocol() - the protocol @t calls back; NULL for NULL
 * (or inside the factory, before it returned). */
PROA_API struct proa_protocol *
proa_transport_protocol(const struct proa_transport *t);

/** proa_transport_set_protocol() - switch protocols (asyncio's
 * set_protocol): later callbacks go to @p, which gets no
 * connection_made.  NULL @t or @p: nothing happens. */
PROA_API void proa_transport_set_protocol(struct proa_transport *t,
					  struct proa_protocol *p);

/* ---- pipes, ttys and descriptors made elsewhere ------------------------ */

/**
 * proa_pipe_open() - a transport on a pipe, a FIFO, a tty (a pty, the
 * process's stdin/stdout) or a character device: the same protocol
 * callbacks, write buffer, water marks (pause_writing/resume_writing),
 * states and close rule as a socket's.  Reads go through read(2),
 * writes through writev(2).
 * @out:   the transport, set before connection_made runs.
 * @rfd:   read from, or -1 for a write-only transport (stdout, a
 *         child's stdin).  A read-only or duplex transport reads at once.
 * @wfd:   written to, or -1 for a read-only transport (stdin, a child's
 *         stdout); may be @rfd itself (a tty or pty master: one
 *         descriptor both ways).
 * @opt:   write_high/write_low, idle and write timeouts, recv_oneshot;
 *         the socket options are ignored.  May be NULL.
 * @proto: connected at once: connection_made runs inside this call.
 *
 * The transport owns @rfd and @wfd from a successful return and closes
 * them when it ends.  write_eof() closes @wfd once the buffer is written
 * (the reader sees EOF if no other process holds the pipe open); it is
 * -EOPNOTSUPP when @wfd is @rfd, and proa_transport_can_write_eof() says
 * so.  A read-only transport closes itself after eof_received whatever it
 * returns; a write-only one ends after write_eof (connection_lost(0)).
 * A pty master reads EIO once its slave is closed: that is taken as EOF.
 * A write-only end on a pipe or FIFO watches for its reader going away
 * (as asyncio's does): connection_lost(0) with nothing buffered, -EPIPE
 * with bytes left; a write-only tty or device learns it at its next
 * write (-EPIPE, -EIO).
 *
 * SIGPIPE: writing to a pipe nobody reads raises SIGPIPE, which kills a
 * process that keeps its default action (sockets send with MSG_NOSIGNAL;
 * pipes cannot).  A program with pipe transports that write ignores it
 * (signal(SIGPIPE, SIG_IGN)), as Python, Node and nginx do.
 *
 * Blocking mode: on io_uring the descriptors' file flags are left as they
 * are (a blocking pipe is fine: the ring polls it; an O_NONBLOCK one too,
 * or, where io_uring answers it -EAGAIN, the transport polls it).  The
 * epoll backend sets O_NONBLOCK on them, and that flag lives in the open
 * file description, which every process holding it shares - the shell's
 * terminal too.  To leave a shared tty
 * blocking for the shell, wrap a descriptor of your own
 * (open("/dev/tty")) rather than stdin itself.
 *
 * Return: 0; -EINVAL (both -1, a NULL argument, a directory, nonzero
 *         reserved options), -EBADF, PROA_ECLOSED, -ENOMEM: then nothing
 *         was called and both descriptors are still the caller's.
 * Thread: loop.
 */
PROA_API int proa_pipe_open(struct proa_transport **out, struct proa_loop *loop,
			    int rfd, int wfd,
			    const struct proa_transport_options *opt,
			    struct proa_protocol *proto);

/**
 * proa_transport_from_fd() - a transport on the connected stream socket
 * @fd (TCP or UNIX) made or accepted elsewhere: a socket a parent handed
 * down, one received with SCM_RIGHTS, one end of a socketpair().  It is
 * the socket kind, the same as a transport proa connected or accepted:
 * write_eof() is shutdown(SHUT_WR).  @fd is made non-blocking and
 * close-on-exec, and @opt's socket options are applied.  @proto is
 * connected at once (connection_made runs inside this call).
 * Return: 0 and *@out, the transport owning @fd; -EBADF, -ENOTSOCK,
 *         -EINVAL (a listening socket: see proa_server_from_fd(), or not
 *         a stream socket), PROA_ECLOSED, -ENOMEM: then @fd is left open
 *         and still the caller's.
 * Thread: loop.
 */
PROA_API int proa_transport_from_fd(struct proa_transport **out,
				    struct proa_loop *loop, int fd,
				    const struct proa_transport_options *opt,
				    struct proa_protocol *proto);

/* ---- passing descriptors over UNIX sockets (SCM_RIGHTS) ---------------- */

/* The most descriptors one proa_transport_write_fds() passes. */
#define PROA_TRANSPORT_FDS_MAX 16
/* The most received descriptors a transport holds untaken. */
#define PROA_TRANSPORT_FDS_QUEUED 128

/**
 * proa_transport_write_fds() - queue @len bytes (copied) with descriptors
 * @fds to pass to the peer (SCM_RIGHTS), on a UNIX stream socket
 * transport.  The transport sends its own duplicates (taken in the call:
 * the caller may close @fds at once) with the first of these bytes, and
 * closes them once sent.  Writes before and after keep their order.
 * @len:  at least 1: descriptors travel with a byte.
 * @nfds: 1 to PROA_TRANSPORT_FDS_MAX.
 * Return: 0; -EOPNOTSUPP if @t is not a UNIX stream socket (TCP, TLS, a
 *         pipe); -EINVAL; -EBADF (a bad descriptor in @fds), -EMFILE;
 *         -EPIPE after write_eof() or close(); -ENOMEM.  On error nothing
 *         was queued, except -ENOMEM past the first 16 KiB, which queues
 *         those and their descriptors (as writev's partial -ENOMEM).
 * Thread: loop.
 */
PROA_API int proa_transport_write_fds(struct proa_transport *t,
				      const void *data, size_t len,
				      const int *fds, unsigned nfds);

/**
 * proa_transport_recv_fds() - accept descriptors from the peer on the
 * UNIX stream socket transport @t: from now on it receives with recvmsg
 * and room for PROA_TRANSPORT_FDS_MAX descriptors per message, one
 * receive buffer at a time.  Call it in connection_made (the first
 * receive is queued after it returns): a transport that received without
 * room lets the kernel close what came.  Descriptors that arrive with
 * some bytes are queued before data_received shows those bytes; take
 * them with proa_transport_take_fd().  More than the room in one message
 * fails the transport with -EMSGSIZE (the kernel closed the rest).  At
 * most PROA_TRANSPORT_FDS_QUEUED wait untaken: the transport receives
 * nothing more (bytes included; the peer waits) until some are taken.
 * Return: 0 (also when on already); -EOPNOTSUPP if @t is not a UNIX
 *         stream socket; -EBUSY once a receive is in flight or after
 *         close(); -ENOMEM.
 * Thread: loop.
 */
PROA_API int proa_transport_recv_fds(struct proa_transport *t);

/**
 * proa_transport_take_fd() - the next descriptor received on @t, in the
 * order they arrived: the caller's from now on (close-on-exec).  Those
 * never taken are closed with the transport.
 * Return: the descriptor; -EAGAIN if none is waiting; -EOPNOTSUPP if
 *         proa_transport_recv_fds() was not called on @t.
 * Thread: loop.
 */
PROA_API int proa_transport_take_fd(struct proa_transport *t);

/* ---- buffered streams ------------------------------------------------------
 *
 * A protocol that buffers what arrives so that code can ask for "a line",
 * "N bytes": each read is a future (pending, of the stream's loop, and
 * not another piece of work's: one with a canceller is -EBUSY).  One read
 * at a time (-EBUSY for a second); the buffer never grows past @limit
 * bytes: a read that would need more fails with -EMSGSIZE and reading
 * pauses (the peer waits).
 */

/**
 * proa_stream_new() - a stream protocol to return from a factory or pass
 * to a connect call.  @limit: the most it buffers (0: 64 KiB).
 * The stream is freed after connection_lost, unless proa_stream_hold()
 * was called; then proa_stream_free() frees it.
 */
PROA_API int proa_stream_new(struct proa_stream **out, size_t limit);

/** proa_stream_protocol() - @s as the protocol to return from a factory
 * (or to pass to a connect call); NULL for NULL. */
PROA_API struct proa_protocol *proa_stream_protocol(struct proa_stream *s);

/** proa_stream_of() - the stream whose protocol @p is (the reverse of
 * proa_stream_protocol()); NULL for NULL. */
PROA_API struct proa_stream *proa_stream_of(struct proa_protocol *p);

/** proa_stream_hold() - keep @s after connection_lost, so that its
 * buffered bytes and error can still be read; proa_stream_free() frees it
 * then. */
PROA_API void proa_stream_hold(struct proa_stream *s);

/**
 * proa_stream_free() - free @s: at once if it is not connected (never
 * was, or lost and held); a live one first fails its pending read and
 * drain with -ECONNABORTED, is aborted, and is freed after its
 * connection_lost.  Not while a connect that will use @s is in flight.
 */
PROA_API void proa_stream_free(struct proa_stream *s);

/** proa_stream_transport() - the transport under @s; NULL before
 * connection_made and after connection_lost. */
PROA_API struct proa_transport *proa_stream_transport(struct proa_stream *s);

/**
 * proa_stream_read_exactly() - read @n bytes into @buf.
 * @fut: res @n; or PROA_EINCOMPLETE when EOF came first, with the partial
 *       count in *@got; or the connection's error.
 */
PROA_API int proa_stream_read_exactly(struct proa_stream *s, void *buf,
				      size_t n, size_t *got,
				      struct proa_future *fut);

/**
 * proa_stream_read_until() - read up to and including @delim (@dlen
 * bytes) into @buf (@cap bytes).  @fut: res the length with the
 * delimiter; -EMSGSIZE if it is not within min(@cap, limit) bytes (nothing
 * consumed); PROA_EINCOMPLETE at EOF with the partial bytes in @buf and
 * their count in *@got.
 */
PROA_API int proa_stream_read_until(struct proa_stream *s, const void *delim,
				    size_t dlen, void *buf, size_t cap,
				    size_t *got, struct proa_future *fut);

/** proa_stream_read() - up to @cap bytes of what is there (waits for at
 * least one); res 0 at EOF. */
PROA_API int proa_stream_read(struct proa_stream *s, void *buf, size_t cap,
			      struct proa_future *fut);

/** proa_stream_write() - proa_transport_write() on the stream's
 * transport.  Return: as that; -ENOTCONN before connection_made; -EPIPE
 * after connection_lost. */
PROA_API int proa_stream_write(struct proa_stream *s, const void *data,
			       size_t len);

/** proa_stream_drain() - @fut resolves once the write buffer is at or
 * below the low water mark. */
PROA_API int proa_stream_drain(struct proa_stream *s, struct proa_future *fut);

/** proa_stream_close() - proa_transport_close() on the stream's
 * transport.  Return: as that; 0 after connection_lost; -ENOTCONN before
 * connection_made. */
PROA_API int proa_stream_close(struct proa_stream *s);

/** proa_stream_at_eof() - whether the peer ended (or the connection was
 * lost) and every buffered byte has been read. */
PROA_API bool proa_stream_at_eof(const struct proa_stream *s);

/* ---- UDP --------------------------------------------------------------- */

struct proa_datagram_protocol;

/*
 * A UDP endpoint's callbacks, in the shape of a stream protocol's
 * (asyncio's DatagramProtocol); any may be NULL except datagram_received.
 *
 * connection_made:   @u is ready; the first call, from the ready queue
 *                    after proa_udp_bind() (datagrams that arrive before
 *                    it wait in the socket; sends queued before it leave
 *                    after it).
 * datagram_received: one datagram of @len bytes (0 is one too) from
 *                    @from (@fromlen bytes); all borrowed for the call.
 * error_received:    an ICMP error or a failed send (-ECONNREFUSED on a
 *                    connected endpoint, -EMSGSIZE for a datagram that
 *                    came cut and was dropped, ...); the endpoint stays
 *                    open.
 * connection_lost:   the last call: @err is 0 after proa_udp_close(), or
 *                    the error that closed the endpoint (-ECANCELED when
 *                    proa_loop_cancel_all() wound it down).  The endpoint
 *                    is freed when it returns.
 */
struct proa_datagram_protocol_ops {
	void (*connection_made)(struct proa_datagram_protocol *p,
				struct proa_udp *u);
	void (*datagram_received)(struct proa_datagram_protocol *p,
				  const void *data, size_t len,
				  const struct sockaddr *from,
				  socklen_t fromlen);
	void (*error_received)(struct proa_datagram_protocol *p, int err);
	void (*connection_lost)(struct proa_datagram_protocol *p, int err);
};

/* Embed this in your endpoint object; recover it with proa_container_of.
 * It must stay valid until connection_lost returns. */
struct proa_datagram_protocol {
	const struct proa_datagram_protocol_ops *ops;
};

/* Zero means the default.  @remote: connect(2) the socket to it (send()
 * then needs no address, and only its datagrams arrive). */
struct proa_udp_options {
	bool reuse_addr;
	bool reuse_port;
	bool broadcast;
	int rcvbuf;
	int sndbuf;
	const struct sockaddr *remote;
	socklen_t remote_len;
	size_t max_queued; /* bytes waiting to be sent (1 MiB) */
	/* Must be zero: room for fields a later 0.x adds without changing
	 * the size (README, "ABI"); nonzero is -EINVAL. */
	uint64_t reserved[4];
};

/**
 * proa_udp_bind() - a UDP endpoint bound to @addr (port 0 lets the kernel
 * pick: proa_udp_sockname()).
 * @addr: a local IPv4 or IPv6 address; NULL with @opt->remote set: bound
 *        by the kernel.  Datagrams of up to 65507 bytes (IPv4) / 65527
 *        (IPv6).
 * @p:    the endpoint's protocol: connection_made follows from the ready
 *        queue, connection_lost ends it.
 *
 * Return: 0 and *@out; -EINVAL (no datagram_received, no address,
 *         a sockaddr too short for its family), -EAFNOSUPPORT, or what
 *         socket(2), setsockopt(2), bind(2) or connect(2) said (then
 *         nothing of @p is called and *@out is untouched).
 */
PROA_API int proa_udp_bind(struct proa_udp **out, struct proa_loop *loop,
			   const struct sockaddr *addr, socklen_t addrlen,
			   const struct proa_udp_options *opt,
			   struct proa_datagram_protocol *p);

/**
 * proa_udp_sendto() - queue one datagram (copied) to @to (NULL on a
 * connected endpoint).  Return: 0; -EMSGSIZE over the limit; -EAGAIN when
 * max_queued bytes are already waiting; -EDESTADDRREQ; -EPIPE if closing.
 */
PROA_API int proa_udp_sendto(struct proa_udp *u, const void *data, size_t len,
			     const struct sockaddr *to, socklen_t tolen);

/** proa_udp_sockname() - the endpoint's bound address (the port the
 * kernel picked for port 0).  Return: 0 and @addr (and *@len unless it is
 * NULL); -EINVAL; -EBADF once closed; what getsockname(2) said. */
PROA_API int proa_udp_sockname(const struct proa_udp *u,
			       struct sockaddr_storage *addr, socklen_t *len);

/** proa_udp_fd() - the endpoint's socket, for socket options.  Return:
 * the descriptor, or -EINVAL for NULL. */
PROA_API int proa_udp_fd(const struct proa_udp *u);

/** proa_udp_queued() - bytes of datagrams queued or in flight, counted
 * against max_queued; 0 for NULL. */
PROA_API size_t proa_udp_queued(const struct proa_udp *u);
/** proa_udp_close() - drop what is queued, stop receiving;
 * connection_lost(0) follows once nothing is in flight (after
 * connection_made, if that has not run yet).  Return: 0; -EALREADY if
 * closing; -EINVAL for NULL. */
PROA_API int proa_udp_close(struct proa_udp *u);

/* ---- loop groups ------------------------------------------------------- */

/*
 * N loops in N threads, one per CPU where there are enough (placed with
 * hwloc, as the pool's PROA_PLACE_SPREAD), serving one address either
 * with one SO_REUSEPORT listener per loop (the kernel spreads
 * connections) or with one acceptor that hands each connection to the
 * next loop in turn over call_soon_threadsafe.
 */
enum proa_group_mode {
	PROA_GROUP_REUSEPORT = 0,
	PROA_GROUP_HANDOFF,
};

struct proa_loop_group_options {
	unsigned nloops; /* 0: the number of CPUs this process may use */
	bool no_pin;	 /* do not pin the loops' threads */
	/* Must be zero: room for fields a later 0.x adds without changing
	 * the size (README, "ABI"); nonzero is -EINVAL. */
	uint64_t reserved[4];
};

/**
 * proa_loop_group_new() - create the loops and start their threads; each
 * runs until proa_loop_group_free().  Thread: any.
 */
PROA_API int proa_loop_group_new(struct proa_loop_group **out,
				 const struct proa_loop_group_options *opt);
/** Thread: any. */
PROA_API unsigned proa_loop_group_size(const struct proa_loop_group *g);
/** Thread: any (the loop itself is its thread's). */
PROA_API struct proa_loop *proa_loop_group_loop(struct proa_loop_group *g,
						unsigned i);
/** The CPU loop @i is pinned to, or -1.  Thread: any. */
PROA_API int proa_loop_group_cpu(const struct proa_loop_group *g, unsigned i);

/**
 * proa_loop_group_listen() - serve @host:@port on every loop of @g;
 * @factory is called on the loop that owns the connection (with @arg).
 * The address is bound synchronously (numeric hosts only; NULL for all).
 * PROA_GROUP_REUSEPORT shares the port between the group's loops only:
 * the first loop's listener is reuse_port_exclusive, so a port another
 * process listens on is -EADDRINUSE, and so is this group's port to a
 * second group.  @opt->reuse_port set by the caller opts into sharing
 * with other processes' SO_REUSEPORT listeners too (a restart that
 * overlaps the old server).  @opt holds on every loop in both modes: each
 * loop caps its own connections at max_connections, and with a TLS
 * context every connection is TLS (the group keeps a reference on the
 * context until it is freed).
 * Return: 0, or -errno (nothing left listening).  Thread: any, not a
 * loop of @g.
 */
PROA_API int proa_loop_group_listen(struct proa_loop_group *g, const char *host,
				    uint16_t port, enum proa_group_mode mode,
				    const struct proa_server_options *opt,
				    proa_protocol_factory factory, void *arg);

/**
 * proa_loop_group_listen_fd() - serve the listening stream socket @fd
 * that someone else made (proa_listen_fds(), a parent process) on the
 * loops of @g; @factory and @opt as for proa_loop_group_listen(), except
 * that the listening settings (backlog, reuse_port, family) are the
 * maker's.  It is one socket, not one per loop: with
 * PROA_GROUP_REUSEPORT every loop accepts from it (each through a dup of
 * @fd) and the kernel gives each connection to one waiting loop, not by
 * hash; with PROA_GROUP_HANDOFF loop 0 accepts and hands connections out
 * in turn.  Each loop's descriptor is made non-blocking and close-on-exec
 * (the flag on the open file is @fd's too).
 * Return: 0, and @fd is closed (the group has its own descriptors for the
 *         socket, closed with the group); -EBADF, -ENOTSOCK, -EINVAL (not
 *         a listening stream socket, or bad arguments), -EBUSY (already
 *         listening), -ESHUTDOWN, -EDEADLK (called from a loop of @g),
 *         -EMFILE, -ENOMEM: nothing listens, and @fd is open and still
 *         the caller's.
 * Thread: any, not a loop of @g.
 */
PROA_API int proa_loop_group_listen_fd(struct proa_loop_group *g, int fd,
				       enum proa_group_mode mode,
				       const struct proa_server_options *opt,
				       proa_protocol_factory factory,
				       void *arg);

/** The port the group listens on (the kernel's choice when 0 was asked),
 * 0 before a listen.  Thread: any. */
PROA_API uint16_t proa_loop_group_port(const struct proa_loop_group *g);

/** Connections each loop has accepted so far.  Thread: any. */
PROA_API uint64_t proa_loop_group_accepted(const struct proa_loop_group *g,
					   unsigned i);

/**
 * typedef proa_group_drain_fn - the application's part of a graceful
 * shutdown, called once on each loop of the group.
 * @g:   the group.
 * @i:   the loop this call runs on (0 .. size - 1).
 * @arg: as given to proa_loop_group_shutdown().
 *
 * The loop's listener is closed when it runs, and connections handed to
 * the loop from then on are refused.  It should close the connections
 * that are idle, let the busy ones finish what they are doing (and close
 * them then), and call proa_loop_group_drained(@g, @i) once the loop has
 * nothing left that must finish: from this call if it has nothing, or
 * from a later callback on the same loop (a connection_lost(), a log
 * flush).  Whatever is still open at the deadline is aborted.
 *
 * Thread: loop @i of @g.
 */
typedef void (*proa_group_drain_fn)(struct proa_loop_group *g, unsigned i,
				    void *arg);

/**
 * proa_loop_group_shutdown() - stop a group gracefully, as nginx stops its
 * workers: stop accepting on every loop, let each loop's connections
 * finish within @grace_ns, abort what remains, then stop and join the
 * loops' threads.
 * @g:        the group.
 * @grace_ns: how long the loops may take to drain, from the call (0:
 *            abort at once, after @drain has run).
 * @drain:    called once on each loop (see proa_group_drain_fn), all
 *            loops at the same time; NULL: no drain, every connection is
 *            aborted at once (what proa_loop_group_free() does).
 * @arg:      passed to @drain.
 *
 * Each loop is reached with proa_loop_call_soon_threadsafe(); the caller
 * waits, on a condition variable, until every loop has reported
 * proa_loop_group_drained() or the deadline (monotonic clock) has passed.
 * Then every loop aborts the transports it still has (their
 * connection_lost() runs), runs until nothing is left and closes, and its
 * thread is joined.  When this returns no callback of the group runs any
 * more and everything the loops wrote is visible to the caller; the
 * group is still to be freed with proa_loop_group_free(), which then
 * reports a loop that could not close.  proa_loop_group_listen() is
 * -ESHUTDOWN afterwards.
 *
 * Calls are serialised with each other and with proa_loop_group_listen();
 * a second call (at the same time or later) waits for the first and
 * returns 0 without calling @drain again.  A loop stopped with
 * proa_loop_stop_threadsafe() is still run by its thread, so it drains
 * like the others.
 *
 * Return: the number of loops that had not reported drained by the
 *         deadline (0: all finished in time), -EINVAL if @g is NULL, or
 *         -EDEADLK from a loop of @g.
 * Thread: any thread that is not a loop of @g, since it waits for them;
 *         it blocks for up to @grace_ns.  Not async-signal-safe: call it
 *         from the thread that sigwait()s, or from a loop of your own that
 *         watches the signal (proa_signal_start()), which then waits.
 *         Not at the same time as proa_loop_group_free().
 */
PROA_API int proa_loop_group_shutdown(struct proa_loop_group *g,
				      uint64_t grace_ns,
				      proa_group_drain_fn drain, void *arg);

/**
 * proa_loop_group_drained() - report that loop @i has finished draining.
 * @g: the group, during proa_loop_group_shutdown().
 * @i: the loop calling.
 *
 * Only the first report counts.  A report that comes after the deadline
 * (from a connection_lost() the stop phase's abort caused, say) is
 * accepted and changes nothing, so a program may report from wherever
 * its count of connections reaches zero.
 *
 * Return: 0; -EALREADY if reported before; -EINVAL if @i is out of range
 *         or no drain has reached loop @i; -EPERM if the caller is not
 *         loop @i's thread.
 * Thread: loop @i of @g.
 */
PROA_API int proa_loop_group_drained(struct proa_loop_group *g, unsigned i);

/**
 * proa_loop_group_free() - close the listeners, abort open connections,
 * stop and join the threads, close and free the loops (what a shutdown
 * already did is not done again).  Return: 0, or the error of a loop that
 * could not close (-EBUSY: something of it was still in flight).
 * Thread: any, not a loop of @g.
 */
PROA_API int proa_loop_group_free(struct proa_loop_group *g);

#ifdef __cplusplus
}
#endif

#endif /* PROA_NET_H */
