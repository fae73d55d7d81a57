#![allow(clippy::unwrap_used)]
//! Room lifecycle through the API: empty timeout, duration, capacity, end, history, webhooks.
//! Timer tests run in virtual time (`start_paused`), so minutes pass instantly.

mod common;

use std::time::Duration;

use base64::Engine;
use common::{participant, Harness, Receiver, KEY, SECRET};
use enclave_proto::ids::UserId;
use enclave_server::rooms::core::JoinError;
use sha2::Digest;

async fn past_sids(h: &Harness, room_id: &str) -> Vec<String> {
    let (_, v) = h
        .call(
            "/auth/room/fetchPastRooms",
            &format!(r#"{{"room_ids":["{room_id}"]}}"#),
        )
        .await;
    v["result"]["rooms_list"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|r| r["room_sid"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Lets the room owner and the store settle without moving virtual time.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[tokio::test(start_paused = true)]
async fn empty_room_ends_after_its_empty_timeout() {
    let h = Harness::new().await;
    let v = h
        .create_with("lonely", r#""empty_timeout":300,"#, "{}")
        .await;
    let sid = v["room_info"]["sid"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(299)).await;
    assert!(h.is_active("lonely").await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    settle().await;
    assert!(!h.is_active("lonely").await);
    assert_eq!(past_sids(&h, "lonely").await, vec![sid]);
}

#[tokio::test(start_paused = true)]
async fn occupied_room_stays_and_empty_timeout_restarts_when_the_last_one_leaves() {
    let h = Harness::new().await;
    h.create_with("busy", r#""empty_timeout":120,"#, "{}").await;
    let room = h.app.rooms.get_str("busy").unwrap();
    room.join(participant("a")).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(
        h.is_active("busy").await,
        "an occupied room does not time out"
    );
    room.leave(UserId::parse("a").unwrap(), None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(119)).await;
    assert!(h.is_active("busy").await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    settle().await;
    assert!(!h.is_active("busy").await);
}

#[tokio::test(start_paused = true)]
async fn room_duration_ends_the_meeting_counting_from_the_first_join() {
    let h = Harness::new().await;
    h.create("timed", r#"{"room_duration":2}"#).await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    let room = h.app.rooms.get_str("timed").unwrap();
    room.join(participant("a")).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_secs(119)).await;
    assert!(h.is_active("timed").await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    settle().await;
    assert!(!h.is_active("timed").await);
}

#[tokio::test]
async fn max_participants_refuses_joins_once_full() {
    let h = Harness::new().await;
    h.create_with("small", r#""max_participants":2,"#, "{}")
        .await;
    let room = h.app.rooms.get_str("small").unwrap();
    room.join(participant("a")).await.unwrap().unwrap();
    room.join(participant("b")).await.unwrap().unwrap();
    assert_eq!(
        room.join(participant("c")).await.unwrap(),
        Err(JoinError::RoomFull)
    );
    room.join(participant("a"))
        .await
        .unwrap()
        .expect("a reconnect takes its own seat");
    room.leave(UserId::parse("b").unwrap(), None).await.unwrap();
    room.join(participant("c"))
        .await
        .unwrap()
        .expect("a seat freed up");
    let (_, v) = h
        .call("/auth/room/getActiveRoomInfo", r#"{"room_id":"small"}"#)
        .await;
    let ids: Vec<&str> = v["room"]["participants_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["identity"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "c"]);
}

#[tokio::test]
async fn end_room_disconnects_everyone_and_history_shows_the_session() {
    let h = Harness::new().await;
    let v = h.create("meeting", "{}").await;
    let sid = v["room_info"]["sid"].as_str().unwrap().to_owned();
    let room = h.app.rooms.get_str("meeting").unwrap();
    room.join(participant("a")).await.unwrap().unwrap();
    room.join(participant("b")).await.unwrap().unwrap();
    let (_, v) = h
        .call("/auth/room/endRoom", r#"{"room_id":"meeting"}"#)
        .await;
    assert_eq!(
        (v["status"].as_bool(), v["msg"].as_str()),
        (Some(true), Some("success"))
    );
    assert!(!h.is_active("meeting").await);
    let (_, v) = h
        .call("/auth/room/fetchPastRooms", r#"{"room_ids":["meeting"]}"#)
        .await;
    let row = &v["result"]["rooms_list"][0];
    assert_eq!(row["room_sid"], sid.as_str());
    assert_eq!(row["joined_participants"], "2");
    assert_eq!(v["result"]["total_rooms"], "1");
    let created = time::OffsetDateTime::parse(
        row["created"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let ended = time::OffsetDateTime::parse(
        row["ended"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(ended >= created);
    // A new session of the same room id is a new sid.
    let v = h.create("meeting", "{}").await;
    assert_ne!(v["room_info"]["sid"], sid.as_str());
}

#[tokio::test]
async fn join_tokens_carry_plugnmeet_claims() {
    let h = Harness::new().await;
    h.create("tok", r#"{"auto_gen_user_id":false}"#).await;
    let (_, v) = h
        .call("/auth/room/getJoinToken", r#"{"room_id":"tok","user_info":{"name":"Ann","user_id":"ann","is_admin":true,"is_hidden":true}}"#)
        .await;
    let token = v["token"].as_str().unwrap();
    let claims = h.app.keys.verify_join(KEY, token, Some("tok")).unwrap();
    assert_eq!(
        (
            claims.sub.as_str(),
            claims.user_id.as_str(),
            claims.name.as_str()
        ),
        ("ann", "ann", "Ann")
    );
    assert!(claims.is_admin && claims.is_hidden);
    assert_eq!(claims.exp - claims.nbf, 600);
    assert!(matches!(
        h.app.keys.verify_join(KEY, token, Some("other-room")),
        Err(enclave_server::auth::TokenError::WrongRoom { .. })
    ));

    h.create("auto", r#"{"auto_gen_user_id":true}"#).await;
    let (_, v) = h
        .call(
            "/auth/room/getJoinToken",
            r#"{"room_id":"auto","user_info":{"name":"Bo","user_id":"bo"}}"#,
        )
        .await;
    let claims = h
        .app
        .keys
        .verify_join(KEY, v["token"].as_str().unwrap(), None)
        .unwrap();
    assert_ne!(claims.user_id, "bo");
    assert!(
        uuid::Uuid::parse_str(&claims.user_id).is_ok(),
        "generated ids are UUIDs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_ordered_and_retried() {
    let hooks = Receiver::start(1).await;
    let url = hooks.url.clone();
    let h = Harness::with(|c| {
        c.webhooks.enable = true;
        c.webhooks.url = Some(url);
        c.webhooks.retry_base = Duration::from_millis(20);
    })
    .await;
    let v = h.create("hooked", "{}").await;
    let sid = v["room_info"]["sid"].as_str().unwrap().to_owned();
    let room = h.app.rooms.get_str("hooked").unwrap();
    room.join(participant("a")).await.unwrap().unwrap();
    room.leave(UserId::parse("a").unwrap(), None).await.unwrap();
    h.call("/auth/room/endRoom", r#"{"room_id":"hooked"}"#)
        .await;

    let got = hooks.wait_for(8).await;
    let events: Vec<String> = got.iter().map(|h| h.event()).collect();
    assert_eq!(
        events,
        [
            "room_created",
            "room_started",
            "participant_joined",
            "participant_left",
            "room_finished",
            "session_ended",
            "artifact_created",
            "analytics_proceeded"
        ]
    );
    assert_eq!(
        *hooks.attempts.lock().unwrap(),
        9,
        "the first delivery failed once and was retried"
    );
    for hook in &got {
        let token = hook.headers["authorization"].to_str().unwrap();
        assert_eq!(hook.headers["hash-token"], token);
        assert_eq!(hook.headers["content-type"], "application/json");
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.set_issuer(&[KEY]);
        v.set_required_spec_claims(&["exp", "iss"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            token,
            &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
            &v,
        )
        .unwrap()
        .claims;
        let expected =
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&hook.body));
        assert_eq!(claims["sha256"], expected.as_str());
        let body = hook.json();
        assert_eq!(body["room"]["sid"], sid.as_str());
        assert_eq!(body["room"]["room_id"], "hooked");
        assert!(
            body["created_at"].as_str().unwrap().parse::<i64>().is_ok(),
            "int64 as string"
        );
        assert!(uuid::Uuid::parse_str(body["id"].as_str().unwrap()).is_ok());
    }
    assert_eq!(got[2].json()["participant"]["identity"], "a");
}

#[tokio::test]
async fn broadcast_to_admins_needs_an_online_admin() {
    let h = Harness::new().await;
    h.create("talk", "{}").await;
    h.call(
        "/auth/room/getJoinToken",
        r#"{"room_id":"talk","user_info":{"name":"Ann","user_id":"ann","is_admin":true}}"#,
    )
    .await;
    let room = h.app.rooms.get_str("talk").unwrap();
    room.join(participant("bob")).await.unwrap().unwrap();
    let body = r#"{"room_id":"talk","only_to_admins":true,"notification_msg":{"text":"hello","type":"NATS_SYSTEM_NOTIFICATION_WARNING"}}"#;
    let (_, v) = h.call("/auth/room/broadcastToRoom", body).await;
    assert_eq!(
        (v["status"].as_bool(), v["msg"].as_str()),
        (Some(false), Some("no online admin user found"))
    );
    room.join(participant("ann")).await.unwrap().unwrap();
    let (_, v) = h.call("/auth/room/broadcastToRoom", body).await;
    assert_eq!(v["status"], true, "{v}");
    let (_, v) = h
        .call(
            "/auth/room/broadcastToRoom",
            r#"{"roomId":"talk","chatMsg":{"message":"to all"}}"#,
        )
        .await;
    assert_eq!(v["status"], true, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_room_id_give_one_session_and_other_ids_proceed() {
    let h = std::sync::Arc::new(Harness::new().await);
    let mut tasks = Vec::new();
    for i in 0..24 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let id = if i % 2 == 0 {
                "same".to_owned()
            } else {
                format!("other-{i}")
            };
            let v = h.create(&id, "{}").await;
            (id, v["room_info"]["sid"].as_str().unwrap().to_owned())
        }));
    }
    let mut same = std::collections::HashSet::new();
    for t in tasks {
        let (id, sid) = t.await.unwrap();
        if id == "same" {
            same.insert(sid);
        }
    }
    assert_eq!(same.len(), 1, "one live session per room id");
    assert_eq!(h.app.rooms.len(), 13);
    assert_eq!(
        h.app.rooms.creations_in_progress(),
        0,
        "no creation entry is left behind"
    );
    let (_, v) = h
        .call("/auth/room/fetchPastRooms", r#"{"room_ids":["same"]}"#)
        .await;
    assert_eq!(
        v["status"], false,
        "no orphaned session rows for the losing creates"
    );
}
