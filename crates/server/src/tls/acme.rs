//! Certificates for a public host name from an ACME certificate authority (RFC 8555): Let's
//! Encrypt by default, any other by its directory URL.
//!
//! The challenge is TLS-ALPN-01 (RFC 8737), answered by the HTTPS listener itself: while an
//! order is pending, a handshake that asks for the `acme-tls/1` protocol with a name being
//! validated gets a short-lived certificate carrying the key authorisation's digest. No second
//! port and no web root are involved, but the CA connects to port 443 of the name, so the
//! server listens there (`client.port: 443`) or a forward leads there.
//!
//! State lives in one directory: the account's credentials (`account.json`) and the current
//! certificate and key (`cert.pem`, `key.pem`), all 0600. At start a stored certificate that
//! covers the configured names is served at once; without one, a temporary self-signed
//! certificate is served until the first order completes. A task checks the certificate every
//! `check_every` and orders a new one when less than `renew_before` is left or the names
//! changed; a failed order is retried with backoff while the current certificate stays in
//! service.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use time::OffsetDateTime;

use super::{certified, Certs, TlsError};
use crate::config::AcmeConfig;

/// The ALPN protocol of TLS-ALPN-01 validation handshakes.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// First wait after a failed order; doubled up to `check_every`. Five minutes keeps a host
/// whose validation keeps failing under Let's Encrypt's limit of five failed validations per
/// name and hour.
const FIRST_RETRY: Duration = Duration::from_secs(300);

/// Why an order failed, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("ACME account at {directory}: {source}")]
    Account {
        directory: String,
        source: instant_acme::Error,
    },
    #[error("ACME order for {names}: {source}")]
    Order {
        names: String,
        source: instant_acme::Error,
    },
    #[error("ACME order for {names}: {what}")]
    Refused { names: String, what: String },
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Certificates answering TLS-ALPN-01 challenges, by host name, while an order is pending.
#[derive(Debug, Default)]
pub struct Challenges(RwLock<HashMap<String, Arc<CertifiedKey>>>);

impl Challenges {
    /// The challenge certificate for `name`, if one is being validated.
    pub fn get(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name.to_ascii_lowercase())
            .cloned()
    }

    fn set(&self, name: &str, key: Arc<CertifiedKey>) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_ascii_lowercase(), key);
    }

    fn clear(&self) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// A certificate in service and what the renewal check needs to know about it.
pub struct Issued {
    pub key: CertifiedKey,
    pub not_after: OffsetDateTime,
    pub names: Vec<String>,
}

fn cert_path(dir: &Path) -> PathBuf {
    dir.join("cert.pem")
}

fn key_path(dir: &Path) -> PathBuf {
    dir.join("key.pem")
}

fn account_path(dir: &Path) -> PathBuf {
    dir.join("account.json")
}

/// The names (DNS SANs) a certificate is for and when it expires.
fn describe(
    der: &CertificateDer<'_>,
    path: &Path,
) -> Result<(Vec<String>, OffsetDateTime), TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| TlsError::Invalid {
        path: path.to_owned(),
        what: format!("not an X.509 certificate ({e})"),
    })?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    Ok((names, cert.validity().not_after.to_datetime()))
}

/// The stored certificate, if there is one; an error names the damaged file.
pub fn load_stored(dir: &Path) -> Result<Option<Issued>, TlsError> {
    let (cp, kp) = (cert_path(dir), key_path(dir));
    if !cp.exists() && !kp.exists() {
        return Ok(None);
    }
    let key = super::load_files(&cp, &kp)?;
    let (names, not_after) = describe(&key.cert[0], &cp)?;
    Ok(Some(Issued {
        key,
        not_after,
        names,
    }))
}

