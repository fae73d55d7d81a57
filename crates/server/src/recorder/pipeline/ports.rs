//! Free loopback ports for the decoders and the encoder.

use std::io;
use std::net::Ipv4Addr;

pub(super) fn udp_port_in_use(port: u16) -> bool {
    match std::fs::read_to_string("/proc/net/udp") {
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
