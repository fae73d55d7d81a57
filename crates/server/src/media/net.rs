//! The media runtime's sockets: UDP on every local address (IPv4, and IPv6 where the host has
//! it) and ICE over TCP, with each reply leaving from the address its request came to.
//!
//! A wildcard-bound UDP socket that lets the kernel choose a reply's source breaks ICE on any
//! host with more than one address: a client that sent its check to address A drops an answer
//! that comes from address B. So every datagram's destination is read (`IP_PKTINFO` /
//! `IPV6_RECVPKTINFO`, through `quinn-udp`) and every reply names its source. The rooms see
//! only advertised addresses; [`AddrMap`] translates to and from the local ones (they differ
//! behind 1:1 NAT).
//!
//! TCP connections (RFC 4571: each packet behind a two-byte length) are tasks of their own;
//! their frames reach the worker through a bounded queue, and what the worker sends them goes
//! into a bounded queue per connection that drops when full, so a slow TCP peer loses its own
//! packets and never holds the room back.

use std::collections::HashMap;
use std::io::IoSliceMut;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt as _};
use quinn_udp::{RecvMeta, UdpSocketState};
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

use enclave_sfu::{LocalCandidate, Transport};

use crate::config::{MediaAddr, MediaConfig};

/// Requested size of the UDP sockets' kernel buffers.
const SOCKET_BUFFER: usize = 4 << 20;
/// Datagrams read per system call (`recvmmsg`).
const RECV_BATCH: usize = 16;
/// Room for one read: with UDP GRO the kernel may hand several datagrams from one peer over
/// as one buffer (split by `RecvMeta::stride`), up to 64 KiB.
const RECV_SLOT: usize = 64 * 1024;

/// TCP media connections at most, and from one IP address at most.
const MAX_TCP_CONNS: usize = 2048;
const MAX_TCP_CONNS_PER_IP: usize = 32;
/// A TCP connection must say something (its first ICE check) within this, and then never
/// fall silent this long (ICE consent checks come every few seconds).
const TCP_FIRST_FRAME: Duration = Duration::from_secs(10);
const TCP_IDLE: Duration = Duration::from_secs(30);
/// Frames queued towards one TCP peer before more are dropped (about 0.3 s of a 720p call).
const TCP_SEND_QUEUE: usize = 256;
/// Frames from all TCP peers queued towards the worker.
const TCP_INBOUND_QUEUE: usize = 4096;

/// Advertised addresses and the local ones they stand for.
#[derive(Debug, Clone, Default)]
pub(crate) struct AddrMap {
    addrs: Vec<MediaAddr>,
}

impl AddrMap {
    pub(crate) fn new(addrs: Vec<MediaAddr>) -> Self {
        Self { addrs }
    }

    /// The advertised address a datagram that arrived at local address `local` was sent to.
    /// An address that is advertised as it is maps to itself; a NAT's private side to its
    /// public address; an unknown local address to the only advertised address of its family
    /// whose local side is unknown (a `node_ip` that is not on any interface), else to itself.
    pub(crate) fn advertised(&self, local: IpAddr) -> IpAddr {
        if let Some(a) = self.addrs.iter().find(|a| a.local == Some(local)) {
            return a.advertised;
        }
        let mut unknown = self
            .addrs
            .iter()
            .filter(|a| a.local.is_none() && a.advertised.is_ipv4() == local.is_ipv4());
        match (unknown.next(), unknown.next()) {
            (Some(a), None) => a.advertised,
            _ => local,
        }
    }

    /// The local address to send from when the room sends from `advertised`; None lets the
    /// kernel choose (an advertised address whose local side is unknown).
    pub(crate) fn local(&self, advertised: IpAddr) -> Option<IpAddr> {
        match self.addrs.iter().find(|a| a.advertised == advertised) {
            Some(a) => a.local,
            None => Some(advertised),
        }
    }

    /// The advertised IPs, in order.
    pub(crate) fn advertised_ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.addrs.iter().map(|a| a.advertised)
    }
}

/// A datagram or TCP frame for the worker.
pub(crate) struct Incoming<'a> {
    pub(crate) transport: Transport,
    pub(crate) source: SocketAddr,
    /// Our advertised address it was sent to.
    pub(crate) destination: SocketAddr,
    pub(crate) contents: &'a [u8],
}

