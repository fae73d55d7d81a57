//! `rtc`: the embedded SFU's addresses, ports, TURN servers and STUN (LiveKit's key names).

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{anyhow, bail};

use enclave_server::config::{MediaAddr, MediaConfig, TurnCredentials, TurnProtocol, TurnServer};

use super::duration;
use super::file::{Rtc, TurnServerEntry};

/// Asked for the public address when `rtc.use_external_ip` is on and no `rtc.stun_servers`
/// are given (LiveKit's defaults).
const DEFAULT_STUN_SERVERS: [&str; 2] = ["stun.l.google.com:19302", "stun1.l.google.com:19302"];

/// The media settings. `local` is the host's usable interface addresses (see
/// `enclave_server::media::addrs`), passed in so that validation stays a pure function.
pub(super) fn media_config(
    rtc: &Rtc,
    bind: IpAddr,
    local: &[IpAddr],
) -> anyhow::Result<Option<MediaConfig>> {
    if !rtc.enable {
        return Ok(None);
    }
    let mut configured = Vec::new();
    for s in rtc.node_ip.values() {
        let ip: IpAddr = s
            .parse()
            .map_err(|_| anyhow!("rtc.node_ip: '{s}' is not an IP address"))?;
        if ip.is_unspecified() || ip.is_multicast() {
            bail!("rtc.node_ip: must be an address clients can reach, not {ip}");
        }
        if !configured.contains(&ip) {
            configured.push(ip);
        }
    }
    let addresses: Vec<MediaAddr> = if !configured.is_empty() {
        // A configured address on one of our interfaces is also where replies leave from; one
        // that is not (the public side of a 1:1 NAT) leaves the choice to the kernel.
        configured
            .into_iter()
            .map(|ip| MediaAddr {
                advertised: ip,
                local: (local.contains(&ip) || ip.is_loopback()).then_some(ip),
            })
            .collect()
    } else {
        // Our own addresses: the bind address if it is a specific one, else every interface's.
        let own = if !bind.is_unspecified() {
            vec![bind]
        } else if local.is_empty() {
            bail!("rtc.node_ip: no network address found on this host; set one");
        } else {
            local.to_vec()
        };
        own.into_iter()
            .map(|ip| MediaAddr {
                advertised: ip,
                local: Some(ip),
            })
            .collect()
    };
    let turn_servers = rtc
        .turn_servers
        .iter()
        .enumerate()
        .map(|(i, t)| turn_server(i, t))
        .collect::<anyhow::Result<_>>()?;
    Ok(Some(MediaConfig {
        bind_ip: bind,
        udp_port: rtc.udp_port,
        tcp_port: (rtc.tcp_port != 0).then_some(rtc.tcp_port),
        addresses,
        bandwidth_estimation: rtc.bandwidth_estimation,
        turn_servers,
        external_ip_stun: match (rtc.use_external_ip, rtc.stun_servers.is_empty()) {
            (false, _) => Vec::new(),
            (true, true) => DEFAULT_STUN_SERVERS.map(String::from).to_vec(),
            (true, false) => rtc.stun_servers.clone(),
        },
    }))
}

/// `rtc.turn_servers[i]`: the port defaults by protocol; credentials are a TURN REST secret or
/// a fixed username and credential.
fn turn_server(i: usize, t: &TurnServerEntry) -> anyhow::Result<TurnServer> {
    let key = format!("rtc.turn_servers[{i}]");
    if t.host.is_empty() || t.host.contains(['/', '?', ' ']) {
        bail!("{key}.host: '{}' is not a host name or address", t.host);
    }
    let protocol = match t.protocol.to_ascii_lowercase().as_str() {
        "" | "udp" => TurnProtocol::Udp,
        "tcp" => TurnProtocol::Tcp,
        "tls" => TurnProtocol::Tls,
        other => bail!("{key}.protocol: '{other}' is not udp, tcp or tls"),
    };
    let port = t.port.unwrap_or(match protocol {
        TurnProtocol::Tls => 443,
        _ => 3478,
    });
    let credentials = match (t.secret.is_empty(), t.username.is_empty() || t.credential.is_empty()) {
        (false, true) => TurnCredentials::Secret {
            secret: t.secret.clone(),
            ttl: duration(&format!("{key}.ttl"), &t.ttl, Duration::from_secs(24 * 3600))?,
        },
        (true, false) => TurnCredentials::Static {
            username: t.username.clone(),
            credential: t.credential.clone(),
        },
        (false, false) => bail!("{key}: give either secret or username and credential, not both"),
        (true, true) => bail!("{key}: needs a secret (TURN REST, as coturn's use-auth-secret) or a username and credential"),
    };
    Ok(TurnServer {
        host: t.host.clone(),
        port,
        protocol,
        credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file::OneOrMany;

    #[test]
    fn media_is_offered_on_every_interface_address_unless_node_ip_says_otherwise() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let any = ip("0.0.0.0");
        let host = [ip("10.0.0.5"), ip("192.168.1.2")];
        let m = media_config(&Rtc::default(), any, &host).unwrap().unwrap();
        assert_eq!(
            m.addresses,
            host.map(|a| MediaAddr {
                advertised: a,
                local: Some(a)
            })
        );
        assert_eq!((m.udp_port, m.tcp_port), (7882, Some(7881)));
        assert!(m.external_ip_stun.is_empty() && m.turn_servers.is_empty());

        // A configured list: an address of ours replies from itself; one that is not (a
        // NAT's public side) leaves the source to the kernel.
        let rtc = Rtc {
            node_ip: OneOrMany::Many(vec!["203.0.113.7".into(), "10.0.0.5".into()]),
            tcp_port: 0,
            use_external_ip: true,
            ..Rtc::default()
        };
        let m = media_config(&rtc, any, &host).unwrap().unwrap();
        assert_eq!(
            m.addresses,
            [
                MediaAddr {
                    advertised: ip("203.0.113.7"),
                    local: None
                },
                MediaAddr {
                    advertised: ip("10.0.0.5"),
                    local: Some(ip("10.0.0.5"))
                }
            ]
        );
        assert_eq!(m.tcp_port, None);
        assert_eq!(m.external_ip_stun, DEFAULT_STUN_SERVERS.map(String::from));

        // A specific bind address is the one advertised.
        let lo = ip("127.0.0.1");
        let m = media_config(&Rtc::default(), lo, &host).unwrap().unwrap();
        assert_eq!(
            m.addresses.iter().map(|a| a.advertised).collect::<Vec<_>>(),
            [lo]
        );

        // Nothing found and nothing configured: say what to set.
        let err = media_config(&Rtc::default(), any, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("rtc.node_ip"), "{err}");
    }

    #[test]
    fn turn_servers_take_a_shared_secret_or_fixed_credentials() {
        let entry = |yaml: &str| -> TurnServerEntry { serde_yaml_ng::from_str(yaml).unwrap() };
        let t = turn_server(
            0,
            &entry("{host: turn.example.org, protocol: tls, secret: s, ttl: 10m}"),
        )
        .unwrap();
        assert_eq!((t.port, t.protocol), (443, TurnProtocol::Tls));
        assert_eq!(
            t.credentials,
            TurnCredentials::Secret {
                secret: "s".into(),
                ttl: Duration::from_secs(600)
            }
        );
        let t = turn_server(0, &entry("{host: t, username: u, credential: c}")).unwrap();
        assert_eq!((t.port, t.protocol), (3478, TurnProtocol::Udp));
        assert!(matches!(t.credentials, TurnCredentials::Static { .. }));
    }
}
