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
pub mod core;
pub mod locks;
pub mod polls;

use analytics::{Analytics, SessionFacts};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rand::distributions::{Alphanumeric, DistString};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;
use zeroize::Zeroizing;

use enclave_proto::ids::{RoomId, SessionId, UserId};
use enclave_proto::room::RoomMetadata;

pub use self::core::KeyEpoch;
use self::core::{
    Blocked, EndReason, Invitation, JoinError, Membership, Participant, Room, RoomEvent,
    RoomLimits, RoomStatus, Waiter, Who,
};
use enclave_proto::reply::ParticipantInfo;

use crate::clock::unix_now;
use crate::webhook::{NotifyEvent, NotifyRoom, WebhookQueue};

/// The shared secret of a server-generated-key E2EE room: 32 characters from `0-9A-Za-z`
/// drawn from the OS CSPRNG (about 190 bits). It has no `Display`, its `Debug` is redacted, and
/// its memory is zeroed on drop.
pub struct RoomSecret(Zeroizing<String>);

impl RoomSecret {
    /// Generates a new secret.
    pub fn generate() -> Self {
        Self(Zeroizing::new(
            Alphanumeric.sample_string(&mut rand::rngs::OsRng, 32),
        ))
    }

    /// The secret, for delivery to an authenticated participant of its room.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RoomSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RoomSecret(<redacted>)")
    }
}

/// Facts about a session fixed at creation.
#[derive(Debug)]
pub struct RoomInfo {
    pub room_id: RoomId,
    pub sid: SessionId,
    pub db_id: i64,
    pub title: String,
    pub webhook_url: String,
    /// Unix seconds.
    pub created: i64,
    pub empty_timeout: u32,
    pub max_participants: u32,
    pub metadata: RoomMetadata,
    /// `metadata` as the JSON string replies carry.
    pub metadata_json: String,
    /// A server-generated-key E2EE room: the owner draws its key epochs.
    pub server_key: bool,
}

/// A feature that needs the server to see or hear the media (or chat) in clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMediaFeature {
    CloudRecording,
    AutoCloudRecording,
    RtmpBroadcast,
    Transcription,
    SpeechTranslation,
    MeetingSummarization,
    SipDialIn,
    Ingress,
}

impl ServerMediaFeature {
    fn name(self) -> &'static str {
        match self {
            Self::CloudRecording => "cloud recording",
            Self::AutoCloudRecording => "automatic cloud recording",
            Self::RtmpBroadcast => "RTMP broadcasting",
            Self::Transcription => "transcription",
            Self::SpeechTranslation => "speech translation",
            Self::MeetingSummarization => "meeting summarization",
            Self::SipDialIn => "SIP dial-in",
            Self::Ingress => "ingress",
        }
    }
}

/// Why the server refuses to start a feature in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FeatureRefused {
    /// The room is end-to-end encrypted: the server cannot see the media, so it will not pretend
    /// to record, broadcast or transcribe it.
    #[error("{} is not available in an end-to-end encrypted room: the server cannot see its media", .0.name())]
    EndToEndEncrypted(ServerMediaFeature),
    /// The room was created with the feature off.
    #[error("{} is not enabled for this room", .0.name())]
    Disabled(ServerMediaFeature),
}

impl RoomInfo {
    /// Whether the session is end-to-end encrypted (either key model).
    pub fn is_e2ee(&self) -> bool {
        self.metadata
            .room_features
            .as_ref()
            .is_some_and(|f| f.is_e2ee())
    }

    /// Whether a participant whose token asks to be hidden is hidden. Never in an end-to-end
    /// encrypted room: whoever receives its media can read it, so everyone who could hold the
    /// key is shown to the others (as a silent observer), and the verification code cannot be
    /// shared with an eavesdropper nobody sees.
    pub fn effective_hidden(&self, asked: bool) -> bool {
        asked && !self.is_e2ee()
    }

    /// What the media worker needs to know to create this session's media core.
    pub fn media_facts(&self) -> crate::media::RoomFacts {
        crate::media::RoomFacts {
            room_id: self.room_id.to_string(),
            sid: self.sid.to_string(),
            empty_timeout: self.empty_timeout,
            max_participants: self.max_participants,
            e2ee: self
                .metadata
                .room_features
                .as_ref()
                .is_some_and(|f| f.is_e2ee()),
        }
    }

