//! The embedded SQLite history store. One connection behind a mutex, used from the blocking
//! pool: SQLite serialises writers anyway, and WAL mode keeps readers off the writer's path.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use enclave_proto::history::{Page, RoomArtifactType};

use super::{ArtifactRow, Filter, NewRoom, RecordingRow, RoomRow, Store, StoreError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS room_info (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id TEXT NOT NULL,
    sid TEXT NOT NULL UNIQUE,
    room_title TEXT NOT NULL,
    joined_participants INTEGER NOT NULL DEFAULT 0,
    is_running INTEGER NOT NULL DEFAULT 1,
    webhook_url TEXT NOT NULL DEFAULT '',
    is_breakout_room INTEGER NOT NULL DEFAULT 0,
    parent_room_id TEXT NOT NULL DEFAULT '',
    created INTEGER NOT NULL,
    ended INTEGER
);
CREATE INDEX IF NOT EXISTS room_info_room_id ON room_info(room_id, is_running);
CREATE TABLE IF NOT EXISTS recordings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL,
    room_sid TEXT NOT NULL,
    recorder_id TEXT NOT NULL DEFAULT '',
    file_path TEXT NOT NULL,
    size_mb REAL NOT NULL DEFAULT 0,
    created INTEGER NOT NULL,
    room_created INTEGER NOT NULL,
    metadata TEXT
);
CREATE INDEX IF NOT EXISTS recordings_room ON recordings(room_id, room_sid);
CREATE TABLE IF NOT EXISTS room_artifacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    artifact_id TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL,
    room_sid TEXT NOT NULL,
    kind INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS room_artifacts_room ON room_artifacts(room_id, room_sid);
";

/// SQLite-backed [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and its schema.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::new("create data directory", e))?;
        }
        let conn = Connection::open(path).map_err(|e| StoreError::new("open database", e))?;
        // WAL + NORMAL: durable across process crashes, one fsync per checkpoint rather than
        // per commit; history rows are cheap to lose on a power cut, not on a crash.
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
        )
        .map_err(|e| StoreError::new("configure database", e))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| StoreError::new("create schema", e))?;
        // Checkpoints (which fsync) run on a background connection, not inside a request's
        // commit. The automatic checkpoint stays as a backstop, at a higher threshold.
        conn.execute_batch("PRAGMA wal_autocheckpoint=10000;")
            .map_err(|e| StoreError::new("configure checkpoints", e))?;
        let conn = Arc::new(Mutex::new(conn));
        spawn_checkpointer(path, Arc::downgrade(&conn));
        Ok(Self { conn })
    }

    async fn with<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave SQLite inconsistent (every statement
            // is atomic), so a poisoned lock is still safe to use.
            let guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&guard)
        })
        .await
        .map_err(|e| StoreError::new(op, e))?
        .map_err(|e| StoreError::new(op, e))
    }
}

/// Runs a passive checkpoint every second on its own connection, until the store is dropped.
fn spawn_checkpointer(path: &Path, store: std::sync::Weak<Mutex<Connection>>) {
    let Ok(conn) = Connection::open(path) else {
        tracing::warn!("no checkpoint connection; SQLite will checkpoint on commit");
        return;
    };
    let _ = conn.busy_timeout(std::time::Duration::from_secs(1));
    let spawned = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while store.strong_count() > 0 {
                std::thread::sleep(std::time::Duration::from_secs(1));
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::debug!(error = %e, "checkpoint skipped");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no checkpoint thread; SQLite will checkpoint on commit");
    }
}

fn room_row(r: &Row<'_>) -> rusqlite::Result<RoomRow> {
    Ok(RoomRow {
        id: r.get(0)?,
        room_id: r.get(1)?,
        sid: r.get(2)?,
        room_title: r.get(3)?,
        joined_participants: r.get(4)?,
        is_running: r.get::<_, i64>(5)? != 0,
        webhook_url: r.get(6)?,
        is_breakout_room: r.get::<_, i64>(7)? != 0,
        parent_room_id: r.get(8)?,
        created: r.get(9)?,
        ended: r.get(10)?,
    })
}
const ROOM_COLS: &str = "id, room_id, sid, room_title, joined_participants, is_running, webhook_url, is_breakout_room, parent_room_id, created, ended";

