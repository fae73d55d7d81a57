//! Shared test harness: the real router driven in-process (no sockets, so tests may pause
//! time), and a webhook receiver on 127.0.0.1 that records what it is sent.

#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use serde_json::Value;
use tower::ServiceExt;

use enclave_proto::ids::UserId;
use enclave_server::rooms::core::Participant;
use enclave_server::{App, ServerConfig};

pub const KEY: &str = "test-key";
pub const SECRET: &str = "test-secret-0123456789abcdef-0123";

/// A `/auth` request signed as an integrator signs it (API-KEY, HMAC of the body).
pub fn signed(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header("Content-Type", "application/json")
        .header("API-KEY", KEY)
        .header(
            "HASH-SIGNATURE",
            enclave_server::auth::sign(SECRET, body.as_bytes()),
        )
        .body(Body::from(body.to_owned()))
        .unwrap()
}

pub struct Harness {
    pub app: Arc<App>,
    pub router: Router,
    pub dir: tempfile::TempDir,
}

impl Harness {
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    pub async fn with(f: impl FnOnce(&mut ServerConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ServerConfig::for_tests(dir.path(), KEY, SECRET);
        f(&mut cfg);
        let app = App::new(cfg).await.unwrap();
        let router = enclave_server::http::router(app.clone());
        Self { app, router, dir }
    }

    /// A signed `/auth` call; returns the HTTP status and the raw body.
    pub async fn call_raw(&self, path: &str, body: &str) -> (StatusCode, Bytes) {
        self.send(signed(path, body)).await
    }

    /// A signed `/auth` call; the body parsed as JSON.
    pub async fn call(&self, path: &str, body: &str) -> (StatusCode, Value) {
        let (status, bytes) = self.call_raw(path, body).await;
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{path}: reply is not JSON ({e}): {bytes:?}"));
        (status, v)
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, Bytes) {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        (
            status,
            axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap(),
        )
    }

    /// A browser API call (`Authorization: <join token>`; a GET sends no body): the HTTP
    /// status, the body as JSON (`null` if it is not) and the `Cache-Control` header.
    pub async fn browser_request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (StatusCode, Value, Option<String>) {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("Content-Type", "application/json");
        if let Some(t) = token {
            b = b.header("Authorization", t);
        }
        let body = if method == "GET" { "" } else { body };
        let res = self
            .router
            .clone()
            .oneshot(b.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let cache = res
            .headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            cache,
        )
    }

    /// A browser API call with a join token: the HTTP status and the JSON body.
    pub async fn browser_call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let (s, v, _) = self
            .browser_request(method, path, Some(token), &body.to_string())
            .await;
        (s, v)
    }

    /// A browser API call that must answer HTTP 200; its JSON body.
    pub async fn browser(&self, method: &str, path: &str, token: &str, body: Value) -> Value {
        let (s, v) = self.browser_call(method, path, token, body).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        v
    }

    /// `/api/verifyToken` with a join token: the HTTP status and the JSON body.
    pub async fn verify_token(&self, token: &str) -> (StatusCode, Value) {
        let (s, v, _) = self
            .browser_request("POST", "/api/verifyToken", Some(token), "{}")
            .await;
        (s, v)
    }

    /// A join token for `user` in `room` from `getJoinToken`; `user_info` fields in `extra`
    /// (e.g. `,"is_hidden":true`) are added.
    pub async fn join_token(&self, room: &str, user: &str, admin: bool, extra: &str) -> String {
        let body = format!(
            r#"{{"room_id":"{room}","user_info":{{"name":"N {user}","user_id":"{user}","is_admin":{admin}{extra}}}}}"#
        );
        let (_, v) = self.call("/auth/room/getJoinToken", &body).await;
        v["token"]
            .as_str()
            .unwrap_or_else(|| panic!("getJoinToken: {v}"))
            .to_owned()
    }

    /// GET /rtc/validate with a media token: the status and the reason.
    pub async fn rtc_validate(&self, media_token: &str) -> (StatusCode, String) {
        let req = Request::get(format!("/rtc/validate?access_token={media_token}"))
            .body(Body::empty())
            .unwrap();
        let (s, b) = self.send(req).await;
        (s, String::from_utf8_lossy(&b).into_owned())
    }

    pub async fn create(&self, room_id: &str, features: &str) -> Value {
        self.create_with(room_id, "", features).await
    }

    /// `extra` is spliced before `metadata`, e.g. `"empty_timeout":300,`.
    pub async fn create_with(&self, room_id: &str, extra: &str, features: &str) -> Value {
        let body = format!(
            r#"{{"room_id":"{room_id}",{extra}"metadata":{{"room_title":"Room {room_id}","room_features":{features}}}}}"#
        );
        let (status, v) = self.call("/auth/room/create", &body).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["status"], true, "{v}");
        v
    }

    pub async fn is_active(&self, room_id: &str) -> bool {
        let (_, v) = self
            .call(
                "/auth/room/isRoomActive",
                &format!(r#"{{"room_id":"{room_id}"}}"#),
            )
            .await;
        v["is_active"].as_bool().unwrap()
    }
}

/// One request a webhook receiver got.
#[derive(Debug, Clone)]
pub struct Hook {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Hook {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    pub fn event(&self) -> String {
        self.json()["event"].as_str().unwrap().to_owned()
    }
}

/// A webhook receiver on 127.0.0.1 that answers 500 to the first `fail_first` requests.
pub struct Receiver {
    pub url: String,
    pub hooks: Arc<Mutex<Vec<Hook>>>,
    pub attempts: Arc<Mutex<usize>>,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Self {
        let hooks: Arc<Mutex<Vec<Hook>>> = Arc::default();
        let attempts: Arc<Mutex<usize>> = Arc::default();
        let (h, a) = (hooks.clone(), attempts.clone());
        let app = Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (h, a) = (h.clone(), a.clone());
                async move {
                    let n = {
                        let mut a = a.lock().unwrap();
                        *a += 1;
                        *a
                    };
                    if n <= fail_first {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    h.lock().unwrap().push(Hook { headers, body });
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url,
            hooks,
            attempts,
        }
    }

    pub fn events(&self) -> Vec<String> {
        self.hooks.lock().unwrap().iter().map(Hook::event).collect()
    }

    /// Waits (bounded) until `n` hooks have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Hook> {
        for _ in 0..500 {
            if self.hooks.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        self.hooks.lock().unwrap().clone()
    }
}

/// A participant as the media runtime would admit it, with sid `PA_<id>`.
pub fn participant(id: &str) -> Participant {
    Participant {
        user_id: UserId::parse(id).unwrap(),
        sid: format!("PA_{id}"),
        name: id.into(),
        is_admin: false,
        is_hidden: false,
        joined_at: 0,
        metadata: "{}".into(),
    }
}
