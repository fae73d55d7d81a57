//! Where the files participants upload are kept: `<uploads>/<session sid>/<file_id>/<index>`.
//!
//! Only typed values become path parts: the session id, a parsed [`FileId`] and a chunk's
//! number. A chunk is written to a temporary name and renamed, so a reader never sees half of
//! one. A finished file has its info beside its chunks (`meta.json`). A session's directory is
//! removed when the session ends ([`remove_session`]) and, for sessions an earlier process left
//! behind, at start ([`remove_leftovers`]) — unless the server keeps a plain room's files
//! (`upload_file_settings.keep_forever`, Plug-N-Meet's setting): then [`keep_session`] drops
//! only unfinished uploads and marks the directory kept, and [`kept_file`] finds a file in it
//! for `/download/uploadedFile/{sid}/{file_id}`.

use std::path::{Path, PathBuf};

use rand::distributions::{Alphanumeric, DistString};

use enclave_proto::content::{FileId, FileInfo};
use enclave_proto::ids::SessionId;

/// The directory of a session's files.
pub fn session_dir(uploads: &Path, sid: &SessionId) -> PathBuf {
    uploads.join(sid.to_string())
}

/// The directory of one file's chunks.
pub fn file_dir(uploads: &Path, sid: &SessionId, id: &FileId) -> PathBuf {
    session_dir(uploads, sid).join(id.as_str())
}

/// Writes chunk `index` into `dir`: to a temporary name beside it, then renamed into place.
pub async fn write_chunk(dir: &Path, index: u32, bytes: &[u8]) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let tmp = dir.join(format!(
        "{index}.{}.part",
        Alphanumeric.sample_string(&mut rand::thread_rng(), 12)
    ));
    tokio::fs::write(&tmp, bytes).await?;
    if let Err(e) = tokio::fs::rename(&tmp, dir.join(index.to_string())).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    Ok(())
}

/// The info of a finished file, beside its chunks.
const META: &str = "meta.json";
/// The mark of a session directory kept after its session.
const KEPT: &str = ".kept";
/// The prefix of a conversion's work directory (the whiteboard routes make them here).
pub const CONVERT_PREFIX: &str = ".convert-";

/// Writes a finished file's info beside its chunks.
pub async fn write_meta(dir: &Path, info: &FileInfo) -> std::io::Result<()> {
    let json = serde_json::to_vec(info).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!("{META}.part"));
    tokio::fs::write(&tmp, json).await?;
    tokio::fs::rename(&tmp, dir.join(META)).await
}

/// Keeps a plain session's finished files after it ended: unfinished uploads go, the
/// directory is marked kept (so a restart leaves it alone).
pub async fn keep_session(uploads: &Path, sid: &SessionId) {
    let dir = session_dir(uploads, sid);
    let Ok(mut entries) = tokio::fs::read_dir(&dir).await else {
        return;
    };
    let mut kept = 0;
    while let Ok(Some(entry)) = entries.next_entry().await {
        if tokio::fs::try_exists(entry.path().join(META))
            .await
            .unwrap_or(false)
        {
            kept += 1;
        } else if entry.file_type().await.is_ok_and(|t| t.is_dir()) {
            let _ = tokio::fs::remove_dir_all(entry.path()).await;
        }
    }
    if kept == 0 {
        remove_session(uploads, sid).await;
        return;
    }
    match tokio::fs::write(dir.join(KEPT), b"").await {
        Ok(()) => tracing::info!(%sid, files = kept, "session files kept (keep_forever)"),
        Err(e) => tracing::error!(error = %e, %sid, "could not mark the session's files kept"),
    }
}

/// A file of a kept session: its info and the directory of its chunks.
pub async fn kept_file(
    uploads: &Path,
    sid: &SessionId,
    id: &FileId,
) -> Option<(FileInfo, PathBuf)> {
    let session = session_dir(uploads, sid);
    if !tokio::fs::try_exists(session.join(KEPT))
        .await
        .unwrap_or(false)
    {
        return None;
    }
    let dir = file_dir(uploads, sid, id);
    let meta = tokio::fs::read(dir.join(META)).await.ok()?;
    let info: FileInfo = serde_json::from_slice(&meta).ok()?;
    Some((info, dir))
}

/// Removes a session's files (the session ended).
pub async fn remove_session(uploads: &Path, sid: &SessionId) {
    match tokio::fs::remove_dir_all(session_dir(uploads, sid)).await {
        Ok(()) => tracing::info!(%sid, "session files removed"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::error!(error = %e, %sid, "could not remove the session's files"),
    }
}

/// At start no session is live: removes every session directory an earlier process left and
/// did not keep, and conversions' work directories (only directories named like those, so a
/// misconfigured path loses nothing else).
pub async fn remove_leftovers(uploads: &Path) {
    let Ok(mut entries) = tokio::fs::read_dir(uploads).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name();
        let is_session = name.to_str().is_some_and(|n| SessionId::parse(n).is_ok());
        let is_work = name.to_str().is_some_and(|n| n.starts_with(CONVERT_PREFIX));
        let is_dir = entry.file_type().await.is_ok_and(|t| t.is_dir());
        let kept = tokio::fs::try_exists(entry.path().join(KEPT))
            .await
            .unwrap_or(false);
        if is_work && is_dir {
            let _ = tokio::fs::remove_dir_all(entry.path()).await;
        } else if is_session && is_dir && !kept {
            match tokio::fs::remove_dir_all(entry.path()).await {
                Ok(()) => tracing::info!(sid = ?name, "files of an earlier session removed"),
                Err(e) => {
                    tracing::error!(error = %e, sid = ?name, "could not remove an earlier session's files")
                }
            }
        }
    }
}
