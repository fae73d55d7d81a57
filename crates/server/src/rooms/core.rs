//! One room's live state as a sans-IO state machine.
//!
//! Time is an input: the owner calls an input method (`join`, `leave`, `end`) or
//! [`Room::handle_timeout`], then drains [`Room::poll_event`] until `None`, then sleeps until
//! [`Room::poll_timeout`]. The room never reads a clock, spawns, or does I/O, so its tests run
//! in virtual time.
//!
//! Lifecycle: `Created` (no one has joined yet) → `Active` (first join; `room_duration` counts
//! from here) → `Ended`. A room ends when `endRoom` is called, when its duration is over, or when
//! it has had no participant for `empty_timeout` — counted from creation, and again from each
//! moment the last participant leaves.
//!
//! Key epochs (server-generated-key E2EE rooms, [`Room::with_key_epochs`]): whoever is admitted
//! gets a new epoch drawn for them, and when a participant leaves the others get a new one, so
//! a newcomer cannot read what was sent before they came and a leaver cannot read what is sent
//! after they left. Each new epoch is an event naming the members it must reach.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::polls::Polls;
use super::RoomSecret;

use enclave_proto::ids::UserId;
use enclave_proto::user::UserMetadata;

/// Where a room is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomStatus {
    /// Created, no one has joined yet.
    Created,
    /// Someone has joined.
    Active,
    /// Over; the owner removes it.
    Ended,
}

impl RoomStatus {
    /// Plug-N-Meet's name for the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Active => "active",
            Self::Ended => "ended",
        }
    }
}

/// Why a room ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// `endRoom` through the API, or an admin.
    Requested,
    /// Nobody was in the room for `empty_timeout`.
    EmptyTimeout,
    /// `room_duration` ran out.
    DurationElapsed,
    /// The server is shutting down.
    Shutdown,
    /// The room's media failed (its SFU core panicked); participants may join a new session.
    MediaFailure,
}

/// A participant as the room knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Participant {
    pub user_id: UserId,
    /// A fresh id for this connection of the user.
    pub sid: String,
    pub name: String,
    pub is_admin: bool,
    pub is_hidden: bool,
    /// Unix seconds.
    pub joined_at: i64,
    /// The user metadata JSON.
    pub metadata: String,
}

/// A user a join token was issued for.
#[derive(Debug, Clone, PartialEq)]
pub struct Invitation {
    pub name: String,
    pub is_admin: bool,
    pub metadata: UserMetadata,
}

impl Invitation {
    /// The metadata as the JSON string participants and tokens carry.
    pub fn metadata_json(&self) -> String {
        serde_json::to_string(&self.metadata).unwrap_or_default()
    }
}

/// What happened, for the owner to act on (webhooks, history, metrics).
#[derive(Debug, Clone, PartialEq)]
pub enum RoomEvent {
    /// The first participant joined.
    Started,
    /// A participant joined.
    ParticipantJoined(Participant),
    /// A participant left (or was replaced by a new connection of the same user).
    ParticipantLeft(Participant),
    /// The room ended; no further events follow.
    Ended(EndReason),
    /// A new key epoch: give it to these participants (the members who are in the room), and
    /// to nobody else.
    KeyEpoch { epoch: KeyEpoch, to: Vec<UserId> },
}

/// One key epoch of a server-generated-key session: its number and its secret. Cheap to clone
/// (the secret is shared and wiped when the last clone goes); `Debug` shows the generation only.
#[derive(Clone)]
pub struct KeyEpoch {
    /// 1, 2, …: each epoch's keys are derived with its generation (`crates/e2ee`).
    pub generation: u32,
    pub secret: Arc<RoomSecret>,
}

impl KeyEpoch {
    fn next(after: Option<&KeyEpoch>) -> Self {
        Self {
            // Four billion joins and leaves are out of reach of one session.
            generation: after.map_or(1, |e| e.generation.saturating_add(1)),
            secret: Arc::new(RoomSecret::generate()),
        }
    }
}

impl fmt::Debug for KeyEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyEpoch({}, <redacted>)", self.generation)
    }
}

