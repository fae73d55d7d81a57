//! Smaller doors: the security headers of every response, who may frame the web client, and
//! metrics kept off the public port or behind a token.

#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use common::Harness;

async fn get(h: &Harness, path: &str, auth: Option<&str>) -> axum::response::Response {
    let mut req = Request::get(path);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    h.router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn pages_carry_a_content_security_policy_and_every_response_nosniff_and_no_referrer() {
    let h = Harness::with(|c| {
        c.frame_ancestors = vec!["https://lms.example.org".into()];
        c.livekit.host = "wss://media.example.org".into();
    })
    .await;
    let page = get(&h, "/", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    for must in [
        "default-src 'self'",
        "script-src 'self';",
        "worker-src 'self' blob:",
        "connect-src 'self' wss://media.example.org https://media.example.org;",
        "object-src 'none'",
        "frame-ancestors https://lms.example.org",
    ] {
        assert!(csp.contains(must), "{must:?} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-eval"), "{csp}");
    for path in ["/", "/healthCheck", "/nope", "/download/recording/x"] {
        let r = get(&h, path, None).await;
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(r.headers()["referrer-policy"], "no-referrer", "{path}");
    }
    // JSON replies need no CSP of their own.
    assert!(get(&h, "/healthCheck", None)
        .await
        .headers()
        .get("content-security-policy")
        .is_none());
}

#[tokio::test]
async fn by_default_only_the_page_itself_may_frame_the_client() {
    let h = Harness::new().await;
    let page = get(&h, "/", None).await;
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.ends_with("frame-ancestors 'self'"), "{csp}");
}

#[tokio::test]
async fn metrics_behind_a_token_need_it() {
    let h = Harness::with(|c| c.prometheus.token = Some("scrape-me-0123".into())).await;
    assert_eq!(
        get(&h, "/metrics", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&h, "/metrics", Some("Bearer wrong")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&h, "/metrics", Some("Bearer scrape-me-0123"))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn metrics_on_their_own_address_are_not_on_the_api_port() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = enclave_server::ServerConfig::for_tests(dir.path(), common::KEY, common::SECRET);
    cfg.prometheus.listen = Some("127.0.0.1:0".parse().unwrap());
    let srv = enclave_server::Server::start(cfg).await.unwrap();
    let m = srv.metrics_addr.unwrap();
    let c = reqwest::Client::new();
    let on_api = c
        .get(format!("http://{}/metrics", srv.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(on_api.status(), 404);
    let own = c.get(format!("http://{m}/metrics")).send().await.unwrap();
    assert_eq!(own.status(), 200);
    assert!(own.text().await.unwrap().contains("enclave_rooms_active"));
    let other = c
        .get(format!("http://{m}/healthCheck"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404, "only metrics on the metrics address");
    srv.stop().await.unwrap();
}
