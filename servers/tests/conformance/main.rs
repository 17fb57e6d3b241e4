//! The conformance suite: every style in `Style::ALL` must be the same echo
//! service, under good clients and bad ones. Each test runs its check for
//! every style (a new style gets the whole suite by joining `Style::ALL`)
//! and reports every style that failed, not just the first.
//!
//! Everything goes over real sockets on 127.0.0.1:0; every wait is bounded.

mod support;

mod behaviour;
mod chunking;
mod process;

use std::panic::{AssertUnwindSafe, catch_unwind};

use servers::Style;

/// Runs `check` for every style; fails naming each style whose check failed.
pub fn for_each_style(check: impl Fn(Style)) {
    let failed: Vec<&str> = Style::ALL
        .iter()
        .filter(|&&style| catch_unwind(AssertUnwindSafe(|| check(style))).is_err())
        .map(|style| style.name())
        .collect();
    assert!(failed.is_empty(), "failed for: {}", failed.join(", "));
}
