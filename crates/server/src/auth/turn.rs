//! TURN credentials for clients, in the TURN REST scheme that coturn's `use-auth-secret`
//! checks (draft-uberti-behave-turn-rest): the username is `<unix expiry>:<participant>`, the
//! password the base64 of HMAC-SHA1 over the username under the secret shared with the TURN
//! server. The TURN server needs no call to us; a credential is useless after its expiry.

use base64::Engine as _;
use enclave_sfu::proto as lk;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::config::{TurnCredentials, TurnProtocol, TurnServer};

/// The `ice_servers` of a join response for participant `who` at `now_unix` seconds.
pub fn ice_servers(servers: &[TurnServer], who: &str, now_unix: u64) -> Vec<lk::IceServer> {
    servers
        .iter()
        .map(|s| {
            let (username, credential) = match &s.credentials {
                TurnCredentials::Secret { secret, ttl } => {
                    rest_credentials(secret, who, now_unix + ttl.as_secs())
                }
                TurnCredentials::Static {
                    username,
                    credential,
                } => (username.clone(), credential.clone()),
            };
            lk::IceServer {
                urls: vec![url(s)],
                username,
                credential,
            }
        })
        .collect()
}

/// `turn:host:port?transport=udp|tcp`, or `turns:host:port?transport=tcp` (RFC 7065).
fn url(s: &TurnServer) -> String {
    let host = if s.host.contains(':') && !s.host.starts_with('[') {
        format!("[{}]", s.host) // an IPv6 literal
    } else {
        s.host.clone()
    };
    match s.protocol {
        TurnProtocol::Udp => format!("turn:{host}:{}?transport=udp", s.port),
        TurnProtocol::Tcp => format!("turn:{host}:{}?transport=tcp", s.port),
        TurnProtocol::Tls => format!("turns:{host}:{}?transport=tcp", s.port),
    }
}

/// The TURN REST username and password of `who`, valid until `expiry` (unix seconds).
fn rest_credentials(secret: &str, who: &str, expiry: u64) -> (String, String) {
    // A ':' in the participant part would be read as part of the expiry by some servers.
    let who: String = who.chars().filter(|c| *c != ':').take(64).collect();
    let username = format!("{expiry}:{who}");
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rest_credentials_are_the_hmac_sha1_of_the_username() {
        // Computed independently: printf %s '1700003600:PA_abc' | openssl dgst -sha1 -hmac
        // 'turn-secret' -binary | base64
        let (u, p) = rest_credentials("turn-secret", "PA_abc", 1_700_003_600);
        assert_eq!(u, "1700003600:PA_abc");
        assert_eq!(p, "+1w4x1GsoSn/EdVy66yG22AfE4I=");
    }

    #[test]
    fn each_server_gets_a_url_and_credentials_that_expire_after_the_ttl() {
        let servers = vec![
            TurnServer {
                host: "turn.example.org".into(),
                port: 3478,
                protocol: TurnProtocol::Udp,
                credentials: TurnCredentials::Secret {
                    secret: "s".into(),
                    ttl: Duration::from_secs(600),
                },
            },
            TurnServer {
                host: "2001:db8::1".into(),
                port: 443,
                protocol: TurnProtocol::Tls,
                credentials: TurnCredentials::Static {
                    username: "u".into(),
                    credential: "c".into(),
                },
            },
        ];
        let got = ice_servers(&servers, "PA:x", 1000);
        assert_eq!(got[0].urls, ["turn:turn.example.org:3478?transport=udp"]);
        assert_eq!(got[0].username, "1600:PAx");
        assert_eq!(got[0].credential, rest_credentials("s", "PAx", 1600).1);
        assert_eq!(got[1].urls, ["turns:[2001:db8::1]:443?transport=tcp"]);
        assert_eq!(
            (got[1].username.as_str(), got[1].credential.as_str()),
            ("u", "c")
        );
    }
}
