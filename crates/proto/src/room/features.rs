//! `RoomCreateFeatures` and its sub-messages: what a room allows, and the queries the server
//! asks of them.

use serde::{Deserialize, Serialize};

use crate::json::{self, int, opt_int, opt_int64_string};

/// `RoomCreateFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoomCreateFeatures {
    /// Participants may publish a webcam (default on).
    pub allow_webcams: bool,
    /// Participants join with their microphone muted (default off).
    pub mute_on_start: bool,
    /// Participants may share their screen (default on).
    pub allow_screen_share: bool,
    /// Deprecated switch for RTMP broadcasting: when present it overrides both flags of
    /// `external_broadcasting_features`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_rtmp: Option<bool>,
    /// Non-admins see each other's webcams; off: they see the admins' only (default on).
    pub allow_view_other_webcams: bool,
    /// Non-admins see the participant list; off: admins only (default on).
    pub allow_view_other_users_list: bool,
    /// Only admins may publish a webcam (default off).
    pub admin_only_webcams: bool,
    /// Minutes after which the room ends; unset or 0 is no limit. Capped by the server's
    /// `room_default_settings.max_duration` and by [`super::MAX_ROOM_DURATION_MINUTES`].
    #[serde(
        deserialize_with = "opt_int",
        serialize_with = "opt_int64_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub room_duration: Option<u64>,
    /// Write a `MEETING_ANALYTICS` artifact when the room ends (default on).
    pub enable_analytics: bool,
    /// Participants may blur or replace their webcam background (default on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_virtual_bg: Option<bool>,
    /// Participants may raise a hand (default on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_raise_hand: Option<bool>,
    /// Participants may send emoji reactions (default on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_reactions: Option<bool>,
    /// The server gives every joiner a fresh UUID as user id, whatever the integrator sent
    /// (default off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_gen_user_id: Option<bool>,
    /// Cloud and local recording.
    pub recording_features: Option<RecordingFeatures>,
    /// Public and private chat, and file sharing in it.
    pub chat_features: Option<ChatFeatures>,
    /// The shared notepad.
    pub shared_note_pad_features: Option<SharedNotePadFeatures>,
    /// The whiteboard, and the file shown on it.
    pub whiteboard_features: Option<WhiteboardFeatures>,
    /// A video everyone watches together (by URL).
    pub external_media_player_features: Option<ExternalMediaPlayerFeatures>,
    /// Admins admit each non-admin who joins.
    pub waiting_room_features: Option<WaitingRoomFeatures>,
    /// Breakout rooms.
    pub breakout_room_features: Option<BreakoutRoomFeatures>,
    /// A web page shown to everyone in a frame.
    pub display_external_link_features: Option<DisplayExternalLinkFeatures>,
    /// Media pushed into the room from outside (RTMP or WHIP).
    pub ingress_features: Option<IngressFeatures>,
    /// End-to-end encryption of media (and optionally chat and whiteboard).
    pub end_to_end_encryption_features: Option<EndToEndEncryptionFeatures>,
    /// Polls.
    pub polls_features: Option<PollsFeatures>,
    /// Transcription, translation and AI services.
    pub insights_features: Option<InsightsFeatures>,
    /// Joining by telephone (SIP dial-in).
    pub sip_dial_in_features: Option<SipDialInFeatures>,
    /// Broadcasting the room to an RTMP service.
    pub external_broadcasting_features: Option<ExternalBroadcastingFeatures>,
}

/// `RecorderBotOptions`: how the recorder's headless client lays out what it records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecorderBotOptions {
    /// Close the chat panel so that the recording shows the media only.
    pub enable_auto_close_chat_panel: bool,
}

/// `RecordingFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordingFeatures {
    /// Any recording at all; off turns the three below off too (default on).
    pub is_allow: bool,
    /// Recording on the server (default on; off in an end-to-end encrypted room).
    pub is_allow_cloud: bool,
    /// Start a cloud recording as soon as the room starts (default off).
    pub enable_auto_cloud_recording: bool,
    /// Recording in a participant's own browser (default on).
    pub is_allow_local: bool,
    /// Recordings show the admins' webcams only.
    pub only_record_admin_webcams: bool,
    /// Options for the recorder's client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorder_bot_options: Option<RecorderBotOptions>,
}

/// `ChatFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatFeatures {
    /// Chat at all; off also turns file upload off (default on).
    pub is_allow: bool,
    /// Participants may share files in the chat (default on).
    pub is_allow_file_upload: bool,
    /// File extensions that may be shared; empty: the server's
    /// `upload_file_settings.allowed_types`.
    pub allowed_file_types: Vec<String>,
    /// Largest shared file, MB; set by the server from `upload_file_settings.max_size`.
    #[serde(
        deserialize_with = "opt_int",
        serialize_with = "opt_int64_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_file_size: Option<u64>,
}

