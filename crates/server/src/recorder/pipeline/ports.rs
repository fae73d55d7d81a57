//! Free loopback ports for the decoders and the encoder.

use std::io;
use std::net::Ipv4Addr;

pub(super) fn udp_port_in_use(port: u16) -> bool {
    match read_table("/proc/net/udp") {
        // Reading the table cannot race ffmpeg's bind the way a test bind would.
        Ok(table) => {
            let suffix = format!(":{port:04X}");
            table.lines().skip(1).any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|a| a.ends_with(&suffix))
            })
        }
        Err(_) => std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_err(),
    }
}

/// A `/proc` socket table in as few reads as possible: the kernel resumes a table between two
/// reads by position, so sockets opened or closed elsewhere in between can hide an entry (seen
/// as a missed port under parallel tests); one large buffer takes it in one pass.
fn read_table(path: &str) -> io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match file.read(&mut buf[len..])? {
            0 => break,
            n => len += n,
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// An even UDP port `p` on loopback with `p + 1` also free (ffmpeg takes `p + 1` for RTCP).
/// Both are released again for ffmpeg to bind; a rare race only costs a decoder restart.
pub(super) fn free_udp_pair() -> io::Result<u16> {
    let mut last = None;
    for _ in 0..64 {
        let first = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let p = first.local_addr()?.port();
        let (rtp, other) = if p % 2 == 0 {
            match p.checked_add(1) {
                Some(q) => (p, q),
                None => continue,
            }
        } else {
            (p - 1, p - 1)
        };
        match std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, other)) {
            Ok(_) => return Ok(rtp),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::AddrNotAvailable, "no free UDP port pair")
    }))
}

pub(super) fn free_tcp_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_pairs_are_even_and_free() {
        for _ in 0..20 {
            let p = free_udp_pair().expect("a free pair");
            assert_eq!(p % 2, 0);
            let _a = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, p)).expect("rtp port free");
            let _b =
                std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, p + 1)).expect("rtcp port free");
            assert!(udp_port_in_use(p));
        }
    }
}
