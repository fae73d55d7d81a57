//! `room/create` and the room metadata: messages, validation, defaults and the E2EE rules.
//!
//! Defaults are applied by merging the caller's `room_features` over a document of defaults
//! ([`json::deep_merge`]): a feature the caller left out gets its default, a feature the caller
//! set (including an explicit `false`) keeps the caller's value. Plug-N-Meet's current Go
//! server uses `proto.Merge`, which cannot turn off a feature whose default is on; we follow the
//! documented intent instead (see `docs/compatibility.md`).
//!
//! The messages and rules live in submodules by subject; every item is re-exported here, so
//! `room::X` is the one path to use. A field documented as *server state* is the server's to set
//! while the room runs; a create request must leave it empty ([`validate_create`] refuses it).

mod defaults;
mod features;
mod metadata;
mod validation;

use defaults::apply_feature_rules;
pub use defaults::{default_features, forbid_server_side_media};
pub use features::{
    BreakoutRoomFeatures, ChatFeatures, DisplayExternalLinkFeatures, EndToEndEncryptionFeatures,
    ExternalBroadcastingFeatures, ExternalMediaPlayerFeatures, IngressFeatures, IngressInput,
    InsightsAiFeatures, InsightsAiMeetingSummarizationFeatures, InsightsAiTextChatFeatures,
    InsightsChatTranslationFeatures, InsightsFeatures, InsightsTranscriptionFeatures,
    PollsFeatures, RecorderBotOptions, RecordingFeatures, RoomCreateFeatures,
    SharedNotePadFeatures, SipDialInFeatures, WaitingRoomFeatures, WhiteboardFeatures,
};
pub use metadata::{CopyrightConf, LockSettings, RoomMetadata, DEFAULT_COPYRIGHT};
pub use validation::validate_create;

use serde::Deserialize;
use serde_json::Value;

use crate::ids::{IdError, RoomId};
use crate::json::{self, opt_int, DecodeError};
use crate::validate::Violations;

/// `CreateRoomReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CreateRoomReq {
    /// The integrator's room id.
    pub room_id: String,
    /// Seconds an empty room stays open.
    #[serde(deserialize_with = "opt_int")]
    pub empty_timeout: Option<u32>,
    /// 0 or absent means unlimited.
    #[serde(deserialize_with = "opt_int")]
    pub max_participants: Option<u32>,
    /// Required.
    pub metadata: Option<RoomMetadata>,
}

/// Server-side settings that shape a new room (from the `room_default_settings` and
/// `upload_file_settings` configuration sections).
#[derive(Debug, Clone, PartialEq)]
pub struct RoomPolicy {
    /// Cap on `max_participants`; 0 means no cap.
    pub max_participants: u32,
    /// Cap on `room_duration` in minutes; 0 means no cap.
    pub max_duration_minutes: u64,
    /// Largest chat upload, MB.
    pub upload_max_size_mb: u64,
    /// Largest whiteboard file, MB.
    pub whiteboard_max_size_mb: u64,
    /// File types allowed in chat uploads.
    pub allowed_file_types: Vec<String>,
    /// Cap on breakout rooms.
    pub max_num_breakout_rooms: u32,
    /// Whether audio/AI insights services are configured at all.
    pub insights_enabled: bool,
    /// Whether SIP dial-in is configured at all.
    pub sip_enabled: bool,
}

impl Default for RoomPolicy {
    fn default() -> Self {
        Self {
            max_participants: 0,
            max_duration_minutes: 0,
            upload_max_size_mb: 50,
            whiteboard_max_size_mb: 30,
            allowed_file_types: ["jpg", "png", "zip", "pdf", "docx", "txt"]
                .map(String::from)
                .to_vec(),
            max_num_breakout_rooms: 16,
            insights_enabled: false,
            sip_enabled: false,
        }
    }
}

/// Shortest empty timeout honoured; anything shorter becomes the default.
pub const MIN_EMPTY_TIMEOUT_SECS: u32 = 120;
/// Empty timeout when none (or too short) is given.
pub const DEFAULT_EMPTY_TIMEOUT_SECS: u32 = 1800;
/// Longest `empty_timeout` honoured (a day); longer requests get this.
pub const MAX_EMPTY_TIMEOUT_SECS: u32 = 24 * 3600;
/// Longest `room_duration` honoured, in minutes (a week), whatever the policy: a timer
/// further out is no limit at all, and one far enough out overflows the clock.
pub const MAX_ROOM_DURATION_MINUTES: u64 = 7 * 24 * 60;
/// Participants in one room at most, even when `max_participants` is 0 (unlimited): each
/// costs the room's owner two peer connections and a share of every forwarded packet.
pub const MAX_PARTICIPANTS_PER_ROOM: u32 = 1000;

