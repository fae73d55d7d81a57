//! A session's polls: created by admins, one vote per participant, results at close (or live).
//!
//! Plain state owned by the room's task (no I/O, no clock: the caller passes the time in). The
//! server never needs a poll's words: it counts option ids. In an end-to-end encrypted room it
//! cannot read them either: it accepts a poll only if the question and every option text are
//! sealed envelopes ([`is_sealed_text`]), so a client that forgot to seal (or a tampered one) is
//! refused rather than trusted.

use std::collections::{BTreeMap, BTreeSet};

use enclave_proto::ids::UserId;
use enclave_proto::polls::{
    CreatePollOptions, CreatePollReq, PollInfo, PollResponsesResult, PollResponsesResultOptions,
    PollsStats,
};

pub use super::sealed::is_sealed_text;

/// Polls one session may hold (running and closed).
pub const MAX_POLLS: usize = 100;
/// Options of one poll.
pub const MIN_OPTIONS: usize = 2;
pub const MAX_OPTIONS: usize = 20;
/// Bytes of a question and of an option text as sent (a sealed text is base64, about 4/3 of
/// the plaintext plus 40 bytes).
pub const MAX_QUESTION_BYTES: usize = 8 * 1024;
pub const MAX_OPTION_BYTES: usize = 2 * 1024;

/// Why a poll request was refused; the message is the reply's `msg`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PollError {
    #[error("poll not found")]
    NotFound,
    #[error("a poll with this poll_id exists already")]
    Exists,
    #[error("poll_id: must be 1 to 64 letters, digits, '-' or '_'")]
    BadId,
    #[error("this session has {MAX_POLLS} polls, the most it may hold")]
    TooMany,
    #[error("question: must not be empty")]
    NoQuestion,
    #[error("question: longer than {MAX_QUESTION_BYTES} bytes")]
    QuestionTooLong,
    #[error("options: a poll has {MIN_OPTIONS} to {MAX_OPTIONS} options")]
    OptionCount,
    #[error("options: id {0} is 0 or used twice (ids are distinct and at least 1)")]
    OptionId(u32),
    #[error("options: option {0} has no text")]
    OptionEmpty(u32),
    #[error("options: the text of option {0} is longer than {MAX_OPTION_BYTES} bytes")]
    OptionTooLong(u32),
    #[error("{0}: this room is end-to-end encrypted, and this text is not sealed (the client must seal poll texts with the room's content key)")]
    NotSealed(String),
    #[error("the poll is closed")]
    Closed,
    #[error("user already voted")]
    AlreadyVoted,
    #[error("selected_option: {0} is not an option of this poll")]
    NoSuchOption(u64),
    #[error("the results are shown when the poll closes")]
    ResultsHidden,
}

fn valid_poll_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One vote: who and when, and (a named poll only) what they chose and their name then.
#[derive(Debug, Clone)]
struct Vote {
    user: UserId,
    /// Unix ms.
    at: i64,
    choice: Option<(u32, String)>,
}

/// One poll and its votes.
#[derive(Debug, Clone)]
pub struct Poll {
    pub info: PollInfo,
    /// Unix ms of the close.
    pub closed_at: Option<i64>,
    /// Who voted: one vote each.
    pub voters: BTreeSet<UserId>,
    /// In voting order. An anonymous poll keeps no choice.
    votes: Vec<Vote>,
    counts: BTreeMap<u32, u64>,
}

impl Poll {
    fn total(&self) -> u64 {
        self.voters.len() as u64
    }

    /// Votes for option `id`.
    pub fn count(&self, id: u32) -> u64 {
        self.counts.get(&id).copied().unwrap_or(0)
    }

    /// Each vote: who, when (Unix ms), and the option where the poll is named.
    pub fn votes(&self) -> impl Iterator<Item = (&UserId, i64, Option<u32>)> {
        self.votes
            .iter()
            .map(|v| (&v.user, v.at, v.choice.as_ref().map(|c| c.0)))
    }
}

