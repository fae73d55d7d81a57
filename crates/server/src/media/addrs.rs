//! Which of the host's addresses clients may send media to.

use std::net::IpAddr;

/// The host's usable interface addresses, best first (see [`usable`]). Empty if the
/// interfaces cannot be read.
pub fn detect() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(ifs) => usable(ifs.into_iter().map(|i| i.ip())),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the network interfaces");
            Vec::new()
        }
    }
}

/// The addresses worth advertising, in order: IPv4 before IPv6 (every client has IPv4),
/// without duplicates. Loopback only when nothing else exists (a client on another machine
/// cannot use it, and one on this machine reaches the other addresses as well); never
/// unspecified, multicast, or IPv6 link-local (unusable without a scope) addresses.
pub fn usable(addrs: impl IntoIterator<Item = IpAddr>) -> Vec<IpAddr> {
    let mut all: Vec<IpAddr> = Vec::new();
    for ip in addrs {
        let link_local_v6 = matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
        if ip.is_unspecified() || ip.is_multicast() || link_local_v6 || all.contains(&ip) {
            continue;
        }
        all.push(ip);
    }
    let (loopback, mut out): (Vec<IpAddr>, Vec<IpAddr>) =
        all.into_iter().partition(|ip| ip.is_loopback());
    if out.is_empty() {
        out = loopback;
    }
    // Stable: the interfaces' own order within each family.
    out.sort_by_key(|ip| ip.is_ipv6());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn loopback_is_left_out_when_the_host_has_another_address() {
        let got = usable(ips(&[
            "127.0.0.1",
            "::1",
            "10.0.0.5",
            "fe80::1",
            "2001:db8::5",
            "172.17.0.1",
        ]));
        assert_eq!(got, ips(&["10.0.0.5", "172.17.0.1", "2001:db8::5"]));
    }

    #[test]
    fn loopback_alone_is_advertised_when_nothing_else_exists() {
        assert_eq!(
            usable(ips(&["127.0.0.1", "::1"])),
            ips(&["127.0.0.1", "::1"])
        );
    }

    #[test]
    fn duplicates_and_unusable_addresses_are_dropped() {
        let got = usable(ips(&["0.0.0.0", "224.0.0.1", "10.0.0.5", "10.0.0.5"]));
        assert_eq!(got, ips(&["10.0.0.5"]));
    }
}