/// A self-signed certificate for the names, served until the first order completes (browsers
/// warn; ACME clients and the validation do not care).
pub fn placeholder(names: &[String]) -> Result<CertifiedKey, TlsError> {
    let kp = rcgen::KeyPair::generate().map_err(|e| TlsError::generate("a key", e))?;
    let cert = rcgen::CertificateParams::new(names.to_vec())
        .and_then(|p| p.self_signed(&kp))
        .map_err(|e| TlsError::generate("a temporary certificate", e))?;
    let key = PrivateKeyDer::try_from(kp.serialize_der()).map_err(|e| TlsError::Invalid {
        path: PathBuf::new(),
        what: format!("temporary key: {e}"),
    })?;
    let p = Path::new("(temporary certificate)");
    certified(vec![cert.der().clone()], key, p, p)
}

/// The certificate that answers a TLS-ALPN-01 challenge for `name` (RFC 8737 §3): the name as
/// its only SAN and the SHA-256 of the key authorisation in the critical acmeIdentifier
/// extension.
fn challenge_cert(name: &str, digest: &[u8]) -> Result<CertifiedKey, TlsError> {
    let kp = rcgen::KeyPair::generate().map_err(|e| TlsError::generate("a key", e))?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])
        .map_err(|e| TlsError::generate("a challenge certificate", e))?;
    params
        .custom_extensions
        .push(rcgen::CustomExtension::new_acme_identifier(digest));
    let cert = params
        .self_signed(&kp)
        .map_err(|e| TlsError::generate("a challenge certificate", e))?;
    let key = PrivateKeyDer::try_from(kp.serialize_der()).map_err(|e| TlsError::Invalid {
        path: PathBuf::new(),
        what: format!("challenge key: {e}"),
    })?;
    // Built without `CertifiedKey::from_der`'s key check: that parses the certificate with
    // webpki, which rejects the critical acmeIdentifier extension it does not know.
    let signer = super::provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Invalid {
            path: PathBuf::new(),
            what: format!("challenge key: {e}"),
        })?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signer))
}

/// Whether the certificate in service must be replaced now.
pub fn due(issued: Option<&Issued>, cfg: &AcmeConfig, now: OffsetDateTime) -> bool {
    let Some(i) = issued else { return true };
    let covers = cfg
        .domains
        .iter()
        .all(|d| i.names.contains(&d.to_ascii_lowercase()));
    !covers || i.not_after - now < cfg.renew_before
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // Written beside and renamed over: a crash leaves either the old file or the new one.
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| TlsError::io(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| TlsError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| TlsError::io(path, e))
}

fn builder(cfg: &AcmeConfig) -> Result<instant_acme::AccountBuilder, AcmeError> {
    let r = match &cfg.directory_ca {
        Some(ca) => Account::builder_with_root(ca),
        None => Account::builder(),
    };
    r.map_err(|source| AcmeError::Account {
        directory: cfg.directory.clone(),
        source,
    })
}

/// The stored account, or a new one (its credentials stored before anything else is done).
async fn account(cfg: &AcmeConfig) -> Result<Account, AcmeError> {
    let path = account_path(&cfg.dir);
    let err = |source| AcmeError::Account {
        directory: cfg.directory.clone(),
        source,
    };
    if let Ok(bytes) = std::fs::read(&path) {
        let creds: AccountCredentials =
            serde_json::from_slice(&bytes).map_err(|e| TlsError::Invalid {
                path: path.clone(),
                what: format!(
                    "not ACME account credentials ({e}); move it away to register a new account"
                ),
            })?;
        return builder(cfg)?.from_credentials(creds).await.map_err(err);
    }
    let contact: Vec<&str> = cfg.contact.iter().map(String::as_str).collect();
    let (account, creds) = builder(cfg)?
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            cfg.directory.clone(),
            None,
        )
        .await
        .map_err(err)?;
    let json = serde_json::to_vec_pretty(&creds).map_err(|e| TlsError::Invalid {
        path: path.clone(),
        what: format!("cannot encode the account credentials ({e})"),
    })?;
    write_private(&path, &json)?;
    tracing::info!(directory = %cfg.directory, id = account.id(), "ACME account registered");
    Ok(account)
}

