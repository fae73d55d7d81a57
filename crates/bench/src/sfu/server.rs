//! The server under test runs in a child process: this same executable started as
//! `enclave-bench sfu-server`, which starts `enclave_server::Server` (the library the `enclave` binary
//! runs) with the media runtime on 127.0.0.1, prints its addresses and serves until its
//! standard input closes or its time limit passes. A separate process makes its CPU time
//! (`/proc/<pid>/task/*/schedstat`) and memory (`VmRSS`) exactly its own, apart from the bots'.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::auth::{API_KEY, API_SECRET};

/// LiveKit token credentials of the child server.
pub(crate) const LK_KEY: &str = "bench-lk-key";
pub(crate) const LK_SECRET: &str = "bench-lk-secret-0123456789abcdef01";

/// Child side: serve until stdin closes or `max` passes.
pub(crate) fn serve(threads: usize, max: Duration) -> anyhow::Result<()> {
    // Warnings only by default (the hot path logs nothing at these levels anyway);
    // SFU_BENCH_SERVER_LOG takes an env-filter directive for debugging.
    let filter = std::env::var("SFU_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("srv")
        .enable_all()
        .build()?;
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    // The parent closes our stdin to stop us (or dies, which closes it too).
    std::thread::Builder::new()
        .name("srv-stdin".into())
        .spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            let _ = closed_tx.send(());
        })?;
    rt.block_on(async move {
        let dir = tempfile::tempdir()?;
        let mut cfg = enclave_server::ServerConfig::for_tests(dir.path(), API_KEY, API_SECRET);
        cfg.livekit.api_key = LK_KEY.into();
        cfg.livekit.secret = Some(LK_SECRET.into());
        cfg.media = Some(enclave_server::config::MediaConfig {
            // As the server's default, bandwidth estimation (and str0m's pacer) is on;
            // SFU_BENCH_BWE=0 turns it off.
            bandwidth_estimation: std::env::var("SFU_BENCH_BWE").map_or(true, |v| v != "0"),
            ..enclave_server::config::MediaConfig::loopback()
        });
        let server = enclave_server::Server::start(cfg).await?;
        let udp = server
            .app
            .media
            .as_ref()
            .context("the server started without its media runtime")?
            .udp_addr()
            .context("the server offers no UDP address")?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "READY {} {}", server.addr, udp)?;
            out.flush()?;
        }
        let _ = tokio::time::timeout(max, closed_rx).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), server.stop()).await;
        drop(dir);
        anyhow::Ok(())
    })?;
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// Parent side: the running child.
pub(crate) struct ServerProc {
    child: Child,
    stdin: Option<ChildStdin>,
    pub(crate) pid: u32,
    pub(crate) http: SocketAddr,
    pub(crate) udp: SocketAddr,
}

impl ServerProc {
    /// Starts the child and waits (bounded) for its addresses.
    pub(crate) fn start(threads: usize, max: Duration) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("own executable")?;
        // SFU_BENCH_SERVER_WRAP runs the server under a tool, e.g.
        // "valgrind --tool=massif" (whitespace-separated; the tool must exec the program in
        // the same process, as valgrind and heaptrack do, for the pid to stay the server's).
        let wrap: Vec<String> = std::env::var("SFU_BENCH_SERVER_WRAP")
            .map(|w| w.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let mut cmd = match wrap.split_first() {
            Some((tool, args)) => {
                let mut c = Command::new(tool);
                c.args(args).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        let mut child = cmd
            .arg("sfu-server")
            .arg("--server-threads")
            .arg(threads.to_string())
            .arg("--max-secs")
            .arg(max.as_secs().max(1).to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the server process")?;
        let pid = child.id();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("child stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("srv-stdout".into())
            .spawn(move || {
                let mut r = BufReader::new(stdout);
                let mut line = String::new();
                let _ = r.read_line(&mut line);
                let _ = tx.send(line);
                // Keep draining so the child never blocks on a full pipe.
                let mut rest = Vec::new();
                let _ = r.read_to_end(&mut rest);
            })?;
        let mut me = Self {
            child,
            stdin,
            pid,
            http: ([127, 0, 0, 1], 0).into(),
            udp: ([127, 0, 0, 1], 0).into(),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .context("the server process did not report its addresses in 30 s")?;
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 3 || f[0] != "READY" {
            bail!("unexpected first line from the server process: {line:?}");
        }
        me.http = f[1].parse().context("http address")?;
        me.udp = f[2].parse().context("udp address")?;
        Ok(me)
    }

    /// Closes the child's stdin (it stops itself); after 10 s, kills it by its pid.
    pub(crate) fn stop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        eprintln!(
            "server process {} did not stop in 10 s; killing it",
            self.pid
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}
