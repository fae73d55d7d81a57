#![allow(clippy::unwrap_used)]
//! Documents put on the whiteboard of a plain room (docs/content.md, "Whiteboard documents"):
//! converted on the server into page images, stored as files of purpose `page` and appended to
//! whiteboard document `documents` — from a participant's upload, from
//! `/auth/room/uploadWhiteboardFile` (multipart, the `Room-Id` header signed) and from
//! `preload_file`. An encrypted room refuses all three. Needs LibreOffice and poppler (CI
//! installs them; see `.ci/run`).

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use common::{Harness, KEY, SECRET};
use serde_json::{json, Value};
use tower::ServiceExt;

use enclave_server::convert::sample;

async fn unlock_whiteboard(h: &Harness, admin: &str) {
    let v = h
        .browser(
            "POST",
            "/api/updateLockSettings",
            admin,
            json!({"user_id":"all","service":"whiteboard","direction":"unlock"}),
        )
        .await;
    assert_eq!(v["status"], true, "{v}");
}

/// Uploads `bytes` as one file of `purpose` through the browser API; the file id.
async fn upload(h: &Harness, token: &str, purpose: &str, name: &str, bytes: &[u8]) -> String {
    let id = format!("doc-{}", &uuid_like(name));
    let chunks: Vec<&[u8]> = bytes.chunks(1024 * 1024).collect();
    let v = h
        .browser(
            "POST",
            "/api/files/start",
            token,
            json!({"file_id":id,"purpose":purpose,"name":name,"mime":"application/pdf","size":bytes.len(),"chunks":chunks.len()}),
        )
        .await;
    assert_eq!(v["status"], true, "{v}");
    for (i, c) in chunks.iter().enumerate() {
        let req = Request::put(format!("/api/files/{id}/chunk/{i}"))
            .header("Authorization", token)
            .header("Content-Type", "application/octet-stream")
            .body(Body::from(c.to_vec()))
            .unwrap();
        let (s, _) = h.send(req).await;
        assert_eq!(s, StatusCode::OK);
    }
    let v = h
        .browser("POST", "/api/files/finish", token, json!({"file_id":id}))
        .await;
    assert_eq!(v["complete"], true, "{v}");
    id
}

fn uuid_like(seed: &str) -> String {
    let mut s: String = seed.chars().filter(char::is_ascii_alphanumeric).collect();
    s.push_str("0123456789abcdef");
    s.truncate(20);
    s
}

/// Waits (bounded) for the board's `documents` to hold an update; returns it decoded, and who
/// it is from.
async fn first_document(h: &Harness, token: &str) -> (Value, String) {
    for _ in 0..600 {
        let v = h
            .browser(
                "POST",
                "/api/content/log",
                token,
                json!({"kind":"whiteboard","doc":"documents","after":0}),
            )
            .await;
        if let Some(u) = v["updates"].as_array().and_then(|u| u.first()) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(u["body"].as_str().unwrap())
                .unwrap();
            return (
                serde_json::from_slice(&bytes).unwrap(),
                u["from"].as_str().unwrap().to_owned(),
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no document reached the board within 60 s");
}

/// Every page of `doc` is a finished `page` file holding a PNG of the stated size's aspect.
async fn pages_are_pngs(h: &Harness, token: &str, doc: &Value, pages: usize, landscape: bool) {
    let list = doc["pages"].as_array().unwrap();
    assert_eq!(list.len(), pages, "{doc}");
    for p in list {
        let id = p["file_id"].as_str().unwrap();
        let (w, hgt) = (p["width"].as_u64().unwrap(), p["height"].as_u64().unwrap());
        assert_eq!(w > hgt, landscape, "{p}");
        let info = h
            .browser("POST", "/api/files/info", token, json!({"file_id":id}))
            .await;
        assert_eq!(
            (info["purpose"].as_str(), info["complete"].as_bool()),
            (Some("page"), Some(true))
        );
        let req = Request::get(format!("/api/files/{id}/chunk/0"))
            .header("Authorization", token)
            .body(Body::empty())
            .unwrap();
        let res = h.router.clone().oneshot(req).await.unwrap();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "page {id} is a PNG");
    }
}

#[tokio::test]
async fn a_participants_pdf_becomes_pages_on_the_board() {
    let h = Harness::new().await;
    h.create("class", "{}").await;
    let ann = h.join_token("class", "ann", true, "").await;
    let bob = h.join_token("class", "bob", false, "").await;
    let pdf = sample::pdf(3, 842, 595);
    let id = upload(&h, &ann, "whiteboard", "slides.pdf", &pdf).await;

    // Bob may not draw yet (the whiteboard is locked for non-admins by default).
    let (s, v) = h
        .browser_call(
            "POST",
            "/api/whiteboard/convert",
            &bob,
            json!({"file_id":id}),
        )
        .await;
    assert_eq!(
        (s, v["status"].as_bool()),
        (StatusCode::FORBIDDEN, Some(false)),
        "{v}"
    );
    unlock_whiteboard(&h, &ann).await;

    let v = h
        .browser(
            "POST",
            "/api/whiteboard/convert",
            &bob,
            json!({"file_id":id}),
        )
        .await;
    assert_eq!(v["status"], true, "{v}");
    let document_id = v["document_id"].as_str().unwrap().to_owned();

    let (doc, from) = first_document(&h, &bob).await;
    assert_eq!(from, "bob", "the document is from whoever asked");
    assert_eq!(doc["document_id"], document_id.as_str());
    assert_eq!(doc["name"], "slides.pdf");
    pages_are_pngs(&h, &ann, &doc, 3, true).await;
}

#[tokio::test]
async fn what_cannot_be_converted_is_refused_with_its_reason() {
    let h = Harness::new().await;
    h.create("plain", "{}").await;
    let ann = h.join_token("plain", "ann", true, "").await;
    let v = h
        .browser(
            "POST",
            "/api/whiteboard/convert",
            &ann,
            json!({"file_id":"nosuchfile0123456789"}),
        )
        .await;
    assert_eq!(v["status"], false, "{v}");
    // A chat upload is not a whiteboard document.
    let bytes = b"just some notes".to_vec();
    let id = format!("chat-{}", uuid_like("notes"));
    let v = h
        .browser(
            "POST",
            "/api/files/start",
            &ann,
            json!({"file_id":id,"purpose":"chat","name":"notes.txt","mime":"text/plain","size":bytes.len(),"chunks":1}),
        )
        .await;
    assert_eq!(v["status"], true, "{v}");
    let req = Request::put(format!("/api/files/{id}/chunk/0"))
        .header("Authorization", &ann)
        .body(Body::from(bytes))
        .unwrap();
    h.send(req).await;
    h.browser("POST", "/api/files/finish", &ann, json!({"file_id":id}))
        .await;
    let v = h
        .browser(
            "POST",
            "/api/whiteboard/convert",
            &ann,
            json!({"file_id":id}),
        )
        .await;
    assert_eq!(v["status"], false, "{v}");
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .contains("not a finished upload of purpose whiteboard"),
        "{v}"
    );

    // An encrypted room: the server must not see its documents, whoever asks.
    h.create(
        "sealed",
        r#"{"end_to_end_encryption_features":{"is_enabled":true}}"#,
    )
    .await;
    let eve = h.join_token("sealed", "eve", true, "").await;
    let v = h
        .browser(
            "POST",
            "/api/whiteboard/convert",
            &eve,
            json!({"file_id":id}),
        )
        .await;
    assert_eq!(v["status"], false, "{v}");
    assert!(
        v["msg"].as_str().unwrap().contains("end-to-end encrypted"),
        "{v}"
    );
    let (s, v) = multipart_upload(&h, "sealed", Some(SECRET), &sample::pdf(1, 595, 842)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["msg"].as_str().unwrap().contains("end-to-end encrypted"),
        "{v}"
    );
}

