//! HTTPS on the API port.
//!
//! Browsers give camera, microphone and WebCrypto (hence LiveKit's E2EE) only to secure
//! contexts: `https://` pages and localhost. A person on another machine can therefore meet
//! only over HTTPS. The listener serves TLS and plain HTTP on the same port, told apart by the
//! first byte a client sends (a TLS handshake record starts with 0x16, an HTTP request with a
//! letter), so that nothing that works over `http://` today breaks, and a browser that arrives
//! over plain HTTP from elsewhere gets a page that sends it to HTTPS.
//!
//! The certificate comes from files (`client.tls.cert_file`/`key_file`, read again when they
//! change, so a renewal by certbot or a proxy's ACME client needs no restart) or from a
//! certificate authority of the server's own ([`local_ca`]) for hosts with no public name.

pub mod local_ca;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use time::OffsetDateTime;

use crate::config::{TlsCertificate, TlsConfig};

/// How often certificate files are checked for a change.
pub const RELOAD_POLL: Duration = Duration::from_secs(2);

/// Why HTTPS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    Invalid { path: PathBuf, what: String },
    #[error("cannot generate {what}: {source}")]
    Generate { what: String, source: rcgen::Error },
    #[error("the certificate in {cert} and the key in {key} do not belong together ({source})")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

impl TlsError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }

    fn generate(what: &str, source: rcgen::Error) -> Self {
        Self::Generate {
            what: what.to_owned(),
            source,
        }
    }
}

/// What clients and the banner learn about the server's HTTPS.
#[derive(Debug, Clone)]
pub struct LocalCaInfo {
    /// The authority's certificate (PEM), served at `/ca.crt`.
    pub ca_pem: String,
    /// SHA-256 fingerprint of the authority's certificate.
    pub fingerprint: String,
    /// Where it is stored.
    pub path: PathBuf,
    /// Made at this start: no device trusts it yet.
    pub created: bool,
    /// The names and addresses the server's certificate is for.
    pub names: Vec<String>,
}

/// The server's TLS: the acceptor the listener uses and what the HTTP edge tells clients.
pub struct Tls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub config: TlsConfig,
    /// Set when the certificate comes from the local authority.
    pub local_ca: Option<LocalCaInfo>,
    certs: Arc<Certs>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("config", &self.config)
            .field("local_ca", &self.local_ca)
            .finish_non_exhaustive()
    }
}

/// The certificate presented now; replaced in place on reload.
#[derive(Debug)]
struct Certs(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Certs {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

impl Certs {
    fn set(&self, key: Arc<CertifiedKey>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = key;
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_path: &Path,
    key_path: &Path,
) -> Result<CertifiedKey, TlsError> {
    CertifiedKey::from_der(chain, key, &provider()).map_err(|source| TlsError::Mismatch {
        cert: cert_path.to_owned(),
        key: key_path.to_owned(),
        source,
    })
}

/// Reads a PEM certificate chain and its key.
pub fn load_files(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let bytes = std::fs::read(cert).map_err(|e| TlsError::io(cert, e))?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Invalid {
            path: cert.to_owned(),
            what: format!("not a PEM certificate chain ({e})"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Invalid {
            path: cert.to_owned(),
            what: "no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)".into(),
        });
    }
    let kbytes = std::fs::read(key).map_err(|e| TlsError::io(key, e))?;
    let pk = PrivateKeyDer::from_pem_slice(&kbytes).map_err(|e| TlsError::Invalid {
        path: key.to_owned(),
        what: format!("no PEM private key in it ({e})"),
    })?;
    certified(chain, pk, cert, key)
}

impl Tls {
    /// Loads or makes the certificate; starts watching certificate files for a change. For
    /// the local authority, `ips` are the addresses clients may use besides the interfaces'
    /// own (an address seen from outside, behind NAT).
    pub fn start(config: TlsConfig, ips: &[IpAddr]) -> Result<Arc<Self>, TlsError> {
        // Stamped before reading: a change made while (or right after) the files are read is
        // seen by the first poll.
        let stamps = match &config.certificate {
            TlsCertificate::Files { cert, key } => (stamp(cert), stamp(key)),
            TlsCertificate::LocalCa { .. } => (None, None),
        };
        let (key, local_ca) = match &config.certificate {
            TlsCertificate::Files { cert, key } => (load_files(cert, key)?, None),
            TlsCertificate::LocalCa { dir } => {
                let names = local_ca::Names::of_host(host_ips().into_iter().chain(ips.to_vec()));
                let ca = local_ca::ensure(dir, &names, OffsetDateTime::now_utc())?;
                let info = LocalCaInfo {
                    ca_pem: ca.ca_pem.clone(),
                    fingerprint: ca.fingerprint.clone(),
                    path: ca.ca_path.clone(),
                    created: ca.created,
                    names: names
                        .dns
                        .iter()
                        .cloned()
                        .chain(names.ips.iter().map(|i| i.to_string()))
                        .collect(),
                };
                let k = certified(ca.chain, ca.key, &ca.ca_path, &ca.ca_path)?;
                (k, Some(info))
            }
        };
        let certs = Arc::new(Certs(RwLock::new(Arc::new(key))));
        let mut sc = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Invalid {
                path: PathBuf::new(),
                what: format!("TLS versions: {e}"),
            })?
            .with_no_client_auth()
            .with_cert_resolver(certs.clone());
        // HTTP/1.1 only: the listener speaks HTTP/1 (WebSocket signalling upgrades over it).
        sc.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tls = Arc::new(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(sc)),
            config,
            local_ca,
            certs,
        });
        if let TlsCertificate::Files { cert, key } = &tls.config.certificate {
            tokio::spawn(watch_files(
                Arc::downgrade(&tls.certs),
                cert.clone(),
                key.clone(),
                stamps,
            ));
        }
        Ok(tls)
    }
}

