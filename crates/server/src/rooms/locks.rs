//! Lock settings: which of a participant's services an admin has locked, and what that leaves
//! them allowed to publish. The media runtime enforces the result
//! ([`enclave_sfu::PublishPermission`]); the web client only follows it.

use enclave_proto::room::{LockSettings, RoomCreateFeatures};
use enclave_sfu::proto::TrackSource;
use enclave_sfu::PublishPermission;

pub use crate::media::{CHAT_TOPIC, REACTION_TOPIC};

/// Whether a participant's chat is locked (all chat, or sending messages).
pub fn chat_locked(is_admin: bool, locks: Option<&LockSettings>) -> bool {
    !is_admin
        && locks.is_some_and(|l| {
            l.lock_chat.unwrap_or(false) || l.lock_chat_send_message.unwrap_or(false)
        })
}

/// Whether a participant may not send private messages: their private chat is locked, or their
/// chat altogether (admins never are).
pub fn private_chat_locked(is_admin: bool, locks: Option<&LockSettings>) -> bool {
    chat_locked(is_admin, locks)
        || (!is_admin && locks.is_some_and(|l| l.lock_private_chat.unwrap_or(false)))
}

/// Whether a participant may not share files in the chat: file sharing is locked for them, or
/// their chat altogether (admins never are).
pub fn chat_file_locked(is_admin: bool, locks: Option<&LockSettings>) -> bool {
    !is_admin
        && locks.is_some_and(|l| {
            l.lock_chat.unwrap_or(false) || l.lock_chat_file_share.unwrap_or(false)
        })
}

/// Whether the whiteboard is locked for a participant (the presenter may draw regardless: the
/// content routes check that, this is the lock alone).
pub fn whiteboard_locked(is_admin: bool, locks: Option<&LockSettings>) -> bool {
    !is_admin && locks.is_some_and(|l| l.lock_whiteboard.unwrap_or(false))
}

/// Whether the shared notepad is locked for a participant.
pub fn notepad_locked(is_admin: bool, locks: Option<&LockSettings>) -> bool {
    !is_admin && locks.is_some_and(|l| l.lock_shared_notepad.unwrap_or(false))
}

/// The `LOCK_SETTINGS` message (and `verifyToken`'s flags) for a participant: the locks the
/// media path cannot enforce, as they apply to them.
pub fn lock_message(
    is_admin: bool,
    locks: Option<&LockSettings>,
) -> enclave_proto::browser::ServerMessage {
    enclave_proto::browser::ServerMessage::LockSettings {
        lock_chat: chat_locked(is_admin, locks),
        lock_private_chat: private_chat_locked(is_admin, locks),
        lock_chat_file_share: chat_file_locked(is_admin, locks),
        lock_whiteboard: whiteboard_locked(is_admin, locks),
        lock_shared_notepad: notepad_locked(is_admin, locks),
    }
}

/// A service `updateLockSettings` names, with Plug-N-Meet's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockService {
    Mic,
    Webcam,
    ScreenShare,
    Chat,
    SendChatMsg,
    ChatFile,
    PrivateChat,
    Whiteboard,
    SharedNotepad,
}

impl LockService {
    /// Plug-N-Meet's service names (`mic`, `webcam`, `screenShare`, `chat`, `sendChatMsg`,
    /// `chatFile`, `privateChat`, `whiteboard`, `sharedNotepad`), compared without case.
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "mic" | "microphone" => Self::Mic,
            "webcam" | "camera" => Self::Webcam,
            "screenshare" => Self::ScreenShare,
            "chat" => Self::Chat,
            "sendchatmsg" => Self::SendChatMsg,
            "chatfile" => Self::ChatFile,
            "privatechat" => Self::PrivateChat,
            "whiteboard" => Self::Whiteboard,
            "sharednotepad" => Self::SharedNotepad,
            _ => {
                return Err(format!(
                    "service: {s:?} is not one of mic, webcam, screenShare, chat, sendChatMsg, \
                     chatFile, privateChat, whiteboard, sharedNotepad"
                ))
            }
        })
    }

    /// Sets (or lifts) this lock in `locks`.
    pub fn apply(self, locks: &mut LockSettings, lock: bool) {
        let slot = match self {
            Self::Mic => &mut locks.lock_microphone,
            Self::Webcam => &mut locks.lock_webcam,
            Self::ScreenShare => &mut locks.lock_screen_sharing,
            Self::Chat => &mut locks.lock_chat,
            Self::SendChatMsg => &mut locks.lock_chat_send_message,
            Self::ChatFile => &mut locks.lock_chat_file_share,
            Self::PrivateChat => &mut locks.lock_private_chat,
            Self::Whiteboard => &mut locks.lock_whiteboard,
            Self::SharedNotepad => &mut locks.lock_shared_notepad,
        };
        *slot = Some(lock);
    }
}