impl PartialEq for KeyEpoch {
    fn eq(&self, other: &Self) -> bool {
        self.generation == other.generation && Arc::ptr_eq(&self.secret, &other.secret)
    }
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error("the room is full (max_participants reached)")]
    RoomFull,
    #[error("the room has ended")]
    RoomEnded,
    #[error("the participant was removed from this session and not invited again")]
    Removed,
    #[error("the participant is blocked from this session")]
    Blocked,
    #[error("the participant waits for an admin's approval")]
    AwaitingApproval,
}

/// Where a user stands in this session after an admin acted on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Nothing against them.
    Welcome,
    /// Removed: their invitation is void until a new join token is issued for them.
    Removed,
    /// Removed with `block_user`: no join token, invitation or media connection for the rest
    /// of the session.
    Blocked,
}

/// A token holder in this session: where they stand and their invitation, if one was issued.
#[derive(Debug, Clone)]
pub struct Membership {
    /// Whether an admin removed or blocked them.
    pub standing: Standing,
    /// Their invitation (from `getJoinToken`), if any.
    pub invitation: Option<Invitation>,
}

/// `getJoinToken` for a blocked user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this user is blocked to join this session")]
pub struct Blocked;

/// How long after a waiting user's last knock they still count as waiting (their page asks
/// every few seconds; one who closed it drops off the admins' list).
pub const KNOCK_PRESENCE: Duration = Duration::from_secs(15);

/// Someone in the waiting room, as admins see them.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiter {
    pub user_id: UserId,
    pub name: String,
    /// Since their first knock.
    pub waiting_for: Duration,
}

/// Whom an admin acts on: one user, or every non-admin (`all` in the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    One(UserId),
    All,
}

