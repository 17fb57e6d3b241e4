//! Listener set-up, in one place for every style: `socket2` gives the
//! backlog, SO_REUSEADDR and optional SO_REUSEPORT that `std` does not.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

/// Default listen backlog. Linux caps it at `net.core.somaxconn`.
pub const DEFAULT_BACKLOG: i32 = 1024;

/// How to build the listening socket.
#[derive(Clone, Debug)]
pub struct ListenerOptions {
    pub backlog: i32,
    pub reuse_port: bool,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        ListenerOptions {
            backlog: DEFAULT_BACKLOG,
            reuse_port: false,
        }
    }
}

/// Binds and listens on `addr`. The listener is returned in blocking mode;
/// each style switches it to what it needs.
pub fn bind(addr: SocketAddr, opts: &ListenerOptions) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Restarting a server must not wait for TIME_WAIT of the previous one.
    socket.set_reuse_address(true)?;
    if opts.reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(opts.backlog)?;
    Ok(socket.into())
}

/// Wakes every thread blocked in `accept()` on this listener: on Linux,
/// shutting down a listening socket makes pending and future accepts fail
/// (EINVAL) and reports the socket as hung up to epoll. This is how the
/// blocking styles leave their accept loops without a self-connect.
pub(crate) fn wake_acceptors<S: std::os::fd::AsFd>(listener: &S) {
    // Errors mean the socket is already shut down or closed: nothing to wake.
    let _ = SockRef::from(listener).shutdown(std::net::Shutdown::Both);
}
