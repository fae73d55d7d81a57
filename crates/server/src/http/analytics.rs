//! `/auth/analytics/{fetch,delete,getDownloadToken}`: Plug-N-Meet's older analytics API, answered
//! from the `MEETING_ANALYTICS` artifacts each session leaves at its end (a `file_id` is the
//! artifact id), as Plug-N-Meet itself now does. The file downloads from
//! `/download/analytics/<token>`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;

use enclave_proto::history::{
    AnalyticsFileReq, AnalyticsInfo, FetchAnalyticsReq, FetchAnalyticsResult, Page, ResultBody,
    RoomArtifactType,
};
use enclave_proto::reply::{Empty, TokenBody};
use enclave_proto::StatusCode;

use super::api::{artifact_file, artifact_row, artifact_token, decode, remove_artifact, require};
use crate::app::App;
use crate::error::{success, ApiError, AuthReply};
use crate::store::{ArtifactRow, Filter};

/// The artifact behind `file_id`, if it is an analytics file.
async fn analytics_row(app: &App, file_id: &str) -> Result<ArtifactRow, ApiError> {
    require("file_id", file_id)?;
    let row = artifact_row(app, file_id).await?;
    if row.kind != RoomArtifactType::MeetingAnalytics {
        return Err(ApiError::new(StatusCode::NotFound, "artifact not found"));
    }
    Ok(row)
}

fn info(a: &ArtifactRow) -> AnalyticsInfo {
    let meta: serde_json::Value = serde_json::from_str(&a.metadata).unwrap_or_default();
    let path = artifact_file(a).unwrap_or_default();
    let size = &meta["file_info"]["file_size"];
    AnalyticsInfo {
        room_id: a.room_id.clone(),
        file_id: a.artifact_id.clone(),
        file_name: path.rsplit('/').next().unwrap_or_default().to_owned(),
        file_size: size
            .as_f64()
            .or_else(|| size.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(0.0),
        creation_time: a.created,
    }
}

pub(super) async fn fetch(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> AuthReply<ResultBody<FetchAnalyticsResult>> {
    let req: FetchAnalyticsReq = decode(&body)?;
    let page = Page::new(req.from, req.limit, req.order_by);
    let filter = Filter {
        room_ids: req.room_ids,
        room_sid: None,
    };
    let (total, rows) = app
        .store
        .artifacts(&filter, Some(RoomArtifactType::MeetingAnalytics), &page)
        .await?;
    if total == 0 {
        return Err(ApiError::new(StatusCode::NotFound, "no artifact found").into());
    }
    success(ResultBody {
        result: Some(FetchAnalyticsResult {
            total_analytics: total,
            from: page.from,
            limit: page.limit,
            order_by: page.order_by,
            analytics_list: rows.iter().map(info).collect(),
        }),
    })
}

pub(super) async fn delete(State(app): State<Arc<App>>, body: Bytes) -> AuthReply<Empty> {
    let req: AnalyticsFileReq = decode(&body)?;
    let a = analytics_row(&app, &req.file_id).await?;
    remove_artifact(&app, &a).await?;
    success(Empty {})
}

pub(super) async fn download_token_for(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> AuthReply<TokenBody> {
    let req: AnalyticsFileReq = decode(&body)?;
    let a = analytics_row(&app, &req.file_id).await?;
    artifact_token(&app, &a)
}