/// A validated `room/create` request with every default applied.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedRoom {
    /// The room id.
    pub room_id: RoomId,
    /// Seconds.
    pub empty_timeout: u32,
    /// 0 = unlimited.
    pub max_participants: u32,
    /// Complete metadata; `room_features` and every sub-message are `Some`.
    pub metadata: RoomMetadata,
}

impl PreparedRoom {
    /// The room's features (always present after preparation).
    pub fn features(&self) -> &RoomCreateFeatures {
        self.metadata
            .room_features
            .as_ref()
            .expect("prepare() always fills room_features")
    }

    /// The E2EE settings (always present after preparation).
    pub fn e2ee(&self) -> &EndToEndEncryptionFeatures {
        self.features()
            .end_to_end_encryption_features
            .as_ref()
            .expect("prepare() always fills end_to_end_encryption_features")
    }
}

/// Why a create request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateRoomError {
    /// The body could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A field broke a rule.
    #[error("{0}")]
    Invalid(Violations),
    /// The room id is malformed or reserved.
    #[error(transparent)]
    RoomId(#[from] IdError),
}

/// Decodes, validates and completes a `room/create` body.
pub fn prepare_create(
    body: &[u8],
    policy: &RoomPolicy,
    now_unix: u64,
) -> Result<PreparedRoom, CreateRoomError> {
    let value = json::decode_value(body)?;
    let req: CreateRoomReq = json::from_value_ref(&value)?;
    validate_create(&req).map_err(CreateRoomError::Invalid)?;
    let room_id = RoomId::parse(&req.room_id)?;
    let metadata = req.metadata.expect("validate_create requires metadata");
    let sent_features = value
        .get("metadata")
        .and_then(|m| m.get("room_features"))
        .cloned()
        .unwrap_or(Value::Null);

    let mut features_value = default_features();
    json::deep_merge(&mut features_value, &sent_features);
    let mut features: RoomCreateFeatures = json::from_value(features_value)?;
    apply_feature_rules(&mut features, policy);

    let mut metadata = RoomMetadata {
        room_features: None,
        started_at: now_unix,
        ..metadata
    };
    let locks = metadata
        .default_lock_settings
        .get_or_insert_with(Default::default);
    for lock in [
        &mut locks.lock_screen_sharing,
        &mut locks.lock_whiteboard,
        &mut locks.lock_shared_notepad,
    ] {
        lock.get_or_insert(true);
    }
    metadata
        .copyright_conf
        .get_or_insert_with(|| CopyrightConf {
            display: true,
            text: DEFAULT_COPYRIGHT.to_owned(),
        });

    let max_participants = cap(req.max_participants.unwrap_or(0), policy.max_participants)
        .min(MAX_PARTICIPANTS_PER_ROOM);
    if let Some(d) = features.room_duration.as_mut() {
        *d = cap(*d, policy.max_duration_minutes).min(MAX_ROOM_DURATION_MINUTES);
    } else if policy.max_duration_minutes > 0 {
        features.room_duration = Some(policy.max_duration_minutes.min(MAX_ROOM_DURATION_MINUTES));
    }
    let empty_timeout = match req.empty_timeout {
        Some(t) if t >= MIN_EMPTY_TIMEOUT_SECS => t.min(MAX_EMPTY_TIMEOUT_SECS),
        _ => DEFAULT_EMPTY_TIMEOUT_SECS,
    };
    metadata.room_features = Some(features);
    Ok(PreparedRoom {
        room_id,
        empty_timeout,
        max_participants,
        metadata,
    })
}

