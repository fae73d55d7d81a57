//! The little SDP text handling str0m does not do for the core: which msid track id (the
//! client's track `cid`) belongs to which mid — LiveKit clients send `add_track{cid}`, and the
//! only link between that request and an m-line is `a=msid:<stream> <cid>` — and putting the
//! codec a publisher asked for first in our answer, since a browser sends the first codec of
//! the answer that it supports.

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

/// `sdp` with, in each m-section whose mid is in `prefer` (mid → codec name such as `h264`,
/// any case), the payload types of that codec first on the `m=` line, each followed by its RTX
/// payload type, the rest in their order. Sections not named, or without that codec, are left
/// as they are.
///
/// str0m orders an answer's payload types by its own codec configuration (VP8 first), and
/// Chromium sends the first one it supports: without this, a camera published with
/// `videoCodec: 'h264'` (announced in `add_track.simulcast_codecs`) arrives as VP8. LiveKit's
/// server sets the same preference on the publisher's transceivers.
pub(crate) fn prefer_codecs(sdp: &str, prefer: &HashMap<String, String>) -> String {
    let mut sections: Vec<Vec<&str>> = vec![Vec::new()];
    for line in sdp.split("\r\n") {
        if line.starts_with("m=") {
            sections.push(Vec::new());
        }
        sections.last_mut().expect("never empty").push(line);
    }
    let mut out: Vec<String> = Vec::new();
    for section in sections {
        let mid = section
            .iter()
            .find_map(|l| l.strip_prefix("a=mid:"))
            .map(str::trim);
        let wanted = mid.and_then(|m| prefer.get(m));
        match (section.first(), wanted) {
            (Some(first), Some(codec)) if first.starts_with("m=") => {
                out.push(reorder_m_line(first, &section[1..], codec));
                out.extend(section[1..].iter().map(|l| (*l).to_owned()));
            }
            _ => out.extend(section.iter().map(|l| (*l).to_owned())),
        }
    }
    out.join("\r\n")
}

fn reorder_m_line(m_line: &str, attrs: &[&str], codec: &str) -> String {
    // m=<media> <port> <proto> <fmt> ...
    let parts: Vec<&str> = m_line.split(' ').collect();
    if parts.len() < 4 {
        return m_line.to_owned();
    }
    let (head, fmts) = parts.split_at(3);
    let mut name: HashMap<&str, &str> = HashMap::new();
    let mut apt: HashMap<&str, &str> = HashMap::new();
    for a in attrs {
        if let Some(rest) = a.strip_prefix("a=rtpmap:") {
            if let Some((pt, enc)) = rest.split_once(' ') {
                name.insert(pt, enc.split('/').next().unwrap_or(""));
            }
        } else if let Some(rest) = a.strip_prefix("a=fmtp:") {
            if let Some((pt, params)) = rest.split_once(' ') {
                if let Some(a) = params
                    .split(';')
                    .find_map(|p| p.trim().strip_prefix("apt="))
                {
                    apt.insert(pt, a);
                }
            }
        }
    }
    let preferred: Vec<&str> = fmts
        .iter()
        .copied()
        .filter(|pt| name.get(pt).is_some_and(|n| n.eq_ignore_ascii_case(codec)))
        .collect();
    if preferred.is_empty() {
        return m_line.to_owned();
    }
    let mut order: Vec<&str> = Vec::with_capacity(fmts.len());
    for pt in &preferred {
        order.push(pt);
        order.extend(fmts.iter().copied().filter(|r| apt.get(r) == Some(pt)));
    }
    let rest: Vec<&str> = fmts
        .iter()
        .copied()
        .filter(|pt| !order.contains(pt))
        .collect();
    order.extend(rest);
    let mut line = head.join(" ");
    for pt in order {
        line.push(' ');
        line.push_str(pt);
    }
    line
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

#[cfg(test)]
mod prefer_tests {
    use super::*;

    const ANSWER: &str = "v=0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 98 99\r\na=mid:1\r\n\
        a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
        a=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1\r\n\
        a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\n\
        a=rtpmap:98 VP9/90000\r\na=rtpmap:99 rtx/90000\r\na=fmtp:99 apt=98\r\n";

    fn prefer(mid: &str, codec: &str) -> HashMap<String, String> {
        HashMap::from([(mid.to_owned(), codec.to_owned())])
    }

    #[test]
    fn the_wanted_codec_and_its_rtx_go_first() {
        let out = prefer_codecs(ANSWER, &prefer("1", "h264"));
        assert!(
            out.contains("\r\nm=video 9 UDP/TLS/RTP/SAVPF 102 103 96 97 98 99\r\n"),
            "{out}"
        );
        let out = prefer_codecs(ANSWER, &prefer("1", "VP9"));
        assert!(
            out.contains("m=video 9 UDP/TLS/RTP/SAVPF 98 99 96 97 102 103\r\n"),
            "{out}"
        );
        // Everything else is untouched.
        assert_eq!(out.len(), ANSWER.len());
        assert!(out.contains("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"));
    }

    #[test]
    fn other_sections_and_absent_codecs_are_left_alone() {
        assert_eq!(prefer_codecs(ANSWER, &prefer("1", "av1")), ANSWER);
        assert_eq!(prefer_codecs(ANSWER, &prefer("7", "h264")), ANSWER);
        assert_eq!(prefer_codecs(ANSWER, &HashMap::new()), ANSWER);
        assert_eq!(prefer_codecs("", &prefer("1", "h264")), "");
        assert_eq!(
            prefer_codecs("m=\r\na=mid:1", &prefer("1", "h264")),
            "m=\r\na=mid:1"
        );
    }
}
