//! A session's files: what was announced, which chunks arrived, which files are finished
//! (`docs/content.md`).
//!
//! Plain state owned by the room's task; the bytes are on disk, written by the HTTP edge
//! (`http::files`). A chunk is written in three steps so that a file is never finished while
//! one of its chunks is still being written: [`Files::begin_chunk`] checks and marks it,
//! the edge writes it (to a temporary name, then renames), and [`Files::end_chunk`] records it
//! (or forgets it, if the write failed). In an encrypted room a file's name and type are
//! sealed envelopes; the server checks sizes, never contents.

use std::collections::{BTreeMap, BTreeSet};

use enclave_proto::content::{FileId, FileInfo, FilePurpose, FileStartReq};
use enclave_proto::room::RoomCreateFeatures;

use super::sealed::is_sealed_text;

const MIB: u64 = 1024 * 1024;

/// Bytes of one chunk as uploaded (1 MiB of plaintext and a sealed envelope's overhead).
pub const MAX_CHUNK_BYTES: u64 = MIB + 1024;
/// What a chunk may add to its plaintext when sealed (an envelope is 29 bytes).
const ENVELOPE_SLACK: u64 = MAX_CHUNK_BYTES - MIB;
/// Bytes of a page image.
pub const MAX_PAGE_BYTES: u64 = 10 * MIB;
/// Files one session may hold.
pub const MAX_FILES: usize = 1000;
/// Bytes of every file of a session (as announced).
pub const MAX_SESSION_BYTES: u64 = 2 * 1024 * MIB;
/// Uploads one participant may have started and not finished.
pub const MAX_UNFINISHED: usize = 4;
/// Bytes of a file's name and type as sent (sealed: base64 of the envelope).
pub const MAX_NAME_BYTES: usize = 1024;

/// Why a file request was refused; the message is the reply's `msg`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("file not found")]
    NotFound,
    #[error("file_id: a file with this id exists already")]
    Exists,
    #[error("this session has {MAX_FILES} files, the most it may hold")]
    TooMany,
    #[error("this session holds {} MiB of files, the most it may", MAX_SESSION_BYTES / MIB)]
    SessionFull,
    #[error("you have {MAX_UNFINISHED} unfinished uploads; finish one first")]
    Unfinished,
    #[error("size: {size} bytes is more than the {max} bytes a {purpose} file may have")]
    TooLarge {
        size: u64,
        max: u64,
        purpose: &'static str,
    },
    #[error("chunks: a file has 1 to {max} chunks of at most {MAX_CHUNK_BYTES} bytes and at least one byte each ({size} bytes in {chunks} chunks)")]
    Chunking { size: u64, chunks: u32, max: u64 },
    #[error("name: must be 1 to {MAX_NAME_BYTES} bytes without control characters")]
    BadName,
    #[error("mime: at most {MAX_NAME_BYTES} bytes without control characters")]
    BadMime,
    #[error("{0}: this room is end-to-end encrypted, and it is not sealed (the client must seal a file's name and type with the session's content key)")]
    NotSealed(&'static str),
    #[error("name: files of type {0:?} may not be shared in this room's chat")]
    FileType(String),
    #[error("sharing files in the chat is turned off in this room")]
    ChatUploadOff,
    #[error("the whiteboard is turned off in this room")]
    WhiteboardOff,
    #[error("purpose: whiteboard documents are converted by the server, which an end-to-end encrypted room does not allow (the browser renders the pages and uploads them as purpose page)")]
    WhiteboardSealed,
    #[error("the file is finished; its chunks cannot change")]
    Finished,
    #[error("the file is not finished yet")]
    NotFinished,
    #[error("only the participant who started the upload may send its chunks or finish it")]
    NotUploader,
    #[error("index: {index} is not a chunk of this file (it has {chunks})")]
    BadIndex { index: u32, chunks: u32 },
    #[error("chunk: {len} bytes; a chunk has 1 to {MAX_CHUNK_BYTES} bytes")]
    ChunkSize { len: u64 },
    #[error("chunk: the chunks would add up to more than the file's size ({size} bytes)")]
    Overflow { size: u64 },
    #[error("chunk {0} is being written; retry")]
    Busy(u32),
    #[error("chunks missing: {0:?}")]
    Missing(Vec<u32>),
    #[error("size: the chunks add up to {got} bytes, not {size}")]
    SizeMismatch { got: u64, size: u64 },
}

