//! The machine's ceiling: a bare loop sending datagrams of the same size as the SFU's
//! forwarded packets with `send_to` on 127.0.0.1 (no SRTP, no SFU), to a receiver thread that
//! drains them. Its packets per second per core of the sending thread is what one core can do
//! at best for the kernel part of forwarding.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

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

/// A UDP socket on 127.0.0.1 with a receive buffer of `rcvbuf` bytes (capped by the kernel's
/// `net.core.rmem_max`).
pub fn bind_loopback(rcvbuf: usize) -> anyhow::Result<UdpSocket> {
    let s = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // Best effort: the kernel caps it, and a smaller buffer only means earlier drops.
    let _ = s.set_recv_buffer_size(rcvbuf);
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// Sends `size`-byte datagrams as fast as one thread can for `dur` (bounded).
pub fn run(size: usize, dur: Duration) -> anyhow::Result<Ceiling> {
    let rx = bind_loopback(4 << 20)?;
    rx.set_read_timeout(Some(Duration::from_millis(50)))?;
    let dst = rx.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let receiver = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("ceiling-rx".into())
            .spawn(move || {
                let mut buf = vec![0u8; 2048];
                let mut n = 0u64;
                loop {
                    match rx.recv(&mut buf) {
                        Ok(_) => n += 1,
                        Err(_) if stop.load(Ordering::Relaxed) => return n,
                        Err(_) => {}
                    }
                }
            })?
    };
    let tx = UdpSocket::bind(("127.0.0.1", 0))?;
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
    // Let the receiver drain what is queued, then stop it.
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let received = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("ceiling receiver panicked"))
        .context("ceiling")?;
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
    let rx = bind_loopback(4 << 20)?;
    rx.set_read_timeout(Some(Duration::from_millis(50)))?;
    let dst = rx.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = crate::bot::epoch();
    let receiver = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("hop-rx".into())
            .spawn(move || {
                let mut buf = vec![0u8; 2048];
                let mut lat = Vec::new();
                loop {
                    match rx.recv(&mut buf) {
                        Ok(n) if n >= 8 => {
                            let now = Instant::now().saturating_duration_since(epoch).as_nanos();
                            let mut w = [0u8; 8];
                            w.copy_from_slice(&buf[..8]);
                            let sent = u128::from(u64::from_le_bytes(w));
                            lat.push(now.saturating_sub(sent).min(u128::from(u32::MAX)) as u32);
                        }
                        Ok(_) => {}
                        Err(_) if stop.load(Ordering::Relaxed) => return lat,
                        Err(_) => {}
                    }
                }
            })?
    };
    let tx = UdpSocket::bind(("127.0.0.1", 0))?;
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
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    receiver
        .join()
        .map_err(|_| anyhow::anyhow!("hop latency receiver panicked"))
}
