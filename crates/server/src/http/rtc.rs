//! LiveKit signalling on `/rtc`: protocol 17, binary protobuf frames over a WebSocket.
//!
//! `/rtc/v1` (the single-peer-connection protocol) is not served: the upgrade and
//! `/rtc/v1/validate` answer 404 so that LiveKit's SDKs fall back to `/rtc`. The router's CORS
//! layer puts `Access-Control-Allow-Origin: *` on those replies; without it a browser page on
//! another origin cannot read the 404 and does not fall back.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use prost::Message as _;
use rand::distributions::{Alphanumeric, DistString};
use tokio::sync::mpsc;
use tracing::Instrument;

use enclave_proto::ids::UserId;
use enclave_sfu::proto::{self as lk, signal_response, SignalRequest, SignalResponse};
use enclave_sfu::JoinParams;

use crate::app::App;
use crate::auth::livekit::{verify, AccessClaims};
use crate::clock::unix_now;
use crate::media::ConnOut;
use crate::rooms::core::{Invitation, JoinError, Participant, Standing};
use crate::rooms::RoomHandle;

/// Largest signalling frame accepted (an SDP with many m-lines is a few tens of KB).
const MAX_FRAME: usize = 256 * 1024;

/// A client that sends nothing for this long is gone. The JoinResponse asks clients to ping
/// every `PING_INTERVAL` and to give up after `PING_TIMEOUT` without an answer; this adds a
/// little slack. The participant then waits for a resume as after any dropped WebSocket.
const SILENCE: std::time::Duration =
    std::time::Duration::from_secs(enclave_sfu::PING_TIMEOUT as u64 + 5);

/// How many signalling requests a WebSocket may send: a bucket of this many, refilled at
/// [`SIGNAL_RATE`] per second. A join sends a burst of a few dozen (offer, trickle, add_track,
/// settings); steady state is a ping every 5 s and the odd track setting.
const SIGNAL_BURST: f64 = 200.0;
const SIGNAL_RATE: f64 = 50.0;

/// A token bucket of signalling requests.
#[derive(Debug)]
pub(crate) struct SignalBudget {
    tokens: f64,
    at: std::time::Instant,
}

impl SignalBudget {
    pub(crate) fn new(now: std::time::Instant) -> Self {
        Self {
            tokens: SIGNAL_BURST,
            at: now,
        }
    }

    /// Takes one request from the bucket; false when it is empty (the client floods).
    pub(crate) fn take(&mut self, now: std::time::Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * SIGNAL_RATE).min(SIGNAL_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/rtc", get(rtc))
        .route("/rtc/validate", get(validate))
        .route("/rtc/v1", any(v1))
        .route("/rtc/v1/validate", any(v1))
}

async fn v1() -> Response {
    (
        StatusCode::NOT_FOUND,
        "this server speaks LiveKit protocol 17 on /rtc",
    )
        .into_response()
}

/// What a connection request carries, checked.
struct Admitted {
    claims: AccessClaims,
    room: RoomHandle,
    user: UserId,
    /// From `getJoinToken`, when the participant came through the browser API.
    invitation: Option<Invitation>,
}

async fn admit(
    app: &App,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Admitted, (StatusCode, String)> {
    let token = q
        .get("access_token")
        .cloned()
        .or_else(|| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned)
        })
        .ok_or((StatusCode::UNAUTHORIZED, "missing access token".to_owned()))?;
    let claims = verify(&app.keys, &app.config.livekit.api_key, &token)
        .map_err(|e| (StatusCode::UNAUTHORIZED, e.to_string()))?;
    let user = UserId::parse(&claims.sub)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("identity: {e}")))?;
    // Rooms are created through the API; a token for a room that is not live cannot create one.
    // LiveKit's wording, which its clients know not to mistake for a missing endpoint.
    let room = app.rooms.get_str(&claims.video.room).ok_or((
        StatusCode::NOT_FOUND,
        "requested room does not exist".to_owned(),
    ))?;
    // A media token from `verifyToken` is good for the session it was issued in only.
    if claims
        .session
        .as_deref()
        .is_some_and(|s| s != room.info.sid.to_string())
    {
        return Err((
            StatusCode::UNAUTHORIZED,
            "token was issued for an earlier session of this room".to_owned(),
        ));
    }
    // Refused before the upgrade, so that the SDK's validate call can say why. (The room
    // refuses the join as well, for a removal that lands in between.)
    let membership = room.membership(user.clone()).await.ok();
    match membership.as_ref().map(|m| m.standing) {
        Some(Standing::Removed) => {
            return Err((
                StatusCode::FORBIDDEN,
                "participant was removed from this session".to_owned(),
            ))
        }
        Some(Standing::Blocked) => {
            return Err((
                StatusCode::FORBIDDEN,
                "participant is blocked from this session".to_owned(),
            ))
        }
        _ => {}
    }
    let invitation = membership.and_then(|m| m.invitation);
    if invitation
        .as_ref()
        .is_some_and(|i| i.metadata.wait_for_approval)
    {
        return Err((
            StatusCode::FORBIDDEN,
            "participant waits for an admin's approval (waiting room)".to_owned(),
        ));
    }
    Ok(Admitted {
        claims,
        room,
        user,
        invitation,
    })
}

