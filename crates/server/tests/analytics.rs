#![allow(clippy::unwrap_used)]
//! Attendance and analytics: what a session leaves behind as its `MEETING_ANALYTICS` artifact,
//! the webhooks that announce it, and that an encrypted room's poll texts never enter it.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use common::{participant, Harness, Receiver};
use enclave_proto::ids::UserId;
use enclave_server::rooms::analytics::Activity;
use serde_json::{json, Value};

/// A join token whose metadata names an external user id (which the analytics file carries).
async fn token(h: &Harness, room: &str, user: &str, admin: bool) -> String {
    let extra = format!(r#","user_metadata":{{"ex_user_id":"ext-{user}"}}"#);
    h.join_token(room, user, admin, &extra).await
}

/// The analytics file of `room`, through the API an integrator uses.
async fn analytics_file(h: &Harness, room: &str) -> (String, Value) {
    let (_, v) = h
        .call(
            "/auth/analytics/fetch",
            &json!({ "room_ids": [room] }).to_string(),
        )
        .await;
    assert_eq!(v["status"], true, "{v}");
    let file_id = v["result"]["analytics_list"][0]["file_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, t) = h
        .call(
            "/auth/analytics/getDownloadToken",
            &json!({ "file_id": file_id }).to_string(),
        )
        .await;
    let token = t["token"].as_str().unwrap();
    let (s, bytes) = h
        .send(
            Request::get(format!("/download/analytics/{token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    (file_id, serde_json::from_slice(&bytes).unwrap())
}

fn user_events(file: &Value, user: &str) -> Value {
    let u = file["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user_id"] == user)
        .unwrap();
    let mut out = serde_json::Map::new();
    for e in u["events"].as_array().unwrap() {
        out.insert(e["name"].as_str().unwrap().to_owned(), e.clone());
    }
    Value::Object(out)
}

#[tokio::test]
async fn a_session_leaves_who_came_when_who_spoke_chatted_raised_hands_and_voted() {
    let hooks = Receiver::start(0).await;
    let url = hooks.url.clone();
    let h = Harness::with(|c| {
        c.webhooks.enable = true;
        c.webhooks.url = Some(url);
        c.webhooks.retry_base = Duration::from_millis(20);
    })
    .await;
    h.create("class", "{}").await;
    let ann = token(&h, "class", "ann", true).await;
    let bob = token(&h, "class", "bob", false).await;
    let room = h.app.rooms.get_str("class").unwrap();
    for u in ["ann", "bob"] {
        room.join(participant(u)).await.unwrap().unwrap();
    }
    let bob_id = UserId::parse("bob").unwrap();
    room.activity(bob_id.clone(), Activity::Speaking(true));
    room.activity(bob_id.clone(), Activity::PublicChat);
    room.activity(bob_id.clone(), Activity::PublicChat);
    room.activity(bob_id.clone(), Activity::PrivateChat);
    tokio::time::sleep(Duration::from_millis(30)).await;
    room.activity(bob_id.clone(), Activity::Speaking(false));
    h.browser("POST", "/api/raiseHand", &bob, json!({ "raise": true }))
        .await;
    let poll = json!({ "question": "Lunch?", "options": [{ "id": 1, "text": "Pizza" }, { "id": 2, "text": "Soup" }] });
    let id = h.browser("POST", "/api/polls/create", &ann, poll).await["poll_id"]
        .as_str()
        .unwrap()
        .to_owned();
    h.browser(
        "POST",
        "/api/polls/submitResponse",
        &bob,
        json!({ "poll_id": id, "selected_option": 2 }),
    )
    .await;
    h.browser(
        "POST",
        "/api/polls/closePoll",
        &ann,
        json!({ "poll_id": id }),
    )
    .await;
    room.leave(bob_id, None).await.unwrap();
    let (_, v) = h.call("/auth/room/endRoom", r#"{"room_id":"class"}"#).await;
    assert_eq!(v["status"], true);

    let (file_id, file) = analytics_file(&h, "class").await;
    assert_eq!(file["room"]["room_id"], "class");
    assert_eq!(file["room"]["room_total_users"], "2");
    assert_eq!(file["room"]["enabled_e2ee"], false);
    let b = user_events(&file, "bob");
    assert_eq!(
        (b["joined"]["total"].as_u64(), b["left"]["total"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (
            b["public_chat"]["total"].as_u64(),
            b["private_chat"]["total"].as_u64()
        ),
        (Some(2), Some(1))
    );
    assert!(b["talked_duration"]["total"].as_u64().unwrap() >= 30, "{b}");
    assert_eq!(b["raise_hand"]["total"], 1);
    let vote: Value =
        serde_json::from_str(b["voted_poll"]["values"][0]["value"].as_str().unwrap()).unwrap();
    assert_eq!(vote, json!({ "poll_id": id, "selected_option": 2 }));
    let u = file["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user_id"] == "bob")
        .unwrap();
    assert_eq!(
        (
            u["name"].as_str(),
            u["ex_user_id"].as_str(),
            u["is_admin"].as_bool()
        ),
        (Some("bob"), Some("ext-bob"), Some(false))
    );
    let room_events = file["room"]["events"].to_string();
    assert!(
        room_events.contains("poll_added") && room_events.contains("Lunch?"),
        "a plain room's poll text is kept: {room_events}"
    );

    // Announced once the file exists, after the session's end.
    for _ in 0..500 {
        if hooks.events().iter().any(|e| e == "analytics_proceeded") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let got = hooks.wait_for(0).await;
    let names: Vec<String> = got.iter().map(|h| h.event()).collect();
    let at = |n: &str| {
        names
            .iter()
            .position(|x| x == n)
            .unwrap_or_else(|| panic!("{n} in {names:?}"))
    };
    assert!(
        at("room_finished") < at("artifact_created")
            && at("artifact_created") < at("analytics_proceeded"),
        "{names:?}"
    );
    let created = got
        .iter()
        .find(|h| h.event() == "artifact_created")
        .unwrap()
        .json();
    assert_eq!(
        (
            created["room_artifact"]["type"].as_str(),
            created["room_artifact"]["artifact_id"].as_str()
        ),
        (Some("MEETING_ANALYTICS"), Some(file_id.as_str()))
    );
    let proceeded = got
        .iter()
        .find(|h| h.event() == "analytics_proceeded")
        .unwrap()
        .json();
    assert_eq!(proceeded["analytics"]["file_id"], file_id.as_str());

    // The past session names its analytics file.
    let (_, past) = h
        .call("/auth/room/fetchPastRooms", r#"{"room_ids":["class"]}"#)
        .await;
    assert_eq!(
        past["result"]["rooms_list"][0]["analytics_file_id"],
        file_id.as_str(),
        "{past}"
    );

    // The artifact API sees the same file; deleting it removes the file too.
    let (_, v) = h
        .call(
            "/auth/artifact/fetch",
            r#"{"room_ids":["class"],"type":"MEETING_ANALYTICS"}"#,
        )
        .await;
    assert_eq!(
        v["result"]["artifacts_list"][0]["artifact_id"],
        file_id.as_str()
    );
    let path = h.app.config.artifacts_path.join(
        v["result"]["artifacts_list"][0]["metadata"]["file_info"]["file_path"]
            .as_str()
            .unwrap(),
    );
    assert!(path.exists());
    let (_, v) = h
        .call(
            "/auth/analytics/delete",
            &json!({ "file_id": file_id }).to_string(),
        )
        .await;
    assert_eq!(v["status"], true);
    assert!(!path.exists());
}

#[tokio::test]
async fn an_encrypted_rooms_analytics_hold_counts_and_never_a_poll_text() {
    let h = Harness::new().await;
    h.create(
        "sealed",
        r#"{"end_to_end_encryption_features":{"is_enabled":true}}"#,
    )
    .await;
    let ann = token(&h, "sealed", "ann", true).await;
    let room = h.app.rooms.get_str("sealed").unwrap();
    room.join(participant("ann")).await.unwrap().unwrap();
    // What a client seals: an envelope the server can store but not open.
    let sealed =
        |n: u8| base64::engine::general_purpose::STANDARD.encode([&[1u8][..], &[n; 40]].concat());
    let poll = json!({ "poll_id": "p1", "question": sealed(7), "options": [{ "id": 1, "text": sealed(8) }, { "id": 2, "text": sealed(9) }] });
    h.browser("POST", "/api/polls/create", &ann, poll).await;
    h.browser(
        "POST",
        "/api/polls/submitResponse",
        &ann,
        json!({ "poll_id": "p1", "selected_option": 1 }),
    )
    .await;
    h.browser(
        "POST",
        "/api/polls/closePoll",
        &ann,
        json!({ "poll_id": "p1" }),
    )
    .await;
    h.call("/auth/room/endRoom", r#"{"room_id":"sealed"}"#)
        .await;
    let (_, file) = analytics_file(&h, "sealed").await;
    assert_eq!(file["room"]["enabled_e2ee"], true);
    let text = file.to_string();
    for n in [7u8, 8, 9] {
        assert!(!text.contains(&sealed(n)), "no sealed text in the file");
    }
    assert!(
        text.contains("poll_added") && text.contains("\"vote_count\\\":1"),
        "{text}"
    );
    assert_eq!(user_events(&file, "ann")["voted_poll"]["total"], 1);

    // A room created with analytics off leaves none.
    h.create("quiet", r#"{"enable_analytics":false}"#).await;
    h.call("/auth/room/endRoom", r#"{"room_id":"quiet"}"#).await;
    let (_, v) = h
        .call("/auth/analytics/fetch", r#"{"room_ids":["quiet"]}"#)
        .await;
    assert_eq!(
        (v["status"].as_bool(), v["msg"].as_str()),
        (Some(false), Some("no artifact found"))
    );
}
