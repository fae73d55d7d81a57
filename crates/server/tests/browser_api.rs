#![allow(clippy::unwrap_used)]
//! The browser API: who gets what, and the secret only where it belongs.

mod common;

use axum::http::StatusCode;
use common::{participant, Harness, KEY};
use enclave_proto::ids::UserId;
use serde_json::Value;

#[tokio::test]
async fn server_key_rooms_hand_the_secret_to_their_participants_only() {
    let h = Harness::new().await;
    h.create(
        "sk",
        r#"{"end_to_end_encryption_features":{"is_enabled":true,"included_chat_messages":true}}"#,
    )
    .await;
    let t = h.join_token("sk", "ann", false, "").await;
    let (status, v, cache) = h
        .browser_request("POST", "/api/verifyToken", Some(&t), "{}")
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        cache.as_deref(),
        Some("no-store"),
        "the reply carrying a secret is never cached"
    );
    let secret = v["e2ee"]["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32);
    assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(v["e2ee"]["mode"], "server_key");
    assert_eq!(v["e2ee"]["generation"], 1, "the first epoch of the session");
    assert_eq!(v["e2ee"]["included_chat_messages"], true);
    assert_eq!(v["room"]["sid"].as_str().unwrap().len(), 36);
    assert_eq!(v["user"]["user_id"], "ann");
    // The media token is a LiveKit token for this room and identity.
    let media = v["media"]["token"].as_str().unwrap();
    let claims =
        enclave_server::auth::livekit::verify(&h.app.keys, &h.app.config.livekit.api_key, media)
            .unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.video.room.as_str()),
        ("ann", "sk")
    );

    // Bearer works too; a token of another room does not get this room's secret.
    let (status, _, _) = h
        .browser_request(
            "POST",
            "/api/verifyToken",
            Some(&format!("Bearer {t}")),
            "{}",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    h.create("other", "{}").await;
    let t2 = h.join_token("other", "ann", false, "").await;
    let (_, v2) = h.verify_token(&t2).await;
    assert!(v2["e2ee"].get("secret").is_none());
    assert_eq!(v2["e2ee"]["mode"], "off");
}