async fn validate(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    match admit(&app, &q, &headers).await {
        Ok(_) => (StatusCode::OK, "success").into_response(),
        Err((code, msg)) => (code, msg).into_response(),
    }
}

async fn rtc(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let admitted = match admit(&app, &q, &headers).await {
        Ok(a) => a,
        Err((code, msg)) => {
            tracing::info!(%code, msg, "media connection refused");
            return (code, msg).into_response();
        }
    };
    // A resume names the participant it continues (`sid`); without one it cannot be a resume.
    let resume = q
        .get("reconnect")
        .is_some_and(|v| v == "1" || v == "true")
        .then(|| q.get("sid").cloned().unwrap_or_default());
    let auto_subscribe = q.get("auto_subscribe").is_none_or(|v| v != "0");
    let client_protocol = q
        .get("client_protocol")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // A small initial read buffer (it grows for large frames): 128 KiB per idle participant
    // was most of an idle participant's memory.
    ws.max_message_size(MAX_FRAME)
        .read_buffer_size(4 * 1024)
        .on_upgrade(move |socket| {
            session(
                app,
                admitted,
                socket,
                resume,
                auto_subscribe,
                client_protocol,
            )
        })
}

fn frame(msg: signal_response::Message) -> Message {
    Message::Binary(SignalResponse { message: Some(msg) }.encode_to_vec().into())
}

fn leave(reason: lk::DisconnectReason, action: lk::leave_request::Action) -> Message {
    frame(signal_response::Message::Leave(lk::LeaveRequest {
        reason: reason as i32,
        action: action as i32,
        ..Default::default()
    }))
}

async fn close(mut socket: WebSocket) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "".into(),
        })))
        .await;
}

async fn session(
    app: Arc<App>,
    a: Admitted,
    socket: WebSocket,
    resume: Option<String>,
    auto_subscribe: bool,
    client_protocol: i32,
) {
    if let Some(sid) = resume {
        let span = tracing::info_span!(parent: None, "participant", room_id = %a.room.info.room_id, identity = %a.user, %sid);
        return resume_session(app, a, socket, sid).instrument(span).await;
    }
    let sid = format!(
        "PA_{}",
        Alphanumeric.sample_string(&mut rand::thread_rng(), 12)
    );
    // The span is attached to the session future, not entered across its awaits: an entered
    // guard held over an await would lend this span to whatever else runs on the thread.
    let span = tracing::info_span!(parent: None, "participant", room_id = %a.room.info.room_id, identity = %a.user, %sid);
    run(app, a, socket, auto_subscribe, client_protocol, sid)
        .instrument(span)
        .await
}

