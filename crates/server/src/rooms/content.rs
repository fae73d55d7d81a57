//! A session's documents: whiteboard and notepad as append-only logs (`docs/content.md`).
//!
//! Plain state owned by the room's task (no I/O, no clock: the caller passes the time in). The
//! server never parses a body: it numbers each accepted update (`seq`, from 1 per document),
//! stamps who sent it, and keeps it until a writer compacts the document into a snapshot or an
//! admin clears it. In an end-to-end encrypted room it takes sealed envelopes only
//! ([`is_sealed_text`]). Everything is bounded: a body, a snapshot, a document's log, the
//! session's bytes and documents, and each participant's rate of writes (a token bucket).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use enclave_proto::content::{ContentKind, DocId, DocInfo, LogReply, SnapshotEntry, UpdateEntry};

use super::sealed::is_sealed_text;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Bytes of one update's body as sent (a sealed one is base64: about 4/3 of the plaintext).
pub const MAX_BODY_BYTES: usize = 64 * KIB;
/// Bytes of one snapshot's body.
pub const MAX_SNAPSHOT_BYTES: usize = 4 * MIB;
/// Bytes of one document's updates since its snapshot; beyond it a writer must compact.
pub const MAX_LOG_BYTES: usize = 8 * MIB;
/// Bytes of every document of the session (snapshots and updates).
pub const MAX_SESSION_BYTES: usize = 64 * MIB;
/// Documents one session may hold (both kinds).
pub const MAX_DOCS: usize = 256;
/// Writes (updates and snapshots) a participant may make per second, steadily...
pub const RATE_PER_SEC: u32 = 50;
/// ...and at once after a pause.
pub const RATE_BURST: u32 = 200;

/// Who the server itself writes as (a converted document put on the board).
pub const SYSTEM: &str = "system";

/// Why a document request was refused; the message is the reply's `msg`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("body: longer than {MAX_BODY_BYTES} bytes")]
    BodyTooLong,
    #[error("body: a snapshot is at most {MAX_SNAPSHOT_BYTES} bytes")]
    SnapshotTooLong,
    #[error("body: must not be empty")]
    Empty,
    #[error("body: this room is end-to-end encrypted, and this body is not sealed (the client must seal content with the session's content key)")]
    NotSealed,
    #[error("this document's log holds {MAX_LOG_BYTES} bytes: compact the document first (send a snapshot)")]
    LogFull,
    #[error("this session holds {MAX_SESSION_BYTES} bytes of content, the most it may")]
    SessionFull,
    #[error("this session has {MAX_DOCS} documents, the most it may hold")]
    TooManyDocs,
    #[error("too many updates: at most {RATE_PER_SEC} per second (burst {RATE_BURST}) per participant; retry shortly")]
    RateLimited,
    #[error("upto: {upto} is beyond the document's head ({head})")]
    UptoAhead { upto: u64, head: u64 },
    #[error("upto: {upto} is older than the document's snapshot (upto {snapshot})")]
    UptoBehind { upto: u64, snapshot: u64 },
}

/// A token bucket: `RATE_BURST` tokens, refilled at `RATE_PER_SEC`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(now: Instant) -> Self {
        Self {
            tokens: f64::from(RATE_BURST),
            at: now,
        }
    }

    /// Takes a token if there is one. Time that seems to run backwards refills nothing.
    fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * f64::from(RATE_PER_SEC)).min(f64::from(RATE_BURST));
        self.at = self.at.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// An update as kept. Bodies are shared, not copied, when a log is read: the copy into a
/// reply is made outside the room's task ([`DocLog::into_reply`]).
#[derive(Debug, Clone)]
pub struct Update {
    seq: u64,
    from: Arc<str>,
    body: Arc<str>,
}

/// A snapshot as kept.
#[derive(Debug, Clone)]
pub struct Snapshot {
    upto: u64,
    from: Arc<str>,
    body: Arc<str>,
}

/// What a document holds after some `seq` ([`Documents::log`]).
#[derive(Debug, Clone)]
pub struct DocLog {
    kind: ContentKind,
    doc: DocId,
    head: u64,
    snapshot: Option<Snapshot>,
    updates: Vec<Update>,
}

