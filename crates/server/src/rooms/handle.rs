//! The handle to a room's owner task: every question and command is a message to it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use enclave_proto::ids::UserId;

use super::analytics;
use super::core::{
    Blocked, EndReason, Invitation, JoinError, KeyEpoch, Membership, Participant, RoomStatus,
    Waiter, Who,
};
use super::{breakouts, content, files, locks, polls};
use super::{RoomInfo, RoomSecret};

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

/// Something done to a room's documents and files in its task.
pub(super) type ContentAct = Box<dyn FnOnce(&mut content::Documents, &mut files::Files) + Send>;

pub(super) enum Command {
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
    /// Runs on the room's documents and files, likewise.
    Content(ContentAct),
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
    pub(super) tx: mpsc::Sender<Command>,
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

    /// Acts on the room's documents (whiteboard, notepad) in the room's own task and returns
    /// what `f` returns.
    pub async fn documents<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut content::Documents) -> T + Send + 'static,
    ) -> Result<T, RoomGone> {
        self.ask(|tx| {
            Command::Content(Box::new(move |d, _| {
                let _ = tx.send(f(d));
            }))
        })
        .await
    }

    /// Acts on the room's files (what is known of them; the bytes are on disk) in the room's
    /// own task and returns what `f` returns.
    pub async fn files<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut files::Files) -> T + Send + 'static,
    ) -> Result<T, RoomGone> {
        self.ask(|tx| {
            Command::Content(Box::new(move |_, files| {
                let _ = tx.send(f(files));
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
