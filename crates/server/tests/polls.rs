#![allow(clippy::unwrap_used)]
//! Polls through the browser API: admins create and close, everyone votes once as themselves,
//! results at close; an end-to-end encrypted room stores sealed texts only.

mod common;

use axum::http::StatusCode;
use base64::Engine as _;
use common::Harness;
use serde_json::{json, Value};

fn poll(question: &str, options: &[&str]) -> Value {
    json!({
        "question": question,
        "options": options.iter().enumerate().map(|(i, t)| json!({"id": i + 1, "text": t})).collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn an_admin_asks_everyone_answers_once_and_the_results_come_at_close() {
    let h = Harness::new().await;
    h.create("class", "{}").await;
    let ann = h.join_token("class", "ann", true, "").await;
    let bob = h.join_token("class", "bob", false, "").await;
    let cat = h.join_token("class", "cat", false, "").await;

    // Only an admin creates.
    let (s, v) = h
        .browser_call(
            "POST",
            "/api/polls/create",
            &bob,
            poll("Lunch?", &["Pizza", "Soup"]),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let v = h
        .browser(
            "POST",
            "/api/polls/create",
            &ann,
            poll("Lunch?", &["Pizza", "Soup"]),
        )
        .await;
    assert_eq!(v["status"], true, "{v}");
    let id = v["poll_id"].as_str().unwrap().to_owned();

    let v = h
        .browser("GET", "/api/polls/listPolls", &bob, Value::Null)
        .await;
    assert_eq!(
        v["is_active"], true,
        "a poll opens the panel for everyone: {v}"
    );
    let p = &v["polls"][0];
    assert_eq!(
        (
            p["id"].as_str(),
            p["question"].as_str(),
            p["is_running"].as_bool()
        ),
        (Some(id.as_str()), Some("Lunch?"), Some(true))
    );
    assert_eq!(
        (p["created_by"].as_str(), p["is_sealed"].as_bool()),
        (Some("ann"), Some(false))
    );

    // Everyone votes once, as themselves.
    let v = h
        .browser(
            "POST",
            "/api/polls/submitResponse",
            &bob,
            json!({"poll_id": id, "selected_option": 2}),
        )
        .await;
    assert_eq!(v["status"], true, "{v}");
    let v = h
        .browser(
            "POST",
            "/api/polls/submitResponse",
            &bob,
            json!({"poll_id": id, "selected_option": 1}),
        )
        .await;
    assert_eq!(
        (v["status"].as_bool(), v["msg"].as_str()),
        (Some(false), Some("user already voted"))
    );
    let (s, _) = h
        .browser_call(
            "POST",
            "/api/polls/submitResponse",
            &cat,
            json!({"poll_id": id, "user_id": "bob", "selected_option": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "nobody votes in another's name");
    let v = h
        .browser(
            "POST",
            "/api/polls/submitResponse",
            &cat,
            json!({"poll_id": id, "selected_option": 9}),
        )
        .await;
    assert_eq!(v["status"], false, "not an option: {v}");
    h.browser(
        "POST",
        "/api/polls/submitResponse",
        &cat,
        json!({"poll_id": id, "selected_option": 2}),
    )
    .await;

    let v = h
        .browser(
            "GET",
            &format!("/api/polls/countTotalResponses/{id}"),
            &bob,
            Value::Null,
        )
        .await;
    assert_eq!(v["total_responses"], 2);
    let v = h
        .browser(
            "GET",
            &format!("/api/polls/userSelectedOption/{id}/bob"),
            &bob,
            Value::Null,
        )
        .await;
    assert_eq!(
        (v["voted"].as_u64(), v["has_voted"].as_bool()),
        (Some(2), Some(true))
    );
    let (s, _) = h
        .browser_call(
            "GET",
            &format!("/api/polls/userSelectedOption/{id}/bob"),
            &cat,
            Value::Null,
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "only an admin sees another's choice"
    );
    let v = h
        .browser(
            "GET",
            &format!("/api/polls/pollResponsesDetails/{id}"),
            &ann,
            Value::Null,
        )
        .await;
    assert_eq!(v["responses"]["2_count"], "2", "{v}");
    assert_eq!(
        v["responses"]["all_respondents"],
        r#"["bob:2:N bob","cat:2:N cat"]"#
    );

    // Results: hidden from participants while it runs, for everyone once closed.
    let v = h
        .browser(
            "GET",
            &format!("/api/polls/pollResponsesResult/{id}"),
            &bob,
            Value::Null,
        )
        .await;
    assert_eq!(
        (v["status"].as_bool(), v["msg"].as_str()),
        (
            Some(false),
            Some("the results are shown when the poll closes")
        )
    );
    let (s, _) = h
        .browser_call("POST", "/api/polls/closePoll", &bob, json!({"poll_id": id}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    h.browser("POST", "/api/polls/closePoll", &ann, json!({"poll_id": id}))
        .await;
    let v = h
        .browser(
            "GET",
            &format!("/api/polls/pollResponsesResult/{id}"),
            &bob,
            Value::Null,
        )
        .await;
    let r = &v["poll_responses_result"];
    assert_eq!(
        (r["question"].as_str(), r["total_responses"].as_u64()),
        (Some("Lunch?"), Some(2)),
        "{v}"
    );
    assert_eq!(r["options"][1]["vote_count"], 2);
    let v = h
        .browser(
            "POST",
            "/api/polls/submitResponse",
            &bob,
            json!({"poll_id": id, "selected_option": 1}),
        )
        .await;
    assert_eq!(v["msg"], "the poll is closed");
    let v = h
        .browser("GET", "/api/polls/pollsStats", &bob, Value::Null)
        .await;
    assert_eq!(
        (
            v["stats"]["total_polls"].as_u64(),
            v["stats"]["total_running"].as_u64()
        ),
        (Some(1), Some(0))
    );

    // An admin can close the panel for everyone.
    let v = h
        .browser(
            "POST",
            "/api/polls/activate",
            &ann,
            json!({"is_active": false}),
        )
        .await;
    assert_eq!(v["is_active"], false);
    assert_eq!(
        h.browser("GET", "/api/polls/listPolls", &cat, Value::Null)
            .await["is_active"],
        false
    );
}

#[tokio::test]
async fn an_anonymous_poll_never_shows_who_chose_what() {
    let h = Harness::new().await;
    h.create("anon", "{}").await;
    let ann = h.join_token("anon", "ann", true, "").await;
    let bob = h.join_token("anon", "bob", false, "").await;
    let mut body = poll("Honest?", &["yes", "no"]);
    body["is_anonymous"] = true.into();
    let id = h.browser("POST", "/api/polls/create", &ann, body).await["poll_id"]
        .as_str()
        .unwrap()
        .to_owned();
    h.browser(
        "POST",
        "/api/polls/submitResponse",
        &bob,
        json!({"poll_id": id, "selected_option": 1}),
    )
    .await;
    let v = h
        .browser(
            "GET",
            &format!("/api/polls/pollResponsesDetails/{id}"),
            &ann,
            Value::Null,
        )
        .await;
    assert_eq!(
        (
            v["responses"]["all_respondents"].as_str(),
            v["responses"]["1_count"].as_str()
        ),
        (Some("[]"), Some("1"))
    );
    let v = h
        .browser(
            "GET",
            &format!("/api/polls/userSelectedOption/{id}/bob"),
            &ann,
            Value::Null,
        )
        .await;
    assert_eq!(
        (v["voted"].as_u64(), v["has_voted"].as_bool()),
        (Some(0), Some(true))
    );
    assert!(!v.to_string().contains("N bob"));
}

#[tokio::test]
async fn an_encrypted_room_keeps_sealed_poll_texts_only_and_a_room_without_polls_refuses_them() {
    let h = Harness::new().await;
    h.create(
        "sealed",
        r#"{"end_to_end_encryption_features":{"is_enabled":true}}"#,
    )
    .await;
    let ann = h.join_token("sealed", "ann", true, "").await;
    // Words are refused, and so is a poll whose id the client did not choose (it seals to it).
    let mut plain = poll("Lunch?", &["Pizza", "Soup"]);
    plain["poll_id"] = "p1".into();
    let v = h.browser("POST", "/api/polls/create", &ann, plain).await;
    assert_eq!(v["status"], false);
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .starts_with("question: this room is end-to-end encrypted"),
        "{v}"
    );
    let env = |n: usize| {
        let mut b = vec![1u8];
        b.extend((0..12 + 16 + n).map(|i| i as u8));
        base64::engine::general_purpose::STANDARD.encode(b)
    };
    let sealed = poll(&env(20), &[&env(5), &env(4)]);
    let v = h
        .browser("POST", "/api/polls/create", &ann, sealed.clone())
        .await;
    assert!(
        v["msg"].as_str().unwrap().starts_with("poll_id: required"),
        "{v}"
    );
    let mut sealed = sealed;
    sealed["poll_id"] = "p1".into();
    let v = h.browser("POST", "/api/polls/create", &ann, sealed).await;
    assert_eq!(v["poll_id"], "p1", "{v}");
    let v = h
        .browser("GET", "/api/polls/listPolls", &ann, Value::Null)
        .await;
    assert_eq!(
        (
            v["polls"][0]["is_sealed"].as_bool(),
            v["polls"][0]["question"].as_str()
        ),
        (Some(true), Some(env(20).as_str()))
    );

    // The session's content secret goes to whoever is let in, the same for everyone.
    let bob = h.join_token("sealed", "bob", false, "").await;
    let (_, a) = h
        .browser_call("POST", "/api/verifyToken", &ann, json!({}))
        .await;
    let (_, b) = h
        .browser_call("POST", "/api/verifyToken", &bob, json!({}))
        .await;
    let content = a["e2ee"]["content_secret"].as_str().unwrap();
    assert_eq!(content.len(), 32);
    assert_eq!(Some(content), b["e2ee"]["content_secret"].as_str());
    assert_ne!(a["e2ee"]["secret"], a["e2ee"]["content_secret"]);

    h.create("nopolls", r#"{"polls_features":{"is_allow":false}}"#)
        .await;
    let t = h.join_token("nopolls", "ann", true, "").await;
    let (s, v) = h
        .browser_call("POST", "/api/polls/create", &t, poll("Q", &["a", "b"]))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = h
        .browser_call("GET", "/api/polls/listPolls", "not-a-token", Value::Null)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