/// What a vote changed, for the notification everyone gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Voted {
    pub total_responses: u64,
    /// Whether everyone may see the counts now (a live poll).
    pub live: bool,
}

/// The polls of one session.
#[derive(Debug, Default)]
pub struct Polls {
    polls: Vec<Poll>,
    /// Whether an admin opened the polls panel for everyone (or created a poll).
    active: bool,
}

impl Polls {
    /// Whether the polls panel is open for everyone.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// An admin opens or closes the polls panel for everyone.
    pub fn set_active(&mut self, active: bool) {
        self.active = active;
    }

    /// Every poll, oldest first.
    pub fn all(&self) -> impl Iterator<Item = &Poll> {
        self.polls.iter()
    }

    fn get(&self, id: &str) -> Result<&Poll, PollError> {
        self.polls
            .iter()
            .find(|p| p.info.id == id)
            .ok_or(PollError::NotFound)
    }

    fn get_mut(&mut self, id: &str) -> Result<&mut Poll, PollError> {
        self.polls
            .iter_mut()
            .find(|p| p.info.id == id)
            .ok_or(PollError::NotFound)
    }

    /// An admin (`by`) creates a poll at `now` (Unix seconds); `sealed` rooms take sealed texts
    /// only. `draw_id` names the poll when the request does not. Returns the poll's id.
    pub fn create(
        &mut self,
        room_id: &str,
        req: CreatePollReq,
        by: &UserId,
        now: i64,
        sealed: bool,
        draw_id: impl FnOnce() -> String,
    ) -> Result<String, PollError> {
        if self.polls.len() >= MAX_POLLS {
            return Err(PollError::TooMany);
        }
        let id = if req.poll_id.is_empty() {
            draw_id()
        } else {
            req.poll_id
        };
        if !valid_poll_id(&id) {
            return Err(PollError::BadId);
        }
        if self.get(&id).is_ok() {
            return Err(PollError::Exists);
        }
        if req.question.trim().is_empty() {
            return Err(PollError::NoQuestion);
        }
        if req.question.len() > MAX_QUESTION_BYTES {
            return Err(PollError::QuestionTooLong);
        }
        if sealed && !is_sealed_text(&req.question) {
            return Err(PollError::NotSealed("question".into()));
        }
        if !(MIN_OPTIONS..=MAX_OPTIONS).contains(&req.options.len()) {
            return Err(PollError::OptionCount);
        }
        let mut ids = BTreeSet::new();
        for o in &req.options {
            if o.id == 0 || !ids.insert(o.id) {
                return Err(PollError::OptionId(o.id));
            }
            if o.text.trim().is_empty() {
                return Err(PollError::OptionEmpty(o.id));
            }
            if o.text.len() > MAX_OPTION_BYTES {
                return Err(PollError::OptionTooLong(o.id));
            }
            if sealed && !is_sealed_text(&o.text) {
                return Err(PollError::NotSealed(format!("options[id={}].text", o.id)));
            }
        }
        self.active = true;
        self.polls.push(Poll {
            info: PollInfo {
                id: id.clone(),
                room_id: room_id.to_owned(),
                question: req.question,
                options: req.options,
                is_running: true,
                created: now,
                created_by: by.to_string(),
                closed_by: String::new(),
                is_anonymous: req.is_anonymous,
                live_results: req.live_results,
                is_sealed: sealed,
            },
            closed_at: None,
            voters: BTreeSet::new(),
            votes: Vec::new(),
            counts: BTreeMap::new(),
        });
        Ok(id)
    }

