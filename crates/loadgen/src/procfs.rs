//! Readings from `/proc`: CPU time per process (summed over its threads, in nanoseconds),
//! resident memory, per-socket UDP drops.

use std::collections::HashMap;
use std::io;
use std::time::Duration;

/// CPU time and run-queue wait of every live thread of a process, by thread id.
#[derive(Debug, Clone, Default)]
pub struct CpuSample(HashMap<u32, (u64, u64)>);

/// `(time on a CPU, time runnable but waiting for a CPU)` in ns, from a `schedstat` file.
fn schedstat(path: &str) -> io::Result<(u64, u64)> {
    let s = std::fs::read_to_string(path)?;
    let mut f = s.split_whitespace().map(|x| x.parse::<u64>().ok());
    match (f.next().flatten(), f.next().flatten()) {
        (Some(run), Some(wait)) => Ok((run, wait)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{path}: {s:?}"),
        )),
    }
}

/// Samples the CPU time of each thread of `pid` (`None`: this process).
pub fn cpu_sample(pid: Option<u32>) -> io::Result<CpuSample> {
    let base = match pid {
        Some(p) => format!("/proc/{p}/task"),
        None => "/proc/self/task".to_owned(),
    };
    let mut m = HashMap::new();
    for e in std::fs::read_dir(&base)? {
        let e = e?;
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        // A thread may exit between the listing and the read.
        if let Ok(x) = schedstat(&format!("{base}/{tid}/schedstat")) {
            m.insert(tid, x);
        }
    }
    Ok(CpuSample(m))
}

impl CpuSample {
    /// CPU time spent between `earlier` and `self` by the threads alive at `self` (a thread
    /// that exited in between is not counted; threads born in between count in full).
    pub fn since(&self, earlier: &CpuSample) -> Duration {
        self.delta(earlier, |x| x.0)
    }

    /// Time the threads spent runnable but waiting for a CPU (other processes had it), between
    /// `earlier` and `self`.
    pub fn waited_since(&self, earlier: &CpuSample) -> Duration {
        self.delta(earlier, |x| x.1)
    }

    fn delta(&self, earlier: &CpuSample, f: fn((u64, u64)) -> u64) -> Duration {
        let ns: u64 = self
            .0
            .iter()
            .map(|(tid, x)| f(*x).saturating_sub(earlier.0.get(tid).map_or(0, |e| f(*e))))
            .sum();
        Duration::from_nanos(ns)
    }
}

/// CPU time of the calling thread.
pub fn thread_cpu() -> io::Result<Duration> {
    schedstat("/proc/thread-self/schedstat").map(|x| Duration::from_nanos(x.0))
}

/// Resident set size of a process, in bytes.
pub fn rss_bytes(pid: u32) -> io::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS"))
}

/// Datagrams dropped by the kernel (receive buffer full) on IPv4 UDP sockets bound to any of
/// `ports`, from `/proc/net/udp`.
pub fn udp_drops(ports: &[u16]) -> io::Result<u64> {
    let s = std::fs::read_to_string("/proc/net/udp")?;
    Ok(parse_udp_drops(&s, ports))
}

fn parse_udp_drops(table: &str, ports: &[u16]) -> u64 {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let port = f.get(1)?.rsplit(':').next()?;
            let port = u16::from_str_radix(port, 16).ok()?;
            if !ports.contains(&port) {
                return None;
            }
            f.last()?.parse::<u64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_read_per_port() {
        let t = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                 1260: 0100007F:DC6D 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 240689 2 000000000d333da1 5\n\
                 3344: 0100007F:A491 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 240707 2 0000000017cb767d 0\n\
                 3345: 0100007F:0050 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 240708 2 0000000017cb767d 9\n";
        assert_eq!(parse_udp_drops(t, &[0xDC6D]), 5);
        assert_eq!(parse_udp_drops(t, &[0xDC6D, 0x0050, 0xA491]), 14);
        assert_eq!(parse_udp_drops(t, &[1]), 0);
    }

    #[test]
    fn this_process_can_be_read() {
        let a = cpu_sample(None).expect("own /proc");
        // The kernel updates these counters on ticks and switches: work until they move
        // (bounded).
        let start = std::time::Instant::now();
        let mut x = 0u64;
        // `schedstat` of a running thread shows its runtime as of its last tick or switch, so
        // a fresh test thread may read zero until then: yield to force a switch.
        let (mut process_moved, mut thread_moved) = (false, false);
        while !(process_moved && thread_moved) && start.elapsed() < Duration::from_secs(10) {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
            std::thread::yield_now();
            process_moved = cpu_sample(None).expect("own /proc").since(&a) > Duration::ZERO;
            thread_moved = thread_cpu().expect("own thread") > Duration::ZERO;
        }
        assert!(process_moved, "process CPU time never advanced");
        assert!(thread_moved, "thread CPU time never advanced");
        assert!(rss_bytes(std::process::id()).expect("own status") > 0);
    }
}
