//! Replies of the room endpoints, and the generic envelope that prefixes every reply.

use serde::Serialize;

use crate::json::int64_string;
use crate::status::{CommonResponse, StatusCode};

/// A reply: the common envelope followed by the endpoint's own fields. Every field of `T` is
/// written even on failure (protojson's `EmitUnpopulated`), so `T: Default` supplies the empty
/// body of an error reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply<T> {
    #[serde(flatten)]
    pub common: CommonResponse,
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
    pub room_title: String,
    pub room_id: String,
    pub sid: String,
    #[serde(serialize_with = "int64_string")]
    pub joined_participants: i64,
    pub is_running: i32,
    pub is_recording: i32,
    pub is_active_rtmp: i32,
    pub webhook_url: String,
    pub is_breakout_room: i32,
    pub parent_room_id: String,
    #[serde(serialize_with = "int64_string")]
    pub creation_time: i64,
    /// The room metadata as a JSON string. It never contains a key.
    pub metadata: String,
}

/// A participant, in LiveKit's `ParticipantInfo` shape (the fields the API fills in).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ParticipantInfo {
    pub sid: String,
    pub identity: String,
    /// `JOINING`, `JOINED`, `ACTIVE` or `DISCONNECTED`.
    pub state: &'static str,
    pub tracks: Vec<serde_json::Value>,
    pub metadata: String,
    #[serde(serialize_with = "int64_string")]
    pub joined_at: i64,
    pub name: String,
    pub version: u32,
    pub permission: Option<serde_json::Value>,
    pub region: String,
    pub is_publisher: bool,
    /// `STANDARD` for people.
    pub kind: &'static str,
}

/// `ActiveRoomWithParticipant`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ActiveRoomWithParticipant {
    pub room_info: Option<ActiveRoomInfo>,
    pub participants_info: Vec<ParticipantInfo>,
}

/// Body of `CreateRoomRes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CreateRoomBody {
    pub room_info: Option<ActiveRoomInfo>,
}

/// Body of `GenerateTokenRes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TokenBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Body of `IsRoomActiveRes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IsRoomActiveBody {
    pub is_active: bool,
}

/// Body of `GetActiveRoomInfoRes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ActiveRoomBody {
    pub room: Option<ActiveRoomWithParticipant>,
}

/// Body of `GetActiveRoomsInfoRes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ActiveRoomsBody {
    pub rooms: Vec<ActiveRoomWithParticipant>,
}

/// Body of `GetClientFilesRes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClientFilesBody {
    pub css: Vec<String>,
    pub js: Vec<String>,
    pub css_files: Vec<String>,
    pub js_files: Vec<String>,
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