    /// `user` (shown as `name`) chooses `option` in poll `id`, once, at `at` (Unix ms).
    pub fn vote(
        &mut self,
        id: &str,
        user: &UserId,
        name: &str,
        option: u64,
        at: i64,
    ) -> Result<Voted, PollError> {
        let poll = self.get_mut(id)?;
        if !poll.info.is_running {
            return Err(PollError::Closed);
        }
        let Some(opt) = u32::try_from(option)
            .ok()
            .filter(|o| poll.info.options.iter().any(|x| x.id == *o))
        else {
            return Err(PollError::NoSuchOption(option));
        };
        if !poll.voters.insert(user.clone()) {
            return Err(PollError::AlreadyVoted);
        }
        let choice = (!poll.info.is_anonymous).then(|| (opt, name.to_owned()));
        poll.votes.push(Vote {
            user: user.clone(),
            at,
            choice,
        });
        *poll.counts.entry(opt).or_default() += 1;
        Ok(Voted {
            total_responses: poll.total(),
            live: poll.info.live_results,
        })
    }

    /// An admin (`by`) closes poll `id` at `at` (Unix ms).
    pub fn close(&mut self, id: &str, by: &UserId, at: i64) -> Result<(), PollError> {
        let poll = self.get_mut(id)?;
        if !poll.info.is_running {
            return Err(PollError::Closed);
        }
        poll.info.is_running = false;
        poll.info.closed_by = by.to_string();
        poll.closed_at = Some(at);
        Ok(())
    }

    /// Every poll of the session, oldest first.
    pub fn list(&self) -> Vec<PollInfo> {
        self.polls.iter().map(|p| p.info.clone()).collect()
    }

    pub fn stats(&self) -> PollsStats {
        PollsStats {
            total_polls: self.polls.len() as u64,
            total_running: self.polls.iter().filter(|p| p.info.is_running).count() as u64,
        }
    }

    pub fn total_responses(&self, id: &str) -> Result<u64, PollError> {
        Ok(self.get(id)?.total())
    }

    /// The option `user` chose (0: none) and whether they voted at all. An anonymous poll
    /// keeps no choices, so it answers 0 with `true` for someone who voted.
    pub fn selected(&self, id: &str, user: &UserId) -> Result<(u64, bool), PollError> {
        let poll = self.get(id)?;
        let chosen = poll
            .votes
            .iter()
            .find(|v| &v.user == user)
            .and_then(|v| v.choice.as_ref())
            .map_or(0, |(o, _)| u64::from(*o));
        Ok((chosen, poll.voters.contains(user)))
    }

    /// Admins: Plug-N-Meet's response details — `total_resp`, `<id>_count` per option and
    /// `all_respondents` (a JSON list of `user_id:option_id:name`; empty for an anonymous poll).
    pub fn details(&self, id: &str) -> Result<BTreeMap<String, String>, PollError> {
        let poll = self.get(id)?;
        let mut out = BTreeMap::new();
        out.insert("total_resp".to_owned(), poll.total().to_string());
        for (opt, n) in &poll.counts {
            out.insert(format!("{opt}_count"), n.to_string());
        }
        let all: Vec<String> = poll
            .votes
            .iter()
            .filter_map(|v| {
                let (o, name) = v.choice.as_ref()?;
                Some(format!("{}:{o}:{name}", v.user))
            })
            .collect();
        out.insert(
            "all_respondents".to_owned(),
            serde_json::Value::from(all).to_string(),
        );
        Ok(out)
    }

