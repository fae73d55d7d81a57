//! Harnesses for the fuzz targets in `fuzz/` that reach parsers of this crate: tokens and
//! signed requests, browser-API bodies, RTMP targets, the converter's file type and PNG header
//! readers. Kept in the library so they cannot rot; unit tests run them over seeds.

use std::sync::OnceLock;

use enclave_proto::json;
use enclave_proto::user::JoinClaims;

use crate::auth::{check_signature, DownloadClaims, SignedRequest, TokenKeys, TokenKind};
use crate::http::browser::{ApproveReq, HandReq, LockReq, PresenterReq, TargetReq, TaskReq};

const KEY: &str = "fuzz-key";
const SECRET: &str = "fuzz-secret-0123456789abcdef";

fn keys() -> &'static TokenKeys {
    static KEYS: OnceLock<TokenKeys> = OnceLock::new();
    KEYS.get_or_init(|| TokenKeys::derive(SECRET, None))
}

/// Arbitrary bytes as a token of every kind, and as the parts of a signed `/auth` request
/// (split at the first two zero bytes into API key, signature and body). Nothing may panic.
pub fn tokens(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = keys().verify_join(KEY, &text, None);
    let _ = keys().verify::<DownloadClaims>(TokenKind::Download, KEY, &text);
    let _ = crate::auth::livekit::verify(keys(), KEY, &text);
    let _ = keys().verify::<JoinClaims>(TokenKind::LivekitAccess, KEY, &text);

    let mut parts = data.splitn(3, |b| *b == 0);
    let key = parts.next().map(String::from_utf8_lossy);
    let sig = parts.next().map(String::from_utf8_lossy);
    let body = parts.next().unwrap_or_default();
    for content_type in ["application/json", "multipart/form-data; boundary=x"] {
        let _ = check_signature(
            &SignedRequest {
                api_key: key.as_deref(),
                signature: sig.as_deref(),
                content_type: Some(content_type),
                room_id_header: key.as_deref(),
                body,
            },
            KEY,
            SECRET,
        );
    }
}

/// Arbitrary bytes as the body of the browser API's participant and recorder requests, and as
/// an RTMP URL and stream key (split at the first zero byte).
pub fn browser_request(data: &[u8]) {
    if let Ok(t) = json::decode::<TargetReq>(data) {
        let _ = enclave_proto::ids::UserId::parse(&t.user_id);
        let _ = (t.track_sid.len(), t.muted);
    }
    if let Ok(t) = json::decode::<TaskReq>(data) {
        rtmp(&t.url, &t.stream_key);
    }
    if let Ok(a) = json::decode::<ApproveReq>(data) {
        let _ = enclave_proto::ids::UserId::parse(&a.user_id);
    }
    if let Ok(l) = json::decode::<LockReq>(data) {
        let _ = enclave_proto::ids::UserId::parse(&l.user_id);
        if let Ok(service) = crate::rooms::locks::LockService::parse(&l.service) {
            let mut locks = enclave_proto::room::LockSettings::default();
            service.apply(&mut locks, l.direction == "lock");
            let p = crate::rooms::locks::publish_permission(None, false, false, Some(&locks));
            // A media lock takes exactly its sources away; an unlock leaves any source open.
            use crate::rooms::locks::LockService as S;
            use enclave_sfu::proto::TrackSource as T;
            let source = match service {
                S::Mic => Some(T::Microphone),
                S::Webcam => Some(T::Camera),
                S::ScreenShare => Some(T::ScreenShare),
                _ => None,
            };
            let locked = l.direction == "lock";
            if let Some(src) = source {
                assert_eq!(p.allows(src as i32), !locked, "{service:?} {}", l.direction);
            }
            // The chat locks are data topics the media server drops: a chat lock takes the
            // private topic too, a private-chat lock only that one.
            let denied = |t: &str| p.denied_data_topics.iter().any(|d| d == t);
            match service {
                S::Chat | S::SendChatMsg => assert_eq!(
                    (
                        denied(crate::rooms::locks::CHAT_TOPIC),
                        denied(enclave_sfu::PRIVATE_TOPIC)
                    ),
                    (locked, locked)
                ),
                S::PrivateChat => assert_eq!(
                    (
                        denied(crate::rooms::locks::CHAT_TOPIC),
                        denied(enclave_sfu::PRIVATE_TOPIC)
                    ),
                    (false, locked)
                ),
                _ => assert!(p.denied_data_topics.is_empty()),
            }
            if !locked {
                assert!(p.can_publish_sources.is_empty() && p.allows(T::Unknown as i32));
            }
        }
    }
    if let Ok(h) = json::decode::<HandReq>(data) {
        let _ = (h.raise, enclave_proto::ids::UserId::parse(&h.user_id));
    }
    if let Ok(p) = json::decode::<PresenterReq>(data) {
        let _ = (p.task.len(), enclave_proto::ids::UserId::parse(&p.user_id));
    }
    polls(data);
    breakout_plan(data);
    let mut parts = data.splitn(2, |b| *b == 0);
    let url = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let key = String::from_utf8_lossy(parts.next().unwrap_or_default());
    rtmp(&url, &key);
}

