//! Outbound webhooks, signed as Plug-N-Meet signs them: a JWT (HS256, API secret, `iss` = API
//! key, five minutes of validity) whose `sha256` claim is the standard base64 of the body's
//! SHA-256, sent in both `Authorization` and `Hash-Token`.
//!
//! Each room has its own queue and worker, so one room's events arrive in order and a slow
//! receiver of one room delays no other room. A failed delivery is retried with exponential
//! backoff; what still fails is logged and counted, never retried forever.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use enclave_proto::json::int64_string;
use enclave_proto::reply::ParticipantInfo;

use crate::auth::encode_jwt;
use crate::clock::unix_now;
use crate::config::WebhookConfig;
use crate::metrics::Metrics;

/// `NotifyEventRoom`.
#[derive(Debug, Clone, Serialize)]
pub struct NotifyRoom {
    pub sid: String,
    pub room_id: String,
    pub empty_timeout: u32,
    pub max_participants: u32,
    #[serde(serialize_with = "int64_string")]
    pub creation_time: i64,
    pub metadata: String,
    pub num_participants: u32,
}

/// `RecordingInfoEvent`: empty fields are omitted, as protojson does with the server's
/// `EmitUnpopulated:false`.
#[derive(Debug, Clone, Serialize)]
pub struct NotifyRecording {
    pub record_id: String,
    pub recorder_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub recorder_msg: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub file_path: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub file_size: f64,
}

/// The part of LiveKit's `TrackInfo` a track webhook carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotifyTrack {
    pub sid: String,
    /// `AUDIO` or `VIDEO`.
    #[serde(rename = "type")]
    pub kind: &'static str,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// `CommonNotifyEvent` (the fields we send).
#[derive(Debug, Clone, Serialize)]
pub struct NotifyEvent {
    pub event: String,
    pub room: NotifyRoom,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participant: Option<ParticipantInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_info: Option<NotifyRecording>,
    /// `track_published` / `track_unpublished`: the track, in LiveKit's `TrackInfo` shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track: Option<NotifyTrack>,
    /// `artifact_created`: `RoomArtifactWebhookEvent` (type, artifact id, metadata).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_artifact: Option<serde_json::Value>,
    /// `analytics_proceeded`: `AnalyticsEvent` (`file_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analytics: Option<serde_json::Value>,
    pub id: String,
    #[serde(serialize_with = "int64_string")]
    pub created_at: i64,
}

#[derive(Serialize)]
struct WebhookClaims<'a> {
    iss: &'a str,
    nbf: u64,
    exp: u64,
    sha256: String,
}

/// Signs a webhook body; the token goes in `Authorization` and `Hash-Token`.
pub fn sign_body(api_key: &str, secret: &str, body: &[u8], now: u64) -> String {
    let sha256 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body));
    // Plug-N-Meet's scheme: receivers verify with the API secret. The signed input is the
    // JWT's base64url header and payload, which `/auth` never accepts as a body (it takes
    // JSON objects only), so this signature cannot be replayed as an API call.
    encode_jwt(
        secret.as_bytes(),
        &WebhookClaims {
            iss: api_key,
            nbf: now,
            exp: now + 300,
            sha256,
        },
    )
}

/// Sends webhooks.
pub struct Webhooks {
    cfg: WebhookConfig,
    api_key: String,
    secret: String,
    client: reqwest::Client,
    metrics: Arc<Metrics>,
}

/// The queue of one room's events.
pub struct WebhookQueue {
    tx: mpsc::UnboundedSender<NotifyEvent>,
}

impl WebhookQueue {
    /// Queues an event; delivery happens in the background, in order.
    pub fn send(&self, ev: NotifyEvent) {
        // The worker only stops when this queue is dropped, so sending cannot fail.
        let _ = self.tx.send(ev);
    }
}

impl Webhooks {
    pub(crate) fn new(
        cfg: WebhookConfig,
        api_key: String,
        secret: String,
        metrics: Arc<Metrics>,
    ) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a reqwest client with a timeout always builds");
        Self {
            cfg,
            api_key,
            secret,
            client,
            metrics,
        }
    }

    /// The receivers of a room's events: the global URL, plus the room's own when allowed.
    fn urls(&self, room_url: &str) -> Vec<String> {
        if !self.cfg.enable {
            return Vec::new();
        }
        let mut urls: Vec<String> = self
            .cfg
            .url
            .iter()
            .filter(|u| !u.is_empty())
            .cloned()
            .collect();
        if self.cfg.enable_for_per_meeting
            && !room_url.is_empty()
            && !urls.iter().any(|u| u == room_url)
        {
            urls.push(room_url.to_owned());
        }
        urls
    }

    /// Starts the worker of one room; `None` when nobody is to be told.
    pub fn room_queue(self: &Arc<Self>, room_url: &str) -> Option<WebhookQueue> {
        let urls = self.urls(room_url);
        if urls.is_empty() {
            return None;
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<NotifyEvent>();
        let this = self.clone();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let body = serde_json::to_vec(&ev).expect("webhook events always serialise");
                for url in &urls {
                    this.deliver(url, &ev.event, &body).await;
                }
            }
        });
        Some(WebhookQueue { tx })
    }

    async fn deliver(&self, url: &str, event: &str, body: &[u8]) {
        let mut delay = self.cfg.retry_base;
        for attempt in 0..=self.cfg.max_retries {
            let token = sign_body(&self.api_key, &self.secret, body, unix_now() as u64);
            let res = self
                .client
                .post(url)
                .header("Content-Type", "application/json")
                .header("Authorization", &token)
                .header("Hash-Token", &token)
                .body(body.to_vec())
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => {
                    self.metrics.webhook("delivered");
                    tracing::debug!(event, url, attempt, "webhook delivered");
                    return;
                }
                Ok(r) => {
                    tracing::warn!(event, url, attempt, status = %r.status(), "webhook receiver refused")
                }
                Err(e) => {
                    tracing::warn!(event, url, attempt, error = %e, "webhook delivery failed")
                }
            }
            if attempt < self.cfg.max_retries {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        self.metrics.webhook("failed");
        tracing::error!(event, url, "webhook given up after retries");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_carries_the_body_hash() {
        let token = sign_body("key", "secret", b"{}", 1000);
        let payload = token.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["iss"], "key");
        assert_eq!(claims["exp"], 1300);
        // SHA-256 of "{}", standard base64 with padding.
        assert_eq!(
            claims["sha256"],
            "RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o="
        );
    }
}
