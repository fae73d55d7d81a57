#![allow(clippy::unwrap_used)]
//! Bad input gets a clear error in the envelope and changes no state.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{signed, Harness, KEY, SECRET};

/// Live rooms and every history table, to prove a refused request changed nothing.
async fn state(h: &Harness) -> (usize, String) {
    let (_, past) = h.call_raw("/auth/room/fetchPastRooms", "{}").await;
    (
        h.app.rooms.len(),
        String::from_utf8_lossy(&past).into_owned(),
    )
}

#[tokio::test]
async fn bad_requests_are_refused_with_a_clear_error_and_change_nothing() {
    let h = Harness::with(|c| c.max_body_bytes = 4096).await;
    h.create("existing", "{}").await;
    let before = state(&h).await;

    let create = "/auth/room/create";
    let token = "/auth/room/getJoinToken";
    let huge = format!(
        r#"{{"room_id":"big","metadata":{{"room_title":"{}","room_features":{{}}}}}}"#,
        "x".repeat(5000)
    );
    // (path, body, expected HTTP status, expected status_code, text the msg must contain)
    let cases: Vec<(&str, String, u16, &str, &str)> = vec![
        (create, "{not json".into(), 200, "INVALID_PARAMETERS", "invalid JSON"),
        (create, "[]".into(), 200, "INVALID_PARAMETERS", "(body)"),
        (create, r#"{"room_id":5,"metadata":{"room_title":"T","room_features":{}}}"#.into(), 200, "INVALID_PARAMETERS", "room_id"),
        (create, r#"{"room_id":"r","empty_timeout":"soon","metadata":{"room_title":"T","room_features":{}}}"#.into(), 200, "INVALID_PARAMETERS", "empty_timeout"),
        (create, r#"{"room_id":"r","metadata":{"room_title":"T","room_features":{"allow_webcams":"yes"}}}"#.into(), 200, "INVALID_PARAMETERS", "metadata.room_features.allow_webcams"),
        (create, r#"{"room_id":"has space","metadata":{"room_title":"T","room_features":{}}}"#.into(), 200, "INVALID_PARAMETERS", "room_id should only contain"),
        (create, r#"{"room_id":"user_1","metadata":{"room_title":"T","room_features":{}}}"#.into(), 200, "INVALID_PARAMETERS", "reserved pattern 'user_'"),
        (create, r#"{"room_id":"a-FIELD_b","metadata":{"room_title":"T","room_features":{}}}"#.into(), 200, "INVALID_PARAMETERS", "reserved pattern '-FIELD_'"),
        (create, r#"{"room_id":"r"}"#.into(), 200, "INVALID_PARAMETERS", "metadata: value is required"),
        (create, r#"{"room_id":"r","metadata":{"room_title":"","room_features":{}}}"#.into(), 200, "INVALID_PARAMETERS", "metadata.room_title"),
        (create, r#"{"room_id":"r","metadata":{"room_title":"T","is_recording":true,"room_features":{}}}"#.into(), 200, "INVALID_PARAMETERS", "is_recording should not contain any value"),
        (create, r#"{"room_id":"r","metadata":{"room_title":"T","room_features":{"end_to_end_encryption_features":{"is_enabled":true,"encryption_key":"mine"}}}}"#.into(), 200, "INVALID_PARAMETERS", "encryption_key should not contain any value"),
        (create, r#"{"room_id":"r","metadata":{"room_title":"T","logout_url":"nope","room_features":{}}}"#.into(), 200, "INVALID_PARAMETERS", "metadata.logout_url"),
        (create, huge, 413, "INVALID_PARAMETERS", "larger than the limit of 4096 bytes"),
        (token, r#"{"room_id":"existing"}"#.into(), 200, "INVALID_PARAMETERS", "UserInfo required"),
        (token, r#"{"room_id":"existing","user_info":{"name":"A"}}"#.into(), 200, "INVALID_PARAMETERS", "user_info.user_id"),
        (token, r#"{"room_id":"existing","user_info":{"name":"A","user_id":"bad id"}}"#.into(), 200, "INVALID_PARAMETERS", "user_info.user_id"),
        (token, r#"{"room_id":"existing","user_info":{"name":"PLUGNMEET_RECORDER_AUTH","user_id":"x"}}"#.into(), 200, "INTERNAL_SERVER_ERROR", "reserved"),
        (token, r#"{"room_id":"gone","user_info":{"name":"A","user_id":"a"}}"#.into(), 200, "ROOM_NOT_FOUND", "room is not active"),
        ("/auth/room/isRoomActive", "{}".into(), 200, "INVALID_PARAMETERS", "room_id: value is required"),
        ("/auth/room/endRoom", r#"{"room_id":"gone"}"#.into(), 200, "ROOM_NOT_FOUND", "room not found or not active"),
        ("/auth/room/getActiveRoomInfo", r#"{"room_id":"gone"}"#.into(), 200, "ROOM_NOT_FOUND", "room not found in active state"),
        ("/auth/room/fetchPastRooms", r#"{"limit":"many"}"#.into(), 200, "INVALID_PARAMETERS", "limit"),
        ("/auth/recording/info", "{}".into(), 200, "INVALID_PARAMETERS", "record_id: value is required"),
        ("/auth/recording/info", r#"{"record_id":"nope"}"#.into(), 200, "NOT_FOUND", "recording not found"),
        ("/auth/recording/delete", r#"{"record_id":"nope"}"#.into(), 200, "NOT_FOUND", "recording not found"),
        ("/auth/artifact/getDownloadToken", r#"{"artifact_id":"nope"}"#.into(), 200, "NOT_FOUND", "artifact not found"),
        ("/auth/artifact/fetch", r#"{"type":"NOT_A_TYPE"}"#.into(), 200, "INVALID_PARAMETERS", "type"),
        ("/auth/room/broadcastToRoom", r#"{"room_id":"existing"}"#.into(), 200, "INVALID_PARAMETERS", "exactly one of chat_msg, notification_msg"),
        ("/auth/room/broadcastToRoom", r#"{"room_id":"existing","chat_msg":{"message":"a"},"notification_msg":{"text":"b"}}"#.into(), 200, "INVALID_PARAMETERS", "only one of"),
        ("/auth/room/broadcastToRoom", r#"{"room_id":"existing","chat_msg":{"message":""}}"#.into(), 200, "INVALID_PARAMETERS", "chat_msg.message"),
        ("/auth/room/broadcastToRoom", r#"{"room_id":"gone","chat_msg":{"message":"hi"}}"#.into(), 200, "ROOM_NOT_FOUND", "room not found"),
        ("/auth/room/broadcastToRoom", r#"{"room_id":"existing","only_to_admins":true,"chat_msg":{"message":"hi"}}"#.into(), 200, "USER_NOT_FOUND", "no online user found"),
    ];
    for (path, body, http, code, msg) in &cases {
        let (status, v) = {
            let (s, bytes) = h.send(signed(path, body)).await;
            (
                s,
                serde_json::from_slice::<serde_json::Value>(&bytes)
                    .unwrap_or_else(|_| panic!("{path} {body}: not JSON: {bytes:?}")),
            )
        };
        assert_eq!(status.as_u16(), *http, "{path} {body}: {v}");
        assert_eq!(v["status"], false, "{path} {body}: {v}");
        assert_eq!(v["status_code"], *code, "{path} {body}: {v}");
        assert!(
            v["msg"].as_str().unwrap().contains(msg),
            "{path} {body}: msg {:?} lacks {msg:?}",
            v["msg"]
        );
        assert_eq!(state(&h).await, before, "{path} {body} changed state");
    }
}

#[tokio::test]
async fn authentication_failures_are_401_in_plugnmeet_order() {
    let h = Harness::new().await;
    let body = r#"{"room_id":"r","metadata":{"room_title":"T","room_features":{}}}"#;
    let good = enclave_server::auth::sign(SECRET, body.as_bytes());
    let req = |key: Option<&str>, sig: Option<&str>| {
        let mut b = Request::post("/auth/room/create").header("Content-Type", "application/json");
        if let Some(k) = key {
            b = b.header("API-KEY", k);
        }
        if let Some(s) = sig {
            b = b.header("HASH-SIGNATURE", s);
        }
        b.body(Body::from(body)).unwrap()
    };
    let upper = good.to_uppercase();
    let other = enclave_server::auth::sign("another-secret-entirely-0000000000", body.as_bytes());
    let cases = [
        (
            req(None, Some(&good)),
            "MISSING_REQUIRED_PARAMETER",
            "Missing API-KEY header.",
        ),
        (
            req(Some("wrong"), Some(&good)),
            "INVALID_API_KEY",
            "Invalid API key provided.",
        ),
        (
            req(Some(KEY), None),
            "MISSING_REQUIRED_PARAMETER",
            "Missing HASH-SIGNATURE header.",
        ),
        (
            req(Some(KEY), Some(&upper)),
            "INVALID_TOKEN_OR_SIGNATURE",
            "Failed to verify provided authentication details.",
        ),
        (
            req(Some(KEY), Some(&other)),
            "INVALID_TOKEN_OR_SIGNATURE",
            "Failed to verify provided authentication details.",
        ),
    ];
    for (r, code, msg) in cases {
        let (status, bytes) = h.send(r).await;
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            (
                v["status"].clone(),
                v["status_code"].as_str().unwrap(),
                v["msg"].as_str().unwrap()
            ),
            (false.into(), code, msg)
        );
    }
    assert!(h.app.rooms.is_empty());
    let (status, _) = h.send(req(Some(KEY), Some(&good))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.app.rooms.len(), 1);
}

#[tokio::test]
async fn lenient_decoding_accepts_camel_case_string_ints_and_unknown_fields() {
    let h = Harness::new().await;
    let (_, v) = h
        .call(
            "/auth/room/create",
            r#"{"roomId":"camel","maxParticipants":"3","emptyTimeout":300,"somethingNew":{"x":1},"metadata":{"roomTitle":"T","roomFeatures":{"allowWebcams":false,"roomDuration":"5"},"extraData":{"myKey":"v"}}}"#,
        )
        .await;
    assert_eq!(v["status"], true, "{v}");
    let meta: serde_json::Value =
        serde_json::from_str(v["room_info"]["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(meta["room_features"]["allow_webcams"], false);
    assert_eq!(meta["room_features"]["room_duration"], "5");
    assert_eq!(
        meta["extra_data"]["myKey"], "v",
        "map keys are data, kept as sent"
    );
    let room = h.app.rooms.get_str("camel").unwrap();
    assert_eq!(
        (room.info.max_participants, room.info.empty_timeout),
        (3, 300)
    );
}

#[tokio::test]
async fn reusing_an_active_room_id_returns_the_live_session_unchanged() {
    let h = Harness::new().await;
    let first = h.create("same", r#"{"allow_webcams":true}"#).await;
    let again = h
        .create(
            "same",
            r#"{"allow_webcams":false,"end_to_end_encryption_features":{"is_enabled":true}}"#,
        )
        .await;
    assert_eq!(first["room_info"]["sid"], again["room_info"]["sid"]);
    assert_eq!(
        first["room_info"]["metadata"], again["room_info"]["metadata"],
        "the second request's settings are ignored"
    );
    assert_eq!(h.app.rooms.len(), 1);
}

#[tokio::test]
async fn download_tokens_are_checked() {
    let h = Harness::new().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mk = |secret: &str, iss: &str, sub: &str, exp: u64| {
        enclave_server::auth::TokenKeys::derive(secret, None).sign(
            enclave_server::auth::TokenKind::Download,
            &enclave_server::auth::DownloadClaims {
                iss: iss.into(),
                sub: sub.into(),
                nbf: now - 300,
                exp,
            },
        )
    };
    std::fs::create_dir_all(h.dir.path().join("recordings/sid1")).unwrap();
    std::fs::write(h.dir.path().join("recordings/sid1/rec.mp4"), b"MP4DATA").unwrap();
    let get = |t: String| {
        Request::get(format!("/download/recording/{t}"))
            .body(Body::empty())
            .unwrap()
    };

    let (s, body) = h.send(get(mk(SECRET, KEY, "sid1/rec.mp4", now + 60))).await;
    assert_eq!((s, &body[..]), (StatusCode::OK, &b"MP4DATA"[..]));
    let (s, body) = h
        .send(get(mk(SECRET, KEY, "sid1/rec.mp4", now - 120)))
        .await;
    assert_eq!(
        (s, &body[..]),
        (StatusCode::UNAUTHORIZED, &b"token expired"[..])
    );
    let (s, _) = h
        .send(get(mk(
            "forged-secret-forged-secret-forged",
            KEY,
            "sid1/rec.mp4",
            now + 60,
        )))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = h
        .send(get(mk(SECRET, "someone-else", "sid1/rec.mp4", now + 60)))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = h
        .send(get(mk(SECRET, KEY, "../enclave.sqlite", now + 60)))
        .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "no way out of the storage directory"
    );
    let (s, _) = h
        .send(get(mk(SECRET, KEY, "sid1/missing.mp4", now + 60)))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = h.send(get("garbage".into())).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Signed with the API secret itself (Plug-N-Meet's scheme), or a token of another kind
    // with the same claims: refused.
    let claims = enclave_server::auth::DownloadClaims {
        iss: KEY.into(),
        sub: "sid1/rec.mp4".into(),
        nbf: now - 300,
        exp: now + 60,
    };
    let raw = enclave_server::auth::encode_jwt(SECRET.as_bytes(), &claims);
    let (s, _) = h.send(get(raw)).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a token signed with the API secret"
    );
    let join = h
        .app
        .keys
        .sign(enclave_server::auth::TokenKind::Join, &claims);
    let (s, _) = h.send(get(join)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a join-kind token");
}

#[tokio::test]
async fn unknown_routes_are_plain_404_and_health_answers() {
    let h = Harness::new().await;
    let (s, body) = h
        .send(Request::post("/auth/nope").body(Body::empty()).unwrap())
        .await;
    assert_eq!((s, &body[..]), (StatusCode::NOT_FOUND, &b"not found"[..]));
    let (s, body) = h
        .send(Request::get("/healthCheck").body(Body::empty()).unwrap())
        .await;
    assert_eq!((s, &body[..]), (StatusCode::OK, &b"Healthy"[..]));
}
