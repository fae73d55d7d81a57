//! The machine's ceiling: a bare loop sending datagrams of the same size as the SFU's
//! forwarded packets with `send_to` on 127.0.0.1 (no SRTP, no SFU), to a receiver thread that
//! drains them. Its packets per second per core of the sending thread is what one core can do
//! at best for the kernel part of forwarding.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::ports;
use crate::procfs::thread_cpu;

/// One run of the loop.
#[derive(Debug, Clone, Copy)]
pub struct Ceiling {
    pub sent: u64,
    pub received: u64,
    pub wall: Duration,
    /// CPU time of the sending thread.
    pub cpu: Duration,
}

impl Ceiling {
    /// Packets per second per core of the sending thread.
    pub fn per_core(&self) -> f64 {
        self.sent as f64 / self.cpu.as_secs_f64().max(1e-9)
    }

    /// Packets per second of wall time.
    pub fn per_sec(&self) -> f64 {
        self.sent as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// A thread draining a fresh 127.0.0.1 socket (4 MiB receive buffer), handing each datagram
/// to its `each` until stopped.
struct Receiver<T> {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<T>,
}

impl<T: Send + 'static> Receiver<T> {
    fn start(
        name: &str,
        mut state: T,
        mut each: impl FnMut(&mut T, &[u8]) + Send + 'static,
    ) -> anyhow::Result<Self> {
        let rx = ports::udp_with_buffer(4 << 20)?;
        rx.set_read_timeout(Some(Duration::from_millis(50)))?;
        let addr = rx.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    let mut buf = vec![0u8; 2048];
                    loop {
                        match rx.recv(&mut buf) {
                            Ok(n) => each(&mut state, &buf[..n]),
                            Err(_) if stop.load(Ordering::Relaxed) => return state,
                            Err(_) => {}
                        }
                    }
                })?
        };
        Ok(Self { addr, stop, thread })
    }

    /// Lets the receiver drain what is queued, then stops it.
    fn finish(self) -> anyhow::Result<T> {
        std::thread::sleep(Duration::from_millis(100));
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("receiver thread panicked"))
    }
}

/// Sends `size`-byte datagrams as fast as one thread can for `dur` (bounded).
pub fn run(size: usize, dur: Duration) -> anyhow::Result<Ceiling> {
    let receiver = Receiver::start("ceiling-rx", 0u64, |n, _| *n += 1)?;
    let dst = receiver.addr;
    let tx = ports::udp()?;
    let buf = vec![0xA5u8; size];
    let cpu0 = thread_cpu()?;
    let t0 = Instant::now();
    let mut sent = 0u64;
    while t0.elapsed() < dur {
        for _ in 0..64 {
            if tx.send_to(&buf, dst).is_ok() {
                sent += 1;
            }
        }
    }
    let cpu = thread_cpu()?.saturating_sub(cpu0);
    let wall = t0.elapsed();
    let received = receiver.finish().context("ceiling")?;
    Ok(Ceiling {
        sent,
        received,
        wall,
        cpu,
    })
}

/// One-hop UDP latency on 127.0.0.1 at `rate` packets/s for `dur`: a sender paced in 1 ms
/// ticks (like the bots' publishers) stamps each datagram with its send time; a receiver
/// thread records receive time minus send time (ns). The machine's own latency at that rate,
/// with no SFU: the floor under the SFU path's figures.
pub fn hop_latency(size: usize, rate: f64, dur: Duration) -> anyhow::Result<Vec<u32>> {
    let epoch = crate::bot::epoch();
    let receiver = Receiver::start("hop-rx", Vec::new(), move |lat: &mut Vec<u32>, d| {
        if d.len() >= 8 {
            let now = Instant::now().saturating_duration_since(epoch).as_nanos();
            let mut w = [0u8; 8];
            w.copy_from_slice(&d[..8]);
            let sent = u128::from(u64::from_le_bytes(w));
            lat.push(now.saturating_sub(sent).min(u128::from(u32::MAX)) as u32);
        }
    })?;
    let dst = receiver.addr;
    let tx = ports::udp()?;
    let mut buf = vec![0x5Au8; size.max(8)];
    let t0 = Instant::now();
    let mut sent = 0u64;
    let tick = Duration::from_millis(1);
    let mut next = t0;
    while t0.elapsed() < dur {
        let due = (t0.elapsed().as_secs_f64() * rate) as u64;
        while sent < due {
            let ns = Instant::now().saturating_duration_since(epoch).as_nanos() as u64;
            buf[..8].copy_from_slice(&ns.to_le_bytes());
            let _ = tx.send_to(&buf, dst);
            sent += 1;
        }
        next += tick;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    receiver.finish().context("hop latency")
}
