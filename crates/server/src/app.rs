//! The composition root: the services every request and room shares, built once, and what
//! the rest of the server reports to them (room life, media events).

use std::sync::Arc;

use tracing::Instrument;

use enclave_proto::browser::ServerMessage;
use enclave_proto::ids::UserId;

use crate::clock::unix_now;
use crate::config::ServerConfig;
use crate::media::MediaEvent;
use crate::metrics::Metrics;
use crate::recording::Job;
use crate::rooms::core::EndReason;
use crate::rooms::{KeyEpoch, RoomInfo, RoomObserver, Rooms, SavedArtifact};
use crate::store::sqlite::SqliteStore;
use crate::store::ArtifactRow;
use crate::store::Store;
use crate::webhook::Webhooks;
use enclave_proto::history::RoomArtifactType;

/// Why the server did not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener or socket operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The HTTPS redirect port could not be bound.
    #[error("client.tls.http_redirect_port: cannot listen on {port}: {source}")]
    RedirectPort { port: u16, source: std::io::Error },
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The address seen from outside could not be learned (STUN).
    #[error("{0}")]
    ExternalIp(String),
    /// The media sockets could not be bound.
    #[error("cannot bind the media sockets: {0}")]
    MediaSockets(std::io::Error),
    /// The certificate could not be made, loaded or obtained.
    #[error("HTTPS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The serving task ended abnormally.
    #[error("the HTTP server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Services shared by every request and room.
pub struct App {
    pub config: ServerConfig,
    /// The keys of the tokens the server signs for itself.
    pub keys: crate::auth::TokenKeys,
    pub store: Arc<dyn Store>,
    pub rooms: Rooms,
    pub webhooks: Arc<Webhooks>,
    pub metrics: Arc<Metrics>,
    /// The embedded SFU, when configured.
    pub media: Option<crate::media::Media>,
    /// Running cloud recorders and RTMP broadcasts.
    pub recorders: crate::recording::Recorders,
    /// Failed credentials per address.
    pub throttle: crate::auth::throttle::FailureThrottle,
    /// HTTPS on the API port, when configured.
    pub tls: Option<Arc<crate::tls::Tls>>,
    /// Documents being put on whiteboards (plain rooms), one at a time.
    pub conversions: Arc<crate::convert::Jobs>,
}

impl App {
    /// Opens the store and builds the services.
    pub async fn new(config: ServerConfig) -> Result<Arc<Self>, StartError> {
        let store = SqliteStore::open(&config.database_path)?;
        // No session is live yet: files an earlier process kept for its sessions go.
        crate::uploads::remove_leftovers(&config.uploads_path).await;
        let stale = store.end_all_running(unix_now()).await?;
        if stale > 0 {
            tracing::warn!(
                sessions = stale,
                "sessions left running by an earlier process were marked ended"
            );
        }
        let metrics = Arc::new(Metrics::default());
        let webhooks = Arc::new(Webhooks::new(
            config.webhooks.clone(),
            config.api_key.clone(),
            config.api_secret.clone(),
            metrics.clone(),
        ));
        let config_budget = config.failure_budget;
        // The media worker knows nothing of room state; what rooms must hear comes back on
        // this channel and is applied below.
        let (media_events, mut media_rx) = tokio::sync::mpsc::unbounded_channel();
        let media = match config.media.clone() {
            Some(mut cfg) => Some({
                crate::media::stun::add_external_ip(&mut cfg)
                    .await
                    .map_err(StartError::ExternalIp)?;
                crate::media::Media::start(cfg, metrics.clone(), media_events)
                    .map_err(StartError::MediaSockets)?
            }),
            None => None,
        };
        // The local authority's certificate also names the addresses media is advertised on
        // (an address seen from outside, behind NAT, is one of them).
        let tls = match config.tls.clone() {
            Some(t) => {
                let ips = media
                    .as_ref()
                    .map(|m| m.advertised_ips())
                    .unwrap_or_default();
                Some(crate::tls::Tls::start(t, &ips)?)
            }
            None => None,
        };
        let store: Arc<dyn Store> = Arc::new(store);
        let recorders = crate::recording::Recorders::new(
            media.clone(),
            config.recording_files_path.clone(),
            metrics.clone(),
            webhooks.clone(),
            store.clone(),
        );
        let converter = crate::convert::Converter::default();
        if let Err(missing) = converter.tools_available() {
            // Whiteboard documents in plain rooms are refused with this reason until installed.
            tracing::warn!("whiteboard documents cannot be converted: {missing}");
        }
        let app = Arc::new(Self {
            keys: crate::auth::TokenKeys::derive(
                &config.api_secret,
                config.livekit.secret.as_deref(),
            ),
            config,
            store,
            rooms: Rooms::default(),
            webhooks,
            metrics,
            media,
            recorders,
            throttle: crate::auth::throttle::FailureThrottle::new(config_budget),
            tls,
            conversions: Arc::new(crate::convert::Jobs::new(converter, 1)),
        });
        let weak = Arc::downgrade(&app);
        tokio::spawn(async move {
            while let Some(e) = media_rx.recv().await {
                let Some(app) = weak.upgrade() else { break };
                app.on_media_event(e);
            }
        });
        Ok(app)
    }