async fn run(
    app: Arc<App>,
    a: Admitted,
    mut socket: WebSocket,
    auto_subscribe: bool,
    client_protocol: i32,
    sid: String,
) {
    let name = if a.claims.name.is_empty() {
        a.claims.sub.clone()
    } else {
        a.claims.name.clone()
    };
    let participant = Participant {
        user_id: a.user.clone(),
        sid: sid.clone(),
        name: name.clone(),
        is_admin: false,
        is_hidden: a.room.info.effective_hidden(a.claims.video.hidden),
        joined_at: unix_now(),
        metadata: a.claims.metadata.clone(),
    };
    match a.room.join(participant).await {
        Ok(Ok(())) => {}
        Ok(Err(e @ (JoinError::RoomFull | JoinError::AwaitingApproval))) => {
            tracing::info!(error = %e, "refused");
            let _ = socket
                .send(leave(
                    lk::DisconnectReason::JoinFailure,
                    lk::leave_request::Action::Disconnect,
                ))
                .await;
            return close(socket).await;
        }
        Ok(Err(e @ (JoinError::Removed | JoinError::Blocked))) => {
            tracing::info!(error = %e, "refused: removed by an admin");
            let _ = socket
                .send(leave(
                    lk::DisconnectReason::ParticipantRemoved,
                    lk::leave_request::Action::Disconnect,
                ))
                .await;
            return close(socket).await;
        }
        Ok(Err(JoinError::RoomEnded)) | Err(_) => {
            let _ = socket
                .send(leave(
                    lk::DisconnectReason::RoomDeleted,
                    lk::leave_request::Action::Disconnect,
                ))
                .await;
            return close(socket).await;
        }
    }
    let Some(media) = app.media.clone() else {
        tracing::error!("media connection without a media runtime");
        return close(socket).await;
    };
    let conn = media.next_conn();
    let (out_tx, out_rx) = mpsc::channel(crate::media::SIGNAL_QUEUE);
    let v = &a.claims.video;
    // What the room's features and the participant's locks allow now. A LiveKit token minted
    // by an integrator narrows it with its own `canPublishSources`; ours (with a session) are
    // not read for it, since a lock lifted after the token was issued must stay lifted when
    // the client reconnects with it.
    let mut permission = a.room.publish_permission(a.invitation.as_ref(), v.hidden);
    if let (None, Some(names)) = (
        &a.claims.session,
        v.can_publish_sources.as_ref().filter(|n| !n.is_empty()),
    ) {
        let granted = crate::rooms::locks::sources_from_names(names);
        if permission.can_publish_sources.is_empty() {
            permission.can_publish_sources = granted;
        } else {
            permission
                .can_publish_sources
                .retain(|s| granted.contains(s));
        }
        permission.can_publish &= !permission.can_publish_sources.is_empty();
    }
    media.join(
        a.room.info.media_facts(),
        conn,
        JoinParams {
            sid,
            identity: a.claims.sub.clone(),
            name,
            metadata: a.claims.metadata.clone(),
            can_publish: v.can_publish.unwrap_or(true) && permission.can_publish,
            can_publish_sources: permission.can_publish_sources,
            can_subscribe: v.can_subscribe.unwrap_or(true),
            can_publish_data: v.can_publish_data.unwrap_or(true) && permission.can_publish_data,
            // A participant of a Plug-N-Meet session may ask (the room checks what it changes);
            // a LiveKit token holder if the token grants it, as LiveKit's server decides.
            can_update_metadata: a.invitation.is_some() || v.can_update_own_metadata == Some(true),
            denied_data_topics: permission.denied_data_topics,
            hidden: a.room.info.effective_hidden(v.hidden),
            auto_subscribe,
            client_protocol,
            ice_servers: app
                .config
                .media
                .as_ref()
                .map(|m| {
                    let now = u64::try_from(unix_now()).unwrap_or(0);
                    crate::auth::turn::ice_servers(&m.turn_servers, &a.claims.sub, now)
                })
                .unwrap_or_default(),
        },
        out_tx,
    );
    tracing::info!("media session started");
    bridge(&media, conn, socket, out_rx).await;
    tracing::info!("media session ended");
}

/// A LiveKit resume: the participant's peer connections live on and this WebSocket takes
/// over its signalling. The room API is not told anything: the participant never left.
async fn resume_session(app: Arc<App>, a: Admitted, mut socket: WebSocket, sid: String) {
    let Some(media) = app.media.clone() else {
        tracing::error!("media connection without a media runtime");
        return close(socket).await;
    };
    let session = media.next_conn();
    let (out_tx, out_rx) = mpsc::channel(crate::media::SIGNAL_QUEUE);
    let room_id = a.room.info.room_id.to_string();
    if !media
        .resume(&room_id, session, &sid, &a.claims.sub, out_tx)
        .await
    {
        // Gone (left, removed, or waited too long): the client joins again from scratch.
        tracing::info!("resume refused: no such participant waiting; asking for a full reconnect");
        let _ = socket
            .send(leave(
                lk::DisconnectReason::StateMismatch,
                lk::leave_request::Action::Reconnect,
            ))
            .await;
        return close(socket).await;
    }
    tracing::info!("media session resumed");
    bridge(&media, session, socket, out_rx).await;
    tracing::info!("resumed media session ended");
}