    /// The counts per option: for everyone once the poll is closed or if it is live, for
    /// admins at any time.
    pub fn result(&self, id: &str, admin: bool) -> Result<PollResponsesResult, PollError> {
        let poll = self.get(id)?;
        if poll.info.is_running && !poll.info.live_results && !admin {
            return Err(PollError::ResultsHidden);
        }
        Ok(PollResponsesResult {
            question: poll.info.question.clone(),
            total_responses: poll.total(),
            options: poll
                .info
                .options
                .iter()
                .map(
                    |CreatePollOptions { id, text }| PollResponsesResultOptions {
                        id: u64::from(*id),
                        text: text.clone(),
                        vote_count: poll.count(*id),
                    },
                )
                .collect(),
            is_running: poll.info.is_running,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rooms::sealed::ENVELOPE_V1;
    use base64::Engine as _;

    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    fn req(question: &str, options: &[&str]) -> CreatePollReq {
        CreatePollReq {
            question: question.into(),
            options: options
                .iter()
                .enumerate()
                .map(|(i, t)| CreatePollOptions {
                    id: i as u32 + 1,
                    text: (*t).into(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn sealed(n: usize) -> String {
        let mut env = vec![ENVELOPE_V1];
        env.extend(std::iter::repeat_n(0xA5, 12 + 16 + n));
        base64::engine::general_purpose::STANDARD.encode(env)
    }

    fn create(polls: &mut Polls, r: CreatePollReq) -> Result<String, PollError> {
        polls.create("room", r, &user("host"), 100, false, || "p1".into())
    }

    #[test]
    fn everyone_votes_once_and_the_counts_add_up() {
        let mut polls = Polls::default();
        assert!(!polls.is_active());
        let id = create(&mut polls, req("Lunch?", &["Pizza", "Soup", "Salad"])).unwrap();
        assert_eq!(id, "p1");
        assert!(polls.is_active(), "a new poll opens the panel for everyone");
        for (u, o) in [("ann", 1), ("bob", 2), ("cat", 1)] {
            polls.vote(&id, &user(u), u, o, 0).unwrap();
        }
        assert_eq!(
            polls.vote(&id, &user("bob"), "bob", 1, 0),
            Err(PollError::AlreadyVoted)
        );
        assert_eq!(
            polls.vote(&id, &user("dan"), "dan", 0, 0),
            Err(PollError::NoSuchOption(0))
        );
        assert_eq!(
            polls.vote(&id, &user("dan"), "dan", 4, 0),
            Err(PollError::NoSuchOption(4))
        );
        assert_eq!(polls.total_responses(&id), Ok(3));
        assert_eq!(polls.selected(&id, &user("bob")), Ok((2, true)));
        assert_eq!(polls.selected(&id, &user("dan")), Ok((0, false)));
        let d = polls.details(&id).unwrap();
        assert_eq!(d["total_resp"], "3");
        assert_eq!(d["1_count"], "2");
        assert_eq!(
            d["all_respondents"],
            r#"["ann:1:ann","bob:2:bob","cat:1:cat"]"#
        );
        let counts: Vec<u64> = polls
            .result(&id, true)
            .unwrap()
            .options
            .iter()
            .map(|o| o.vote_count)
            .collect();
        assert_eq!(counts, vec![2, 1, 0]);
    }

    #[test]
    fn results_wait_for_the_close_unless_live_and_a_closed_poll_takes_no_votes() {
        let mut polls = Polls::default();
        let id = create(&mut polls, req("Q", &["a", "b"])).unwrap();
        polls.vote(&id, &user("ann"), "Ann", 2, 0).unwrap();
        assert_eq!(polls.result(&id, false), Err(PollError::ResultsHidden));
        assert!(
            polls.result(&id, true).unwrap().is_running,
            "admins see the counts at any time"
        );
        polls.close(&id, &user("host"), 0).unwrap();
        assert_eq!(polls.close(&id, &user("host"), 0), Err(PollError::Closed));
        assert_eq!(
            polls.vote(&id, &user("bob"), "Bob", 1, 0),
            Err(PollError::Closed)
        );
        let r = polls.result(&id, false).unwrap();
        assert_eq!((r.total_responses, r.is_running), (1, false));
        assert_eq!(polls.list()[0].closed_by, "host");
        assert_eq!(
            polls.stats(),
            PollsStats {
                total_polls: 1,
                total_running: 0
            }
        );

        let mut live = req("Live?", &["y", "n"]);
        live.live_results = true;
        live.poll_id = "p2".into();
        let id = create(&mut polls, live).unwrap();
        assert!(polls.vote(&id, &user("ann"), "Ann", 1, 0).unwrap().live);
        assert_eq!(polls.result(&id, false).unwrap().options[0].vote_count, 1);
    }

    #[test]
    fn an_anonymous_poll_keeps_counts_and_voters_but_never_who_chose_what() {
        let mut polls = Polls::default();
        let mut r = req("Secret?", &["yes", "no"]);
        r.is_anonymous = true;
        let id = create(&mut polls, r).unwrap();
        polls.vote(&id, &user("ann"), "Ann", 1, 0).unwrap();
        assert_eq!(
            polls.vote(&id, &user("ann"), "Ann", 2, 0),
            Err(PollError::AlreadyVoted)
        );
        assert_eq!(polls.selected(&id, &user("ann")), Ok((0, true)));
        let d = polls.details(&id).unwrap();
        assert_eq!(d["all_respondents"], "[]");
        assert_eq!(d["1_count"], "1");
        assert!(!format!("{polls:?}").contains("Ann"), "no name kept");
    }

    #[test]
    fn malformed_polls_are_refused_with_the_field_named() {
        let mut polls = Polls::default();
        assert_eq!(
            create(&mut polls, req(" ", &["a", "b"])),
            Err(PollError::NoQuestion)
        );
        assert_eq!(
            create(&mut polls, req("Q", &["a"])),
            Err(PollError::OptionCount)
        );
        assert_eq!(
            create(&mut polls, req("Q", &["a", ""])),
            Err(PollError::OptionEmpty(2))
        );
        let mut dup = req("Q", &["a", "b"]);
        dup.options[1].id = 1;
        assert_eq!(create(&mut polls, dup), Err(PollError::OptionId(1)));
        let mut zero = req("Q", &["a", "b"]);
        zero.options[0].id = 0;
        assert_eq!(create(&mut polls, zero), Err(PollError::OptionId(0)));
        let mut bad = req("Q", &["a", "b"]);
        bad.poll_id = "../x".into();
        assert_eq!(create(&mut polls, bad), Err(PollError::BadId));
        assert_eq!(
            create(
                &mut polls,
                req(&"x".repeat(MAX_QUESTION_BYTES + 1), &["a", "b"])
            ),
            Err(PollError::QuestionTooLong)
        );
        create(&mut polls, req("Q", &["a", "b"])).unwrap();
        assert_eq!(
            create(&mut polls, req("Q", &["a", "b"])),
            Err(PollError::Exists)
        );
        assert_eq!(
            polls.vote("nope", &user("ann"), "Ann", 1, 0),
            Err(PollError::NotFound)
        );
    }

    #[test]
    fn an_encrypted_room_takes_sealed_texts_only() {
        let mut polls = Polls::default();
        let host = user("host");
        let plain = polls.create(
            "r",
            req("Lunch?", &["Pizza", "Soup"]),
            &host,
            1,
            true,
            || "a".into(),
        );
        assert_eq!(plain, Err(PollError::NotSealed("question".into())));
        let mut half = req(&sealed(5), &["Pizza", "Soup"]);
        half.options[1].text = sealed(4);
        assert_eq!(
            polls.create("r", half, &host, 1, true, || "a".into()),
            Err(PollError::NotSealed("options[id=1].text".into()))
        );
        let ok = req(&sealed(5), &[&sealed(3), &sealed(3)]);
        assert_eq!(
            polls.create("r", ok, &host, 1, true, || "a".into()),
            Ok("a".into())
        );
        assert!(polls.list()[0].is_sealed);
        // Not envelopes: words that happen to be base64, a truncated envelope, another version.
        assert!(!is_sealed_text("Lunch"));
        assert!(!is_sealed_text("AAAA"));
        assert!(!is_sealed_text(
            &base64::engine::general_purpose::STANDARD.encode([1u8; 29])
        ));
        assert!(!is_sealed_text(
            &base64::engine::general_purpose::STANDARD.encode([2u8; 40])
        ));
        assert!(is_sealed_text(&sealed(1)));
    }

    #[test]
    fn a_session_holds_a_bounded_number_of_polls() {
        let mut polls = Polls::default();
        for i in 0..MAX_POLLS {
            let mut r = req("Q", &["a", "b"]);
            r.poll_id = format!("p{i}");
            create(&mut polls, r).unwrap();
        }
        assert_eq!(
            create(&mut polls, req("Q", &["a", "b"])),
            Err(PollError::TooMany)
        );
    }
}
