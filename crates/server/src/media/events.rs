//! What the media runtime tells the rest of the server about a room: [`MediaEvent`]s for
//! whoever started it (it knows nothing of room state), and counts in the metrics, both made
//! from the SFU core's events.

use enclave_sfu::Event;
use tokio::sync::mpsc;

use super::CHAT_TOPIC;
use crate::metrics::Metrics;

/// What the media server saw a participant do that attendance counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Started (true) or stopped speaking (the audio level header extension).
    Speaking(bool),
    /// A message on the chat, private-chat or reactions topic (the payload is never read).
    PublicChat,
    PrivateChat,
    Reaction,
}

/// What the media worker tells the rest of the server about a room's session. The worker
/// knows nothing of room state: whoever started it applies these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// A participant left the room's media (it left, was removed or timed out).
    ParticipantLeft {
        room_id: String,
        sid: String,
        identity: String,
    },
    /// The room's media failed and is gone; session `sid` of the room must end.
    RoomFailed { room_id: String, sid: String },
    /// What a participant did that attendance counts (speaking, chat, reactions).
    Activity {
        room_id: String,
        identity: String,
        activity: Activity,
    },
    /// A participant asks to change its own metadata and name (LiveKit's
    /// `UpdateParticipantMetadata`); [`super::Media::answer_metadata`] decides.
    MetadataRequested {
        room_id: String,
        identity: String,
        request_id: u32,
        metadata: String,
        name: String,
    },
    /// A track was published (`kind` = `AUDIO`/`VIDEO`) or is gone.
    Track {
        room_id: String,
        participant_sid: String,
        track_sid: String,
        kind: &'static str,
        published: bool,
    },
}

/// Reports one event of room `room_id`'s core: the rooms hear who left, what was published,
/// what attendance counts and what a participant asks; the metrics count the rest.
pub(super) fn report(
    room_id: &str,
    e: Event,
    events: &mpsc::UnboundedSender<MediaEvent>,
    metrics: &Metrics,
) {
    tracing::debug!(room_id, event = ?e, "media event");
    let room_id = room_id.to_owned();
    let event = match e {
        Event::ParticipantLeft { sid, identity, .. } => MediaEvent::ParticipantLeft {
            room_id,
            sid,
            identity,
        },
        Event::TrackPublished {
            sid,
            participant_sid,
            kind,
        } => MediaEvent::Track {
            room_id,
            participant_sid,
            track_sid: sid,
            kind: if kind == "audio" { "AUDIO" } else { "VIDEO" },
            published: true,
        },
        Event::TrackUnpublished {
            sid,
            participant_sid,
        } => MediaEvent::Track {
            room_id,
            participant_sid,
            track_sid: sid,
            kind: "",
            published: false,
        },
        Event::Speaking { identity, speaking } => MediaEvent::Activity {
            room_id,
            identity,
            activity: Activity::Speaking(speaking),
        },
        Event::MetadataRequested {
            identity,
            request_id,
            metadata,
            name,
        } => MediaEvent::MetadataRequested {
            room_id,
            identity,
            request_id,
            metadata,
            name,
        },
        Event::DataSent { identity, topic } => MediaEvent::Activity {
            room_id,
            identity,
            activity: match topic.as_str() {
                CHAT_TOPIC => Activity::PublicChat,
                enclave_sfu::PRIVATE_TOPIC => Activity::PrivateChat,
                _ => Activity::Reaction,
            },
        },
        Event::ReliableDataDropped { .. } => {
            metrics.reliable_data_dropped.inc();
            return;
        }
        Event::ParticipantEvicted { .. } => {
            metrics.participants_evicted.inc();
            return;
        }
    };
    let _ = events.send(event);
}
