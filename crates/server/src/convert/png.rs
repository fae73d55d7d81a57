//! A PNG's size from its first chunk (PNG spec, 5.2 and 11.2.2): the 8-byte signature, then
//! IHDR (length 13, type, width, height, …). Read from files a child process wrote, so they
//! are untrusted bytes: nothing here panics.

/// How many bytes [`dimensions`] reads: signature, IHDR length, type, width and height.
pub const HEADER_LEN: usize = 8 + 4 + 4 + 8;

const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// Why a header was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PngError {
    #[error("not a PNG (no PNG signature)")]
    Signature,
    #[error("truncated PNG header ({0} bytes)")]
    Truncated(usize),
    #[error("the first chunk is not an IHDR of 13 bytes")]
    NoIhdr,
    #[error("width or height is 0 or above 2^31 - 1")]
    BadSize,
}

/// Width and height in pixels from the start of a PNG file (at least [`HEADER_LEN`] bytes).
pub fn dimensions(bytes: &[u8]) -> Result<(u32, u32), PngError> {
    let Some(head) = bytes.get(..HEADER_LEN) else {
        // A short file that does not even start like a PNG is named as such.
        return Err(if bytes.len() >= 8 && !bytes.starts_with(SIGNATURE) {
            PngError::Signature
        } else {
            PngError::Truncated(bytes.len())
        });
    };
    let (sig, rest) = head.split_at(8);
    if sig != SIGNATURE {
        return Err(PngError::Signature);
    }
    let be = |at: usize| {
        rest.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
    };
    if be(0) != Some(13) || rest.get(4..8) != Some(b"IHDR") {
        return Err(PngError::NoIhdr);
    }
    match (be(8), be(12)) {
        (Some(w), Some(h))
            if (1..=i32::MAX as u32).contains(&w) && (1..=i32::MAX as u32).contains(&h) =>
        {
            Ok((w, h))
        }
        _ => Err(PngError::BadSize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(w: u32, h: u32) -> Vec<u8> {
        let mut b = SIGNATURE.to_vec();
        b.extend_from_slice(&13u32.to_be_bytes());
        b.extend_from_slice(b"IHDR");
        b.extend_from_slice(&w.to_be_bytes());
        b.extend_from_slice(&h.to_be_bytes());
        b.extend_from_slice(&[8, 2, 0, 0, 0]); // depth, colour type, …
        b
    }

    #[test]
    fn reads_width_and_height() {
        assert_eq!(dimensions(&header(1132, 1600)), Ok((1132, 1600)));
        assert_eq!(dimensions(&header(1, 1)), Ok((1, 1)));
        // Exactly the header is enough.
        assert_eq!(dimensions(&header(7, 9)[..HEADER_LEN]), Ok((7, 9)));
    }

    #[test]
    fn truncated_input_at_every_length() {
        let full = header(640, 480);
        for n in 0..HEADER_LEN {
            assert_eq!(dimensions(&full[..n]), Err(PngError::Truncated(n)), "{n}");
        }
    }

    #[test]
    fn garbage_and_bad_fields() {
        assert_eq!(dimensions(&[0u8; 64]), Err(PngError::Signature));
        assert_eq!(dimensions(b"GIF89a.........."), Err(PngError::Signature));
        let mut b = header(10, 10);
        b[15] = b'X'; // chunk type IHDX
        assert_eq!(dimensions(&b), Err(PngError::NoIhdr));
        let mut b = header(10, 10);
        b[11] = 12; // length 12
        assert_eq!(dimensions(&b), Err(PngError::NoIhdr));
        assert_eq!(dimensions(&header(0, 10)), Err(PngError::BadSize));
        assert_eq!(dimensions(&header(10, 1 << 31)), Err(PngError::BadSize));
    }
}
