//! The benchmarks' parts that a test of the server can use too: bots (str0m-based LiveKit
//! clients on real UDP sockets, see [`bot`]), their self-checking payloads, the bare UDP send
//! loop that is the SFU benchmark's ceiling, the ICE probe, `/proc` readings and ports on
//! 127.0.0.1. `enclave-bench` (the binary) runs the benchmarks with them; end-to-end tests of
//! the server use the bots as clients whose media they can count.

pub mod bot;
pub mod ceiling;
pub mod payload;
pub mod ports;
pub mod probe;
pub mod procfs;
