//! The load generator's parts that drive a real server: bots (str0m-based LiveKit clients on
//! real UDP sockets, see [`bot`]), their self-checking payloads, the bare UDP send loop that is
//! the benchmark's ceiling, and `/proc` sampling. `sfu-bench` (the binary) runs scenarios with
//! them; end-to-end tests of the server use the bots as clients whose media they can count.

pub mod bot;
pub mod ceiling;
pub mod payload;
pub mod probe;
pub mod procfs;