/// Runs one order to the end: account, authorisations answered over TLS-ALPN-01, CSR, the
/// certificate chain; stores it and returns it.
pub async fn order(cfg: &AcmeConfig, challenges: &Challenges) -> Result<Issued, AcmeError> {
    let names = cfg.domains.join(", ");
    let account = account(cfg).await?;
    let ids: Vec<Identifier> = cfg
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let oerr = |source| AcmeError::Order {
        names: names.clone(),
        source,
    };
    let mut order = account
        .new_order(&NewOrder::new(&ids))
        .await
        .map_err(oerr)?;
    let result = async {
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let mut a = a.map_err(oerr)?;
            match a.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(AcmeError::Refused {
                        names: names.clone(),
                        what: format!("authorisation is {other:?}"),
                    })
                }
            }
            let mut ch = a
                .challenge(ChallengeType::TlsAlpn01)
                .ok_or_else(|| AcmeError::Refused {
                    names: names.clone(),
                    what: "the CA offers no tls-alpn-01 challenge".into(),
                })?;
            let name = ch.identifier().to_string();
            let digest = ch.key_authorization().digest();
            challenges.set(&name, Arc::new(challenge_cert(&name, digest.as_ref())?));
            ch.set_ready().await.map_err(oerr)?;
        }
        let retries = RetryPolicy::new().timeout(Duration::from_secs(90));
        let status = order.poll_ready(&retries).await.map_err(oerr)?;
        if status != OrderStatus::Ready {
            return Err(AcmeError::Refused {
                names: names.clone(),
                what: format!(
                    "the CA could not validate the names (order {status:?}); it connects to port 443 of each name, which must reach this server's HTTPS port"
                ),
            });
        }
        Ok(())
    }
    .await;
    challenges.clear();
    result?;

    let kp = rcgen::KeyPair::generate().map_err(|e| TlsError::generate("a key", e))?;
    let csr = rcgen::CertificateParams::new(cfg.domains.clone())
        .and_then(|p| p.serialize_request(&kp))
        .map_err(|e| TlsError::generate("a certificate request", e))?;
    order.finalize_csr(csr.der()).await.map_err(oerr)?;
    let chain_pem = order
        .poll_certificate(&RetryPolicy::new().timeout(Duration::from_secs(90)))
        .await
        .map_err(oerr)?;

    let cp = cert_path(&cfg.dir);
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Invalid {
            path: cp.clone(),
            what: format!("the CA sent no PEM certificate chain ({e})"),
        })?;
    if chain.is_empty() {
        return Err(AcmeError::Refused {
            names,
            what: "the CA sent an empty certificate chain".into(),
        });
    }
    let key = PrivateKeyDer::try_from(kp.serialize_der()).map_err(|e| TlsError::Invalid {
        path: key_path(&cfg.dir),
        what: format!("new key: {e}"),
    })?;
    let key = certified(chain, key, &cp, &key_path(&cfg.dir))?;
    let (cert_names, not_after) = describe(&key.cert[0], &cp)?;
    // Key first: a crash between the two writes leaves a pair that does not match, which the
    // next start reports and replaces by ordering again (see `Tls::start`).
    write_private(&key_path(&cfg.dir), kp.serialize_pem().as_bytes())?;
    write_private(&cp, chain_pem.as_bytes())?;
    Ok(Issued {
        key,
        not_after,
        names: cert_names,
    })
}

