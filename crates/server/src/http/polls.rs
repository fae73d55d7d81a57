//! Polls in the browser API (`/api/polls/*`), on Plug-N-Meet's paths and field names, as JSON.
//!
//! Admins create and close polls and open the polls panel for everyone; every participant votes
//! once, as the identity of their token (never a `user_id` in the body); results go to everyone
//! at close (or live, if the poll says so), to admins at any time. Changes are announced on the
//! server's data topic (`POLL_CREATED`, `POLL_RESPONSE` with the count only, `POLL_CLOSED`,
//! `POLLS_ACTIVE`) and the clients fetch what they may see. The room's task owns the polls
//! ([`crate::rooms::polls`]); in an end-to-end encrypted room it stores sealed texts only.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use rand::distributions::{Alphanumeric, DistString};

use enclave_proto::browser::ServerMessage;
use enclave_proto::json;
use enclave_proto::polls::{
    ActivatePollsReq, ClosePollReq, CreatePollReq, PollResponse, SubmitPollResponseReq,
};

use super::caller::{forbidden, Admin, Caller, NoStore};
use crate::app::App;
use crate::clock::unix_now;
use crate::error::ApiError;
use crate::rooms::polls::{PollError, Polls};

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/polls/activate", post(activate))
        .route("/api/polls/create", post(create))
        .route("/api/polls/listPolls", get(list))
        .route("/api/polls/pollsStats", get(stats))
        .route("/api/polls/countTotalResponses/{poll_id}", get(count))
        .route(
            "/api/polls/userSelectedOption/{poll_id}/{user_id}",
            get(selected),
        )
        .route("/api/polls/pollResponsesDetails/{poll_id}", get(details))
        .route("/api/polls/pollResponsesResult/{poll_id}", get(result))
        .route("/api/polls/submitResponse", post(submit))
        .route("/api/polls/closePoll", post(close))
}

type Reply = Result<NoStore<PollResponse>, ApiError>;

fn send(r: PollResponse) -> Reply {
    Ok(NoStore(r))
}

/// A refused poll request: `status:false` with the reason, as Plug-N-Meet answers.
fn refused(e: PollError) -> ApiError {
    ApiError::invalid(e)
}

/// Polls are off when the room was created with `polls_features.is_allow` false.
fn allowed(c: &Caller) -> Result<(), ApiError> {
    let on = c
        .room
        .info
        .features()
        .and_then(|f| f.polls_features.as_ref())
        .is_none_or(|p| p.is_allow);
    if on {
        Ok(())
    } else {
        Err(forbidden("polls are turned off in this room"))
    }
}

/// Runs `f` on the room's polls.
async fn with<T: Send + 'static>(
    c: &Caller,
    f: impl FnOnce(&mut Polls) -> T + Send + 'static,
) -> Result<T, ApiError> {
    Ok(c.room.polls(f).await?)
}

/// Tells everyone in the room, on the server's topic.
fn announce(app: &App, c: &Caller, msg: ServerMessage) {
    if let Some(media) = &app.media {
        media.send_system(c.room.info.room_id.as_str(), &msg, Vec::new());
    }
}

async fn activate(State(app): State<Arc<App>>, Admin(c): Admin, body: Bytes) -> Reply {
    allowed(&c)?;
    let req: ActivatePollsReq = json::decode(&body).map_err(ApiError::invalid)?;
    with(&c, move |p| p.set_active(req.is_active)).await?;
    announce(
        &app,
        &c,
        ServerMessage::PollsActive {
            is_active: req.is_active,
        },
    );
    send(PollResponse {
        is_active: Some(req.is_active),
        ..PollResponse::success()
    })
}

async fn create(State(app): State<Arc<App>>, Admin(c): Admin, body: Bytes) -> Reply {
    allowed(&c)?;
    let req: CreatePollReq = json::decode(&body).map_err(ApiError::invalid)?;
    let sealed = c.room.info.is_e2ee();
    if sealed && req.poll_id.is_empty() {
        // The client binds the poll's id into what it seals, so it must choose it.
        return Err(ApiError::invalid(
            "poll_id: required in an end-to-end encrypted room (the client seals the poll's texts to it)",
        ));
    }
    let room_id = c.room.info.room_id.to_string();
    let by = c.user.clone();
    let now = unix_now();
    let id = with(&c, move |p| {
        p.create(&room_id, req, &by, now, sealed, || {
            Alphanumeric.sample_string(&mut rand::rngs::OsRng, 20)
        })
    })
    .await?
    .map_err(refused)?;
    tracing::info!(room_id = %c.room.info.room_id, by = %c.user, poll_id = id, sealed, "poll created");
    announce(
        &app,
        &c,
        ServerMessage::PollCreated {
            poll_id: id.clone(),
        },
    );
    send(PollResponse {
        poll_id: Some(id),
        ..PollResponse::success()
    })
}