    /// The one gate every endpoint that would start a server-side media feature goes through.
    /// E2EE is checked first and independently of the feature flags, so no combination of
    /// flags can open it in an encrypted room.
    pub fn permit(&self, feature: ServerMediaFeature) -> Result<(), FeatureRefused> {
        let f = self.metadata.room_features.clone().unwrap_or_default();
        if f.is_e2ee() {
            return Err(FeatureRefused::EndToEndEncrypted(feature));
        }
        let rec = f.recording_features.clone().unwrap_or_default();
        let insights = f.insights_features.clone().unwrap_or_default();
        let transcription = insights.transcription_features.clone().unwrap_or_default();
        let summary = insights
            .ai_features
            .clone()
            .unwrap_or_default()
            .meeting_summarization_features
            .unwrap_or_default();
        let allowed = match feature {
            ServerMediaFeature::CloudRecording => f.allows_cloud_recording(),
            ServerMediaFeature::AutoCloudRecording => {
                f.allows_cloud_recording() && rec.enable_auto_cloud_recording
            }
            ServerMediaFeature::RtmpBroadcast => f.allows_rtmp(),
            ServerMediaFeature::Transcription => insights.is_allow && transcription.is_allow,
            ServerMediaFeature::SpeechTranslation => {
                insights.is_allow && transcription.is_allow && transcription.is_allow_translation
            }
            ServerMediaFeature::MeetingSummarization => insights.is_allow && summary.is_allow,
            ServerMediaFeature::SipDialIn => {
                f.sip_dial_in_features.as_ref().is_some_and(|s| s.is_allow)
            }
            ServerMediaFeature::Ingress => f.ingress_features.as_ref().is_some_and(|s| s.is_allow),
        };
        if allowed {
            Ok(())
        } else {
            Err(FeatureRefused::Disabled(feature))
        }
    }
}

/// A room's state at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub status: RoomStatus,
    pub participants: Vec<Participant>,
    /// Who waits in the waiting room now (their invitation's metadata says
    /// `wait_for_approval`), longest first.
    pub waiting: Vec<Participant>,
    pub joined_total: i64,
}

enum Command {
    Invite(UserId, Invitation, oneshot::Sender<Result<(), Blocked>>),
    Remove(UserId, bool, oneshot::Sender<()>),
    Membership(UserId, oneshot::Sender<Membership>),
    Join(Participant, oneshot::Sender<Result<(), JoinError>>),
    Leave(UserId, Option<String>),
    End(EndReason, oneshot::Sender<()>),
    Snapshot(oneshot::Sender<Snapshot>),
    Invitation(UserId, oneshot::Sender<Option<Invitation>>),
    Knock(UserId, oneshot::Sender<Option<Option<String>>>),
    Waiting(oneshot::Sender<Vec<Waiter>>),
    Who(Who, oneshot::Sender<Vec<UserId>>),
    SetWaitingMsg(String, oneshot::Sender<()>),
    Admit(UserId, oneshot::Sender<Option<Admission>>),
    /// Runs on the room's polls, in the room's task (the closure replies itself).
    Polls(Box<dyn FnOnce(&mut polls::Polls) + Send>),
    /// Runs on the room's list of breakout rooms, likewise.
    Breakouts(Box<dyn FnOnce(&mut breakouts::Breakouts) + Send>),
    Track {
        participant_sid: String,
        track: crate::webhook::NotifyTrack,
        published: bool,
    },
    SetHand(Who, bool, i64, oneshot::Sender<Vec<(UserId, Invitation)>>),
    SwitchPresenter(
        UserId,
        bool,
        UserId,
        oneshot::Sender<Vec<(UserId, Invitation)>>,
    ),
    CurrentEpoch(UserId, oneshot::Sender<Option<KeyEpoch>>),
    Activity(UserId, analytics::Activity),
    ExtendDuration(Duration, oneshot::Sender<bool>),
    OwnUpdate(
        UserId,
        String,
        String,
        oneshot::Sender<Result<Option<(String, String)>, String>>,
    ),
    SetLock(
        Who,
        locks::LockService,
        bool,
        oneshot::Sender<Vec<(UserId, Invitation)>>,
    ),
}