/// Keeps the certificate current: orders when due, swaps it into service, retries failures
/// with backoff. Ends when the TLS setup is dropped.
pub(super) async fn run(
    certs: std::sync::Weak<Certs>,
    challenges: Arc<Challenges>,
    cfg: AcmeConfig,
    mut current: Option<Issued>,
    listening: Arc<tokio::sync::Notify>,
) {
    // The CA connects back to the listener: wait until it accepts connections.
    listening.notified().await;
    let mut retry = FIRST_RETRY;
    loop {
        if certs.strong_count() == 0 {
            return;
        }
        let wait = if due(current.as_ref(), &cfg, OffsetDateTime::now_utc()) {
            tracing::info!(names = %cfg.domains.join(", "), directory = %cfg.directory, "ACME: ordering a certificate");
            match order(&cfg, &challenges).await {
                Ok(issued) => {
                    let Some(c) = certs.upgrade() else { return };
                    c.set(Arc::new(issued.key.clone()));
                    tracing::info!(
                        names = %issued.names.join(", "),
                        not_after = %issued.not_after,
                        "ACME: certificate issued and in service"
                    );
                    current = Some(issued);
                    retry = FIRST_RETRY;
                    cfg.check_every
                }
                Err(e) => {
                    tracing::error!(error = %e, retry_in_secs = retry.as_secs(), "ACME: no certificate; the current one stays in service");
                    let w = retry;
                    retry = (retry * 2).min(cfg.check_every.max(FIRST_RETRY));
                    w
                }
            }
        } else {
            cfg.check_every
        };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Puts a challenge certificate for `name` in place, as an order does.
    pub(in crate::tls) fn set_challenge(ch: &Challenges, name: &str) {
        ch.set(name, Arc::new(challenge_cert(name, &[1u8; 32]).unwrap()));
    }

    fn cfg(dir: &Path) -> AcmeConfig {
        AcmeConfig {
            domains: vec!["meet.example.org".into()],
            contact: vec![],
            directory: "https://acme.invalid/directory".into(),
            directory_ca: None,
            dir: dir.to_owned(),
            renew_before: Duration::from_secs(30 * 86400),
            check_every: Duration::from_secs(3600),
        }
    }

    #[test]
    fn renewal_is_due_when_close_to_expiry_or_a_name_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path());
        let now = OffsetDateTime::now_utc();
        let issued = |names: &[&str], left: time::Duration| Issued {
            key: placeholder(&["x.example".into()]).unwrap(),
            not_after: now + left,
            names: names.iter().map(|s| s.to_string()).collect(),
        };
        assert!(due(None, &c, now));
        assert!(!due(
            Some(&issued(&["meet.example.org"], time::Duration::days(60))),
            &c,
            now
        ));
        assert!(due(
            Some(&issued(&["meet.example.org"], time::Duration::days(29))),
            &c,
            now
        ));
        assert!(due(
            Some(&issued(&["other.example.org"], time::Duration::days(60))),
            &c,
            now
        ));
    }

    #[test]
    fn challenge_certificate_carries_the_digest_in_a_critical_extension() {
        let digest = [7u8; 32];
        let k = challenge_cert("meet.example.org", &digest).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&k.cert[0]).unwrap();
        // id-pe-acmeIdentifier, RFC 8737.
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("acmeIdentifier extension");
        assert!(ext.critical);
        // An OCTET STRING of the 32-byte digest.
        assert_eq!(&ext.value[..2], &[0x04, 32]);
        assert_eq!(&ext.value[2..], &digest);
        let (names, _) = describe(&k.cert[0], Path::new("x")).unwrap();
        assert_eq!(names, vec!["meet.example.org".to_owned()]);
    }

    #[test]
    fn stored_pair_round_trips_and_a_damaged_one_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_stored(dir.path()).unwrap().is_none());
        let kp = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["meet.example.org".into()])
            .unwrap()
            .self_signed(&kp)
            .unwrap();
        write_private(&key_path(dir.path()), kp.serialize_pem().as_bytes()).unwrap();
        write_private(&cert_path(dir.path()), cert.pem().as_bytes()).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(key_path(dir.path()))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let s = load_stored(dir.path()).unwrap().unwrap();
        assert_eq!(s.names, vec!["meet.example.org".to_owned()]);
        std::fs::write(cert_path(dir.path()), "garbage").unwrap();
        let e = load_stored(dir.path()).err().unwrap().to_string();
        assert!(e.contains("cert.pem"), "{e}");
    }
}
