//! The signalling connections the worker serves. A participant is named by its connection id,
//! the id of the WebSocket session it joined on; after a resume another session carries it,
//! so the worker maps each live session to its participant and a replaced session's late
//! frames go nowhere.

use std::collections::HashMap;

use enclave_sfu::proto::SignalResponse;
use enclave_sfu::ConnId;
use prost::Message as _;
use tokio::sync::mpsc;

use super::ConnOut;

/// A participant's signalling.
struct Conn {
    room_id: String,
    /// The WebSocket session now carrying it (another one after a resume).
    session: ConnId,
    /// None while the participant has no WebSocket (waiting for a resume).
    out: Option<mpsc::Sender<ConnOut>>,
}

/// Every participant's signalling, and which session carries whom.
#[derive(Default)]
pub(super) struct Conns {
    by_conn: HashMap<ConnId, Conn>,
    /// WebSocket session → the participant it carries.
    sessions: HashMap<ConnId, ConnId>,
}

impl Conns {
    /// A participant joined `room_id` on the WebSocket session `conn`, which is its id.
    pub(super) fn join(&mut self, conn: ConnId, room_id: &str, out: mpsc::Sender<ConnOut>) {
        self.by_conn.insert(
            conn,
            Conn {
                room_id: room_id.to_owned(),
                session: conn,
                out: Some(out),
            },
        );
        self.sessions.insert(conn, conn);
    }

    /// The participant that WebSocket session `session` carries, and its room.
    pub(super) fn of_session(&self, session: ConnId) -> Option<(ConnId, String)> {
        let conn = *self.sessions.get(&session)?;
        Some((conn, self.by_conn.get(&conn)?.room_id.clone()))
    }

    /// The WebSocket session `session` ended: its participant (if the session still carried
    /// one, which a resume may have moved elsewhere) has no signalling until it resumes.
    /// Returns the participant and its room.
    pub(super) fn closed(&mut self, session: ConnId) -> Option<(ConnId, String)> {
        let conn = self.sessions.remove(&session)?;
        let c = self.by_conn.get_mut(&conn)?;
        c.out = None;
        Some((conn, c.room_id.clone()))
    }

    /// No more requests are taken from WebSocket session `session` (it broke the rules); it
    /// still hears what the room tells it, its leave. Returns its participant and room.
    pub(super) fn refuse(&mut self, session: ConnId) -> Option<(ConnId, String)> {
        let conn = self.sessions.remove(&session)?;
        Some((conn, self.by_conn.get(&conn)?.room_id.clone()))
    }

    /// WebSocket session `session` carries participant `conn` from now on (a resume): the
    /// session it replaces is closed. False if the participant is unknown here.
    pub(super) fn resume(
        &mut self,
        conn: ConnId,
        session: ConnId,
        out: mpsc::Sender<ConnOut>,
    ) -> bool {
        let Some(c) = self.by_conn.get_mut(&conn) else {
            return false;
        };
        let old = std::mem::replace(&mut c.session, session);
        if let Some(old_out) = c.out.replace(out) {
            // The old WebSocket has not noticed it is gone yet; close it.
            let _ = old_out.try_send(ConnOut::Close);
        }
        self.sessions.remove(&old);
        self.sessions.insert(session, conn);
        true
    }

    /// Queues a frame for `conn` without waiting (none while it has no WebSocket). False
    /// when its queue is full: the client is too slow to keep up.
    pub(super) fn send(&self, conn: ConnId, response: &SignalResponse) -> bool {
        let Some(out) = self.by_conn.get(&conn).and_then(|c| c.out.as_ref()) else {
            return true;
        };
        !matches!(
            out.try_send(ConnOut::Frame(response.encode_to_vec())),
            Err(mpsc::error::TrySendError::Full(_))
        )
    }

    /// Drops `conn`'s WebSocket (it was too slow); the participant stays, and may resume.
    pub(super) fn cut(&mut self, conn: ConnId) {
        if let Some(c) = self.by_conn.get_mut(&conn) {
            c.out = None;
            self.sessions.remove(&c.session);
        }
    }

    /// The participant is gone: its WebSocket closes after what was queued for it.
    pub(super) fn close(&mut self, conn: ConnId) {
        if let Some(c) = self.by_conn.remove(&conn) {
            self.sessions.remove(&c.session);
            // Dropping the sender ends the session even if the queue is full.
            if let Some(out) = c.out {
                let _ = out.try_send(ConnOut::Close);
            }
        }
    }

    /// Every participant of `room_id` is gone at once (its media failed).
    pub(super) fn close_room(&mut self, room_id: &str) {
        let conns: Vec<ConnId> = self
            .by_conn
            .iter()
            .filter(|(_, c)| c.room_id == room_id)
            .map(|(k, _)| *k)
            .collect();
        for conn in conns {
            self.close(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_participant_is_reached_through_its_new_session_only() {
        let mut conns = Conns::default();
        let (old_tx, mut old_rx) = mpsc::channel(4);
        let (new_tx, mut new_rx) = mpsc::channel(4);
        conns.join(ConnId(1), "room", old_tx);
        assert!(conns.resume(ConnId(1), ConnId(2), new_tx));
        assert!(matches!(old_rx.try_recv(), Ok(ConnOut::Close)));
        assert_eq!(conns.of_session(ConnId(1)), None, "the old session is gone");
        assert_eq!(
            conns.of_session(ConnId(2)),
            Some((ConnId(1), "room".into()))
        );
        // The old WebSocket's late close does not cut the participant off.
        assert_eq!(conns.closed(ConnId(1)), None);
        let pong = SignalResponse {
            message: Some(enclave_sfu::proto::signal_response::Message::Pong(7)),
        };
        assert!(conns.send(ConnId(1), &pong));
        assert!(matches!(new_rx.try_recv(), Ok(ConnOut::Frame(f)) if f == pong.encode_to_vec()));
        conns.close(ConnId(1));
        assert!(matches!(new_rx.try_recv(), Ok(ConnOut::Close)));
        assert!(!conns.resume(ConnId(1), ConnId(3), mpsc::channel(1).0));
    }
}
