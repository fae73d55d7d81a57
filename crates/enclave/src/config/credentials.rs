//! The API and LiveKit credentials: the configured ones, or ones generated on first start and
//! kept in the data directory.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

use super::file::FileConfig;

/// Credentials generated on first start and kept in the data directory, so that a server
/// started with no configuration keeps its keys across restarts.
#[derive(Debug, serde::Serialize, Deserialize)]
struct Generated {
    api_key: String,
    secret: String,
    livekit_api_key: String,
    livekit_secret: String,
}

fn random_token(n: usize) -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, n)
}

/// Where credentials came from, for the start-up banner.
#[derive(Debug)]
pub(crate) enum KeySource {
    Configured,
    Generated(PathBuf),
    Loaded(PathBuf),
}

/// The credentials the server signs and checks with.
pub(super) struct Credentials {
    pub(super) api_key: String,
    pub(super) secret: String,
    pub(super) livekit_key: String,
    /// Unset: the server derives the LiveKit secret from `secret`.
    pub(super) livekit_secret: Option<String>,
    pub(super) source: KeySource,
}

/// `client.api_key` and `client.secret` (both or neither) and `livekit_info`'s; neither: the
/// ones kept in `data_dir`, made there on first start.
pub(super) fn credentials(f: &FileConfig, data_dir: &Path) -> anyhow::Result<Credentials> {
    let c = match (&f.client.api_key, &f.client.secret) {
        (Some(k), Some(s)) => Credentials {
            api_key: k.clone(),
            secret: s.clone(),
            livekit_key: f.livekit_info.api_key.clone().unwrap_or_else(|| k.clone()),
            livekit_secret: f.livekit_info.secret.clone(),
            source: KeySource::Configured,
        },
        (Some(_), None) => bail!("client.secret: required when client.api_key is set"),
        (None, Some(_)) => bail!("client.api_key: required when client.secret is set"),
        (None, None) => {
            let (g, source) = kept(data_dir)?;
            Credentials {
                api_key: g.api_key,
                secret: g.secret,
                livekit_key: g.livekit_api_key,
                livekit_secret: Some(g.livekit_secret),
                source,
            }
        }
    };
    if c.api_key.is_empty() {
        bail!("client.api_key: must not be empty");
    }
    if c.secret.len() < 16 {
        bail!("client.secret: must be at least 16 characters (it signs every token)");
    }
    if let Some(ls) = &c.livekit_secret {
        if ls.len() < 32 {
            bail!("livekit_info.secret: must be at least 32 characters");
        }
        if *ls == c.secret {
            bail!(
                "livekit_info.secret: must differ from client.secret (one secret never signs \
                 two kinds of thing); leave it unset to have one derived from client.secret"
            );
        }
    }
    Ok(c)
}

/// The credentials in `data_dir/credentials.json`, generated and saved there if it is absent.
fn kept(data_dir: &Path) -> anyhow::Result<(Generated, KeySource)> {
    let path = data_dir.join("credentials.json");
    if path.exists() {
        let g: Generated = serde_json::from_slice(&std::fs::read(&path)?)
            .with_context(|| format!("{} is corrupt", path.display()))?;
        return Ok((g, KeySource::Loaded(path)));
    }
    let g = Generated {
        api_key: format!("API{}", random_token(12)),
        secret: random_token(40),
        livekit_api_key: format!("LK{}", random_token(12)),
        livekit_secret: random_token(40),
    };
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    write_private(&path, &serde_json::to_vec_pretty(&g)?)?;
    Ok((g, KeySource::Generated(path)))
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes)?;
    Ok(())
}
