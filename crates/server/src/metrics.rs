//! Prometheus metrics.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    /// Connections closed at once because the server or their address had too many open.
    pub http_connections_refused: Counter,
    /// Requests answered 429 because their address failed credentials too often.
    pub credential_failures_throttled: Counter,
    pub rooms_active: Gauge,
    pub rooms_created: Counter,
    pub participants: Gauge,
    pub webhooks: Family<ResultLabels, Counter>,
    /// Running recorders and RTMP broadcasts, by job (`recording`, `rtmp`).
    pub recorders_running: Family<JobLabels, Gauge>,
    /// Recorder and broadcast ends, by job and result (`ok`, `failed`).
    pub recorders_finished: Family<JobResultLabels, Counter>,
    /// Packets dropped because a recorder fell behind.
    pub sink_packets_dropped: Counter,
    /// Reliable data messages a subscriber's full data channel could not take.
    pub reliable_data_dropped: Counter,
    /// Participants removed for breaking the signalling rules.
    pub participants_evicted: Counter,
    /// Rooms ended because their media core failed.
    pub room_failures: Counter,
    /// Frames a recorder or broadcast repeated because its compositor was late, by job.
    pub recorder_frames_repeated: Family<JobLabels, Counter>,
    /// Ticks (frame and audio) a recorder or broadcast never wrote because its encoder fell
    /// far behind real time, by job.
    pub recorder_ticks_dropped: Family<JobLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub job: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobResultLabels {
    pub job: &'static str,
    pub result: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("enclave");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            http_requests.clone(),
        );
        let http_connections_refused = Counter::default();
        registry.register(
            "http_connections_refused",
            "Connections closed at once because too many were open (in all or from one address)",
            http_connections_refused.clone(),
        );
        let credential_failures_throttled = Counter::default();
        registry.register(
            "credential_failures_throttled",
            "Requests answered 429 because their address presented bad credentials too often",
            credential_failures_throttled.clone(),
        );
        let rooms_active = Gauge::default();
        registry.register(
            "rooms_active",
            "Rooms with a live session",
            rooms_active.clone(),
        );
        let rooms_created = Counter::default();
        registry.register("rooms_created", "Sessions created", rooms_created.clone());
        let participants = Gauge::default();
        registry.register(
            "participants",
            "Participants in live rooms",
            participants.clone(),
        );
        let webhooks = Family::<ResultLabels, Counter>::default();
        registry.register("webhooks", "Webhook deliveries by result", webhooks.clone());
        let recorders_running = Family::<JobLabels, Gauge>::default();
        registry.register(
            "recorders_running",
            "Running cloud recorders and RTMP broadcasts",
            recorders_running.clone(),
        );
        let recorders_finished = Family::<JobResultLabels, Counter>::default();
        registry.register(
            "recorders_finished",
            "Cloud recorders and RTMP broadcasts that ended, by result",
            recorders_finished.clone(),
        );
        let sink_packets_dropped = Counter::default();
        registry.register(
            "sink_packets_dropped",
            "Media packets dropped because a recorder or broadcaster fell behind",
            sink_packets_dropped.clone(),
        );
        let reliable_data_dropped = Counter::default();
        registry.register(
            "reliable_data_dropped",
            "Reliable data messages lost because a subscriber's data channel was full",
            reliable_data_dropped.clone(),
        );
        let participants_evicted = Counter::default();
        registry.register(
            "participants_evicted",
            "Participants removed for breaking the signalling rules (floods, limits)",
            participants_evicted.clone(),
        );
        let room_failures = Counter::default();
        registry.register(
            "room_failures",
            "Rooms ended because their media core failed (a bug: see the error log)",
            room_failures.clone(),
        );
        let recorder_frames_repeated = Family::<JobLabels, Counter>::default();
        registry.register(
            "recorder_frames_repeated",
            "Frames repeated because the recorder's compositor could not keep up, by job",
            recorder_frames_repeated.clone(),
        );
        let recorder_ticks_dropped = Family::<JobLabels, Counter>::default();
        registry.register(
            "recorder_ticks_dropped",
            "Frames and audio never written because the recorder's encoder fell behind, by job",
            recorder_ticks_dropped.clone(),
        );
        Self {
            registry,
            http_requests,
            http_connections_refused,
            credential_failures_throttled,
            rooms_active,
            rooms_created,
            participants,
            webhooks,
            recorders_running,
            recorders_finished,
            sink_packets_dropped,
            reliable_data_dropped,
            participants_evicted,
            room_failures,
            recorder_frames_repeated,
            recorder_ticks_dropped,
        }
    }
}

impl Metrics {
    /// Counts one webhook delivery outcome.
    pub fn webhook(&self, result: &'static str) {
        self.webhooks.get_or_create(&ResultLabels { result }).inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
