//! `uring`: completion-based I/O (a proactor) on Linux io_uring.
//!
//! The reactor styles ask the kernel "which sockets are ready?" and then do
//! the reads and writes themselves, one system call each. Here the loop
//! *submits* the operations themselves (accept, receive, send, shut down) to
//! a ring shared with the kernel, and the kernel *completes* them: a receive
//! completion arrives with the bytes already copied into user memory, a send
//! completion says how much was taken. One `io_uring_enter` per loop turn
//! hands the kernel every operation queued while processing the previous
//! batch of completions and waits for the next batch, so system calls are
//! amortised over many connections.
//!
//! How the echo maps onto it:
//! - One multishot accept on the listener yields a completion per new
//!   connection; it is re-armed when it ends. Accept errors (EMFILE...) go
//!   through [`AcceptErrors`]; a back-off is an io_uring timeout after which
//!   the accept is armed again.
//! - Receives pick their buffer from a *provided-buffer ring* shared by all
//!   connections of the loop, at the moment data arrives: an idle connection
//!   with a receive pending holds no buffer at all. The buffer then belongs
//!   to the connection until its bytes are all written back, and returns to
//!   the ring after that. Buffers are handed to the kernel lazily (the pool
//!   grows when the ring runs dry, ENOBUFS) so that light load touches few
//!   pages. When every buffer of the pool is taken (many peers that do not
//!   read), a connection falls back to a buffer of its own for one receive,
//!   as the reactor would, instead of waiting for the pool.
//! - The send is submitted with `MSG_WAITALL`, so the kernel itself finishes
//!   a partial write, and the next receive is *linked* after it: the kernel
//!   starts it only once the send has fully succeeded. One submission per
//!   round trip, and back-pressure for free: nothing more is read from a peer
//!   while its previous data waits to be written back.
//! - EOF: after the pending data is written, an io_uring shutdown(SHUT_WR)
//!   and a close.
//! - Each connection's socket is also registered in the ring's file table
//!   (slot = its key), and its operations name the slot: the kernel then
//!   skips looking the descriptor up and reference-counting the file on
//!   every operation, at the price of one `io_uring_register` when the
//!   connection opens and one when it closes.
//!
//! Shutdown: the loop keeps a poll on an eventfd that the shutdown waker
//! writes to. The loop then cancels every operation still in flight, waits
//! for their completions (so the kernel no longer references any buffer),
//! closes every connection, and only then frees the buffers.
//!
//! `--workers N` runs N rings, each on its own thread with its own buffer
//! ring and multishot accept on the shared listener; whichever ring accepts
//! a connection serves it for its whole life.
//!
//! This file is the event loop; `ring` queues submissions and reaps
//! completions, `bufpool` holds the receive buffers, `stop` ends a loop
//! without freeing memory the kernel may still use.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use io_uring::types::{Fd, Fixed, Timespec};
use io_uring::{cqueue, opcode, squeue};
use slab::Slab;

use crate::runtime::accept::{AcceptAction, AcceptErrors, Mode, admit};
use crate::runtime::echo::burn;
use crate::runtime::server::{Ctx, Runner, ServerError, make_loops, run_loops, spawn_runner};
use crate::runtime::stats::ConnGuard;

mod bufpool;
mod ring;
mod stop;
use bufpool::{BGID, BufPool, Held, pool_shape};
use ring::{CQ_ENTRIES, Ring, new_ring, register_file_table};

/// Buffers handed to the kernel at start, and more each time it runs dry.
const FIRST_BUFFERS: usize = 32;
const GROW_BY: usize = 32;
// What a completion is for: the low bits of its user_data; the connection's
// slab key is in the rest.
const RECV: u64 = 0;
const SEND: u64 = 1;
const SHUTDOWN: u64 = 2;
const ACCEPT: u64 = 3;
const BACKOFF: u64 = 4;
const WAKE: u64 = 5;
const CANCEL: u64 = 6;
const IDLE_TIMER: u64 = 7;
const TAG_BITS: u32 = 3;

fn token(tag: u64, key: usize) -> u64 {
    ((key as u64) << TAG_BITS) | tag
}

