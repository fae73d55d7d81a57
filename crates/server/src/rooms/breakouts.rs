//! A session's breakout rooms, as its parent room keeps them: which rooms run, for how long,
//! and who is assigned where. Each breakout room is a room of its own (its own session, `sid`
//! and, in an E2EE room, its own keys), created through the same path as `room/create`; this
//! is only the parent's list, owned by the parent room's task (no I/O, no clock).

use std::collections::BTreeSet;

use enclave_proto::breakout::{BreakoutRoom, CreateBreakoutRoomsReq};

/// Breakout rooms one session may open at once when the room does not say.
pub const DEFAULT_MAX_ROOMS: u32 = 6;
/// Minutes a breakout room may last at most.
pub const MAX_DURATION_MINUTES: u64 = 24 * 60;

/// Why a breakout request was refused; the message is the reply's `msg`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakoutError {
    #[error("breakout rooms are running already: end them first")]
    Running,
    #[error("rooms: give 1 to {0} breakout rooms")]
    Count(u32),
    #[error("rooms: id {0:?} must be 1 to 32 letters, digits, '-' or '_', and unique")]
    BadId(String),
    #[error("rooms: room {0:?} has no title")]
    NoTitle(String),
    #[error("duration: 1 to {MAX_DURATION_MINUTES} minutes")]
    Duration,
    #[error("duration: the main room ends in {0} minutes; a breakout room cannot outlast it")]
    OutlastsParent(u64),
    #[error("users: {0:?} is assigned to two rooms")]
    Twice(String),
    #[error("breakout room not found")]
    NotFound,
}

/// Checks a create request against the room's limits: `max_rooms`, and `parent_left` (minutes
/// the parent room still has, if it has a duration).
pub fn validate(
    req: &CreateBreakoutRoomsReq,
    max_rooms: u32,
    parent_left: Option<u64>,
) -> Result<(), BreakoutError> {
    if req.rooms.is_empty() || req.rooms.len() > max_rooms as usize {
        return Err(BreakoutError::Count(max_rooms));
    }
    if !(1..=MAX_DURATION_MINUTES).contains(&req.duration) {
        return Err(BreakoutError::Duration);
    }
    if let Some(left) = parent_left {
        if req.duration > left {
            return Err(BreakoutError::OutlastsParent(left));
        }
    }
    let mut ids = BTreeSet::new();
    let mut users = BTreeSet::new();
    for r in &req.rooms {
        let ok = (1..=32).contains(&r.id.len())
            && r.id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok || !ids.insert(r.id.as_str()) {
            return Err(BreakoutError::BadId(r.id.clone()));
        }
        if r.title.trim().is_empty() {
            return Err(BreakoutError::NoTitle(r.id.clone()));
        }
        for u in &r.users {
            if !users.insert(u.id.as_str()) {
                return Err(BreakoutError::Twice(u.id.clone()));
            }
        }
    }
    Ok(())
}

/// The breakout rooms a parent room has running.
#[derive(Debug, Default)]
pub struct Breakouts {
    rooms: Vec<BreakoutRoom>,
}

impl Breakouts {
    /// Whether any runs.
    pub fn is_active(&self) -> bool {
        !self.rooms.is_empty()
    }

    /// A breakout room now runs (`room.id` is its full room id).
    pub fn add(&mut self, room: BreakoutRoom) {
        self.rooms.retain(|r| r.id != room.id);
        self.rooms.push(room);
    }

    /// It ended; whether it was listed.
    pub fn remove(&mut self, id: &str) -> bool {
        let before = self.rooms.len();
        self.rooms.retain(|r| r.id != id);
        before != self.rooms.len()
    }

    pub fn list(&self) -> Vec<BreakoutRoom> {
        self.rooms.clone()
    }

    pub fn get(&self, id: &str) -> Result<BreakoutRoom, BreakoutError> {
        self.rooms
            .iter()
            .find(|r| r.id == id)
            .cloned()
            .ok_or(BreakoutError::NotFound)
    }

    /// `id` runs `minutes` longer.
    pub fn extend(&mut self, id: &str, minutes: u64) -> Result<BreakoutRoom, BreakoutError> {
        let r = self
            .rooms
            .iter_mut()
            .find(|r| r.id == id)
            .ok_or(BreakoutError::NotFound)?;
        r.duration += minutes;
        r.ends_at += minutes * 60;
        Ok(r.clone())
    }

    /// The room `user` is assigned to.
    pub fn of(&self, user: &str) -> Option<BreakoutRoom> {
        self.rooms
            .iter()
            .find(|r| r.users.iter().any(|u| u.id == user))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use enclave_proto::breakout::BreakoutRoomUser;

    fn room(id: &str, users: &[&str]) -> BreakoutRoom {
        BreakoutRoom {
            id: id.into(),
            title: format!("Room {id}"),
            users: users
                .iter()
                .map(|u| BreakoutRoomUser {
                    id: (*u).into(),
                    name: u.to_uppercase(),
                    joined: false,
                })
                .collect(),
            ..Default::default()
        }
    }

    fn req(rooms: Vec<BreakoutRoom>, duration: u64) -> CreateBreakoutRoomsReq {
        CreateBreakoutRoomsReq {
            duration,
            rooms,
            ..Default::default()
        }
    }

    #[test]
    fn a_plan_is_checked_against_the_rooms_limits() {
        let ok = req(vec![room("1", &["ann"]), room("2", &["bob", "cat"])], 15);
        assert_eq!(validate(&ok, 6, None), Ok(()));
        assert_eq!(validate(&ok, 1, None), Err(BreakoutError::Count(1)));
        assert_eq!(
            validate(&req(vec![], 15), 6, None),
            Err(BreakoutError::Count(6))
        );
        assert_eq!(
            validate(&ok, 6, Some(10)),
            Err(BreakoutError::OutlastsParent(10))
        );
        assert_eq!(
            validate(&req(ok.rooms.clone(), 0), 6, None),
            Err(BreakoutError::Duration)
        );
        let twice = req(vec![room("1", &["ann"]), room("2", &["ann"])], 15);
        assert_eq!(
            validate(&twice, 6, None),
            Err(BreakoutError::Twice("ann".into()))
        );
        let dup = req(vec![room("1", &[]), room("1", &[])], 15);
        assert_eq!(
            validate(&dup, 6, None),
            Err(BreakoutError::BadId("1".into()))
        );
        let bad = req(vec![room("a/b", &[])], 15);
        assert_eq!(
            validate(&bad, 6, None),
            Err(BreakoutError::BadId("a/b".into()))
        );
        let mut untitled = room("1", &[]);
        untitled.title = " ".into();
        assert_eq!(
            validate(&req(vec![untitled], 15), 6, None),
            Err(BreakoutError::NoTitle("1".into()))
        );
    }

    #[test]
    fn the_parent_knows_who_is_where_until_a_room_ends() {
        let mut b = Breakouts::default();
        assert!(!b.is_active());
        b.add(room("p-1", &["ann"]));
        b.add(room("p-2", &["bob"]));
        assert_eq!(b.of("bob").map(|r| r.id), Some("p-2".into()));
        assert_eq!(b.of("dan"), None);
        assert!(b.remove("p-2"));
        assert!(!b.remove("p-2"));
        assert_eq!(b.get("p-2"), Err(BreakoutError::NotFound));
        assert_eq!(b.list().len(), 1);
    }
}
