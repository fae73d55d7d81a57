//! `RoomCreateFeatures` and its sub-messages: what a room allows, and the queries the server
//! asks of them.

use serde::{Deserialize, Serialize};

use crate::json::{self, int, opt_int, opt_int64_string};

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