/// What a server-generated-key room hands whoever it lets in (`verifyToken`).
pub struct Admission {
    /// The key epoch drawn for them (everyone in the room gets it too).
    pub epoch: KeyEpoch,
    /// Seals the chat history their browser keeps; theirs alone, the same all session long.
    pub history: Arc<RoomSecret>,
    /// Seals what is kept for late joiners (poll texts); the same for everyone all session.
    pub content: Arc<RoomSecret>,
}

/// A room is gone (ended) by the time the message arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("room has ended")]
pub struct RoomGone;

/// A handle to a live room.
#[derive(Clone)]
pub struct RoomHandle {
    pub info: Arc<RoomInfo>,
    tx: mpsc::Sender<Command>,
}

impl RoomHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, RoomGone> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| RoomGone)?;
        rx.await.map_err(|_| RoomGone)
    }

    /// Records that a join token was issued for `user` (refused for a blocked user).
    pub async fn invite(
        &self,
        user: UserId,
        invitation: Invitation,
    ) -> Result<Result<(), Blocked>, RoomGone> {
        self.ask(|tx| Command::Invite(user, invitation, tx)).await
    }

    /// An admin removes `user` from the session (and with `block`, blocks them); returns once
    /// the room has applied it, so a token check that follows sees it.
    pub async fn remove(&self, user: UserId, block: bool) -> Result<(), RoomGone> {
        self.ask(|tx| Command::Remove(user, block, tx)).await
    }

    /// Where `user` stands in this session (removed, blocked) and their invitation, in one
    /// question to the room.
    pub async fn membership(&self, user: UserId) -> Result<Membership, RoomGone> {
        self.ask(|tx| Command::Membership(user, tx)).await
    }

    /// A participant joins (refused once the room is full).
    pub async fn join(&self, p: Participant) -> Result<Result<(), JoinError>, RoomGone> {
        self.ask(|tx| Command::Join(p, tx)).await
    }

    /// A participant leaves; with `sid`, only if that is its current connection.
    pub async fn leave(&self, user: UserId, sid: Option<String>) -> Result<(), RoomGone> {
        self.tx
            .send(Command::Leave(user, sid))
            .await
            .map_err(|_| RoomGone)
    }

    /// Ends the room; returns once the room has ended.
    pub async fn end(&self, reason: EndReason) -> Result<(), RoomGone> {
        self.ask(|tx| Command::End(reason, tx)).await
    }

    /// The room's current state.
    pub async fn snapshot(&self) -> Result<Snapshot, RoomGone> {
        self.ask(Command::Snapshot).await
    }

    /// The invitation (from `getJoinToken`) of `user` in this session, if any.
    pub async fn invitation(&self, user: UserId) -> Result<Option<Invitation>, RoomGone> {
        self.ask(|tx| Command::Invitation(user, tx)).await
    }

    /// A waiting user asks to be let in: `Some(message)` while they still wait (the message
    /// an admin set during the session, if any), `None` once they may join.
    pub async fn knock(&self, user: UserId) -> Result<Option<Option<String>>, RoomGone> {
        self.ask(|tx| Command::Knock(user, tx)).await
    }

    /// Who waits in the waiting room now, longest first.
    pub async fn waiting(&self) -> Result<Vec<Waiter>, RoomGone> {
        self.ask(Command::Waiting).await
    }

    /// An admin lets waiting users in; returns who was let in.
    pub async fn approve(&self, which: Who) -> Result<Vec<UserId>, RoomGone> {
        self.ask(|tx| Command::Who(which, tx)).await
    }

    /// An admin sets or lifts a lock; returns the invitations it changed.
    pub async fn set_lock(
        &self,
        who: Who,
        service: locks::LockService,
        lock: bool,
    ) -> Result<Vec<(UserId, Invitation)>, RoomGone> {
        self.ask(|tx| Command::SetLock(who, service, lock, tx))
            .await
    }

    /// What `user` may publish now: the room's features and their invitation's locks (a user
    /// without an invitation, such as a LiveKit token holder, is held to the features).
    pub fn publish_permission(
        &self,
        invitation: Option<&Invitation>,
        hidden: bool,
    ) -> enclave_sfu::PublishPermission {
        locks::publish_permission(
            self.info.metadata.room_features.as_ref(),
            invitation.is_some_and(|i| i.is_admin),
            hidden,
            invitation.and_then(|i| i.metadata.lock_settings.as_ref()),
        )
    }

    /// An admin changes the waiting room's message for the rest of the session.
    pub async fn set_waiting_msg(&self, msg: String) -> Result<(), RoomGone> {
        self.ask(|tx| Command::SetWaitingMsg(msg, tx)).await
    }

    /// `user` is let in (`verifyToken`): in a server-generated-key room, the new key epoch
    /// drawn for them and the session's secrets they hold; `None` elsewhere.
    pub async fn admit(&self, user: UserId) -> Result<Option<Admission>, RoomGone> {
        self.ask(|tx| Command::Admit(user, tx)).await
    }

    /// Acts on the room's breakout rooms in the room's own task and returns what `f` returns.
    pub async fn breakouts<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut breakouts::Breakouts) -> T + Send + 'static,
    ) -> Result<T, RoomGone> {
        self.ask(|tx| {
            Command::Breakouts(Box::new(move |b| {
                let _ = tx.send(f(b));
            }))
        })
        .await
    }

    /// Acts on the room's polls in the room's own task and returns what `f` returns.
    pub async fn polls<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut polls::Polls) -> T + Send + 'static,
    ) -> Result<T, RoomGone> {
        self.ask(|tx| {
            Command::Polls(Box::new(move |p| {
                let _ = tx.send(f(p));
            }))
        })
        .await
    }

    /// Raises `who`'s hand (at `raised_at`, Unix ms) or lowers it; returns the invitations
    /// whose hand changed.
    pub async fn set_hand(
        &self,
        who: Who,
        raise: bool,
        raised_at: i64,
    ) -> Result<Vec<(UserId, Invitation)>, RoomGone> {
        self.ask(|tx| Command::SetHand(who, raise, raised_at, tx))
            .await
    }

    /// A track of the participant whose connection is `participant_sid` was published (or is
    /// gone): the `track_published` / `track_unpublished` webhook.
    pub async fn track(
        &self,
        participant_sid: String,
        track: crate::webhook::NotifyTrack,
        published: bool,
    ) -> Result<(), RoomGone> {
        self.tx
            .send(Command::Track {
                participant_sid,
                track,
                published,
            })
            .await
            .map_err(|_| RoomGone)
    }

    /// Makes `user` the presenter, or (`promote` false) gives it from them to the admin `by`;
    /// returns the invitations that changed.
    pub async fn switch_presenter(
        &self,
        user: UserId,
        promote: bool,
        by: UserId,
    ) -> Result<Vec<(UserId, Invitation)>, RoomGone> {
        self.ask(|tx| Command::SwitchPresenter(user, promote, by, tx))
            .await
    }

    /// The media server saw `user` do something attendance counts. Dropped, not awaited, if
    /// the room's queue is full: counts are not worth slowing the media worker for.
    pub fn activity(&self, user: UserId, activity: analytics::Activity) {
        let _ = self.tx.try_send(Command::Activity(user, activity));
    }

    /// Gives the room `extra` more time; false for a room without a duration.
    pub async fn extend_duration(&self, extra: Duration) -> Result<bool, RoomGone> {
        self.ask(|tx| Command::ExtendDuration(extra, tx)).await
    }

    /// `user` asks to change their own metadata and name (see
    /// [`core::Room::own_update`]).
    pub async fn own_update(
        &self,
        user: UserId,
        metadata: String,
        name: String,
    ) -> Result<Result<Option<(String, String)>, String>, RoomGone> {
        self.ask(|tx| Command::OwnUpdate(user, metadata, name, tx))
            .await
    }

    /// The current key epoch, for a participant in the room; `None` for anyone else.
    pub async fn current_epoch(&self, user: UserId) -> Result<Option<KeyEpoch>, RoomGone> {
        self.ask(|tx| Command::CurrentEpoch(user, tx)).await
    }
}

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