/// `SharedNotePadFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SharedNotePadFeatures {
    /// The notepad may be used (default on).
    pub is_allow: bool,
    /// Server state: an admin has opened the notepad (callers must leave it false).
    pub is_active: bool,
    /// Server state: the notepad is shown to everyone.
    pub visible: bool,
    /// Server state: the id of the open notepad document.
    pub note_pad_id: String,
}

/// `WhiteboardFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WhiteboardFeatures {
    /// The whiteboard may be used (default on).
    pub is_allow: bool,
    /// Server state: the whiteboard is shown to everyone.
    pub visible: bool,
    /// URL of a document (office or PDF) to put on the whiteboard when the room is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preload_file: Option<String>,
    /// Server state: the id of the document on the whiteboard.
    pub whiteboard_file_id: String,
    /// Server state: that document's file name.
    pub file_name: String,
    /// Server state: where that document's converted pages are stored.
    pub file_path: String,
    /// Server state: that document's page count.
    #[serde(deserialize_with = "int")]
    pub total_pages: u32,
    /// Largest document, MB; set by the server from
    /// `upload_file_settings.max_size_whiteboard_file`.
    #[serde(
        deserialize_with = "opt_int",
        serialize_with = "opt_int64_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_allowed_file_size: Option<u64>,
}

/// `ExternalMediaPlayerFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExternalMediaPlayerFeatures {
    /// The player may be used (default on).
    pub is_allow: bool,
    /// Server state: a video is playing.
    pub is_active: bool,
    /// Server state: the user id of whoever started it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_by: Option<String>,
    /// Server state: the video's URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// `WaitingRoomFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WaitingRoomFeatures {
    /// Non-admins wait until an admin admits them (default off).
    pub is_active: bool,
    /// Shown to those waiting.
    pub waiting_room_msg: String,
}

/// `BreakoutRoomFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BreakoutRoomFeatures {
    /// Admins may open breakout rooms (default on).
    pub is_allow: bool,
    /// Server state: breakout rooms are open.
    pub is_active: bool,
    /// How many breakout rooms at most: 6 when 0, capped by the server's
    /// `room_default_settings.max_num_breakout_rooms` (16 by default).
    #[serde(deserialize_with = "int")]
    pub allowed_number_rooms: u32,
}

/// `DisplayExternalLinkFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DisplayExternalLinkFeatures {
    /// Admins may show a web page to everyone (default on).
    pub is_allow: bool,
    /// Server state: a page is shown.
    pub is_active: bool,
    /// Server state: the page's URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Server state: the user id of whoever shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_by: Option<String>,
}

json::proto_enum! {
    /// `IngressInput`.
    IngressInput {
        /// RTMP, as streaming software (OBS and the like) sends it.
        RtmpInput = 0 => "RTMP_INPUT",
        /// WebRTC-HTTP ingestion (WHIP).
        WhipInput = 1 => "WHIP_INPUT",
    }
}

/// `IngressFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IngressFeatures {
    /// Admins may create an ingress (default on; off in an end-to-end encrypted room).
    pub is_allow: bool,
    /// The protocol the outside source pushes with.
    pub input_type: IngressInput,
    /// Server state: the address to push to.
    pub url: String,
    /// Server state: the key that goes with `url`.
    pub stream_key: String,
}

/// `EndToEndEncryptionFeatures`. The room secret is **never** part of this message: the
/// `encryption_key` field exists only so that a caller who fills it in can be refused, and it is
/// never serialised, so no reply, webhook or stored metadata can carry a key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndToEndEncryptionFeatures {
    /// Media is encrypted in the browsers; the server cannot see it (default off).
    pub is_enabled: bool,
    /// Chat messages are encrypted too (only with `is_enabled`).
    pub included_chat_messages: bool,
    /// The whiteboard is encrypted too (only with `is_enabled`).
    pub included_whiteboard: bool,
    /// Participants type the key in themselves instead of receiving one (only with
    /// `is_enabled`).
    pub enabled_self_insert_encryption_key: bool,
    /// Always refused when set; never written out.
    #[serde(skip_serializing)]
    pub encryption_key: Option<String>,
}

/// `PollsFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PollsFeatures {
    /// Polls may be created (default on).
    pub is_allow: bool,
    /// Server state: the polls panel is open for everyone.
    pub is_active: bool,
}

