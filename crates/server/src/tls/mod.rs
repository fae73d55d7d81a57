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
//! certificate authority of the server's own ([`local_ca`]) for hosts with no public name, or
//! from an ACME certificate authority such as Let's Encrypt ([`acme`]) for a public host name.

pub mod acme;
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
    /// Told once the listener accepts connections (an ACME CA connects back to validate).
    listening: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("config", &self.config)
            .field("local_ca", &self.local_ca)
            .finish_non_exhaustive()
    }
}

/// The certificate presented now (replaced in place on reload or renewal), and the ACME
/// challenge certificates while an order is validated.
#[derive(Debug)]
struct Certs {
    current: RwLock<Arc<CertifiedKey>>,
    challenges: Option<Arc<acme::Challenges>>,
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(ch) = &self.challenges {
            let acme_alpn = hello
                .alpn()
                .is_some_and(|mut p| p.any(|p| p == acme::ACME_TLS_ALPN));
            if acme_alpn {
                // A validation handshake gets the challenge certificate or nothing: never the
                // real one under a protocol that serves no HTTP.
                return hello.server_name().and_then(|n| ch.get(n));
            }
        }
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

impl Certs {
    fn new(key: CertifiedKey, challenges: Option<Arc<acme::Challenges>>) -> Self {
        Self {
            current: RwLock::new(Arc::new(key)),
            challenges,
        }
    }

    fn set(&self, key: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = key;
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
            TlsCertificate::LocalCa { .. } | TlsCertificate::Acme(_) => (None, None),
        };
        let mut acme_start = None;
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
            TlsCertificate::Acme(cfg) => {
                std::fs::create_dir_all(&cfg.dir).map_err(|e| TlsError::io(&cfg.dir, e))?;
                // These files are the server's own: a damaged pair is reported and replaced
                // by a new order rather than keeping the server down.
                let stored = acme::load_stored(&cfg.dir).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "ACME: the stored certificate cannot be used; a new one is ordered");
                    None
                });
                let key = match &stored {
                    Some(s) => {
                        tracing::info!(names = %s.names.join(", "), not_after = %s.not_after, "ACME: stored certificate in service");
                        s.key.clone()
                    }
                    None => {
                        tracing::info!(names = %cfg.domains.join(", "), "ACME: no certificate yet; a temporary self-signed one is served until the CA issues one");
                        acme::placeholder(&cfg.domains)?
                    }
                };
                acme_start = Some((cfg.clone(), stored));
                (key, None)
            }
        };
        let challenges = acme_start
            .as_ref()
            .map(|_| Arc::new(acme::Challenges::default()));
        let certs = Arc::new(Certs::new(key, challenges.clone()));
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
        if acme_start.is_some() {
            sc.alpn_protocols.push(acme::ACME_TLS_ALPN.to_vec());
        }
        let tls = Arc::new(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(sc)),
            config,
            local_ca,
            certs,
            listening: Arc::new(tokio::sync::Notify::new()),
        });
        if let (Some((cfg, stored)), Some(ch)) = (acme_start, challenges) {
            tokio::spawn(acme::run(
                Arc::downgrade(&tls.certs),
                ch,
                cfg,
                stored,
                tls.listening.clone(),
            ));
        }
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

impl Tls {
    /// Called once the listener accepts connections.
    pub fn listening(&self) {
        self.listening.notify_one();
    }

    /// The certificate in service now (tests and diagnostics).
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.certs
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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

    /// A client verifier that accepts any certificate and keeps the one it saw.
    #[derive(Debug)]
    struct Capture(std::sync::Mutex<Option<Vec<u8>>>);

    impl rustls::client::danger::ServerCertVerifier for Capture {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            *self.0.lock().unwrap() = Some(end_entity.to_vec());
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }

    /// Runs a handshake in memory; the certificate the server presented, or `None` if the
    /// handshake failed.
    fn handshake(certs: Arc<Certs>, name: &str, alpn: &[u8]) -> Option<Vec<u8>> {
        let mut sc = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(certs);
        sc.alpn_protocols = vec![b"http/1.1".to_vec(), acme::ACME_TLS_ALPN.to_vec()];
        let seen = Arc::new(Capture(std::sync::Mutex::new(None)));
        let mut cc = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(seen.clone())
            .with_no_client_auth();
        cc.alpn_protocols = vec![alpn.to_vec()];
        let mut client = rustls::ClientConnection::new(
            Arc::new(cc),
            rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap(),
        )
        .unwrap();
        let mut server = rustls::ServerConnection::new(Arc::new(sc)).unwrap();
        for _ in 0..10 {
            let mut buf = Vec::new();
            client.write_tls(&mut buf).unwrap();
            if server.read_tls(&mut &buf[..]).is_err() || server.process_new_packets().is_err() {
                return None;
            }
            let mut buf = Vec::new();
            server.write_tls(&mut buf).unwrap();
            if client.read_tls(&mut &buf[..]).is_err() || client.process_new_packets().is_err() {
                return None;
            }
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
        }
        let got = seen.0.lock().unwrap().clone();
        got
    }

    #[test]
    fn a_validation_handshake_gets_only_a_pending_challenge_certificate() {
        let real = acme::placeholder(&["meet.example.org".into()]).unwrap();
        let real_der = real.cert[0].to_vec();
        let challenges = Arc::new(acme::Challenges::default());
        let certs = Arc::new(Certs::new(real, Some(challenges.clone())));

        // A browser gets the real certificate.
        let got = handshake(certs.clone(), "meet.example.org", b"http/1.1");
        assert_eq!(got.as_deref(), Some(real_der.as_slice()));
        // acme-tls/1 with no pending challenge: no certificate at all.
        assert_eq!(
            handshake(certs.clone(), "meet.example.org", acme::ACME_TLS_ALPN),
            None
        );

        acme::tests::set_challenge(&challenges, "meet.example.org");
        let got = handshake(certs.clone(), "meet.example.org", acme::ACME_TLS_ALPN).unwrap();
        assert_ne!(got, real_der);
        let (_, c) = x509_parser::parse_x509_certificate(&got).unwrap();
        assert!(c
            .extensions()
            .iter()
            .any(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31"));
        // Another name under acme-tls/1: nothing.
        assert_eq!(
            handshake(certs, "other.example.org", acme::ACME_TLS_ALPN),
            None
        );
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
