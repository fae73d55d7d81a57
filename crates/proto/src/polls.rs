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
    pub is_active: bool,
}

/// `CreatePollOptions`: an option's id (≥ 1; 0 means "no vote") and text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreatePollOptions {
    pub id: u32,
    pub text: String,
}

/// `CreatePollReq`. `poll_id` may be chosen by the client (an encrypted room's client binds it
/// into what it seals, so it must know it before the server does); otherwise the server draws one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CreatePollReq {
    pub poll_id: String,
    pub question: String,
    pub options: Vec<CreatePollOptions>,
    pub is_anonymous: bool,
    pub live_results: bool,
}

/// `PollInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PollInfo {
    pub id: String,
    pub room_id: String,
    pub question: String,
    pub options: Vec<CreatePollOptions>,
    pub is_running: bool,
    /// Unix seconds.
    pub created: i64,
    pub created_by: String,
    pub closed_by: String,
    pub is_anonymous: bool,
    pub live_results: bool,
    /// Whether the texts are sealed envelopes (an end-to-end encrypted room).
    pub is_sealed: bool,
}

/// `SubmitPollResponseReq`. Who votes is the caller's token, never the body: `user_id` and
/// `name`, if present, must be the caller's own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SubmitPollResponseReq {
    pub poll_id: String,
    pub user_id: String,
    pub name: String,
    pub selected_option: u64,
}

/// `ClosePollReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClosePollReq {
    pub poll_id: String,
}

/// `PollResponsesResultOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PollResponsesResultOptions {
    pub id: u64,
    pub text: String,
    pub vote_count: u64,
}

/// `PollResponsesResult`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PollResponsesResult {
    pub question: String,
    pub total_responses: u64,
    pub options: Vec<PollResponsesResultOptions>,
    pub is_running: bool,
}

/// `PollsStats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PollsStats {
    pub total_polls: u64,
    pub total_running: u64,
}

/// `PollResponse`: the reply of every poll route, with the fields that route fills.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PollResponse {
    pub status: bool,
    pub msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_responses: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voted: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responses: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub polls: Option<Vec<PollInfo>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<PollsStats>,
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
