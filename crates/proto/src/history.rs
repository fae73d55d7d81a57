//! History: past rooms, recordings and artifacts (requests and replies).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::json::{self, int, int64_string};

/// Default page size of the `fetch` endpoints.
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest page size of the `fetch` endpoints.
pub const MAX_LIMIT: u32 = 100;

/// Paging as every `fetch` endpoint takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Rows to skip.
    pub from: u32,
    /// Rows to return (1 to [`MAX_LIMIT`]).
    pub limit: u32,
    /// As sent (echoed back); only `ASC` changes the order.
    pub order_by: String,
}

impl Page {
    /// Applies the defaults: limit 20 when ≤ 0, at most 100; order `DESC` when empty.
    pub fn new(from: u32, limit: u32, order_by: String) -> Self {
        let limit = if limit == 0 {
            DEFAULT_LIMIT
        } else {
            limit.min(MAX_LIMIT)
        };
        let order_by = if order_by.is_empty() {
            "DESC".to_owned()
        } else {
            order_by
        };
        Self {
            from,
            limit,
            order_by,
        }
    }

    /// Whether rows come oldest first.
    pub fn ascending(&self) -> bool {
        self.order_by.eq_ignore_ascii_case("ASC")
    }
}

/// `FetchPastRoomsReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FetchPastRoomsReq {
    /// Only these rooms; empty: every room.
    pub room_ids: Vec<String>,
    /// Rows to skip.
    #[serde(deserialize_with = "int")]
    pub from: u32,
    /// Rows to return: [`DEFAULT_LIMIT`] when 0, at most [`MAX_LIMIT`].
    #[serde(deserialize_with = "int")]
    pub limit: u32,
    /// `ASC` for oldest first; anything else (default `DESC`) newest first.
    pub order_by: String,
}

/// `PastRoomInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PastRoomInfo {
    /// The title the room was created with.
    pub room_title: String,
    /// The integrator's room id.
    pub room_id: String,
    /// The session's id (a new UUID every time the room is created).
    pub room_sid: String,
    /// How many joined during the session.
    #[serde(serialize_with = "int64_string")]
    pub joined_participants: i64,
    /// The room's own webhook URL, if it had one.
    pub webhook_url: String,
    /// When the session started (RFC 3339 in `fetchPastRooms`, `YYYY-MM-DD HH:MM:SS` in
    /// the `info` replies, as Plug-N-Meet writes them).
    pub created: String,
    /// When the session ended, in the same format; empty while it runs.
    pub ended: String,
    /// The session's `MEETING_ANALYTICS` artifact, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analytics_file_id: Option<String>,
}

/// `FetchPastRoomsResult`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FetchPastRoomsResult {
    /// Matching rows in all, not only this page.
    #[serde(serialize_with = "int64_string")]
    pub total_rooms: i64,
    /// As applied.
    pub from: u32,
    /// As applied.
    pub limit: u32,
    /// As sent (or `DESC`).
    pub order_by: String,
    /// This page.
    pub rooms_list: Vec<PastRoomInfo>,
}

/// Body of `FetchPastRoomsRes` (and of the other `fetch` replies).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResultBody<T> {
    /// The page; `null` when nothing matched.
    pub result: Option<T>,
}

/// `FetchRecordingsReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FetchRecordingsReq {
    /// Only these rooms; empty: every room.
    pub room_ids: Vec<String>,
    /// Only this session.
    pub room_sid: Option<String>,
    /// Rows to skip.
    #[serde(deserialize_with = "int")]
    pub from: u32,
    /// Rows to return: [`DEFAULT_LIMIT`] when 0, at most [`MAX_LIMIT`].
    #[serde(deserialize_with = "int")]
    pub limit: u32,
    /// `ASC` for oldest first; anything else (default `DESC`) newest first.
    pub order_by: String,
}

/// `RecordingSubtitle`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordingSubtitle {
    /// The name shown in the player's subtitle menu.
    pub label: String,
    /// Where the subtitle file (WebVTT) is.
    pub url: String,
}

/// `RecordingMetadata`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordingMetadata {
    /// The integrator's title for the recording.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The integrator's description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Subtitle tracks by language code.
    pub subtitles: BTreeMap<String, RecordingSubtitle>,
    /// The integrator's own keys and values, kept as sent.
    pub extra_data: BTreeMap<String, String>,
}

