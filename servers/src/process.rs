//! `process`: not built yet.

use std::net::TcpListener;

use crate::server::{Ctx, Runner, ServerError};

pub(crate) fn start(_ctx: Ctx, _listener: TcpListener) -> Result<Runner, ServerError> {
    Err(ServerError::Io {
        what: "starting process",
        source: std::io::Error::other("not built yet"),
    })
}