/// How a bridged WebSocket ended.
enum BridgeEnd {
    /// Closed by either side, or silent too long: the participant may resume.
    Closed,
    /// The client broke the rules; it is removed at once.
    Evicted(&'static str),
}

/// Carries frames between the WebSocket and the media worker until either side ends. A client
/// that sends more than its [`SignalBudget`] is removed; one that goes silent for [`SILENCE`]
/// is disconnected (and may resume).
async fn bridge(
    media: &crate::media::Media,
    conn: enclave_sfu::ConnId,
    mut socket: WebSocket,
    mut out_rx: mpsc::Receiver<ConnOut>,
) {
    let mut budget = SignalBudget::new(std::time::Instant::now());
    let mut last_heard = tokio::time::Instant::now();
    let end = loop {
        tokio::select! {
            () = tokio::time::sleep_until(last_heard + SILENCE) => {
                tracing::info!(secs = SILENCE.as_secs(), "signalling silent too long; closing");
                break BridgeEnd::Closed;
            }
            msg = socket.recv() => {
                last_heard = tokio::time::Instant::now();
                if matches!(msg, Some(Ok(_))) && !budget.take(std::time::Instant::now()) {
                    break BridgeEnd::Evicted("signalling flood");
                }
                match msg {
                Some(Ok(Message::Binary(bytes))) => {
                    match SignalRequest::decode(bytes.as_ref()) {
                        Ok(req) => match media.signal(conn, req) {
                            Ok(()) => {}
                            Err(crate::media::SignalRefused::Overloaded) => {
                                tracing::warn!("media worker overloaded; dropping this signalling session");
                                break BridgeEnd::Closed;
                            }
                            Err(crate::media::SignalRefused::Stopped) => break BridgeEnd::Closed,
                        },
                        Err(e) => {
                            tracing::info!(error = %e, "undecodable signalling frame; closing");
                            break BridgeEnd::Closed;
                        }
                    }
                }
                Some(Ok(Message::Text(_))) => {
                    tracing::info!("text signalling frames are not supported; closing");
                    break BridgeEnd::Closed;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) => {
                    // Sending flushes the close reply the WebSocket queued, so the client sees
                    // a clean 1000 close rather than 1006.
                    let _ = socket.send(Message::Close(None)).await;
                    break BridgeEnd::Closed;
                }
                None | Some(Err(_)) => break BridgeEnd::Closed,
                }
            }
            out = out_rx.recv() => match out {
                Some(ConnOut::Frame(bytes)) => {
                    if socket.send(Message::Binary(bytes.into())).await.is_err() {
                        break BridgeEnd::Closed;
                    }
                }
                Some(ConnOut::Close) | None => {
                    close_gracefully(&mut socket, 1000, "").await;
                    break BridgeEnd::Closed;
                }
            },
        }
    };
    match end {
        BridgeEnd::Closed => media.disconnect(conn),
        BridgeEnd::Evicted(why) => {
            tracing::warn!(why, "participant removed: it broke the signalling rules");
            let _ = socket
                .send(leave(
                    lk::DisconnectReason::SignalClose,
                    lk::leave_request::Action::Disconnect,
                ))
                .await;
            media.evict(conn);
            close_gracefully(&mut socket, 1008, why).await;
        }
    }
}

/// How long a closing WebSocket waits for the client's close reply.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// Sends a close frame and waits (briefly) for the client's, discarding what it still sends.
/// Closing the TCP connection with unread data in it would make the kernel reset it, and a
/// reset can destroy what we sent last (the leave that says why) before the client reads it.
async fn close_gracefully(socket: &mut WebSocket, code: u16, reason: &str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.to_owned().into(),
        })))
        .await;
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while let Some(Ok(m)) = socket.recv().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}