/// `RecordingInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecordingInfo {
    /// The recording's id.
    pub record_id: String,
    /// The room it was made in.
    pub room_id: String,
    /// The session it was made in.
    pub room_sid: String,
    /// The file, relative to `recorder_info.recording_files_path`.
    pub file_path: String,
    /// Megabytes, two decimals.
    pub file_size: f64,
    /// When the recording was stored, Unix seconds.
    #[serde(serialize_with = "int64_string")]
    pub creation_time: i64,
    /// When its session started, Unix seconds.
    #[serde(serialize_with = "int64_string")]
    pub room_creation_time: i64,
    /// What the integrator set with `recording/updateMetadata`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<RecordingMetadata>,
}

/// `FetchRecordingsResult`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FetchRecordingsResult {
    /// Matching rows in all, not only this page.
    #[serde(serialize_with = "int64_string")]
    pub total_recordings: i64,
    /// As applied.
    pub from: u32,
    /// As applied.
    pub limit: u32,
    /// As sent (or `DESC`).
    pub order_by: String,
    /// This page.
    pub recordings_list: Vec<RecordingInfo>,
}

/// `RecordingInfoReq`, `DeleteRecordingReq` and `GetDownloadTokenReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RecordIdReq {
    /// The recording's id (required).
    pub record_id: String,
}

/// `MergeRecordingsReq`: one of `by_session` (every recording of a session but the excluded)
/// or `by_ids` (these recordings of a room).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MergeRecordingsReq {
    /// Merge a session's recordings.
    pub by_session: Option<MergeBySession>,
    /// Merge the listed recordings.
    pub by_ids: Option<MergeByIds>,
}

/// `MergeRecordingsReq.by_session`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MergeBySession {
    /// The session (required).
    pub room_sid: String,
    /// Recordings of the session to leave out.
    pub exclude_recording_ids: Vec<String>,
}

/// `MergeRecordingsReq.by_ids`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MergeByIds {
    /// The room they belong to (required).
    pub room_id: String,
    /// The recordings, in order; at least two.
    pub recording_ids: Vec<String>,
}

/// `UpdateRecordingMetadataReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct UpdateRecordingMetadataReq {
    /// The recording's id (required).
    pub record_id: String,
    /// Replaces the stored metadata.
    pub metadata: Option<RecordingMetadata>,
}

/// Body of `RecordingInfoRes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecordingInfoBody {
    /// The recording; `null` on failure.
    pub recording_info: Option<RecordingInfo>,
    /// The session it was made in.
    pub room_info: Option<PastRoomInfo>,
}

json::proto_enum! {
    /// `RoomArtifactType`.
    RoomArtifactType {
        /// Not set.
        UnknownArtifact = 0 => "UNKNOWN_ARTIFACT",
        /// The session's analytics (a JSON file): attendance, talk time, chat counts.
        MeetingAnalytics = 1 => "MEETING_ANALYTICS",
        /// An AI summary of the meeting (a file).
        MeetingSummary = 2 => "MEETING_SUMMARY",
        /// What the summary used of the AI service (for billing).
        MeetingSummaryUsage = 3 => "MEETING_SUMMARY_USAGE",
        /// A transcript of the meeting (a file).
        SpeechTranscription = 4 => "SPEECH_TRANSCRIPTION",
        /// What transcription used of its service.
        SpeechTranscriptionUsage = 5 => "SPEECH_TRANSCRIPTION_USAGE",
        /// What speech synthesis used of its service.
        SynthesizedSpeechUsage = 6 => "SYNTHESIZED_SPEECH_USAGE",
        /// What chat translation used of its service.
        ChatTranslationUsage = 7 => "CHAT_TRANSLATION_USAGE",
        /// What the AI assistant's answers used of the AI service.
        AiTextChatInteractionUsage = 8 => "AI_TEXT_CHAT_INTERACTION_USAGE",
        /// What the AI assistant's chat summaries used of the AI service.
        AiTextChatSummarizationUsage = 9 => "AI_TEXT_CHAT_SUMMARIZATION_USAGE",
    }
}

impl RoomArtifactType {
    /// Whether artifacts of this type carry a file someone may download.
    pub fn is_downloadable(self) -> bool {
        matches!(
            self,
            Self::MeetingAnalytics | Self::MeetingSummary | Self::SpeechTranscription
        )
    }
}

/// `FetchArtifactsReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FetchArtifactsReq {
    /// Only these rooms; empty: every room.
    pub room_ids: Vec<String>,
    /// Only this session.
    pub room_sid: Option<String>,
    /// Only this type (`type` on the wire).
    #[serde(rename = "type")]
    pub kind: Option<RoomArtifactType>,
    /// Rows to skip.
    #[serde(deserialize_with = "int")]
    pub from: u32,
    /// Rows to return: [`DEFAULT_LIMIT`] when 0, at most [`MAX_LIMIT`].
    #[serde(deserialize_with = "int")]
    pub limit: u32,
    /// `ASC` for oldest first; anything else (default `DESC`) newest first.
    pub order_by: String,
}

