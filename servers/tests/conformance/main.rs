//! The conformance suite: every style in `Style::ALL` must be the same echo
//! service, under good clients and bad ones. Each test runs its check for
//! every style (a new style gets the whole suite by joining `Style::ALL`)
//! and reports every style that failed, not just the first.
//!
//! Everything goes over real sockets on 127.0.0.1:0; every wait is bounded.

mod procs;
mod support;

mod behaviour;
mod chunking;
mod edges;
mod forking;
mod idle;
mod process;

use std::panic::{AssertUnwindSafe, catch_unwind};

use servers::Style;

/// The styles under test: all of [`Style::ALL`], or, while working on some,
/// the comma-separated names in `CONFORMANCE_STYLES` (a developer's aid; CI
/// leaves it unset and so tests every style).
pub fn styles() -> Vec<Style> {
    match std::env::var("CONFORMANCE_STYLES") {
        Ok(names) if !names.trim().is_empty() => names
            .split(',')
            .map(|n| {
                Style::from_name(n.trim())
                    .unwrap_or_else(|| panic!("CONFORMANCE_STYLES names no style {n:?}"))
            })
            .collect(),
        _ => Style::ALL.to_vec(),
    }
}

/// Runs `check` for every style; fails naming each style whose check failed.
pub fn for_each_style(check: impl Fn(Style)) {
    let failed: Vec<&str> = styles()
        .into_iter()
        .filter(|&style| catch_unwind(AssertUnwindSafe(|| check(style))).is_err())
        .map(|style| style.name())
        .collect();
    assert!(failed.is_empty(), "failed for: {}", failed.join(", "));
}