/// `/auth/room/uploadWhiteboardFile` as Plug-N-Meet's SDKs send it: multipart, field
/// `document`, the signature over the `Room-Id` header (or a wrong secret).
async fn multipart_upload(
    h: &Harness,
    room: &str,
    secret: Option<&str>,
    pdf: &[u8],
) -> (StatusCode, Value) {
    let boundary = "----enclave-test-boundary";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"document\"; filename=\"handout.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(pdf);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let signature = enclave_server::auth::sign(secret.unwrap_or("not-the-secret"), room.as_bytes());
    let req = Request::post("/auth/room/uploadWhiteboardFile")
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("API-KEY", KEY)
        .header("HASH-SIGNATURE", signature)
        .header("Room-Id", room)
        .body(Body::from(body))
        .unwrap();
    let (s, b) = h.send(req).await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_integrator_uploads_a_document_for_a_rooms_board() {
    let h = Harness::new().await;
    let pdf = sample::pdf(2, 595, 842);
    let (s, v) = multipart_upload(&h, "lecture", Some(SECRET), &pdf).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "the room is not active: {v}");

    h.create("lecture", "{}").await;
    let (s, v) = multipart_upload(&h, "lecture", None, &pdf).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a wrong signature: {v}");

    let (s, v) = multipart_upload(&h, "lecture", Some(SECRET), &pdf).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["status"].as_bool(), v["msg"].as_str()),
        (Some(true), Some("file uploaded successfully"))
    );
    let ann = h.join_token("lecture", "ann", true, "").await;
    let (doc, from) = first_document(&h, &ann).await;
    assert_eq!(from, "system");
    assert_eq!(doc["name"], "handout.pdf");
    pages_are_pngs(&h, &ann, &doc, 2, false).await;
}

#[tokio::test]
async fn a_preloaded_file_is_on_the_board_when_people_come() {
    // The document is served by a small HTTP server on loopback, as an LMS would serve it.
    let pdf = sample::pdf(2, 842, 595);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = pdf.clone();
    let server = tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/files/intro.pdf",
            axum::routing::get(move || {
                let b = served.clone();
                async move { b }
            }),
        );
        axum::serve(listener, app).await.unwrap();
    });

    let h = Harness::new().await;
    let features =
        format!(r#"{{"whiteboard_features":{{"preload_file":"http://{addr}/files/intro.pdf"}}}}"#);
    let v = h.create("welcome", &features).await;
    assert_eq!(v["status"], true, "{v}");
    let ann = h.join_token("welcome", "ann", true, "").await;
    let (doc, from) = first_document(&h, &ann).await;
    assert_eq!(from, "system");
    assert_eq!(doc["name"], "intro.pdf");
    pages_are_pngs(&h, &ann, &doc, 2, true).await;
    server.abort();
}
