//! `room/create` and the room metadata: messages, validation, defaults and the E2EE rules.
//!
//! Defaults are applied by merging the caller's `room_features` over a document of defaults
//! ([`json::deep_merge`]): a feature the caller left out gets its default, a feature the caller
//! set (including an explicit `false`) keeps the caller's value. Plug-N-Meet's current Go
//! server uses `proto.Merge`, which cannot turn off a feature whose default is on; we follow the
//! documented intent instead (see `docs/compatibility.md`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{IdError, RoomId};
use crate::json::{self, int, int64_string, opt_int, opt_int64_string, DecodeError};
use crate::validate::{is_uri, Violations};

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

/// `RoomMetadata`: the room's settings as the clients see them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoomMetadata {
    pub room_title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub welcome_message: Option<String>,
    pub is_recording: bool,
    pub is_active_rtmp: bool,
    pub parent_room_id: String,
    pub is_breakout_room: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    #[serde(deserialize_with = "int", serialize_with = "int64_string")]
    pub started_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logout_url: Option<String>,
    pub room_features: Option<RoomCreateFeatures>,
    pub default_lock_settings: Option<LockSettings>,
    pub copyright_conf: Option<CopyrightConf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_id: Option<String>,
    pub extra_data: BTreeMap<String, String>,
}

