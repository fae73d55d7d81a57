//! Sockets and free ports on 127.0.0.1: the one place the benchmarks, their helpers and the
//! tests get them from.

use std::io;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};

/// A UDP socket on 127.0.0.1, on a port the kernel picks.
pub fn udp() -> io::Result<UdpSocket> {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
}

/// A UDP socket on 127.0.0.1 with a receive buffer of `rcvbuf` bytes (capped by the kernel's
/// `net.core.rmem_max`).
pub fn udp_with_buffer(rcvbuf: usize) -> io::Result<UdpSocket> {
    let s = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // Best effort: the kernel caps it, and a smaller buffer only means earlier drops.
    let _ = s.set_recv_buffer_size(rcvbuf);
    let addr: std::net::SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// An even UDP port and the odd one above it, both bound (RTP and its RTCP, as ffmpeg's RTP
/// muxer pairs them).
pub fn udp_pair() -> io::Result<(UdpSocket, UdpSocket)> {
    for _ in 0..128 {
        let a = udp()?;
        let p = a.local_addr()?.port();
        if p % 2 != 0 || p == u16::MAX {
            continue;
        }
        if let Ok(b) = UdpSocket::bind((Ipv4Addr::LOCALHOST, p + 1)) {
            return Ok((a, b));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no free even UDP port pair on 127.0.0.1",
    ))
}

/// A UDP port on 127.0.0.1 that was free a moment ago (for a program that binds it itself).
pub fn free_udp_port() -> io::Result<u16> {
    Ok(udp()?.local_addr()?.port())
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for a program that listens on it
/// itself).
pub fn free_tcp_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_even_and_odd() {
        let (a, b) = udp_pair().expect("a pair");
        let p = a.local_addr().expect("bound").port();
        assert_eq!(p % 2, 0);
        assert_eq!(b.local_addr().expect("bound").port(), p + 1);
        assert!(free_tcp_port().expect("a port") > 0);
        assert!(free_udp_port().expect("a port") > 0);
    }
}