/// Copies every lock `over` sets (or lifts) onto `locks`.
pub fn overlay(locks: &mut LockSettings, over: &LockSettings) {
    macro_rules! over {
        ($($f:ident),*) => { $( if over.$f.is_some() { locks.$f = over.$f; } )* };
    }
    over!(
        lock_microphone,
        lock_webcam,
        lock_screen_sharing,
        lock_chat,
        lock_chat_send_message,
        lock_chat_file_share,
        lock_private_chat,
        lock_whiteboard,
        lock_shared_notepad,
        lock_reactions
    );
}

/// What a participant may publish: the room's `allow_webcams`, `admin_only_webcams` and
/// `allow_screen_share`, then their own microphone, webcam and screen-share locks (admins are
/// never locked). A hidden participant publishes nothing. Without room features (not created
/// through the API) everything is allowed. With nothing restricted the source list is empty,
/// LiveKit's "any source" (tracks without a source stay publishable); once anything is, only
/// the listed sources are, so a track announced without a source cannot slip past a lock.
pub fn publish_permission(
    features: Option<&RoomCreateFeatures>,
    is_admin: bool,
    hidden: bool,
    locks: Option<&LockSettings>,
) -> PublishPermission {
    let locked =
        |l: fn(&LockSettings) -> Option<bool>| !is_admin && locks.and_then(l).unwrap_or(false);
    let webcam = features.is_none_or(|f| f.allow_webcams && (is_admin || !f.admin_only_webcams))
        && !locked(|l| l.lock_webcam);
    let screen =
        features.is_none_or(|f| f.allow_screen_share) && !locked(|l| l.lock_screen_sharing);
    let mic = !locked(|l| l.lock_microphone);
    let mut sources = Vec::new();
    if webcam {
        sources.push(TrackSource::Camera as i32);
    }
    if mic {
        sources.push(TrackSource::Microphone as i32);
    }
    if screen {
        sources.push(TrackSource::ScreenShare as i32);
        sources.push(TrackSource::ScreenShareAudio as i32);
    }
    let everything = webcam && mic && screen;
    PublishPermission {
        // An empty list would mean "any source": nothing allowed is no publishing at all.
        can_publish: !hidden && !sources.is_empty(),
        can_publish_sources: if everything { Vec::new() } else { sources },
        can_publish_data: !hidden,
        denied_data_topics: [
            (chat_locked(is_admin, locks), CHAT_TOPIC),
            (
                private_chat_locked(is_admin, locks),
                enclave_sfu::PRIVATE_TOPIC,
            ),
            (
                features.is_some_and(|f| f.allow_reactions == Some(false))
                    || locked(|l| l.lock_reactions),
                REACTION_TOPIC,
            ),
        ]
        .into_iter()
        .filter(|(denied, _)| *denied)
        .map(|(_, topic)| topic.to_owned())
        .collect(),
    }
}

/// LiveKit's names of the sources, as access tokens carry them (`canPublishSources`).
pub fn source_names(sources: &[i32]) -> Vec<String> {
    sources
        .iter()
        .filter_map(|s| match TrackSource::try_from(*s) {
            Ok(TrackSource::Camera) => Some("camera"),
            Ok(TrackSource::Microphone) => Some("microphone"),
            Ok(TrackSource::ScreenShare) => Some("screen_share"),
            Ok(TrackSource::ScreenShareAudio) => Some("screen_share_audio"),
            _ => None,
        })
        .map(str::to_owned)
        .collect()
}

