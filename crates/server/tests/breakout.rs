#![allow(clippy::unwrap_used)]
//! Breakout rooms through the browser API: an admin opens rooms for assigned people, each is a
//! session of its own (in an E2EE room with its own secret), people join theirs and come back,
//! and the rooms end early, on time or with their parent.

mod common;

use axum::http::StatusCode;
use common::{participant, Harness};
use serde_json::{json, Value};

fn plan(minutes: u64) -> Value {
    json!({
        "duration": minutes,
        "rooms": [
            { "id": "1", "title": "Room 1", "users": [{ "id": "bob", "name": "N bob" }] },
            { "id": "2", "title": "Room 2", "users": [{ "id": "cat", "name": "N cat" }] },
        ],
    })
}

#[tokio::test]
async fn an_admin_opens_rooms_people_join_theirs_and_come_back() {
    let h = Harness::new().await;
    h.create(
        "class",
        r#"{"end_to_end_encryption_features":{"is_enabled":true}}"#,
    )
    .await;
    let ann = h.join_token("class", "ann", true, "").await;
    let bob = h.join_token("class", "bob", false, "").await;
    let cat = h.join_token("class", "cat", false, "").await;

    // Only an admin opens them; nobody can be assigned twice or be someone unknown.
    let (s, _) = h
        .browser_call("POST", "/api/breakoutRoom/create", &bob, plan(10))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let mut unknown = plan(10);
    unknown["rooms"][0]["users"][0]["id"] = "zed".into();
    let v = h
        .browser("POST", "/api/breakoutRoom/create", &ann, unknown)
        .await;
    assert_eq!(v["status"], false, "{v}");
    let v = h
        .browser("POST", "/api/breakoutRoom/create", &ann, plan(10))
        .await;
    assert_eq!(v["status"], true, "{v}");
    let v = h
        .browser("POST", "/api/breakoutRoom/create", &ann, plan(10))
        .await;
    assert!(
        v["msg"].as_str().unwrap().contains("running already"),
        "{v}"
    );

    // Each is a room of its own, listed as a breakout room of its parent.
    let (_, rooms) = h.call("/auth/room/getActiveRoomsInfo", "{}").await;
    let mut bk: Vec<(String, Value)> = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["room_info"]["room_id"].as_str().unwrap().to_owned(),
                serde_json::from_str::<Value>(r["room_info"]["metadata"].as_str().unwrap())
                    .unwrap(),
            )
        })
        .filter(|(_, m)| m["is_breakout_room"] == true)
        .collect();
    bk.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        bk.iter().map(|b| b.0.as_str()).collect::<Vec<_>>(),
        ["class-1", "class-2"]
    );
    assert_eq!(bk[0].1["parent_room_id"], "class");
    assert_eq!(
        bk[0].1["room_features"]["room_duration"], "10",
        "uint64 as a string"
    );
    assert_eq!(
        bk[0].1["room_features"]["end_to_end_encryption_features"]["is_enabled"],
        true
    );

    // Bob sees his room, may join it (not cat's), and gets a session with other keys.
    let (_, mine) = h
        .browser_call("GET", "/api/breakoutRoom/myRooms", &bob, Value::Null)
        .await;
    assert_eq!(mine["room"]["id"], "class-1", "{mine}");
    let (s, _) = h
        .browser_call(
            "POST",
            "/api/breakoutRoom/join",
            &bob,
            json!({ "breakout_room_id": "class-2" }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let joined = h
        .browser(
            "POST",
            "/api/breakoutRoom/join",
            &bob,
            json!({ "breakout_room_id": "class-1" }),
        )
        .await;
    let bk_token = joined["token"].as_str().unwrap().to_owned();
    let main = h.browser("POST", "/api/verifyToken", &bob, json!({})).await;
    let inside = h
        .browser("POST", "/api/verifyToken", &bk_token, json!({}))
        .await;
    assert_eq!(
        (
            inside["room"]["room_id"].as_str(),
            inside["room"]["is_breakout_room"].as_bool()
        ),
        (Some("class-1"), Some(true))
    );
    assert_eq!(inside["room"]["parent_room_id"], "class");
    assert!(inside["room"]["ends_at"].as_i64().unwrap() > 0);
    assert_ne!(
        inside["room"]["sid"], main["room"]["sid"],
        "a session of its own"
    );
    assert_ne!(
        inside["e2ee"]["secret"], main["e2ee"]["secret"],
        "a fresh secret"
    );
    assert_ne!(
        inside["e2ee"]["content_secret"],
        main["e2ee"]["content_secret"]
    );
    // An admin may join any of them.
    h.browser(
        "POST",
        "/api/breakoutRoom/join",
        &ann,
        json!({ "breakout_room_id": "class-2" }),
    )
    .await;

    // The list shows who is in which room.
    let bk_room = h.app.rooms.get_str("class-1").unwrap();
    bk_room.join(participant("bob")).await.unwrap().unwrap();
    let (_, list) = h
        .browser_call("GET", "/api/breakoutRoom/listRooms", &ann, Value::Null)
        .await;
    assert_eq!(list["rooms"][0]["users"][0]["joined"], true, "{list}");
    let (s, _) = h
        .browser_call("GET", "/api/breakoutRoom/listRooms", &cat, Value::Null)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Messages to every room would pass through the server in clear in an E2EE room.
    let v = h
        .browser(
            "POST",
            "/api/breakoutRoom/sendMsg",
            &ann,
            json!({ "msg": "five minutes left" }),
        )
        .await;
    assert_eq!(v["status"], false, "{v}");

    // More time for a room: only an admin gives it, and the list says the new end.
    let before = list["rooms"][1]["ends_at"].as_u64().unwrap();
    let more = json!({ "breakout_room_id": "class-2", "duration": 5 });
    let (s, _) = h
        .browser_call(
            "POST",
            "/api/breakoutRoom/increaseDuration",
            &cat,
            more.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let v = h
        .browser("POST", "/api/breakoutRoom/increaseDuration", &ann, more)
        .await;
    assert_eq!(v["room"]["ends_at"].as_u64(), Some(before + 300), "{v}");
    assert_eq!(v["room"]["duration"], 15);

    // Ended early: the way back still answers with a token for the main room.
    h.browser(
        "POST",
        "/api/breakoutRoom/endRoom",
        &ann,
        json!({ "breakout_room_id": "class-1" }),
    )
    .await;
    assert!(!h.is_active("class-1").await);
    let back = h
        .browser("POST", "/api/breakoutRoom/return", &bk_token, json!({}))
        .await;
    let back_token = back["token"].as_str().unwrap();
    let again = h
        .browser("POST", "/api/verifyToken", back_token, json!({}))
        .await;
    assert_eq!(again["room"]["room_id"], "class");
    let v = h
        .browser("POST", "/api/breakoutRoom/return", &bob, json!({}))
        .await;
    assert_eq!(
        v["status"], false,
        "a main room's token is not a breakout room's: {v}"
    );

    // The others end with their parent.
    assert!(h.is_active("class-2").await);
    h.call("/auth/room/endRoom", r#"{"room_id":"class"}"#).await;
    for _ in 0..100 {
        if !h.is_active("class-2").await {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        !h.is_active("class-2").await,
        "a breakout room ends with its parent"
    );
}

#[tokio::test]
async fn a_plain_rooms_breakouts_take_messages_and_end_all_at_once() {
    let h = Harness::new().await;
    h.create("plain", "{}").await;
    let ann = h.join_token("plain", "ann", true, "").await;
    h.join_token("plain", "bob", false, "").await;
    h.join_token("plain", "cat", false, "").await;
    h.browser("POST", "/api/breakoutRoom/create", &ann, plan(5))
        .await;
    let v = h
        .browser(
            "POST",
            "/api/breakoutRoom/sendMsg",
            &ann,
            json!({ "msg": "five minutes left" }),
        )
        .await;
    assert_eq!(v["status"], true, "{v}");
    let (_, inside) = h
        .call("/auth/room/getActiveRoomInfo", r#"{"room_id":"plain-2"}"#)
        .await;
    let meta: Value =
        serde_json::from_str(inside["room"]["room_info"]["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(
        meta["room_features"]["recording_features"]["is_allow"], false,
        "no recording in a breakout room"
    );
    // A breakout room makes no breakout rooms of its own.
    let bk = h
        .browser(
            "POST",
            "/api/breakoutRoom/join",
            &ann,
            json!({ "breakout_room_id": "plain-1" }),
        )
        .await;
    let (s, v) = h
        .browser_call(
            "POST",
            "/api/breakoutRoom/create",
            bk["token"].as_str().unwrap(),
            plan(5),
        )
        .await;
    assert!(s == StatusCode::OK && v["status"] == false, "{v}");
    h.browser("POST", "/api/breakoutRoom/endAllRooms", &ann, json!({}))
        .await;
    assert!(!h.is_active("plain-1").await && !h.is_active("plain-2").await);
    let (_, list) = h
        .browser_call("GET", "/api/breakoutRoom/listRooms", &ann, Value::Null)
        .await;
    assert_eq!(list["rooms"], json!([]));
    // Longer than the main room lasts: refused.
    h.create("short", r#"{"room_duration":10}"#).await;
    let t = h.join_token("short", "ann", true, "").await;
    h.join_token("short", "bob", false, "").await;
    h.join_token("short", "cat", false, "").await;
    let v = h
        .browser("POST", "/api/breakoutRoom/create", &t, plan(30))
        .await;
    assert!(v["msg"].as_str().unwrap().contains("cannot outlast"), "{v}");
}