    /// Applies what the media worker reports to the room state.
    fn on_media_event(&self, e: MediaEvent) {
        match e {
            MediaEvent::ParticipantLeft {
                room_id,
                sid,
                identity,
            } => {
                let (Some(room), Ok(user)) =
                    (self.rooms.get_str(&room_id), UserId::parse(&identity))
                else {
                    return;
                };
                tokio::spawn(async move {
                    let _ = room.leave(user, Some(sid)).await;
                });
            }
            MediaEvent::MetadataRequested {
                room_id,
                identity,
                request_id,
                metadata,
                name,
            } => {
                let (Some(room), Some(media)) = (self.rooms.get_str(&room_id), self.media.clone())
                else {
                    return;
                };
                tokio::spawn(async move {
                    let answer = match UserId::parse(&identity) {
                        Ok(user) => {
                            match room.own_update(user, metadata.clone(), name.clone()).await {
                                // Someone of the session: what the room kept of their request.
                                Ok(Ok(Some(kept))) => Ok(kept),
                                // A LiveKit token holder whose token lets it change its own.
                                Ok(Ok(None)) => Ok((metadata, name)),
                                Ok(Err(why)) => Err(why),
                                Err(_) => return,
                            }
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    if let Err(why) = &answer {
                        tracing::info!(room_id, identity, why, "metadata update refused");
                    }
                    media.answer_metadata(&room_id, &identity, request_id, answer);
                });
            }
            MediaEvent::Activity {
                room_id,
                identity,
                activity,
            } => {
                let (Some(room), Ok(user)) =
                    (self.rooms.get_str(&room_id), UserId::parse(&identity))
                else {
                    return;
                };
                room.activity(user, activity);
            }
            MediaEvent::Track {
                room_id,
                participant_sid,
                track_sid,
                kind,
                published,
            } => {
                let Some(room) = self.rooms.get_str(&room_id) else {
                    return;
                };
                let track = crate::webhook::NotifyTrack {
                    sid: track_sid,
                    kind,
                };
                tokio::spawn(async move {
                    let _ = room.track(participant_sid, track, published).await;
                });
            }
            MediaEvent::RoomFailed { room_id, sid } => {
                let Some(handle) = self
                    .rooms
                    .get_str(&room_id)
                    .filter(|h| h.info.sid.to_string() == sid)
                else {
                    return;
                };
                tokio::spawn(async move {
                    let _ = handle.end(EndReason::MediaFailure).await;
                });
            }
        }
    }
}

impl App {
    /// Breakout rooms end with their parent; a breakout room that ends leaves its parent's list
    /// (whose participants are told).
    fn breakouts_follow(&self, info: &RoomInfo) {
        if info.metadata.is_breakout_room {
            let Some(parent) = self.rooms.get_str(&info.metadata.parent_room_id) else {
                return;
            };
            let (media, id) = (self.media.clone(), info.room_id.to_string());
            tokio::spawn(
                async move {
                    let gone = id.clone();
                    if let Ok(true) = parent.breakouts(move |b| b.remove(&gone)).await {
                        if let Some(media) = media {
                            media.send_system(
                                parent.info.room_id.as_str(),
                                &ServerMessage::BreakoutRoomEnded {
                                    breakout_room_id: id,
                                },
                                Vec::new(),
                            );
                        }
                    }
                }
                .in_current_span(),
            );
            return;
        }
        for child in self.rooms.all() {
            if child.info.metadata.parent_room_id == info.room_id.as_str() {
                tokio::spawn(
                    async move {
                        let _ = child.end(EndReason::Requested).await;
                    }
                    .in_current_span(),
                );
            }
        }
    }

    /// Writes a session's analytics file under the artifacts directory
    /// (`<room id>/analytics-<sid>-<ms>.json`) and records it as a `MEETING_ANALYTICS` artifact.
    async fn save_analytics(
        &self,
        info: &RoomInfo,
        file: serde_json::Value,
    ) -> Result<SavedArtifact, String> {
        let bytes = serde_json::to_vec(&file).map_err(|e| e.to_string())?;
        let relative = format!(
            "{}/analytics-{}-{}.json",
            info.room_id,
            info.sid,
            crate::clock::unix_ms()
        );
        let path = self.config.artifacts_path.join(&relative);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        tokio::fs::write(&path, &bytes)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let metadata = serde_json::json!({
            "file_info": {
                "file_path": relative,
                "file_size": bytes.len().to_string(),
                "mime_type": "application/json",
            }
        });
        let row = ArtifactRow {
            artifact_id: uuid::Uuid::new_v4().to_string(),
            room_id: info.room_id.to_string(),
            room_sid: info.sid.to_string(),
            kind: RoomArtifactType::MeetingAnalytics,
            metadata: metadata.to_string(),
            created: unix_now(),
        };
        let artifact_id = row.artifact_id.clone();
        if let Err(e) = self.store.insert_artifact(row).await {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e.to_string());
        }
        Ok(SavedArtifact {
            artifact_id,
            kind: RoomArtifactType::MeetingAnalytics,
            metadata,
        })
    }
}

#[async_trait::async_trait]
impl RoomObserver for App {
    fn auto_record(self: Arc<Self>, info: Arc<RoomInfo>) {
        let app = self;
        tokio::spawn(
            async move {
                if let Err(e) = app.recorders.start(&info, Job::Recording, None).await {
                    tracing::warn!(error = %e, "automatic cloud recording did not start");
                }
            }
            .in_current_span(),
        );
    }