/// What TCP connection tasks tell the worker.
pub(crate) enum TcpEvent {
    /// A connection from `remote` to our `local` address is up; frames for it go to `tx`.
    Open {
        remote: SocketAddr,
        local: SocketAddr,
        tx: mpsc::Sender<Bytes>,
    },
    /// One RFC 4571 frame.
    Frame { remote: SocketAddr, data: BytesMut },
    /// The connection is gone.
    Closed { remote: SocketAddr },
}

/// One UDP socket with its `quinn-udp` state (which reads and writes the packet-info control
/// messages).
struct Udp {
    socket: UdpSocket,
    state: UdpSocketState,
}

/// A TCP peer as the worker knows it.
struct TcpPeer {
    /// Our advertised address it connected to.
    local: SocketAddr,
    tx: mpsc::Sender<Bytes>,
    /// A room accepted one of its frames; until then a frame no room wants closes it.
    admitted: bool,
}

/// The sockets of one media worker.
pub(crate) struct Net {
    udp4: Option<Udp>,
    udp6: Option<Udp>,
    pub(crate) map: AddrMap,
    pub(crate) udp_port: u16,
    pub(crate) tcp_port: Option<u16>,
    tcp: HashMap<SocketAddr, TcpPeer>,
    pub(crate) tcp_events: Option<mpsc::Receiver<TcpEvent>>,
}

/// Receive buffers, kept by the worker across reads.
pub(crate) struct RecvBufs {
    slots: Vec<Vec<u8>>,
    meta: Vec<RecvMeta>,
    /// The datagrams of the last read.
    list: Vec<Datagram>,
}

/// Where one received datagram is in [`RecvBufs`].
#[derive(Debug, Clone, Copy)]
struct Datagram {
    source: SocketAddr,
    /// Our advertised address it was sent to.
    destination: SocketAddr,
    slot: usize,
    start: usize,
    end: usize,
}

impl RecvBufs {
    pub(crate) fn new() -> Self {
        Self {
            slots: (0..RECV_BATCH).map(|_| vec![0u8; RECV_SLOT]).collect(),
            meta: vec![RecvMeta::default(); RECV_BATCH],
            list: Vec::with_capacity(RECV_BATCH),
        }
    }

    /// How many datagrams the last read brought.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// The `i`th datagram of the last read.
    pub(crate) fn get(&self, i: usize) -> Option<Incoming<'_>> {
        let d = self.list.get(i)?;
        Some(Incoming {
            transport: Transport::Udp,
            source: d.source,
            destination: d.destination,
            contents: self.slots.get(d.slot)?.get(d.start..d.end)?,
        })
    }
}

