//! Breakout rooms (`/api/breakoutRoom/*`): Plug-N-Meet's `plugnmeet_breakout_room.proto`
//! messages, as JSON. A breakout room's `id` is its own room id (`<parent>-<id>` once created).

use serde::{Deserialize, Serialize};

/// `BreakoutRoomUser`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BreakoutRoomUser {
    /// The user id (of the main room).
    pub id: String,
    /// The display name.
    pub name: String,
    /// Whether the user is in the breakout room now (filled in by the server).
    pub joined: bool,
}

/// `BreakoutRoom`. `created` and `ends_at` (ours) are Unix seconds; `duration` minutes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BreakoutRoom {
    /// The room's id: the client's choice in a request, `<parent>-<id>` once created.
    pub id: String,
    /// The room's title.
    pub title: String,
    /// Minutes the room lasts.
    pub duration: u64,
    /// Whether the room has been created.
    pub started: bool,
    /// When it was created, Unix seconds.
    pub created: u64,
    /// Ours: when it ends, Unix seconds.
    pub ends_at: u64,
    /// The users assigned to it.
    pub users: Vec<BreakoutRoomUser>,
}

/// `CreateBreakoutRoomsReq`: `duration` in minutes for every room.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CreateBreakoutRoomsReq {
    /// Minutes every room lasts.
    pub duration: u64,
    /// Shown in each room's chat to those who join.
    pub welcome_msg: Option<String>,
    /// The rooms, each with its users.
    pub rooms: Vec<BreakoutRoom>,
}

/// `JoinBreakoutRoomReq` and `EndBreakoutRoomReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BreakoutRoomIdReq {
    /// The breakout room.
    pub breakout_room_id: String,
}

/// `IncreaseBreakoutRoomDurationReq`: `duration` more minutes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IncreaseBreakoutRoomDurationReq {
    /// The breakout room.
    pub breakout_room_id: String,
    /// Minutes to add.
    pub duration: u64,
}

/// `BroadcastBreakoutRoomMsgReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BroadcastBreakoutRoomMsgReq {
    /// The message, sent to the chat of every breakout room.
    pub msg: String,
}

/// `BreakoutRoomRes`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BreakoutRoomRes {
    /// Whether the call did what was asked.
    pub status: bool,
    /// Human-readable outcome.
    pub msg: String,
    /// `join` (and the way back): a join token for the room to go to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `join`: the room joined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<BreakoutRoom>,
    /// `listRooms`, `myRooms`: the rooms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<BreakoutRoom>>,
}

impl BreakoutRoomRes {
    /// A successful reply, to fill in.
    pub fn success() -> Self {
        Self {
            status: true,
            msg: "success".into(),
            ..Self::default()
        }
    }
}