/// The largest file of `purpose` the room's features allow (and whether they allow it at
/// all). Who the caller is (locks, writer) the edge checks; this is the room's rule. `name` is
/// the file's name as sent: in a plain room its extension must be one the chat allows.
pub fn purpose_limit(
    purpose: FilePurpose,
    features: Option<&RoomCreateFeatures>,
    sealed: bool,
    name: &str,
) -> Result<u64, FileError> {
    match purpose {
        FilePurpose::Chat => {
            let chat = features.and_then(|f| f.chat_features.as_ref());
            if chat.is_some_and(|c| !c.is_allow || !c.is_allow_file_upload) {
                return Err(FileError::ChatUploadOff);
            }
            if !sealed {
                let types = chat.map(|c| c.allowed_file_types.as_slice()).unwrap_or(&[]);
                let ext = name
                    .rsplit_once('.')
                    .map(|(_, e)| e.to_ascii_lowercase())
                    .unwrap_or_default();
                // An empty list restricts nothing (a room made without features has none).
                let ok = types.is_empty()
                    || types
                        .iter()
                        .any(|t| t.trim_start_matches('.').eq_ignore_ascii_case(&ext));
                if !ok {
                    return Err(FileError::FileType(ext));
                }
            }
            Ok(chat
                .and_then(|c| c.max_file_size)
                .map_or(50 * MIB, |mb| mb.saturating_mul(MIB)))
        }
        FilePurpose::Whiteboard => {
            if sealed {
                return Err(FileError::WhiteboardSealed);
            }
            let wb = features.and_then(|f| f.whiteboard_features.as_ref());
            if wb.is_some_and(|w| !w.is_allow) {
                return Err(FileError::WhiteboardOff);
            }
            Ok(wb
                .and_then(|w| w.max_allowed_file_size)
                .map_or(30 * MIB, |mb| mb.saturating_mul(MIB)))
        }
        FilePurpose::Page => {
            let wb = features.and_then(|f| f.whiteboard_features.as_ref());
            if wb.is_some_and(|w| !w.is_allow) {
                return Err(FileError::WhiteboardOff);
            }
            Ok(MAX_PAGE_BYTES)
        }
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

#[derive(Debug, Clone)]
struct File {
    purpose: FilePurpose,
    name: String,
    mime: String,
    size: u64,
    chunks: u32,
    from: String,
    /// Each chunk held, with its length.
    received: BTreeMap<u32, u64>,
    /// Chunks being written now.
    writing: BTreeSet<u32>,
    complete: bool,
}

impl File {
    fn info(&self, id: &FileId) -> FileInfo {
        FileInfo {
            file_id: id.to_string(),
            purpose: self.purpose,
            name: self.name.clone(),
            mime: self.mime.clone(),
            size: self.size,
            chunks: self.chunks,
            from: self.from.clone(),
            complete: self.complete,
            received: self.received.keys().copied().collect(),
        }
    }
}

/// The files of one session.
#[derive(Debug, Default)]
pub struct Files {
    files: BTreeMap<FileId, File>,
    /// Sum of the announced sizes.
    bytes: u64,
}

impl Files {
    /// `from` announces a file; `max` is what its purpose allows here ([`purpose_limit`]) and
    /// `sealed` rooms take sealed names and types only.
    pub fn start(
        &mut self,
        req: FileStartReq,
        from: &str,
        max: u64,
        sealed: bool,
    ) -> Result<(), FileError> {
        if req.name.is_empty() || req.name.len() > MAX_NAME_BYTES || has_control(&req.name) {
            return Err(FileError::BadName);
        }
        if req.mime.len() > MAX_NAME_BYTES || has_control(&req.mime) {
            return Err(FileError::BadMime);
        }
        if sealed && !is_sealed_text(&req.name) {
            return Err(FileError::NotSealed("name"));
        }
        if sealed && !is_sealed_text(&req.mime) {
            return Err(FileError::NotSealed("mime"));
        }
        // A sealed chunk is its plaintext and an envelope's overhead: the browser checked the
        // plaintext against the cap, the server allows each chunk its envelope.
        let max = if sealed {
            max.saturating_add(u64::from(req.chunks).saturating_mul(ENVELOPE_SLACK))
        } else {
            max
        };
        if req.size > max {
            return Err(FileError::TooLarge {
                size: req.size,
                max,
                purpose: req.purpose.as_str(),
            });
        }
        let chunks = u64::from(req.chunks);
        if chunks == 0 || req.size < chunks || req.size > chunks.saturating_mul(MAX_CHUNK_BYTES) {
            return Err(FileError::Chunking {
                size: req.size,
                chunks: req.chunks,
                max: max.div_ceil(MAX_CHUNK_BYTES).max(1),
            });
        }
        if self.files.contains_key(&req.file_id) {
            return Err(FileError::Exists);
        }
        if self.files.len() >= MAX_FILES {
            return Err(FileError::TooMany);
        }
        if self.bytes + req.size > MAX_SESSION_BYTES {
            return Err(FileError::SessionFull);
        }
        let unfinished = self
            .files
            .values()
            .filter(|f| !f.complete && f.from == from)
            .count();
        if unfinished >= MAX_UNFINISHED {
            return Err(FileError::Unfinished);
        }
        self.bytes += req.size;
        self.files.insert(
            req.file_id,
            File {
                purpose: req.purpose,
                name: req.name,
                mime: req.mime,
                size: req.size,
                chunks: req.chunks,
                from: from.to_owned(),
                received: BTreeMap::new(),
                writing: BTreeSet::new(),
                complete: false,
            },
        );
        Ok(())
    }

    /// `from` is about to write chunk `index` of `len` bytes: checks it may, and marks it
    /// being written until [`Files::end_chunk`]. A chunk may be sent again until the file is
    /// finished.
    pub fn begin_chunk(
        &mut self,
        id: &FileId,
        index: u32,
        len: u64,
        from: &str,
    ) -> Result<(), FileError> {
        let f = self.files.get_mut(id).ok_or(FileError::NotFound)?;
        if f.from != from {
            return Err(FileError::NotUploader);
        }
        if f.complete {
            return Err(FileError::Finished);
        }
        if index >= f.chunks {
            return Err(FileError::BadIndex {
                index,
                chunks: f.chunks,
            });
        }
        if len == 0 || len > MAX_CHUNK_BYTES {
            return Err(FileError::ChunkSize { len });
        }
        let others: u64 = f
            .received
            .iter()
            .filter(|(i, _)| **i != index)
            .map(|(_, l)| *l)
            .sum();
        if others + len > f.size {
            return Err(FileError::Overflow { size: f.size });
        }
        if !f.writing.insert(index) {
            return Err(FileError::Busy(index));
        }
        Ok(())
    }

    /// Chunk `index` was written (`Some(len)`) or its write failed (`None`); returns how many
    /// chunks the file holds.
    pub fn end_chunk(&mut self, id: &FileId, index: u32, written: Option<u64>) -> u32 {
        let Some(f) = self.files.get_mut(id) else {
            return 0;
        };
        f.writing.remove(&index);
        if let Some(len) = written {
            f.received.insert(index, len);
        }
        f.received.len() as u32
    }

    /// `from` finishes an upload: every chunk is there and they add up to its size.
    pub fn finish(&mut self, id: &FileId, from: &str) -> Result<FileInfo, FileError> {
        let f = self.files.get_mut(id).ok_or(FileError::NotFound)?;
        if f.from != from {
            return Err(FileError::NotUploader);
        }
        if f.complete {
            return Ok(f.info(id));
        }
        if let Some(i) = f.writing.first() {
            return Err(FileError::Busy(*i));
        }
        let missing: Vec<u32> = (0..f.chunks)
            .filter(|i| !f.received.contains_key(i))
            .take(20)
            .collect();
        if !missing.is_empty() {
            return Err(FileError::Missing(missing));
        }
        let got: u64 = f.received.values().sum();
        if got != f.size {
            return Err(FileError::SizeMismatch { got, size: f.size });
        }
        f.complete = true;
        Ok(f.info(id))
    }

    /// Registers a finished file the server made itself (its chunks already on disk, with
    /// these lengths), e.g. a page image of a converted document.
    pub fn register_finished(
        &mut self,
        id: FileId,
        purpose: FilePurpose,
        name: String,
        mime: String,
        from: &str,
        chunk_lens: &[u64],
    ) -> Result<FileInfo, FileError> {
        if self.files.contains_key(&id) {
            return Err(FileError::Exists);
        }
        if self.files.len() >= MAX_FILES {
            return Err(FileError::TooMany);
        }
        let size: u64 = chunk_lens.iter().sum();
        if self.bytes + size > MAX_SESSION_BYTES {
            return Err(FileError::SessionFull);
        }
        let chunks = u32::try_from(chunk_lens.len()).map_err(|_| FileError::Chunking {
            size,
            chunks: u32::MAX,
            max: 0,
        })?;
        self.bytes += size;
        let f = File {
            purpose,
            name,
            mime,
            size,
            chunks,
            from: from.to_owned(),
            received: (0..chunks).zip(chunk_lens.iter().copied()).collect(),
            writing: BTreeSet::new(),
            complete: true,
        };
        let info = f.info(&id);
        self.files.insert(id, f);
        Ok(info)
    }

    /// What the server knows of a file.
    pub fn info(&self, id: &FileId) -> Result<FileInfo, FileError> {
        self.files
            .get(id)
            .map(|f| f.info(id))
            .ok_or(FileError::NotFound)
    }

    /// Whether chunk `index` of a finished file may be read.
    pub fn readable(&self, id: &FileId, index: u32) -> Result<(), FileError> {
        let f = self.files.get(id).ok_or(FileError::NotFound)?;
        if !f.complete {
            return Err(FileError::NotFinished);
        }
        if index >= f.chunks {
            return Err(FileError::BadIndex {
                index,
                chunks: f.chunks,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rooms::sealed::sealed_for_tests as sealed;
    use enclave_proto::room::{ChatFeatures, WhiteboardFeatures};

    fn id(n: u32) -> FileId {
        FileId::parse(&format!("file-{n:012}")).unwrap()
    }

    fn req(n: u32, size: u64, chunks: u32) -> FileStartReq {
        FileStartReq {
            file_id: id(n),
            purpose: FilePurpose::Chat,
            name: "notes.txt".into(),
            mime: "text/plain".into(),
            size,
            chunks,
        }
    }

    #[test]
    fn chunks_arrive_in_any_order_may_be_resent_and_finish_checks_them_all() {
        let mut f = Files::default();
        f.start(req(1, 25, 3), "ann", 100, false).unwrap();
        assert_eq!(
            f.start(req(1, 25, 3), "ann", 100, false),
            Err(FileError::Exists)
        );
        for (i, len) in [(2, 5), (0, 10)] {
            f.begin_chunk(&id(1), i, len, "ann").unwrap();
            f.end_chunk(&id(1), i, Some(len));
        }
        assert_eq!(f.finish(&id(1), "ann"), Err(FileError::Missing(vec![1])));
        assert_eq!(
            f.begin_chunk(&id(1), 1, 10, "bob"),
            Err(FileError::NotUploader)
        );
        assert_eq!(
            f.begin_chunk(&id(1), 3, 10, "ann"),
            Err(FileError::BadIndex {
                index: 3,
                chunks: 3
            })
        );
        assert_eq!(
            f.begin_chunk(&id(1), 1, 11, "ann"),
            Err(FileError::Overflow { size: 25 })
        );
        f.begin_chunk(&id(1), 1, 9, "ann").unwrap();
        assert_eq!(f.begin_chunk(&id(1), 1, 9, "ann"), Err(FileError::Busy(1)));
        assert_eq!(
            f.finish(&id(1), "ann"),
            Err(FileError::Busy(1)),
            "not while writing"
        );
        assert_eq!(f.end_chunk(&id(1), 1, Some(9)), 3);
        assert_eq!(
            f.finish(&id(1), "ann"),
            Err(FileError::SizeMismatch { got: 24, size: 25 })
        );
        assert_eq!(f.readable(&id(1), 0), Err(FileError::NotFinished));
        // Sent again, right this time.
        f.begin_chunk(&id(1), 1, 10, "ann").unwrap();
        f.end_chunk(&id(1), 1, Some(10));
        let info = f.finish(&id(1), "ann").unwrap();
        assert!(info.complete);
        assert_eq!(info.received, [0, 1, 2]);
        assert_eq!(
            f.begin_chunk(&id(1), 0, 10, "ann"),
            Err(FileError::Finished)
        );
        f.readable(&id(1), 2).unwrap();
        assert_eq!(f.info(&id(2)), Err(FileError::NotFound));
    }

    #[test]
    fn a_failed_write_leaves_the_chunk_missing() {
        let mut f = Files::default();
        f.start(req(1, 5, 1), "ann", 100, false).unwrap();
        f.begin_chunk(&id(1), 0, 5, "ann").unwrap();
        assert_eq!(f.end_chunk(&id(1), 0, None), 0);
        assert_eq!(f.finish(&id(1), "ann"), Err(FileError::Missing(vec![0])));
    }

    #[test]
    fn sizes_and_chunking_are_checked_at_the_start() {
        let mut f = Files::default();
        assert!(matches!(
            f.start(req(1, 101, 1), "ann", 100, false),
            Err(FileError::TooLarge {
                size: 101,
                max: 100,
                ..
            })
        ));
        assert!(matches!(
            f.start(req(1, 5, 0), "ann", 100, false),
            Err(FileError::Chunking { .. })
        ));
        assert!(matches!(
            f.start(req(1, 2, 3), "ann", 100, false),
            Err(FileError::Chunking { .. })
        ));
        assert!(matches!(
            f.start(req(1, MAX_CHUNK_BYTES + 1, 1), "ann", 10 * MIB, false),
            Err(FileError::Chunking { .. })
        ));
        let mut r = req(1, 5, 1);
        r.name = String::new();
        assert_eq!(f.start(r, "ann", 100, false), Err(FileError::BadName));
        let mut r = req(1, 5, 1);
        r.name = "a\nb".into();
        assert_eq!(f.start(r, "ann", 100, false), Err(FileError::BadName));
        assert_eq!(
            f.begin_chunk(&id(1), 0, 1, "ann"),
            Err(FileError::NotFound),
            "nothing was started"
        );
        f.start(req(1, 5, 1), "ann", 100, false).unwrap();
        assert_eq!(
            f.begin_chunk(&id(1), 0, 0, "ann"),
            Err(FileError::ChunkSize { len: 0 })
        );
    }

    #[test]
    fn an_encrypted_room_takes_sealed_names_and_types_only() {
        let mut f = Files::default();
        assert_eq!(
            f.start(req(1, 5, 1), "ann", 100, true),
            Err(FileError::NotSealed("name"))
        );
        let mut r = req(1, 5, 1);
        r.name = sealed(9);
        assert_eq!(
            f.start(r, "ann", 100, true),
            Err(FileError::NotSealed("mime"))
        );
        let mut r = req(1, 5, 1);
        r.name = sealed(9);
        r.mime = sealed(10);
        f.start(r, "ann", 100, true).unwrap();
        // A file at the cap, sealed: each chunk carries an envelope beyond it.
        let mut r = req(2, 100 + 2 * 29, 2);
        r.name = sealed(9);
        r.mime = sealed(10);
        f.start(r.clone(), "ann", 100, true).unwrap();
        r.file_id = id(3);
        assert!(
            matches!(
                f.start(r, "ann", 100, false),
                Err(FileError::TooLarge { .. })
            ),
            "not in a plain room"
        );
    }

    #[test]
    fn a_session_and_a_participant_are_bounded() {
        let mut f = Files::default();
        for n in 0..MAX_UNFINISHED as u32 {
            f.start(req(n, 5, 1), "ann", 100, false).unwrap();
        }
        assert_eq!(
            f.start(req(99, 5, 1), "ann", 100, false),
            Err(FileError::Unfinished)
        );
        f.start(req(98, 5, 1), "bob", 100, false).unwrap();
        f.begin_chunk(&id(0), 0, 5, "ann").unwrap();
        f.end_chunk(&id(0), 0, Some(5));
        f.finish(&id(0), "ann").unwrap();
        f.start(req(99, 5, 1), "ann", 100, false).unwrap();

        let mut f = Files::default();
        let big = MAX_SESSION_BYTES / 2;
        let chunks = big.div_ceil(MAX_CHUNK_BYTES) as u32;
        f.start(req(1, big, chunks), "ann", u64::MAX, false)
            .unwrap();
        f.start(req(2, big, chunks), "bob", u64::MAX, false)
            .unwrap();
        assert_eq!(
            f.start(req(3, 1, 1), "cat", 100, false),
            Err(FileError::SessionFull)
        );

        let mut f = Files::default();
        for n in 0..MAX_FILES as u32 {
            f.register_finished(
                id(n),
                FilePurpose::Page,
                "p".into(),
                String::new(),
                "system",
                &[1],
            )
            .unwrap();
        }
        assert_eq!(
            f.start(req(5000, 1, 1), "ann", 100, false),
            Err(FileError::TooMany)
        );
    }

    #[test]
    fn the_room_decides_what_each_purpose_may_be() {
        let mut features = RoomCreateFeatures {
            chat_features: Some(ChatFeatures {
                is_allow: true,
                is_allow_file_upload: true,
                allowed_file_types: vec!["pdf".into(), "txt".into()],
                max_file_size: Some(2),
            }),
            whiteboard_features: Some(WhiteboardFeatures {
                is_allow: true,
                max_allowed_file_size: Some(3),
                ..Default::default()
            }),
            ..Default::default()
        };
        let f = Some(&features);
        assert_eq!(
            purpose_limit(FilePurpose::Chat, f, false, "a.PDF"),
            Ok(2 * MIB)
        );
        assert_eq!(
            purpose_limit(FilePurpose::Chat, f, false, "a.exe"),
            Err(FileError::FileType("exe".into()))
        );
        assert_eq!(
            purpose_limit(FilePurpose::Chat, f, false, "pdf"),
            Err(FileError::FileType(String::new()))
        );
        assert_eq!(
            purpose_limit(FilePurpose::Chat, f, true, &sealed(5)),
            Ok(2 * MIB),
            "a sealed name has no extension to check"
        );
        assert_eq!(
            purpose_limit(FilePurpose::Whiteboard, f, false, "x.docx"),
            Ok(3 * MIB)
        );
        assert_eq!(
            purpose_limit(FilePurpose::Whiteboard, f, true, "x"),
            Err(FileError::WhiteboardSealed)
        );
        assert_eq!(
            purpose_limit(FilePurpose::Page, f, true, "x"),
            Ok(MAX_PAGE_BYTES)
        );
        if let Some(c) = features.chat_features.as_mut() {
            c.is_allow_file_upload = false;
        }
        if let Some(w) = features.whiteboard_features.as_mut() {
            w.is_allow = false;
        }
        let f = Some(&features);
        assert_eq!(
            purpose_limit(FilePurpose::Chat, f, false, "a.pdf"),
            Err(FileError::ChatUploadOff)
        );
        assert_eq!(
            purpose_limit(FilePurpose::Page, f, false, "p"),
            Err(FileError::WhiteboardOff)
        );
        assert_eq!(
            purpose_limit(FilePurpose::Whiteboard, f, false, "p.pdf"),
            Err(FileError::WhiteboardOff)
        );
    }
}
