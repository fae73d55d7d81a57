#![allow(clippy::unwrap_used)]
//! `recording/mergeRecordings`: a session's recordings become one file (the sum of their
//! durations), stored as a new recording and announced with `recording_proceeded`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Harness, Receiver};
use enclave_server::store::{Filter, RecordingRow};
use serde_json::Value;

/// A short H.264/AAC MP4 as the recorder writes them.
fn make_mp4(path: &std::path::Path, seconds: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("testsrc=size=320x240:rate=25:duration={seconds}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=440:duration={seconds}"))
        .args([
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .arg(path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
}

fn duration_of(path: &std::path::Path) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[tokio::test]
async fn a_sessions_recordings_merge_into_one_file_announced_like_a_recording() {
    let hooks = Receiver::start(0).await;
    let url = hooks.url.clone();
    let h = Harness::with(|c| {
        c.webhooks.enable = true;
        c.webhooks.url = Some(url);
    })
    .await;
    let v = h.create("rec", "{}").await;
    let sid = v["room_info"]["sid"].as_str().unwrap().to_owned();
    h.call("/auth/room/endRoom", r#"{"room_id":"rec"}"#).await;
    let files = h.app.config.recording_files_path.clone();
    for (i, secs) in [(1, 1u32), (2, 2)] {
        let rel = format!("{sid}/r{i}.mp4");
        make_mp4(&files.join(&rel), secs);
        h.app
            .store
            .insert_recording(RecordingRow {
                record_id: format!("r{i}"),
                room_id: "rec".into(),
                room_sid: sid.clone(),
                recorder_id: "enclave".into(),
                file_path: rel,
                size_mb: 0.1,
                created: 1_700_000_000 + i,
                room_created: 1_700_000_000,
                metadata: None,
            })
            .await
            .unwrap();
    }

    // Refusals first: too few, another room's ids, an unknown session, no scope.
    let refused = |body: &'static str, msg: &'static str| {
        let h = &h;
        async move {
            let (_, v) = h.call("/auth/recording/mergeRecordings", body).await;
            assert_eq!(
                (v["status"].as_bool(), v["msg"].as_str()),
                (Some(false), Some(msg)),
                "{body}: {v}"
            );
        }
    };
    refused(
        r#"{"by_ids":{"room_id":"rec","recording_ids":["r1"]}}"#,
        "at least two recordings are required to merge",
    )
    .await;
    refused(
        r#"{"by_ids":{"room_id":"other","recording_ids":["r1","r2"]}}"#,
        "one or more requested recordings were not found",
    )
    .await;
    refused(r#"{"by_session":{"room_sid":"nope"}}"#, "room not found").await;
    let (_, v) = h.call("/auth/recording/mergeRecordings", "{}").await;
    assert_eq!(v["status"], false);

    let body = format!(r#"{{"bySession":{{"roomSid":"{sid}"}}}}"#);
    let (_, v) = h.call("/auth/recording/mergeRecordings", &body).await;
    assert_eq!(
        v["msg"], "successfully registered new recording merging task",
        "{v}"
    );

    let filter = Filter {
        room_ids: Vec::new(),
        room_sid: Some(sid.clone()),
    };
    let page = enclave_proto::history::Page::new(0, 10, "ASC".into());
    let mut merged = None;
    for _ in 0..200 {
        let (_, rows) = h.app.store.recordings(&filter, &page).await.unwrap();
        merged = rows
            .into_iter()
            .find(|r| r.recorder_id == "merged-recording");
        if merged.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let merged = merged.expect("the merged recording is stored");
    let d = duration_of(&files.join(&merged.file_path));
    assert!((d - 3.0).abs() < 0.3, "1 s + 2 s, got {d}");
    for _ in 0..200 {
        if hooks.events().iter().any(|e| e == "recording_proceeded") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let hook: Value = hooks
        .wait_for(0)
        .await
        .iter()
        .find(|x| x.event() == "recording_proceeded")
        .unwrap()
        .json();
    assert_eq!(
        hook["recording_info"]["record_id"],
        merged.record_id.as_str()
    );
    assert_eq!(hook["recording_info"]["recorder_id"], "merged-recording");
    assert_eq!(hook["room"]["sid"], sid.as_str());
    // It downloads like any recording.
    let (_, t) = h
        .call(
            "/auth/recording/getDownloadToken",
            &format!(r#"{{"record_id":"{}"}}"#, merged.record_id),
        )
        .await;
    assert_eq!(t["status"], true, "{t}");
}