/// Every address of this host's interfaces (loopback included, IPv6 link-local not: a
/// certificate cannot name a scope).
fn host_ips() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(ifs) => ifs
            .into_iter()
            .map(|i| i.ip())
            .filter(|ip| {
                !matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
                    && !ip.is_unspecified()
                    && !ip.is_multicast()
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the network interfaces; the certificate names loopback only");
            Vec::new()
        }
    }
}

/// What identifies a file's version: modification time and length.
type Stamp = (SystemTime, u64);

fn stamp(p: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Polls the certificate and key files and swaps the certificate when both read back as a
/// matching pair. A half-written renewal (new certificate, old key) is retried at the next
/// poll, and the old certificate stays in service until then.
async fn watch_files(
    certs: std::sync::Weak<Certs>,
    cert: PathBuf,
    key: PathBuf,
    loaded: (Option<Stamp>, Option<Stamp>),
) {
    let mut seen = loaded;
    let mut failing = false;
    loop {
        tokio::time::sleep(RELOAD_POLL).await;
        let Some(certs) = certs.upgrade() else { return };
        let now = (stamp(&cert), stamp(&key));
        if now == seen && !failing {
            continue;
        }
        match load_files(&cert, &key) {
            Ok(k) => {
                certs.set(Arc::new(k));
                seen = now;
                failing = false;
                tracing::info!(cert = %cert.display(), "TLS certificate reloaded");
            }
            Err(e) => {
                if now != seen || !failing {
                    tracing::warn!(error = %e, "the changed TLS certificate cannot be used; the previous one stays in service");
                }
                seen = now;
                failing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(name: &str) -> (String, String) {
        let k = rcgen::KeyPair::generate().unwrap();
        let c = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&k)
            .unwrap();
        (c.pem(), k.serialize_pem())
    }

    #[test]
    fn files_load_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = self_signed("a.example");
        let (cp, kp) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cp, &c).unwrap();
        std::fs::write(&kp, &k).unwrap();
        load_files(&cp, &kp).unwrap();

        let missing = load_files(&dir.path().join("none.pem"), &kp).unwrap_err();
        assert!(missing.to_string().contains("none.pem"), "{missing}");
        std::fs::write(&cp, "not pem").unwrap();
        let empty = load_files(&cp, &kp).unwrap_err();
        assert!(empty.to_string().contains("no certificate"), "{empty}");
        let (c2, _) = self_signed("b.example");
        std::fs::write(&cp, c2).unwrap();
        let mismatch = load_files(&cp, &kp).unwrap_err();
        assert!(matches!(mismatch, TlsError::Mismatch { .. }), "{mismatch}");
    }
}
