//! A guest who holds one token must not be able to turn it into a signed `/auth` call.
//!
//! HS256 over `header.payload` with a key K is exactly HMAC-SHA256(K, "header.payload"), and
//! `/auth`'s signature is HMAC-SHA256(client.secret, <signed text>). If any token were signed
//! with client.secret, its signature would be a valid `/auth` signature of its own first two
//! parts. These tests replay every kind of token the server hands out, and a webhook's
//! signature, in each shape `/auth` has ever accepted, and show every one refused with nothing
//! changed.

#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;

use common::{Harness, KEY, SECRET};

/// A token's signed text (`header.payload`) and its signature as `/auth` wants it (hex).
fn replay_parts(token: &str) -> (String, String) {
    let (signed, sig) = token.rsplit_once('.').unwrap();
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .unwrap();
    (signed.to_owned(), hex::encode(sig))
}

async fn join_token(h: &Harness, room: &str, user: &str, admin: bool) -> String {
    let (_, v) = h
        .call(
            "/auth/room/getJoinToken",
            &format!(
                r#"{{"room_id":"{room}","user_info":{{"name":"{user}","user_id":"{user}","is_admin":{admin}}}}}"#
            ),
        )
        .await;
    v["token"].as_str().unwrap().to_owned()
}

/// The attack the issue reproduced: multipart, `Room-Id` = the token's signed text, the
/// token's signature as `HASH-SIGNATURE`, and a JSON body asking for an admin token of
/// another room.
fn multipart_replay(path: &str, signed: &str, sig: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header("Content-Type", "multipart/form-data; boundary=x")
        .header("API-KEY", KEY)
        .header("Room-Id", signed)
        .header("HASH-SIGNATURE", sig)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// The same signature over the same text, sent as a JSON request whose body is that text.
fn body_replay(path: &str, signed: &str, sig: &str) -> Request<Body> {
    Request::post(path)
        .header("Content-Type", "application/json")
        .header("API-KEY", KEY)
        .header("HASH-SIGNATURE", sig)
        .body(Body::from(signed.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn a_guest_join_token_cannot_be_replayed_as_a_signed_api_call() {
    let h = Harness::new().await;
    h.create("public", "{}").await;
    h.create(
        "secret-room",
        r#"{"end_to_end_encryption_features":{"is_enabled":true}}"#,
    )
    .await;
    let guest = join_token(&h, "public", "guest", false).await;
    let (signed, sig) = replay_parts(&guest);
    let evil =
        r#"{"room_id":"secret-room","user_info":{"name":"m","user_id":"mallory","is_admin":true}}"#;

    let (status, body) = h
        .send(multipart_replay(
            "/auth/room/getJoinToken",
            &signed,
            &sig,
            evil,
        ))
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body:?}");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], false);
    assert!(v.get("token").is_none_or(|t| t.is_null()), "{v}");
    assert!(
        v["msg"].as_str().unwrap().contains("multipart/form-data"),
        "the refusal names the reason: {v}"
    );

    let (status, _) = h
        .send(body_replay("/auth/room/endRoom", &signed, &sig))
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the signature is not the API's"
    );

    // Nothing changed: both rooms live, and nobody was invited as mallory.
    assert!(h.is_active("public").await && h.is_active("secret-room").await);
    let room = h.app.rooms.get_str("secret-room").unwrap();
    let mallory = enclave_proto::ids::UserId::parse("mallory").unwrap();
    assert!(room.invitation(mallory).await.unwrap().is_none());
}

#[tokio::test]
async fn no_token_the_server_signs_verifies_as_an_api_signature() {
    let h = Harness::new().await;
    h.create("r", "{}").await;
    let join = join_token(&h, "r", "ann", true).await;
    // A media token from the browser API, and a download token from the API.
    let (_, v) = {
        let req = Request::post("/api/verifyToken")
            .header("Authorization", &join)
            .body(Body::from("{}"))
            .unwrap();
        let (s, b) = h.send(req).await;
        (s, serde_json::from_slice::<serde_json::Value>(&b).unwrap())
    };
    let media = v["media"]["token"].as_str().unwrap().to_owned();
    std::fs::create_dir_all(h.dir.path().join("recordings/s")).unwrap();
    let download = h.app.keys.sign(
        enclave_server::auth::TokenKind::Download,
        &enclave_server::auth::DownloadClaims {
            iss: KEY.into(),
            sub: "s/x.mp4".into(),
            nbf: 0,
            exp: u64::MAX / 4,
        },
    );
    for (what, token) in [("join", join), ("media", media), ("download", download)] {
        let (signed, sig) = replay_parts(&token);
        assert_ne!(
            enclave_server::auth::sign(SECRET, signed.as_bytes()),
            sig,
            "a {what} token is not signed with the API secret"
        );
        for req in [
            multipart_replay(
                "/auth/room/create",
                &signed,
                &sig,
                r#"{"room_id":"x","metadata":{"room_title":"x","room_features":{}}}"#,
            ),
            body_replay("/auth/room/create", &signed, &sig),
        ] {
            let (status, body) = h.send(req).await;
            assert!(
                status == StatusCode::UNAUTHORIZED || status == StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "a {what} token replayed: {status} {body:?}"
            );
        }
    }
    assert!(!h.is_active("x").await);
}

#[tokio::test]
async fn a_webhook_signature_is_never_an_api_call() {
    // Webhooks keep Plug-N-Meet's scheme (a JWT signed with the API secret), so their signed
    // text does verify as an /auth signature; what saves the API is that this text is never a
    // JSON object.
    let h = Harness::new().await;
    h.create("r", "{}").await;
    let token = enclave_server::webhook::sign_body(KEY, SECRET, b"{\"event\":\"x\"}", 1);
    let (signed, sig) = replay_parts(&token);
    assert_eq!(
        enclave_server::auth::sign(SECRET, signed.as_bytes()),
        sig,
        "the premise: a webhook signature is an HMAC of its text with the API secret"
    );
    let (status, body) = h
        .send(body_replay("/auth/room/endRoom", &signed, &sig))
        .await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], false);
    assert_eq!(v["status_code"], "INVALID_PARAMETERS");
    assert!(v["msg"].as_str().unwrap().contains("JSON object"), "{v}");
    assert!(h.is_active("r").await, "the room was not ended");
}