impl NotifyEvent {
    /// An event about `room`. The room's metadata never holds a secret (see
    /// `EndToEndEncryptionFeatures`), so neither does the event.
    pub fn for_room(
        event: &str,
        room: &RoomInfo,
        num_participants: u32,
        p: Option<&Participant>,
    ) -> Self {
        Self {
            event: event.to_owned(),
            room: NotifyRoom {
                sid: room.sid.to_string(),
                room_id: room.room_id.to_string(),
                empty_timeout: room.empty_timeout,
                max_participants: room.max_participants,
                creation_time: room.created,
                metadata: room.metadata_json.clone(),
                num_participants,
            },
            participant: p.map(participant_info),
            recording_info: None,
            track: None,
            room_artifact: None,
            analytics: None,
            id: uuid::Uuid::new_v4().to_string(),
            created_at: unix_now(),
        }
    }
}

/// A waiting user as Plug-N-Meet lists one: a participant whose metadata says
/// `wait_for_approval` (and who has no media connection yet, hence no sid).
fn waiting_participant(room: &Room, w: Waiter) -> Participant {
    let metadata = room
        .invitation(&w.user_id)
        .map(Invitation::metadata_json)
        .unwrap_or_default();
    Participant {
        user_id: w.user_id,
        sid: String::new(),
        name: w.name,
        is_admin: false,
        is_hidden: false,
        joined_at: unix_now() - w.waiting_for.as_secs() as i64,
        metadata,
    }
}

