//! The host's public address, learned from STUN servers (`rtc.use_external_ip`), for a server
//! behind a 1:1 NAT (a cloud VM with a private interface address and a public one): one
//! binding request (RFC 8489) per server until one answers with the address it saw.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::config::{MediaAddr, MediaConfig};

const MAGIC_COOKIE: u32 = 0x2112_A442;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const MAPPED_ADDRESS: u16 = 0x0001;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;

/// A binding request with transaction id `txid`, without attributes.
pub fn binding_request(txid: [u8; 12]) -> [u8; 20] {
    let mut m = [0u8; 20];
    m[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    // Message length 0: no attributes.
    m[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    m[8..20].copy_from_slice(&txid);
    m
}

/// The address a binding success response for `txid` reports: its XOR-MAPPED-ADDRESS, or the
/// older MAPPED-ADDRESS. None for anything else (any bytes are safe to pass).
pub fn mapped_address(msg: &[u8], txid: [u8; 12]) -> Option<SocketAddr> {
    let header = msg.get(..20)?;
    if u16::from_be_bytes([header[0], header[1]]) != BINDING_SUCCESS
        || u32::from_be_bytes([header[4], header[5], header[6], header[7]]) != MAGIC_COOKIE
        || header[8..20] != txid
    {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let mut attrs = msg.get(20..20 + len)?;
    let mut plain = None;
    while attrs.len() >= 4 {
        let kind = u16::from_be_bytes([attrs[0], attrs[1]]);
        let alen = usize::from(u16::from_be_bytes([attrs[2], attrs[3]]));
        let value = attrs.get(4..4 + alen)?;
        match kind {
            XOR_MAPPED_ADDRESS => return address(value, Some(&header[4..20])),
            MAPPED_ADDRESS => plain = address(value, None),
            _ => {}
        }
        // Attributes are padded to four bytes.
        let next = (4 + alen).div_ceil(4) * 4;
        attrs = attrs.get(next..).unwrap_or_default();
    }
    plain
}

/// An address attribute's value; with `xor` (the cookie and transaction id) XOR-decoded.
fn address(v: &[u8], xor: Option<&[u8]>) -> Option<SocketAddr> {
    let family = *v.get(1)?;
    let mut port = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]);
    let mut ip = v.get(4..)?.to_vec();
    if let Some(key) = xor {
        port ^= (MAGIC_COOKIE >> 16) as u16;
        for (b, k) in ip.iter_mut().zip(key) {
            *b ^= k;
        }
    }
    let ip = match (family, ip.len()) {
        (1, 4) => IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
        (2, 16) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&ip);
            IpAddr::V6(Ipv6Addr::from(a))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// With `external_ip_stun` set, learns the public address and advertises it first; its local
/// side is the interface the STUN request left from. A public address that is one of our own
/// (no NAT after all) changes nothing.
pub async fn add_external_ip(cfg: &mut MediaConfig) -> Result<(), String> {
    if cfg.external_ip_stun.is_empty() {
        return Ok(());
    }
    let (public, local) = external_ip(&cfg.external_ip_stun, Duration::from_secs(3))
        .await
        .map_err(|why| {
            format!(
                "rtc.use_external_ip: no STUN server told us our public address ({why}); \
                 set rtc.node_ip to it instead"
            )
        })?;
    tracing::info!(%public, %local, "public address learned from STUN");
    if cfg.addresses.iter().any(|a| a.advertised == public) {
        return Ok(());
    }
    cfg.addresses.insert(
        0,
        MediaAddr {
            advertised: public,
            local: Some(local),
        },
    );
    Ok(())
}

/// Asks each server (`host:port`) in turn, within `each` per server, what address our
/// packets come from. Returns that public address and the local address the packets left
/// from (the interface behind the NAT).
pub async fn external_ip(servers: &[String], each: Duration) -> Result<(IpAddr, IpAddr), String> {
    let mut why = Vec::new();
    for server in servers {
        match tokio::time::timeout(each, ask(server)).await {
            Ok(Ok(found)) => return Ok(found),
            Ok(Err(e)) => why.push(format!("{server}: {e}")),
            Err(_) => why.push(format!("{server}: no answer within {} s", each.as_secs())),
        }
    }
    if why.is_empty() {
        why.push("no STUN server configured (rtc.stun_servers)".into());
    }
    Err(why.join("; "))
}

async fn ask(server: &str) -> Result<(IpAddr, IpAddr), String> {
    let target = tokio::net::lookup_host(server)
        .await
        .map_err(|e| format!("cannot resolve: {e}"))?
        .find(SocketAddr::is_ipv4)
        .ok_or("no IPv4 address")?;
    let sock = UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0)))
        .await
        .map_err(|e| e.to_string())?;
    sock.connect(target).await.map_err(|e| e.to_string())?;
    // After connect, the socket's address is the interface the route to the server uses.
    let local = sock.local_addr().map_err(|e| e.to_string())?.ip();
    let txid: [u8; 12] = rand::random();
    let mut buf = [0u8; 576];
    // Datagrams get lost: ask again every 500 ms until the caller's timeout.
    loop {
        sock.send(&binding_request(txid))
            .await
            .map_err(|e| e.to_string())?;
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(500), sock.recv(&mut buf)).await
        {
            if let Some(mapped) = mapped_address(&buf[..n], txid) {
                return Ok((mapped.ip(), local));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const TXID: [u8; 12] = [
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ];

    /// RFC 5769 section 2.2: a sample IPv4 response (192.0.2.1:32853).
    #[test]
    fn the_rfc_5769_ipv4_response_reads_back() {
        let msg = unhex(
            "0101 003c 2112a442 b7e7a701 bc34d686 fa87dfae
             8022 000b 74657374 20766563 746f7220
             0020 0008 0001a147 e112a643
             0008 0014 2b91f599 fd9e90c3 8c7489f9 2af9ba53 f06be7d7
             8028 0004 c07d4c96",
        );
        assert_eq!(
            mapped_address(&msg, TXID),
            Some("192.0.2.1:32853".parse().unwrap())
        );
    }

    /// RFC 5769 section 2.3: a sample IPv6 response
    /// ([2001:db8:1234:5678:11:2233:4455:6677]:32853).
    #[test]
    fn the_rfc_5769_ipv6_response_reads_back() {
        let msg = unhex(
            "0101 0048 2112a442 b7e7a701 bc34d686 fa87dfae
             8022 000b 74657374 20766563 746f7220
             0020 0014 0002a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9
             0008 0014 a382954e 4be67bf1 1784c97c 8292c275 bfe3ed41
             8028 0004 c8fb0b4c",
        );
        assert_eq!(
            mapped_address(&msg, TXID),
            Some(
                "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
                    .parse()
                    .unwrap()
            )
        );
    }

    #[test]
    fn another_transaction_or_a_request_is_not_an_answer() {
        let msg =
            unhex("0101 000c 2112a442 b7e7a701 bc34d686 fa87dfae 0020 0008 0001a147 e112a643");
        assert!(mapped_address(&msg, TXID).is_some());
        assert_eq!(mapped_address(&msg, [0; 12]), None);
        assert_eq!(mapped_address(&binding_request(TXID), TXID), None);
        // Cut anywhere: nothing.
        for n in 0..msg.len() {
            assert_eq!(mapped_address(&msg[..n], TXID), None, "{n}");
        }
    }
}
