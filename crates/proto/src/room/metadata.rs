//! The room metadata every client sees: title, flags, locks and the copyright line.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::RoomCreateFeatures;
use crate::json::{int, int64_string};

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