/// `SipDialInFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SipDialInFeatures {
    /// Dial-in may be turned on; off unless the server has SIP configured.
    pub is_allow: bool,
    /// Turn dial-in on when the room is created (not for breakout rooms).
    pub enable_dial_in_on_create: bool,
    /// Do not show the numbers to participants.
    pub hide_phone_number: bool,
    /// Server state: dial-in is on.
    pub is_active: bool,
    /// Server state: the numbers to call.
    pub phone_numbers: Vec<String>,
    /// Server state: the PIN callers enter (six digits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    /// Server state: the SIP dispatch rule that routes calls to this room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatch_rule_id: Option<String>,
}

/// `InsightsFeatures`: the services the server's `insights` configuration provides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InsightsFeatures {
    /// Any insights service at all; off unless the server has them configured, and off
    /// turns every service below off.
    pub is_allow: bool,
    /// Live transcription, spoken translation and speech synthesis.
    pub transcription_features: Option<InsightsTranscriptionFeatures>,
    /// Translation of chat messages.
    pub chat_translation_features: Option<InsightsChatTranslationFeatures>,
    /// AI chat and meeting summaries.
    pub ai_features: Option<InsightsAiFeatures>,
}

/// `InsightsTranscriptionFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InsightsTranscriptionFeatures {
    /// Transcription may be turned on; off also turns translation and synthesis off.
    pub is_allow: bool,
    /// Transcripts may be translated.
    pub is_allow_translation: bool,
    /// Translations may be spoken aloud.
    pub is_allow_speech_synthesis: bool,
    /// Server state: an admin turned transcription on.
    pub is_enabled: bool,
    /// Server state: the languages participants may speak.
    pub allowed_spoken_langs: Vec<String>,
    /// Server state: the user ids whose speech is transcribed.
    pub allowed_speech_users: Vec<String>,
    /// Server state: translation is on.
    pub is_enabled_translation: bool,
    /// Server state: how many target languages a participant may choose.
    #[serde(deserialize_with = "int")]
    pub max_selected_trans_langs: i32,
    /// Server state: the target languages on offer.
    pub allowed_trans_langs: Vec<String>,
    /// Server state: the subtitle language shown first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_subtitle_lang: Option<String>,
    /// Server state: speech synthesis is on.
    pub is_enabled_speech_synthesis: bool,
}

/// `InsightsChatTranslationFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InsightsChatTranslationFeatures {
    /// Chat translation may be turned on (sends chat text to the translation service).
    pub is_allow: bool,
    /// Server state: an admin turned it on.
    pub is_enabled: bool,
    /// Server state: the target languages on offer.
    pub allowed_trans_langs: Vec<String>,
    /// Server state: how many target languages a participant may choose.
    #[serde(deserialize_with = "int")]
    pub max_selected_trans_langs: i32,
    /// Server state: the language shown first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_lang: Option<String>,
}

/// `InsightsAiFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InsightsAiFeatures {
    /// Any AI service at all; off turns both below off.
    pub is_allow: bool,
    /// An AI assistant participants chat with.
    pub ai_text_chat_features: Option<InsightsAiTextChatFeatures>,
    /// A summary of the meeting, written when it ends.
    pub meeting_summarization_features: Option<InsightsAiMeetingSummarizationFeatures>,
}

/// `InsightsAiTextChatFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InsightsAiTextChatFeatures {
    /// The assistant may be turned on.
    pub is_allow: bool,
    /// Server state: an admin turned it on.
    pub is_enabled: bool,
    /// Server state: every participant may use it, not only `allowed_user_ids`.
    pub is_allowed_everyone: bool,
    /// Server state: who may use it.
    pub allowed_user_ids: Vec<String>,
    /// Server state: the assistant is not offered in the notepad.
    pub is_notepad_ai_disabled: bool,
    /// Server state: the assistant is not offered on the whiteboard.
    pub is_whiteboard_ai_disabled: bool,
}

/// `InsightsAiMeetingSummarizationFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InsightsAiMeetingSummarizationFeatures {
    /// Summaries may be turned on (off in an end-to-end encrypted room).
    pub is_allow: bool,
    /// The integrator's own instructions for the summary; empty: the service's default.
    pub summarization_prompt: String,
    /// Server state: an admin turned summaries on.
    pub is_enabled: bool,
}

/// `ExternalBroadcastingFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExternalBroadcastingFeatures {
    /// Broadcasting may be used; off also turns `is_allow_rtmp` off (default on).
    pub is_allow: bool,
    /// Broadcasting to an RTMP URL (default on; off in an end-to-end encrypted room).
    pub is_allow_rtmp: bool,
    /// Options for the client that captures the broadcast.
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
