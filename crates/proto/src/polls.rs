//! Polls (`/api/polls/*`): Plug-N-Meet's `plugnmeet_polls.proto` messages, as JSON.
//!
//! Field names follow the proto. Two additions of ours, both optional so Plug-N-Meet's bodies
//! still decode: `is_anonymous` (nobody, admins included, can see who chose what) and
//! `live_results` (everyone sees the counts while the poll runs; otherwise only at close, as in
//! Plug-N-Meet). In an end-to-end encrypted room the question and every option text are sealed
//! envelopes (base64) that the server stores and relays without being able to read; the server
//! counts option ids only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `ActivatePollsReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ActivatePollsReq {
    /// Open (true) or close the polls panel for everyone.
    pub is_active: bool,
}

/// `CreatePollOptions`: an option's id (≥ 1; 0 means "no vote") and text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreatePollOptions {
    /// The option's id, from 1.
    pub id: u32,
    /// The option's text (a sealed envelope in an encrypted room).
    pub text: String,
}

/// `CreatePollReq`. `poll_id` may be chosen by the client (an encrypted room's client binds it
/// into what it seals, so it must know it before the server does); otherwise the server draws one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CreatePollReq {
    /// The client's own id for the poll; empty: the server draws one.
    pub poll_id: String,
    /// The question (a sealed envelope in an encrypted room).
    pub question: String,
    /// The choices.
    pub options: Vec<CreatePollOptions>,
    /// Ours: nobody, admins included, can see who chose what.
    pub is_anonymous: bool,
    /// Ours: everyone sees the counts while the poll runs.
    pub live_results: bool,
}

/// `PollInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PollInfo {
    /// The poll's id.
    pub id: String,
    /// The room it belongs to.
    pub room_id: String,
    /// The question.
    pub question: String,
    /// The choices.
    pub options: Vec<CreatePollOptions>,
    /// Whether votes are still taken.
    pub is_running: bool,
    /// Unix seconds.
    pub created: i64,
    /// The user id of its author.
    pub created_by: String,
    /// The user id of whoever closed it; empty while it runs.
    pub closed_by: String,
    /// Ours: see [`CreatePollReq::is_anonymous`].
    pub is_anonymous: bool,
    /// Ours: see [`CreatePollReq::live_results`].
    pub live_results: bool,
    /// Whether the texts are sealed envelopes (an end-to-end encrypted room).
    pub is_sealed: bool,
}

/// `SubmitPollResponseReq`. Who votes is the caller's token, never the body: `user_id` and
/// `name`, if present, must be the caller's own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SubmitPollResponseReq {
    /// The poll.
    pub poll_id: String,
    /// Ignored but for a check: the voter is the token's user.
    pub user_id: String,
    /// Ignored: the voter's name comes from the token.
    pub name: String,
    /// The chosen option's id.
    pub selected_option: u64,
}

/// `ClosePollReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClosePollReq {
    /// The poll to close.
    pub poll_id: String,
}

/// `PollResponsesResultOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PollResponsesResultOptions {
    /// The option's id.
    pub id: u64,
    /// The option's text.
    pub text: String,
    /// Votes it got.
    pub vote_count: u64,
}

/// `PollResponsesResult`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PollResponsesResult {
    /// The question.
    pub question: String,
    /// Votes in all.
    pub total_responses: u64,
    /// Each option with its count.
    pub options: Vec<PollResponsesResultOptions>,
    /// Whether votes are still taken.
    pub is_running: bool,
}

/// `PollsStats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PollsStats {
    /// Polls created in the room.
    pub total_polls: u64,
    /// Of those, still taking votes.
    pub total_running: u64,
}

/// `PollResponse`: the reply of every poll route, with the fields that route fills.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PollResponse {
    /// Whether the call did what was asked.
    pub status: bool,
    /// Human-readable outcome.
    pub msg: String,
    /// The poll the reply is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_id: Option<String>,
    /// `countTotalResponses`: votes so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_responses: Option<u64>,
    /// `userSelectedOption`: the option the user chose; 0: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voted: Option<u64>,
    /// `pollResponsesDetails`: counts and who chose what, in Plug-N-Meet's flat map (admins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responses: Option<BTreeMap<String, String>>,
    /// `listPolls`: the room's polls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub polls: Option<Vec<PollInfo>>,
    /// `pollsStats`: how many polls, and how many run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<PollsStats>,
    /// `pollResponsesResult`: the counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_responses_result: Option<PollResponsesResult>,
    /// Ours: whether an admin has the polls panel open for everyone (`/api/polls/activate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    /// Ours (`userSelectedOption`): whether the user voted; an anonymous poll keeps no choice,
    /// only this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_voted: Option<bool>,
}

impl PollResponse {
    /// A successful reply, to fill in.
    pub fn success() -> Self {
        Self {
            status: true,
            msg: "success".into(),
            ..Self::default()
        }
    }
}
