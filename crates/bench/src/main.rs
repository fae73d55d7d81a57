//! `enclave-bench`: the benchmarks of the real server, each on 127.0.0.1, bounded in time,
//! printing a markdown report on stdout and its progress on stderr.
//!
//! ```text
//! cargo run --release -p enclave-bench -- sfu [options]        # the SFU against the UDP ceiling
//! cargo run --release -p enclave-bench -- api [options]        # /auth against the HMAC ceiling
//! cargo run --release -p enclave-bench -- recorder [options]   # the recorder against ffmpeg
//! cargo run --release -p enclave-bench -- convert [options]    # whiteboard documents to pages
//! cargo run --release -p enclave-bench -- probe --url … --bind …   # ICE checks (tests/network)
//! ```
//!
//! The subcommands share one statistics module ([`stats`]), one `/proc` reader
//! ([`enclave_bench::procfs`]), the report helpers ([`report`]) and the ports on 127.0.0.1
//! ([`enclave_bench::ports`]).

mod api;
mod auth;
mod convert;
mod recorder;
mod report;
mod sfu;
mod stats;

use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "enclave-bench",
    about = "Benchmarks of the real server on 127.0.0.1, each against a ceiling measured in the same run"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// SFU forwarding: 1→N fan-out and N×N meetings of str0m bots against the UDP ceiling,
    /// latency at half of peak, memory per idle participant.
    Sfu(sfu::Opts),
    /// Room API throughput: createRoom, getJoinToken and isRoomActive against the HMAC check
    /// alone (closed loop), latency at half of each one's peak (open loop).
    Api(api::Opts),
    /// The cloud recorder and the RTMP broadcast of a 4-participant 720p meeting against one
    /// plain ffmpeg doing the same composition: CPU, memory, stop → finished file.
    Recorder(recorder::Opts),
    /// The whiteboard converter: a generated PDF and office document of N pages to page
    /// images, wall time and the CPU time of the tools (LibreOffice, poppler).
    Convert(convert::Opts),
    /// Joins a room through a `/rtc` URL (with its token) and runs ICE checks against every
    /// address the server offers; prints what went where as JSON (`enclave_bench::probe`).
    /// The network-namespace suite (tests/network) uses it.
    Probe {
        /// The `/rtc` WebSocket URL, access token included.
        #[arg(long)]
        url: String,
        /// The local address to check from.
        #[arg(long)]
        bind: std::net::IpAddr,
        /// Check over TCP (the first TCP candidate) instead of UDP.
        #[arg(long)]
        tcp: bool,
        #[arg(long, default_value_t = 4)]
        secs: u64,
    },
    /// Internal: the server under test of `sfu` (started by the benchmark itself).
    #[command(hide = true)]
    SfuServer {
        #[arg(long, default_value_t = 2)]
        server_threads: usize,
        #[arg(long, default_value_t = 900)]
        max_secs: u64,
    },
    /// Internal: one phase of `recorder` in its own process (started by the benchmark itself).
    #[command(hide = true)]
    RecorderWorker(recorder::WorkerOpts),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Sfu(opts) => sfu::run(opts),
        Cmd::Api(opts) => api::run(opts),
        Cmd::Recorder(opts) => recorder::run(opts),
        Cmd::Convert(opts) => convert::run(opts),
        Cmd::RecorderWorker(w) => recorder::run_worker(w),
        Cmd::SfuServer {
            server_threads,
            max_secs,
        } => sfu::server::serve(server_threads, Duration::from_secs(max_secs)),
        Cmd::Probe {
            url,
            bind,
            tcp,
            secs,
        } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let seen = rt.block_on(enclave_bench::probe::probe(
                &url,
                bind,
                tcp,
                Duration::from_secs(secs),
            ))?;
            println!("{}", seen.to_json());
            Ok(())
        }
    }
}
