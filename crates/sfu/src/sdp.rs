//! The little the core needs from a remote SDP that str0m does not surface: which msid track id
//! (the client's track `cid`) belongs to which mid. LiveKit clients send `add_track{cid}`, and
//! the only link between that request and an m-line is `a=msid:<stream> <cid>`.

use std::collections::HashMap;

/// mid → msid track id, for every m-line that has both.
pub(crate) fn mid_to_cid(sdp: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut mid: Option<String> = None;
    let mut cid: Option<String> = None;
    let mut flush = |mid: &mut Option<String>, cid: &mut Option<String>| {
        if let (Some(m), Some(c)) = (mid.take(), cid.take()) {
            out.insert(m, c);
        }
    };
    for line in sdp.lines() {
        let line = line.trim_end();
        if line.starts_with("m=") {
            flush(&mut mid, &mut cid);
        } else if let Some(m) = line.strip_prefix("a=mid:") {
            mid = Some(m.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("a=msid:") {
            let mut parts = rest.split_whitespace();
            let _stream = parts.next();
            if let Some(track) = parts.next() {
                cid = Some(track.to_owned());
            }
        }
    }
    flush(&mut mid, &mut cid);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_mids_to_msid_track_ids() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=msid:s1 a-cid\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=msid:- v-cid\r\na=mid:1\r\nm=application 9 x\r\na=mid:2\r\n";
        let m = mid_to_cid(sdp);
        assert_eq!(m.get("0").map(String::as_str), Some("a-cid"));
        assert_eq!(m.get("1").map(String::as_str), Some("v-cid"));
        assert!(!m.contains_key("2"));
    }

    #[test]
    fn garbage_gives_nothing() {
        assert!(mid_to_cid("\u{0}\u{1}a=msid:\r\na=mid:").is_empty());
    }
}