impl DocLog {
    /// The reply of `/api/content/log`.
    pub fn into_reply(self) -> LogReply {
        LogReply {
            kind: self.kind,
            doc: self.doc.to_string(),
            head: self.head,
            snapshot: self.snapshot.map(|s| SnapshotEntry {
                upto: s.upto,
                from: s.from.to_string(),
                body: s.body.to_string(),
            }),
            updates: self
                .updates
                .into_iter()
                .map(|u| UpdateEntry {
                    seq: u.seq,
                    from: u.from.to_string(),
                    body: u.body.to_string(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Default)]
struct Doc {
    head: u64,
    snapshot: Option<Snapshot>,
    /// Updates after the snapshot, in `seq` order.
    updates: VecDeque<Update>,
    /// Bytes of `updates`' bodies.
    log_bytes: usize,
}

impl Doc {
    fn bytes(&self) -> usize {
        self.log_bytes + self.snapshot.as_ref().map_or(0, |s| s.body.len())
    }
}

/// The documents of one session.
#[derive(Debug, Default)]
pub struct Documents {
    docs: BTreeMap<(ContentKind, DocId), Doc>,
    /// Bytes of every document.
    bytes: usize,
    /// Each writer's rate, by identity.
    buckets: HashMap<String, Bucket>,
}

impl Documents {
    /// Bytes every document of the session holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn check_body(
        body: &str,
        max: usize,
        long: ContentError,
        sealed: bool,
    ) -> Result<(), ContentError> {
        if body.is_empty() {
            return Err(ContentError::Empty);
        }
        if body.len() > max {
            return Err(long);
        }
        if sealed && !is_sealed_text(body) {
            return Err(ContentError::NotSealed);
        }
        Ok(())
    }

    fn rate(&mut self, from: &str, now: Instant) -> Result<(), ContentError> {
        let bucket = self
            .buckets
            .entry(from.to_owned())
            .or_insert_with(|| Bucket::full(now));
        if bucket.take(now) {
            Ok(())
        } else {
            Err(ContentError::RateLimited)
        }
    }

    /// The document, made if it is new and the session has room for it.
    fn doc_mut(&mut self, kind: ContentKind, doc: &DocId) -> Result<&mut Doc, ContentError> {
        let key = (kind, doc.clone());
        if !self.docs.contains_key(&key) && self.docs.len() >= MAX_DOCS {
            return Err(ContentError::TooManyDocs);
        }
        Ok(self.docs.entry(key).or_default())
    }

    /// `from` (a participant's identity) appends `body` to a document at `now`, within their
    /// rate; `sealed` rooms take sealed envelopes only. Returns the update's `seq`.
    pub fn append(
        &mut self,
        kind: ContentKind,
        doc: &DocId,
        from: &str,
        body: String,
        sealed: bool,
        now: Instant,
    ) -> Result<u64, ContentError> {
        Self::check_body(&body, MAX_BODY_BYTES, ContentError::BodyTooLong, sealed)?;
        self.rate(from, now)?;
        self.append_unmetered(kind, doc, from, body, sealed)
    }

    /// Appends as `from` without a rate (the server's own writes, e.g. a converted document);
    /// every other limit holds.
    pub fn append_unmetered(
        &mut self,
        kind: ContentKind,
        doc: &DocId,
        from: &str,
        body: String,
        sealed: bool,
    ) -> Result<u64, ContentError> {
        Self::check_body(&body, MAX_BODY_BYTES, ContentError::BodyTooLong, sealed)?;
        if self.bytes + body.len() > MAX_SESSION_BYTES {
            return Err(ContentError::SessionFull);
        }
        let d = self.doc_mut(kind, doc)?;
        if d.log_bytes + body.len() > MAX_LOG_BYTES {
            return Err(ContentError::LogFull);
        }
        d.head += 1;
        d.log_bytes += body.len();
        let seq = d.head;
        let len = body.len();
        d.updates.push_back(Update {
            seq,
            from: from.into(),
            body: body.into(),
        });
        self.bytes += len;
        Ok(seq)
    }

    /// A writer (`from`) replaces a document's snapshot with its state up to `upto` and the
    /// updates it contains are dropped.
    #[allow(clippy::too_many_arguments)]
    pub fn snapshot(
        &mut self,
        kind: ContentKind,
        doc: &DocId,
        from: &str,
        upto: u64,
        body: String,
        sealed: bool,
        now: Instant,
    ) -> Result<(), ContentError> {
        Self::check_body(
            &body,
            MAX_SNAPSHOT_BYTES,
            ContentError::SnapshotTooLong,
            sealed,
        )?;
        let key = (kind, doc.clone());
        let (head, old_upto, old_bytes, dropped) = match self.docs.get(&key) {
            Some(d) => (
                d.head,
                d.snapshot.as_ref().map_or(0, |s| s.upto),
                d.snapshot.as_ref().map_or(0, |s| s.body.len()),
                d.updates
                    .iter()
                    .filter(|u| u.seq <= upto)
                    .map(|u| u.body.len())
                    .sum::<usize>(),
            ),
            None => (0, 0, 0, 0),
        };
        if upto > head {
            return Err(ContentError::UptoAhead { upto, head });
        }
        if upto < old_upto {
            // It would replace a newer state whose updates are gone already.
            return Err(ContentError::UptoBehind {
                upto,
                snapshot: old_upto,
            });
        }
        let after = self.bytes - old_bytes - dropped + body.len();
        if after > MAX_SESSION_BYTES {
            return Err(ContentError::SessionFull);
        }
        self.rate(from, now)?;
        let d = self.doc_mut(kind, doc)?;
        while d.updates.front().is_some_and(|u| u.seq <= upto) {
            if let Some(u) = d.updates.pop_front() {
                d.log_bytes -= u.body.len();
            }
        }
        d.snapshot = Some(Snapshot {
            upto,
            from: from.into(),
            body: body.into(),
        });
        self.bytes = after;
        Ok(())
    }

    /// What a document holds after `after`: the snapshot if `after` is older than it, and the
    /// updates with a greater `seq`. A document nobody wrote is empty (head 0).
    pub fn log(&self, kind: ContentKind, doc: &DocId, after: u64) -> DocLog {
        let mut log = DocLog {
            kind,
            doc: doc.clone(),
            head: 0,
            snapshot: None,
            updates: Vec::new(),
        };
        let Some(d) = self.docs.get(&(kind, doc.clone())) else {
            return log;
        };
        log.head = d.head;
        log.snapshot = d.snapshot.clone().filter(|s| after < s.upto);
        log.updates = d
            .updates
            .iter()
            .filter(|u| u.seq > after)
            .cloned()
            .collect();
        log
    }

    /// Drops a document, or (`None`) every document of `kind`; returns how many went. A
    /// document written again starts from `seq` 1.
    pub fn clear(&mut self, kind: ContentKind, doc: Option<&DocId>) -> u64 {
        let gone: Vec<(ContentKind, DocId)> = self
            .docs
            .keys()
            .filter(|(k, d)| *k == kind && doc.is_none_or(|x| x == d))
            .cloned()
            .collect();
        for key in &gone {
            if let Some(d) = self.docs.remove(key) {
                self.bytes -= d.bytes();
            }
        }
        gone.len() as u64
    }

    /// The documents of `kind`, by id.
    pub fn docs(&self, kind: ContentKind) -> Vec<DocInfo> {
        self.docs
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, id), d)| DocInfo {
                doc: id.to_string(),
                head: d.head,
                bytes: d.bytes() as u64,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::rooms::sealed::sealed_for_tests as sealed;

    const WB: ContentKind = ContentKind::Whiteboard;
    const NP: ContentKind = ContentKind::Notepad;

    fn doc(s: &str) -> DocId {
        DocId::parse(s).unwrap()
    }

    /// Appends as `from`, each at a new second so the rate never interferes.
    fn put(d: &mut Documents, kind: ContentKind, id: &str, from: &str, body: &str) -> u64 {
        d.append_unmetered(kind, &doc(id), from, body.into(), false)
            .unwrap()
    }

    #[test]
    fn updates_are_numbered_per_document_and_stamped_with_their_sender() {
        let mut d = Documents::default();
        let now = Instant::now();
        assert_eq!(
            d.append(WB, &doc("pages"), "ann", "a".into(), false, now),
            Ok(1)
        );
        assert_eq!(
            d.append(WB, &doc("pages"), "bob", "b".into(), false, now),
            Ok(2)
        );
        assert_eq!(
            d.append(WB, &doc("page-1"), "bob", "c".into(), false, now),
            Ok(1)
        );
        assert_eq!(
            d.append(NP, &doc("pages"), "bob", "d".into(), false, now),
            Ok(1),
            "kinds are apart"
        );
        let log = d.log(WB, &doc("pages"), 0).into_reply();
        assert_eq!(log.head, 2);
        assert_eq!(log.snapshot, None);
        let got: Vec<(u64, &str, &str)> = log
            .updates
            .iter()
            .map(|u| (u.seq, u.from.as_str(), u.body.as_str()))
            .collect();
        assert_eq!(got, [(1, "ann", "a"), (2, "bob", "b")]);
        assert_eq!(d.log(WB, &doc("pages"), 1).into_reply().updates.len(), 1);
        assert_eq!(d.log(WB, &doc("pages"), 2).into_reply().updates.len(), 0);
        let none = d.log(WB, &doc("nobody-wrote"), 0).into_reply();
        assert_eq!((none.head, none.updates.len()), (0, 0));
        assert_eq!(d.bytes(), 4);
        assert_eq!(
            d.append(WB, &doc("pages"), "ann", String::new(), false, now),
            Err(ContentError::Empty)
        );
    }

    #[test]
    fn a_snapshot_replaces_the_updates_it_contains() {
        let mut d = Documents::default();
        let now = Instant::now();
        for b in ["1", "22", "333"] {
            put(&mut d, NP, "n", "ann", b);
        }
        assert_eq!(
            d.snapshot(NP, &doc("n"), "bob", 4, "S".into(), false, now),
            Err(ContentError::UptoAhead { upto: 4, head: 3 })
        );
        d.snapshot(NP, &doc("n"), "bob", 2, "SS".into(), false, now)
            .unwrap();
        assert_eq!(d.bytes(), 2 + 3, "updates 1 and 2 are gone");
        let log = d.log(NP, &doc("n"), 0).into_reply();
        assert_eq!(
            log.snapshot,
            Some(SnapshotEntry {
                upto: 2,
                from: "bob".into(),
                body: "SS".into()
            })
        );
        assert_eq!(log.updates.iter().map(|u| u.seq).collect::<Vec<_>>(), [3]);
        let log = d.log(NP, &doc("n"), 2).into_reply();
        assert_eq!(
            log.snapshot, None,
            "a client past the snapshot gets updates only"
        );
        assert_eq!(log.updates.len(), 1);
        assert_eq!(
            d.snapshot(NP, &doc("n"), "bob", 1, "old".into(), false, now),
            Err(ContentError::UptoBehind {
                upto: 1,
                snapshot: 2
            })
        );
        assert_eq!(
            d.snapshot(
                NP,
                &doc("n"),
                "bob",
                3,
                "x".repeat(MAX_SNAPSHOT_BYTES + 1),
                false,
                now
            ),
            Err(ContentError::SnapshotTooLong)
        );
        assert_eq!(
            put(&mut d, NP, "n", "ann", "4"),
            4,
            "seq goes on after a snapshot"
        );
    }

    #[test]
    fn clearing_drops_one_document_or_all_of_a_kind() {
        let mut d = Documents::default();
        put(&mut d, WB, "a", "ann", "x");
        put(&mut d, WB, "b", "ann", "x");
        put(&mut d, NP, "a", "ann", "x");
        assert_eq!(d.clear(WB, Some(&doc("a"))), 1);
        assert_eq!(d.docs(WB).len(), 1);
        assert_eq!(d.clear(WB, None), 1);
        assert!(d.docs(WB).is_empty());
        assert_eq!(d.docs(NP).len(), 1, "the other kind stays");
        assert_eq!(d.bytes(), 1);
        assert_eq!(
            put(&mut d, WB, "a", "ann", "y"),
            1,
            "a cleared document starts over"
        );
        let info = &d.docs(WB)[0];
        assert_eq!((info.doc.as_str(), info.head, info.bytes), ("a", 1, 1));
    }

    #[test]
    fn an_encrypted_room_takes_sealed_bodies_only() {
        let mut d = Documents::default();
        let now = Instant::now();
        assert_eq!(
            d.append(WB, &doc("p"), "ann", "{\"elements\":[]}".into(), true, now),
            Err(ContentError::NotSealed)
        );
        assert_eq!(d.append(WB, &doc("p"), "ann", sealed(10), true, now), Ok(1));
        assert_eq!(
            d.snapshot(WB, &doc("p"), "ann", 1, "plain".into(), true, now),
            Err(ContentError::NotSealed)
        );
        d.snapshot(WB, &doc("p"), "ann", 1, sealed(20), true, now)
            .unwrap();
    }

    #[test]
    fn a_body_and_a_document_log_are_bounded() {
        let mut d = Documents::default();
        let now = Instant::now();
        assert_eq!(
            d.append(
                WB,
                &doc("p"),
                "ann",
                "x".repeat(MAX_BODY_BYTES + 1),
                false,
                now
            ),
            Err(ContentError::BodyTooLong)
        );
        let full = "x".repeat(MAX_BODY_BYTES);
        for _ in 0..MAX_LOG_BYTES / MAX_BODY_BYTES {
            d.append_unmetered(WB, &doc("p"), "ann", full.clone(), false)
                .unwrap();
        }
        let e = d
            .append_unmetered(WB, &doc("p"), "ann", "x".into(), false)
            .unwrap_err();
        assert_eq!(e, ContentError::LogFull);
        assert!(e.to_string().contains("compact the document first"));
        // Another document still takes updates; a snapshot makes room again.
        put(&mut d, WB, "q", "ann", "x");
        let head = d.log(WB, &doc("p"), 0).into_reply().head;
        d.snapshot(WB, &doc("p"), "ann", head, "S".into(), false, now)
            .unwrap();
        assert_eq!(put(&mut d, WB, "p", "ann", "x"), head + 1);
    }

    #[test]
    fn a_session_holds_bounded_bytes_and_documents() {
        let mut d = Documents::default();
        let big = "x".repeat(MAX_SNAPSHOT_BYTES);
        let now = Instant::now();
        for i in 0..MAX_SESSION_BYTES / MAX_SNAPSHOT_BYTES {
            d.snapshot(
                WB,
                &doc(&format!("d{i}")),
                "ann",
                0,
                big.clone(),
                false,
                now,
            )
            .unwrap();
        }
        assert_eq!(d.bytes(), MAX_SESSION_BYTES);
        assert_eq!(
            d.append_unmetered(WB, &doc("d0"), "ann", "x".into(), false),
            Err(ContentError::SessionFull)
        );
        assert_eq!(
            d.snapshot(NP, &doc("n"), "ann", 0, "x".into(), false, now),
            Err(ContentError::SessionFull)
        );
        // Replacing a snapshot by a smaller one frees what it held.
        d.snapshot(WB, &doc("d0"), "ann", 0, "small".into(), false, now)
            .unwrap();
        put(&mut d, NP, "n", "ann", "x");

        let mut d = Documents::default();
        for i in 0..MAX_DOCS {
            put(&mut d, NP, &format!("n{i}"), "ann", "x");
        }
        assert_eq!(
            d.append_unmetered(WB, &doc("one-more"), "ann", "x".into(), false),
            Err(ContentError::TooManyDocs)
        );
        assert_eq!(
            put(&mut d, NP, "n0", "ann", "y"),
            2,
            "existing documents still grow"
        );
    }

    #[test]
    fn each_writer_has_a_rate_of_fifty_a_second_with_a_burst_of_two_hundred() {
        let mut d = Documents::default();
        let t0 = Instant::now();
        let mut append =
            |from: &str, at: Instant| d.append(NP, &doc("n"), from, "x".into(), false, at);
        for _ in 0..RATE_BURST {
            append("ann", t0).unwrap();
        }
        assert_eq!(append("ann", t0), Err(ContentError::RateLimited));
        assert!(
            append("bob", t0).is_ok(),
            "each participant has their own bucket"
        );
        // 100 ms refill 5 tokens.
        let t1 = t0 + Duration::from_millis(100);
        for _ in 0..5 {
            append("ann", t1).unwrap();
        }
        assert_eq!(append("ann", t1), Err(ContentError::RateLimited));
        // A long pause refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..RATE_BURST {
            append("ann", t2).unwrap();
        }
        assert_eq!(append("ann", t2), Err(ContentError::RateLimited));
        // A clock that seems to go back refills nothing and breaks nothing.
        assert_eq!(append("ann", t0), Err(ContentError::RateLimited));
    }
}
