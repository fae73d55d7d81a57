//! What the bots put in RTP payloads, and how a receiver reads RTP without decrypting.
//!
//! No codec: a payload is `[u64 publisher | u64 sequence | u64 send time (ns) | u64 checksum |
//! filler]`, all little-endian. The filler is derived from the sequence number, and the checksum
//! covers everything but itself, so a receiver that decrypts (a *probe*) can tell that the bytes
//! it got are the bytes that were sent, and how long they took.
//!
//! The SFU never reads payloads (it forwards on RTP headers), so any bytes would do; these make
//! loss, order, corruption and latency measurable.

/// Bytes before the filler.
pub const HEADER: usize = 32;

/// A payload read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub publisher: u64,
    pub seq: u64,
    pub send_ns: u64,
}

/// Why a payload did not read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    Short,
    Checksum,
}

fn filler_byte(seq: u64, i: usize) -> u8 {
    let x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((x >> ((i % 8) * 8)) as u8) ^ (i as u8)
}

/// A 64-bit checksum of `p` without bytes 24..32 (where it is stored).
fn checksum(p: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |w: u64| {
        h = (h ^ w).wrapping_mul(0x0000_0100_0000_01B3).rotate_left(29);
    };
    for (i, chunk) in p.chunks(8).enumerate() {
        if i == 3 {
            continue;
        }
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        mix(u64::from_le_bytes(w));
    }
    mix(p.len() as u64);
    h
}

/// A payload of `size` bytes (at least [`HEADER`]).
pub fn encode(size: usize, stamp: Stamp) -> Vec<u8> {
    let size = size.max(HEADER);
    let mut p = vec![0u8; size];
    p[0..8].copy_from_slice(&stamp.publisher.to_le_bytes());
    p[8..16].copy_from_slice(&stamp.seq.to_le_bytes());
    p[16..24].copy_from_slice(&stamp.send_ns.to_le_bytes());
    for (i, b) in p[HEADER..].iter_mut().enumerate() {
        *b = filler_byte(stamp.seq, i);
    }
    let c = checksum(&p);
    p[24..32].copy_from_slice(&c.to_le_bytes());
    p
}

fn u64_at(p: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&p[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Reads a payload back and checks every byte of it.
pub fn decode(p: &[u8]) -> Result<Stamp, Bad> {
    if p.len() < HEADER {
        return Err(Bad::Short);
    }
    if checksum(p) != u64_at(p, 24) {
        return Err(Bad::Checksum);
    }
    Ok(Stamp {
        publisher: u64_at(p, 0),
        seq: u64_at(p, 8),
        send_ns: u64_at(p, 16),
    })
}

/// The SSRC of an RTP packet (SRTP leaves the header in clear), or `None` for anything else
/// that shares the port: STUN (first byte 0–3), DTLS (20–63), RTCP (payload types 64–95 in
/// the second byte after the marker bit, RFC 5761).
pub fn rtp_ssrc(d: &[u8]) -> Option<u32> {
    if d.len() < 12 || d[0] >> 6 != 2 {
        return None;
    }
    if (64..=95).contains(&(d[1] & 0x7f)) {
        return None;
    }
    Some(u32::from_be_bytes([d[8], d[9], d[10], d[11]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_reads_back_and_any_flipped_byte_is_caught() {
        let s = Stamp {
            publisher: 7,
            seq: 123_456,
            send_ns: 987_654_321,
        };
        let p = encode(1000, s);
        assert_eq!(p.len(), 1000);
        assert_eq!(decode(&p), Ok(s));
        for i in [0, 9, 17, 40, 999] {
            let mut q = p.clone();
            q[i] ^= 0x01;
            assert_eq!(decode(&q), Err(Bad::Checksum), "byte {i}");
        }
        assert_eq!(decode(&p[..500]), Err(Bad::Checksum));
        assert_eq!(decode(&p[..10]), Err(Bad::Short));
        assert_eq!(encode(3, s).len(), HEADER);
    }

    #[test]
    fn rtp_is_told_from_rtcp_stun_and_dtls() {
        let mut rtp = [0u8; 20];
        rtp[0] = 0x90; // v2, extension bit
        rtp[1] = 96 | 0x80; // marker, pt 96
        rtp[8..12].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        assert_eq!(rtp_ssrc(&rtp), Some(0xdead_beef));
        let mut rtcp = rtp;
        rtcp[1] = 200; // sender report
        assert_eq!(rtp_ssrc(&rtcp), None);
        let mut stun = rtp;
        stun[0] = 0x00;
        assert_eq!(rtp_ssrc(&stun), None);
        let mut dtls = rtp;
        dtls[0] = 23;
        assert_eq!(rtp_ssrc(&dtls), None);
        assert_eq!(rtp_ssrc(&rtp[..11]), None);
    }
}
