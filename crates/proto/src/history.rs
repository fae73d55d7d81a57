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
    pub from: u32,
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
    pub room_ids: Vec<String>,
    #[serde(deserialize_with = "int")]
    pub from: u32,
    #[serde(deserialize_with = "int")]
    pub limit: u32,
    pub order_by: String,
}

/// `PastRoomInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PastRoomInfo {
    pub room_title: String,
    pub room_id: String,
    pub room_sid: String,
    #[serde(serialize_with = "int64_string")]
    pub joined_participants: i64,
    pub webhook_url: String,
    pub created: String,
    pub ended: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analytics_file_id: Option<String>,
}

/// `FetchPastRoomsResult`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FetchPastRoomsResult {
    #[serde(serialize_with = "int64_string")]
    pub total_rooms: i64,
    pub from: u32,
    pub limit: u32,
    pub order_by: String,
    pub rooms_list: Vec<PastRoomInfo>,
}

/// Body of `FetchPastRoomsRes` (and of the other `fetch` replies).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResultBody<T> {
    pub result: Option<T>,
}

/// `FetchRecordingsReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FetchRecordingsReq {
    pub room_ids: Vec<String>,
    pub room_sid: Option<String>,
    #[serde(deserialize_with = "int")]
    pub from: u32,
    #[serde(deserialize_with = "int")]
    pub limit: u32,
    pub order_by: String,
}

/// `RecordingSubtitle`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordingSubtitle {
    pub label: String,
    pub url: String,
}

/// `RecordingMetadata`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordingMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub subtitles: BTreeMap<String, RecordingSubtitle>,
    pub extra_data: BTreeMap<String, String>,
}

/// `RecordingInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecordingInfo {
    pub record_id: String,
    pub room_id: String,
    pub room_sid: String,
    pub file_path: String,
    /// Megabytes, two decimals.
    pub file_size: f64,
    #[serde(serialize_with = "int64_string")]
    pub creation_time: i64,
    #[serde(serialize_with = "int64_string")]
    pub room_creation_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<RecordingMetadata>,
}

/// `FetchRecordingsResult`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FetchRecordingsResult {
    #[serde(serialize_with = "int64_string")]
    pub total_recordings: i64,
    pub from: u32,
    pub limit: u32,
    pub order_by: String,
    pub recordings_list: Vec<RecordingInfo>,
}

/// `RecordingInfoReq`, `DeleteRecordingReq` and `GetDownloadTokenReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RecordIdReq {
    pub record_id: String,
}

/// `MergeRecordingsReq`: one of `by_session` (every recording of a session but the excluded)
/// or `by_ids` (these recordings of a room).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MergeRecordingsReq {
    pub by_session: Option<MergeBySession>,
    pub by_ids: Option<MergeByIds>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MergeBySession {
    pub room_sid: String,
    pub exclude_recording_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MergeByIds {
    pub room_id: String,
    pub recording_ids: Vec<String>,
}

/// `UpdateRecordingMetadataReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct UpdateRecordingMetadataReq {
    pub record_id: String,
    pub metadata: Option<RecordingMetadata>,
}

/// Body of `RecordingInfoRes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecordingInfoBody {
    pub recording_info: Option<RecordingInfo>,
    pub room_info: Option<PastRoomInfo>,
}

json::proto_enum! {
    /// `RoomArtifactType`.
    RoomArtifactType {
        UnknownArtifact = 0 => "UNKNOWN_ARTIFACT",
        MeetingAnalytics = 1 => "MEETING_ANALYTICS",
        MeetingSummary = 2 => "MEETING_SUMMARY",
        MeetingSummaryUsage = 3 => "MEETING_SUMMARY_USAGE",
        SpeechTranscription = 4 => "SPEECH_TRANSCRIPTION",
        SpeechTranscriptionUsage = 5 => "SPEECH_TRANSCRIPTION_USAGE",
        SynthesizedSpeechUsage = 6 => "SYNTHESIZED_SPEECH_USAGE",
        ChatTranslationUsage = 7 => "CHAT_TRANSLATION_USAGE",
        AiTextChatInteractionUsage = 8 => "AI_TEXT_CHAT_INTERACTION_USAGE",
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
    pub room_ids: Vec<String>,
    pub room_sid: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<RoomArtifactType>,
    #[serde(deserialize_with = "int")]
    pub from: u32,
    #[serde(deserialize_with = "int")]
    pub limit: u32,
    pub order_by: String,
}

/// `ArtifactInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ArtifactInfo {
    pub artifact_id: String,
    pub room_id: String,
    #[serde(rename = "type")]
    pub kind: RoomArtifactType,
    pub created: String,
    /// `RoomArtifactMetadata` as stored.
    pub metadata: Option<serde_json::Value>,
}

/// `FetchArtifactsResult`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FetchArtifactsResult {
    #[serde(serialize_with = "int64_string")]
    pub total_artifacts: i64,
    #[serde(serialize_with = "int64_string")]
    pub from: u64,
    #[serde(serialize_with = "int64_string")]
    pub limit: u64,
    pub order_by: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<RoomArtifactType>,
    pub artifacts_list: Vec<ArtifactInfo>,
}

/// `ArtifactInfoReq`, `DeleteArtifactReq` and `GetArtifactDownloadTokenReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ArtifactIdReq {
    pub artifact_id: String,
}

/// Body of `ArtifactInfoRes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ArtifactInfoBody {
    pub artifact_info: Option<ArtifactInfo>,
    pub room_info: Option<PastRoomInfo>,
}

/// `FetchAnalyticsReq` (Plug-N-Meet's older API over `MEETING_ANALYTICS` artifacts).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FetchAnalyticsReq {
    pub room_ids: Vec<String>,
    #[serde(deserialize_with = "int")]
    pub from: u32,
    #[serde(deserialize_with = "int")]
    pub limit: u32,
    pub order_by: String,
}

/// `AnalyticsInfo`: `file_id` is the artifact id.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AnalyticsInfo {
    pub room_id: String,
    pub file_id: String,
    pub file_name: String,
    /// Bytes.
    pub file_size: f64,
    #[serde(serialize_with = "int64_string")]
    pub creation_time: i64,
}

/// `FetchAnalyticsResult`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FetchAnalyticsResult {
    #[serde(serialize_with = "int64_string")]
    pub total_analytics: i64,
    pub from: u32,
    pub limit: u32,
    pub order_by: String,
    pub analytics_list: Vec<AnalyticsInfo>,
}

/// `DeleteAnalyticsReq` and `GetAnalyticsDownloadTokenReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AnalyticsFileReq {
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