fn recording_row(r: &Row<'_>) -> rusqlite::Result<RecordingRow> {
    Ok(RecordingRow {
        record_id: r.get(0)?,
        room_id: r.get(1)?,
        room_sid: r.get(2)?,
        recorder_id: r.get(3)?,
        file_path: r.get(4)?,
        size_mb: r.get(5)?,
        created: r.get(6)?,
        room_created: r.get(7)?,
        metadata: r.get(8)?,
    })
}
const REC_COLS: &str = "record_id, room_id, room_sid, recorder_id, file_path, size_mb, created, room_created, metadata";

fn artifact_row(r: &Row<'_>) -> rusqlite::Result<ArtifactRow> {
    Ok(ArtifactRow {
        artifact_id: r.get(0)?,
        room_id: r.get(1)?,
        room_sid: r.get(2)?,
        kind: RoomArtifactType::from_number(r.get(3)?).unwrap_or_default(),
        metadata: r.get(4)?,
        created: r.get(5)?,
    })
}
const ART_COLS: &str = "artifact_id, room_id, room_sid, kind, metadata, created";

/// Builds `WHERE` conditions and their parameters for a [`Filter`].
fn filter_sql(filter: &Filter, sid_col: &str, base: &str) -> (String, Vec<rusqlite::types::Value>) {
    let mut conds = vec![base.to_owned()];
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if !filter.room_ids.is_empty() {
        let marks = vec!["?"; filter.room_ids.len()].join(",");
        conds.push(format!("room_id IN ({marks})"));
        args.extend(filter.room_ids.iter().cloned().map(Into::into));
    }
    if let Some(sid) = &filter.room_sid {
        conds.push(format!("{sid_col} = ?"));
        args.push(sid.clone().into());
    }
    (conds.join(" AND "), args)
}

