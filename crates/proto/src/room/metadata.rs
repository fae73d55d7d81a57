//! The room metadata every client sees: title, flags, locks and the copyright line.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::RoomCreateFeatures;
use crate::json::{int, int64_string};

/// `RoomMetadata`: the room's settings as the clients see them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoomMetadata {
    /// Shown in the clients' header; required.
    pub room_title: String,
    /// Shown in the chat to everyone who joins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub welcome_message: Option<String>,
    /// Server state: a cloud recording is running.
    pub is_recording: bool,
    /// Server state: an RTMP broadcast is running.
    pub is_active_rtmp: bool,
    /// Server state, in a breakout room: the main room's id.
    pub parent_room_id: String,
    /// Server state: this is a breakout room.
    pub is_breakout_room: bool,
    /// This room's own webhook receiver, besides the configured one (when
    /// `client.webhook_conf.enable_for_per_meeting` is on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Server state: when the room was created, Unix seconds.
    #[serde(deserialize_with = "int", serialize_with = "int64_string")]
    pub started_at: u64,
    /// Where clients go when they leave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logout_url: Option<String>,
    /// What the room allows; required in a create request, complete once prepared.
    pub room_features: Option<RoomCreateFeatures>,
    /// Locks every non-admin joins with; screen sharing, whiteboard and notepad are locked
    /// when left unset.
    pub default_lock_settings: Option<LockSettings>,
    /// The line at the foot of the clients (Plug-N-Meet's by default).
    pub copyright_conf: Option<CopyrightConf>,
    /// Server state: a fresh UUID on every metadata update, so that clients skip
    /// repeats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_id: Option<String>,
    /// The integrator's own keys and values, kept as sent.
    pub extra_data: BTreeMap<String, String>,
}

/// `LockSettings`: every lock is optional (unset means "not decided here").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LockSettings {
    /// Non-admins may not publish a microphone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_microphone: Option<bool>,
    /// Non-admins may not publish a webcam.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_webcam: Option<bool>,
    /// Non-admins may not share their screen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_screen_sharing: Option<bool>,
    /// Non-admins may not use the chat at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_chat: Option<bool>,
    /// Non-admins may read the chat but not write in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_chat_send_message: Option<bool>,
    /// Non-admins may not share files in the chat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_chat_file_share: Option<bool>,
    /// Non-admins may not send private messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_private_chat: Option<bool>,
    /// Non-admins may not draw on the whiteboard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_whiteboard: Option<bool>,
    /// Non-admins may not edit the shared notepad.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_shared_notepad: Option<bool>,
    /// Non-admins may not send reactions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_reactions: Option<bool>,
}

/// `CopyrightConf`: the line at the foot of the clients.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CopyrightConf {
    /// Whether the line is shown.
    pub display: bool,
    /// The line, as HTML (links allowed).
    pub text: String,
}

/// The default copyright line, as Plug-N-Meet shows it.
pub const DEFAULT_COPYRIGHT: &str =
    r#"Powered by <a href="https://www.plugnmeet.org" target="_blank">plugNmeet</a>"#;