/// A request capped by a configured limit, where 0 means "none": no limit keeps the request; a
/// limit replaces a request that is unlimited (0) or above it.
fn cap<T: Copy + Default + Ord>(requested: T, limit: T) -> T {
    let none = T::default();
    if limit > none && (requested == none || requested > limit) {
        limit
    } else {
        requested
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepare(body: &str) -> Result<PreparedRoom, CreateRoomError> {
        prepare_create(body.as_bytes(), &RoomPolicy::default(), 1_700_000_000)
    }

    #[test]
    fn a_limit_caps_a_request_and_fills_an_unlimited_one() {
        assert_eq!(cap(50u32, 10), 10);
        assert_eq!(cap(5u32, 10), 5);
        assert_eq!(cap(0u64, 60), 60);
        assert_eq!(cap(90u64, 0), 90);
        assert_eq!(cap(0u32, 0), 0);
    }

    #[test]
    fn minimal_request_gets_every_default() {
        let r = prepare(r#"{"room_id":"r1","metadata":{"room_title":"T","room_features":{}}}"#)
            .unwrap();
        let f = r.features();
        assert!(f.allow_webcams && f.allow_screen_share && f.enable_analytics);
        assert_eq!(r.empty_timeout, DEFAULT_EMPTY_TIMEOUT_SECS);
        assert_eq!(r.max_participants, 0);
        assert_eq!(r.metadata.started_at, 1_700_000_000);
        assert!(f.recording_features.as_ref().unwrap().is_allow_cloud);
        assert!(f.allows_rtmp());
        assert!(!f.is_e2ee());
        assert_eq!(
            r.metadata
                .default_lock_settings
                .as_ref()
                .unwrap()
                .lock_whiteboard,
            Some(true)
        );
        assert_eq!(
            r.metadata.copyright_conf.as_ref().unwrap().text,
            DEFAULT_COPYRIGHT
        );
        // Insights and SIP are not configured by default.
        assert!(!f.insights_features.as_ref().unwrap().is_allow);
        assert!(!f.sip_dial_in_features.as_ref().unwrap().is_allow);
    }

    #[test]
    fn explicit_false_turns_a_default_on_feature_off() {
        let r = prepare(
            r#"{"roomId":"r1","metadata":{"roomTitle":"T","roomFeatures":{"allowWebcams":false,"recordingFeatures":{"isAllow":false}}}}"#,
        )
        .unwrap();
        let f = r.features();
        assert!(!f.allow_webcams);
        let rec = f.recording_features.as_ref().unwrap();
        assert!(!rec.is_allow && !rec.is_allow_cloud && !rec.is_allow_local);
        assert!(f.allow_screen_share, "untouched defaults stay");
    }

    #[test]
    fn durations_and_participants_are_clamped_to_sane_maximums() {
        let r = prepare_create(
            format!(
                r#"{{"room_id":"r","empty_timeout":4294967295,"max_participants":4294967295,"metadata":{{"room_title":"T","room_features":{{"room_duration":"{}"}}}}}}"#,
                u64::MAX
            )
            .as_bytes(),
            &RoomPolicy::default(),
            0,
        )
        .unwrap();
        assert_eq!(r.empty_timeout, MAX_EMPTY_TIMEOUT_SECS);
        assert_eq!(r.max_participants, MAX_PARTICIPANTS_PER_ROOM);
        assert_eq!(r.features().room_duration, Some(MAX_ROOM_DURATION_MINUTES));
        // Within the maximums, what was asked for.
        let r = prepare_create(
            br#"{"room_id":"r","empty_timeout":600,"max_participants":20,"metadata":{"room_title":"T","room_features":{"room_duration":"90"}}}"#,
            &RoomPolicy::default(),
            0,
        )
        .unwrap();
        assert_eq!(
            (
                r.empty_timeout,
                r.max_participants,
                r.features().room_duration
            ),
            (600, 20, Some(90))
        );
    }

    #[test]
    fn short_empty_timeout_becomes_the_default_and_caps_apply() {
        let policy = RoomPolicy {
            max_participants: 10,
            max_duration_minutes: 60,
            ..RoomPolicy::default()
        };
        let r = prepare_create(
            br#"{"room_id":"r","empty_timeout":30,"max_participants":50,"metadata":{"room_title":"T","room_features":{"room_duration":"90"}}}"#,
            &policy,
            0,
        )
        .unwrap();
        assert_eq!(r.empty_timeout, DEFAULT_EMPTY_TIMEOUT_SECS);
        assert_eq!(r.max_participants, 10);
        assert_eq!(r.features().room_duration, Some(60));
    }

    #[test]
    fn e2ee_in_either_mode_turns_off_everything_that_needs_the_media() {
        for self_insert in [false, true] {
            let body = format!(
                r#"{{"room_id":"r","metadata":{{"room_title":"T","room_features":{{"allow_rtmp":true,
                "recording_features":{{"is_allow":true,"is_allow_cloud":true,"enable_auto_cloud_recording":true}},
                "end_to_end_encryption_features":{{"is_enabled":true,"enabled_self_insert_encryption_key":{self_insert}}}}}}}}}"#
            );
            let policy = RoomPolicy {
                insights_enabled: true,
                sip_enabled: true,
                ..RoomPolicy::default()
            };
            let r = prepare_create(body.as_bytes(), &policy, 0).unwrap();
            let f = r.features();
            let rec = f.recording_features.as_ref().unwrap();
            assert!(!rec.is_allow_cloud && !rec.enable_auto_cloud_recording);
            assert!(rec.is_allow_local, "local recording happens in the browser");
            assert!(!f.allows_cloud_recording() && !f.allows_rtmp());
            let bc = f.external_broadcasting_features.as_ref().unwrap();
            assert!(!bc.is_allow && !bc.is_allow_rtmp);
            let ins = f.insights_features.as_ref().unwrap();
            assert!(!ins.is_allow);
            assert!(!ins.transcription_features.as_ref().unwrap().is_allow);
            let ai = ins.ai_features.as_ref().unwrap();
            assert!(!ai.meeting_summarization_features.as_ref().unwrap().is_allow);
            assert!(!f.sip_dial_in_features.as_ref().unwrap().is_allow);
            assert!(!f.ingress_features.as_ref().unwrap().is_allow);
            assert_eq!(f.is_self_insert_key(), self_insert);
        }
    }

    #[test]
    fn e2ee_off_clears_the_dependent_flags() {
        let r = prepare(
            r#"{"room_id":"r","metadata":{"room_title":"T","room_features":{"end_to_end_encryption_features":{"is_enabled":false,"included_chat_messages":true,"enabled_self_insert_encryption_key":true}}}}"#,
        )
        .unwrap();
        let e = r.e2ee();
        assert!(!e.included_chat_messages && !e.enabled_self_insert_encryption_key);
    }

    #[test]
    fn a_caller_supplied_encryption_key_is_refused_and_never_serialised() {
        let err = prepare(
            r#"{"room_id":"r","metadata":{"room_title":"T","room_features":{"end_to_end_encryption_features":{"is_enabled":true,"encryption_key":"abc"}}}}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("end_to_end_encryption_features.encryption_key"),
            "{err}"
        );

        let f = EndToEndEncryptionFeatures {
            encryption_key: Some("SECRET".into()),
            ..Default::default()
        };
        assert!(!serde_json::to_string(&f).unwrap().contains("SECRET"));
    }

    #[test]
    fn validation_names_each_bad_field() {
        let cases = [
            (
                r#"{"room_id":"a b","metadata":{"room_title":"T","room_features":{}}}"#,
                "room_id",
            ),
            (
                r#"{"room_id":"user_x","metadata":{"room_title":"T","room_features":{}}}"#,
                "room_id",
            ),
            (r#"{"room_id":"r"}"#, "metadata"),
            (
                r#"{"room_id":"r","metadata":{"room_features":{}}}"#,
                "metadata.room_title",
            ),
            (
                r#"{"room_id":"r","metadata":{"room_title":"T"}}"#,
                "metadata.room_features",
            ),
            (
                r#"{"room_id":"r","empty_timeout":0,"metadata":{"room_title":"T","room_features":{}}}"#,
                "empty_timeout",
            ),
            (
                r#"{"room_id":"r","metadata":{"room_title":"T","is_recording":true,"room_features":{}}}"#,
                "metadata.is_recording",
            ),
            (
                r#"{"room_id":"r","metadata":{"room_title":"T","webhook_url":"not a url","room_features":{}}}"#,
                "metadata.webhook_url",
            ),
            (
                r#"{"room_id":"r","metadata":{"room_title":"T","room_features":{"polls_features":{"is_active":true}}}}"#,
                "polls_features.is_active",
            ),
            (
                r#"{"room_id":"r","metadata":{"room_title":"T","room_features":{"room_duration":"abc"}}}"#,
                "metadata.room_features.room_duration",
            ),
            (
                r#"{"room_id":"r","max_participants":-3,"metadata":{"room_title":"T","room_features":{}}}"#,
                "max_participants",
            ),
        ];
        for (body, field) in cases {
            let err = prepare(body).unwrap_err().to_string();
            assert!(err.contains(field), "{body}: {err}");
        }
    }

    #[test]
    fn metadata_serialises_with_snake_case_and_int64_strings() {
        let r = prepare(
            r#"{"room_id":"r","metadata":{"room_title":"T","room_features":{"room_duration":5}}}"#,
        )
        .unwrap();
        let v: Value = serde_json::to_value(&r.metadata).unwrap();
        assert_eq!(v["started_at"], "1700000000");
        assert_eq!(v["room_features"]["room_duration"], "5");
        assert_eq!(v["is_recording"], false);
        assert!(
            v.get("welcome_message").is_none(),
            "unset optional scalars are omitted"
        );
    }
}
