//! Replies of the room endpoints, and the generic envelope that prefixes every reply.

use serde::Serialize;

use crate::json::int64_string;
use crate::status::{CommonResponse, StatusCode};

/// A reply: the common envelope followed by the endpoint's own fields. Every field of `T` is
/// written even on failure (protojson's `EmitUnpopulated`), so `T: Default` supplies the empty
/// body of an error reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply<T> {
    /// `status`, `msg` and `status_code`, first in the object.
    #[serde(flatten)]
    pub common: CommonResponse,
    /// The endpoint's own fields, after the envelope.
    #[serde(flatten)]
    pub body: T,
}

impl<T: Default> Reply<T> {
    /// A successful reply with the message `success`.
    pub fn success(body: T) -> Self {
        Self {
            common: CommonResponse::success(),
            body,
        }
    }

    /// A failed reply with an empty body.
    pub fn fail(code: StatusCode, msg: impl Into<String>) -> Self {
        Self {
            common: CommonResponse::fail(code, msg),
            body: T::default(),
        }
    }
}

/// `ActiveRoomInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ActiveRoomInfo {
    /// The room's title.
    pub room_title: String,
    /// The integrator's room id.
    pub room_id: String,
    /// The session's id (a new UUID every time the room is created).
    pub sid: String,
    /// How many have joined this session so far.
    #[serde(serialize_with = "int64_string")]
    pub joined_participants: i64,
    /// 1 while the room is open (an int32 flag, as in Plug-N-Meet's table).
    pub is_running: i32,
    /// 1 while a cloud recording runs.
    pub is_recording: i32,
    /// 1 while an RTMP broadcast runs.
    pub is_active_rtmp: i32,
    /// The room's own webhook URL; empty: none.
    pub webhook_url: String,
    /// 1 for a breakout room (Plug-N-Meet leaves it 0 at creation; so do we).
    pub is_breakout_room: i32,
    /// A breakout room's main room (likewise left empty at creation).
    pub parent_room_id: String,
    /// When the session started, Unix seconds.
    #[serde(serialize_with = "int64_string")]
    pub creation_time: i64,
    /// The room metadata as a JSON string. It never contains a key.
    pub metadata: String,
}

/// A participant, in LiveKit's `ParticipantInfo` shape (the fields the API fills in).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ParticipantInfo {
    /// The participant's id in this session.
    pub sid: String,
    /// The user id.
    pub identity: String,
    /// `JOINING`, `JOINED`, `ACTIVE` or `DISCONNECTED`.
    pub state: &'static str,
    /// Published tracks; always empty here.
    pub tracks: Vec<serde_json::Value>,
    /// The user metadata as a JSON string.
    pub metadata: String,
    /// When they joined (or began waiting), Unix seconds.
    #[serde(serialize_with = "int64_string")]
    pub joined_at: i64,
    /// The display name.
    pub name: String,
    /// LiveKit's update counter; always 0 here.
    pub version: u32,
    /// LiveKit's permissions; always `null` here.
    pub permission: Option<serde_json::Value>,
    /// LiveKit's region; always empty here.
    pub region: String,
    /// LiveKit's flag; always false here.
    pub is_publisher: bool,
    /// `STANDARD` for people.
    pub kind: &'static str,
}

/// `ActiveRoomWithParticipant`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ActiveRoomWithParticipant {
    /// The room.
    pub room_info: Option<ActiveRoomInfo>,
    /// Who is in it, waiting participants included (as `JOINING`).
    pub participants_info: Vec<ParticipantInfo>,
}

/// Body of `CreateRoomRes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CreateRoomBody {
    /// The new (or already running) room; `null` on failure.
    pub room_info: Option<ActiveRoomInfo>,
}

/// Body of `GenerateTokenRes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TokenBody {
    /// The join token (a JWT); absent on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Body of `IsRoomActiveRes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IsRoomActiveBody {
    /// Whether the room is open.
    pub is_active: bool,
}

/// Body of `GetActiveRoomInfoRes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ActiveRoomBody {
    /// The room and who is in it; `null` on failure.
    pub room: Option<ActiveRoomWithParticipant>,
}

/// Body of `GetActiveRoomsInfoRes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ActiveRoomsBody {
    /// Every open room and who is in it.
    pub rooms: Vec<ActiveRoomWithParticipant>,
}

/// Body of `GetClientFilesRes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClientFilesBody {
    /// Deprecated duplicate of `css_files`.
    pub css: Vec<String>,
    /// Deprecated duplicate of `js_files`.
    pub js: Vec<String>,
    /// The web client's style sheets, for an integrator that embeds it.
    pub css_files: Vec<String>,
    /// The web client's scripts, for an integrator that embeds it.
    pub js_files: Vec<String>,
    /// Where those files are served from, when not the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_assets_path: Option<String>,
}

/// An empty body (`CommonResponse` alone).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_replies_still_carry_every_field() {
        let r: Reply<CreateRoomBody> = Reply::fail(StatusCode::InvalidParameters, "bad");
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"status":false,"msg":"bad","status_code":"INVALID_PARAMETERS","room_info":null}"#
        );
        let r: Reply<ActiveRoomsBody> = Reply::fail(StatusCode::NotFound, "no active room found");
        assert!(serde_json::to_string(&r)
            .unwrap()
            .ends_with(r#""rooms":[]}"#));
    }

    #[test]
    fn int64_fields_are_strings() {
        let info = ActiveRoomInfo {
            joined_participants: 3,
            creation_time: 1_760_000_000,
            ..Default::default()
        };
        let v = serde_json::to_value(info).unwrap();
        assert_eq!(v["joined_participants"], "3");
        assert_eq!(v["creation_time"], "1760000000");
        assert_eq!(v["is_running"], 0);
    }
}