    fn participants_changed(&self, delta: i64) {
        if delta >= 0 {
            self.metrics.participants.inc_by(delta);
        } else {
            self.metrics.participants.dec_by(-delta);
        }
    }

    async fn ended(
        &self,
        info: &RoomInfo,
        joined_total: i64,
        analytics: Option<serde_json::Value>,
    ) -> Option<SavedArtifact> {
        self.rooms.remove(&info.room_id, info.sid);
        if let Some(media) = &self.media {
            media.end_room(info.room_id.as_str(), &info.sid.to_string());
        }
        if self.config.keep_uploads && !info.is_e2ee() {
            crate::uploads::keep_session(&self.config.uploads_path, &info.sid).await;
        } else {
            crate::uploads::remove_session(&self.config.uploads_path, &info.sid).await;
        }
        self.breakouts_follow(info);
        self.metrics.rooms_active.set(self.rooms.len() as i64);
        if let Err(e) = self
            .store
            .end_room(&info.sid.to_string(), unix_now(), joined_total)
            .await
        {
            tracing::error!(error = %e, "could not record the end of the session");
        }
        match self.save_analytics(info, analytics?).await {
            Ok(saved) => {
                tracing::info!(artifact_id = saved.artifact_id, "analytics saved");
                Some(saved)
            }
            Err(e) => {
                tracing::error!(error = %e, "could not save the session's analytics");
                None
            }
        }
    }

    fn key_epoch(&self, info: &RoomInfo, epoch: &KeyEpoch, to: &[UserId]) {
        // An empty list would mean "everyone" to the media server.
        let (Some(media), false) = (&self.media, to.is_empty()) else {
            return;
        };
        // The payload is copied into the data packet the media server encodes and encrypts for
        // each recipient (DTLS); those copies are not wiped, only dropped.
        let payload = ServerMessage::E2eeKey {
            generation: epoch.generation,
            secret: epoch.secret.expose().to_owned(),
        }
        .to_bytes();
        media.send_data(
            info.room_id.as_str(),
            payload,
            Some(enclave_sfu::SERVER_TOPIC.to_owned()),
            to.iter().map(ToString::to_string).collect(),
        );
    }
}
