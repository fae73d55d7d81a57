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
use axum::http::StatusCode as Http;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use rand::distributions::{Alphanumeric, DistString};

use enclave_proto::json;
use enclave_proto::polls::{
    ActivatePollsReq, ClosePollReq, CreatePollReq, PollResponse, SubmitPollResponseReq,
};
use enclave_proto::StatusCode;

use super::browser::{admin, reply, room_gone, Caller};
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

type Reply = Result<Response, ApiError>;

fn send(r: PollResponse) -> Reply {
    Ok(reply(serde_json::to_value(r).unwrap_or_default()))
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
        .metadata
        .room_features
        .as_ref()
        .and_then(|f| f.polls_features.as_ref())
        .is_none_or(|p| p.is_allow);
    if on {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::PermissionDenied,
            "polls are turned off in this room",
        )
        .with_http(Http::FORBIDDEN))
    }
}

/// Runs `f` on the room's polls.
async fn with<T: Send + 'static>(
    c: &Caller,
    f: impl FnOnce(&mut Polls) -> T + Send + 'static,
) -> Result<T, ApiError> {
    c.room.polls(f).await.map_err(|_| room_gone())
}

/// Tells everyone in the room, on the server's topic.
fn announce(app: &App, c: &Caller, msg: serde_json::Value) {
    if let Some(media) = &app.media {
        media.send_system(c.room.info.room_id.as_str(), &msg, Vec::new());
    }
}

async fn activate(State(app): State<Arc<App>>, c: Caller, body: Bytes) -> Reply {
    admin(&c)?;
    allowed(&c)?;
    let req: ActivatePollsReq = json::decode(&body).map_err(ApiError::invalid)?;
    with(&c, move |p| p.set_active(req.is_active)).await?;
    announce(
        &app,
        &c,
        serde_json::json!({ "type": "POLLS_ACTIVE", "is_active": req.is_active }),
    );
    send(PollResponse {
        is_active: Some(req.is_active),
        ..PollResponse::success()
    })
}

async fn create(State(app): State<Arc<App>>, c: Caller, body: Bytes) -> Reply {
    admin(&c)?;
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
        serde_json::json!({ "type": "POLL_CREATED", "poll_id": id }),
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
    if user_id != c.user.as_str() {
        admin(&c).map_err(|_| {
            ApiError::new(
                StatusCode::PermissionDenied,
                "only admin can view other user's selection",
            )
            .with_http(Http::FORBIDDEN)
        })?;
    }
    let user = enclave_proto::ids::UserId::parse(&user_id)
        .map_err(|e| ApiError::invalid(format!("user_id: {e}")))?;
    let id = poll_id.clone();
    let (voted, has_voted) = with(&c, move |p| p.selected(&id, &user))
        .await?
        .map_err(refused)?;
    let mut v = serde_json::to_value(PollResponse {
        poll_id: Some(poll_id),
        voted: Some(voted),
        ..PollResponse::success()
    })
    .unwrap_or_default();
    // Ours: an anonymous poll keeps no choice, only whether someone voted.
    v["has_voted"] = has_voted.into();
    Ok(reply(v))
}

async fn details(c: Caller, Path(poll_id): Path<String>) -> Reply {
    admin(&c)?;
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
        return Err(ApiError::new(
            StatusCode::PermissionDenied,
            "user_id: a participant votes for themselves only",
        )
        .with_http(Http::FORBIDDEN));
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
        serde_json::json!({
            "type": "POLL_RESPONSE",
            "poll_id": req.poll_id,
            "total_responses": voted.total_responses,
            "live": voted.live,
        }),
    );
    send(PollResponse {
        poll_id: Some(req.poll_id),
        ..PollResponse::success()
    })
}

async fn close(State(app): State<Arc<App>>, c: Caller, body: Bytes) -> Reply {
    admin(&c)?;
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
        serde_json::json!({ "type": "POLL_CLOSED", "poll_id": req.poll_id }),
    );
    send(PollResponse {
        poll_id: Some(req.poll_id),
        ..PollResponse::success()
    })
}