/// The sources an access token's `canPublishSources` names (unknown names are ignored).
pub fn sources_from_names(names: &[String]) -> Vec<i32> {
    names
        .iter()
        .filter_map(|n| match n.to_ascii_lowercase().as_str() {
            "camera" => Some(TrackSource::Camera as i32),
            "microphone" => Some(TrackSource::Microphone as i32),
            "screen_share" => Some(TrackSource::ScreenShare as i32),
            "screen_share_audio" => Some(TrackSource::ScreenShareAudio as i32),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAM: i32 = TrackSource::Camera as i32;
    const MIC: i32 = TrackSource::Microphone as i32;
    const SCREEN: i32 = TrackSource::ScreenShare as i32;

    fn features(webcams: bool, admin_only: bool, screen: bool) -> RoomCreateFeatures {
        RoomCreateFeatures {
            allow_webcams: webcams,
            admin_only_webcams: admin_only,
            allow_screen_share: screen,
            ..Default::default()
        }
    }

    #[test]
    fn room_features_and_locks_decide_the_sources() {
        let open = features(true, false, true);
        let p = publish_permission(Some(&open), false, false, None);
        assert!(p.allows(CAM) && p.allows(MIC) && p.allows(SCREEN));
        assert!(
            p.can_publish_sources.is_empty() && p.allows(0),
            "nothing restricted: any source"
        );

        let mut locks = LockSettings::default();
        LockService::Webcam.apply(&mut locks, true);
        let p = publish_permission(Some(&open), false, false, Some(&locks));
        assert!(!p.allows(CAM) && p.allows(MIC) && p.allows(SCREEN));
        assert!(
            !p.allows(0),
            "a track without a source does not slip past a lock"
        );
        // Admins are never locked.
        let p = publish_permission(Some(&open), true, false, Some(&locks));
        assert!(p.allows(CAM));

        let admin_cams = features(true, true, false);
        let p = publish_permission(Some(&admin_cams), false, false, None);
        assert!(!p.allows(CAM) && !p.allows(SCREEN) && p.allows(MIC));
        assert!(publish_permission(Some(&admin_cams), true, false, None).allows(CAM));
        assert!(
            !publish_permission(Some(&features(false, false, true)), true, false, None).allows(CAM)
        );
    }

    #[test]
    fn everything_locked_is_no_publishing_not_any_source() {
        let mut locks = LockSettings::default();
        for s in [
            LockService::Mic,
            LockService::Webcam,
            LockService::ScreenShare,
        ] {
            s.apply(&mut locks, true);
        }
        let p = publish_permission(None, false, false, Some(&locks));
        assert!(!p.can_publish && p.can_publish_sources.is_empty());
        assert!(!p.allows(MIC));
        assert!(p.can_publish_data);
        LockService::PrivateChat.apply(&mut locks, true);
        assert_eq!(
            publish_permission(None, false, false, Some(&locks)).denied_data_topics,
            [enclave_sfu::PRIVATE_TOPIC],
            "a private-chat lock leaves the public chat open"
        );
        LockService::PrivateChat.apply(&mut locks, false);
        LockService::Chat.apply(&mut locks, true);
        assert_eq!(
            publish_permission(None, false, false, Some(&locks)).denied_data_topics,
            [CHAT_TOPIC, enclave_sfu::PRIVATE_TOPIC],
            "a chat lock takes private messages too"
        );
        assert!(publish_permission(None, true, false, Some(&locks))
            .denied_data_topics
            .is_empty());
        let hidden = publish_permission(None, false, true, None);
        assert!(!hidden.can_publish && !hidden.can_publish_data);
    }

    #[test]
    fn a_room_without_reactions_drops_them_for_everyone() {
        let mut f = RoomCreateFeatures {
            allow_reactions: Some(false),
            ..Default::default()
        };
        for admin in [false, true] {
            assert_eq!(
                publish_permission(Some(&f), admin, false, None).denied_data_topics,
                [REACTION_TOPIC]
            );
        }
        f.allow_reactions = None;
        assert!(publish_permission(Some(&f), false, false, None)
            .denied_data_topics
            .is_empty());
    }

    #[test]
    fn content_locks_follow_their_service_and_spare_admins() {
        let mut locks = LockSettings::default();
        assert!(!whiteboard_locked(false, Some(&locks)) && !notepad_locked(false, None));
        LockService::Whiteboard.apply(&mut locks, true);
        assert!(whiteboard_locked(false, Some(&locks)));
        assert!(!notepad_locked(false, Some(&locks)));
        assert!(
            !whiteboard_locked(true, Some(&locks)),
            "admins are never locked"
        );
        LockService::SharedNotepad.apply(&mut locks, true);
        assert!(notepad_locked(false, Some(&locks)));
        assert!(!chat_file_locked(false, Some(&locks)));
        LockService::ChatFile.apply(&mut locks, true);
        assert!(chat_file_locked(false, Some(&locks)) && !chat_locked(false, Some(&locks)));
        let mut chat = LockSettings::default();
        LockService::Chat.apply(&mut chat, true);
        assert!(
            chat_file_locked(false, Some(&chat)),
            "a chat lock takes file sharing too"
        );
        assert!(!chat_file_locked(true, Some(&chat)));
    }

    #[test]
    fn service_names_are_plugnmeets() {
        assert_eq!(
            LockService::parse("screenShare"),
            Ok(LockService::ScreenShare)
        );
        assert_eq!(LockService::parse("MIC"), Ok(LockService::Mic));
        assert!(LockService::parse("teleport")
            .unwrap_err()
            .contains("teleport"));
        let names = source_names(&[CAM, MIC, 99]);
        assert_eq!(names, ["camera", "microphone"]);
        assert_eq!(sources_from_names(&names), [CAM, MIC]);
    }
}
