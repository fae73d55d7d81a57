//! The AV1 RTP spec's Dependency Descriptor header extension, read only as far as the room
//! needs: where a frame starts and ends, and whether it is a keyframe. Chromium and libwebrtc
//! send it for every codec once it is negotiated, so a simulcast layer switch can wait for a
//! keyframe of the new layer without looking into the payload (which may be end-to-end
//! encrypted, and which the room never reads).
//!
//! Layout (AV1 RTP spec, appendix A): `start_of_frame` (1 bit), `end_of_frame` (1),
//! `frame_dependency_template_id` (6), `frame_number` (16); when the extension is longer than
//! 3 bytes, `template_dependency_structure_present_flag` is the first bit of the fourth byte.
//! Encoders attach the template structure to the frames that start a new coded sequence, i.e.
//! keyframes: the room takes that flag as "keyframe".

use str0m::rtp::{ExtensionSerializer, ExtensionValues};

/// The extension's URI, as offered by browsers.
pub(crate) const URI: &str =
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";

/// What one packet's descriptor says about its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameInfo {
    /// The first packet of a frame.
    pub(crate) start_of_frame: bool,
    /// The last packet of a frame.
    pub(crate) end_of_frame: bool,
    pub(crate) frame_number: u16,
    /// The descriptor carries the template structure: the frame is a keyframe.
    pub(crate) keyframe: bool,
}

impl FrameInfo {
    /// Parses the extension's bytes; `None` if they are too short to be a descriptor.
    pub(crate) fn parse(buf: &[u8]) -> Option<Self> {
        let [b0, b1, b2, rest @ ..] = buf else {
            return None;
        };
        Some(Self {
            start_of_frame: b0 & 0x80 != 0,
            end_of_frame: b0 & 0x40 != 0,
            frame_number: u16::from_be_bytes([*b1, *b2]),
            keyframe: rest.first().is_some_and(|b| b & 0x80 != 0),
        })
    }

    /// The first packet of a keyframe: where a subscriber can start decoding a layer.
    pub(crate) fn starts_keyframe(&self) -> bool {
        self.start_of_frame && self.keyframe
    }
}

/// Lets str0m hand the room each packet's [`FrameInfo`] (in `ExtensionValues::user_values`).
/// Receive only: the room does not write the descriptor to subscribers (they find frames from
/// the codec's own payload header, as without the extension).
#[derive(Debug)]
pub(crate) struct Serializer;

impl ExtensionSerializer for Serializer {
    fn write_to(&self, _buf: &mut [u8], _ev: &ExtensionValues) -> usize {
        0
    }

    fn parse_value(&self, buf: &[u8], ev: &mut ExtensionValues) -> bool {
        match FrameInfo::parse(buf) {
            Some(info) => {
                ev.user_values.set(info);
                true
            }
            None => false,
        }
    }

    fn is_video(&self) -> bool {
        true
    }

    fn is_audio(&self) -> bool {
        false
    }

    fn requires_two_byte_form(&self, _ev: &ExtensionValues) -> bool {
        // Descriptors with a template structure exceed 16 bytes.
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mandatory_fields_only() {
        let f = FrameInfo::parse(&[0b1000_0011, 0x12, 0x34]).unwrap();
        assert!(f.start_of_frame && !f.end_of_frame && !f.keyframe);
        assert_eq!(f.frame_number, 0x1234);
        assert!(!f.starts_keyframe());
    }

    #[test]
    fn a_template_structure_marks_a_keyframe() {
        let f = FrameInfo::parse(&[0b1100_0000, 0, 7, 0b1000_0000, 0xff, 0x01]).unwrap();
        assert!(f.start_of_frame && f.end_of_frame && f.keyframe);
        assert!(f.starts_keyframe());
        // Extended fields without the structure: a delta frame.
        let f = FrameInfo::parse(&[0b1000_0000, 0, 8, 0b0100_0000]).unwrap();
        assert!(!f.keyframe);
    }

    #[test]
    fn too_short_is_not_a_descriptor() {
        assert_eq!(FrameInfo::parse(&[]), None);
        assert_eq!(FrameInfo::parse(&[0x80, 0]), None);
    }
}
