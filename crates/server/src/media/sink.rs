//! A sink the worker feeds (a recorder, a broadcaster): the SFU's sink outputs go into its
//! bounded queue without the worker ever waiting, and a track is never lost to a full queue
//! before the sink has heard of it.

use std::collections::HashMap;

use tokio::sync::mpsc;

use crate::recorder::{SinkInput, SinkPacket, SinkTrack, SinkTrackId};

/// A sink attached to a room.
pub(super) struct SinkConn {
    pub(super) room_id: String,
    tx: mpsc::Sender<SinkInput>,
    /// Tracks announced while the sink's queue was full: each goes out before its next
    /// packet, so that the sink never gets a packet of a track it was not told of.
    unsent: HashMap<SinkTrackId, SinkTrack>,
}

impl SinkConn {
    pub(super) fn new(room_id: String, tx: mpsc::Sender<SinkInput>) -> Self {
        Self {
            room_id,
            tx,
            unsent: HashMap::new(),
        }
    }

    /// The SFU announced a track; it waits here while the queue is full.
    pub(super) fn announce(&mut self, track: SinkTrack) {
        if let Err(mpsc::error::TrySendError::Full(SinkInput::Track(t))) =
            self.tx.try_send(SinkInput::Track(track))
        {
            self.unsent.insert(t.id, t);
        }
    }

    /// Queues a packet, after its track's announcement if that is still waiting, without
    /// ever waiting. Returns false if it was dropped (the sink does not keep up).
    pub(super) fn send(&mut self, packet: SinkPacket) -> bool {
        // Almost always empty: then no lookup per packet.
        let waiting = if self.unsent.is_empty() {
            None
        } else {
            self.unsent.remove(&packet.track)
        };
        if let Some(t) = waiting {
            if let Err(mpsc::error::TrySendError::Full(SinkInput::Track(t))) =
                self.tx.try_send(SinkInput::Track(t))
            {
                self.unsent.insert(t.id, t);
                return false;
            }
        }
        self.tx.try_send(SinkInput::Packet(packet)).is_ok()
    }

    /// The track is gone. A full queue must not lose the end of a track: this one waits in a
    /// task rather than in the worker.
    pub(super) fn end(&mut self, track: SinkTrackId) {
        self.unsent.remove(&track);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(SinkInput::TrackEnded(track)).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::SinkCodec;

    fn track(id: u32) -> SinkTrack {
        SinkTrack {
            id: SinkTrackId(id),
            track_sid: format!("TR_{id}"),
            participant_identity: "alice".into(),
            video: true,
            codec: SinkCodec::Vp8,
            clock_rate: 90_000,
        }
    }

    fn packet(id: u32, seq: u16) -> SinkPacket {
        SinkPacket {
            track: SinkTrackId(id),
            seq,
            timestamp: 0,
            marker: true,
            payload: vec![1, 2, 3],
        }
    }

    #[test]
    fn a_sink_whose_queue_was_full_is_told_of_a_track_before_its_first_packet() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut sink = SinkConn::new("room".into(), tx);
        sink.announce(track(1));
        // The queue is full: track 2's announcement waits, and its packet is dropped.
        sink.announce(track(2));
        assert!(!sink.send(packet(2, 1)));
        assert!(matches!(rx.try_recv(), Ok(SinkInput::Track(t)) if t.id == SinkTrackId(1)));
        // Room for one: the announcement goes, the packet does not fit behind it.
        assert!(!sink.send(packet(2, 2)));
        assert!(matches!(rx.try_recv(), Ok(SinkInput::Track(t)) if t.id == SinkTrackId(2)));
        assert!(sink.send(packet(2, 3)));
        assert!(matches!(rx.try_recv(), Ok(SinkInput::Packet(p)) if p.seq == 3));
        assert!(sink.unsent.is_empty());
    }
}