async fn list(c: Caller) -> Reply {
    let (polls, active) = with(&c, |p| (p.list(), p.is_active())).await?;
    send(PollResponse {
        polls: Some(polls),
        is_active: Some(active),
        ..PollResponse::success()
    })
}

async fn stats(c: Caller) -> Reply {
    let stats = with(&c, |p| p.stats()).await?;
    send(PollResponse {
        stats: Some(stats),
        ..PollResponse::success()
    })
}

async fn count(c: Caller, Path(poll_id): Path<String>) -> Reply {
    let id = poll_id.clone();
    let total = with(&c, move |p| p.total_responses(&id))
        .await?
        .map_err(refused)?;
    send(PollResponse {
        poll_id: Some(poll_id),
        total_responses: Some(total),
        ..PollResponse::success()
    })
}

async fn selected(c: Caller, Path((poll_id, user_id)): Path<(String, String)>) -> Reply {
    if user_id != c.user.as_str() && !c.claims.is_admin {
        return Err(forbidden("only admin can view other user's selection"));
    }
    let user = enclave_proto::ids::UserId::parse(&user_id)
        .map_err(|e| ApiError::invalid(format!("user_id: {e}")))?;
    let id = poll_id.clone();
    let (voted, has_voted) = with(&c, move |p| p.selected(&id, &user))
        .await?
        .map_err(refused)?;
    send(PollResponse {
        poll_id: Some(poll_id),
        voted: Some(voted),
        has_voted: Some(has_voted),
        ..PollResponse::success()
    })
}

async fn details(Admin(c): Admin, Path(poll_id): Path<String>) -> Reply {
    let id = poll_id.clone();
    let responses = with(&c, move |p| p.details(&id)).await?.map_err(refused)?;
    send(PollResponse {
        poll_id: Some(poll_id),
        responses: Some(responses),
        ..PollResponse::success()
    })
}

async fn result(c: Caller, Path(poll_id): Path<String>) -> Reply {
    let id = poll_id.clone();
    let is_admin = c.claims.is_admin;
    let r = with(&c, move |p| p.result(&id, is_admin))
        .await?
        .map_err(refused)?;
    send(PollResponse {
        poll_id: Some(poll_id),
        poll_responses_result: Some(r),
        ..PollResponse::success()
    })
}

async fn submit(State(app): State<Arc<App>>, c: Caller, body: Bytes) -> Reply {
    allowed(&c)?;
    let req: SubmitPollResponseReq = json::decode(&body).map_err(ApiError::invalid)?;
    if !req.user_id.is_empty() && req.user_id != c.user.as_str() {
        return Err(forbidden(
            "user_id: a participant votes for themselves only",
        ));
    }
    let (user, name, id) = (
        c.user.clone(),
        c.invitation.name.clone(),
        req.poll_id.clone(),
    );
    let now = crate::clock::unix_ms();
    let voted = with(&c, move |p| {
        p.vote(&id, &user, &name, req.selected_option, now)
    })
    .await?
    .map_err(refused)?;
    tracing::info!(room_id = %c.room.info.room_id, user_id = %c.user, poll_id = req.poll_id, "poll response");
    announce(
        &app,
        &c,
        ServerMessage::PollResponse {
            poll_id: req.poll_id.clone(),
            total_responses: voted.total_responses,
            live: voted.live,
        },
    );
    send(PollResponse {
        poll_id: Some(req.poll_id),
        ..PollResponse::success()
    })
}

async fn close(State(app): State<Arc<App>>, Admin(c): Admin, body: Bytes) -> Reply {
    let req: ClosePollReq = json::decode(&body).map_err(ApiError::invalid)?;
    let (by, id) = (c.user.clone(), req.poll_id.clone());
    let now = crate::clock::unix_ms();
    with(&c, move |p| p.close(&id, &by, now))
        .await?
        .map_err(refused)?;
    tracing::info!(room_id = %c.room.info.room_id, by = %c.user, poll_id = req.poll_id, "poll closed");
    announce(
        &app,
        &c,
        ServerMessage::PollClosed {
            poll_id: req.poll_id.clone(),
        },
    );
    send(PollResponse {
        poll_id: Some(req.poll_id),
        ..PollResponse::success()
    })
}
