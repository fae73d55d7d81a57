//! Whiteboard and notepad documents in the browser API (`/api/content/*`, `docs/content.md`).
//!
//! Every participant reads; writers append updates and compact documents into snapshots;
//! admins clear. Who writes: admins always, the presenter on the whiteboard, others unless the
//! lock of that kind is on for them; the room's feature switch must be on. Each accepted update
//! is announced to everyone in the room (the sender too) as `CONTENT_UPDATE`, a clear as
//! `CONTENT_CLEARED`. The room's task owns the logs ([`crate::rooms::content`]); in an end-to-end
//! encrypted room they hold sealed envelopes only.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::post;
use axum::Router;

use enclave_proto::browser::{Done, ServerMessage};
use enclave_proto::content::{
    AppendReq, Appended, ClearReq, Cleared, ContentKind, DocId, DocsReply, DocsReq, LogReply,
    LogReq, SnapshotReq,
};
use enclave_proto::json;

use super::caller::{forbidden, success, Admin, Answered, Caller};
use crate::app::App;
use crate::error::ApiError;
use crate::rooms::content::ContentError;
use crate::rooms::{locks, RoomHandle};

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/content/append", post(append))
        .route("/api/content/log", post(log))
        // A snapshot is larger than axum's default limit; `read_body` bounds it (see
        // `http::body_limit`).
        .route(
            "/api/content/snapshot",
            post(snapshot).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/content/clear", post(clear))
        .route("/api/content/docs", post(docs))
}

/// A refused document request: `status:false` with the reason.
fn refused(e: ContentError) -> ApiError {
    ApiError::invalid(e)
}

/// The kind's feature switch (`whiteboard_features.is_allow`, `shared_note_pad_features.is_allow`;
/// a room made without features has both).
pub(super) fn feature_on(c: &Caller, kind: ContentKind) -> Result<(), ApiError> {
    let f = c.room.info.features();
    let on = match kind {
        ContentKind::Whiteboard => f
            .and_then(|f| f.whiteboard_features.as_ref())
            .is_none_or(|w| w.is_allow),
        ContentKind::Notepad => f
            .and_then(|f| f.shared_note_pad_features.as_ref())
            .is_none_or(|n| n.is_allow),
    };
    if on {
        Ok(())
    } else {
        Err(forbidden(match kind {
            ContentKind::Whiteboard => "the whiteboard is turned off in this room",
            ContentKind::Notepad => "the shared notepad is turned off in this room",
        }))
    }
}

/// Whether the caller may write documents of `kind`: admins always, the presenter on the
/// whiteboard, others unless that lock is on for them.
pub(super) fn may_write(c: &Caller, kind: ContentKind) -> Result<(), ApiError> {
    feature_on(c, kind)?;
    let admin = c.claims.is_admin;
    let l = c.invitation.metadata.lock_settings.as_ref();
    let ok = match kind {
        ContentKind::Whiteboard => {
            c.invitation.metadata.is_presenter || !locks::whiteboard_locked(admin, l)
        }
        ContentKind::Notepad => !locks::notepad_locked(admin, l),
    };
    if ok {
        Ok(())
    } else {
        Err(forbidden(match kind {
            ContentKind::Whiteboard => "the whiteboard is locked for you",
            ContentKind::Notepad => "the shared notepad is locked for you",
        }))
    }
}

/// Tells everyone in the room, on the server's topic.
fn announce(app: &App, room: &RoomHandle, msg: ServerMessage) {
    if let Some(media) = &app.media {
        media.send_system(room.info.room_id.as_str(), &msg, Vec::new());
    }
}

async fn append(State(app): State<Arc<App>>, c: Caller, body: Bytes) -> Answered<Appended> {
    let req: AppendReq = json::decode(&body).map_err(ApiError::invalid)?;
    may_write(&c, req.kind)?;
    let sealed = c.room.info.is_e2ee();
    let from = c.user.to_string();
    let (kind, doc, text) = (req.kind, req.doc.clone(), req.body.clone());
    let f = from.clone();
    let now = crate::clock::now_std();
    let seq = c
        .room
        .documents(move |d| d.append(kind, &doc, &f, text, sealed, now))
        .await?
        .map_err(refused)?;
    announce(
        &app,
        &c.room,
        ServerMessage::ContentUpdate {
            kind: req.kind,
            doc: req.doc.to_string(),
            seq,
            from,
            body: req.body,
        },
    );
    success(Appended { seq })
}

/// Appends `body` to a document as `from` (e.g. [`crate::rooms::content::SYSTEM`]) without a
/// rate, and announces it: for what the server writes itself, such as a converted document's
/// `{"document_id","name","pages":[...]}` in whiteboard document `documents`.
#[allow(dead_code)] // The document converter calls it.
pub(crate) async fn append_as(
    app: &App,
    room: &RoomHandle,
    kind: ContentKind,
    doc: DocId,
    from: &str,
    body: String,
) -> Result<u64, ApiError> {
    let sealed = room.info.is_e2ee();
    let (d, f, b) = (doc.clone(), from.to_owned(), body.clone());
    let seq = room
        .documents(move |docs| docs.append_unmetered(kind, &d, &f, b, sealed))
        .await?
        .map_err(refused)?;
    announce(
        app,
        room,
        ServerMessage::ContentUpdate {
            kind,
            doc: doc.to_string(),
            seq,
            from: from.to_owned(),
            body,
        },
    );
    Ok(seq)
}

async fn log(c: Caller, body: Bytes) -> Answered<LogReply> {
    let req: LogReq = json::decode(&body).map_err(ApiError::invalid)?;
    feature_on(&c, req.kind)?;
    let log = c
        .room
        .documents(move |d| d.log(req.kind, &req.doc, req.after))
        .await?;
    // The bodies are copied here, not in the room's task.
    success(log.into_reply())
}

async fn snapshot(c: Caller, body: Bytes) -> Answered<Done> {
    let req: SnapshotReq = json::decode(&body).map_err(ApiError::invalid)?;
    may_write(&c, req.kind)?;
    let sealed = c.room.info.is_e2ee();
    let from = c.user.to_string();
    let now = crate::clock::now_std();
    c.room
        .documents(move |d| d.snapshot(req.kind, &req.doc, &from, req.upto, req.body, sealed, now))
        .await?
        .map_err(refused)?;
    success(Done {})
}

async fn clear(State(app): State<Arc<App>>, Admin(c): Admin, body: Bytes) -> Answered<Cleared> {
    let req: ClearReq = json::decode(&body).map_err(ApiError::invalid)?;
    feature_on(&c, req.kind)?;
    let doc = if req.doc.is_empty() {
        None
    } else {
        Some(DocId::parse(&req.doc).map_err(|e| ApiError::invalid(format!("doc: {e}")))?)
    };
    let kind = req.kind;
    let d = doc.clone();
    let cleared = c
        .room
        .documents(move |docs| docs.clear(kind, d.as_ref()))
        .await?;
    tracing::info!(room_id = %c.room.info.room_id, by = %c.user, kind = %kind, cleared, "content cleared");
    announce(
        &app,
        &c.room,
        ServerMessage::ContentCleared {
            kind,
            doc: doc.map(String::from).unwrap_or_default(),
        },
    );
    success(Cleared { cleared })
}

async fn docs(c: Caller, body: Bytes) -> Answered<DocsReply> {
    let req: DocsReq = json::decode(&body).map_err(ApiError::invalid)?;
    feature_on(&c, req.kind)?;
    let docs = c.room.documents(move |d| d.docs(req.kind)).await?;
    success(DocsReply { docs })
}