pub(crate) fn start(ctx: Ctx, listener: TcpListener) -> Result<Runner, ServerError> {
    // One eventfd wakes every loop: nobody reads it, so once written it stays
    // readable and each loop's poll on it completes.
    // SAFETY: eventfd(2) takes no pointers.
    let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if raw < 0 {
        return Err(ServerError::Io {
            what: "creating the shutdown eventfd",
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(raw) });
    let loops = make_loops(&ctx, listener, |copy| {
        Uring::new(ctx.clone(), copy, Arc::clone(&wake))
    })?;
    {
        let wake = Arc::clone(&wake);
        // The waker keeps its own reference: the eventfd must stay open until
        // every loop has seen it.
        ctx.shutdown.on_trigger(move || {
            let one = 1u64;
            // SAFETY: writes 8 bytes from a live u64 to an open eventfd.
            // A failed write (counter full) still leaves it readable.
            let _ = unsafe { libc::write(wake.as_raw_fd(), ptr::from_ref(&one).cast(), 8) };
        });
    }
    spawn_runner(&ctx.clone(), move || {
        run_loops(&ctx, loops, Uring::run, "running the io_uring loop")
    })
}

/// One event loop: a ring, its buffers and its connections.
struct Uring {
    // Field order matters: the ring is closed before the buffers are unmapped.
    io: Ring,
    enable_on_thread: bool,
    pool: BufPool,
    conns: Slab<Conn>,
    listener: TcpListener,
    wake: Arc<OwnedFd>,
    ctx: Ctx,
    work: Duration,
    accept_errors: AcceptErrors,
    accept_armed: bool,
    accept_paused: bool,
    /// The back-off timeout's duration; boxed so its address is stable while
    /// the timeout is submitted.
    backoff: Box<Timespec>,
    stopping: bool,
    /// Slots in the ring's registered-file table (0: none registered).
    fixed_files: u32,
    /// `--idle-timeout` as the kernel takes it, boxed so that its address
    /// stays valid while linked timeouts reference it.
    idle: Option<Box<Timespec>>,
}

/// One connection. At most one receive, one send and one shutdown are in
/// flight, and the connection is only removed once none are.
struct Conn {
    fd: OwnedFd,
    /// The socket is in the ring's file table at the connection's key.
    fixed: bool,
    /// The data being written back, while its buffer belongs to this
    /// connection.
    out: Option<Out>,
    /// The pool was exhausted: the next receive goes into a buffer of the
    /// connection's own, kept here while the receive is in flight.
    own: Option<Box<[u8]>>,
    recv_pending: bool,
    send_pending: bool,
    shutdown_pending: bool,
    /// The peer sent EOF.
    read_closed: bool,
    /// Done (error or finished half-close): close once nothing is in flight.
    closing: bool,
    /// The linked idle timeout of the receive or send in flight has not
    /// completed yet.
    timer_pending: bool,
    _guard: ConnGuard,
}

struct Out {
    buf: Held,
    len: u32,
    sent: u32,
}

impl Conn {
    fn idle(&self) -> bool {
        !(self.recv_pending || self.send_pending || self.shutdown_pending || self.timer_pending)
    }
}

impl Uring {
    fn new(ctx: Ctx, listener: TcpListener, wake: Arc<OwnedFd>) -> Result<Uring, ServerError> {
        let (ring, enable_on_thread) = new_ring().map_err(ServerError::io(
            "creating the io_uring (is io_uring allowed here? a container's seccomp profile may refuse it)",
        ))?;
        let (count, size) = pool_shape(ctx.config.buffer_size);
        let mut pool = BufPool::new(count, size)
            .map_err(ServerError::io("mapping the io_uring receive buffers"))?;
        pool.register(&ring).map_err(ServerError::io(
            "registering the io_uring provided-buffer ring (needs Linux 5.19)",
        ))?;
        pool.grow(FIRST_BUFFERS);
        pool.publish();
        let fixed_files = register_file_table(&ring);
        Ok(Uring {
            io: Ring::new(ring),
            enable_on_thread,
            pool,
            conns: Slab::new(),
            listener,
            wake,
            accept_errors: AcceptErrors::for_ctx(&ctx),
            accept_armed: false,
            accept_paused: false,
            backoff: Box::new(Timespec::new()),
            stopping: false,
            fixed_files,
            idle: ctx.config.idle_timeout.map(|d| Box::new(Timespec::from(d))),
            work: ctx.config.work(),
            ctx,
        })
    }

    fn run(mut self) -> io::Result<()> {
        if self.enable_on_thread {
            self.io.ring.submitter().register_enable_rings()?;
        }
        let wake = opcode::PollAdd::new(Fd(self.wake.as_raw_fd()), libc::POLLIN as u32)
            .build()
            .user_data(token(WAKE, 0));
        // SAFETY: a poll references no memory of ours.
        unsafe { self.io.push(&[wake]) };
        self.arm_accept();
        let result = self.serve();
        self.stop();
        result
    }

    fn serve(&mut self) -> io::Result<()> {
        let mut cqes = Vec::with_capacity(CQ_ENTRIES as usize);
        while !self.stopping && !self.ctx.shutdown.is_stopping() {
            self.pool.publish();
            self.io.flush_overflow();
            // Everything queued since the last turn goes in one system call.
            match self.io.ring.submit_and_wait(1) {
                Ok(_) => {}
                // Interrupted, or the kernel is short of memory or completion
                // space: reap what there is and try again.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
                    ) => {}
                Err(e) => return Err(e),
            }
            cqes.clear();
            self.io.reap(&mut cqes);
            self.ctx.stats.woke(cqes.len());
            for &(user_data, res, flags) in &cqes {
                let key = (user_data >> TAG_BITS) as usize;
                match user_data & ((1 << TAG_BITS) - 1) {
                    RECV => self.on_recv(key, res, flags),
                    SEND => self.on_send(key, res),
                    SHUTDOWN => self.on_shutdown(key, res),
                    IDLE_TIMER => self.on_idle_timer(key),
                    ACCEPT => self.on_accept(res, flags),
                    BACKOFF => {
                        self.accept_paused = false;
                        self.arm_accept();
                    }
                    WAKE => self.stopping = true,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn arm_accept(&mut self) {
        if self.accept_armed || self.accept_paused || self.stopping {
            return;
        }
        self.accept_armed = true;
        let accept = opcode::AcceptMulti::new(Fd(self.listener.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(token(ACCEPT, 0));
        // SAFETY: a multishot accept takes no address buffer; it references
        // no memory of ours.
        unsafe { self.io.push(&[accept]) };
    }

    fn on_accept(&mut self, res: i32, flags: u32) {
        if !cqueue::more(flags) {
            // The multishot ended (always so after an error): arm it again below.
            self.accept_armed = false;
        }
        if res >= 0 {
            // SAFETY: the kernel just installed this descriptor for us and
            // nothing else owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(res) };
            self.accept_errors.on_success();
            self.on_accepted(fd);
        } else if !self.stopping {
            let err = io::Error::from_raw_os_error(-res);
            match self.accept_errors.on_error(&err) {
                AcceptAction::Retry => {}
                AcceptAction::BackOff(wait) => {
                    self.accept_paused = true;
                    *self.backoff = Timespec::from(wait);
                    let timeout = opcode::Timeout::new(&*self.backoff)
                        .build()
                        .user_data(token(BACKOFF, 0));
                    // SAFETY: the timespec is boxed in `self` and never freed
                    // or changed while this timeout is in flight (a new one is
                    // only armed after this one completes).
                    unsafe { self.io.push(&[timeout]) };
                }
            }
        }
        self.arm_accept();
    }

    fn on_accepted(&mut self, fd: OwnedFd) {
        let Some((fd, guard)) = admit(&self.ctx, fd, Mode::AsAccepted) else {
            return;
        };
        let raw = fd.as_raw_fd();
        let key = self.conns.insert(Conn {
            fd,
            fixed: false,
            out: None,
            own: None,
            recv_pending: false,
            send_pending: false,
            shutdown_pending: false,
            read_closed: false,
            closing: false,
            timer_pending: false,
            _guard: guard,
        });
        // Not registered (table full, or an error): the connection simply
        // uses its descriptor.
        self.conns[key].fixed = key < self.fixed_files as usize
            && matches!(
                self.io
                    .ring
                    .submitter()
                    .register_files_update(key as u32, &[raw]),
                Ok(1)
            );
        self.advance(key);
    }

    fn on_recv(&mut self, key: usize, res: i32, flags: u32) {
        let bid = cqueue::buffer_select(flags);
        let Some(conn) = self.conns.get_mut(key) else {
            self.pool.release(bid.map(Held::Pool));
            return;
        };
        conn.recv_pending = false;
        let held = match bid {
            Some(bid) => Some(Held::Pool(bid)),
            None => conn.own.take().map(Held::Own),
        };
        match (res, held) {
            (n, Some(buf)) if n > 0 => {
                // The receive is only ever armed with nothing left to write
                // back, so the connection holds no other buffer.
                debug_assert!(conn.out.is_none());
                burn(self.work);
                conn.out = Some(Out {
                    buf,
                    len: n as u32,
                    sent: 0,
                });
            }
            (0, held) => {
                self.pool.release(held);
                conn.read_closed = true;
            }
            (e, held) if e == -libc::ENOBUFS => {
                // Every buffer handed to the kernel is taken. Hand it more
                // if the pool has some left, else receive into a buffer of
                // the connection's own this time.
                self.pool.release(held);
                if self.pool.grow(GROW_BY) == 0 {
                    conn.own = Some(vec![0u8; self.pool.buf_size].into_boxed_slice());
                }
            }
            (e, held) if e == -libc::ECANCELED && self.idle.is_some() => {
                self.pool.release(held);
                Self::idle_close(conn, &self.ctx);
            }
            // Interrupted, or the linked send before it fell short (the
            // send's completion handles that): arm it again later.
            (e, held) if e == -libc::EINTR || e == -libc::EAGAIN || e == -libc::ECANCELED => {
                self.pool.release(held);
            }
            (_, held) => {
                // Reset, or a receive without a buffer (cannot happen).
                self.pool.release(held);
                self.ctx.stats.conn_error();
                conn.closing = true;
            }
        }
        self.advance(key);
    }

    fn on_send(&mut self, key: usize, res: i32) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.send_pending = false;
        let Some(out) = conn.out.as_mut() else {
            return self.advance(key);
        };
        if res > 0 {
            let n = (res as u32).min(out.len - out.sent);
            self.ctx.stats.echoed(n as usize);
            out.sent += n;
            if out.sent == out.len {
                self.pool.release(conn.out.take().map(|out| out.buf));
            }
            // Short (a signal or an error stopped the kernel's retries):
            // `advance` sends the rest, and a lasting error shows up then.
        } else if res == -libc::ECANCELED && self.idle.is_some() {
            self.pool.release(conn.out.take().map(|out| out.buf));
            Self::idle_close(conn, &self.ctx);
        } else if res != -libc::EINTR && res != -libc::EAGAIN {
            // Reset, broken pipe (or a 0-byte send, which would not progress).
            self.pool.release(conn.out.take().map(|out| out.buf));
            conn.closing = true;
            self.ctx.stats.conn_error();
        }
        self.advance(key);
    }

    fn on_shutdown(&mut self, key: usize, res: i32) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.shutdown_pending = false;
        // ENOTCONN: the peer is gone already, nothing left to tell it.
        if res < 0 && res != -libc::ENOTCONN {
            self.ctx.stats.conn_error();
        }
        conn.closing = true;
        self.advance(key);
    }

    /// With `--idle-timeout` only one receive or send is in flight, each
    /// with its own linked timeout; with the receive or send cancelled by
    /// it (`ECANCELED`), the connection is closed as idle.
    fn idle_close(conn: &mut Conn, ctx: &Ctx) {
        if !conn.closing {
            conn.closing = true;
            ctx.stats.idle_closed();
        }
    }

    fn on_idle_timer(&mut self, key: usize) {
        // Fired (ETIME) or cancelled because the operation completed first:
        // either way what happened shows in the operation's own completion.
        if let Some(conn) = self.conns.get_mut(key) {
            conn.timer_pending = false;
        }
        self.advance(key);
    }

    /// Submits whatever the connection needs next, or closes it.
    fn advance(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.closing {
            if conn.idle() {
                // Nothing in flight references the connection any more.
                let conn = self.conns.remove(key);
                if conn.fixed {
                    // The table holds the socket open: empty the slot, so
                    // that dropping `conn` closes it (and the key may be
                    // reused).
                    let _ = self
                        .io
                        .ring
                        .submitter()
                        .register_files_update(key as u32, &[-1]);
                }
                self.pool.release(conn.out.map(|out| out.buf));
            }
            return;
        }
        // The connection's socket as operations name it: its slot in the
        // ring's file table, or its descriptor.
        let (fixed, raw) = (conn.fixed, conn.fd.as_raw_fd());
        macro_rules! on_socket {
            ($op:ident :: new($($arg:expr),*)) => {
                if fixed {
                    opcode::$op::new(Fixed(key as u32), $($arg),*)
                } else {
                    opcode::$op::new(Fd(raw), $($arg),*)
                }
            };
        }
        let recv = match conn.own.as_mut() {
            Some(own) => on_socket!(Recv::new(own.as_mut_ptr(), own.len() as u32)).build(),
            None => on_socket!(Recv::new(ptr::null_mut(), self.pool.buf_size as u32))
                .buf_group(BGID)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT),
        }
        .user_data(token(RECV, key));
        // With --idle-timeout: a timeout linked after the receive or send,
        // which the kernel starts with it and which cancels it if it waits
        // longer. The next operation waits for the timer's own completion.
        let idle_timer = match self.idle.as_deref() {
            Some(_) if conn.timer_pending => return,
            Some(limit) => Some(
                opcode::LinkTimeout::new(limit)
                    .build()
                    .user_data(token(IDLE_TIMER, key)),
            ),
            None => None,
        };
        if let Some(out) = conn.out.as_ref() {
            if conn.send_pending {
                return;
            }
            let start = match &out.buf {
                Held::Pool(bid) => self.pool.buf(*bid),
                Held::Own(own) => own.as_ptr().cast_mut(),
            };
            // SAFETY: `sent < len <= the buffer's length`.
            let data = unsafe { start.add(out.sent as usize) };
            // MSG_WAITALL: the kernel finishes a partial send itself, so one
            // completion means all written (or an error).
            let send = on_socket!(Send::new(data, out.len - out.sent))
                .flags(libc::MSG_WAITALL | libc::MSG_NOSIGNAL)
                .build()
                .user_data(token(SEND, key));
            conn.send_pending = true;
            if let Some(timer) = idle_timer {
                conn.timer_pending = true;
                // SAFETY: as for the linked receive below; the timeout
                // reads the boxed timespec in `self.idle`, which lives as
                // long as the ring.
                unsafe { self.io.push(&[send.flags(squeue::Flags::IO_LINK), timer]) };
            } else if !conn.recv_pending && !conn.read_closed {
                // The next receive runs only after the send fully succeeded
                // (back-pressure), without another trip through this loop.
                conn.recv_pending = true;
                // SAFETY: the send reads the buffer in `out`, which belongs
                // to this connection until the send's completion; the
                // receive writes into a ring buffer or `own`, kept in the
                // connection until its completion. The connection is not
                // removed while either is in flight, and the pool outlives
                // every operation (see `stop`).
                unsafe { self.io.push(&[send.flags(squeue::Flags::IO_LINK), recv]) };
            } else {
                // SAFETY: as above.
                unsafe { self.io.push(&[send]) };
            }
        } else if conn.read_closed {
            if !conn.shutdown_pending && !conn.recv_pending {
                conn.shutdown_pending = true;
                let shutdown = on_socket!(Shutdown::new(libc::SHUT_WR))
                    .build()
                    .user_data(token(SHUTDOWN, key));
                // SAFETY: a shutdown references no memory.
                unsafe { self.io.push(&[shutdown]) };
            }
        } else if !conn.recv_pending {
            conn.recv_pending = true;
            conn.timer_pending = idle_timer.is_some();
            // SAFETY: the receive writes into a ring buffer, which outlives
            // every operation (see `stop`), or into `own`, which stays in the
            // connection until the receive completes; a linked timeout reads
            // the boxed timespec in `self.idle`, which lives as long as the
            // ring.
            unsafe {
                match idle_timer {
                    Some(timer) => self.io.push(&[recv.flags(squeue::Flags::IO_LINK), timer]),
                    None => self.io.push(&[recv]),
                }
            }
        }
    }
}