/// A participant in LiveKit's `ParticipantInfo` shape.
pub(crate) fn participant_info(p: &Participant) -> ParticipantInfo {
    ParticipantInfo {
        sid: p.sid.clone(),
        identity: p.user_id.to_string(),
        state: "ACTIVE",
        tracks: Vec::new(),
        metadata: p.metadata.clone(),
        joined_at: p.joined_at,
        name: p.name.clone(),
        version: 0,
        permission: None,
        region: String::new(),
        is_publisher: false,
        kind: "STANDARD",
    }
}

/// An artifact saved at a room's end, for the `artifact_created` webhook.
pub struct SavedArtifact {
    pub artifact_id: String,
    pub kind: enclave_proto::history::RoomArtifactType,
    /// `RoomArtifactMetadata`.
    pub metadata: serde_json::Value,
}

/// What the rest of the server does when a room's life changes. The room's owner reports;
/// the composition root acts (metrics, automatic recording, the room's media, the history
/// row), so that rooms depend on nothing above them.
#[async_trait::async_trait]
pub trait RoomObserver: Send + Sync + 'static {
    /// The room started and its features ask for automatic cloud recording (the E2EE gate
    /// has allowed it).
    fn auto_record(self: Arc<Self>, info: Arc<RoomInfo>);
    /// A participant joined (`+1`) or left (`-1`).
    fn participants_changed(&self, delta: i64);
    /// The room ended: it leaves the registry, its media ends, its history row is closed and
    /// its analytics file (`MEETING_ANALYTICS`, when the room has analytics on) is saved as an
    /// artifact, before the room's last webhooks go out. Returns the saved artifact.
    async fn ended(
        &self,
        info: &RoomInfo,
        joined_total: i64,
        analytics: Option<serde_json::Value>,
    ) -> Option<SavedArtifact>;
    /// A new key epoch must reach these participants (and nobody else) over their own
    /// encrypted connection to the media server.
    fn key_epoch(&self, info: &RoomInfo, epoch: &KeyEpoch, to: &[UserId]);
}

