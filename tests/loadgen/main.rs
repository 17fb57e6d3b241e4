//! loadgen against real servers: the styles in-process, and a deliberately
//! broken server that drops, flips, stalls, closes early or is not there.
//! Every run is short and bounded; every socket is on 127.0.0.1:0.

#[path = "../../loadgen/tests/common/support.rs"]
mod support;

mod broken;
mod engine;
mod faults;
mod merge;
mod verdicts;
