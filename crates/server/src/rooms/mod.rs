//! Live rooms: one task owns each room's [`core::Room`]; everyone else sends it messages.
//!
//! The registry maps room ids to handles. It is a control-plane map (touched on create, lookup
//! and end), never on a media path. A handle carries the room's immutable facts. The E2EE
//! secrets of a server-generated-key room (its key epochs, [`core::KeyEpoch`]) live only in the
//! room's owner task: not in the facts that flow into webhooks and recorders, not in the
//! metadata, not in SQL, not in any `/auth` reply or log line. Each is wiped from memory when
//! its last holder drops it.

pub mod analytics;
pub mod breakouts;
pub mod content;
pub mod core;
pub mod files;
pub mod locks;
pub mod polls;
pub mod sealed;

mod handle;
mod info;
mod owner;

pub use handle::{Admission, RoomGone, RoomHandle, Snapshot};
pub use info::{FeatureRefused, RoomInfo, RoomSecret, ServerMediaFeature};
use owner::drive;
pub(crate) use owner::participant_info;
pub use owner::{RoomObserver, SavedArtifact};

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::Instrument;

use enclave_proto::ids::{RoomId, SessionId};

pub use self::core::KeyEpoch;
use self::core::{Room, RoomLimits};

use crate::webhook::WebhookQueue;
/// The registry of live rooms.
#[derive(Default)]
pub struct Rooms {
    map: RwLock<HashMap<RoomId, RoomHandle>>,
    /// Room ids being created right now, each with a lock that a second create of the same id
    /// waits on, and how many creates hold or wait for it. Creations of different ids run in
    /// parallel.
    creating: std::sync::Mutex<HashMap<RoomId, Creating>>,
}

#[derive(Default)]
struct Creating {
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Creates holding or waiting for `lock`; the entry goes when the last one is done.
    /// Counted under the map's mutex: reference counts of `lock` cannot say it, since a
    /// released guard wakes the next waiter before it drops its own reference.
    users: usize,
}

/// One create's interest in a room id's entry, from before it waits until it is done (or
/// cancelled while waiting).
struct Registration<'a> {
    rooms: &'a Rooms,
    id: RoomId,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut creating = self
            .rooms
            .creating
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(c) = creating.get_mut(&self.id) {
            c.users -= 1;
            if c.users == 0 {
                creating.remove(&self.id);
            }
        }
    }
}

/// Held while one room id is being created; see [`Rooms::creation_guard`].
pub struct CreationGuard<'a> {
    // Field order is drop order: the lock is released before the interest is given up.
    _held: tokio::sync::OwnedMutexGuard<()>,
    _registration: Registration<'a>,
}

