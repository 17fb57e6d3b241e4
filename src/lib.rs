//! The c10k-echo workspace root. It holds no code of its own: the servers
//! live in `servers/`, the load generator in `loadgen/`, and `tests/` holds
//! the tests that need both (loadgen driving real servers over loopback).
