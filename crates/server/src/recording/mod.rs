//! Running cloud recorders and RTMP broadcasts: at most one of each per room.
//!
//! Starting one attaches a sink to the room's SFU core (which refuses it in an end-to-end
//! encrypted room, whatever was checked before) and starts a [`Pipeline`] on its packets. A
//! monitor task per job forwards the pipeline's keyframe requests to the SFU, and when the job
//! ends (stopped, the room ended, or a failure) it detaches the sink, tells everyone in the
//! room, sends the webhooks and, for a recording, stores the finished file's row.
//!
//! State changes reach the room as server data packets on [`SYSTEM_TOPIC`](crate::media::SYSTEM_TOPIC):
//! `{"type":"RECORDER_STATE","is_recording":…,"is_active_rtmp":…}`, and failures as
//! `{"type":"SYSTEM_NOTIFICATION","msg":…,"notification_type":"error"}`.

pub mod merge;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use enclave_proto::browser::ServerMessage;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use enclave_sfu::SinkRefused;

use crate::clock::unix_now;
use crate::media::Media;
use crate::metrics::{JobLabels, JobResultLabels, Metrics};
use crate::recorder::pipeline::{Finished, Pipeline, PipelineConfig, PipelineError};
use crate::recorder::Target;
use crate::rooms::{FeatureRefused, RoomInfo, ServerMediaFeature};
use crate::store::{RecordingRow, Store};
use crate::webhook::{NotifyEvent, Webhooks};

/// Packets queued for a pipeline before the SFU starts dropping them.
const SINK_QUEUE: usize = 4096;

/// What a job produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    Recording,
    Rtmp,
}

impl Job {
    fn label(self) -> &'static str {
        match self {
            Job::Recording => "recording",
            Job::Rtmp => "rtmp",
        }
    }

    fn feature(self) -> ServerMediaFeature {
        match self {
            Job::Recording => ServerMediaFeature::CloudRecording,
            Job::Rtmp => ServerMediaFeature::RtmpBroadcast,
        }
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Job::Recording => "cloud recording",
            Job::Rtmp => "RTMP broadcast",
        })
    }
}

/// Why a job could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error(transparent)]
    Refused(#[from] FeatureRefused),
    #[error("the room's media refused the {job}: {reason}")]
    SinkRefused { job: Job, reason: SinkRefused },
    #[error("{0} is already running in this room")]
    AlreadyRunning(Job),
    #[error("{0} is not running in this room")]
    NotRunning(Job),
    #[error("this server runs without its media engine (rtc.enable is off)")]
    NoMedia,
    #[error("url: must be an rtmp:// or rtmps:// URL")]
    BadUrl,
    #[error("url: the RTMP host {0} could not be resolved")]
    UnresolvedTarget(String),
    #[error(
        "url: the RTMP host {0} is a loopback, private or link-local address; broadcasting \
         there needs recorder_info.rtmp_allow_private_targets"
    )]
    PrivateTarget(String),
    #[error("could not start the {job}: {source}")]
    Pipeline { job: Job, source: PipelineError },
    #[error("could not prepare the recording directory: {0}")]
    Io(#[from] std::io::Error),
}

/// Where an RTMP broadcast goes: the URL with the stream key appended as its last path
/// segment (how RTMP services expect it), unless the key is empty.
pub fn rtmp_target(url: &str, stream_key: &str) -> Result<String, RecorderError> {
    let url = url.trim();
    // Compared as bytes: slicing the text at a prefix's length could cut a UTF-8 character
    // (found by fuzzing).
    let ok = ["rtmp://", "rtmps://"].iter().any(|p| {
        url.len() > p.len() && url.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
    });
    if !ok || url.chars().any(char::is_whitespace) {
        return Err(RecorderError::BadUrl);
    }
    let key = stream_key.trim();
    if key.is_empty() {
        return Ok(url.to_owned());
    }
    Ok(format!("{}/{}", url.trim_end_matches('/'), key))
}

/// Refuses an RTMP target whose host is (or resolves to) an address on this machine or its
/// private networks, unless `allow_private`: otherwise any admin of any room could make the
/// server connect to services that are not meant to be reached from outside. (ffmpeg
/// resolves the name again; a name that changes its answer in between is not covered.)
pub async fn check_rtmp_host(url: &str, allow_private: bool) -> Result<(), RecorderError> {
    if allow_private {
        return Ok(());
    }
    let (host, port) = rtmp_host_port(url).ok_or(RecorderError::BadUrl)?;
    let lookup = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::net::lookup_host((host.clone(), port)),
    )
    .await;
    let addrs: Vec<std::net::SocketAddr> = match lookup {
        Ok(Ok(a)) => a.collect(),
        _ => return Err(RecorderError::UnresolvedTarget(host)),
    };
    if addrs.is_empty() {
        return Err(RecorderError::UnresolvedTarget(host));
    }
    if addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(RecorderError::PrivateTarget(host));
    }
    Ok(())
}

