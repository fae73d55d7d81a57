//! An ICE probe: joins a room, answers the server's subscriber offer with a str0m client that
//! runs connectivity checks against every address the server offers, and records where each
//! check went and where each answer came from. Reachability tests use it to show that a check
//! sent to one of the server's addresses is answered from that same address.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use enclave_sfu::proto::{
    self as lk, signal_request::Message as Req, signal_response::Message as Resp,
};
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use str0m::change::SdpOffer;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message as Ws;

/// What the probe saw.
#[derive(Debug, Default)]
pub struct IceProbe {
    /// The server's UDP candidates, from its offer.
    pub offered_udp: BTreeSet<SocketAddr>,
    /// The server's TCP candidates, from its offer.
    pub offered_tcp: BTreeSet<SocketAddr>,
    /// Where our checks (and anything else) went.
    pub sent_to: BTreeSet<SocketAddr>,
    /// Where every datagram we received came from.
    pub answered_from: BTreeSet<SocketAddr>,
    /// The TURN/STUN servers the join response named.
    pub ice_servers: Vec<lk::IceServer>,
    /// ICE reached connected.
    pub connected: bool,
}

impl IceProbe {
    /// The addresses and the outcome as one line of JSON (addresses need no escaping).
    pub fn to_json(&self) -> String {
        let list = |s: &BTreeSet<SocketAddr>| {
            let items: Vec<String> = s.iter().map(|a| format!("\"{a}\"")).collect();
            format!("[{}]", items.join(","))
        };
        format!(
            r#"{{"offered_udp":{},"offered_tcp":{},"sent_to":{},"answered_from":{},"connected":{}}}"#,
            list(&self.offered_udp),
            list(&self.offered_tcp),
            list(&self.sent_to),
            list(&self.answered_from),
            self.connected
        )
    }
}

/// Joins through `ws_url` (a `/rtc` URL with its token), checks every offered UDP candidate
/// from a socket on `bind` for `for_` (or, with `tcp`, connects to the first offered TCP
/// candidate and checks over that connection, RFC 4571 framed), and reports.
pub async fn probe(
    ws_url: &str,
    bind: IpAddr,
    tcp: bool,
    for_: Duration,
) -> anyhow::Result<IceProbe> {
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url)
        .await
        .context("signalling connection")?;
    let mut seen = IceProbe::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // The join response, then the server's subscriber offer.
    let offer = loop {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .context("no subscriber offer within 10 s")?
            .context("signalling closed before the offer")??;
        let Ws::Binary(b) = m else { continue };
        match lk::SignalResponse::decode(b.as_ref())?.message {
            Some(Resp::Join(j)) => seen.ice_servers = j.ice_servers,
            Some(Resp::Offer(o)) => break o,
            _ => {}
        }
    };
    for line in offer.sdp.lines() {
        if let Some(c) = line.strip_prefix("a=") {
            if let Ok(c) = Candidate::from_sdp_string(c) {
                match c.proto() {
                    Protocol::Udp => seen.offered_udp.insert(c.addr()),
                    _ => seen.offered_tcp.insert(c.addr()),
                };
            }
        }
    }
    if seen.offered_udp.is_empty() {
        bail!("the server's offer has no UDP candidate:\n{}", offer.sdp);
    }
    let mut link = if tcp {
        let Some(&server) = seen.offered_tcp.iter().next() else {
            bail!("the server's offer has no TCP candidate:\n{}", offer.sdp);
        };
        let sock = tokio::net::TcpSocket::new_v4()?;
        sock.bind(SocketAddr::new(bind, 0))?;
        let stream = sock.connect(server).await.context("TCP media connection")?;
        Link::Tcp {
            local: stream.local_addr()?,
            server,
            stream,
            pending: Vec::new(),
        }
    } else {
        let sock = UdpSocket::bind(SocketAddr::new(bind, 0)).await?;
        Link::Udp(sock)
    };
    let local = link.local()?;
    let mut rtc = Rtc::builder().build(Instant::now());
    let candidate = if tcp {
        Candidate::builder()
            .tcp()
            .host(local)
            .tcptype(str0m::net::TcpType::Active)
            .build()?
    } else {
        Candidate::host(local, Protocol::Udp)?
    };
    rtc.add_local_candidate(candidate);
    let sdp = SdpOffer::from_sdp_string(&offer.sdp).context("the server's offer does not parse")?;
    let answer = rtc.sdp_api().accept_offer(sdp)?;
    let req = lk::SignalRequest {
        message: Some(Req::Answer(lk::SessionDescription {
            r#type: "answer".into(),
            sdp: answer.to_sdp_string(),
            id: offer.id,
            ..Default::default()
        })),
    };
    ws.send(Ws::Binary(req.encode_to_vec().into())).await?;

    let end = Instant::now() + for_;
    let mut buf = vec![0u8; 4000];
    loop {
        rtc.handle_input(Input::Timeout(Instant::now()))?;
        let next = loop {
            match rtc.poll_output()? {
                Output::Timeout(t) => break t,
                Output::Transmit(t) => {
                    seen.sent_to.insert(t.destination);
                    link.send(t.destination, &t.contents).await;
                }
                Output::Event(Event::IceConnectionStateChange(
                    IceConnectionState::Connected | IceConnectionState::Completed,
                )) => seen.connected = true,
                Output::Event(_) => {}
            }
        };
        let now = Instant::now();
        if now >= end {
            break;
        }
        // Never long: str0m's next timeout does not count what a reply will bring.
        let wait = next
            .min(end)
            .min(now + Duration::from_millis(20))
            .saturating_duration_since(now);
        tokio::select! {
            r = tokio::time::timeout(wait, link.recv(&mut buf)) => {
                if let Ok(Ok(got)) = r {
                    for (source, data) in got {
                        seen.answered_from.insert(source);
                        let proto = if tcp { Protocol::Tcp } else { Protocol::Udp };
                        if let Ok(r) = Receive::new(proto, source, local, &data) {
                            rtc.handle_input(Input::Receive(Instant::now(), r))?;
                        }
                    }
                }
            }
            // Signalling is read (and dropped) so that the server's frames do not back up.
            _ = ws.next() => {}
        }
    }
    let _ = ws.close(None).await;
    Ok(seen)
}