/// Which UDP socket.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Net {
    /// Binds the UDP sockets (and the TCP listener, whose accept loop runs as its own task).
    pub(crate) fn bind(cfg: &MediaConfig) -> std::io::Result<Self> {
        let want_v6 = cfg.addresses.iter().any(|a| a.advertised.is_ipv6());
        let (udp4, udp6) = match cfg.bind_ip {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                let v4 = bind_udp(SocketAddr::new(cfg.bind_ip, cfg.udp_port))?;
                let port = v4.socket.local_addr()?.port();
                // IPv6 beside it when something is advertised on IPv6; a host without IPv6
                // just has no such address.
                let v6 = if want_v6 {
                    match bind_udp(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port)) {
                        Ok(s) => Some(s),
                        Err(e) => {
                            tracing::warn!(error = %e, "no IPv6 media socket; IPv6 clients cannot send media");
                            None
                        }
                    }
                } else {
                    None
                };
                (Some(v4), v6)
            }
            IpAddr::V4(_) => (
                Some(bind_udp(SocketAddr::new(cfg.bind_ip, cfg.udp_port))?),
                None,
            ),
            IpAddr::V6(_) => (
                None,
                Some(bind_udp(SocketAddr::new(cfg.bind_ip, cfg.udp_port))?),
            ),
        };
        let udp_port = udp4
            .as_ref()
            .or(udp6.as_ref())
            .map(|u| u.socket.local_addr().map(|a| a.port()))
            .transpose()?
            .unwrap_or(cfg.udp_port);
        let mut net = Self {
            udp4,
            udp6,
            map: AddrMap::new(cfg.addresses.clone()),
            udp_port,
            tcp_port: None,
            tcp: HashMap::new(),
            tcp_events: None,
        };
        if let Some(port) = cfg.tcp_port {
            let bind = match cfg.bind_ip {
                IpAddr::V4(ip) if ip.is_unspecified() && want_v6 => {
                    // One dual-stack listener serves both families.
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                }
                ip => ip,
            };
            let listener = bind_tcp(SocketAddr::new(bind, port))
                .or_else(|_| bind_tcp(SocketAddr::new(cfg.bind_ip, port)))?;
            net.tcp_port = Some(listener.local_addr()?.port());
            let (tx, rx) = mpsc::channel(TCP_INBOUND_QUEUE);
            net.tcp_events = Some(rx);
            tokio::spawn(accept_loop(listener, tx));
        }
        Ok(net)
    }

    /// The ICE candidates every participant is offered: each advertised address over UDP,
    /// then each over TCP.
    pub(crate) fn candidates(&self) -> Vec<LocalCandidate> {
        let udp = self.map.advertised_ips().map(|ip| LocalCandidate {
            transport: Transport::Udp,
            addr: SocketAddr::new(ip, self.udp_port),
        });
        let tcp = self.tcp_port.into_iter().flat_map(|port| {
            self.map.advertised_ips().map(move |ip| LocalCandidate {
                transport: Transport::Tcp,
                addr: SocketAddr::new(ip, port),
            })
        });
        udp.chain(tcp).collect()
    }

    /// Waits until a UDP socket has something to read.
    pub(crate) async fn readable(&self) -> Family {
        async fn ready(u: Option<&Udp>) {
            match u {
                Some(u) => {
                    let _ = u.socket.readable().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            () = ready(self.udp4.as_ref()) => Family::V4,
            () = ready(self.udp6.as_ref()) => Family::V6,
        }
    }

    /// Reads a batch of datagrams from one socket into `bufs` ([`RecvBufs::datagrams`] lists
    /// them, several per buffer with GRO). Returns how many buffers were read; 0 when nothing
    /// was waiting.
    pub(crate) fn recv_batch(&self, family: Family, bufs: &mut RecvBufs) -> usize {
        bufs.list.clear();
        let Some(u) = (match family {
            Family::V4 => self.udp4.as_ref(),
            Family::V6 => self.udp6.as_ref(),
        }) else {
            return 0;
        };
        let mut slices: Vec<IoSliceMut<'_>> =
            bufs.slots.iter_mut().map(|b| IoSliceMut::new(b)).collect();
        let n = match u.socket.try_io(Interest::READABLE, || {
            u.state
                .recv((&u.socket).into(), &mut slices, &mut bufs.meta)
        }) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return 0,
            Err(e) => {
                // An ICMP error for an earlier send, say; the socket itself is fine.
                tracing::trace!(error = %e, "media receive failed");
                return 1;
            }
        };
        for (slot, meta) in bufs.meta.iter().enumerate().take(n) {
            let local = meta.dst_ip.unwrap_or(match family {
                Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            });
            let destination = SocketAddr::new(self.map.advertised(local), self.udp_port);
            let source = unmap(meta.addr);
            let stride = meta.stride.clamp(1, RECV_SLOT);
            let mut start = 0;
            while start < meta.len.min(RECV_SLOT) {
                let end = (start + stride).min(meta.len);
                bufs.list.push(Datagram {
                    source,
                    destination,
                    slot,
                    start,
                    end,
                });
                start = end;
            }
        }
        n
    }

    /// Sends what a room wants sent, from the local address behind `source`. Never waits: a
    /// full socket buffer or TCP queue drops the packet (media is loss-tolerant and ICE
    /// retries).
    pub(crate) fn send(
        &self,
        transport: Transport,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        match transport {
            Transport::Udp => {
                let u = if destination.is_ipv4() {
                    self.udp4.as_ref()
                } else {
                    self.udp6.as_ref()
                };
                let Some(u) = u else {
                    return;
                };
                let t = quinn_udp::Transmit {
                    destination,
                    ecn: None,
                    contents,
                    segment_size: None,
                    src_ip: self.map.local(source.ip()),
                };
                if let Err(e) = u.socket.try_io(Interest::WRITABLE, || {
                    u.state.try_send((&u.socket).into(), &t)
                }) {
                    tracing::trace!(error = %e, to = %destination, "media send dropped");
                }
            }
            Transport::Tcp => {
                if let Some(p) = self.tcp.get(&destination) {
                    if p.tx.try_send(Bytes::copy_from_slice(contents)).is_err() {
                        tracing::trace!(to = %destination, "TCP media peer too slow; frame dropped");
                    }
                }
            }
        }
    }

    /// Applies a TCP event; a frame is returned for the rooms.
    pub(crate) fn on_tcp_event(
        &mut self,
        e: TcpEvent,
    ) -> Option<(SocketAddr, SocketAddr, BytesMut)> {
        match e {
            TcpEvent::Open { remote, local, tx } => {
                let local = SocketAddr::new(self.map.advertised(unmap(local).ip()), local.port());
                self.tcp.insert(
                    remote,
                    TcpPeer {
                        local,
                        tx,
                        admitted: false,
                    },
                );
                None
            }
            TcpEvent::Frame { remote, data } => {
                let p = self.tcp.get(&remote)?;
                Some((remote, p.local, data))
            }
            TcpEvent::Closed { remote } => {
                self.tcp.remove(&remote);
                None
            }
        }
    }

    /// A room took (`true`) or nobody took (`false`) a frame of the TCP peer `remote`. A peer
    /// whose frames no room wants before any was taken is closed: it is not a participant.
    pub(crate) fn tcp_frame_taken(&mut self, remote: SocketAddr, taken: bool) {
        if let Some(p) = self.tcp.get_mut(&remote) {
            if taken {
                p.admitted = true;
            } else if !p.admitted {
                tracing::debug!(%remote, "TCP media connection not for any room; closing");
                self.tcp.remove(&remote); // dropping the sender ends its task
            }
        }
    }
}