/// `RoomCreateFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoomCreateFeatures {
    pub allow_webcams: bool,
    pub mute_on_start: bool,
    pub allow_screen_share: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_rtmp: Option<bool>,
    pub allow_view_other_webcams: bool,
    pub allow_view_other_users_list: bool,
    pub admin_only_webcams: bool,
    #[serde(
        deserialize_with = "opt_int",
        serialize_with = "opt_int64_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub room_duration: Option<u64>,
    pub enable_analytics: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_virtual_bg: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_raise_hand: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_reactions: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_gen_user_id: Option<bool>,
    pub recording_features: Option<RecordingFeatures>,
    pub chat_features: Option<ChatFeatures>,
    pub shared_note_pad_features: Option<SharedNotePadFeatures>,
    pub whiteboard_features: Option<WhiteboardFeatures>,
    pub external_media_player_features: Option<ExternalMediaPlayerFeatures>,
    pub waiting_room_features: Option<WaitingRoomFeatures>,
    pub breakout_room_features: Option<BreakoutRoomFeatures>,
    pub display_external_link_features: Option<DisplayExternalLinkFeatures>,
    pub ingress_features: Option<IngressFeatures>,
    pub end_to_end_encryption_features: Option<EndToEndEncryptionFeatures>,
    pub polls_features: Option<PollsFeatures>,
    pub insights_features: Option<InsightsFeatures>,
    pub sip_dial_in_features: Option<SipDialInFeatures>,
    pub external_broadcasting_features: Option<ExternalBroadcastingFeatures>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecorderBotOptions {
    pub enable_auto_close_chat_panel: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordingFeatures {
    pub is_allow: bool,
    pub is_allow_cloud: bool,
    pub enable_auto_cloud_recording: bool,
    pub is_allow_local: bool,
    pub only_record_admin_webcams: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorder_bot_options: Option<RecorderBotOptions>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatFeatures {
    pub is_allow: bool,
    pub is_allow_file_upload: bool,
    pub allowed_file_types: Vec<String>,
    #[serde(
        deserialize_with = "opt_int",
        serialize_with = "opt_int64_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_file_size: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SharedNotePadFeatures {
    pub is_allow: bool,
    pub is_active: bool,
    pub visible: bool,
    pub note_pad_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WhiteboardFeatures {
    pub is_allow: bool,
    pub visible: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preload_file: Option<String>,
    pub whiteboard_file_id: String,
    pub file_name: String,
    pub file_path: String,
    #[serde(deserialize_with = "int")]
    pub total_pages: u32,
    #[serde(
        deserialize_with = "opt_int",
        serialize_with = "opt_int64_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_allowed_file_size: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExternalMediaPlayerFeatures {
    pub is_allow: bool,
    pub is_active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WaitingRoomFeatures {
    pub is_active: bool,
    pub waiting_room_msg: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BreakoutRoomFeatures {
    pub is_allow: bool,
    pub is_active: bool,
    #[serde(deserialize_with = "int")]
    pub allowed_number_rooms: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DisplayExternalLinkFeatures {
    pub is_allow: bool,
    pub is_active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_by: Option<String>,
}

json::proto_enum! {
    /// `IngressInput`.
    IngressInput {
        RtmpInput = 0 => "RTMP_INPUT",
        WhipInput = 1 => "WHIP_INPUT",
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IngressFeatures {
    pub is_allow: bool,
    pub input_type: IngressInput,
    pub url: String,
    pub stream_key: String,
}

/// `EndToEndEncryptionFeatures`. The room secret is **never** part of this message: the
/// `encryption_key` field exists only so that a caller who fills it in can be refused, and it is
/// never serialised, so no reply, webhook or stored metadata can carry a key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndToEndEncryptionFeatures {
    pub is_enabled: bool,
    pub included_chat_messages: bool,
    pub included_whiteboard: bool,
    pub enabled_self_insert_encryption_key: bool,
    #[serde(skip_serializing)]
    pub encryption_key: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PollsFeatures {
    pub is_allow: bool,
    pub is_active: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SipDialInFeatures {
    pub is_allow: bool,
    pub enable_dial_in_on_create: bool,
    pub hide_phone_number: bool,
    pub is_active: bool,
    pub phone_numbers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatch_rule_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InsightsFeatures {
    pub is_allow: bool,
    pub transcription_features: Option<InsightsTranscriptionFeatures>,
    pub chat_translation_features: Option<InsightsChatTranslationFeatures>,
    pub ai_features: Option<InsightsAiFeatures>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InsightsTranscriptionFeatures {
    pub is_allow: bool,
    pub is_allow_translation: bool,
    pub is_allow_speech_synthesis: bool,
    pub is_enabled: bool,
    pub allowed_spoken_langs: Vec<String>,
    pub allowed_speech_users: Vec<String>,
    pub is_enabled_translation: bool,
    #[serde(deserialize_with = "int")]
    pub max_selected_trans_langs: i32,
    pub allowed_trans_langs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_subtitle_lang: Option<String>,
    pub is_enabled_speech_synthesis: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InsightsChatTranslationFeatures {
    pub is_allow: bool,
    pub is_enabled: bool,
    pub allowed_trans_langs: Vec<String>,
    #[serde(deserialize_with = "int")]
    pub max_selected_trans_langs: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_lang: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InsightsAiFeatures {
    pub is_allow: bool,
    pub ai_text_chat_features: Option<InsightsAiTextChatFeatures>,
    pub meeting_summarization_features: Option<InsightsAiMeetingSummarizationFeatures>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InsightsAiTextChatFeatures {
    pub is_allow: bool,
    pub is_enabled: bool,
    pub is_allowed_everyone: bool,
    pub allowed_user_ids: Vec<String>,
    pub is_notepad_ai_disabled: bool,
    pub is_whiteboard_ai_disabled: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InsightsAiMeetingSummarizationFeatures {
    pub is_allow: bool,
    pub summarization_prompt: String,
    pub is_enabled: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExternalBroadcastingFeatures {
    pub is_allow: bool,
    pub is_allow_rtmp: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorder_bot_options: Option<RecorderBotOptions>,
}

/// `LockSettings`: every lock is optional (unset means "not decided here").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LockSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_microphone: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_webcam: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_screen_sharing: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_chat: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_chat_send_message: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_chat_file_share: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_private_chat: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_whiteboard: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_shared_notepad: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_reactions: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CopyrightConf {
    pub display: bool,
    pub text: String,
}

/// The default copyright line, as Plug-N-Meet shows it.
pub const DEFAULT_COPYRIGHT: &str =
    r#"Powered by <a href="https://www.plugnmeet.org" target="_blank">plugNmeet</a>"#;

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
        *d = cap_u64(*d, policy.max_duration_minutes).min(MAX_ROOM_DURATION_MINUTES);
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

fn cap(requested: u32, limit: u32) -> u32 {
    if limit > 0 && (requested == 0 || requested > limit) {
        limit
    } else {
        requested
    }
}

fn cap_u64(requested: u64, limit: u64) -> u64 {
    if limit > 0 && (requested == 0 || requested > limit) {
        limit
    } else {
        requested
    }
}

/// Checks every rule of `CreateRoomReq`, collecting all violations.
pub fn validate_create(req: &CreateRoomReq) -> Result<(), Violations> {
    let mut v = Violations::default();
    match RoomId::parse(&req.room_id) {
        Ok(_) => {}
        Err(e @ IdError::Charset { .. }) => v.push("room_id", e.to_string(), "room_id_format"),
        Err(e) => v.push("room_id", e.to_string(), "room_id_reserved"),
    }
    if req.empty_timeout == Some(0) {
        v.push("empty_timeout", "value must be greater than 0", "uint32.gt");
    }
    if req.max_participants == Some(0) {
        v.push(
            "max_participants",
            "value must be greater than 0",
            "uint32.gt",
        );
    }
    let Some(m) = &req.metadata else {
        v.push("metadata", "value is required", "required");
        return v.into_result();
    };
    if m.room_title.is_empty() {
        v.push("metadata.room_title", "value is required", "required");
    }
    v.must_be_empty("metadata.is_recording", &m.is_recording);
    v.must_be_empty("metadata.is_active_rtmp", &m.is_active_rtmp);
    v.must_be_empty("metadata.parent_room_id", &m.parent_room_id);
    v.must_be_empty("metadata.is_breakout_room", &m.is_breakout_room);
    v.must_be_empty("metadata.started_at", &m.started_at);
    v.must_be_empty(
        "metadata.metadata_id",
        &m.metadata_id.clone().unwrap_or_default(),
    );
    for (field, url) in [
        ("metadata.webhook_url", &m.webhook_url),
        ("metadata.logout_url", &m.logout_url),
    ] {
        if let Some(u) = url {
            if !is_uri(u) {
                v.push(field, "value must be a valid URI", "string.uri");
            }
        }
    }
    let Some(f) = &m.room_features else {
        v.push("metadata.room_features", "value is required", "required");
        return v.into_result();
    };
    validate_internal_features(f, &mut v);
    v.into_result()
}

fn validate_internal_features(f: &RoomCreateFeatures, v: &mut Violations) {
    const P: &str = "metadata.room_features";
    if let Some(s) = &f.shared_note_pad_features {
        v.must_be_empty(
            &format!("{P}.shared_note_pad_features.is_active"),
            &s.is_active,
        );
        v.must_be_empty(&format!("{P}.shared_note_pad_features.visible"), &s.visible);
        v.must_be_empty(
            &format!("{P}.shared_note_pad_features.note_pad_id"),
            &s.note_pad_id,
        );
    }
    if let Some(w) = &f.whiteboard_features {
        let p = format!("{P}.whiteboard_features");
        v.must_be_empty(&format!("{p}.visible"), &w.visible);
        v.must_be_empty(&format!("{p}.whiteboard_file_id"), &w.whiteboard_file_id);
        v.must_be_empty(&format!("{p}.file_name"), &w.file_name);
        v.must_be_empty(&format!("{p}.file_path"), &w.file_path);
        v.must_be_empty(
            &format!("{p}.max_allowed_file_size"),
            &w.max_allowed_file_size.unwrap_or(0),
        );
        if let Some(u) = &w.preload_file {
            if !is_uri(u) {
                v.push(
                    format!("{p}.preload_file"),
                    "value must be a valid URI",
                    "string.uri",
                );
            }
        }
    }
    if let Some(e) = &f.external_media_player_features {
        let p = format!("{P}.external_media_player_features");
        v.must_be_empty(&format!("{p}.is_active"), &e.is_active);
        v.must_be_empty(
            &format!("{p}.shared_by"),
            &e.shared_by.clone().unwrap_or_default(),
        );
        v.must_be_empty(&format!("{p}.url"), &e.url.clone().unwrap_or_default());
    }
    if let Some(b) = &f.breakout_room_features {
        v.must_be_empty(
            &format!("{P}.breakout_room_features.is_active"),
            &b.is_active,
        );
    }
    if let Some(d) = &f.display_external_link_features {
        v.must_be_empty(
            &format!("{P}.display_external_link_features.is_active"),
            &d.is_active,
        );
    }
    if let Some(i) = &f.ingress_features {
        v.must_be_empty(&format!("{P}.ingress_features.url"), &i.url);
        v.must_be_empty(&format!("{P}.ingress_features.stream_key"), &i.stream_key);
    }
    if let Some(e) = &f.end_to_end_encryption_features {
        v.must_be_empty(
            &format!("{P}.end_to_end_encryption_features.encryption_key"),
            &e.encryption_key.clone().unwrap_or_default(),
        );
    }
    if let Some(p) = &f.polls_features {
        v.must_be_empty(&format!("{P}.polls_features.is_active"), &p.is_active);
    }
    if let Some(s) = &f.sip_dial_in_features {
        let p = format!("{P}.sip_dial_in_features");
        v.must_be_empty(&format!("{p}.is_active"), &s.is_active);
        v.must_be_empty(&format!("{p}.phone_numbers"), &s.phone_numbers);
        v.must_be_empty(&format!("{p}.pin"), &s.pin.clone().unwrap_or_default());
        v.must_be_empty(
            &format!("{p}.dispatch_rule_id"),
            &s.dispatch_rule_id.clone().unwrap_or_default(),
        );
    }
    if let Some(i) = &f.insights_features {
        let p = format!("{P}.insights_features");
        if let Some(t) = &i.transcription_features {
            let p = format!("{p}.transcription_features");
            v.must_be_empty(&format!("{p}.is_enabled"), &t.is_enabled);
            v.must_be_empty(
                &format!("{p}.allowed_spoken_langs"),
                &t.allowed_spoken_langs,
            );
            v.must_be_empty(
                &format!("{p}.allowed_speech_users"),
                &t.allowed_speech_users,
            );
            v.must_be_empty(
                &format!("{p}.is_enabled_translation"),
                &t.is_enabled_translation,
            );
            v.must_be_empty(
                &format!("{p}.max_selected_trans_langs"),
                &t.max_selected_trans_langs,
            );
            v.must_be_empty(&format!("{p}.allowed_trans_langs"), &t.allowed_trans_langs);
            v.must_be_empty(
                &format!("{p}.default_subtitle_lang"),
                &t.default_subtitle_lang.clone().unwrap_or_default(),
            );
            v.must_be_empty(
                &format!("{p}.is_enabled_speech_synthesis"),
                &t.is_enabled_speech_synthesis,
            );
        }
        if let Some(c) = &i.chat_translation_features {
            let p = format!("{p}.chat_translation_features");
            v.must_be_empty(&format!("{p}.is_enabled"), &c.is_enabled);
            v.must_be_empty(&format!("{p}.allowed_trans_langs"), &c.allowed_trans_langs);
            v.must_be_empty(
                &format!("{p}.max_selected_trans_langs"),
                &c.max_selected_trans_langs,
            );
            v.must_be_empty(
                &format!("{p}.default_lang"),
                &c.default_lang.clone().unwrap_or_default(),
            );
        }
        if let Some(a) = &i.ai_features {
            let p = format!("{p}.ai_features");
            if let Some(t) = &a.ai_text_chat_features {
                let p = format!("{p}.ai_text_chat_features");
                v.must_be_empty(&format!("{p}.is_enabled"), &t.is_enabled);
                v.must_be_empty(&format!("{p}.is_allowed_everyone"), &t.is_allowed_everyone);
                v.must_be_empty(&format!("{p}.allowed_user_ids"), &t.allowed_user_ids);
                v.must_be_empty(
                    &format!("{p}.is_notepad_ai_disabled"),
                    &t.is_notepad_ai_disabled,
                );
                v.must_be_empty(
                    &format!("{p}.is_whiteboard_ai_disabled"),
                    &t.is_whiteboard_ai_disabled,
                );
            }
            if let Some(s) = &a.meeting_summarization_features {
                v.must_be_empty(
                    &format!("{p}.meeting_summarization_features.is_enabled"),
                    &s.is_enabled,
                );
            }
        }
    }
}

/// The feature defaults, as a JSON document the caller's features are merged over.
pub fn default_features() -> Value {
    serde_json::json!({
        "allow_webcams": true,
        "mute_on_start": false,
        "allow_screen_share": true,
        "allow_view_other_webcams": true,
        "allow_view_other_users_list": true,
        "admin_only_webcams": false,
        "enable_analytics": true,
        "allow_virtual_bg": true,
        "allow_raise_hand": true,
        "allow_reactions": true,
        "auto_gen_user_id": false,
        "recording_features": {"is_allow": true, "is_allow_cloud": true, "is_allow_local": true, "enable_auto_cloud_recording": false},
        "chat_features": {"is_allow": true, "is_allow_file_upload": true},
        "shared_note_pad_features": {"is_allow": true},
        "whiteboard_features": {"is_allow": true},
        "external_media_player_features": {"is_allow": true},
        "waiting_room_features": {"is_active": false},
        "breakout_room_features": {"is_allow": true, "allowed_number_rooms": 6},
        "display_external_link_features": {"is_allow": true},
        "ingress_features": {"is_allow": true},
        "end_to_end_encryption_features": {"is_enabled": false},
        "polls_features": {"is_allow": true},
        "insights_features": {
            "is_allow": true,
            "transcription_features": {"is_allow": true},
            "chat_translation_features": {"is_allow": true},
            "ai_features": {
                "is_allow": true,
                "ai_text_chat_features": {"is_allow": true},
                "meeting_summarization_features": {"is_allow": true}
            }
        },
        "sip_dial_in_features": {"is_allow": true},
        "external_broadcasting_features": {"is_allow": true, "is_allow_rtmp": true}
    })
}

/// The rules that tie features to each other, to the server's configuration, and to E2EE.
fn apply_feature_rules(f: &mut RoomCreateFeatures, policy: &RoomPolicy) {
    let rec = f.recording_features.get_or_insert_with(Default::default);
    if !rec.is_allow {
        rec.is_allow_cloud = false;
        rec.is_allow_local = false;
        rec.enable_auto_cloud_recording = false;
    }
    let chat = f.chat_features.get_or_insert_with(Default::default);
    if !chat.is_allow {
        chat.is_allow_file_upload = false;
    }
    if chat.is_allow_file_upload {
        if chat.allowed_file_types.is_empty() {
            chat.allowed_file_types = policy.allowed_file_types.clone();
        }
        chat.max_file_size = Some(policy.upload_max_size_mb);
    }
    let wb = f.whiteboard_features.get_or_insert_with(Default::default);
    if wb.is_allow {
        wb.max_allowed_file_size = Some(policy.whiteboard_max_size_mb);
    }
    let bk = f
        .breakout_room_features
        .get_or_insert_with(Default::default);
    if bk.is_allow && bk.allowed_number_rooms == 0 {
        bk.allowed_number_rooms = 6;
    }
    bk.allowed_number_rooms = bk.allowed_number_rooms.min(policy.max_num_breakout_rooms);
    let bc = f
        .external_broadcasting_features
        .get_or_insert_with(Default::default);
    if let Some(rtmp) = f.allow_rtmp {
        bc.is_allow = rtmp;
        bc.is_allow_rtmp = rtmp;
    }
    if !bc.is_allow {
        bc.is_allow_rtmp = false;
    }
    if !policy.insights_enabled {
        f.insights_features
            .get_or_insert_with(Default::default)
            .is_allow = false;
    }
    if !policy.sip_enabled {
        f.sip_dial_in_features
            .get_or_insert_with(Default::default)
            .is_allow = false;
    }
    for_each_default_submessage(f);

    let e2ee = f
        .end_to_end_encryption_features
        .get_or_insert_with(Default::default);
    if e2ee.is_enabled {
        forbid_server_side_media(f);
    } else {
        e2ee.enabled_self_insert_encryption_key = false;
        e2ee.included_chat_messages = false;
        e2ee.included_whiteboard = false;
    }
    cascade_insights(f);
}

/// Makes every sub-message present so that clients never meet a `null` feature.
fn for_each_default_submessage(f: &mut RoomCreateFeatures) {
    f.shared_note_pad_features
        .get_or_insert_with(Default::default);
    f.external_media_player_features
        .get_or_insert_with(Default::default);
    f.waiting_room_features.get_or_insert_with(Default::default);
    f.display_external_link_features
        .get_or_insert_with(Default::default);
    f.ingress_features.get_or_insert_with(Default::default);
    f.polls_features.get_or_insert_with(Default::default);
    f.sip_dial_in_features.get_or_insert_with(Default::default);
    let i = f.insights_features.get_or_insert_with(Default::default);
    i.transcription_features
        .get_or_insert_with(Default::default);
    i.chat_translation_features
        .get_or_insert_with(Default::default);
    let ai = i.ai_features.get_or_insert_with(Default::default);
    ai.ai_text_chat_features
        .get_or_insert_with(Default::default);
    ai.meeting_summarization_features
        .get_or_insert_with(Default::default);
}

/// In an E2EE room, whichever key model, the server cannot see the media, so every feature that
/// would need it is switched off: cloud recording (and auto recording), RTMP and external
/// broadcasting, every insights service (transcription, speech translation and synthesis,
/// meeting summarization, and the text services that would receive chat in clear), SIP dial-in
/// and ingress. Local recording stays: it happens in the participant's own browser.
/// The server also refuses these at every endpoint that would start them.
pub fn forbid_server_side_media(f: &mut RoomCreateFeatures) {
    let rec = f.recording_features.get_or_insert_with(Default::default);
    rec.is_allow_cloud = false;
    rec.enable_auto_cloud_recording = false;
    let bc = f
        .external_broadcasting_features
        .get_or_insert_with(Default::default);
    bc.is_allow = false;
    bc.is_allow_rtmp = false;
    f.allow_rtmp = f.allow_rtmp.map(|_| false);
    f.insights_features
        .get_or_insert_with(Default::default)
        .is_allow = false;
    f.sip_dial_in_features
        .get_or_insert_with(Default::default)
        .is_allow = false;
    f.ingress_features
        .get_or_insert_with(Default::default)
        .is_allow = false;
}

fn cascade_insights(f: &mut RoomCreateFeatures) {
    let i = f.insights_features.get_or_insert_with(Default::default);
    let all = i.is_allow;
    let t = i
        .transcription_features
        .get_or_insert_with(Default::default);
    if !all {
        t.is_allow = false;
    }
    if !t.is_allow {
        t.is_allow_translation = false;
        t.is_allow_speech_synthesis = false;
    }
    if !all {
        i.chat_translation_features
            .get_or_insert_with(Default::default)
            .is_allow = false;
    }
    let ai = i.ai_features.get_or_insert_with(Default::default);
    if !all {
        ai.is_allow = false;
    }
    if !ai.is_allow {
        ai.ai_text_chat_features
            .get_or_insert_with(Default::default)
            .is_allow = false;
        ai.meeting_summarization_features
            .get_or_insert_with(Default::default)
            .is_allow = false;
    }
}

impl RoomCreateFeatures {
    /// Whether cloud recording may be started in this room.
    pub fn allows_cloud_recording(&self) -> bool {
        self.recording_features
            .as_ref()
            .is_some_and(|r| r.is_allow && r.is_allow_cloud)
            && !self.is_e2ee()
    }

    /// Whether RTMP broadcasting may be started in this room.
    pub fn allows_rtmp(&self) -> bool {
        self.external_broadcasting_features
            .as_ref()
            .is_some_and(|b| b.is_allow && b.is_allow_rtmp)
            && !self.is_e2ee()
    }

    /// Whether the room is end-to-end encrypted.
    pub fn is_e2ee(&self) -> bool {
        self.end_to_end_encryption_features
            .as_ref()
            .is_some_and(|e| e.is_enabled)
    }

    /// Whether participants supply the key themselves (self-insert mode).
    pub fn is_self_insert_key(&self) -> bool {
        self.end_to_end_encryption_features
            .as_ref()
            .is_some_and(|e| e.is_enabled && e.enabled_self_insert_encryption_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepare(body: &str) -> Result<PreparedRoom, CreateRoomError> {
        prepare_create(body.as_bytes(), &RoomPolicy::default(), 1_700_000_000)
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
