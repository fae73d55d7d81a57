//! Readings from `/proc` (Linux), for every benchmark: CPU time per thread and per process,
//! machine-wide CPU time, resident and proportional memory, the process table, UDP sockets
//! (drops, bound ports), the load average and the machine's facts.

use std::collections::HashMap;
use std::io;
use std::time::Duration;

/// Clock ticks per second of the CPU times in `/proc/<pid>/stat` and `/proc/stat` (`USER_HZ`,
/// 100 on Linux).
pub const USER_HZ: u64 = 100;

/// The numeric entries of a `/proc` directory: process ids in `/proc`, thread ids in
/// `/proc/<pid>/task`.
pub fn ids(dir: &str) -> io::Result<Vec<u32>> {
    Ok(std::fs::read_dir(dir)?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect())
}

/// The fields of a `stat` file (of a process or of a thread) the benchmarks use.
#[derive(Debug, Clone)]
pub struct Stat {
    pub ppid: u32,
    /// utime + stime, in clock ticks ([`USER_HZ`]).
    pub ticks: u64,
    /// The executable's name (`comm`, at most 15 bytes).
    pub comm: String,
}

fn parse_stat(s: &str) -> Option<Stat> {
    // The name is in parentheses and may hold spaces and parentheses itself.
    let (head, after) = s.rsplit_once(')')?;
    let comm = head.split_once('(').map(|x| x.1).unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    Some(Stat {
        ppid: f.get(1)?.parse().ok()?,
        ticks: f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?,
        comm: comm.to_owned(),
    })
}

/// CPU time (user + system) of this process's children that have exited and been waited for,
/// with their own waited-for descendants (`cutime` + `cstime` of `/proc/self/stat`, what
/// `getrusage(RUSAGE_CHILDREN)` reports), at [`USER_HZ`] resolution.
pub fn children_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (_, after) = s.rsplit_once(')')?;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(13)?.parse::<u64>().ok()? + f.get(14)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// `/proc/<pid>/stat`; `None` if the process is gone (or the file unreadable).
pub fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process on the machine, by pid.
pub fn processes() -> HashMap<u32, Stat> {
    ids("/proc")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .collect()
}

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

/// `(run, wait)` in ns of the thread whose `/proc` directory is `dir`: from `schedstat`, or,
/// on a kernel without it, the `stat` file's utime + stime (coarser, no wait time).
fn thread_times(dir: &str) -> Option<(u64, u64)> {
    schedstat(&format!("{dir}/schedstat")).ok().or_else(|| {
        let s = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
        Some((parse_stat(&s)?.ticks * (1_000_000_000 / USER_HZ), 0))
    })
}

/// CPU time and run-queue wait of every live thread of a process, by thread id.
#[derive(Debug, Clone, Default)]
pub struct CpuSample(HashMap<u32, (u64, u64)>);

fn task_dir(pid: Option<u32>) -> String {
    match pid {
        Some(p) => format!("/proc/{p}/task"),
        None => "/proc/self/task".to_owned(),
    }
}

/// Samples the CPU time of each thread of `pid` (`None`: this process).
pub fn cpu_sample(pid: Option<u32>) -> io::Result<CpuSample> {
    let base = task_dir(pid);
    let mut m = HashMap::new();
    for tid in ids(&base)? {
        // A thread may exit between the listing and the read.
        if let Some(x) = thread_times(&format!("{base}/{tid}")) {
            m.insert(tid, x);
        }
    }
    Ok(CpuSample(m))
}

/// Samples the CPU time of each thread of `pid` (`None`: this process) in two parts: the
/// threads whose name starts with `prefix`, and the others.
pub fn cpu_sample_split(pid: Option<u32>, prefix: &str) -> io::Result<(CpuSample, CpuSample)> {
    let base = task_dir(pid);
    let (mut named, mut rest) = (HashMap::new(), HashMap::new());
    for tid in ids(&base)? {
        let dir = format!("{base}/{tid}");
        let comm = std::fs::read_to_string(format!("{dir}/comm")).unwrap_or_default();
        if let Some(x) = thread_times(&dir) {
            if comm.trim_end().starts_with(prefix) {
                named.insert(tid, x);
            } else {
                rest.insert(tid, x);
            }
        }
    }
    Ok((CpuSample(named), CpuSample(rest)))
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

    /// Whether no thread was read.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
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

/// Machine-wide CPU time from the first line of `/proc/stat`, in clock ticks ([`USER_HZ`]);
/// zero where it cannot be read.
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineCpu {
    /// user + nice + system + irq + softirq (idle and iowait are not work; steal is not this
    /// machine's).
    pub busy: u64,
    /// Time the hypervisor gave this machine's CPUs to others.
    pub steal: u64,
}

/// Reads [`MachineCpu`] now.
pub fn machine_cpu() -> MachineCpu {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    MachineCpu {
        busy: if f.len() >= 7 {
            f[0] + f[1] + f[2] + f[5] + f[6]
        } else {
            0
        },
        steal: f.get(7).copied().unwrap_or(0),
    }
}

/// A `kB` field of `/proc/<pid>/status` (`"VmRSS:"`, `"VmHWM:"`).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    kb_field(
        &std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        field,
    )
}