/// An IPv4 address seen through a dual-stack IPv6 socket (`::ffff:a.b.c.d`) as itself.
fn unmap(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => a,
        },
        SocketAddr::V4(_) => a,
    }
}

fn bind_udp(addr: SocketAddr) -> std::io::Result<Udp> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if addr.is_ipv6() {
        // The IPv4 socket serves IPv4; this one IPv6 alone, on the same port.
        socket.set_only_v6(true)?;
    }
    // A deep receive buffer turns a scheduling stall into delay rather than loss; the kernel
    // caps it at net.core.rmem_max, and a refusal only costs that headroom.
    for (what, r) in [
        ("receive", socket.set_recv_buffer_size(SOCKET_BUFFER)),
        ("send", socket.set_send_buffer_size(SOCKET_BUFFER)),
    ] {
        if let Err(e) = r {
            tracing::warn!(error = %e, "could not enlarge the media socket's {what} buffer");
        }
    }
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    let socket: std::net::UdpSocket = socket.into();
    let state = UdpSocketState::new((&socket).into())?;
    let socket = UdpSocket::from_std(socket)?;
    Ok(Udp { socket, state })
}

fn bind_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

/// Accepts TCP media connections, each into a task of its own, within the caps.
async fn accept_loop(listener: TcpListener, events: mpsc::Sender<TcpEvent>) {
    let all = Arc::new(Semaphore::new(MAX_TCP_CONNS));
    let per_ip: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors, say: wait rather than spin.
                tracing::warn!(error = %e, "TCP media accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if events.is_closed() {
            return; // the worker is gone
        }
        let remote = unmap(remote);
        let Ok(permit) = all.clone().try_acquire_owned() else {
            tracing::warn!(%remote, "too many TCP media connections; refused");
            continue;
        };
        {
            let mut m = per_ip.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.entry(remote.ip()).or_default();
            if *n >= MAX_TCP_CONNS_PER_IP {
                tracing::warn!(%remote, "too many TCP media connections from one address; refused");
                continue;
            }
            *n += 1;
        }
        let per_ip = per_ip.clone();
        let events = events.clone();
        tokio::spawn(async move {
            tcp_conn(stream, remote, events, permit).await;
            let mut m = per_ip.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = m.get_mut(&remote.ip()) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&remote.ip());
                }
            }
        });
    }
}