impl Who {
    /// Whether `user` is among those meant.
    pub fn includes(&self, user: &UserId) -> bool {
        match self {
            Who::One(u) => u == user,
            Who::All => true,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Knock {
    first: Instant,
    last: Instant,
}

/// Limits fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomLimits {
    /// How long the room may stay empty.
    pub empty_timeout: Duration,
    /// 0 = unlimited.
    pub max_participants: u32,
    /// From the first join; `None` = unlimited.
    pub duration: Option<Duration>,
}

/// The room state machine. See the module docs for the drive loop.
#[derive(Debug)]
pub struct Room {
    limits: RoomLimits,
    status: RoomStatus,
    participants: BTreeMap<UserId, Participant>,
    invitations: BTreeMap<UserId, Invitation>,
    /// Removed by an admin and not invited since.
    removed: BTreeSet<UserId>,
    /// The session's block list.
    blocked: BTreeSet<UserId>,
    /// Waiting users who asked to be let in, and when.
    knocks: BTreeMap<UserId, Knock>,
    /// The waiting room's message, when an admin changed it during the session.
    waiting_msg: Option<String>,
    /// Locks an admin set or lifted for everyone during the session: they apply to later
    /// invitations too, over the room's default lock settings.
    locks_for_all: enclave_proto::room::LockSettings,
    /// Since when the room has had nobody in it (`None` while occupied).
    empty_since: Option<Instant>,
    /// When the first participant joined.
    started_at: Option<Instant>,
    /// A breakout room's duration counts from its creation, not from the first join (the host
    /// gave everyone "15 minutes from now").
    clock_from: Option<Instant>,
    /// Joins over the whole session, for history.
    joined_total: i64,
    /// Server-generated-key rooms: whether epochs rotate, and the current one (none before
    /// the first admission).
    key_epochs: bool,
    epoch: Option<KeyEpoch>,
    /// Whose admission drew the current epoch (none when a departure did).
    epoch_drawn_for: Option<UserId>,
    /// Server-generated-key rooms: each admitted user's secret for sealing the chat history
    /// their own browser keeps, the same at every admission in the session (a page reload
    /// gets a new epoch, and still opens what it kept).
    history: BTreeMap<UserId, Arc<RoomSecret>>,
    /// Server-generated-key rooms: the session's content secret, for what is kept for late
    /// joiners (poll texts): it does not move with the epochs, which a newcomer never holds.
    content: Option<Arc<RoomSecret>>,
    polls: Polls,
    events: VecDeque<RoomEvent>,
}

impl Room {
    /// A new room, created at `now`.
    pub fn new(now: Instant, limits: RoomLimits) -> Self {
        Self {
            limits,
            status: RoomStatus::Created,
            participants: BTreeMap::new(),
            invitations: BTreeMap::new(),
            removed: BTreeSet::new(),
            blocked: BTreeSet::new(),
            knocks: BTreeMap::new(),
            waiting_msg: None,
            locks_for_all: Default::default(),
            empty_since: Some(now),
            started_at: None,
            clock_from: None,
            joined_total: 0,
            key_epochs: false,
            epoch: None,
            epoch_drawn_for: None,
            history: BTreeMap::new(),
            content: None,
            polls: Polls::default(),
            events: VecDeque::new(),
        }
    }

    /// A server-generated-key room: the server draws the session's key epochs.
    pub fn with_key_epochs(mut self) -> Self {
        self.key_epochs = true;
        self.content = Some(Arc::new(RoomSecret::generate()));
        self
    }

    /// The session's content secret for `user` (the same for everyone, all session long);
    /// `None` for anyone who may not come in, and in rooms without key epochs.
    pub fn content_secret(&self, user: &UserId) -> Option<Arc<RoomSecret>> {
        self.content.clone().filter(|_| self.may_hold_keys(user))
    }

    /// `user` asks to change their own metadata (Plug-N-Meet's `UserMetadata` JSON) and name
    /// through the media server. Someone of the session may change their name (1 to 64
    /// characters) and, in the metadata, `profile_pic` (an http(s) URL) and `preferred_lang`;
    /// everything else there is the server's (role, locks, hand, presenter, …) and must come
    /// back unchanged. Returns what to apply (the client's metadata text, once checked), `None` for
    /// someone without an invitation (a LiveKit token holder, whose token decided), or why not.
    pub fn own_update(
        &mut self,
        user: &UserId,
        metadata: &str,
        name: &str,
    ) -> Result<Option<(String, String)>, String> {
        let Some(inv) = self.invitations.get(user) else {
            return Ok(None);
        };
        let name = name.trim();
        let name = if name.is_empty() {
            inv.name.clone()
        } else {
            name.to_owned()
        };
        if name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err("name: 1 to 64 characters, no control characters".into());
        }
        let mut wanted = inv.metadata.clone();
        if !metadata.trim().is_empty() && metadata != inv.metadata_json() {
            let value: serde_json::Value =
                serde_json::from_str(metadata).map_err(|e| format!("metadata: not JSON ({e})"))?;
            let asked: UserMetadata = serde_json::from_value(value.clone())
                .map_err(|e| format!("metadata: not Plug-N-Meet's user metadata ({e})"))?;
            // Exactly the user metadata's fields, nothing more: what others will read is the
            // client's own text (its SDK waits to see that very text come back).
            if serde_json::to_value(&asked).ok().as_ref() != Some(&value) {
                return Err(
                    "metadata: give the user metadata as the server wrote it, with no other fields"
                        .into(),
                );
            }
            let mut same = asked.clone();
            same.profile_pic = inv.metadata.profile_pic.clone();
            same.preferred_lang = inv.metadata.preferred_lang.clone();
            if same != inv.metadata {
                return Err("metadata: a participant may change only profile_pic and preferred_lang; the rest is the server's".into());
            }
            if let Some(pic) = &asked.profile_pic {
                let url_ok = (pic.starts_with("https://") || pic.starts_with("http://"))
                    && pic.len() <= 512
                    && !pic.chars().any(|c| c.is_whitespace() || c.is_control());
                if !pic.is_empty() && !url_ok {
                    return Err(
                        "metadata.profile_pic: an http(s) URL of at most 512 characters".into(),
                    );
                }
            }
            if let Some(lang) = &asked.preferred_lang {
                let ok = lang.len() <= 16
                    && lang
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    return Err(
                        "metadata.preferred_lang: a language tag of at most 16 characters".into(),
                    );
                }
            }
            wanted = asked;
        }
        let Some(inv) = self.invitations.get_mut(user) else {
            return Ok(None);
        };
        inv.name = name;
        inv.metadata = wanted;
        let text = if metadata.trim().is_empty() {
            inv.metadata_json()
        } else {
            metadata.to_owned()
        };
        if let Some(p) = self.participants.get_mut(user) {
            p.name = inv.name.clone();
            p.metadata = text.clone();
        }
        Ok(Some((text, inv.name.clone())))
    }

