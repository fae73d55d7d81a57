//! The behaviour every [`Store`] must show. Each backend's tests call [`run`].

use enclave_proto::history::{Page, RoomArtifactType};

use super::{ArtifactRow, Filter, NewRoom, RecordingRow, Store};

fn room(room_id: &str, sid: &str, created: i64) -> NewRoom {
    NewRoom {
        room_id: room_id.into(),
        sid: sid.into(),
        room_title: format!("title {room_id}"),
        webhook_url: String::new(),
        created,
    }
}

pub(crate) async fn run(store: &dyn Store) {
    store.ping().await.unwrap();

    // Sessions: running sessions are not history; ended ones are, newest first by default.
    let a1 = store.insert_room(room("a", "sid-a1", 100)).await.unwrap();
    let a2 = store.insert_room(room("a", "sid-a2", 200)).await.unwrap();
    store.insert_room(room("b", "sid-b1", 300)).await.unwrap();
    assert!(a2 > a1);
    let all = Filter::default();
    let page = Page::new(0, 0, String::new());
    assert_eq!(store.past_rooms(&all, &page).await.unwrap().0, 0);
    store.end_room("sid-a1", 150, 2).await.unwrap();
    store.end_room("sid-a2", 250, 0).await.unwrap();
    let (total, rows) = store.past_rooms(&all, &page).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(
        rows.iter().map(|r| r.sid.as_str()).collect::<Vec<_>>(),
        ["sid-a2", "sid-a1"]
    );
    assert_eq!(rows[1].ended, Some(150));
    assert_eq!(rows[1].joined_participants, 2);
    let asc = Page::new(0, 1, "ASC".into());
    let (total, rows) = store.past_rooms(&all, &asc).await.unwrap();
    assert_eq!((total, rows.len(), rows[0].sid.as_str()), (2, 1, "sid-a1"));
    let only_b = Filter {
        room_ids: vec!["b".into()],
        room_sid: None,
    };
    assert_eq!(store.past_rooms(&only_b, &page).await.unwrap().0, 0);
    assert_eq!(store.end_all_running(400).await.unwrap(), 1);
    assert_eq!(store.past_rooms(&only_b, &page).await.unwrap().0, 1);
    assert!(store
        .room_by_sid("sid-b1")
        .await
        .unwrap()
        .is_some_and(|r| !r.is_running && r.ended == Some(400)));
    assert!(store.room_by_sid("nope").await.unwrap().is_none());
    assert!(
        store.insert_room(room("c", "sid-a1", 1)).await.is_err(),
        "a session id is unique"
    );

    // Recordings.
    for (id, sid) in [("r1", "sid-a1"), ("r2", "sid-a2")] {
        store
            .insert_recording(RecordingRow {
                record_id: id.into(),
                room_id: "a".into(),
                room_sid: sid.into(),
                recorder_id: "local".into(),
                file_path: format!("{sid}/{id}.mp4"),
                size_mb: 1.5,
                created: 10,
                room_created: 5,
                metadata: None,
            })
            .await
            .unwrap();
    }
    let by_sid = Filter {
        room_ids: vec!["a".into()],
        room_sid: Some("sid-a2".into()),
    };
    let (total, rows) = store.recordings(&by_sid, &page).await.unwrap();
    assert_eq!((total, rows[0].record_id.as_str()), (1, "r2"));
    assert!(store
        .update_recording_metadata("r1", r#"{"title":"x"}"#)
        .await
        .unwrap());
    assert!(!store.update_recording_metadata("zz", "{}").await.unwrap());
    assert_eq!(
        store
            .recording("r1")
            .await
            .unwrap()
            .unwrap()
            .metadata
            .as_deref(),
        Some(r#"{"title":"x"}"#)
    );
    assert!(store.delete_recording("r1").await.unwrap());
    assert!(!store.delete_recording("r1").await.unwrap());
    assert!(store.recording("r1").await.unwrap().is_none());

    // Artifacts.
    store
        .insert_artifact(ArtifactRow {
            artifact_id: "art1".into(),
            room_id: "a".into(),
            room_sid: "sid-a1".into(),
            kind: RoomArtifactType::MeetingAnalytics,
            metadata: "{}".into(),
            created: 7,
        })
        .await
        .unwrap();
    let (n, _) = store
        .artifacts(&all, Some(RoomArtifactType::MeetingSummary), &page)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let (n, rows) = store
        .artifacts(&all, Some(RoomArtifactType::MeetingAnalytics), &page)
        .await
        .unwrap();
    assert_eq!((n, rows[0].kind), (1, RoomArtifactType::MeetingAnalytics));
    assert!(store.artifact("art1").await.unwrap().is_some());
    assert!(store.delete_artifact("art1").await.unwrap());
    assert!(store.artifact("art1").await.unwrap().is_none());
}