/// `ArtifactInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ArtifactInfo {
    /// The artifact's id.
    pub artifact_id: String,
    /// The room it belongs to.
    pub room_id: String,
    /// What it is (`type` on the wire).
    #[serde(rename = "type")]
    pub kind: RoomArtifactType,
    /// When it was made (RFC 3339).
    pub created: String,
    /// `RoomArtifactMetadata` as stored.
    pub metadata: Option<serde_json::Value>,
}

/// `FetchArtifactsResult`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FetchArtifactsResult {
    /// Matching rows in all, not only this page.
    #[serde(serialize_with = "int64_string")]
    pub total_artifacts: i64,
    /// As applied (an int64 here, so a string on the wire).
    #[serde(serialize_with = "int64_string")]
    pub from: u64,
    /// As applied (an int64 here, so a string on the wire).
    #[serde(serialize_with = "int64_string")]
    pub limit: u64,
    /// As sent (or `DESC`).
    pub order_by: String,
    /// The type asked for, if any (`type` on the wire).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<RoomArtifactType>,
    /// This page.
    pub artifacts_list: Vec<ArtifactInfo>,
}

/// `ArtifactInfoReq`, `DeleteArtifactReq` and `GetArtifactDownloadTokenReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ArtifactIdReq {
    /// The artifact's id (required).
    pub artifact_id: String,
}

/// Body of `ArtifactInfoRes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ArtifactInfoBody {
    /// The artifact; `null` on failure.
    pub artifact_info: Option<ArtifactInfo>,
    /// The session it belongs to.
    pub room_info: Option<PastRoomInfo>,
}

/// `FetchAnalyticsReq` (Plug-N-Meet's older API over `MEETING_ANALYTICS` artifacts).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FetchAnalyticsReq {
    /// Only these rooms; empty: every room.
    pub room_ids: Vec<String>,
    /// Rows to skip.
    #[serde(deserialize_with = "int")]
    pub from: u32,
    /// Rows to return: [`DEFAULT_LIMIT`] when 0, at most [`MAX_LIMIT`].
    #[serde(deserialize_with = "int")]
    pub limit: u32,
    /// `ASC` for oldest first; anything else (default `DESC`) newest first.
    pub order_by: String,
}

/// `AnalyticsInfo`: `file_id` is the artifact id.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AnalyticsInfo {
    /// The room it belongs to.
    pub room_id: String,
    /// The artifact's id.
    pub file_id: String,
    /// The file's name.
    pub file_name: String,
    /// Bytes.
    pub file_size: f64,
    /// When it was made, Unix seconds.
    #[serde(serialize_with = "int64_string")]
    pub creation_time: i64,
}

/// `FetchAnalyticsResult`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FetchAnalyticsResult {
    /// Matching rows in all, not only this page.
    #[serde(serialize_with = "int64_string")]
    pub total_analytics: i64,
    /// As applied.
    pub from: u32,
    /// As applied.
    pub limit: u32,
    /// As sent (or `DESC`).
    pub order_by: String,
    /// This page.
    pub analytics_list: Vec<AnalyticsInfo>,
}

/// `DeleteAnalyticsReq` and `GetAnalyticsDownloadTokenReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AnalyticsFileReq {
    /// The analytics artifact's id (required).
    pub file_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_defaults_and_caps() {
        assert_eq!(
            Page::new(0, 0, String::new()),
            Page {
                from: 0,
                limit: 20,
                order_by: "DESC".into()
            }
        );
        assert_eq!(Page::new(5, 500, "ASC".into()).limit, 100);
        assert!(Page::new(0, 1, "ASC".into()).ascending());
        assert!(!Page::new(0, 1, "whatever".into()).ascending());
    }

    #[test]
    fn artifact_type_accepts_name_or_number() {
        let r: FetchArtifactsReq = crate::json::decode(br#"{"type":"MEETING_SUMMARY"}"#).unwrap();
        assert_eq!(r.kind, Some(RoomArtifactType::MeetingSummary));
        let r: FetchArtifactsReq = crate::json::decode(br#"{"type":1}"#).unwrap();
        assert_eq!(r.kind, Some(RoomArtifactType::MeetingAnalytics));
        assert!(crate::json::decode::<FetchArtifactsReq>(br#"{"type":"NOPE"}"#).is_err());
    }
}