/// The RFC 4571 framing: a two-byte big-endian length, then the packet.
fn rfc4571() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(2)
        .max_frame_length(u16::MAX as usize)
        .new_codec()
}

/// One TCP media connection: frames in go to the worker, frames from the worker go out.
async fn tcp_conn(
    stream: TcpStream,
    remote: SocketAddr,
    events: mpsc::Sender<TcpEvent>,
    _permit: OwnedSemaphorePermit,
) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let mut frames_in = FramedRead::new(rd, rfc4571());
    let mut frames_out = FramedWrite::new(wr, rfc4571());
    let (tx, mut rx) = mpsc::channel::<Bytes>(TCP_SEND_QUEUE);
    if events
        .send(TcpEvent::Open { remote, local, tx })
        .await
        .is_err()
    {
        return;
    }
    let reader = async {
        let mut limit = TCP_FIRST_FRAME;
        loop {
            match tokio::time::timeout(limit, frames_in.next()).await {
                Ok(Some(Ok(data))) => {
                    limit = TCP_IDLE;
                    // A full queue means the worker is behind: drop, as UDP would.
                    match events.try_send(TcpEvent::Frame { remote, data }) {
                        Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                        Err(mpsc::error::TrySendError::Closed(_)) => return,
                    }
                }
                Ok(Some(Err(e))) => {
                    tracing::debug!(%remote, error = %e, "TCP media connection broke");
                    return;
                }
                Ok(None) => return,
                Err(_) => {
                    tracing::debug!(%remote, "TCP media connection silent; closing");
                    return;
                }
            }
        }
    };
    let writer = async {
        // Ends when the worker drops the sender (the peer is closed or not wanted).
        while let Some(frame) = rx.recv().await {
            if frames_out.feed(frame).await.is_err() {
                return;
            }
            // Write what else is queued in the same flush.
            while let Ok(frame) = rx.try_recv() {
                if frames_out.feed(frame).await.is_err() {
                    return;
                }
            }
            if SinkExt::<Bytes>::flush(&mut frames_out).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = reader => {}
        () = writer => {}
    }
    let _ = events.send(TcpEvent::Closed { remote }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(advertised: &str, local: Option<&str>) -> MediaAddr {
        MediaAddr {
            advertised: advertised.parse().unwrap(),
            local: local.map(|l| l.parse().unwrap()),
        }
    }

    #[test]
    fn an_interface_address_maps_to_itself_both_ways() {
        let m = AddrMap::new(vec![
            addr("10.0.0.5", Some("10.0.0.5")),
            addr("192.168.1.5", Some("192.168.1.5")),
        ]);
        for ip in ["10.0.0.5", "192.168.1.5"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(m.advertised(ip), ip);
            assert_eq!(m.local(ip), Some(ip));
        }
    }

    #[test]
    fn a_nat_public_address_stands_for_its_private_base() {
        let m = AddrMap::new(vec![addr("203.0.113.7", Some("10.0.0.5"))]);
        let public: IpAddr = "203.0.113.7".parse().unwrap();
        let private: IpAddr = "10.0.0.5".parse().unwrap();
        assert_eq!(m.advertised(private), public);
        assert_eq!(m.local(public), Some(private));
    }

    #[test]
    fn a_configured_address_not_on_any_interface_takes_what_arrives_on_its_family() {
        let m = AddrMap::new(vec![addr("203.0.113.7", None)]);
        let public: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(m.advertised("10.0.0.5".parse().unwrap()), public);
        // The kernel picks the source: we do not know which local address is behind it.
        assert_eq!(m.local(public), None);
        // IPv6 traffic is not for it.
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(m.advertised(v6), v6);
    }

    #[test]
    fn dual_stack_sources_are_seen_as_ipv4() {
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:5000".parse().unwrap();
        assert_eq!(
            unmap(mapped),
            "10.1.2.3:5000".parse::<SocketAddr>().unwrap()
        );
        let v6: SocketAddr = "[2001:db8::1]:5000".parse().unwrap();
        assert_eq!(unmap(v6), v6);
    }
}