fn kb_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Resident set size of a process, in bytes.
pub fn rss_bytes(pid: u32) -> io::Result<u64> {
    status_kb(pid, "VmRSS:")
        .map(|kb| kb * 1024)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS"))
}

/// Proportional set size of a process in kB (shared pages split among the processes mapping
/// them), from `smaps_rollup`.
pub fn pss_kb(pid: u32) -> Option<u64> {
    kb_field(
        &std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?,
        "Pss:",
    )
}

/// A process's command line, arguments joined by spaces; empty if it is gone.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// `(local port, drops)` of each IPv4 UDP socket in a `/proc/net/udp` table.
fn udp_sockets(table: &str) -> Vec<(u16, u64)> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let port = f.get(1)?.rsplit(':').next()?;
            let port = u16::from_str_radix(port, 16).ok()?;
            Some((port, f.last()?.parse::<u64>().unwrap_or(0)))
        })
        .collect()
}

/// Datagrams dropped by the kernel (receive buffer full) on IPv4 UDP sockets bound to any of
/// `ports`, from `/proc/net/udp`.
pub fn udp_drops(ports: &[u16]) -> io::Result<u64> {
    let s = std::fs::read_to_string("/proc/net/udp")?;
    Ok(udp_sockets(&s)
        .into_iter()
        .filter(|(p, _)| ports.contains(p))
        .map(|(_, d)| d)
        .sum())
}

/// Whether any process has an IPv4 UDP socket bound to `port`.
pub fn udp_port_bound(port: u16) -> bool {
    let s = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    udp_sockets(&s).into_iter().any(|(p, _)| p == port)
}

/// The load average over 1, 5 and 15 minutes, as `/proc/loadavg` gives it.
pub fn loadavg() -> Option<String> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// The CPU's model name.
pub fn cpu_model() -> Option<String> {
    std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|m| m.trim().to_owned())
    })
}

/// A kernel fact from `/proc/sys/kernel` (`ostype`: "Linux", `osrelease`: "6.1.0-…").
pub fn kernel(fact: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/kernel/{fact}"))
        .map(|s| s.trim().to_owned())
        .ok()
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
        let drops = |ports: &[u16]| {
            udp_sockets(t)
                .into_iter()
                .filter(|(p, _)| ports.contains(p))
                .map(|(_, d)| d)
                .sum::<u64>()
        };
        assert_eq!(drops(&[0xDC6D]), 5);
        assert_eq!(drops(&[0xDC6D, 0x0050, 0xA491]), 14);
        assert_eq!(drops(&[1]), 0);
    }

    #[test]
    fn a_stat_line_is_read_whatever_the_name() {
        let s = "1234 (a (b) c) S 77 1234 1234 0 -1 4194560 100 0 0 0 25 17 0 0 20 0 3 0 1 2 3";
        let st = parse_stat(s).expect("parsed");
        assert_eq!((st.ppid, st.ticks, st.comm.as_str()), (77, 42, "a (b) c"));
        assert!(parse_stat("1234 (x) S").is_none());
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
        let me = std::process::id();
        assert!(rss_bytes(me).expect("own status") > 0);
        assert!(status_kb(me, "VmHWM:").is_some_and(|kb| kb > 0));
        assert!(stat(me).is_some_and(|s| s.ppid > 0));
        assert!(processes().contains_key(&me));
        let (named, rest) = cpu_sample_split(None, "no-thread-is-named-so").expect("own /proc");
        assert!(named.is_empty() && !rest.is_empty());
        assert!(cmdline(me).contains("enclave_bench"));
    }
}
