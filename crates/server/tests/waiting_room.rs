#![allow(clippy::unwrap_used)]
//! The waiting room through the browser API: nothing that lets a guest in (no media token, no
//! secret, no session id) until an admin approves one of them or all.

mod common;

use axum::http::StatusCode;
use common::Harness;
use serde_json::Value;

#[tokio::test]
async fn the_waiting_room_hands_out_nothing_until_an_admin_approves() {
    let h = Harness::new().await;
    h.create(
        "wr",
        r#"{"end_to_end_encryption_features":{"is_enabled":true},"waiting_room_features":{"is_active":true,"waiting_room_msg":"The class starts at nine."}}"#,
    )
    .await;
    let admin = h.join_token("wr", "teacher", true, "").await;
    let guest = h.join_token("wr", "guest", false, "").await;
    let other = h.join_token("wr", "other", false, "").await;

    // The admin is never held in the waiting room.
    let (s, v) = h.verify_token(&admin).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["e2ee"]["secret"].is_string() && v["media"]["token"].is_string());

    // A guest gets the waiting message and nothing that lets them in.
    let (s, v, cache) = h
        .browser_request("POST", "/api/verifyToken", Some(&guest), "{}")
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert_eq!(v["waiting"], true, "{v}");
    assert_eq!(v["waiting_room_msg"], "The class starts at nine.");
    for leak in ["media", "e2ee"] {
        assert!(
            v.get(leak).is_none(),
            "{leak} handed to a waiting guest: {v}"
        );
    }
    assert!(v["room"].get("sid").is_none(), "{v}");
    // The media path refuses them too, whatever token they bring.
    // A media token minted with the server's own keys (as an integrator holding the LiveKit
    // secret could): the room still says no.
    use enclave_server::auth::livekit::{mint, AccessClaims, VideoGrant};
    let media = mint(
        &h.app.keys,
        &AccessClaims {
            iss: h.app.config.livekit.api_key.clone(),
            sub: "guest".into(),
            nbf: 0,
            exp: u64::MAX / 2,
            name: String::new(),
            metadata: String::new(),
            video: VideoGrant {
                room_join: true,
                room: "wr".into(),
                ..Default::default()
            },
            session: None,
        },
    );
    let (s, why) = h.rtc_validate(&media).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{why}");
    assert!(why.contains("approval"), "{why}");

    // Admins see who knocks; a guest cannot ask.
    let (s, _, _) = h
        .browser_request("POST", "/api/waitingRoom/list", Some(&guest), "{}")
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    h.browser_request("POST", "/api/verifyToken", Some(&other), "{}")
        .await;
    let (s, v, _) = h
        .browser_request("POST", "/api/waitingRoom/list", Some(&admin), "{}")
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ids: Vec<_> = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["guest", "other"]);
    assert_eq!(v["users"][0]["name"], "N guest");
    // The integrator sees them too, as Plug-N-Meet lists waiting users: JOINING, with
    // `wait_for_approval` in their metadata.
    let (_, info) = h
        .call("/auth/room/getActiveRoomInfo", r#"{"room_id":"wr"}"#)
        .await;
    let listed: Vec<(String, String, bool)> = info["room"]["participants_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let meta: Value = serde_json::from_str(p["metadata"].as_str().unwrap()).unwrap();
            (
                p["identity"].as_str().unwrap().to_owned(),
                p["state"].as_str().unwrap().to_owned(),
                meta["wait_for_approval"] == true,
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("guest".into(), "JOINING".into(), true),
            ("other".into(), "JOINING".into(), true)
        ],
        "{info}"
    );

    // The admin changes the message; the next knock shows it.
    let (s, _, _) = h
        .browser_request(
            "POST",
            "/api/waitingRoom/updateMsg",
            Some(&admin),
            r#"{"msg":"Five more minutes."}"#,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = h.verify_token(&guest).await;
    assert_eq!(v["waiting_room_msg"], "Five more minutes.");

    // Approved: the next verifyToken lets them in, with the secret.
    let (s, v, _) = h
        .browser_request(
            "POST",
            "/api/waitingRoom/approveUsers",
            Some(&admin),
            r#"{"user_id":"guest"}"#,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["approved"], serde_json::json!(["guest"]));
    let (s, v) = h.verify_token(&guest).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v.get("waiting").is_none(), "{v}");
    assert!(v["e2ee"]["secret"].is_string(), "{v}");
    let media = v["media"]["token"].as_str().unwrap().to_owned();
    assert_eq!(h.rtc_validate(&media).await.0, StatusCode::OK);
    let claims =
        enclave_server::auth::livekit::verify(&h.app.keys, &h.app.config.livekit.api_key, &media)
            .unwrap();
    let meta: Value = serde_json::from_str(&claims.metadata).unwrap();
    assert_eq!(meta["wait_for_approval"], false, "{meta}");

    // Rejected: removed, and told so at the next ask.
    let (s, _, _) = h
        .browser_request(
            "POST",
            "/api/removeParticipant",
            Some(&admin),
            r#"{"user_id":"other"}"#,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = h.verify_token(&other).await;
    assert_eq!(
        (s, v["msg"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("notifications.you-are-removed")
        )
    );
    let (_, v, _) = h
        .browser_request("POST", "/api/waitingRoom/list", Some(&admin), "{}")
        .await;
    assert_eq!(v["users"], serde_json::json!([]));
}

#[tokio::test]
async fn approving_all_lets_every_waiting_guest_in() {
    let h = Harness::new().await;
    h.create("wa", r#"{"waiting_room_features":{"is_active":true}}"#)
        .await;
    let admin = h.join_token("wa", "t", true, "").await;
    let guests = [
        h.join_token("wa", "g1", false, "").await,
        h.join_token("wa", "g2", false, "").await,
    ];
    for g in &guests {
        let (_, v) = h.verify_token(g).await;
        assert_eq!(v["waiting"], true);
    }
    let (_, v, _) = h
        .browser_request(
            "POST",
            "/api/waitingRoom/approveUsers",
            Some(&admin),
            r#"{"user_id":"all"}"#,
        )
        .await;
    assert_eq!(v["approved"].as_array().unwrap().len(), 2, "{v}");
    for g in &guests {
        let (_, v) = h.verify_token(g).await;
        assert!(v["media"]["token"].is_string(), "{v}");
    }
    // Without a waiting room nobody waits.
    h.create("open", "{}").await;
    let t = h.join_token("open", "g", false, "").await;
    let (_, v) = h.verify_token(&t).await;
    assert!(v.get("waiting").is_none() && v["media"]["token"].is_string());
}