/// A poll body as a create (plain and sealed room) and as a vote: whatever is accepted keeps
/// one vote per voter and counts that add up.
fn polls(data: &[u8]) {
    use enclave_proto::polls::{CreatePollReq, SubmitPollResponseReq};
    let Ok(req) = json::decode::<CreatePollReq>(data) else {
        return;
    };
    let host = enclave_proto::ids::UserId::parse("host").unwrap_or_else(|_| unreachable!());
    for sealed in [false, true] {
        let mut polls = crate::rooms::polls::Polls::default();
        let Ok(id) = polls.create("r", req.clone(), &host, 0, sealed, || "p".into()) else {
            continue;
        };
        if sealed {
            let info = &polls.list()[0];
            assert!(crate::rooms::polls::is_sealed_text(&info.question));
            assert!(info
                .options
                .iter()
                .all(|o| crate::rooms::polls::is_sealed_text(&o.text)));
        }
        if let Ok(v) = json::decode::<SubmitPollResponseReq>(data) {
            let first = polls.vote(&id, &host, "Host", v.selected_option, 0).is_ok();
            assert!(polls
                .vote(&id, &host, "Host", v.selected_option, 0)
                .is_err());
            let r = polls.result(&id, true).unwrap_or_default();
            let sum: u64 = r.options.iter().map(|o| o.vote_count).sum();
            assert_eq!(
                (sum, r.total_responses),
                (u64::from(first), u64::from(first))
            );
        }
    }
}

/// A breakout plan: whatever passes the checks names rooms the server can open (valid room ids
/// under any parent) and assigns nobody twice.
fn breakout_plan(data: &[u8]) {
    use enclave_proto::breakout::CreateBreakoutRoomsReq;
    let Ok(req) = json::decode::<CreateBreakoutRoomsReq>(data) else {
        return;
    };
    if crate::rooms::breakouts::validate(&req, 6, Some(30)).is_ok() {
        assert!((1..=6).contains(&req.rooms.len()) && (1..=30).contains(&req.duration));
        let mut seen = std::collections::BTreeSet::new();
        for r in &req.rooms {
            assert!(enclave_proto::ids::RoomId::parse(&format!("parent-{}", r.id)).is_ok());
            for u in &r.users {
                assert!(seen.insert(u.id.clone()), "assigned twice");
            }
        }
    }
}

fn rtmp(url: &str, key: &str) {
    if let Ok(target) = crate::recording::rtmp_target(url, key) {
        let shown = crate::recorder::pipeline::redact_url(&target);
        let key = key.trim();
        // The stream key (a secret) never shows in logs; a key that is part of the host or
        // application path cannot be told from them and does not count.
        if key.len() >= 8 && !url.contains(key) {
            assert!(!shown.contains(key), "{target} shown as {shown}");
        }
        let _ = crate::recording::rtmp_host_port(&target);
    }
    let _ = crate::recording::rtmp_host_port(url);
    let _ = crate::recording::is_public(std::net::IpAddr::from([0, 0, 0, 0]));
}