impl Rooms {
    /// Serialises creation of one room id (so it never gets two live sessions) without
    /// serialising creations of different ids.
    pub async fn creation_guard(&self, id: &RoomId) -> CreationGuard<'_> {
        let lock = {
            let mut creating = self.creating.lock().unwrap_or_else(|p| p.into_inner());
            let c = creating.entry(id.clone()).or_default();
            c.users += 1;
            c.lock.clone()
        };
        let registration = Registration {
            rooms: self,
            id: id.clone(),
        };
        let held = lock.lock_owned().await;
        CreationGuard {
            _held: held,
            _registration: registration,
        }
    }

    /// How many room ids are being created right now (for tests).
    #[doc(hidden)]
    pub fn creations_in_progress(&self) -> usize {
        self.creating
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// The live room with this id.
    pub fn get(&self, id: &RoomId) -> Option<RoomHandle> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// The live room with this id, looked up by its text (for paths that have not parsed it).
    pub fn get_str(&self, id: &str) -> Option<RoomHandle> {
        RoomId::parse(id).ok().and_then(|id| self.get(&id))
    }

    /// Every live room.
    pub fn all(&self) -> Vec<RoomHandle> {
        let mut v: Vec<_> = self
            .map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|h| h.info.db_id);
        v
    }

    /// How many rooms are live.
    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no room is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the room from the registry if it is still session `sid` (a newer session of the
    /// same id stays).
    pub(crate) fn remove(&self, id: &RoomId, sid: SessionId) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.get(id).is_some_and(|h| h.info.sid == sid) {
            map.remove(id);
        }
    }

    /// Starts the owner task of a new room and registers it. The caller holds the room id's
    /// [`CreationGuard`], so no other room with this id can appear in between.
    pub(crate) fn start(
        &self,
        observer: Arc<dyn RoomObserver>,
        info: RoomInfo,
        duration: Option<Duration>,
        webhooks: Option<WebhookQueue>,
    ) -> RoomHandle {
        let (tx, rx) = mpsc::channel(64);
        let info = Arc::new(info);
        let handle = RoomHandle {
            info: info.clone(),
            tx,
        };
        let limits = RoomLimits {
            empty_timeout: Duration::from_secs(info.empty_timeout.into()),
            max_participants: info.max_participants,
            duration,
        };
        let now = tokio::time::Instant::now().into_std();
        let mut room = Room::new(now, limits);
        if info.server_key {
            room = room.with_key_epochs();
        }
        if info.metadata.is_breakout_room {
            room = room.with_clock_from(now);
        }
        // A room outlives the request that created it: its span has no parent.
        let span =
            tracing::info_span!(parent: None, "room", room_id = %info.room_id, sid = %info.sid);
        tokio::spawn(drive(observer, info.clone(), room, rx, webhooks).instrument(span));
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(info.room_id.clone(), handle.clone());
        handle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many creates of a few ids on two threads, some cancelled while waiting: every entry
    /// goes once the last create of its id is done. (Counting references to the lock instead
    /// left an entry behind now and then: a released guard wakes the next waiter before it
    /// drops its own reference.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn creation_entries_go_with_the_last_create_of_their_id() {
        let rooms = Arc::new(Rooms::default());
        for round in 0..20 {
            let mut tasks = Vec::new();
            for i in 0..16 {
                let rooms = rooms.clone();
                let id = RoomId::parse(&format!("r{}", i % 3)).unwrap();
                tasks.push(tokio::spawn(async move {
                    if (i + round) % 5 == 0 {
                        // Gives up while waiting: the holders keep the lock for 1 ms each.
                        let _ = tokio::time::timeout(
                            Duration::from_micros(200),
                            rooms.creation_guard(&id),
                        )
                        .await;
                    } else {
                        let _g = rooms.creation_guard(&id).await;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(rooms.creations_in_progress(), 0, "round {round}");
        }
    }

    #[test]
    fn secrets_are_32_alphanumerics_unique_and_redacted() {
        let a = RoomSecret::generate();
        let b = RoomSecret::generate();
        assert_eq!(a.expose().len(), 32);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a.expose(), b.expose());
        assert_eq!(format!("{a:?}"), "RoomSecret(<redacted>)");
    }

    fn info(features: &str) -> RoomInfo {
        let body = format!(
            r#"{{"room_id":"r","metadata":{{"room_title":"T","room_features":{features}}}}}"#
        );
        let policy = enclave_proto::room::RoomPolicy {
            insights_enabled: true,
            sip_enabled: true,
            ..Default::default()
        };
        let p = enclave_proto::room::prepare_create(body.as_bytes(), &policy, 0).unwrap();
        RoomInfo {
            room_id: p.room_id.clone(),
            sid: SessionId::new_v4(),
            db_id: 1,
            title: "T".into(),
            webhook_url: String::new(),
            created: 0,
            empty_timeout: 120,
            max_participants: 0,
            metadata: p.metadata,
            metadata_json: String::new(),
            server_key: false,
        }
    }

    const ALL: [ServerMediaFeature; 8] = [
        ServerMediaFeature::CloudRecording,
        ServerMediaFeature::AutoCloudRecording,
        ServerMediaFeature::RtmpBroadcast,
        ServerMediaFeature::Transcription,
        ServerMediaFeature::SpeechTranslation,
        ServerMediaFeature::MeetingSummarization,
        ServerMediaFeature::SipDialIn,
        ServerMediaFeature::Ingress,
    ];

    #[test]
    fn every_server_media_feature_is_refused_in_both_e2ee_modes() {
        for mode in ["false", "true"] {
            let room = info(&format!(
                r#"{{"recording_features":{{"enable_auto_cloud_recording":true}},"insights_features":{{"transcription_features":{{"is_allow_translation":true}}}},
                "end_to_end_encryption_features":{{"is_enabled":true,"enabled_self_insert_encryption_key":{mode}}}}}"#
            ));
            for f in ALL {
                let err = room.permit(f).unwrap_err();
                assert_eq!(err, FeatureRefused::EndToEndEncrypted(f));
                assert!(err.to_string().contains("end-to-end encrypted"), "{err}");
            }
        }
    }

    #[test]
    fn nobody_is_hidden_in_an_encrypted_room_of_either_mode() {
        for mode in ["false", "true"] {
            let room = info(&format!(
                r#"{{"end_to_end_encryption_features":{{"is_enabled":true,"enabled_self_insert_encryption_key":{mode}}}}}"#
            ));
            assert!(room.is_e2ee());
            assert!(!room.effective_hidden(true), "self-insert: {mode}");
        }
        let plain = info("{}");
        assert!(plain.effective_hidden(true) && !plain.effective_hidden(false));
    }

    #[test]
    fn plain_rooms_permit_what_their_features_allow() {
        let room = info(
            r#"{"recording_features":{"enable_auto_cloud_recording":true},"insights_features":{"transcription_features":{"is_allow_translation":true}}}"#,
        );
        for f in ALL {
            assert_eq!(room.permit(f), Ok(()), "{f:?}");
        }
        let room = info(
            r#"{"recording_features":{"is_allow_cloud":false},"external_broadcasting_features":{"is_allow":false}}"#,
        );
        assert_eq!(
            room.permit(ServerMediaFeature::CloudRecording),
            Err(FeatureRefused::Disabled(ServerMediaFeature::CloudRecording))
        );
        assert_eq!(
            room.permit(ServerMediaFeature::RtmpBroadcast),
            Err(FeatureRefused::Disabled(ServerMediaFeature::RtmpBroadcast))
        );
    }
}
