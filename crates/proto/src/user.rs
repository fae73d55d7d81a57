//! `room/getJoinToken` and the join-token claims.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{IdError, RoomId, UserId};
use crate::json;
use crate::room::LockSettings;
use crate::validate::{is_uri, Violations};

json::proto_enum! {
    /// `ClientType`.
    ClientType {
        /// The web client in a browser.
        Web = 0 => "WEB",
        /// The web client inside a mobile app's web view.
        HybridWeb = 1 => "HYBRID_WEB",
    }
}

/// `GenerateTokenReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GenerateTokenReq {
    /// The room to join (required).
    pub room_id: String,
    /// Who joins (required).
    pub user_info: Option<UserInfo>,
}

/// `UserInfo`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct UserInfo {
    /// The display name (required).
    pub name: String,
    /// The integrator's user id; may be empty only when the room has `auto_gen_user_id`.
    pub user_id: String,
    /// Admins moderate: lock, mute, remove, record, open breakout rooms and polls.
    pub is_admin: bool,
    /// An admin the others do not see in the participant list.
    pub is_hidden: bool,
    /// The user's metadata, as far as a caller may set it.
    pub user_metadata: Option<UserMetadata>,
    /// The kind of client the token is for.
    pub client_type: ClientType,
}

/// `UserRaisedHand`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserRaisedHand {
    /// Whether the hand is up.
    pub is_raised: bool,
    /// When it went up, Unix milliseconds (orders the queue).
    #[serde(deserialize_with = "json::int", serialize_with = "json::int64_string")]
    pub raised_at: i64,
}

/// `UserMetadata`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserMetadata {
    /// URL of the user's picture.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_pic: Option<String>,
    /// Server state: copied from [`UserInfo::is_admin`].
    pub is_admin: bool,
    /// Whether recordings show this user's webcam; the server sets `true` when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_webcam: Option<bool>,
    /// Server state: the user presents (callers must leave it false).
    pub is_presenter: bool,
    /// Server state: the user's raised hand.
    pub raised_hand: Option<UserRaisedHand>,
    /// Server state: the user is in the waiting room.
    pub wait_for_approval: bool,
    /// The user's interface language (a locale such as `en-GB`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_lang: Option<String>,
    /// The locks on this user; an admin's are all off, others start from the room's
    /// `default_lock_settings`.
    pub lock_settings: Option<LockSettings>,
    /// Server state: a fresh UUID on every update, so that clients skip repeats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_id: Option<String>,
    /// The integrator's own keys and values, kept as sent.
    pub extra_data: BTreeMap<String, String>,
    /// The user id the integrator sent (set when the server generated another).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ex_user_id: Option<String>,
}

json::proto_enum! {
    /// `NatsSystemNotificationTypes`.
    NotificationType {
        /// Information.
        Info = 0 => "NATS_SYSTEM_NOTIFICATION_INFO",
        /// A warning.
        Warning = 1 => "NATS_SYSTEM_NOTIFICATION_WARNING",
        /// An error.
        Error = 2 => "NATS_SYSTEM_NOTIFICATION_ERROR",
    }
}

/// `BroadcastToRoomReq`: a server message to everyone in a room, its admins, or one user.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BroadcastToRoomReq {
    /// The room (required).
    pub room_id: String,
    /// Send to the room's admins only.
    pub only_to_admins: bool,
    /// Send to this user (besides the admins, with `only_to_admins`); with neither, the
    /// whole room gets it.
    pub to_user_id: Option<String>,
    /// A chat message from the system (never end-to-end encrypted).
    pub chat_msg: Option<BroadcastChatMessage>,
    /// A notification the clients pop up.
    pub notification_msg: Option<BroadcastNotification>,
}

/// `BroadcastToRoomReq.chat_msg`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BroadcastChatMessage {
    /// The text (required).
    pub message: String,
}

/// `BroadcastToRoomReq.notification_msg`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BroadcastNotification {
    /// The text (required).
    pub text: String,
    /// Info, warning or error (`type` on the wire).
    #[serde(rename = "type")]
    pub kind: NotificationType,
    /// Play the notification sound.
    pub with_sound: bool,
}