/// Arbitrary bytes as the headers a reverse proxy or a client sends: `X-Forwarded-For` lines
/// (split at zero bytes) read from a trusted and from an untrusted peer, and as the `Host` of a
/// plain-HTTP request redirected to HTTPS. Nothing may panic; an untrusted peer's header never
/// counts; the address chosen is the peer's or one the header named; a redirect's `Location`
/// is `https://` and carries no byte of the header that could end it early.
pub fn forwarded_headers(data: &[u8]) {
    use std::net::IpAddr;
    let trusted: Vec<crate::config::IpNet> = vec![
        "10.0.0.0/8".parse().expect("literal"),
        "fd00::/8".parse().expect("literal"),
    ];
    let lines: Vec<&[u8]> = data.split(|b| *b == 0).collect();
    let outsider = IpAddr::from([198, 51, 100, 7]);
    assert_eq!(
        crate::http::peer_ip(outsider, lines.iter().copied(), &trusted),
        outsider
    );
    let proxy = IpAddr::from([10, 0, 0, 2]);
    let got = crate::http::peer_ip(proxy, lines.iter().copied(), &trusted);
    let named = lines
        .iter()
        .filter_map(|l| std::str::from_utf8(l).ok())
        .any(|l| {
            l.split(',')
                .any(|e| crate::http::forwarded_addr(e.trim()) == Some(got))
        });
    assert!(
        got == proxy || named,
        "{got} is neither the peer nor in the header"
    );

    let mut headers = axum::http::HeaderMap::new();
    if let Ok(v) = axum::http::HeaderValue::from_bytes(lines[0]) {
        headers.insert(axum::http::header::HOST, v);
    }
    let uri = axum::http::Uri::from_static("/x?y=1");
    let res = crate::http::https::to_https(&headers, &uri, 8443);
    if let Some(loc) = res.headers().get(axum::http::header::LOCATION) {
        let loc = loc.to_str().expect("a Location we wrote is ASCII");
        assert!(loc.starts_with("https://"), "{loc}");
        let host = &loc["https://".len()..loc.len() - ":8443/x?y=1".len()];
        assert!(!host.contains(['/', '@', '?', '#', ' ', '\\']), "{loc}");
    }
}

/// Arbitrary bytes as the answer of a STUN server (`rtc.use_external_ip`). Nothing may panic,
/// and an answer is only ever read for the transaction that was asked.
pub fn stun_response(data: &[u8]) {
    let txid = match data.get(8..20) {
        Some(t) => {
            let mut id = [0u8; 12];
            id.copy_from_slice(t);
            id
        }
        None => [0; 12],
    };
    let _ = crate::media::stun::mapped_address(data, txid);
    let mut other = txid;
    other[0] ^= 1;
    assert_eq!(crate::media::stun::mapped_address(data, other), None);
}