fn now_std() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// The owner loop of one room: apply one input, act on every event, sleep until the next
/// timer or message.
async fn drive(
    app: Arc<dyn RoomObserver>,
    info: Arc<RoomInfo>,
    mut room: Room,
    mut rx: mpsc::Receiver<Command>,
    webhooks: Option<WebhookQueue>,
) {
    // Published tracks: their kind and publisher, for the `track_unpublished` webhook.
    let mut tracks: HashMap<String, (&'static str, Participant)> = HashMap::new();
    let mut analytics = Analytics::default();
    let mut breakouts = breakouts::Breakouts::default();
    loop {
        while let Some(ev) = room.poll_event() {
            tracks_gone(&mut tracks, &ev, &info, &room, webhooks.as_ref());
            attend(&mut analytics, &room, &ev);
            on_event(&app, &info, &room, &analytics, &ev, webhooks.as_ref()).await;
        }
        if room.status() == RoomStatus::Ended {
            break;
        }
        let deadline = room.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None => room.end(EndReason::Shutdown),
                Some(Command::Invite(user, inv, reply)) => {
                    let _ = reply.send(room.invite(user, inv));
                }
                Some(Command::Remove(user, block, done)) => {
                    room.remove(now_std(), &user, block);
                    let _ = done.send(());
                }
                Some(Command::Membership(user, reply)) => {
                    let _ = reply.send(room.membership(&user));
                }
                Some(Command::Join(p, reply)) => {
                    let r = room.join(now_std(), p);
                    if let Err(e) = &r {
                        tracing::info!(error = %e, "join refused");
                    }
                    let _ = reply.send(r);
                }
                Some(Command::Leave(user, sid)) => room.leave(now_std(), &user, sid.as_deref()),
                Some(Command::End(reason, done)) => {
                    room.end(reason);
                    while let Some(ev) = room.poll_event() {
                        tracks_gone(&mut tracks, &ev, &info, &room, webhooks.as_ref());
                        attend(&mut analytics, &room, &ev);
                        on_event(&app, &info, &room, &analytics, &ev, webhooks.as_ref()).await;
                    }
                    let _ = done.send(());
                }
                Some(Command::Invitation(user, reply)) => {
                    let _ = reply.send(room.invitation(&user).cloned());
                }
                Some(Command::Knock(user, reply)) => {
                    let waits = room.knock(now_std(), &user);
                    let _ = reply.send(waits.then(|| room.waiting_msg().map(str::to_owned)));
                }
                Some(Command::Waiting(reply)) => {
                    let _ = reply.send(room.waiting(now_std()));
                }
                Some(Command::Who(which, reply)) => {
                    let _ = reply.send(room.approve(&which));
                }
                Some(Command::SetLock(who, service, lock, reply)) => {
                    let _ = reply.send(room.set_lock(&who, service, lock));
                }
                Some(Command::SetWaitingMsg(msg, done)) => {
                    room.set_waiting_msg(msg);
                    let _ = done.send(());
                }
                Some(Command::Admit(user, reply)) => {
                    let admitted = room.admit(&user).and_then(|epoch| {
                        Some(Admission {
                            epoch,
                            history: room.history_secret(&user)?,
                            content: room.content_secret(&user)?,
                        })
                    });
                    let _ = reply.send(admitted);
                }
                Some(Command::Breakouts(act)) => {
                    act(&mut breakouts);
                }
                Some(Command::Polls(act)) => {
                    act(room.polls());
                }
                Some(Command::SwitchPresenter(user, promote, by, reply)) => {
                    let _ = reply.send(room.switch_presenter(&user, promote, &by));
                }
                Some(Command::SetHand(who, raise, at, reply)) => {
                    let changed = room.set_hand(&who, raise, at);
                    if raise {
                        for (user, _) in &changed {
                            analytics.hand_raised(user, at);
                        }
                    }
                    let _ = reply.send(changed);
                }
                Some(Command::ExtendDuration(extra, reply)) => {
                    let _ = reply.send(room.extend_duration(extra));
                }
                Some(Command::OwnUpdate(user, metadata, name, reply)) => {
                    let _ = reply.send(room.own_update(&user, &metadata, &name));
                }
                Some(Command::Activity(user, what)) => {
                    analytics.activity(&user, what, crate::clock::unix_ms());
                }
                Some(Command::Track { participant_sid, mut track, published }) => {
                    // The publisher as they were at publishing: a track's unpublish often
                    // follows its publisher's leave.
                    let publisher = if published {
                        let p = room.participants().find(|p| p.sid == participant_sid).cloned();
                        if let Some(p) = &p {
                            tracks.insert(track.sid.clone(), (track.kind, p.clone()));
                        }
                        p
                    } else {
                        tracks.remove(&track.sid).map(|(kind, p)| {
                            track.kind = kind;
                            p
                        })
                    };
                    if let (Some(q), Some(p)) = (webhooks.as_ref(), publisher.as_ref()) {
                        let name = if published { "track_published" } else { "track_unpublished" };
                        let mut ev = NotifyEvent::for_room(name, &info, room.participants().count() as u32, Some(p));
                        ev.track = Some(track);
                        q.send(ev);
                    }
                }
                Some(Command::CurrentEpoch(user, reply)) => {
                    let _ = reply.send(room.current_epoch(&user));
                }
                Some(Command::Snapshot(reply)) => {
                    let waiting = room.waiting(now_std()).into_iter().map(|w| waiting_participant(&room, w)).collect();
                    let _ = reply.send(Snapshot { status: room.status(), participants: room.participants().cloned().collect(), waiting, joined_total: room.joined_total() });
                }
            },
            () = sleep_until(deadline) => room.handle_timeout(now_std()),
        }
    }
}