/// The host and port of an `rtmp(s)://[user@]host[:port]/…` URL.
pub(crate) fn rtmp_host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let default = if scheme.eq_ignore_ascii_case("rtmps") {
        443
    } else {
        1935
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default,
    };
    Some((host.to_owned(), port))
}

/// Whether an address is on the public internet: not loopback, private (RFC 1918, unique
/// local), link-local, shared (CGNAT), unspecified, multicast, broadcast or documentation.
pub fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8))
        }
    }
}

struct Running {
    stop: Option<oneshot::Sender<()>>,
}

/// The jobs of every room, and the services they use. Cheap to clone: every clone is the
/// same registry.
#[derive(Clone)]
pub struct Recorders {
    inner: Arc<Inner>,
}

struct Inner {
    running: Mutex<HashMap<(String, Job), Running>>,
    /// Jobs that have left `running` but are still storing their row and telling the room.
    finishing: std::sync::atomic::AtomicUsize,
    /// Where recordings come from; none: every job is refused.
    media: Option<Media>,
    /// `recording_files_path`.
    files: PathBuf,
    metrics: Arc<Metrics>,
    webhooks: Arc<Webhooks>,
    store: Arc<dyn Store>,
    /// Rooms with a merge of recordings running.
    merging: Mutex<std::collections::HashSet<String>>,
}

/// What the room is told of its jobs.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct RecorderState {
    pub is_recording: bool,
    pub is_active_rtmp: bool,
}