/// Each admission draws a new epoch; a participant in the room can fetch the current one (after
/// missing a delivery), nobody else can; a leaver is left behind.
#[tokio::test]
async fn key_epochs_move_on_with_every_arrival_and_departure() {
    let h = Harness::new().await;
    h.create(
        "ke",
        r#"{"end_to_end_encryption_features":{"is_enabled":true}}"#,
    )
    .await;
    let room = h.app.rooms.get_str("ke").unwrap();
    let ann = h.join_token("ke", "ann", true, "").await;
    let bob = h.join_token("ke", "bob", false, "").await;
    let epoch = |v: &Value| {
        (
            v["generation"].as_u64().unwrap_or(0),
            v["secret"].as_str().unwrap_or_default().to_owned(),
        )
    };

    let (_, v) = h.verify_token(&ann).await;
    let (g1, s1) = epoch(&v["e2ee"]);
    assert_eq!(g1, 1);
    // The secret of the history ann's browser keeps: the same at her next admission.
    let history = v["e2ee"]["history_secret"].as_str().unwrap().to_owned();
    assert_eq!(history.len(), 32);
    assert_ne!(history, s1);
    let (_, again) = h.verify_token(&ann).await;
    assert_eq!(again["e2ee"]["history_secret"], history.as_str());
    assert_eq!(
        epoch(&again["e2ee"]),
        (g1, s1.clone()),
        "admitted again with nothing changed: the epoch she holds, no switch for anyone"
    );
    // Not in the room yet: the current key is not theirs to fetch.
    let (status, v, _) = h
        .browser_request("POST", "/api/e2eeKey", Some(&ann), "{}")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(v.get("secret").is_none());
    room.join(participant("ann")).await.unwrap().unwrap();
    let (status, v, cache) = h
        .browser_request("POST", "/api/e2eeKey", Some(&ann), "{}")
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert_eq!(epoch(&v), (g1, s1.clone()));

    // Bob comes in: a new epoch, unrelated to the first, and ann's current key follows.
    let (_, v) = h.verify_token(&bob).await;
    let (g2, s2) = epoch(&v["e2ee"]);
    assert_eq!(g2, g1 + 1);
    assert_ne!(s2, s1);
    room.join(participant("bob")).await.unwrap().unwrap();
    let (_, v, _) = h
        .browser_request("POST", "/api/e2eeKey", Some(&ann), "{}")
        .await;
    assert_eq!(epoch(&v), (g2, s2.clone()));

    // Bob is removed: ann moves on to an epoch bob never sees, and bob can fetch nothing.
    let (status, _, _) = h
        .browser_request(
            "POST",
            "/api/removeParticipant",
            Some(&ann),
            r#"{"user_id":"bob"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, v, _) = h
        .browser_request("POST", "/api/e2eeKey", Some(&ann), "{}")
        .await;
    let (g3, s3) = epoch(&v);
    assert_eq!(g3, g2 + 1);
    assert!(s3 != s1 && s3 != s2);
    let (status, v, _) = h
        .browser_request("POST", "/api/e2eeKey", Some(&bob), "{}")
        .await;
    assert_ne!(status, StatusCode::OK, "{v}");
    assert!(v.get("secret").is_none());

    // Plain and self-insert rooms have no key to fetch.
    h.create("plain", "{}").await;
    let t = h.join_token("plain", "ann", false, "").await;
    let (status, v, _) = h
        .browser_request("POST", "/api/e2eeKey", Some(&t), "{}")
        .await;
    assert_eq!(status, StatusCode::OK, "a handler-level refusal: {v}");
    assert_eq!(v["status"], false);
    assert!(v.get("secret").is_none());
}

#[tokio::test]
async fn self_insert_rooms_have_no_secret_to_hand_out() {
    let h = Harness::new().await;
    h.create("si", r#"{"end_to_end_encryption_features":{"is_enabled":true,"enabled_self_insert_encryption_key":true}}"#).await;
    let t = h.join_token("si", "bob", false, "").await;
    let (_, v) = h.verify_token(&t).await;
    assert_eq!(v["e2ee"]["mode"], "self_insert");
    assert!(v["e2ee"].get("secret").is_none());
}

#[tokio::test]
async fn bad_tokens_are_refused_with_plugnmeet_messages() {
    let h = Harness::new().await;
    h.create("r", "{}").await;
    let (s, v, _) = h
        .browser_request("POST", "/api/verifyToken", None, "{}")
        .await;
    assert_eq!(
        (s, v["msg"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("notifications.auth-header-missing")
        )
    );
    let (s, v) = h.verify_token("not-a-jwt").await;
    assert_eq!(
        (s, v["msg"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("notifications.invalid-token")
        )
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = h.app.keys.sign(
        enclave_server::auth::TokenKind::Join,
        &enclave_proto::user::JoinClaims {
            iss: KEY.into(),
            sub: "x".into(),
            nbf: now - 1000,
            exp: now - 500,
            name: "x".into(),
            user_id: "x".into(),
            room_id: "r".into(),
            is_admin: false,
            is_hidden: false,
            client_type: 0,
            parent_room_id: String::new(),
        },
    );
    let (s, v) = h.verify_token(&expired).await;
    assert_eq!(
        (s, v["msg"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("notifications.token-expired")
        )
    );

    // A token of an earlier session of the same room id does not open the new session.
    let old = h.join_token("r", "ann", true, "").await;
    h.call("/auth/room/endRoom", r#"{"room_id":"r"}"#).await;
    let (s, v) = h.verify_token(&old).await;
    assert_eq!(
        (s, v["msg"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("notifications.room-not-active")
        )
    );
    h.create("r", "{}").await;
    let (s, v) = h.verify_token(&old).await;
    assert_eq!(
        (s, v["msg"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("notifications.user-info-not-found")
        )
    );
}

#[tokio::test]
async fn admin_actions_need_an_admin_token() {
    let h = Harness::new().await;
    h.create("adm", "{}").await;
    let user = h.join_token("adm", "u", false, "").await;
    let admin = h.join_token("adm", "a", true, "").await;
    for path in ["/api/endRoom", "/api/removeParticipant", "/api/muteTrack"] {
        let (s, v, _) = h
            .browser_request(
                "POST",
                path,
                Some(&user),
                r#"{"user_id":"u","track_sid":"TR_x"}"#,
            )
            .await;
        assert_eq!(
            (s, v["msg"].as_str()),
            (
                StatusCode::FORBIDDEN,
                Some("only admin can perform this task")
            ),
            "{path}"
        );
    }
    for (path, body, msg) in [
        (
            "/api/recording",
            r#"{"task":"START_RECORDING"}"#,
            "only admin can start recording",
        ),
        (
            "/api/rtmp",
            r#"{"task":"START_RTMP","url":"rtmp://8.8.8.8/live","stream_key":"k"}"#,
            "only admin can perform this task",
        ),
    ] {
        let (s, v, _) = h.browser_request("POST", path, Some(&user), body).await;
        assert_eq!(
            (s, v["msg"].as_str()),
            (StatusCode::FORBIDDEN, Some(msg)),
            "{path}"
        );
    }
    let (s, _, _) = h
        .browser_request(
            "POST",
            "/api/removeParticipant",
            Some(&admin),
            r#"{"user_id":"bad id"}"#,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "handler errors use the envelope");
    assert!(h.is_active("adm").await);
    let (s, _, _) = h
        .browser_request("POST", "/api/endRoom", Some(&admin), "{}")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(!h.is_active("adm").await);
}

#[tokio::test]
async fn recording_and_rtmp_are_refused_in_e2ee_rooms_of_both_modes() {
    let h = Harness::new().await;
    for (room, features) in [
        (
            "e2ee-server",
            r#"{"end_to_end_encryption_features":{"is_enabled":true}}"#,
        ),
        (
            "e2ee-self",
            r#"{"end_to_end_encryption_features":{"is_enabled":true,"enabled_self_insert_encryption_key":true}}"#,
        ),
    ] {
        h.create(room, features).await;
        let admin = h.join_token(room, "a", true, "").await;
        for (path, body) in [
            ("/api/recording", r#"{"task":"START"}"#),
            (
                "/api/rtmp",
                r#"{"task":"START","url":"rtmp://127.0.0.1/live","stream_key":"k"}"#,
            ),
        ] {
            let (s, v, _) = h.browser_request("POST", path, Some(&admin), body).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{room} {path}: {v}");
            assert!(
                v["msg"].as_str().unwrap().contains("end-to-end encrypted"),
                "{v}"
            );
        }
    }
    // A plain room with the default features, on a server without its media engine: a bad
    // URL or task is refused first, then the request gets past every check and is refused for
    // the missing engine.
    h.create("plain", "{}").await;
    let admin = h.join_token("plain", "a", true, "").await;
    let cases = [
        (
            "/api/rtmp",
            r#"{"task":"START_RTMP","url":"http://x"}"#,
            StatusCode::BAD_REQUEST,
            "rtmp://",
        ),
        // The server's own machine and networks are not a broadcast target by default.
        (
            "/api/rtmp",
            r#"{"task":"START_RTMP","url":"rtmp://127.0.0.1:1935/live","stream_key":"k"}"#,
            StatusCode::BAD_REQUEST,
            "rtmp_allow_private_targets",
        ),
        (
            "/api/rtmp",
            r#"{"task":"START_RTMP","url":"rtmp://169.254.169.254/latest"}"#,
            StatusCode::BAD_REQUEST,
            "loopback, private or link-local",
        ),
        (
            "/api/recording",
            r#"{"task":"PAUSE"}"#,
            StatusCode::BAD_REQUEST,
            "START_RECORDING",
        ),
        (
            "/api/recording",
            r#"{"task":"STOP_RECORDING"}"#,
            StatusCode::CONFLICT,
            "not running",
        ),
        (
            "/api/recording",
            r#"{"task":"START_RECORDING"}"#,
            StatusCode::SERVICE_UNAVAILABLE,
            "media engine",
        ),
    ];
    for (path, body, status, msg) in cases {
        let (s, v, _) = h.browser_request("POST", path, Some(&admin), body).await;
        assert_eq!(s, status, "{path} {body}: {v}");
        assert!(
            v["msg"].as_str().unwrap().contains(msg),
            "{path} {body}: {v}"
        );
    }
    // A room created with recording off.
    h.create("no-rec", r#"{"recording_features":{"is_allow":false}}"#)
        .await;
    let admin = h.join_token("no-rec", "a", true, "").await;
    let (s, v, _) = h
        .browser_request(
            "POST",
            "/api/recording",
            Some(&admin),
            r#"{"task":"START_RECORDING"}"#,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("not enabled"), "{v}");
}

#[tokio::test]
async fn tokens_renew_with_the_same_claims() {
    let h = Harness::new().await;
    h.create("ren", "{}").await;
    let t = h.join_token("ren", "ann", true, "").await;
    let (s, v, _) = h
        .browser_request("POST", "/api/renewToken", Some(&t), "{}")
        .await;
    assert_eq!(s, StatusCode::OK);
    let renewed = h
        .app
        .keys
        .verify_join(KEY, v["token"].as_str().unwrap(), Some("ren"))
        .unwrap();
    assert_eq!((renewed.user_id.as_str(), renewed.is_admin), ("ann", true));
}

#[tokio::test]
async fn a_removed_participant_cannot_come_back_with_the_tokens_they_hold() {
    let h = Harness::new().await;
    h.create(
        "rm",
        r#"{"end_to_end_encryption_features":{"is_enabled":true}}"#,
    )
    .await;
    let admin = h.join_token("rm", "a", true, "").await;
    let bob = h.join_token("rm", "bob", false, "").await;
    let (s, v) = h.verify_token(&bob).await;
    assert_eq!(s, StatusCode::OK);
    let media = v["media"]["token"].as_str().unwrap().to_owned();
    assert_eq!(h.rtc_validate(&media).await.0, StatusCode::OK);

    let (s, v, _) = h
        .browser_request(
            "POST",
            "/api/removeParticipant",
            Some(&admin),
            r#"{"user_id":"bob"}"#,
        )
        .await;
    assert_eq!((s, v["status"].as_bool()), (StatusCode::OK, Some(true)));
    // The join token no longer verifies or renews: no new media token, no secret.
    for path in ["/api/verifyToken", "/api/renewToken"] {
        let (s, v, _) = h.browser_request("POST", path, Some(&bob), "{}").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}: {v}");
        assert!(v.get("e2ee").is_none() && v.get("token").is_none(), "{v}");
    }
    // The media token held does not join again.
    let (s, why) = h.rtc_validate(&media).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(why.contains("removed"), "{why}");
    // Without a block, the integrator may let them back with a new join token.
    let again = h.join_token("rm", "bob", false, "").await;
    let (s, v) = h.verify_token(&again).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(h.rtc_validate(&media).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_blocked_participant_gets_no_token_secret_or_media_for_the_session() {
    let h = Harness::new().await;
    h.create(
        "ban",
        r#"{"end_to_end_encryption_features":{"is_enabled":true}}"#,
    )
    .await;
    let admin = h.join_token("ban", "a", true, "").await;
    let eve = h.join_token("ban", "eve", false, "").await;
    let (_, v) = h.verify_token(&eve).await;
    let media = v["media"]["token"].as_str().unwrap().to_owned();

    let (s, _, _) = h
        .browser_request(
            "POST",
            "/api/removeParticipant",
            Some(&admin),
            r#"{"user_id":"eve","block_user":true}"#,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = h.verify_token(&eve).await;
    assert_eq!(
        (s, v["msg"].as_str()),
        (StatusCode::FORBIDDEN, Some("notifications.you-are-blocked"))
    );
    assert!(v.get("e2ee").is_none(), "{v}");
    // getJoinToken refuses a new token for the same user id, as Plug-N-Meet does.
    let body = r#"{"room_id":"ban","user_info":{"name":"Eve","user_id":"eve","is_admin":false}}"#;
    let (_, v) = h.call("/auth/room/getJoinToken", body).await;
    assert_eq!(v["status"], false, "{v}");
    assert_eq!(v["status_code"], "USER_BLOCKED", "{v}");
    assert_eq!(v["msg"], "this user is blocked to join this session");
    assert!(v.get("token").is_none_or(|t| t.as_str() == Some("")), "{v}");
    let (s, why) = h.rtc_validate(&media).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(why.contains("blocked"), "{why}");
    // Everyone else is untouched.
    let ann = h.join_token("ban", "ann", false, "").await;
    assert_eq!(
        h.browser_request("POST", "/api/verifyToken", Some(&ann), "{}")
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_media_token_is_good_for_its_own_session_only() {
    let h = Harness::new().await;
    h.create("sess", "{}").await;
    let ann = h.join_token("sess", "ann", false, "").await;
    let (_, v) = h.verify_token(&ann).await;
    let media = v["media"]["token"].as_str().unwrap().to_owned();
    assert_eq!(h.rtc_validate(&media).await.0, StatusCode::OK);
    let admin = h.join_token("sess", "a", true, "").await;
    assert_eq!(
        h.browser_request("POST", "/api/endRoom", Some(&admin), "{}")
            .await
            .0,
        StatusCode::OK
    );
    // The same room id again: a new session, where the old media token does not join.
    h.create("sess", "{}").await;
    let (s, why) = h.rtc_validate(&media).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(why.contains("earlier session"), "{why}");
}

#[tokio::test]
async fn a_hidden_user_in_an_encrypted_room_is_shown_to_everyone_as_an_observer() {
    let h = Harness::new().await;
    h.create(
        "obs",
        r#"{"end_to_end_encryption_features":{"is_enabled":true}}"#,
    )
    .await;
    h.create("plain-obs", "{}").await;
    let hidden_token = |room: &str| {
        format!(
            r#"{{"room_id":"{room}","user_info":{{"name":"Eve","user_id":"eve","is_admin":true,"is_hidden":true}}}}"#
        )
    };
    let media_claims = |v: &Value| {
        enclave_server::auth::livekit::verify(
            &h.app.keys,
            &h.app.config.livekit.api_key,
            v["media"]["token"].as_str().unwrap(),
        )
        .unwrap()
    };
    let (_, t) = h
        .call("/auth/room/getJoinToken", &hidden_token("obs"))
        .await;
    let (s, v, _) = h
        .browser_request("POST", "/api/verifyToken", t["token"].as_str(), "{}")
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        v["e2ee"]["secret"].is_string(),
        "an observer still decrypts"
    );
    assert_eq!(
        (
            v["user"]["is_hidden"].as_bool(),
            v["user"]["is_observer"].as_bool()
        ),
        (Some(false), Some(true)),
        "{v}"
    );
    let c = media_claims(&v);
    assert!(
        !c.video.hidden,
        "the media token does not hide them: {:?}",
        c.video
    );
    assert_eq!(
        c.video.can_publish,
        Some(false),
        "an observer publishes nothing"
    );

    // In a plain room hidden stays hidden, as in Plug-N-Meet.
    let (_, t) = h
        .call("/auth/room/getJoinToken", &hidden_token("plain-obs"))
        .await;
    let (_, v, _) = h
        .browser_request("POST", "/api/verifyToken", t["token"].as_str(), "{}")
        .await;
    assert_eq!(v["user"]["is_hidden"], true);
    assert!(media_claims(&v).video.hidden);
}

#[tokio::test]
async fn the_rooms_default_locks_fill_what_a_join_token_leaves_unset() {
    let h = Harness::new().await;
    let create = |room: &str, locks: &str| {
        format!(
            r#"{{"room_id":"{room}","metadata":{{"room_title":"{room}","room_features":{{}}{locks}}}}}"#
        )
    };
    for (room, locks) in [
        (
            "dl",
            r#","default_lock_settings":{"lock_webcam":true,"lock_screen_sharing":false}"#,
        ),
        ("plain-defaults", ""),
    ] {
        let (_, v) = h.call("/auth/room/create", &create(room, locks)).await;
        assert_eq!(v["status"], true, "{v}");
    }
    // (can_publish, canPublishSources) of the media token `token` gets.
    let grant = |token: String| {
        let h = &h;
        async move {
            let (_, v) = h.verify_token(&token).await;
            let c = enclave_server::auth::livekit::verify(
                &h.app.keys,
                &h.app.config.livekit.api_key,
                v["media"]["token"].as_str().unwrap(),
            )
            .unwrap();
            (c.video.can_publish, c.video.can_publish_sources.unwrap())
        }
    };
    // Nothing set by the request: the room's webcam lock holds.
    let ann = h.join_token("dl", "ann", false, "").await;
    assert_eq!(
        grant(ann).await,
        (
            Some(true),
            vec![
                "microphone".into(),
                "screen_share".into(),
                "screen_share_audio".into()
            ]
        )
    );
    // The request's own lock_webcam:false wins over the default: nothing is restricted, which
    // is LiveKit's "any source".
    let body = r#"{"room_id":"dl","user_info":{"name":"Bob","user_id":"bob","is_admin":false,"user_metadata":{"lock_settings":{"lock_webcam":false}}}}"#;
    let (_, t) = h.call("/auth/room/getJoinToken", body).await;
    assert_eq!(
        grant(t["token"].as_str().unwrap().to_owned()).await,
        (Some(true), vec![])
    );
    // Admins are never locked.
    let host = h.join_token("dl", "host", true, "").await;
    assert_eq!(grant(host).await, (Some(true), vec![]));
    // Without default locks, Plug-N-Meet's defaults apply: screen sharing is locked for
    // participants.
    let cat = h.join_token("plain-defaults", "cat", false, "").await;
    assert_eq!(
        grant(cat).await,
        (Some(true), vec!["camera".into(), "microphone".into()])
    );
}

/// Hands: anyone raises and lowers their own, an admin lowers anyone's or everyone's; nobody
/// raises another's; a room can turn raising off. The hand shows in the participant's metadata.
#[tokio::test]
async fn hands_are_raised_by_their_owner_and_lowered_by_them_or_an_admin() {
    let h = Harness::new().await;
    h.create("hands", "{}").await;
    let ann = h.join_token("hands", "ann", true, "").await;
    let bob = h.join_token("hands", "bob", false, "").await;
    let cat = h.join_token("hands", "cat", false, "").await;
    let room = h.app.rooms.get_str("hands").unwrap();
    room.join(participant("bob")).await.unwrap().unwrap();
    let hand = |body: &'static str, t: &str| {
        let t = t.to_owned();
        let h = &h;
        async move {
            h.browser_request("POST", "/api/raiseHand", Some(&t), body)
                .await
        }
    };
    let (s, v, _) = hand(r#"{"raise":true}"#, &bob).await;
    assert_eq!((s, v["changed"].clone()), (StatusCode::OK, 1.into()), "{v}");
    let (s, _, _) = hand(r#"{"raise":true}"#, &cat).await;
    assert_eq!(s, StatusCode::OK);
    // In bob's metadata, as the integrator sees it too.
    let (_, info) = h
        .call("/auth/room/getActiveRoomInfo", r#"{"room_id":"hands"}"#)
        .await;
    let meta: Value = serde_json::from_str(
        info["room"]["participants_info"][0]["metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(meta["raised_hand"]["is_raised"], true, "{meta}");
    // Nobody raises another's hand; a non-admin lowers no one else's.
    let (s, _, _) = hand(r#"{"raise":true,"user_id":"ann"}"#, &bob).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = hand(r#"{"raise":false,"user_id":"cat"}"#, &bob).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The admin lowers one, then all.
    let (_, v, _) = hand(r#"{"raise":false,"user_id":"cat"}"#, &ann).await;
    assert_eq!(v["changed"], 1);
    let (_, v, _) = hand(r#"{"raise":false,"user_id":"all"}"#, &ann).await;
    assert_eq!(v["changed"], 1, "only bob's was still up: {v}");
    let (_, v, _) = hand(r#"{"raise":false}"#, &bob).await;
    assert_eq!(v["changed"], 0);

    h.create("quiet", r#"{"allow_raise_hand":false}"#).await;
    let t = h.join_token("quiet", "bob", false, "").await;
    let (s, v, _) = h
        .browser_request("POST", "/api/raiseHand", Some(&t), r#"{"raise":true}"#)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("turned off"), "{v}");
}

/// Plug-N-Meet's presenter: the first admin, then whoever an admin promotes; demoting gives it
/// back to the admin who asked. Only admins switch it; an unknown user is 404.
#[tokio::test]
async fn an_admin_switches_the_presenter_and_there_is_only_one() {
    let h = Harness::new().await;
    h.create("pres", "{}").await;
    let ann = h.join_token("pres", "ann", true, "").await;
    let bob = h.join_token("pres", "bob", false, "").await;
    let room = h.app.rooms.get_str("pres").unwrap();
    let is_presenter = |u: &'static str| {
        let room = room.clone();
        async move {
            room.invitation(UserId::parse(u).unwrap())
                .await
                .unwrap()
                .unwrap()
                .metadata
                .is_presenter
        }
    };
    assert!(is_presenter("ann").await, "the first admin presents");
    assert!(!is_presenter("bob").await);
    let switch = |t: &str, body: &'static str| {
        let t = t.to_owned();
        let h = &h;
        async move {
            h.browser_request("POST", "/api/switchPresenter", Some(&t), body)
                .await
        }
    };
    let (s, _, _) = switch(&bob, r#"{"task":"PROMOTE","user_id":"bob"}"#).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "only admins switch it");
    let (s, v, _) = switch(&ann, r#"{"task":"PROMOTE","user_id":"bob"}"#).await;
    assert_eq!((s, v["changed"].clone()), (StatusCode::OK, 2.into()), "{v}");
    assert!(is_presenter("bob").await && !is_presenter("ann").await);
    let (_, v, _) = switch(&ann, r#"{"task":"DEMOTE","user_id":"bob"}"#).await;
    assert_eq!(v["changed"], 2);
    assert!(!is_presenter("bob").await && is_presenter("ann").await);
    let (s, _, _) = switch(&ann, r#"{"task":"PROMOTE","user_id":"nobody"}"#).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v, _) = switch(&ann, r#"{"task":"CROWN","user_id":"bob"}"#).await;
    assert_eq!(v["status"], false, "{v}");
    assert!(
        v["msg"].as_str().unwrap().contains("PROMOTE or DEMOTE"),
        "{v}"
    );
}
