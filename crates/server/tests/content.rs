#![allow(clippy::unwrap_used)]
//! Whiteboard and notepad documents and files through the browser API (docs/content.md):
//! logs with sequence numbers, snapshots, locks, the limits, an end-to-end encrypted room's
//! sealed-only rule, and files uploaded in chunks, read back byte for byte, and gone with
//! their session.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use common::Harness;
use serde_json::{json, Value};
use tower::ServiceExt;

/// Rooms start with the whiteboard and notepad locked for non-admins (as Plug-N-Meet's do);
/// an admin opens them to everyone.
async fn unlock_for_all(h: &Harness, admin: &str) {
    for service in ["whiteboard", "sharedNotepad"] {
        let v = h
            .browser(
                "POST",
                "/api/updateLockSettings",
                admin,
                json!({"user_id":"all","service":service,"direction":"unlock"}),
            )
            .await;
        assert_eq!(v["status"], true, "{v}");
    }
}

const E2EE: &str = r#"{"end_to_end_encryption_features":{"is_enabled":true}}"#;

/// A sealed envelope as a client writes one (version 1, IV, ciphertext, tag), base64.
fn sealed(n: usize) -> String {
    let mut env = vec![1u8];
    env.extend(std::iter::repeat_n(0x5A, 12 + 16 + n));
    base64::engine::general_purpose::STANDARD.encode(env)
}

async fn post(h: &Harness, path: &str, token: &str, body: Value) -> Value {
    h.browser("POST", path, token, body).await
}

fn refused(v: &Value, needle: &str) {
    assert_eq!(v["status"], false, "{v}");
    let msg = v["msg"].as_str().unwrap_or_default();
    assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
}