fn paged<T>(
    conn: &Connection,
    table: &str,
    cols: &str,
    cond: &str,
    args: Vec<rusqlite::types::Value>,
    page: &Page,
    map: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<(i64, Vec<T>)> {
    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM {table} WHERE {cond}"),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let order = if page.ascending() { "ASC" } else { "DESC" };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {cols} FROM {table} WHERE {cond} ORDER BY id {order} LIMIT ? OFFSET ?"
    ))?;
    let mut all = args;
    all.push(i64::from(page.limit).into());
    all.push(i64::from(page.from).into());
    let rows = stmt
        .query_map(params_from_iter(all.iter()), map)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((total, rows))
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_room(&self, room: NewRoom) -> Result<i64, StoreError> {
        self.with("insert room", move |c| {
            c.prepare_cached("INSERT INTO room_info (room_id, sid, room_title, webhook_url, created) VALUES (?1, ?2, ?3, ?4, ?5)")?
                .execute(params![room.room_id, room.sid, room.room_title, room.webhook_url, room.created])?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    async fn end_room(&self, sid: &str, ended: i64, joined: i64) -> Result<(), StoreError> {
        let sid = sid.to_owned();
        self.with("end room", move |c| {
            c.prepare_cached("UPDATE room_info SET is_running = 0, ended = ?2, joined_participants = ?3 WHERE sid = ?1")?
                .execute(params![sid, ended, joined])?;
            Ok(())
        })
        .await
    }

    async fn end_all_running(&self, ended: i64) -> Result<u64, StoreError> {
        self.with("end running rooms", move |c| {
            let n = c.execute(
                "UPDATE room_info SET is_running = 0, ended = ?1 WHERE is_running = 1",
                params![ended],
            )?;
            Ok(n as u64)
        })
        .await
    }

    async fn room_by_sid(&self, sid: &str) -> Result<Option<RoomRow>, StoreError> {
        let sid = sid.to_owned();
        self.with("read room", move |c| {
            c.query_row(
                &format!("SELECT {ROOM_COLS} FROM room_info WHERE sid = ?1"),
                params![sid],
                room_row,
            )
            .optional()
        })
        .await
    }

    async fn past_rooms(
        &self,
        filter: &Filter,
        page: &Page,
    ) -> Result<(i64, Vec<RoomRow>), StoreError> {
        let (cond, args) = filter_sql(filter, "sid", "is_running = 0");
        let page = page.clone();
        self.with("list past rooms", move |c| {
            paged(c, "room_info", ROOM_COLS, &cond, args, &page, room_row)
        })
        .await
    }

    async fn insert_recording(&self, r: RecordingRow) -> Result<(), StoreError> {
        self.with("insert recording", move |c| {
            c.execute(
                &format!("INSERT INTO recordings ({REC_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![r.record_id, r.room_id, r.room_sid, r.recorder_id, r.file_path, r.size_mb, r.created, r.room_created, r.metadata],
            )?;
            Ok(())
        })
        .await
    }

    async fn recordings(
        &self,
        filter: &Filter,
        page: &Page,
    ) -> Result<(i64, Vec<RecordingRow>), StoreError> {
        let (cond, args) = filter_sql(filter, "room_sid", "1 = 1");
        let page = page.clone();
        self.with("list recordings", move |c| {
            paged(c, "recordings", REC_COLS, &cond, args, &page, recording_row)
        })
        .await
    }

    async fn recording(&self, record_id: &str) -> Result<Option<RecordingRow>, StoreError> {
        let id = record_id.to_owned();
        self.with("read recording", move |c| {
            c.query_row(
                &format!("SELECT {REC_COLS} FROM recordings WHERE record_id = ?1"),
                params![id],
                recording_row,
            )
            .optional()
        })
        .await
    }

    async fn delete_recording(&self, record_id: &str) -> Result<bool, StoreError> {
        let id = record_id.to_owned();
        self.with("delete recording", move |c| {
            Ok(c.execute("DELETE FROM recordings WHERE record_id = ?1", params![id])? > 0)
        })
        .await
    }

    async fn update_recording_metadata(
        &self,
        record_id: &str,
        metadata: &str,
    ) -> Result<bool, StoreError> {
        let (id, m) = (record_id.to_owned(), metadata.to_owned());
        self.with("update recording metadata", move |c| {
            Ok(c.execute(
                "UPDATE recordings SET metadata = ?2 WHERE record_id = ?1",
                params![id, m],
            )? > 0)
        })
        .await
    }

    async fn insert_artifact(&self, a: ArtifactRow) -> Result<(), StoreError> {
        self.with("insert artifact", move |c| {
            c.execute(
                &format!("INSERT INTO room_artifacts ({ART_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                params![
                    a.artifact_id,
                    a.room_id,
                    a.room_sid,
                    a.kind.number(),
                    a.metadata,
                    a.created
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn artifacts(
        &self,
        filter: &Filter,
        kind: Option<RoomArtifactType>,
        page: &Page,
    ) -> Result<(i64, Vec<ArtifactRow>), StoreError> {
        let (mut cond, mut args) = filter_sql(filter, "room_sid", "1 = 1");
        if let Some(k) = kind {
            cond.push_str(" AND kind = ?");
            args.push(i64::from(k.number()).into());
        }
        let page = page.clone();
        self.with("list artifacts", move |c| {
            paged(
                c,
                "room_artifacts",
                ART_COLS,
                &cond,
                args,
                &page,
                artifact_row,
            )
        })
        .await
    }

    async fn artifact(&self, artifact_id: &str) -> Result<Option<ArtifactRow>, StoreError> {
        let id = artifact_id.to_owned();
        self.with("read artifact", move |c| {
            c.query_row(
                &format!("SELECT {ART_COLS} FROM room_artifacts WHERE artifact_id = ?1"),
                params![id],
                artifact_row,
            )
            .optional()
        })
        .await
    }

    async fn delete_artifact(&self, artifact_id: &str) -> Result<bool, StoreError> {
        let id = artifact_id.to_owned();
        self.with("delete artifact", move |c| {
            Ok(c.execute(
                "DELETE FROM room_artifacts WHERE artifact_id = ?1",
                params![id],
            )? > 0)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with("ping", |c| c.query_row("SELECT 1", [], |_| Ok(())))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_store_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("h.sqlite")).unwrap();
        super::super::conformance::run(&store).await;
    }
}