impl BroadcastToRoomReq {
    /// protovalidate's rules: a room id, and exactly one non-empty payload.
    pub fn validate(&self) -> Result<(), Violations> {
        let mut v = Violations::default();
        if self.room_id.is_empty() {
            v.push("room_id", "value is required", "required");
        }
        match (&self.chat_msg, &self.notification_msg) {
            (Some(_), Some(_)) => v.push(
                "payload",
                "only one of chat_msg, notification_msg may be set",
                "oneof",
            ),
            (None, None) => v.push(
                "payload",
                "exactly one of chat_msg, notification_msg is required",
                "oneof",
            ),
            (Some(c), None) if c.message.is_empty() => {
                v.push("chat_msg.message", "value is required", "required")
            }
            (None, Some(n)) if n.text.is_empty() => {
                v.push("notification_msg.text", "value is required", "required")
            }
            _ => {}
        }
        v.into_result()
    }
}

/// Display names reserved for the recorder's own tokens.
pub const RECORDER_AUTH_NAME: &str = "PLUGNMEET_RECORDER_AUTH";

/// Why a join request was refused before any room lookup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinRequestError {
    /// A field broke a rule.
    #[error("{0}")]
    Invalid(Violations),
    /// The name or user id is reserved for the server's own agents.
    #[error("{0}")]
    Reserved(String),
}

/// A validated join request: the ids are parsed, the metadata is present.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// The room.
    pub room_id: RoomId,
    /// `None` when the caller left it empty (the server then generates one).
    pub user_id: Option<UserId>,
    /// The display name.
    pub name: String,
    /// See [`UserInfo::is_admin`].
    pub is_admin: bool,
    /// See [`UserInfo::is_hidden`].
    pub is_hidden: bool,
    /// See [`UserInfo::client_type`].
    pub client_type: ClientType,
    /// The caller's metadata (empty when none was sent).
    pub metadata: UserMetadata,
}

impl GenerateTokenReq {
    /// Validates the request and parses its ids.
    pub fn into_join_request(self) -> Result<JoinRequest, JoinRequestError> {
        let mut v = Violations::default();
        let room_id = match RoomId::parse(&self.room_id) {
            Ok(id) => Some(id),
            Err(e) => {
                v.push("room_id", e.to_string(), "room_id_format");
                None
            }
        };
        let Some(info) = self.user_info else {
            v.push("user_info", "UserInfo required", "required");
            return Err(JoinRequestError::Invalid(v));
        };
        if info.name.trim().is_empty() {
            v.push("user_info.name", "value is required", "required");
        }
        let user_id = if info.user_id.is_empty() {
            None
        } else {
            match UserId::parse(&info.user_id) {
                Ok(id) => Some(id),
                Err(e @ IdError::Charset { .. }) => {
                    v.push("user_info.user_id", e.to_string(), "user_id_format");
                    None
                }
                Err(e) => {
                    v.push("user_info.user_id", e.to_string(), "user_id_reserved");
                    None
                }
            }
        };
        let metadata = info.user_metadata.unwrap_or_default();
        if let Some(pic) = &metadata.profile_pic {
            if !is_uri(pic) {
                v.push(
                    "user_info.user_metadata.profile_pic",
                    "value must be a valid URI",
                    "string.uri",
                );
            }
        }
        v.must_be_empty(
            "user_info.user_metadata.is_presenter",
            &metadata.is_presenter,
        );
        v.must_be_empty(
            "user_info.user_metadata.wait_for_approval",
            &metadata.wait_for_approval,
        );
        v.must_be_empty(
            "user_info.user_metadata.metadata_id",
            &metadata.metadata_id.clone().unwrap_or_default(),
        );
        if let Some(h) = &metadata.raised_hand {
            v.must_be_empty(
                "user_info.user_metadata.raised_hand.is_raised",
                &h.is_raised,
            );
            v.must_be_empty(
                "user_info.user_metadata.raised_hand.raised_at",
                &h.raised_at,
            );
        }
        v.into_result().map_err(JoinRequestError::Invalid)?;
        if info.name == RECORDER_AUTH_NAME {
            return Err(JoinRequestError::Reserved(format!(
                "name '{RECORDER_AUTH_NAME}' is reserved"
            )));
        }
        if let Some(id) = &user_id {
            let s = id.as_str();
            if ["ingres_", "pnm_agent-", "pnm_tts_agent-", "sip_"]
                .iter()
                .any(|p| s.starts_with(p))
                || s.ends_with("-native")
            {
                return Err(JoinRequestError::Reserved(format!(
                    "user_id '{s}' uses a reserved pattern"
                )));
            }
        }
        Ok(JoinRequest {
            room_id: room_id.expect("a room id error was recorded above"),
            user_id,
            name: info.name,
            is_admin: info.is_admin,
            is_hidden: info.is_hidden,
            client_type: info.client_type,
            metadata,
        })
    }
}

