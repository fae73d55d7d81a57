//! Durable history: past rooms, recordings and artifacts.
//!
//! [`Store`] is the backend trait; [`sqlite::SqliteStore`] is the embedded default. Every
//! implementation must pass the suite in [`conformance`]. Live room state never goes here, and
//! neither does any E2EE secret: the tables below have no column that could hold one.

pub mod sqlite;

#[cfg(test)]
pub(crate) mod conformance;

use async_trait::async_trait;

use enclave_proto::history::{Page, RoomArtifactType};

/// A storage failure. The message names the operation; callers log it and answer
/// `INTERNAL_SERVER_ERROR` without the detail.
#[derive(Debug, thiserror::Error)]
#[error("store: {op} failed: {detail}")]
pub struct StoreError {
    pub op: &'static str,
    pub detail: String,
}

impl StoreError {
    pub(crate) fn new(op: &'static str, e: impl std::fmt::Display) -> Self {
        Self {
            op,
            detail: e.to_string(),
        }
    }
}

/// One session of a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRow {
    pub id: i64,
    pub room_id: String,
    pub sid: String,
    pub room_title: String,
    pub joined_participants: i64,
    pub is_running: bool,
    pub webhook_url: String,
    pub is_breakout_room: bool,
    pub parent_room_id: String,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds; `None` while running.
    pub ended: Option<i64>,
}

/// A new session to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRoom {
    pub room_id: String,
    pub sid: String,
    pub room_title: String,
    pub webhook_url: String,
    pub created: i64,
}

/// A finished recording.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingRow {
    pub record_id: String,
    pub room_id: String,
    pub room_sid: String,
    pub recorder_id: String,
    /// Relative to the recordings directory.
    pub file_path: String,
    /// Megabytes.
    pub size_mb: f64,
    pub created: i64,
    pub room_created: i64,
    /// `RecordingMetadata` JSON, if any.
    pub metadata: Option<String>,
}

/// An artifact of a session (analytics, summaries, usage records).
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactRow {
    pub artifact_id: String,
    pub room_id: String,
    pub room_sid: String,
    pub kind: RoomArtifactType,
    /// `RoomArtifactMetadata` JSON.
    pub metadata: String,
    pub created: i64,
}

/// A filter shared by the `fetch` queries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub room_ids: Vec<String>,
    pub room_sid: Option<String>,
}

/// The history backend.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Records a new running session; returns its row id.
    async fn insert_room(&self, room: NewRoom) -> Result<i64, StoreError>;
    /// Marks a session ended.
    async fn end_room(
        &self,
        sid: &str,
        ended: i64,
        joined_participants: i64,
    ) -> Result<(), StoreError>;
    /// Marks every running session ended (after a restart, live state is gone). Returns how
    /// many were running.
    async fn end_all_running(&self, ended: i64) -> Result<u64, StoreError>;
    /// One session by sid.
    async fn room_by_sid(&self, sid: &str) -> Result<Option<RoomRow>, StoreError>;
    /// Ended sessions, filtered and paged; returns the total and the page.
    async fn past_rooms(
        &self,
        filter: &Filter,
        page: &Page,
    ) -> Result<(i64, Vec<RoomRow>), StoreError>;

    async fn insert_recording(&self, rec: RecordingRow) -> Result<(), StoreError>;
    async fn recordings(
        &self,
        filter: &Filter,
        page: &Page,
    ) -> Result<(i64, Vec<RecordingRow>), StoreError>;
    async fn recording(&self, record_id: &str) -> Result<Option<RecordingRow>, StoreError>;
    /// Returns whether a row was deleted.
    async fn delete_recording(&self, record_id: &str) -> Result<bool, StoreError>;
    /// Returns whether a row was updated.
    async fn update_recording_metadata(
        &self,
        record_id: &str,
        metadata: &str,
    ) -> Result<bool, StoreError>;

    async fn insert_artifact(&self, art: ArtifactRow) -> Result<(), StoreError>;
    async fn artifacts(
        &self,
        filter: &Filter,
        kind: Option<RoomArtifactType>,
        page: &Page,
    ) -> Result<(i64, Vec<ArtifactRow>), StoreError>;
    async fn artifact(&self, artifact_id: &str) -> Result<Option<ArtifactRow>, StoreError>;
    /// Returns whether a row was deleted.
    async fn delete_artifact(&self, artifact_id: &str) -> Result<bool, StoreError>;

    /// Whether the backend answers (for `/healthCheck`).
    async fn ping(&self) -> Result<(), StoreError>;
}