/// A chunk upload: the HTTP status and the JSON reply.
async fn put_chunk(
    h: &Harness,
    token: &str,
    file_id: &str,
    index: u32,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let req = Request::put(format!("/api/files/{file_id}/chunk/{index}"))
        .header("Authorization", token)
        .header("Content-Type", "application/octet-stream")
        .body(Body::from(bytes))
        .unwrap();
    let (s, b) = h.send(req).await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

/// A chunk download: status, headers and bytes.
async fn get_chunk(
    h: &Harness,
    token: &str,
    file_id: &str,
    index: u32,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let req = Request::get(format!("/api/files/{file_id}/chunk/{index}"))
        .header("Authorization", token)
        .body(Body::empty())
        .unwrap();
    let res = h.router.clone().oneshot(req).await.unwrap();
    let (s, headers) = (res.status(), res.headers().clone());
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (s, headers, bytes.to_vec())
}

#[tokio::test]
async fn updates_are_numbered_stamped_kept_compacted_and_cleared() {
    let h = Harness::new().await;
    h.create("class", "{}").await;
    let ann = h.join_token("class", "ann", true, "").await;
    let bob = h.join_token("class", "bob", false, "").await;
    unlock_for_all(&h, &ann).await;

    for (who, body, seq) in [(&ann, "a1", 1), (&bob, "b2", 2), (&ann, "a3", 3)] {
        let v = post(
            &h,
            "/api/content/append",
            who,
            json!({"kind":"whiteboard","doc":"page-1","body":body}),
        )
        .await;
        assert_eq!(
            (v["status"].as_bool(), v["seq"].as_u64()),
            (Some(true), Some(seq)),
            "{v}"
        );
    }
    let (_, _, cache) = h
        .browser_request(
            "POST",
            "/api/content/log",
            Some(&bob),
            r#"{"kind":"whiteboard","doc":"page-1","after":1}"#,
        )
        .await;
    assert_eq!(cache.as_deref(), Some("no-store"));
    let v = post(
        &h,
        "/api/content/log",
        &bob,
        json!({"kind":"whiteboard","doc":"page-1","after":1}),
    )
    .await;
    assert_eq!(v["head"], 3);
    assert_eq!(v["snapshot"], Value::Null);
    assert_eq!(
        v["updates"],
        json!([{"seq":2,"from":"bob","body":"b2"},{"seq":3,"from":"ann","body":"a3"}]),
        "`from` is the caller's identity"
    );
    // The same id in the other kind is another document.
    let v = post(
        &h,
        "/api/content/log",
        &bob,
        json!({"kind":"notepad","doc":"page-1","after":0}),
    )
    .await;
    assert_eq!(
        (v["head"].as_u64(), v["updates"].as_array().map(Vec::len)),
        (Some(0), Some(0))
    );

    let v = post(
        &h,
        "/api/content/snapshot",
        &bob,
        json!({"kind":"whiteboard","doc":"page-1","upto":2,"body":"S2"}),
    )
    .await;
    assert_eq!(v["status"], true, "{v}");
    let v = post(
        &h,
        "/api/content/log",
        &ann,
        json!({"kind":"whiteboard","doc":"page-1","after":0}),
    )
    .await;
    assert_eq!(v["snapshot"], json!({"upto":2,"from":"bob","body":"S2"}));
    assert_eq!(v["updates"], json!([{"seq":3,"from":"ann","body":"a3"}]));
    let v = post(
        &h,
        "/api/content/log",
        &ann,
        json!({"kind":"whiteboard","doc":"page-1","after":2}),
    )
    .await;
    assert_eq!(
        v["snapshot"],
        Value::Null,
        "not older than the snapshot: updates only"
    );
    let v = post(
        &h,
        "/api/content/snapshot",
        &bob,
        json!({"kind":"whiteboard","doc":"page-1","upto":9,"body":"S"}),
    )
    .await;
    refused(&v, "upto: 9 is beyond the document's head (3)");

    post(
        &h,
        "/api/content/append",
        &ann,
        json!({"kind":"whiteboard","doc":"pages","body":"p"}),
    )
    .await;
    let v = post(&h, "/api/content/docs", &bob, json!({"kind":"whiteboard"})).await;
    assert_eq!(
        v["docs"],
        json!([{"doc":"page-1","head":3,"bytes":4},{"doc":"pages","head":1,"bytes":1}])
    );

    // Admins only clear; one document, then all of a kind.
    let (s, _) = h
        .browser_call(
            "POST",
            "/api/content/clear",
            &bob,
            json!({"kind":"whiteboard","doc":""}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let v = post(
        &h,
        "/api/content/clear",
        &ann,
        json!({"kind":"whiteboard","doc":"pages"}),
    )
    .await;
    assert_eq!(v["cleared"], 1, "{v}");
    let v = post(
        &h,
        "/api/content/clear",
        &ann,
        json!({"kind":"whiteboard","doc":""}),
    )
    .await;
    assert_eq!(v["cleared"], 1, "{v}");
    let v = post(&h, "/api/content/docs", &bob, json!({"kind":"whiteboard"})).await;
    assert_eq!(v["docs"], json!([]));

    // Malformed requests name the field.
    let v = post(
        &h,
        "/api/content/append",
        &ann,
        json!({"kind":"whiteboard","doc":"../x","body":"b"}),
    )
    .await;
    refused(&v, "doc");
    let v = post(
        &h,
        "/api/content/append",
        &ann,
        json!({"kind":"slides","doc":"d","body":"b"}),
    )
    .await;
    refused(&v, "kind");
}

#[tokio::test]
async fn locks_keep_non_admins_out_and_admins_and_the_presenter_in() {
    let h = Harness::new().await;
    h.create("class", "{}").await;
    let ann = h.join_token("class", "ann", true, "").await;
    let bob = h.join_token("class", "bob", false, "").await;
    let cat = h.join_token("class", "cat", false, "").await;
    let (_, v) = h.verify_token(&cat).await;
    assert_eq!(
        (
            v["user"]["lock_whiteboard"].as_bool(),
            v["user"]["lock_shared_notepad"].as_bool()
        ),
        (Some(true), Some(true)),
        "locked by default: {v}"
    );
    unlock_for_all(&h, &ann).await;
    let append = |t: &str, kind: &str| {
        let t = t.to_owned();
        let kind = kind.to_owned();
        let h = &h;
        async move {
            h.browser_call(
                "POST",
                "/api/content/append",
                &t,
                json!({"kind":kind,"doc":"d","body":"x"}),
            )
            .await
        }
    };
    for service in ["whiteboard", "sharedNotepad", "chatFile"] {
        let v = post(
            &h,
            "/api/updateLockSettings",
            &ann,
            json!({"user_id":"bob","service":service,"direction":"lock"}),
        )
        .await;
        assert_eq!(v["status"], true, "{v}");
    }
    let (_, v) = h.verify_token(&bob).await;
    let u = &v["user"];
    assert_eq!(
        (
            u["lock_whiteboard"].as_bool(),
            u["lock_shared_notepad"].as_bool(),
            u["lock_chat_file_share"].as_bool(),
            u["lock_chat"].as_bool()
        ),
        (Some(true), Some(true), Some(true), Some(false)),
        "{u}"
    );
    let (_, v) = h.verify_token(&cat).await;
    assert_eq!(v["user"]["lock_whiteboard"], false);

    for kind in ["whiteboard", "notepad"] {
        let (s, v) = append(&bob, kind).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{kind}: {v}");
        assert!(v["msg"].as_str().unwrap().contains("locked for you"), "{v}");
        let (s, v) = append(&cat, kind).await;
        assert_eq!(
            (s, v["status"].as_bool()),
            (StatusCode::OK, Some(true)),
            "unlocked: {v}"
        );
        let (s, v) = append(&ann, kind).await;
        assert_eq!(
            (s, v["status"].as_bool()),
            (StatusCode::OK, Some(true)),
            "admin: {v}"
        );
    }
    // A locked file share refuses a chat upload.
    let (s, _) = h
        .browser_call(
            "POST",
            "/api/files/start",
            &bob,
            json!({"file_id":"bobs-file-0000000001","purpose":"chat","name":"a.txt","mime":"text/plain","size":1,"chunks":1}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The presenter draws on a locked whiteboard.
    let v = post(
        &h,
        "/api/switchPresenter",
        &ann,
        json!({"task":"PROMOTE","user_id":"bob"}),
    )
    .await;
    assert_eq!(v["status"], true, "{v}");
    let (s, v) = append(&bob, "whiteboard").await;
    assert_eq!(
        (s, v["status"].as_bool()),
        (StatusCode::OK, Some(true)),
        "presenter: {v}"
    );
    let (s, _) = append(&bob, "notepad").await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "presenting is the whiteboard only"
    );
    // Unlocked, bob writes the notepad again.
    post(
        &h,
        "/api/updateLockSettings",
        &ann,
        json!({"user_id":"bob","service":"sharedNotepad","direction":"unlock"}),
    )
    .await;
    let (s, _) = append(&bob, "notepad").await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn a_feature_turned_off_refuses_its_documents() {
    let h = Harness::new().await;
    h.create("quiet", r#"{"whiteboard_features":{"is_allow":false},"shared_note_pad_features":{"is_allow":false}}"#)
        .await;
    let ann = h.join_token("quiet", "ann", true, "").await;
    for kind in ["whiteboard", "notepad"] {
        let (s, v) = h
            .browser_call(
                "POST",
                "/api/content/append",
                &ann,
                json!({"kind":kind,"doc":"d","body":"x"}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert!(v["msg"].as_str().unwrap().contains("turned off"), "{v}");
    }
}

#[tokio::test]
async fn an_encrypted_room_takes_sealed_content_only() {
    let h = Harness::new().await;
    h.create("sealed", E2EE).await;
    let ann = h.join_token("sealed", "ann", true, "").await;
    let v = post(
        &h,
        "/api/content/append",
        &ann,
        json!({"kind":"notepad","doc":"n","body":"plain words"}),
    )
    .await;
    refused(&v, "not sealed");
    let v = post(
        &h,
        "/api/content/append",
        &ann,
        json!({"kind":"notepad","doc":"n","body":sealed(20)}),
    )
    .await;
    assert_eq!(v["seq"], 1, "{v}");

    let start = |name: String, mime: String, purpose: &str| json!({"file_id":"sealed-file-00000001","purpose":purpose,"name":name,"mime":mime,"size":100,"chunks":1});
    let v = post(
        &h,
        "/api/files/start",
        &ann,
        start("report.pdf".into(), sealed(5), "chat"),
    )
    .await;
    refused(&v, "name: this room is end-to-end encrypted");
    let v = post(
        &h,
        "/api/files/start",
        &ann,
        start(sealed(10), sealed(5), "whiteboard"),
    )
    .await;
    refused(
        &v,
        "purpose: whiteboard documents are converted by the server",
    );
    let v = post(
        &h,
        "/api/files/start",
        &ann,
        start(sealed(10), sealed(5), "page"),
    )
    .await;
    assert_eq!(v["file_id"], "sealed-file-00000001", "{v}");
}

#[tokio::test]
async fn the_limits_are_refused_with_their_message() {
    let h = Harness::new().await;
    h.create("class", "{}").await;
    let ann = h.join_token("class", "ann", true, "").await;

    let v = post(
        &h,
        "/api/content/append",
        &ann,
        json!({"kind":"whiteboard","doc":"p","body":"x".repeat(64 * 1024 + 1)}),
    )
    .await;
    refused(&v, "body: longer than 65536 bytes");
    // A document's log is 8 MiB: 128 updates of 64 KiB.
    let full = "x".repeat(64 * 1024);
    for _ in 0..128 {
        let v = post(
            &h,
            "/api/content/append",
            &ann,
            json!({"kind":"whiteboard","doc":"p","body":full}),
        )
        .await;
        assert_eq!(v["status"], true, "{v}");
    }
    let v = post(
        &h,
        "/api/content/append",
        &ann,
        json!({"kind":"whiteboard","doc":"p","body":"x"}),
    )
    .await;
    refused(&v, "compact the document first");
    // A snapshot of 4 MiB passes the body limit (1 MiB here) and makes room again.
    let v = post(
        &h,
        "/api/content/snapshot",
        &ann,
        json!({"kind":"whiteboard","doc":"p","upto":128,"body":"s".repeat(4 * 1024 * 1024)}),
    )
    .await;
    assert_eq!(v["status"], true, "{v}");
    let v = post(
        &h,
        "/api/content/snapshot",
        &ann,
        json!({"kind":"whiteboard","doc":"p","upto":128,"body":"s".repeat(4 * 1024 * 1024 + 1)}),
    )
    .await;
    refused(&v, "a snapshot is at most 4194304 bytes");
    let v = post(
        &h,
        "/api/content/append",
        &ann,
        json!({"kind":"whiteboard","doc":"p","body":"x"}),
    )
    .await;
    assert_eq!(v["seq"], 129, "{v}");
    // Other routes keep the configured limit.
    let (s, _, _) = h
        .browser_request(
            "POST",
            "/api/content/append",
            Some(&ann),
            &"x".repeat(2 * 1024 * 1024),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn each_participant_writes_at_most_a_burst_of_200_then_50_a_second() {
    let h = Harness::new().await;
    h.create("class", "{}").await;
    let ann = h.join_token("class", "ann", true, "").await;
    let bob = h.join_token("class", "bob", true, "").await;
    // The rate reads tokio's clock: stopped, the burst is exact however slow the machine.
    tokio::time::pause();
    let append = |t: &str| {
        let t = t.to_owned();
        let h = &h;
        async move {
            post(
                h,
                "/api/content/append",
                &t,
                json!({"kind":"notepad","doc":"n","body":"x"}),
            )
            .await
        }
    };
    for i in 0..200 {
        let v = append(&ann).await;
        assert_eq!(v["status"], true, "update {i}: {v}");
    }
    let v = append(&ann).await;
    refused(
        &v,
        "too many updates: at most 50 per second (burst 200) per participant",
    );
    let v = append(&bob).await;
    assert_eq!(v["status"], true, "another participant has their own: {v}");
    // 100 ms give 5 more.
    tokio::time::advance(std::time::Duration::from_millis(100)).await;
    for _ in 0..5 {
        assert_eq!(append(&ann).await["status"], true);
    }
    refused(&append(&ann).await, "too many updates");
}

#[tokio::test]
async fn a_file_is_uploaded_in_chunks_read_back_and_gone_with_its_session() {
    let h = Harness::new().await;
    h.create("class", "{}").await;
    let ann = h.join_token("class", "ann", true, "").await;
    let bob = h.join_token("class", "bob", false, "").await;
    let id = "Zq3-file_0123456789";
    // The largest chunk there is (beyond the configured 1 MiB body limit), and two small ones.
    let chunks: Vec<Vec<u8>> = vec![
        (0..1024 * 1024 + 1024).map(|i| (i % 251) as u8).collect(),
        vec![7u8; 1000],
        b"tail!".to_vec(),
    ];
    let size: usize = chunks.iter().map(Vec::len).sum();
    let v = post(&h, "/api/files/start", &bob, json!({"file_id":id,"purpose":"chat","name":"notes.txt","mime":"text/plain","size":size,"chunks":3})).await;
    assert_eq!(v["file_id"], id, "{v}");

    // Chunk 1 first, short; then 2 and 0; then 1 again, right.
    let (s, v) = put_chunk(&h, &bob, id, 1, vec![9u8; 999]).await;
    assert_eq!(
        (s, v["received"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{v}"
    );
    let (_, v) = put_chunk(&h, &ann, id, 2, chunks[2].clone()).await;
    refused(&v, "only the participant who started the upload");
    put_chunk(&h, &bob, id, 2, chunks[2].clone()).await;
    let (_, v) = post_finish(&h, &bob, id).await;
    refused(&v, "chunks missing: [0]");
    let (s, v) = put_chunk(&h, &bob, id, 0, chunks[0].clone()).await;
    assert_eq!(
        (s, v["received"].as_u64()),
        (StatusCode::OK, Some(3)),
        "{v}"
    );
    let (_, v) = post_finish(&h, &bob, id).await;
    refused(&v, &format!("size: the chunks add up to {}", size - 1));
    let (_, v) = get_chunk_json(&h, &ann, id).await;
    refused(&v, "the file is not finished yet");
    let (_, v) = put_chunk(&h, &bob, id, 1, chunks[1].clone()).await;
    assert_eq!(
        v["received"], 3,
        "a chunk sent again replaces the first: {v}"
    );
    let (_, v) = post_finish(&h, &bob, id).await;
    assert_eq!(v["status"], true, "{v}");
    assert_eq!(v["complete"], true);
    assert_eq!(v["received"], json!([0, 1, 2]));
    assert_eq!(
        (
            v["from"].as_str(),
            v["name"].as_str(),
            v["purpose"].as_str()
        ),
        (Some("bob"), Some("notes.txt"), Some("chat"))
    );
    let (_, v) = put_chunk(&h, &bob, id, 1, vec![1]).await;
    refused(&v, "the file is finished");

    let v = post(&h, "/api/files/info", &ann, json!({"file_id":id})).await;
    assert_eq!(
        (v["size"].as_u64(), v["chunks"].as_u64()),
        (Some(size as u64), Some(3))
    );
    for (i, want) in chunks.iter().enumerate() {
        let (s, headers, got) = get_chunk(&h, &ann, id, i as u32).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(&got, want, "chunk {i} byte for byte");
        assert_eq!(headers["content-type"], "application/octet-stream");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }
    let (s, _, _) = get_chunk(&h, &ann, id, 3).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Wrong file ids go nowhere near the disk.
    for bad in ["..", "short", "has.dot-0123456789"] {
        let (_, v) = put_chunk(&h, &bob, bad, 0, vec![1]).await;
        refused(&v, "file_id");
    }
    let v = post(
        &h,
        "/api/files/start",
        &bob,
        json!({"file_id":"../x","purpose":"chat","name":"a.txt","mime":"","size":1,"chunks":1}),
    )
    .await;
    refused(&v, "file_id");
    let v = post(&h, "/api/files/start", &bob, json!({"file_id":"0123456789abcdef","purpose":"chat","name":"a.exe","mime":"","size":1,"chunks":1})).await;
    refused(&v, "files of type \"exe\"");

    let sid = h.app.rooms.get_str("class").unwrap().info.sid.to_string();
    let dir = h.dir.path().join("uploads").join(&sid);
    assert!(dir.join(id).join("0").is_file());
    let names: Vec<String> = std::fs::read_dir(dir.join(id))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(
        names,
        ["0", "1", "2", "meta.json"],
        "the chunks and the finished file's info, no temporary files"
    );
    let (_, v) = h.call("/auth/room/endRoom", r#"{"room_id":"class"}"#).await;
    assert_eq!(v["status"], true, "{v}");
    assert!(!dir.exists(), "the session's files are gone with it");
}

async fn get_chunk_json(h: &Harness, token: &str, id: &str) -> (StatusCode, Value) {
    let (s, _, b) = get_chunk(h, token, id, 0).await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

async fn post_finish(h: &Harness, token: &str, id: &str) -> (StatusCode, Value) {
    h.browser_call("POST", "/api/files/finish", token, json!({"file_id":id}))
        .await
}

#[tokio::test]
async fn files_left_by_an_earlier_process_are_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let uploads = dir.path().join("uploads");
    let old = uploads.join("0b9a3c52-4a8e-4f43-9a55-5d7e21c3a001");
    std::fs::create_dir_all(old.join("some-file-00000000")).unwrap();
    std::fs::write(old.join("some-file-00000000").join("0"), b"x").unwrap();
    let other = uploads.join("not-a-session");
    std::fs::create_dir_all(&other).unwrap();
    let mut cfg = enclave_server::ServerConfig::for_tests(dir.path(), common::KEY, common::SECRET);
    cfg.uploads_path = uploads;
    let _app = enclave_server::App::new(cfg).await.unwrap();
    assert!(!old.exists());
    assert!(other.exists(), "only session directories are removed");
}

/// Uploads one finished chat file of `bytes` (one chunk) as `token`.
async fn one_chat_file(h: &Harness, token: &str, id: &str, name: &str, bytes: &[u8]) {
    let v = post(h, "/api/files/start", token, json!({"file_id":id,"purpose":"chat","name":name,"mime":"text/plain","size":bytes.len(),"chunks":1})).await;
    assert_eq!(v["status"], true, "{v}");
    put_chunk(h, token, id, 0, bytes.to_vec()).await;
    let (_, v) = post_finish(h, token, id).await;
    assert_eq!(v["complete"], true, "{v}");
}

async fn get_kept(
    h: &Harness,
    sid: &str,
    id: &str,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let req = Request::get(format!("/download/uploadedFile/{sid}/{id}"))
        .body(Body::empty())
        .unwrap();
    let res = h.router.clone().oneshot(req).await.unwrap();
    let (s, headers) = (res.status(), res.headers().clone());
    let b = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (s, headers, b.to_vec())
}

#[tokio::test]
async fn keep_forever_keeps_a_plain_rooms_finished_files_and_never_an_encrypted_rooms() {
    let h = Harness::with(|c| c.keep_uploads = true).await;
    h.create("plain", "{}").await;
    h.create("sealed", E2EE).await;
    let ann = h.join_token("plain", "ann", true, "").await;
    let eve = h.join_token("sealed", "eve", true, "").await;
    one_chat_file(
        &h,
        &ann,
        "kept-file-0123456789",
        "minutes <1>.txt",
        b"the minutes",
    )
    .await;
    // Started, never finished: not kept.
    let v = post(&h, "/api/files/start", &ann, json!({"file_id":"half-file-0123456789","purpose":"chat","name":"half.txt","mime":"text/plain","size":4,"chunks":2})).await;
    assert_eq!(v["status"], true, "{v}");
    put_chunk(&h, &ann, "half-file-0123456789", 0, b"ha".to_vec()).await;
    let v = post(&h, "/api/files/start", &eve, json!({"file_id":"sealed-file-0123456789","purpose":"chat","name":sealed(8),"mime":sealed(4),"size":64,"chunks":1})).await;
    assert_eq!(v["status"], true, "{v}");
    put_chunk(&h, &eve, "sealed-file-0123456789", 0, vec![1u8; 64]).await;
    post_finish(&h, &eve, "sealed-file-0123456789").await;

    let plain_sid = h.app.rooms.get_str("plain").unwrap().info.sid.to_string();
    let sealed_sid = h.app.rooms.get_str("sealed").unwrap().info.sid.to_string();
    let (s, _, _) = get_kept(&h, &plain_sid, "kept-file-0123456789").await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "a live session's files are not served here"
    );

    for room in ["plain", "sealed"] {
        let (_, v) = h
            .call("/auth/room/endRoom", &format!(r#"{{"room_id":"{room}"}}"#))
            .await;
        assert_eq!(v["status"], true, "{v}");
    }
    let uploads = h.dir.path().join("uploads");
    assert!(
        !uploads.join(&sealed_sid).exists(),
        "an encrypted room's files always go"
    );
    assert!(
        !uploads
            .join(&plain_sid)
            .join("half-file-0123456789")
            .exists(),
        "unfinished uploads go"
    );

    let (s, headers, body) = get_kept(&h, &plain_sid, "kept-file-0123456789").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, b"the minutes");
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"minutes _1_.txt\""
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    for (sid, id) in [
        (plain_sid.as_str(), "half-file-0123456789"),
        (sealed_sid.as_str(), "sealed-file-0123456789"),
        ("not-a-sid", "kept-file-0123456789"),
        (plain_sid.as_str(), ".."),
    ] {
        let (s, _, _) = get_kept(&h, sid, id).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{sid}/{id}");
    }

    // A restart leaves kept files alone.
    let mut cfg =
        enclave_server::ServerConfig::for_tests(h.dir.path(), common::KEY, common::SECRET);
    cfg.uploads_path = uploads.clone();
    let _again = enclave_server::App::new(cfg).await.unwrap();
    assert!(uploads
        .join(&plain_sid)
        .join("kept-file-0123456789")
        .join("0")
        .is_file());
}

#[tokio::test]
async fn without_keep_forever_nothing_is_served_after_the_session() {
    let h = Harness::new().await;
    h.create("plain", "{}").await;
    let ann = h.join_token("plain", "ann", true, "").await;
    one_chat_file(&h, &ann, "gone-file-0123456789", "a.txt", b"bytes").await;
    let sid = h.app.rooms.get_str("plain").unwrap().info.sid.to_string();
    h.call("/auth/room/endRoom", r#"{"room_id":"plain"}"#).await;
    let (s, _, _) = get_kept(&h, &sid, "gone-file-0123456789").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(!h.dir.path().join("uploads").join(&sid).exists());
}