    /// The session's polls.
    pub fn polls(&mut self) -> &mut Polls {
        &mut self.polls
    }

    /// The session's polls, to read.
    pub fn polls_ref(&self) -> &Polls {
        &self.polls
    }

    /// `user` has proven their invitation and is let in (`verifyToken`): in a room with key
    /// epochs, a new epoch is drawn for them and everyone in the room gets it too, so nothing
    /// sent before this moment can be read with what they receive. `None` in other rooms, and
    /// for a user who may not come in (removed, blocked, waiting, never invited).
    pub fn admit(&mut self, user: &UserId) -> Option<KeyEpoch> {
        if !self.may_hold_keys(user) {
            return None;
        }
        // Admitted again with nothing changed since their last admission (a page reloaded
        // before joining, or a flood of verifyToken calls): they hold this epoch already, so
        // giving it again reveals nothing and spares everyone a switch.
        if self.epoch_drawn_for.as_ref() == Some(user) {
            return self.epoch.clone();
        }
        let others = self
            .participants
            .keys()
            .filter(|u| *u != user)
            .cloned()
            .collect();
        let epoch = self.new_epoch(others);
        self.epoch_drawn_for = Some(user.clone());
        Some(epoch)
    }

    /// `user`'s secret for sealing the history their browser keeps, drawn at their first
    /// admission and the same at every later one; `None` for anyone who may not come in, and
    /// in rooms without key epochs.
    pub fn history_secret(&mut self, user: &UserId) -> Option<Arc<RoomSecret>> {
        if !self.may_hold_keys(user) {
            return None;
        }
        Some(
            self.history
                .entry(user.clone())
                .or_insert_with(|| Arc::new(RoomSecret::generate()))
                .clone(),
        )
    }

    /// Whether `user` may be given the room's keys: a key-epoch room that goes on, and an
    /// invitation that is neither removed, blocked nor waiting.
    fn may_hold_keys(&self, user: &UserId) -> bool {
        self.key_epochs
            && self.status != RoomStatus::Ended
            && self.standing(user) == Standing::Welcome
            && self.invitations.contains_key(user)
            && !self.awaits_approval(user)
    }

    /// The current epoch, for a participant who is in the room (one who missed the delivery
    /// while reconnecting); `None` for anyone else.
    pub fn current_epoch(&self, user: &UserId) -> Option<KeyEpoch> {
        if self.status == RoomStatus::Ended || !self.participants.contains_key(user) {
            return None;
        }
        self.epoch.clone()
    }

    fn new_epoch(&mut self, to: Vec<UserId>) -> KeyEpoch {
        let epoch = KeyEpoch::next(self.epoch.as_ref());
        self.epoch = Some(epoch.clone());
        self.epoch_drawn_for = None;
        if !to.is_empty() {
            self.events.push_back(RoomEvent::KeyEpoch {
                epoch: epoch.clone(),
                to,
            });
        }
        epoch
    }

    /// Current status.
    pub fn status(&self) -> RoomStatus {
        self.status
    }

    /// Participants in the room now.
    pub fn participants(&self) -> impl Iterator<Item = &Participant> {
        self.participants.values()
    }

    /// How many joins the session has seen.
    pub fn joined_total(&self) -> i64 {
        self.joined_total
    }

