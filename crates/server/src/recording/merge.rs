//! `recording/mergeRecordings`: a room's recordings concatenated into one file with ffmpeg (the
//! concat demuxer, streams copied: every recording of this server is encoded alike), stored as a
//! new recording (`recorder_id` `merged-recording`) and announced with `recording_proceeded`.
//! One merge per room at a time; the request returns once the job is registered.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

use super::Recorders;
use crate::clock::unix_now;
use crate::store::{RecordingRow, RoomRow};
use crate::webhook::{NotifyEvent, NotifyRecording, NotifyRoom};

/// Why a merge was not registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeRefused {
    #[error("at least two recordings are required to merge")]
    TooFew,
    #[error("another request for this scope already registered, rejecting new one")]
    Running,
}

/// The recorder id of merged recordings.
pub const MERGED: &str = "merged-recording";

/// The concat demuxer's list: one `file '<path>'` line each, quotes escaped as it wants them.
pub fn concat_list(files: &[&Path]) -> String {
    files
        .iter()
        .map(|p| {
            format!(
                "file '{}'\n",
                p.display().to_string().replace('\'', r"'\''")
            )
        })
        .collect()
}

impl Recorders {
    /// Registers a merge of `rows` (oldest first) of session `room` (the last one's); the new
    /// recording's id.
    pub fn merge(&self, room: RoomRow, rows: Vec<RecordingRow>) -> Result<String, MergeRefused> {
        if rows.len() < 2 {
            return Err(MergeRefused::TooFew);
        }
        if !self.merging().insert(room.room_id.clone()) {
            return Err(MergeRefused::Running);
        }
        let record_id = format!("{}-{}", room.sid, crate::clock::unix_ms());
        let me = self.clone();
        let id = record_id.clone();
        tokio::spawn(async move {
            let result = me.run_merge(&room, &rows, &id).await;
            me.merging().remove(&room.room_id);
            match result {
                Ok(()) => tracing::info!(
                    room_id = room.room_id,
                    record_id = id,
                    parts = rows.len(),
                    "recordings merged"
                ),
                Err(e) => {
                    tracing::warn!(room_id = room.room_id, record_id = id, error = %e, "merging recordings failed")
                }
            }
        });
        Ok(record_id)
    }

    fn merging(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.inner.merging.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn run_merge(
        &self,
        room: &RoomRow,
        rows: &[RecordingRow],
        record_id: &str,
    ) -> Result<(), String> {
        let files = &self.inner.files;
        let inputs: Vec<_> = rows.iter().map(|r| files.join(&r.file_path)).collect();
        for p in &inputs {
            if !tokio::fs::try_exists(p).await.unwrap_or(false) {
                return Err(format!("{} is missing", p.display()));
            }
        }
        let rel = format!("{}/{record_id}.mp4", room.sid);
        let out = files.join(&rel);
        let work = files.join(".work");
        tokio::fs::create_dir_all(&work)
            .await
            .map_err(|e| format!("{}: {e}", work.display()))?;
        if let Some(dir) = out.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let list = work.join(format!("{record_id}.txt"));
        let refs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
        tokio::fs::write(&list, concat_list(&refs))
            .await
            .map_err(|e| format!("{}: {e}", list.display()))?;
        let status = Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-nostdin",
                "-y",
                "-f",
                "concat",
                "-safe",
                "0",
                "-i",
            ])
            .arg(&list)
            .args(["-c", "copy", "-movflags", "+faststart"])
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await;
        let _ = tokio::fs::remove_file(&list).await;
        let output = status.map_err(|e| format!("ffmpeg did not start: {e}"))?;
        if !output.status.success() {
            let _ = tokio::fs::remove_file(&out).await;
            let err = String::from_utf8_lossy(&output.stderr);
            return Err(format!(
                "ffmpeg: {}",
                err.lines().last().unwrap_or("failed")
            ));
        }
        let bytes = tokio::fs::metadata(&out)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        let size_mb = ((bytes as f64) / 1_048_576.0 * 100.0).round() / 100.0;
        let row = RecordingRow {
            record_id: record_id.to_owned(),
            room_id: room.room_id.clone(),
            room_sid: room.sid.clone(),
            recorder_id: MERGED.to_owned(),
            file_path: rel.clone(),
            size_mb,
            created: unix_now(),
            room_created: room.created,
            metadata: None,
        };
        if let Err(e) = self.inner.store.insert_recording(row).await {
            let _ = tokio::fs::remove_file(&out).await;
            return Err(e.to_string());
        }
        if let Some(q) = self.inner.webhooks.room_queue(&room.webhook_url) {
            q.send(NotifyEvent {
                event: "recording_proceeded".into(),
                room: NotifyRoom {
                    sid: room.sid.clone(),
                    room_id: room.room_id.clone(),
                    empty_timeout: 0,
                    max_participants: 0,
                    creation_time: room.created,
                    metadata: String::new(),
                    num_participants: 0,
                },
                participant: None,
                recording_info: Some(NotifyRecording {
                    record_id: record_id.to_owned(),
                    recorder_id: MERGED.to_owned(),
                    recorder_msg: format!("merged {} recordings", rows.len()),
                    file_path: rel,
                    file_size: size_mb,
                }),
                track: None,
                room_artifact: None,
                analytics: None,
                id: uuid::Uuid::new_v4().to_string(),
                created_at: unix_now(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_concat_list_quotes_paths_as_the_demuxer_reads_them() {
        let a = Path::new("/rec/s1/a.mp4");
        let b = Path::new("/rec/it's/b.mp4");
        assert_eq!(
            concat_list(&[a, b]),
            "file '/rec/s1/a.mp4'\nfile '/rec/it'\\''s/b.mp4'\n"
        );
    }
}
