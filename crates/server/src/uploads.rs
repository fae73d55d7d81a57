//! Where the files participants upload are kept: `<uploads>/<session sid>/<file_id>/<index>`.
//!
//! Only typed values become path parts: the session id, a parsed [`FileId`] and a chunk's
//! number. A chunk is written to a temporary name and renamed, so a reader never sees half of
//! one. A session's directory is removed when the session ends ([`remove_session`]) and, for
//! sessions an earlier process left behind, at start ([`remove_leftovers`]).

use std::path::{Path, PathBuf};

use rand::distributions::{Alphanumeric, DistString};

use enclave_proto::content::FileId;
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

/// Removes a session's files (the session ended).
pub async fn remove_session(uploads: &Path, sid: &SessionId) {
    match tokio::fs::remove_dir_all(session_dir(uploads, sid)).await {
        Ok(()) => tracing::info!(%sid, "session files removed"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::error!(error = %e, %sid, "could not remove the session's files"),
    }
}

/// At start no session is live: removes every session directory an earlier process left
/// (only directories named like a session id, so a misconfigured path loses nothing else).
pub async fn remove_leftovers(uploads: &Path) {
    let Ok(mut entries) = tokio::fs::read_dir(uploads).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name();
        let is_session = name.to_str().is_some_and(|n| SessionId::parse(n).is_ok());
        let is_dir = entry.file_type().await.is_ok_and(|t| t.is_dir());
        if is_session && is_dir {
            match tokio::fs::remove_dir_all(entry.path()).await {
                Ok(()) => tracing::info!(sid = ?name, "files of an earlier session removed"),
                Err(e) => {
                    tracing::error!(error = %e, sid = ?name, "could not remove an earlier session's files")
                }
            }
        }
    }
}
