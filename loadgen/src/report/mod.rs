//! Everything a person reads: one run's text, JSON and CSV ([`run`]), and a
//! comparison's markdown ([`compare`], its cost tables in [`cost`], the perf
//! profile's tables and targets in [`perf`]) and SVG charts ([`charts`]).
//! Reads [`crate::results`] and the comparison's model; runs nothing.

pub mod charts;
pub mod compare;
pub mod cost;
pub mod perf;
pub mod run;

pub use run::{
    csv_header, csv_row, first_reply_line, fmt_us, json, memory_label, sampling_note, text,
};
