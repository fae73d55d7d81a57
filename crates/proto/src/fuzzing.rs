//! Harnesses for the fuzz targets in `fuzz/`, kept in the library so they cannot rot: unit tests
//! run them over seeds, and `fuzz/` wraps them for libFuzzer.

use crate::history::{
    FetchArtifactsReq, FetchPastRoomsReq, FetchRecordingsReq, UpdateRecordingMetadataReq,
};
use crate::json;
use crate::room::{prepare_create, RoomPolicy};
use crate::user::GenerateTokenReq;

/// Feeds arbitrary bytes to every request decoder of the `/auth` API. Decoding may fail; it must
/// never panic, and whatever it accepts must serialise back.
pub fn api_request(data: &[u8]) {
    if let Ok(room) = prepare_create(data, &RoomPolicy::default(), 0) {
        // A prepared room is complete and serialisable.
        let text = serde_json::to_string(&room.metadata).expect("prepared metadata serialises");
        assert!(
            !text.contains("\"encryption_key\""),
            "metadata never carries a key field: {text}"
        );
        let _ = room.features();
        let _ = room.e2ee();
    }
    if let Ok(req) = json::decode::<GenerateTokenReq>(data) {
        let _ = req.into_join_request();
    }
    let _ = json::decode::<FetchPastRoomsReq>(data);
    let _ = json::decode::<FetchRecordingsReq>(data);
    let _ = json::decode::<FetchArtifactsReq>(data);
    if let Ok(r) = json::decode::<UpdateRecordingMetadataReq>(data) {
        let _ = serde_json::to_string(&r.metadata);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEDS: &[&str] = &[
        "",
        "{}",
        "[]",
        "null",
        r#"{"room_id":"r","metadata":{"room_title":"T","room_features":{}}}"#,
        r#"{"roomId":"r","maxParticipants":"18446744073709551616","metadata":{"roomTitle":"T","roomFeatures":{"roomDuration":1e300}}}"#,
        r#"{"room_id":"r","metadata":{"room_title":"T","room_features":{"end_to_end_encryption_features":{"is_enabled":true,"encryption_key":null}}}}"#,
        r#"{"room_id":"r","metadata":{"room_title":"T","extra_data":{"a":1},"room_features":{"insights_features":{"ai_features":[]}}}}"#,
        r#"{"room_id":"r","user_info":{"name":"n","user_id":"u","client_type":99}}"#,
        r#"{"type":-1,"from":-5,"limit":4294967296}"#,
        r#"{"record_id":"x","metadata":{"subtitles":{"en":{"label":1}}}}"#,
        "{\"room_id\":\"\u{0}\"}",
        "\u{feff}{}",
    ];

    #[test]
    fn api_request_harness_survives_seeds_and_noise() {
        for s in SEEDS {
            api_request(s.as_bytes());
        }
        // Cheap deterministic noise: every prefix and single-byte corruption of the seeds.
        for s in SEEDS {
            let b = s.as_bytes();
            for i in 0..b.len() {
                api_request(&b[..i]);
                let mut c = b.to_vec();
                c[i] = c[i].wrapping_add(1);
                api_request(&c);
            }
        }
    }
}
