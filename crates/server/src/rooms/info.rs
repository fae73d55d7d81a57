//! A live room's facts: what every part of the server may know about it (never a secret).

use std::fmt;

use rand::distributions::{Alphanumeric, DistString};
use zeroize::Zeroizing;

use enclave_proto::ids::{RoomId, SessionId};
use enclave_proto::room::RoomMetadata;

/// The shared secret of a server-generated-key E2EE room: 32 characters from `0-9A-Za-z`
/// drawn from the OS CSPRNG (about 190 bits). It has no `Display`, its `Debug` is redacted, and
/// its memory is zeroed on drop.
pub struct RoomSecret(Zeroizing<String>);

impl RoomSecret {
    /// Generates a new secret.
    pub fn generate() -> Self {
        Self(Zeroizing::new(
            Alphanumeric.sample_string(&mut rand::rngs::OsRng, 32),
        ))
    }

    /// The secret, for delivery to an authenticated participant of its room.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RoomSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RoomSecret(<redacted>)")
    }
}

/// Facts about a session fixed at creation.
#[derive(Debug)]
pub struct RoomInfo {
    pub room_id: RoomId,
    pub sid: SessionId,
    pub db_id: i64,
    pub title: String,
    pub webhook_url: String,
    /// Unix seconds.
    pub created: i64,
    pub empty_timeout: u32,
    pub max_participants: u32,
    pub metadata: RoomMetadata,
    /// `metadata` as the JSON string replies carry.
    pub metadata_json: String,
    /// A server-generated-key E2EE room: the owner draws its key epochs.
    pub server_key: bool,
}

/// A feature that needs the server to see or hear the media (or chat) in clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMediaFeature {
    CloudRecording,
    AutoCloudRecording,
    RtmpBroadcast,
    Transcription,
    SpeechTranslation,
    MeetingSummarization,
    SipDialIn,
    Ingress,
}

impl ServerMediaFeature {
    fn name(self) -> &'static str {
        match self {
            Self::CloudRecording => "cloud recording",
            Self::AutoCloudRecording => "automatic cloud recording",
            Self::RtmpBroadcast => "RTMP broadcasting",
            Self::Transcription => "transcription",
            Self::SpeechTranslation => "speech translation",
            Self::MeetingSummarization => "meeting summarization",
            Self::SipDialIn => "SIP dial-in",
            Self::Ingress => "ingress",
        }
    }
}

/// Why the server refuses to start a feature in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FeatureRefused {
    /// The room is end-to-end encrypted: the server cannot see the media, so it will not pretend
    /// to record, broadcast or transcribe it.
    #[error("{} is not available in an end-to-end encrypted room: the server cannot see its media", .0.name())]
    EndToEndEncrypted(ServerMediaFeature),
    /// The room was created with the feature off.
    #[error("{} is not enabled for this room", .0.name())]
    Disabled(ServerMediaFeature),
}

impl RoomInfo {
    /// The room's features as created (`None` when the request gave none).
    pub fn features(&self) -> Option<&enclave_proto::room::RoomCreateFeatures> {
        self.metadata.room_features.as_ref()
    }

    /// Whether the session is end-to-end encrypted (either key model).
    pub fn is_e2ee(&self) -> bool {
        self.metadata
            .room_features
            .as_ref()
            .is_some_and(|f| f.is_e2ee())
    }

    /// Whether a participant whose token asks to be hidden is hidden. Never in an end-to-end
    /// encrypted room: whoever receives its media can read it, so everyone who could hold the
    /// key is shown to the others (as a silent observer), and the verification code cannot be
    /// shared with an eavesdropper nobody sees.
    pub fn effective_hidden(&self, asked: bool) -> bool {
        asked && !self.is_e2ee()
    }

    /// What the media worker needs to know to create this session's media core.
    pub fn media_facts(&self) -> crate::media::RoomFacts {
        crate::media::RoomFacts {
            room_id: self.room_id.to_string(),
            sid: self.sid.to_string(),
            empty_timeout: self.empty_timeout,
            max_participants: self.max_participants,
            e2ee: self
                .metadata
                .room_features
                .as_ref()
                .is_some_and(|f| f.is_e2ee()),
        }
    }

    /// The one gate every endpoint that would start a server-side media feature goes through.
    /// E2EE is checked first and independently of the feature flags, so no combination of
    /// flags can open it in an encrypted room.
    pub fn permit(&self, feature: ServerMediaFeature) -> Result<(), FeatureRefused> {
        let f = self.metadata.room_features.clone().unwrap_or_default();
        if f.is_e2ee() {
            return Err(FeatureRefused::EndToEndEncrypted(feature));
        }
        let rec = f.recording_features.clone().unwrap_or_default();
        let insights = f.insights_features.clone().unwrap_or_default();
        let transcription = insights.transcription_features.clone().unwrap_or_default();
        let summary = insights
            .ai_features
            .clone()
            .unwrap_or_default()
            .meeting_summarization_features
            .unwrap_or_default();
        let allowed = match feature {
            ServerMediaFeature::CloudRecording => f.allows_cloud_recording(),
            ServerMediaFeature::AutoCloudRecording => {
                f.allows_cloud_recording() && rec.enable_auto_cloud_recording
            }
            ServerMediaFeature::RtmpBroadcast => f.allows_rtmp(),
            ServerMediaFeature::Transcription => insights.is_allow && transcription.is_allow,
            ServerMediaFeature::SpeechTranslation => {
                insights.is_allow && transcription.is_allow && transcription.is_allow_translation
            }
            ServerMediaFeature::MeetingSummarization => insights.is_allow && summary.is_allow,
            ServerMediaFeature::SipDialIn => {
                f.sip_dial_in_features.as_ref().is_some_and(|s| s.is_allow)
            }
            ServerMediaFeature::Ingress => f.ingress_features.as_ref().is_some_and(|s| s.is_allow),
        };
        if allowed {
            Ok(())
        } else {
            Err(FeatureRefused::Disabled(feature))
        }
    }
}
