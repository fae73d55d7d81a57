//! Configuration file and environment: Plug-N-Meet's section and key names where they apply.
//!
//! Layers, later wins: embedded defaults, the YAML file (if any), then environment variables
//! named `ENCLAVE_<SECTION>__<KEY>` (for example `ENCLAVE_CLIENT__PORT=8080`). The result is
//! validated once; an error names the key.
//!
//! By role: `file` is the file's shape and defaults, `load` reads the layers, `validate` turns
//! them into the server's configuration, with `credentials`, `tls` and `media` for their parts.

mod credentials;
mod file;
mod load;
mod media;
mod tls;
mod validate;

pub(crate) use credentials::KeySource;
pub(crate) use load::load;
pub(crate) use validate::validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail};

/// `database.data_dir` (`data` when empty): relative paths elsewhere in the file are under it.
struct DataDir(PathBuf);

impl DataDir {
    fn new(configured: &str) -> Self {
        Self(PathBuf::from(or(configured, "data")))
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// `p` (or `default` when `p` is empty), under the data directory unless it is absolute.
    fn under(&self, p: &str, default: &str) -> PathBuf {
        let p = PathBuf::from(or(p, default));
        if p.is_absolute() {
            p
        } else {
            self.0.join(p)
        }
    }
}

/// `value`, or `default` when it is empty (the file's way of leaving a key unset).
fn or<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.is_empty() {
        default
    } else {
        value
    }
}

/// `value` unless it is empty.
fn non_empty(value: &str) -> Option<String> {
    Some(value.to_owned()).filter(|v| !v.is_empty())
}

/// Refuses a zero count or interval.
fn at_least_one<T: Default + PartialEq>(key: &str, value: T) -> anyhow::Result<()> {
    if value == T::default() {
        bail!("{key}: must be at least 1");
    }
    Ok(())
}

/// Parses a Go-style duration (`10m`, `1h30m`, `90s`); empty: `default`.
fn duration(key: &str, s: &str, default: Duration) -> anyhow::Result<Duration> {
    if s.is_empty() {
        return Ok(default);
    }
    humantime::parse_duration(s).map_err(|e| anyhow!("{key}: '{s}' is not a duration ({e})"))
}

#[cfg(test)]
mod tests;
