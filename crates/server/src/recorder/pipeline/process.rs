//! Child-process helpers shared by the encoder and the decoders.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::task::{AbortHandle, JoinHandle};

/// stderr lines kept for error messages.
const STDERR_TAIL: usize = 6;

/// Aborts the tasks it holds when dropped, so no task outlives the pipeline.
#[derive(Default)]
pub(super) struct AbortOnDrop(pub(super) Vec<AbortHandle>);

impl AbortOnDrop {
    pub(super) fn push<T>(&mut self, handle: &JoinHandle<T>) {
        self.0.push(handle.abort_handle());
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// The last few lines a process wrote to stderr.
#[derive(Clone, Default)]
pub(super) struct Tail(pub(super) Arc<Mutex<VecDeque<String>>>);

impl Tail {
    pub(super) fn push(&self, line: String) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if t.len() == STDERR_TAIL {
            t.pop_front();
        }
        t.push_back(line);
    }

    pub(super) fn text(&self) -> String {
        let t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if t.is_empty() {
            "(no error output)".to_owned()
        } else {
            t.iter().cloned().collect::<Vec<_>>().join(" | ")
        }
    }
}

/// Logs a child's stderr line by line and keeps its tail. `redact` replaces a secret (the
/// RTMP URL) with its redacted form.
pub(super) async fn read_stderr<R: AsyncRead + Unpin>(
    stream: R,
    tail: Tail,
    redact: Option<(String, String)>,
    log: impl Fn(&str),
) {
    for_each_line(stream, |buf| {
        let mut line: String = String::from_utf8_lossy(buf)
            .trim_end()
            .chars()
            .take(400)
            .collect();
        if line.is_empty() {
            return;
        }
        if let Some((secret, shown)) = &redact {
            line = line.replace(secret.as_str(), shown);
        }
        log(&line);
        // Per-frame reports (a video decoder's showinfo) would push the error out of the tail.
        if !line.contains("Parsed_showinfo") {
            tail.push(line);
        }
    })
    .await;
}

/// Calls `f` with each line of a child's output (its newline included) until the end: the
/// pipe is read for as long as the child writes, since closing it early would fail the
/// child's writes.
pub(super) async fn for_each_line<R: AsyncRead + Unpin>(stream: R, mut f: impl FnMut(&[u8])) {
    let mut r = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => f(&buf),
        }
    }
}

/// Removes an SDP file once its decoder is done with it.
pub(super) struct TempFile(pub(super) PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
