//! The task that owns one room: applies one input at a time, acts on every event the room
//! emits, and reports to the composition root through [`RoomObserver`].

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use enclave_proto::ids::UserId;
use enclave_proto::reply::ParticipantInfo;

use super::analytics::{Analytics, SessionFacts};
use super::breakouts;
use super::core::{
    EndReason, Invitation, KeyEpoch, Participant, Room, RoomEvent, RoomStatus, Waiter,
};
use super::handle::Command;
use super::{Admission, FeatureRefused, RoomInfo, ServerMediaFeature, Snapshot};
use crate::clock::{now_std, unix_now};
use crate::webhook::{NotifyEvent, NotifyRoom, WebhookQueue};

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

/// The owner loop of one room: apply one input, act on every event, sleep until the next
/// timer or message.
pub(super) async fn drive(
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
    // What participants created (whiteboard, notepad, files): the session's, gone with it.
    let mut documents = super::content::Documents::default();
    let mut files = super::files::Files::default();
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
                Some(Command::Content(act)) => {
                    act(&mut documents, &mut files);
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