    /// Remembers that a join token was issued for `user`; refused for a blocked user. A new
    /// invitation lifts a removal without a block (an integrator let them back in).
    pub fn invite(&mut self, user: UserId, mut invitation: Invitation) -> Result<(), Blocked> {
        if self.blocked.contains(&user) {
            return Err(Blocked);
        }
        if !invitation.is_admin {
            let locks = invitation
                .metadata
                .lock_settings
                .get_or_insert_with(Default::default);
            super::locks::overlay(locks, &self.locks_for_all);
        }
        // The first admin invited becomes the presenter while nobody is (Plug-N-Meet's rule).
        // A new token for the presenter keeps it with them.
        let presenter_elsewhere = self
            .invitations
            .iter()
            .any(|(u, i)| *u != user && i.metadata.is_presenter);
        let was_presenter = self
            .invitations
            .get(&user)
            .is_some_and(|i| i.metadata.is_presenter);
        invitation.metadata.is_presenter =
            was_presenter || (invitation.is_admin && !presenter_elsewhere);
        self.removed.remove(&user);
        self.invitations.insert(user, invitation);
        Ok(())
    }

    /// Makes `user` the presenter (the previous one stops being it) or, with `promote` false,
    /// takes it from them and gives it to `by` (the admin who asked). Returns the invitations
    /// that changed; empty when `user` has no invitation.
    pub fn switch_presenter(
        &mut self,
        user: &UserId,
        promote: bool,
        by: &UserId,
    ) -> Vec<(UserId, Invitation)> {
        if !self.invitations.contains_key(user) {
            return Vec::new();
        }
        let next = if promote { user } else { by };
        let mut changed = Vec::new();
        for (u, inv) in self.invitations.iter_mut() {
            let want = u == next;
            if inv.metadata.is_presenter != want {
                inv.metadata.is_presenter = want;
                if let Some(p) = self.participants.get_mut(u) {
                    p.metadata = inv.metadata_json();
                }
                changed.push((u.clone(), inv.clone()));
            }
        }
        changed
    }

    /// An admin removes `user`: their invitation is void (the join token they hold no longer
    /// verifies, renews or joins) and, with `block`, they join the session's block list. The
    /// participant leaves at once if connected.
    pub fn remove(&mut self, now: Instant, user: &UserId, block: bool) {
        if self.status == RoomStatus::Ended {
            return;
        }
        self.invitations.remove(user);
        self.knocks.remove(user);
        self.history.remove(user);
        self.removed.insert(user.clone());
        if block {
            self.blocked.insert(user.clone());
        }
        if self.participants.contains_key(user) {
            self.leave(now, user, None);
        } else if self.key_epochs && self.epoch.is_some() && !self.participants.is_empty() {
            // Not connected, but they may hold the current epoch (admitted, not yet joined):
            // those in the room move on without them all the same.
            let to = self.participants.keys().cloned().collect();
            self.new_epoch(to);
        }
    }

    /// Where `user` stands in this session.
    pub fn standing(&self, user: &UserId) -> Standing {
        if self.blocked.contains(user) {
            Standing::Blocked
        } else if self.removed.contains(user) {
            Standing::Removed
        } else {
            Standing::Welcome
        }
    }

    /// Where `user` stands and their invitation: all a token check asks of the room.
    pub fn membership(&self, user: &UserId) -> Membership {
        Membership {
            standing: self.standing(user),
            invitation: self.invitation(user).cloned(),
        }
    }

    /// The invitation of `user`, if a token was issued for them.
    pub fn invitation(&self, user: &UserId) -> Option<&Invitation> {
        self.invitations.get(user)
    }

    /// Whether `user`'s invitation still waits for an admin's approval (the waiting room).
    pub fn awaits_approval(&self, user: &UserId) -> bool {
        self.invitations
            .get(user)
            .is_some_and(|i| i.metadata.wait_for_approval)
    }

    /// A waiting user asks again to be let in (their waiting page does so every few seconds);
    /// returns whether they still wait. Admins see those who knocked within
    /// [`KNOCK_PRESENCE`].
    pub fn knock(&mut self, now: Instant, user: &UserId) -> bool {
        if !self.awaits_approval(user) || self.status == RoomStatus::Ended {
            self.knocks.remove(user);
            return false;
        }
        self.knocks
            .entry(user.clone())
            .and_modify(|k| k.last = now)
            .or_insert(Knock {
                first: now,
                last: now,
            });
        true
    }

