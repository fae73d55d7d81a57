//! Replies of the browser API (`/api/*`) and the messages the server sends on its data topic.
//!
//! The browser API answers `{status, msg, …}` with the endpoint's own fields beside the
//! envelope ([`Answer`]); a refusal is the common envelope alone (`status: false`, `msg`,
//! `status_code`). The web client's types for these (web/src) are checked against the names
//! here by a test of the server crate, so a field renamed on one side fails the build's tests.

use serde::Serialize;

use crate::content::ContentKind;
use crate::room::{LockSettings, RoomCreateFeatures};

/// A successful browser API reply: `status: true`, a message, then the body's fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer<T> {
    /// Always `true`: refusals use the common envelope instead.
    pub status: bool,
    /// What happened (`success`, or a message the client shows).
    pub msg: String,
    /// The endpoint's own fields, written beside `status` and `msg`.
    #[serde(flatten)]
    pub body: T,
}

impl<T> Answer<T> {
    /// A reply with the message `success`.
    pub fn success(body: T) -> Self {
        Self::ok("success", body)
    }

    /// A reply with its own message.
    pub fn ok(msg: impl Into<String>, body: T) -> Self {
        Self {
            status: true,
            msg: msg.into(),
            body,
        }
    }
}

/// No fields beside the envelope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Done {}

/// How many participants an admin action changed (hands, presenter, locks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Changed {
    /// Number of invitations whose metadata changed.
    pub changed: usize,
}

/// `renewToken`: a fresh join token for the same session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RenewedToken {
    /// The new join token.
    pub token: String,
    /// When it expires (Unix seconds).
    pub expires_at: u64,
}

/// `e2eeKey`: the current key epoch of a server-generated-key room.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyEpochBody {
    /// The epoch's number; frames name it in their envelope.
    pub generation: u32,
    /// The epoch's secret (base64), from which the client derives the frame and data keys.
    pub secret: String,
}

/// `verifyToken`: the caller waits for an admin, or may join.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Verified {
    /// In the waiting room.
    Waiting(Waiting),
    /// Let in.
    Session(Box<Session>),
}

/// `verifyToken` while an admin has not yet let the caller in (the waiting room): nothing
/// that admits them (no media token, no secret, no session id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Waiting {
    /// Always `true`: the page keeps asking until it is let in.
    pub waiting: bool,
    /// The message the waiting page shows (an admin may change it during the session).
    pub waiting_room_msg: String,
    /// The room the caller waits for.
    pub room: WaitingRoom,
    /// The caller.
    pub user: WaitingUserSelf,
    /// When the caller's join token expires (Unix seconds).
    pub expires_at: u64,
}

/// The room named on a waiting page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WaitingRoom {
    /// The room's id.
    pub room_id: String,
    /// The room's title.
    pub title: String,
}

/// The caller on a waiting page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WaitingUserSelf {
    /// Their user id.
    pub user_id: String,
    /// Their display name.
    pub name: String,
    /// Always `false`: admins never wait.
    pub is_admin: bool,
    /// Whether they asked to be hidden.
    pub is_hidden: bool,
}

/// `verifyToken` for a caller who may join: the session, their place in it, the media token and
/// the room's E2EE settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Session {
    /// The room and its session.
    pub room: SessionRoom,
    /// The caller as the room sees them.
    pub user: SessionUser,
    /// Where and with what the client connects to the media server.
    pub media: MediaAccess,
    /// The room's end-to-end encryption, and in a server-key room the caller's secrets.
    pub e2ee: SessionE2ee,
    /// Whether a cloud recording runs now.
    pub is_recording: bool,
    /// Whether an RTMP broadcast runs now.
    pub is_active_rtmp: bool,
    /// When the caller's join token expires (Unix seconds).
    pub expires_at: u64,
}

