//! Breakout rooms (`/api/breakoutRoom/*`): Plug-N-Meet's `plugnmeet_breakout_room.proto`
//! messages, as JSON. A breakout room's `id` is its own room id (`<parent>-<id>` once created).

use serde::{Deserialize, Serialize};

/// `BreakoutRoomUser`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BreakoutRoomUser {
    pub id: String,
    pub name: String,
    pub joined: bool,
}

/// `BreakoutRoom`. `created` and `ends_at` (ours) are Unix seconds; `duration` minutes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BreakoutRoom {
    pub id: String,
    pub title: String,
    pub duration: u64,
    pub started: bool,
    pub created: u64,
    pub ends_at: u64,
    pub users: Vec<BreakoutRoomUser>,
}

/// `CreateBreakoutRoomsReq`: `duration` in minutes for every room.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CreateBreakoutRoomsReq {
    pub duration: u64,
    pub welcome_msg: Option<String>,
    pub rooms: Vec<BreakoutRoom>,
}

/// `JoinBreakoutRoomReq` and `EndBreakoutRoomReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BreakoutRoomIdReq {
    pub breakout_room_id: String,
}

/// `IncreaseBreakoutRoomDurationReq`: `duration` more minutes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IncreaseBreakoutRoomDurationReq {
    pub breakout_room_id: String,
    pub duration: u64,
}

/// `BroadcastBreakoutRoomMsgReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BroadcastBreakoutRoomMsgReq {
    pub msg: String,
}

/// `BreakoutRoomRes`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BreakoutRoomRes {
    pub status: bool,
    pub msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<BreakoutRoom>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<BreakoutRoom>>,
}

impl BreakoutRoomRes {
    pub fn success() -> Self {
        Self {
            status: true,
            msg: "success".into(),
            ..Self::default()
        }
    }
}