/// Arbitrary bytes as what the whiteboard converter reads from untrusted files: an upload's
/// type from its first bytes, and a page image's size from its PNG header. Nothing may panic;
/// a size read is one the header holds.
pub fn convert_input(data: &[u8]) {
    let _ = crate::convert::detect::detect(data);
    if let Ok((w, h)) = crate::convert::png::dimensions(data) {
        assert!(w > 0 && h > 0);
        assert_eq!(data.get(16..20), Some(&w.to_be_bytes()[..]));
        assert_eq!(data.get(20..24), Some(&h.to_be_bytes()[..]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harnesses_survive_seeds_and_noise() {
        let join = keys().sign(
            TokenKind::Join,
            &JoinClaims {
                iss: KEY.into(),
                sub: "u".into(),
                nbf: 0,
                exp: u64::MAX / 4,
                name: "n".into(),
                user_id: "u".into(),
                room_id: "r".into(),
                is_admin: false,
                is_hidden: false,
                client_type: 0,
                parent_room_id: String::new(),
            },
        );
        let seeds: Vec<Vec<u8>> = vec![
            vec![],
            b"eyJhbGciOiJIUzI1NiJ9.e30.".to_vec(),
            b"eyJhbGciOiJub25lIn0.eyJpc3MiOiJmdXp6LWtleSJ9.".to_vec(),
            join.clone().into_bytes(),
            b"fuzz-key\0deadbeef\0{\"room_id\":\"r\"}".to_vec(),
            br#"{"user_id":"a","track_sid":"TR_x","muted":true}"#.to_vec(),
            br#"{"task":"START_RTMP","url":"rtmp://h/app","stream_key":"secretkey1"}"#.to_vec(),
            b"rtmp://u:p@[::1]:99/a/b?x#y\0stream-key-1".to_vec(),
            b"rtmps://\0".to_vec(),
            br#"{"user_id":"all","service":"screenShare","direction":"lock"}"#.to_vec(),
            br#"{"user_id":"bob","service":"MIC","direction":"unlock"}"#.to_vec(),
            br#"{"question":"Lunch?","options":[{"id":1,"text":"a"},{"id":2,"text":"b"}],"poll_id":"p","selected_option":2}"#.to_vec(),
            br#"{"question":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","options":[{"id":1,"text":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},{"id":7,"text":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}],"selected_option":7}"#.to_vec(),
            br#"{"duration":15,"rooms":[{"id":"1","title":"Room 1","users":[{"id":"bob"}]},{"id":"2","title":"Room 2","users":[{"id":"cat"}]}]}"#.to_vec(),
            // Found by the fuzzer: the URL check sliced a multi-byte character.
            vec![0xad, 0x0a, 0x3c, 0xad],
            // A STUN binding success with an XOR-MAPPED-ADDRESS (RFC 5769).
            hex::decode("0101000c2112a442b7e7a701bc34d686fa87dfae002000080001a147e112a643")
                .unwrap_or_default(),
            b"meet.example.org:8443\x00203.0.113.9, 10.0.0.7".to_vec(),
            b"[2001:db8::1]:443\0[2001:db8::1]:5000,fd00::3\0unknown, 10.1.1.1".to_vec(),
            b"evil.example/@x\0::ffff:10.0.0.9, 192.0.2.1:80".to_vec(),
            // A PNG header (1132 x 1600), the start of a PDF, an OLE2 file, an ODF archive.
            hex::decode("89504e470d0a1a0a0000000d494844520000046c0000064008020000")
                .unwrap_or_default(),
            crate::convert::sample::pdf(1, 200, 100),
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1W\0o\0r\0d\0D\0o\0c\0u\0m\0e\0n\0t\0".to_vec(),
            b"PK\x03\x04\x14\0\0\0\0\0\0\0\0\0\0\0\0\0\x27\0\0\0\x27\0\0\0\x08\0\0\0mimetypeapplication/vnd.oasis.opendocument.text".to_vec(),
        ];
        for s in &seeds {
            tokens(s);
            browser_request(s);
            stun_response(s);
            forwarded_headers(s);
            convert_input(s);
            for i in 0..s.len().min(96) {
                convert_input(&s[..i]);
                tokens(&s[..i]);
                browser_request(&s[..i]);
                stun_response(&s[..i]);
                forwarded_headers(&s[..i]);
                let mut c = s.clone();
                c[i] ^= 0x41;
                tokens(&c);
                browser_request(&c);
                stun_response(&c);
                forwarded_headers(&c);
                convert_input(&c);
            }
        }
        // A real join token still verifies: the harness would notice nothing otherwise.
        assert!(keys().verify_join(KEY, &join, None).is_ok());
        let png =
            hex::decode("89504e470d0a1a0a0000000d494844520000046c00000640").unwrap_or_default();
        assert_eq!(crate::convert::png::dimensions(&png), Ok((1132, 1600)));
    }
}