/// The room of a verified session.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SessionRoom {
    /// The room's id.
    pub room_id: String,
    /// The room's title.
    pub title: String,
    /// The session's id (a key-derivation input in E2EE rooms).
    pub sid: String,
    /// Shown when the meeting opens; empty for none.
    pub welcome_message: String,
    /// Whether this is a breakout room of another session.
    pub is_breakout_room: bool,
    /// The main room of a breakout room; empty otherwise.
    pub parent_room_id: String,
    /// When `room_duration` ends the session (Unix seconds; 0: no limit).
    pub ends_at: i64,
    /// Where the client goes when the meeting ends; empty for the client's own page.
    pub logout_url: String,
    /// The room's features, as created.
    pub features: RoomCreateFeatures,
    /// The locks every non-admin starts with.
    pub default_lock_settings: Option<LockSettings>,
}

/// The caller in a verified session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SessionUser {
    /// Their user id.
    pub user_id: String,
    /// Their display name.
    pub name: String,
    /// Whether they are an admin of the room.
    pub is_admin: bool,
    /// Whether others do not see them (hidden is refused in E2EE rooms: see `is_observer`).
    pub is_hidden: bool,
    /// Whether chat is locked for them.
    pub lock_chat: bool,
    /// Whether private chat is locked for them.
    pub lock_private_chat: bool,
    /// Whether sharing files in the chat is locked for them.
    pub lock_chat_file_share: bool,
    /// Whether the whiteboard is locked for them (the presenter may still draw).
    pub lock_whiteboard: bool,
    /// Whether the shared notepad is locked for them.
    pub lock_shared_notepad: bool,
    /// Asked to be hidden in an encrypted room: shown to everyone as an observer.
    pub is_observer: bool,
}

/// The media server's address and the caller's LiveKit access token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MediaAccess {
    /// The media server's URL (`ws://` or `wss://`).
    pub url: String,
    /// A LiveKit access token for this room and session.
    pub token: String,
}

/// A room's end-to-end encryption as its client needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SessionE2ee {
    /// Whether media (and what the flags below name) is encrypted end to end.
    pub enabled: bool,
    /// `off`, `server_key` or `self_insert` (a passphrase the users share).
    pub mode: &'static str,
    /// Whether chat messages are sealed too.
    pub included_chat_messages: bool,
    /// Whether the whiteboard is sealed too.
    pub included_whiteboard: bool,
    /// Server-key rooms: the key epoch the caller was admitted with (base64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Server-key rooms: that epoch's number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u32>,
    /// Server-key rooms: seals the chat history this browser keeps; the same at every
    /// admission in the session, so a reload still opens what it kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_secret: Option<String>,
    /// Server-key rooms: seals what late joiners must read too (poll texts); the session's,
    /// not an epoch's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_secret: Option<String>,
}

/// `waitingRoom/list`: who waits now, longest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WaitingList {
    /// Whether the room has a waiting room.
    pub is_active: bool,
    /// Those whose waiting page asked within the last few seconds.
    pub users: Vec<WaitingUser>,
}

/// One user in the waiting room.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WaitingUser {
    /// Their user id.
    pub user_id: String,
    /// Their display name.
    pub name: String,
    /// How long they have waited (seconds).
    pub waiting_seconds: u64,
}

/// `waitingRoom/approveUsers`: who was let in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Approved {
    /// The user ids let in by this call.
    pub approved: Vec<String>,
}