impl Recorders {
    /// The registry, recording from `media` into `files`.
    pub fn new(
        media: Option<Media>,
        files: PathBuf,
        metrics: Arc<Metrics>,
        webhooks: Arc<Webhooks>,
        store: Arc<dyn Store>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                running: Mutex::default(),
                finishing: Default::default(),
                media,
                files,
                metrics,
                webhooks,
                store,
                merging: Mutex::default(),
            }),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Job), Running>> {
        self.inner.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Which jobs run in a room.
    pub fn state(&self, room_id: &str) -> RecorderState {
        let m = self.map();
        RecorderState {
            is_recording: m.contains_key(&(room_id.to_owned(), Job::Recording)),
            is_active_rtmp: m.contains_key(&(room_id.to_owned(), Job::Rtmp)),
        }
    }

    /// Starts a job. `rtmp_url` is the full target (see [`rtmp_target`]) for [`Job::Rtmp`].
    pub async fn start(
        &self,
        info: &Arc<RoomInfo>,
        job: Job,
        rtmp_url: Option<String>,
    ) -> Result<(), RecorderError> {
        // The E2EE gate first: no flag, caller or path gets past it.
        info.permit(job.feature())?;
        let media = self.inner.media.clone().ok_or(RecorderError::NoMedia)?;
        let target = match job {
            Job::Rtmp => Target::Rtmp {
                url: rtmp_url.ok_or(RecorderError::BadUrl)?,
            },
            Job::Recording => Target::File {
                path: std::path::PathBuf::new(),
            },
        };
        let key = (info.room_id.to_string(), job);
        {
            let mut m = self.map();
            if m.contains_key(&key) {
                return Err(RecorderError::AlreadyRunning(job));
            }
            m.insert(key.clone(), Running { stop: None });
        }
        match self.launch(&media, info, job, target).await {
            Ok(stop) => {
                if let Some(r) = self.map().get_mut(&key) {
                    r.stop = Some(stop);
                }
                Ok(())
            }
            Err(e) => {
                self.map().remove(&key);
                Err(e)
            }
        }
    }

    async fn launch(
        &self,
        media: &Media,
        info: &Arc<RoomInfo>,
        job: Job,
        target: Target,
    ) -> Result<oneshot::Sender<()>, RecorderError> {
        let started = unix_now();
        let (record_id, rel_path, target) = match target {
            Target::File { .. } => {
                let record_id = format!("{}-{}", info.sid, unix_millis());
                let rel = format!("{}/{record_id}.mp4", info.sid);
                let path = self.inner.files.join(&rel);
                if let Some(dir) = path.parent() {
                    tokio::fs::create_dir_all(dir).await?;
                }
                (record_id, rel, Target::File { path })
            }
            t @ Target::Rtmp { .. } => (String::new(), String::new(), t),
        };
        let (tx, rx) = mpsc::channel(SINK_QUEUE);
        let sink = media
            .add_sink(info.media_facts(), tx)
            .await
            .map_err(|reason| RecorderError::SinkRefused { job, reason })?;
        let (kf_tx, mut kf_rx) = mpsc::unbounded_channel::<String>();
        let cfg = PipelineConfig {
            work_dir: self.inner.files.join(".work"),
            ..PipelineConfig::default()
        };
        let mut pipeline = match Pipeline::start(cfg, target, rx, kf_tx) {
            Ok(p) => p,
            Err(source) => {
                media.remove_sink(sink);
                return Err(RecorderError::Pipeline { job, source });
            }
        };
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let label = job.label();
        self.inner
            .metrics
            .recorders_running
            .get_or_create(&JobLabels { job: label })
            .inc();
        tracing::info!(job = label, record_id, "started");
        announce(self, info);
        let webhooks = self.inner.webhooks.room_queue(&info.webhook_url);
        let event = match job {
            Job::Recording => "start_recording",
            Job::Rtmp => "start_rtmp",
        };
        if let Some(q) = &webhooks {
            q.send(recording_event(event, info, &record_id, "", None));
        }

        let this = self.clone();
        let media = media.clone();
        let info = info.clone();
        let span = tracing::info_span!(parent: None, "recorder", room_id = %info.room_id, sid = %info.sid, job = label);
        tokio::spawn(
            async move {
                let mut stopping = false;
                let result = loop {
                    tokio::select! {
                        r = &mut stop_rx, if !stopping => {
                            // Asked to stop, or the registry entry is gone: finish either way.
                            let _ = r;
                            stopping = true;
                            pipeline.request_stop();
                        }
                        Some(track) = kf_rx.recv() => media.sink_keyframe(sink, &track),
                        r = pipeline.wait() => break r,
                    }
                };
                media.remove_sink(sink);
                this.inner.finishing.fetch_add(1, Ordering::SeqCst);
                this.map().remove(&(info.room_id.to_string(), job));
                this.inner
                    .metrics
                    .recorders_running
                    .get_or_create(&JobLabels { job: label })
                    .dec();
                finish(
                    &this, &info, job, &record_id, &rel_path, started, result, webhooks,
                )
                .await;
                this.inner.finishing.fetch_sub(1, Ordering::SeqCst);
            }
            .instrument(span),
        );
        Ok(stop_tx)
    }

    /// Waits (at most `limit`) until no job runs: at shutdown, after the rooms were ended,
    /// so that recordings are finalised rather than cut off.
    pub async fn finished(&self, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let running = self.map().len() + self.inner.finishing.load(Ordering::SeqCst);
            if running == 0 {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    running,
                    "recorders still running at shutdown; giving up on them"
                );
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Stops a job; it finishes in the background (the file is finalised, then stored).
    pub fn stop(&self, room_id: &str, job: Job) -> Result<(), RecorderError> {
        let mut m = self.map();
        let r = m
            .get_mut(&(room_id.to_owned(), job))
            .ok_or(RecorderError::NotRunning(job))?;
        match r.stop.take() {
            Some(tx) => {
                let _ = tx.send(());
                Ok(())
            }
            // Starting, or already stopping.
            None => Err(RecorderError::NotRunning(job)),
        }
    }
}

fn unix_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Tells everyone in the room which jobs run now.
fn announce(recorders: &Recorders, info: &RoomInfo) {
    let state = recorders.state(info.room_id.as_str());
    send_system(
        recorders,
        info,
        ServerMessage::RecorderState {
            is_recording: state.is_recording,
            is_active_rtmp: state.is_active_rtmp,
        },
    );
}

fn send_system(recorders: &Recorders, info: &RoomInfo, msg: ServerMessage) {
    if let Some(media) = &recorders.inner.media {
        media.send_system(info.room_id.as_str(), &msg, Vec::new());
    }
}

fn recording_event(
    event: &str,
    info: &RoomInfo,
    record_id: &str,
    file_path: &str,
    done: Option<(&str, f64)>,
) -> NotifyEvent {
    let mut ev = NotifyEvent::for_room(event, info, 0, None);
    let (msg, size) = done.unwrap_or(("", 0.0));
    ev.recording_info = Some(crate::webhook::NotifyRecording {
        record_id: record_id.to_owned(),
        recorder_id: "enclave".to_owned(),
        recorder_msg: msg.to_owned(),
        file_path: file_path.to_owned(),
        file_size: size,
    });
    ev
}

#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename these
async fn finish(
    recorders: &Recorders,
    info: &Arc<RoomInfo>,
    job: Job,
    record_id: &str,
    rel_path: &str,
    started: i64,
    result: Result<Finished, PipelineError>,
    webhooks: Option<crate::webhook::WebhookQueue>,
) {
    let label = job.label();
    let metrics = &recorders.inner.metrics;
    announce(recorders, info);
    let end_event = match job {
        Job::Recording => "end_recording",
        Job::Rtmp => "end_rtmp",
    };
    match result {
        Ok(done) => {
            metrics
                .recorders_finished
                .get_or_create(&JobResultLabels {
                    job: label,
                    result: "ok",
                })
                .inc();
            let size_mb = done.bytes as f64 / (1024.0 * 1024.0);
            let labels = JobLabels { job: label };
            metrics
                .recorder_frames_repeated
                .get_or_create(&labels)
                .inc_by(done.frames_repeated);
            metrics
                .recorder_ticks_dropped
                .get_or_create(&labels)
                .inc_by(done.ticks_dropped);
            tracing::info!(
                job = label,
                record_id,
                seconds = done.duration.as_secs_f64(),
                size_mb,
                frames_repeated = done.frames_repeated,
                ticks_dropped = done.ticks_dropped,
                "finished"
            );
            if let Some(q) = &webhooks {
                q.send(recording_event(
                    end_event,
                    info,
                    record_id,
                    "",
                    Some(("stopped", 0.0)),
                ));
            }
            if job == Job::Recording {
                let row = RecordingRow {
                    record_id: record_id.to_owned(),
                    room_id: info.room_id.to_string(),
                    room_sid: info.sid.to_string(),
                    recorder_id: "enclave".to_owned(),
                    file_path: rel_path.to_owned(),
                    size_mb,
                    created: started,
                    room_created: info.created,
                    metadata: None,
                };
                if let Err(e) = recorders.inner.store.insert_recording(row).await {
                    tracing::error!(error = %e, record_id, "could not store the recording's row");
                    return;
                }
                if let Some(q) = &webhooks {
                    q.send(recording_event(
                        "recording_proceeded",
                        info,
                        record_id,
                        rel_path,
                        Some((&finished_msg(&done), (size_mb * 100.0).round() / 100.0)),
                    ));
                }
            }
        }
        Err(e) => {
            metrics
                .recorders_finished
                .get_or_create(&JobResultLabels {
                    job: label,
                    result: "failed",
                })
                .inc();
            tracing::warn!(job = label, record_id, error = %e, "failed");
            send_system(
                recorders,
                info,
                ServerMessage::SystemNotification {
                    id: None,
                    notification_type: "error".to_owned(),
                    msg: format!("{job} failed: {}", e.public_message()),
                    with_sound: None,
                    sent_at: None,
                },
            );
            if let Some(q) = &webhooks {
                q.send(recording_event(
                    end_event,
                    info,
                    record_id,
                    "",
                    Some((&format!("failed: {}", e.public_message()), 0.0)),
                ));
            }
        }
    }
}

/// `recorder_msg` of `recording_proceeded`: what was recorded and whether the machine kept up.
fn finished_msg(done: &Finished) -> String {
    format!(
        "recording finished: {:.2} s, {} frames repeated, {} dropped",
        done.duration.as_secs_f64(),
        done.frames_repeated,
        done.ticks_dropped
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain_room() -> RoomInfo {
        let p = enclave_proto::room::prepare_create(
            br#"{"room_id":"r1","metadata":{"room_title":"T","room_features":{}}}"#,
            &Default::default(),
            0,
        )
        .unwrap();
        RoomInfo {
            room_id: p.room_id.clone(),
            sid: enclave_proto::ids::SessionId::new_v4(),
            db_id: 1,
            title: "T".into(),
            webhook_url: String::new(),
            created: 1_700_000_000,
            empty_timeout: 120,
            max_participants: 0,
            metadata: p.metadata,
            metadata_json: "{}".into(),
            server_key: false,
        }
    }

    #[test]
    fn recording_webhooks_carry_the_recording_as_plug_n_meet_names_it() {
        let info = plain_room();
        let done = recording_event(
            "recording_proceeded",
            &info,
            "RM_x-1",
            "RM_x/RM_x-1.mp4",
            Some(("recording finished", 12.34)),
        );
        let v = serde_json::to_value(&done).unwrap();
        assert_eq!(v["event"], "recording_proceeded");
        assert_eq!(v["room"]["room_id"], "r1");
        assert_eq!(v["recording_info"]["record_id"], "RM_x-1");
        assert_eq!(v["recording_info"]["file_path"], "RM_x/RM_x-1.mp4");
        assert_eq!(v["recording_info"]["file_size"], 12.34);
        assert_eq!(v["recording_info"]["recorder_msg"], "recording finished");
        // A start carries no file yet: empty fields are omitted, as protojson does.
        let start = serde_json::to_value(recording_event(
            "start_recording",
            &info,
            "RM_x-1",
            "",
            None,
        ))
        .unwrap();
        let rec = start["recording_info"].as_object().unwrap();
        assert!(
            !rec.contains_key("file_path") && !rec.contains_key("file_size"),
            "{start}"
        );
        assert!(start.get("participant").is_none(), "{start}");
    }

    #[test]
    fn the_finished_message_says_whether_the_machine_kept_up() {
        let done = Finished {
            path: None,
            duration: std::time::Duration::from_millis(10_040),
            frames_repeated: 12,
            ticks_dropped: 0,
            bytes: 1,
        };
        assert_eq!(
            finished_msg(&done),
            "recording finished: 10.04 s, 12 frames repeated, 0 dropped"
        );
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["1.1.1.1", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn rtmp_hosts_and_ports_are_read_from_the_url() {
        let hp = rtmp_host_port;
        assert_eq!(
            hp("rtmp://a.example/live/k"),
            Some(("a.example".into(), 1935))
        );
        assert_eq!(
            hp("rtmps://a.example/live"),
            Some(("a.example".into(), 443))
        );
        assert_eq!(
            hp("rtmp://u:p@10.0.0.1:1936/x"),
            Some(("10.0.0.1".into(), 1936))
        );
        assert_eq!(hp("rtmp://[::1]:1935/x"), Some(("::1".into(), 1935)));
        assert_eq!(hp("rtmp://[fe80::1]/x"), Some(("fe80::1".into(), 1935)));
        assert_eq!(hp("rtmp:///x"), None);
        assert_eq!(hp("rtmp://h:port/x"), None);
    }

    #[tokio::test]
    async fn private_rtmp_targets_are_refused_unless_allowed() {
        for url in [
            "rtmp://127.0.0.1/live/k",
            "rtmp://localhost:1935/live",
            "rtmp://169.254.169.254/latest",
            "rtmp://[::1]/x",
            "rtmp://10.0.0.5/x",
        ] {
            assert!(
                matches!(
                    check_rtmp_host(url, false).await,
                    Err(RecorderError::PrivateTarget(_))
                ),
                "{url}"
            );
            assert!(
                check_rtmp_host(url, true).await.is_ok(),
                "{url} when allowed"
            );
        }
        assert!(matches!(
            check_rtmp_host("rtmp://no-such-host.invalid/x", false).await,
            Err(RecorderError::UnresolvedTarget(_))
        ));
        // A public address needs no lookup beyond itself.
        assert!(check_rtmp_host("rtmp://8.8.8.8/live", false).await.is_ok());
    }

    #[test]
    fn rtmp_targets_are_rtmp_urls_with_the_key_appended() {
        assert_eq!(
            rtmp_target("rtmp://live.example/app", "k1").unwrap(),
            "rtmp://live.example/app/k1"
        );
        assert_eq!(
            rtmp_target("RTMPS://live.example/app/", "k1").unwrap(),
            "RTMPS://live.example/app/k1"
        );
        assert_eq!(rtmp_target(" rtmp://h/app ", "").unwrap(), "rtmp://h/app");
        for bad in [
            "http://h/app",
            "rtmp://",
            "file:///etc/passwd",
            "rtmp://h/a b",
            "",
            // Multi-byte characters where the scheme's end would be.
            "\u{ad}\n<\u{ad}",
            "rtmpé://h/x",
            "ééééééé",
        ] {
            assert!(
                matches!(rtmp_target(bad, "k"), Err(RecorderError::BadUrl)),
                "{bad:?} is refused"
            );
        }
    }
}