/// A participant left (or the room ended, which makes everyone leave): their tracks are gone,
/// and `track_unpublished` goes out before `participant_left`, as LiveKit orders them. The
/// media server's own unpublish events for those tracks then find nothing left to report.
fn tracks_gone(
    tracks: &mut HashMap<String, (&'static str, Participant)>,
    ev: &RoomEvent,
    info: &RoomInfo,
    room: &Room,
    webhooks: Option<&WebhookQueue>,
) {
    let RoomEvent::ParticipantLeft(left) = ev else {
        return;
    };
    let gone: Vec<String> = tracks
        .iter()
        .filter(|(_, (_, p))| p.sid == left.sid)
        .map(|(sid, _)| sid.clone())
        .collect();
    for sid in gone {
        let Some((kind, p)) = tracks.remove(&sid) else {
            continue;
        };
        if let Some(q) = webhooks {
            let mut ev = NotifyEvent::for_room(
                "track_unpublished",
                info,
                room.participants().count() as u32,
                Some(&p),
            );
            ev.track = Some(crate::webhook::NotifyTrack { sid, kind });
            q.send(ev);
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Attendance: who joined and left when.
fn attend(analytics: &mut Analytics, room: &Room, ev: &RoomEvent) {
    let now = crate::clock::unix_ms();
    match ev {
        RoomEvent::ParticipantJoined(p) => {
            let ex = room
                .invitation(&p.user_id)
                .and_then(|i| i.metadata.ex_user_id.clone());
            analytics.joined(&p.user_id, &p.name, p.is_admin, ex, now);
        }
        RoomEvent::ParticipantLeft(p) => analytics.left(&p.user_id, now),
        _ => {}
    }
}

async fn on_event(
    app: &Arc<dyn RoomObserver>,
    info: &Arc<RoomInfo>,
    room: &Room,
    analytics: &Analytics,
    ev: &RoomEvent,
    webhooks: Option<&WebhookQueue>,
) {
    let num = room.participants().count() as u32;
    let notify = |name: &str, p: Option<&Participant>| {
        if let Some(q) = webhooks {
            q.send(NotifyEvent::for_room(name, info, num, p));
        }
    };
    match ev {
        RoomEvent::Started => {
            tracing::info!("room started");
            notify("room_started", None);
            // `enable_auto_cloud_recording`: the gate refuses it in E2EE rooms whatever the
            // flags say.
            match info.permit(ServerMediaFeature::AutoCloudRecording) {
                Ok(()) => app.clone().auto_record(info.clone()),
                Err(FeatureRefused::EndToEndEncrypted(_)) => {
                    tracing::info!(
                        "automatic cloud recording stays off: the room is end-to-end encrypted"
                    );
                }
                Err(FeatureRefused::Disabled(_)) => {}
            }
        }
        RoomEvent::ParticipantJoined(p) => {
            tracing::info!(user_id = %p.user_id, "participant joined");
            app.participants_changed(1);
            notify("participant_joined", Some(p));
        }
        RoomEvent::ParticipantLeft(p) => {
            tracing::info!(user_id = %p.user_id, "participant left");
            app.participants_changed(-1);
            notify("participant_left", Some(p));
        }
        RoomEvent::KeyEpoch { epoch, to } => {
            tracing::info!(
                generation = epoch.generation,
                recipients = to.len(),
                "new key epoch"
            );
            app.key_epoch(info, epoch, to);
        }
        RoomEvent::Ended(reason) => {
            tracing::info!(?reason, "room ended");
            let enabled = info
                .metadata
                .room_features
                .as_ref()
                .is_some_and(|f| f.enable_analytics);
            let file = enabled.then(|| {
                let facts = SessionFacts {
                    room_id: info.room_id.to_string(),
                    title: info.title.clone(),
                    created: info.created,
                    e2ee: info.is_e2ee(),
                };
                analytics.export(&facts, room.polls_ref(), crate::clock::unix_ms())
            });
            let saved = app.ended(info, room.joined_total(), file).await;
            notify("room_finished", None);
            notify("session_ended", None);
            if let (Some(q), Some(a)) = (webhooks, saved) {
                let mut ev = NotifyEvent::for_room("artifact_created", info, 0, None);
                ev.room_artifact = Some(serde_json::json!({
                    "type": a.kind.as_str(),
                    "artifact_id": a.artifact_id,
                    "metadata": a.metadata,
                }));
                q.send(ev);
                let mut ev = NotifyEvent::for_room("analytics_proceeded", info, 0, None);
                ev.analytics = Some(serde_json::json!({ "file_id": a.artifact_id }));
                q.send(ev);
            }
        }
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