/// A message the server sends to a room's clients on its data topic (JSON, `type` names the
/// kind). The media server relays it like any data packet; nothing in it is secret except
/// [`ServerMessage::E2eeKey`], which goes only to the participants it names.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerMessage {
    /// A new key epoch of a server-key room, to those who stay in it.
    #[serde(rename = "E2EE_KEY")]
    E2eeKey {
        /// The epoch's number.
        generation: u32,
        /// The epoch's secret (base64).
        secret: String,
    },
    /// The locks the server cannot enforce in the media path (chat, files, whiteboard,
    /// notepad) of the participant it is sent to changed.
    LockSettings {
        /// Whether chat is locked for them.
        lock_chat: bool,
        /// Whether private chat is locked for them.
        lock_private_chat: bool,
        /// Whether sharing files in the chat is locked for them.
        lock_chat_file_share: bool,
        /// Whether the whiteboard is locked for them (the presenter may still draw).
        lock_whiteboard: bool,
        /// Whether the shared notepad is locked for them.
        lock_shared_notepad: bool,
    },
    /// An admin turned the polls panel on or off.
    PollsActive {
        /// Whether polls are open now.
        is_active: bool,
    },
    /// A poll was created.
    PollCreated {
        /// Its id.
        poll_id: String,
    },
    /// Someone voted: the count only, never the choice.
    PollResponse {
        /// The poll's id.
        poll_id: String,
        /// Votes so far.
        total_responses: u64,
        /// Whether results are shown while the poll runs.
        live: bool,
    },
    /// A poll was closed; its results may now be read.
    PollClosed {
        /// The poll's id.
        poll_id: String,
    },
    /// The participant it is sent to was assigned to a breakout room.
    JoinBreakoutRoom {
        /// The breakout room's id.
        breakout_room_id: String,
        /// Its title.
        title: String,
        /// When it ends (Unix seconds).
        ends_at: u64,
    },
    /// The list of breakout rooms changed (admins refresh their panel).
    BreakoutRoomsChanged,
    /// An admin gave the breakout room more time.
    BreakoutRoomExtended {
        /// When it ends now (Unix seconds).
        ends_at: u64,
    },
    /// A breakout room ended: those in it go back to the main room.
    BreakoutRoomEnded {
        /// The breakout room's id.
        breakout_room_id: String,
    },
    /// A chat line from the system (an API broadcast, an admin's breakout message).
    SystemChatMsg {
        /// The text.
        message: String,
    },
    /// A notification to show (an API broadcast, a recorder failure).
    SystemNotification {
        /// An id for the client to drop repeats; absent for the server's own notices.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// `info`, `warning` or `error`.
        notification_type: String,
        /// The text.
        msg: String,
        /// Whether the client plays a sound (API broadcasts).
        #[serde(skip_serializing_if = "Option::is_none")]
        with_sound: Option<bool>,
        /// When it was sent (Unix milliseconds, as a string, as Plug-N-Meet sends it).
        #[serde(skip_serializing_if = "Option::is_none")]
        sent_at: Option<String>,
    },
    /// Which server-side jobs run now in the room.
    RecorderState {
        /// Whether a cloud recording runs.
        is_recording: bool,
        /// Whether an RTMP broadcast runs.
        is_active_rtmp: bool,
    },
    /// A document got an update (`docs/content.md`); everyone applies them in `seq` order.
    ContentUpdate {
        /// The document's kind.
        kind: ContentKind,
        /// The document.
        doc: String,
        /// The update's sequence number.
        seq: u64,
        /// Who sent it, as the server stamped it.
        from: String,
        /// The update (a sealed envelope in an encrypted room).
        body: String,
    },
    /// An admin cleared a document (`doc` empty: every document of the kind).
    ContentCleared {
        /// The kind.
        kind: ContentKind,
        /// The document; empty for all of the kind.
        doc: String,
    },
}

