#![allow(clippy::unwrap_used)]
//! The server-generated E2EE secret exists only in live room state: it appears in no `/auth`
//! reply, no webhook, no log line (at TRACE level) and no byte of the database files, and it
//! is gone when the session ends.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{participant, Harness, Receiver};
use enclave_proto::ids::UserId;

#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_generated_secret_never_leaves_live_state() {
    let logs = LogBuf::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let hooks = Receiver::start(0).await;
    let url = hooks.url.clone();
    let h = Harness::with(|c| {
        c.webhooks.enable = true;
        c.webhooks.url = Some(url);
        c.webhooks.enable_for_per_meeting = true;
    })
    .await;

    let mut replies: Vec<u8> = Vec::new();
    let body = format!(
        r#"{{"room_id":"secret-room","metadata":{{"room_title":"Secret","webhook_url":"{}?per-room","room_features":{{"end_to_end_encryption_features":{{"is_enabled":true,"included_chat_messages":true}}}}}}}}"#,
        hooks.url
    );
    let (_, created) = h.call_raw("/auth/room/create", &body).await;
    replies.extend_from_slice(&created);

    let room = h.app.rooms.get_str("secret-room").expect("room is live");
    // Everything an integrator can ask about the room.
    for (path, body) in [
        ("/auth/room/create", body.as_str()),
        (
            "/auth/room/getJoinToken",
            r#"{"room_id":"secret-room","user_info":{"name":"Ann","user_id":"ann","is_admin":true}}"#,
        ),
        (
            "/auth/room/getJoinToken",
            r#"{"room_id":"secret-room","user_info":{"name":"Bob","user_id":"bob"}}"#,
        ),
        ("/auth/room/isRoomActive", r#"{"room_id":"secret-room"}"#),
        (
            "/auth/room/getActiveRoomInfo",
            r#"{"room_id":"secret-room"}"#,
        ),
        ("/auth/room/getActiveRoomsInfo", "{}"),
    ] {
        let (status, bytes) = h.call_raw(path, body).await;
        assert_eq!(status, 200, "{path}");
        replies.extend_from_slice(&bytes);
    }
    let meta: serde_json::Value = serde_json::from_str(
        serde_json::from_slice::<serde_json::Value>(&created).unwrap()["room_info"]["metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let e2ee = &meta["room_features"]["end_to_end_encryption_features"];
    assert_eq!(e2ee["is_enabled"], true);
    assert!(
        e2ee.get("encryption_key").is_none(),
        "the key field is never emitted: {e2ee}"
    );

    // People come and go, so that every participant webhook fires and three key epochs are
    // drawn: one for each admission and one when bob leaves.
    let (ann, bob) = (UserId::parse("ann").unwrap(), UserId::parse("bob").unwrap());
    let mut secrets = Vec::new();
    for user in [&ann, &bob] {
        let a = room.admit(user.clone()).await.unwrap().expect("admitted");
        secrets.push(a.epoch.secret.expose().to_owned());
        secrets.push(a.history.expose().to_owned());
        secrets.push(a.content.expose().to_owned());
        room.join(participant(user.as_str()))
            .await
            .unwrap()
            .unwrap();
    }
    room.leave(bob.clone(), None).await.unwrap();
    let last = room.current_epoch(ann.clone()).await.unwrap().unwrap();
    assert_eq!(last.generation, 3);
    secrets.push(last.secret.expose().to_owned());
    drop(last);
    for secret in &secrets {
        assert_eq!(secret.len(), 32);
        assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
    let (_, ended) = h
        .call_raw("/auth/room/endRoom", r#"{"room_id":"secret-room"}"#)
        .await;
    replies.extend_from_slice(&ended);
    drop(room);
    assert!(
        h.app.rooms.get_str("secret-room").is_none(),
        "the live state (and its secret) is gone"
    );

    let (_, past) = h
        .call_raw(
            "/auth/room/fetchPastRooms",
            r#"{"room_ids":["secret-room"]}"#,
        )
        .await;
    replies.extend_from_slice(&past);
    let (_, metrics) = h
        .send(
            axum::http::Request::get("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    replies.extend_from_slice(&metrics);

    // Two receivers (global and per-room) × room_created, room_started, 2 joins, 2 leaves
    // (bob, then ann at the end), room_finished, session_ended, and the analytics file's
    // artifact_created and analytics_proceeded.
    let got = hooks.wait_for(20).await;
    let events: Vec<String> = got.iter().map(|h| h.event()).collect();
    for e in [
        "room_created",
        "room_started",
        "participant_joined",
        "participant_left",
        "room_finished",
        "session_ended",
        "artifact_created",
        "analytics_proceeded",
    ] {
        assert!(
            events.iter().any(|x| x == e),
            "missing webhook {e}: {events:?}"
        );
    }
    assert_eq!(got.len(), 20, "{events:?}");

    let mut db_files = 0;
    let mut artifact_files = 0;
    for secret in &secrets {
        assert!(
            !contains(&replies, secret),
            "the secret appeared in an API reply"
        );
        for hook in &got {
            assert!(
                !contains(&hook.body, secret),
                "the secret appeared in webhook {}",
                hook.event()
            );
            for v in hook.headers.values() {
                assert!(!contains(v.as_bytes(), secret));
            }
        }
        let log_bytes = logs.0.lock().unwrap().clone();
        assert!(contains(&log_bytes, "room created"), "logs were captured");
        assert!(
            !contains(&log_bytes, secret),
            "the secret appeared in a log line"
        );
        for entry in std::fs::read_dir(h.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("enclave.sqlite")
            {
                db_files += 1;
                assert!(
                    !contains(&std::fs::read(&path).unwrap(), secret),
                    "the secret appeared in {}",
                    path.display()
                );
            }
        }
        // The session's analytics file, and anything else written as an artifact.
        let mut dirs = vec![h.app.config.artifacts_path.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    artifact_files += 1;
                    assert!(
                        !contains(&std::fs::read(&path).unwrap(), secret),
                        "the secret appeared in {}",
                        path.display()
                    );
                }
            }
        }
    }
    assert!(db_files >= 1);
    assert!(artifact_files >= 1, "the analytics file was searched");

    // Self-insert mode: the server makes and holds no secret at all; a plain room has none
    // either.
    for (id, features) in [
        (
            "self-room",
            r#"{"end_to_end_encryption_features":{"is_enabled":true,"enabled_self_insert_encryption_key":true}}"#,
        ),
        ("plain-room", "{}"),
    ] {
        h.create(id, features).await;
        h.call(
            "/auth/room/getJoinToken",
            &format!(r#"{{"room_id":"{id}","user_info":{{"name":"Ann","user_id":"ann"}}}}"#),
        )
        .await;
        let room = h.app.rooms.get_str(id).unwrap();
        assert!(!room.info.server_key);
        assert!(room.admit(ann.clone()).await.unwrap().is_none(), "{id}");
    }
}

#[tokio::test]
async fn every_session_gets_its_own_sid_and_secret() {
    let h = Harness::new().await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let v = h
            .create(
                "again",
                r#"{"end_to_end_encryption_features":{"is_enabled":true}}"#,
            )
            .await;
        h.call(
            "/auth/room/getJoinToken",
            r#"{"room_id":"again","user_info":{"name":"Ann","user_id":"ann"}}"#,
        )
        .await;
        let room = h.app.rooms.get_str("again").unwrap();
        let a = room
            .admit(UserId::parse("ann").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.epoch.generation, 1);
        seen.push((
            v["room_info"]["sid"].as_str().unwrap().to_owned(),
            a.epoch.secret.expose().to_owned(),
            a.content.expose().to_owned(),
        ));
        h.call("/auth/room/endRoom", r#"{"room_id":"again"}"#).await;
    }
    for i in 0..seen.len() {
        for j in i + 1..seen.len() {
            assert_ne!(seen[i].0, seen[j].0, "session ids repeat");
            assert_ne!(seen[i].1, seen[j].1, "secrets repeat");
            assert_ne!(seen[i].2, seen[j].2, "content secrets repeat");
        }
    }
}
