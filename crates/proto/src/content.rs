//! What participants create (`/api/content/*`, `/api/files/*`): whiteboard and notepad
//! documents as append-only logs, and files uploaded in chunks. The contract is
//! `docs/content.md`.
//!
//! The server never reads a body or a chunk: in an end-to-end encrypted room they are sealed
//! envelopes (and so are a file's name and type). Ids are parsed here, at the boundary: a
//! document id and a file id are 1–64 (16–64 for files) of `A-Z a-z 0-9 _ -`, so a file id
//! may become a directory name and nothing else from a request can.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which kind of document: its feature switch, its lock and its writers follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentKind {
    /// Excalidraw element updates of one page, the page list, the documents on the board.
    Whiteboard,
    /// Yjs updates of the shared notepad.
    Notepad,
}

impl ContentKind {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Whiteboard => "whiteboard",
            Self::Notepad => "notepad",
        }
    }
}

impl fmt::Display for ContentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn is_id_text(s: &str, min: usize) -> bool {
    (min..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A document's id: 1–64 of `A-Z a-z 0-9 _ -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DocId(String);

impl DocId {
    /// Parses a document id.
    pub fn parse(s: &str) -> Result<Self, String> {
        if is_id_text(s, 1) {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "{s:?} is not a document id (1 to 64 letters, digits, '-' or '_')"
            ))
        }
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DocId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<DocId> for String {
    fn from(d: DocId) -> String {
        d.0
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A file's id, chosen (at random) by the client: 16–64 of `A-Z a-z 0-9 _ -`. It names the
/// file's directory on disk, which is why nothing else is accepted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileId(String);

impl FileId {
    /// Parses a file id.
    pub fn parse(s: &str) -> Result<Self, String> {
        if is_id_text(s, 16) {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "{:?} is not a file id (16 to 64 letters, digits, '-' or '_')",
                s.chars().take(80).collect::<String>()
            ))
        }
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FileId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<FileId> for String {
    fn from(d: FileId) -> String {
        d.0
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `/api/content/append`: one update to the end of a document's log.
#[derive(Debug, Clone, Deserialize)]
pub struct AppendReq {
    /// The document's kind.
    pub kind: ContentKind,
    /// The document.
    pub doc: DocId,
    /// The update (a sealed envelope in an encrypted room).
    pub body: String,
}

/// The sequence number the update got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Appended {
    /// From 1 in each document.
    pub seq: u64,
}

/// `/api/content/log`: what a document holds after `after`.
#[derive(Debug, Clone, Deserialize)]
pub struct LogReq {
    /// The document's kind.
    pub kind: ContentKind,
    /// The document.
    pub doc: DocId,
    /// The last `seq` the client applied (0: none).
    #[serde(default)]
    pub after: u64,
}

/// A document's snapshot: its state up to `upto`, as a writer compacted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotEntry {
    /// The last update it contains.
    pub upto: u64,
    /// Who sent it.
    pub from: String,
    /// The state (a sealed envelope in an encrypted room).
    pub body: String,
}

/// One update of a document's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateEntry {
    /// Its sequence number.
    pub seq: u64,
    /// Who sent it (the caller's identity, or `system`).
    pub from: String,
    /// The update.
    pub body: String,
}

/// The reply of `log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogReply {
    /// The document's kind.
    pub kind: ContentKind,
    /// The document.
    pub doc: String,
    /// The last `seq` given (0: nothing yet).
    pub head: u64,
    /// The snapshot, when `after` is older than it (`null` otherwise).
    pub snapshot: Option<SnapshotEntry>,
    /// Updates with `seq > after` (and after the snapshot, when there is one), in order.
    pub updates: Vec<UpdateEntry>,
}

/// `/api/content/snapshot`: a writer compacts a document.
#[derive(Debug, Clone, Deserialize)]
pub struct SnapshotReq {
    /// The document's kind.
    pub kind: ContentKind,
    /// The document.
    pub doc: DocId,
    /// The last update the snapshot contains (at most the document's head).
    pub upto: u64,
    /// The state (a sealed envelope in an encrypted room).
    pub body: String,
}

/// `/api/content/clear`: admins drop a document, or every document of a kind.
#[derive(Debug, Clone, Deserialize)]
pub struct ClearReq {
    /// The kind.
    pub kind: ContentKind,
    /// The document; empty: every document of the kind.
    #[serde(default)]
    pub doc: String,
}

/// How many documents `clear` dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cleared {
    /// Documents dropped.
    pub cleared: u64,
}

/// `/api/content/docs`: the documents of a kind.
#[derive(Debug, Clone, Deserialize)]
pub struct DocsReq {
    /// The kind.
    pub kind: ContentKind,
}

/// One document in `docs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocInfo {
    /// Its id.
    pub doc: String,
    /// Its last `seq`.
    pub head: u64,
    /// Bytes it holds (snapshot and updates).
    pub bytes: u64,
}