/// The probe's media path: a UDP socket, or one TCP connection with RFC 4571 framing.
enum Link {
    Udp(UdpSocket),
    Tcp {
        stream: tokio::net::TcpStream,
        local: SocketAddr,
        server: SocketAddr,
        /// Bytes read that do not make a whole frame yet.
        pending: Vec<u8>,
    },
}

impl Link {
    fn local(&self) -> std::io::Result<SocketAddr> {
        match self {
            Link::Udp(s) => s.local_addr(),
            Link::Tcp { local, .. } => Ok(*local),
        }
    }

    async fn send(&mut self, to: SocketAddr, data: &[u8]) {
        use tokio::io::AsyncWriteExt as _;
        match self {
            Link::Udp(s) => {
                let _ = s.send_to(data, to).await;
            }
            Link::Tcp { stream, server, .. } => {
                if to != *server {
                    return; // one connection, to one candidate
                }
                let Ok(len) = u16::try_from(data.len()) else {
                    return;
                };
                let mut frame = len.to_be_bytes().to_vec();
                frame.extend_from_slice(data);
                let _ = stream.write_all(&frame).await;
            }
        }
    }

    /// What arrived: one datagram, or every whole frame read.
    async fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<Vec<(SocketAddr, Vec<u8>)>> {
        use tokio::io::AsyncReadExt as _;
        match self {
            Link::Udp(s) => {
                let (n, from) = s.recv_from(buf).await?;
                Ok(vec![(from, buf[..n].to_vec())])
            }
            Link::Tcp {
                stream,
                server,
                pending,
                ..
            } => {
                let n = stream.read(buf).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                pending.extend_from_slice(&buf[..n]);
                let mut out = Vec::new();
                while pending.len() >= 2 {
                    let len = usize::from(u16::from_be_bytes([pending[0], pending[1]]));
                    if pending.len() < 2 + len {
                        break;
                    }
                    out.push((*server, pending[2..2 + len].to_vec()));
                    pending.drain(..2 + len);
                }
                Ok(out)
            }
        }
    }
}