/// The claims of a Plug-N-Meet join token (HS256 JWT signed with the API secret).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinClaims {
    /// The API key.
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// Not before (unix seconds).
    pub nbf: u64,
    /// Expiry (unix seconds).
    pub exp: u64,
    /// The display name.
    #[serde(default)]
    pub name: String,
    /// The user id (as `sub`).
    #[serde(default)]
    pub user_id: String,
    /// The room the token admits to.
    #[serde(default)]
    pub room_id: String,
    /// Whether the user is an admin; omitted when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_admin: bool,
    /// Whether the user is hidden; omitted when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_hidden: bool,
    /// Written as a number (0 is omitted), as Go's `encoding/json` does.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub client_type: i32,
    /// Ours, in a breakout room's tokens: the main room, to return to (even once the breakout
    /// room has ended).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parent_room_id: String,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: &str) -> Result<JoinRequest, JoinRequestError> {
        crate::json::decode::<GenerateTokenReq>(body.as_bytes())
            .unwrap()
            .into_join_request()
    }

    #[test]
    fn valid_request_parses_ids() {
        let r = req(r#"{"roomId":"r1","userInfo":{"name":"Ann","userId":"u1","isAdmin":true,"clientType":"HYBRID_WEB"}}"#).unwrap();
        assert_eq!(r.room_id.as_str(), "r1");
        assert_eq!(r.user_id.unwrap().as_str(), "u1");
        assert!(r.is_admin);
        assert_eq!(r.client_type, ClientType::HybridWeb);
    }

    #[test]
    fn missing_user_info_and_bad_fields_are_named() {
        let e = req(r#"{"room_id":"r1"}"#).unwrap_err().to_string();
        assert!(e.contains("UserInfo required"), "{e}");
        let e = req(r#"{"room_id":"r1","user_info":{"name":"","user_id":"a b"}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("user_info.name") && e.contains("user_info.user_id"),
            "{e}"
        );
        let e = req(
            r#"{"room_id":"r1","user_info":{"name":"x","user_metadata":{"is_presenter":true}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("is_presenter"), "{e}");
    }

    #[test]
    fn reserved_names_and_ids_are_refused() {
        assert!(matches!(
            req(r#"{"room_id":"r","user_info":{"name":"PLUGNMEET_RECORDER_AUTH"}}"#),
            Err(JoinRequestError::Reserved(_))
        ));
        assert!(matches!(
            req(r#"{"room_id":"r","user_info":{"name":"x","user_id":"sip_1"}}"#),
            Err(JoinRequestError::Reserved(_))
        ));
        assert!(matches!(
            req(r#"{"room_id":"r","user_info":{"name":"x","user_id":"a-native"}}"#),
            Err(JoinRequestError::Reserved(_))
        ));
    }

    #[test]
    fn claims_omit_false_and_zero_like_go() {
        let c = JoinClaims {
            iss: "k".into(),
            sub: "u".into(),
            nbf: 1,
            exp: 2,
            name: "n".into(),
            user_id: "u".into(),
            room_id: "r".into(),
            is_admin: false,
            is_hidden: false,
            client_type: 0,
            parent_room_id: String::new(),
        };
        let s = serde_json::to_string(&c).unwrap();
        assert!(!s.contains("is_admin") && !s.contains("client_type"), "{s}");
    }
}