    /// Who waits now, longest first.
    pub fn waiting(&self, now: Instant) -> Vec<Waiter> {
        let mut w: Vec<(Instant, Waiter)> = self
            .knocks
            .iter()
            .filter(|(u, k)| {
                now.saturating_duration_since(k.last) <= KNOCK_PRESENCE && self.awaits_approval(u)
            })
            .filter_map(|(u, k)| {
                let inv = self.invitations.get(u)?;
                Some((
                    k.first,
                    Waiter {
                        user_id: u.clone(),
                        name: inv.name.clone(),
                        waiting_for: now.saturating_duration_since(k.first),
                    },
                ))
            })
            .collect();
        w.sort_by_key(|(first, _)| *first);
        w.into_iter().map(|(_, w)| w).collect()
    }

    /// An admin lets waiting users in: their invitation no longer waits, so their next
    /// `verifyToken` gets the media token (and, in a server-key room, the secret). `All` lets
    /// in everyone invited and waiting, whether or not their page is open. Returns who was let
    /// in.
    pub fn approve(&mut self, which: &Who) -> Vec<UserId> {
        let mut approved = Vec::new();
        for (user, inv) in self.invitations.iter_mut() {
            if which.includes(user) && inv.metadata.wait_for_approval {
                inv.metadata.wait_for_approval = false;
                approved.push(user.clone());
            }
        }
        for u in &approved {
            self.knocks.remove(u);
        }
        approved
    }

    /// An admin sets or lifts a lock (`service`) for one user or for every non-admin invited;
    /// returns the invitations changed (admins are never locked). Later joins and tokens
    /// carry the new locks, and a lock for everyone applies to users invited later as well.
    pub fn set_lock(
        &mut self,
        who: &Who,
        service: super::locks::LockService,
        lock: bool,
    ) -> Vec<(UserId, Invitation)> {
        if *who == Who::All {
            service.apply(&mut self.locks_for_all, lock);
        }
        let mut changed = Vec::new();
        for (user, inv) in self.invitations.iter_mut() {
            if who.includes(user) && !inv.is_admin {
                let locks = inv
                    .metadata
                    .lock_settings
                    .get_or_insert_with(Default::default);
                service.apply(locks, lock);
                changed.push((user.clone(), inv.clone()));
            }
        }
        changed
    }

    /// Raises or lowers hands: `raised_at` (Unix ms) orders the queue. Returns the invitations
    /// whose hand changed, and updates the metadata of those in the room.
    pub fn set_hand(
        &mut self,
        who: &Who,
        raise: bool,
        raised_at: i64,
    ) -> Vec<(UserId, Invitation)> {
        let mut changed = Vec::new();
        for (user, inv) in self.invitations.iter_mut() {
            // `All` lowers everyone's hand; nobody raises another's.
            if !who.includes(user) || (raise && *who == Who::All) {
                continue;
            }
            let is_raised = inv
                .metadata
                .raised_hand
                .as_ref()
                .is_some_and(|h| h.is_raised);
            if is_raised == raise {
                continue;
            }
            inv.metadata.raised_hand = Some(enclave_proto::user::UserRaisedHand {
                is_raised: raise,
                raised_at: if raise { raised_at } else { 0 },
            });
            if let Some(p) = self.participants.get_mut(user) {
                p.metadata = inv.metadata_json();
            }
            changed.push((user.clone(), inv.clone()));
        }
        changed
    }

    /// The waiting room's message as an admin last set it (`None`: the room's own).
    pub fn waiting_msg(&self) -> Option<&str> {
        self.waiting_msg.as_deref()
    }

    /// An admin changes the waiting room's message for the rest of the session.
    pub fn set_waiting_msg(&mut self, msg: String) {
        self.waiting_msg = Some(msg);
    }