impl ServerMessage {
    /// One message of each kind (a test holds it to every variant): for checking a client's
    /// parser against what the server sends.
    pub fn examples() -> Vec<ServerMessage> {
        vec![
            ServerMessage::E2eeKey {
                generation: 3,
                secret: "s".into(),
            },
            ServerMessage::LockSettings {
                lock_chat: true,
                lock_private_chat: false,
                lock_chat_file_share: true,
                lock_whiteboard: false,
                lock_shared_notepad: true,
            },
            ServerMessage::PollsActive { is_active: true },
            ServerMessage::PollCreated {
                poll_id: "p".into(),
            },
            ServerMessage::PollResponse {
                poll_id: "p".into(),
                total_responses: 1,
                live: false,
            },
            ServerMessage::PollClosed {
                poll_id: "p".into(),
            },
            ServerMessage::JoinBreakoutRoom {
                breakout_room_id: "b".into(),
                title: "t".into(),
                ends_at: 9,
            },
            ServerMessage::BreakoutRoomsChanged,
            ServerMessage::BreakoutRoomExtended { ends_at: 9 },
            ServerMessage::BreakoutRoomEnded {
                breakout_room_id: "b".into(),
            },
            ServerMessage::SystemChatMsg {
                message: "m".into(),
            },
            ServerMessage::SystemNotification {
                id: None,
                notification_type: "error".into(),
                msg: "m".into(),
                with_sound: None,
                sent_at: None,
            },
            ServerMessage::RecorderState {
                is_recording: true,
                is_active_rtmp: false,
            },
            ServerMessage::ContentUpdate {
                kind: ContentKind::Whiteboard,
                doc: "pages".into(),
                seq: 1,
                from: "ann".into(),
                body: "{}".into(),
            },
            ServerMessage::ContentCleared {
                kind: ContentKind::Notepad,
                doc: String::new(),
            },
        ]
    }

    /// The JSON bytes sent on the data channel.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("server messages always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_writes_its_body_beside_the_envelope() {
        let v = serde_json::to_value(Answer::success(Changed { changed: 2 })).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"status": true, "msg": "success", "changed": 2})
        );
        let v = serde_json::to_value(Answer::ok("token renewed", Done {})).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"status": true, "msg": "token renewed"})
        );
    }

    #[test]
    fn server_messages_are_tagged_by_type() {
        let samples = ServerMessage::examples();
        let types: Vec<String> = samples
            .iter()
            .map(|m| {
                let v: serde_json::Value = serde_json::from_slice(&m.to_bytes()).unwrap();
                v["type"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(
            types,
            [
                "E2EE_KEY",
                "LOCK_SETTINGS",
                "POLLS_ACTIVE",
                "POLL_CREATED",
                "POLL_RESPONSE",
                "POLL_CLOSED",
                "JOIN_BREAKOUT_ROOM",
                "BREAKOUT_ROOMS_CHANGED",
                "BREAKOUT_ROOM_EXTENDED",
                "BREAKOUT_ROOM_ENDED",
                "SYSTEM_CHAT_MSG",
                "SYSTEM_NOTIFICATION",
                "RECORDER_STATE",
                "CONTENT_UPDATE",
                "CONTENT_CLEARED",
            ]
        );
        // Every variant has its example: the match fails to compile when one is added, and
        // the examples must hit each arm.
        let arm = |m: &ServerMessage| match m {
            ServerMessage::E2eeKey { .. } => 0,
            ServerMessage::LockSettings { .. } => 1,
            ServerMessage::PollsActive { .. } => 2,
            ServerMessage::PollCreated { .. } => 3,
            ServerMessage::PollResponse { .. } => 4,
            ServerMessage::PollClosed { .. } => 5,
            ServerMessage::JoinBreakoutRoom { .. } => 6,
            ServerMessage::BreakoutRoomsChanged => 7,
            ServerMessage::BreakoutRoomExtended { .. } => 8,
            ServerMessage::BreakoutRoomEnded { .. } => 9,
            ServerMessage::SystemChatMsg { .. } => 10,
            ServerMessage::SystemNotification { .. } => 11,
            ServerMessage::RecorderState { .. } => 12,
            ServerMessage::ContentUpdate { .. } => 13,
            ServerMessage::ContentCleared { .. } => 14,
        };
        let arms: Vec<usize> = samples.iter().map(arm).collect();
        assert_eq!(arms, (0..15).collect::<Vec<_>>());
        assert_eq!(
            String::from_utf8(samples[0].to_bytes()).unwrap(),
            r#"{"type":"E2EE_KEY","generation":3,"secret":"s"}"#
        );
        assert_eq!(
            String::from_utf8(samples[7].to_bytes()).unwrap(),
            r#"{"type":"BREAKOUT_ROOMS_CHANGED"}"#
        );
    }
}