/// The reply of `docs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocsReply {
    /// The documents, by id.
    pub docs: Vec<DocInfo>,
}

/// What a file is for: it decides who may upload it and how large it may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilePurpose {
    /// Shared in the chat.
    Chat,
    /// An office or PDF document to convert onto the whiteboard (plain rooms).
    Whiteboard,
    /// A page image of a document on the whiteboard.
    Page,
}

impl FilePurpose {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Whiteboard => "whiteboard",
            Self::Page => "page",
        }
    }
}

/// `POST /api/files/start`: announces an upload.
#[derive(Debug, Clone, Deserialize)]
pub struct FileStartReq {
    /// The client's random id for the file.
    pub file_id: FileId,
    /// What it is for.
    pub purpose: FilePurpose,
    /// Its name (a sealed envelope in an encrypted room).
    pub name: String,
    /// Its media type (a sealed envelope in an encrypted room).
    #[serde(default)]
    pub mime: String,
    /// The sum of its chunks as uploaded.
    pub size: u64,
    /// How many chunks it is sent in.
    pub chunks: u32,
}

/// `/api/whiteboard/convert`'s reply: the id the converted document will have in whiteboard
/// document `documents` (its pages arrive there as an update when the conversion is done).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvertStarted {
    /// The document's id on the board.
    pub document_id: String,
}

/// A file id alone: `start`'s reply, and `finish`'s and `info`'s request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdBody {
    /// The file.
    pub file_id: FileId,
}

/// A chunk was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChunkReceived {
    /// How many of the file's chunks the server holds now.
    pub received: u32,
}

/// What the server knows of a file (`info`, `finish`; kept beside a finished file's chunks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// The file's id.
    pub file_id: String,
    /// What it is for.
    pub purpose: FilePurpose,
    /// Its name (as sent: sealed in an encrypted room).
    pub name: String,
    /// Its media type (as sent).
    pub mime: String,
    /// The sum of its chunks.
    pub size: u64,
    /// How many chunks it has.
    pub chunks: u32,
    /// Who uploaded it (`system` for the server's own).
    pub from: String,
    /// Whether it is finished (and may be downloaded).
    pub complete: bool,
    /// The chunks held, in order.
    pub received: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_parsed_at_the_boundary() {
        assert!(DocId::parse("page-1_A").is_ok());
        assert!(DocId::parse("").is_err());
        assert!(DocId::parse(&"a".repeat(65)).is_err());
        assert!(DocId::parse("../x").is_err());
        assert!(FileId::parse("0123456789abcdef").is_ok());
        assert!(FileId::parse("0123456789abcde").is_err(), "too short");
        assert!(FileId::parse("../x").is_err());
        assert!(FileId::parse("0123456789abcdef/..").is_err());
        let e = crate::json::decode::<FileIdBody>(br#"{"file_id":"../x"}"#).unwrap_err();
        assert!(e.to_string().contains("file_id"), "{e}");
        let e = crate::json::decode::<AppendReq>(br#"{"kind":"slides","doc":"d","body":""}"#)
            .unwrap_err();
        assert!(e.to_string().contains("kind"), "{e}");
    }
}