    /// A participant joins. A second connection of the same user replaces the first.
    pub fn join(&mut self, now: Instant, mut participant: Participant) -> Result<(), JoinError> {
        if self.status == RoomStatus::Ended {
            return Err(JoinError::RoomEnded);
        }
        match self.standing(&participant.user_id) {
            Standing::Welcome => {}
            Standing::Removed => return Err(JoinError::Removed),
            Standing::Blocked => return Err(JoinError::Blocked),
        }
        if self.awaits_approval(&participant.user_id) {
            return Err(JoinError::AwaitingApproval);
        }
        // The join token said who is an admin; the media connection does not.
        if let Some(inv) = self.invitations.get(&participant.user_id) {
            participant.is_admin |= inv.is_admin;
        }
        let replacing = self.participants.contains_key(&participant.user_id);
        // 0 is "unlimited", which still means at most MAX_PARTICIPANTS_PER_ROOM.
        let max = match self.limits.max_participants {
            0 => enclave_proto::room::MAX_PARTICIPANTS_PER_ROOM,
            n => n.min(enclave_proto::room::MAX_PARTICIPANTS_PER_ROOM),
        } as usize;
        if !replacing && self.participants.len() >= max {
            return Err(JoinError::RoomFull);
        }
        if self.status == RoomStatus::Created {
            self.status = RoomStatus::Active;
            self.started_at = Some(now);
            self.events.push_back(RoomEvent::Started);
        }
        if let Some(old) = self
            .participants
            .insert(participant.user_id.clone(), participant.clone())
        {
            self.events.push_back(RoomEvent::ParticipantLeft(old));
        }
        self.empty_since = None;
        self.joined_total += 1;
        self.events
            .push_back(RoomEvent::ParticipantJoined(participant));
        Ok(())
    }

    /// A participant leaves. With `sid`, only that connection of the user leaves (an older
    /// connection that a reconnect replaced does not take the new one with it). Leaving twice,
    /// or leaving a room one never joined, does nothing.
    pub fn leave(&mut self, now: Instant, user: &UserId, sid: Option<&str>) {
        if self.status == RoomStatus::Ended {
            return;
        }
        if sid.is_some_and(|s| self.participants.get(user).is_some_and(|p| p.sid != s)) {
            return;
        }
        if let Some(p) = self.participants.remove(user) {
            self.events.push_back(RoomEvent::ParticipantLeft(p));
            if self.participants.is_empty() {
                self.empty_since = Some(now);
            } else if self.key_epochs {
                // The leaver keeps what they held: those who stay move on without them.
                let to = self.participants.keys().cloned().collect();
                self.new_epoch(to);
            }
        }
    }

    /// Ends the room: everyone leaves, then `Ended`. Ending an ended room does nothing.
    pub fn end(&mut self, reason: EndReason) {
        if self.status == RoomStatus::Ended {
            return;
        }
        for (_, p) in std::mem::take(&mut self.participants) {
            self.events.push_back(RoomEvent::ParticipantLeft(p));
        }
        self.status = RoomStatus::Ended;
        self.events.push_back(RoomEvent::Ended(reason));
    }

    /// Applies the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.status == RoomStatus::Ended {
            return;
        }
        if self.duration_deadline().is_some_and(|d| now >= d) {
            self.end(EndReason::DurationElapsed);
        } else if self.empty_deadline().is_some_and(|d| now >= d) {
            self.end(EndReason::EmptyTimeout);
        }
    }

    /// The next event to act on.
    pub fn poll_event(&mut self) -> Option<RoomEvent> {
        self.events.pop_front()
    }

    /// When [`Room::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.status == RoomStatus::Ended {
            return None;
        }
        match (self.duration_deadline(), self.empty_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn empty_deadline(&self) -> Option<Instant> {
        self.empty_since.map(|t| t + self.limits.empty_timeout)
    }

    fn duration_deadline(&self) -> Option<Instant> {
        Some(self.clock_from.or(self.started_at)? + self.limits.duration?)
    }

    /// The room's duration counts from `now` (its creation) instead of from the first join.
    pub fn with_clock_from(mut self, now: Instant) -> Self {
        self.clock_from = Some(now);
        self
    }

    /// Gives the room `extra` more time (a room without a duration keeps none).
    pub fn extend_duration(&mut self, extra: Duration) -> bool {
        match self.limits.duration.as_mut() {
            Some(d) => {
                *d += extra;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests;
