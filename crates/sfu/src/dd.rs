//! The AV1 RTP spec's Dependency Descriptor header extension, read only as far as the room
//! needs: whether a packet starts a keyframe. Chromium and libwebrtc
//! send it for every codec once it is negotiated, so a simulcast layer switch can wait for a
//! keyframe of the new layer without looking into the payload (which may be end-to-end
//! encrypted, and which the room never reads).
//!
//! Layout (AV1 RTP spec, appendix A): `start_of_frame` (1 bit), `end_of_frame` (1),
//! `frame_dependency_template_id` (6), `frame_number` (16); when the extension is longer than
//! 3 bytes, `template_dependency_structure_present_flag` is the first bit of the fourth byte.
//! Encoders attach the template structure to the frames that start a new coded sequence, i.e.
//! keyframes: the room takes that flag as "keyframe". The bytes are forwarded unchanged to
//! subscribers, whose decoders need them for AV1 with scalability modes.

use std::sync::Arc;

use str0m::rtp::{ExtensionSerializer, ExtensionValues};

/// The extension's URI, as offered by browsers.
pub(crate) const URI: &str =
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";

/// One packet's descriptor, as received: forwarded to subscribers unchanged (a header
/// extension, so the room may copy it; an AV1 SVC stream cannot be reassembled without it), and
/// read for the two bits the room needs. One value per packet in `ExtensionValues::user_values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Descriptor(Arc<[u8]>);

impl Descriptor {
    /// `None` if the bytes are too short to be a descriptor (the mandatory fields are 3 bytes).
    pub(crate) fn parse(buf: &[u8]) -> Option<Self> {
        (buf.len() >= 3).then(|| Self(buf.into()))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn start_of_frame(&self) -> bool {
        self.0[0] & 0x80 != 0
    }

    /// The template structure is attached: the frame is a keyframe.
    fn keyframe(&self) -> bool {
        self.0.get(3).is_some_and(|b| b & 0x80 != 0)
    }

    /// The first packet of a keyframe: where a subscriber can start decoding a layer.
    pub(crate) fn starts_keyframe(&self) -> bool {
        self.start_of_frame() && self.keyframe()
    }
}

/// Lets str0m hand the room each packet's [`Descriptor`], and write it again on the forwarded
/// packet.
#[derive(Debug)]
pub(crate) struct Serializer;

impl ExtensionSerializer for Serializer {
    fn write_to(&self, buf: &mut [u8], ev: &ExtensionValues) -> usize {
        match ev.user_values.get::<Descriptor>() {
            Some(d) if d.0.len() <= buf.len() => {
                buf[..d.0.len()].copy_from_slice(&d.0);
                d.0.len()
            }
            _ => 0,
        }
    }

    fn parse_value(&self, buf: &[u8], ev: &mut ExtensionValues) -> bool {
        match Descriptor::parse(buf) {
            Some(d) => {
                ev.user_values.set(d);
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

    fn requires_two_byte_form(&self, ev: &ExtensionValues) -> bool {
        // Descriptors with a template structure exceed the one-byte form's 16 bytes; the
        // others (3 to 16 bytes) fit it, and so does a packet without one (nothing written).
        ev.user_values
            .get::<Descriptor>()
            .is_some_and(|d| d.0.len() > 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mandatory_fields_only() {
        let d = Descriptor::parse(&[0b1000_0011, 0x12, 0x34]).unwrap();
        assert!(d.start_of_frame() && !d.keyframe());
        assert!(!d.starts_keyframe());
        // A later packet of a frame: no start of frame.
        let d = Descriptor::parse(&[0b0100_0000, 0, 7, 0b1000_0000]).unwrap();
        assert!(d.keyframe() && !d.starts_keyframe());
    }

    #[test]
    fn a_template_structure_marks_a_keyframe() {
        let d = Descriptor::parse(&[0b1100_0000, 0, 7, 0b1000_0000, 0xff, 0x01]).unwrap();
        assert!(d.start_of_frame() && d.keyframe());
        assert!(d.starts_keyframe());
        // Extended fields without the structure: a delta frame.
        let d = Descriptor::parse(&[0b1000_0000, 0, 8, 0b0100_0000]).unwrap();
        assert!(!d.keyframe());
    }

    #[test]
    fn the_bytes_are_written_back_unchanged_in_the_form_they_need() {
        let mut ev = ExtensionValues::default();
        let short = [0x80u8, 0, 9, 0x80, 1, 2];
        assert!(Serializer.parse_value(&short, &mut ev));
        assert!(!Serializer.requires_two_byte_form(&ev));
        let mut buf = [0u8; 64];
        assert_eq!(Serializer.write_to(&mut buf, &ev), short.len());
        assert_eq!(&buf[..short.len()], &short);
        let long = [0xc0u8; 40];
        assert!(Serializer.parse_value(&long, &mut ev));
        assert!(Serializer.requires_two_byte_form(&ev));
        assert_eq!(Serializer.write_to(&mut buf, &ev), 40);
        // No descriptor received: nothing written, one-byte form is fine.
        let empty = ExtensionValues::default();
        assert_eq!(Serializer.write_to(&mut buf, &empty), 0);
        assert!(!Serializer.requires_two_byte_form(&empty));
        // A buffer too small for it: nothing written rather than a truncated descriptor.
        assert_eq!(Serializer.write_to(&mut buf[..10], &ev), 0);
    }

    #[test]
    fn too_short_is_not_a_descriptor() {
        assert_eq!(Descriptor::parse(&[]), None);
        assert_eq!(Descriptor::parse(&[0x80, 0]), None);
    }
}
