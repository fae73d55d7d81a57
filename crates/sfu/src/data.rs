//! Data packets: what a participant may send, how the room stamps a relayed packet with its
//! real sender, and the packets the server itself sends.

// The protocol deprecates DataPacket.kind and UserPacket's sender and destination fields, but
// clients still read them (livekit-client reports `kind` to apps), so they are kept true.
#![allow(deprecated)]

use livekit_protocol as lk;
use prost::Message as _;

use crate::io::{PRIVATE_TOPIC, SERVER_TOPIC};

/// Whether a participant may send this data packet. Participants speak for themselves: user
/// messages, chat, RPC, data streams and encrypted packets. What only a server says (active
/// speakers, transcriptions, SIP DTMF, metrics) and the server's own topic are refused, so
/// that no participant can put words in the server's mouth.
pub(crate) fn participant_may_send(packet: &lk::DataPacket) -> Result<(), &'static str> {
    use lk::data_packet::Value as V;
    match &packet.value {
        Some(V::User(u)) if u.topic.as_deref() == Some(SERVER_TOPIC) => {
            Err("a participant may not send on the server's topic")
        }
        Some(
            V::User(_)
            | V::ChatMessage(_)
            | V::RpcRequest(_)
            | V::RpcAck(_)
            | V::RpcResponse(_)
            | V::StreamHeader(_)
            | V::StreamChunk(_)
            | V::StreamTrailer(_)
            | V::EncryptedPacket(_),
        ) => Ok(()),
        Some(V::Speaker(_)) => Err("speaker updates come from the server"),
        Some(V::Transcription(_)) => Err("transcriptions come from the server"),
        Some(V::SipDtmf(_)) => Err("SIP DTMF comes from the server"),
        Some(V::Metrics(_)) => Err("metrics are not relayed"),
        None => Err("empty data packet"),
    }
}

/// A packet a participant sent, ready to relay.
pub(crate) struct Relayed {
    /// The packet as subscribers get it.
    pub bytes: Vec<u8>,
    /// The identities it is for (empty: everyone else).
    pub destinations: Vec<String>,
    /// A user packet's topic.
    pub topic: Option<String>,
}

/// Why a participant's data packet is not relayed.
pub(crate) enum Dropped {
    Undecodable,
    /// What participants may not send (see [`participant_may_send`]).
    NotAllowed(&'static str),
}

/// Decodes a participant's data packet, refuses what participants may not send, and stamps it
/// with its real sender: the sender is who the room says it is, not who the packet says.
///
/// `denied_topics` are user-packet topics this sender may not use (an admin's chat lock).
pub(crate) fn relay(
    data: &[u8],
    reliable: bool,
    identity: &str,
    sid: &str,
    denied_topics: &[String],
) -> Result<Relayed, Dropped> {
    let mut packet = lk::DataPacket::decode(data).map_err(|_| Dropped::Undecodable)?;
    participant_may_send(&packet).map_err(Dropped::NotAllowed)?;
    if let Some(lk::data_packet::Value::User(u)) = &packet.value {
        if u.topic.as_ref().is_some_and(|t| denied_topics.contains(t)) {
            return Err(Dropped::NotAllowed(
                "the topic is locked for this participant",
            ));
        }
    }
    packet.participant_identity = identity.to_owned();
    packet.participant_sid = sid.to_owned();
    // livekit-client still reports `kind` to apps.
    packet.kind = if reliable {
        lk::data_packet::Kind::Reliable as i32
    } else {
        lk::data_packet::Kind::Lossy as i32
    };
    let mut destinations = packet.destination_identities.clone();
    let mut private = false;
    let mut topic = None;
    if let Some(lk::data_packet::Value::User(u)) = packet.value.as_mut() {
        topic = u.topic.clone();
        u.participant_identity = identity.to_owned();
        u.participant_sid = sid.to_owned();
        if destinations.is_empty() {
            destinations = u.destination_identities.clone();
        }
        private = u.topic.as_deref() == Some(PRIVATE_TOPIC);
    }
    if private && destinations.is_empty() {
        return Err(Dropped::NotAllowed(
            "a private message names its recipients",
        ));
    }
    Ok(Relayed {
        bytes: packet.encode_to_vec(),
        destinations,
        topic,
    })
}

/// A reliable user packet from the server.
pub(crate) fn from_server(
    payload: Vec<u8>,
    topic: Option<String>,
    destination_identities: &[String],
) -> Vec<u8> {
    let packet = lk::DataPacket {
        kind: lk::data_packet::Kind::Reliable as i32,
        destination_identities: destination_identities.to_vec(),
        value: Some(lk::data_packet::Value::User(lk::UserPacket {
            payload,
            topic,
            destination_identities: destination_identities.to_vec(),
            ..Default::default()
        })),
        ..Default::default()
    };
    packet.encode_to_vec()
}
