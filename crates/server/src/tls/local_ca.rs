//! A certificate authority of this host's own, for a server with no public name: made on the
//! first start and kept in the data directory, it issues the certificate the server presents
//! for every address it has. A device that trusts the authority once (its certificate is served
//! at `/ca.crt`) then reaches the server over HTTPS without warnings.
//!
//! The authority is **name-constrained** to the names and addresses it was made for (RFC 5280
//! §4.2.1.10): were its key ever stolen from the server, the thief could impersonate this host
//! and nothing else to the devices that trust it. When the host gains an address the
//! constraints do not cover, a new authority is made (and devices must trust it again); the
//! server says so in its log.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::TlsError;

/// The authority's certificate, as served at `/ca.crt` and stored in the data directory.
pub const CA_CERT_FILE: &str = "ca.crt";
const CA_KEY_FILE: &str = "ca.key";

/// How long the authority is valid: devices trust it once.
const CA_VALIDITY: Duration = Duration::days(10 * 365);
/// How long a server certificate is valid. Browsers cap publicly trusted certificates at 398
/// days; a certificate under a locally trusted root is not held to that, but staying under it
/// costs nothing (a new one is issued at every start, and before this runs out).
pub const LEAF_VALIDITY: Duration = Duration::days(397);

/// The names a certificate is for: DNS names and IP addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Names {
    pub dns: BTreeSet<String>,
    pub ips: BTreeSet<IpAddr>,
}

impl Names {
    /// `localhost`, the loopback addresses, this host's name when it is a valid DNS name, and
    /// `ips`.
    pub fn of_host(ips: impl IntoIterator<Item = IpAddr>) -> Self {
        let mut n = Names::default();
        n.dns.insert("localhost".into());
        if let Some(h) = host_name() {
            n.dns.insert(h);
        }
        n.ips.insert(IpAddr::from([127, 0, 0, 1]));
        n.ips.insert(IpAddr::from(std::net::Ipv6Addr::LOCALHOST));
        n.ips.extend(ips);
        n
    }

    fn sans(&self) -> Vec<String> {
        self.dns
            .iter()
            .cloned()
            .chain(self.ips.iter().map(|ip| ip.to_string()))
            .collect()
    }
}

/// This host's name, when the kernel has one that is a usable DNS name.
fn host_name() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim().to_ascii_lowercase();
    let valid = !h.is_empty()
        && h.len() <= 253
        && h != "localhost"
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    valid.then_some(h)
}

/// A loaded or new authority and the server certificate it issued now.
pub struct LocalCa {
    /// The authority's certificate (PEM), served at `/ca.crt`.
    pub ca_pem: String,
    /// SHA-256 of the authority's certificate (DER), colon-separated upper-case hex: what a
    /// person compares before trusting it.
    pub fingerprint: String,
    /// Where the authority's certificate is stored.
    pub ca_path: PathBuf,
    /// Whether the authority was made now (devices have not trusted it yet).
    pub created: bool,
    /// The server certificate and the authority's, in the order TLS sends them.
    pub chain: Vec<CertificateDer<'static>>,
    /// The server certificate's key.
    pub key: PrivateKeyDer<'static>,
    /// When the server certificate runs out.
    pub not_after: OffsetDateTime,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa")
            .field("fingerprint", &self.fingerprint)
            .field("ca_path", &self.ca_path)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// Loads the authority in `dir` (making it when there is none, or when it does not cover
/// `names`) and issues a server certificate for `names`.
pub fn ensure(dir: &Path, names: &Names, now: OffsetDateTime) -> Result<LocalCa, TlsError> {
    std::fs::create_dir_all(dir).map_err(|e| TlsError::io(dir, e))?;
    let cert_path = dir.join(CA_CERT_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    let loaded = match (
        std::fs::read_to_string(&cert_path),
        std::fs::read_to_string(&key_path),
    ) {
        (Ok(cert), Ok(key)) => load(&cert_path, &cert, &key_path, &key, names, now)?,
        (Err(e), _) | (_, Err(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
        (Err(e), _) => return Err(TlsError::io(&cert_path, e)),
        (_, Err(e)) => return Err(TlsError::io(&key_path, e)),
    };
    let (ca_pem, ca_key, created) = match loaded {
        Some((pem, key)) => (pem, key, false),
        None => {
            let (pem, key) = create(names, now)?;
            // The key first, readable by the server's user alone; then the certificate, whose
            // presence says the pair is complete.
            write_private(&key_path, key.serialize_pem().as_bytes())?;
            std::fs::write(&cert_path, &pem).map_err(|e| TlsError::io(&cert_path, e))?;
            (pem, key, true)
        }
    };
    let ca_der = CertificateDer::from_pem_slice_compat(&ca_pem, &cert_path)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)
        .map_err(|e| TlsError::generate("reading the local authority back", e))?;
    let leaf_key =
        KeyPair::generate().map_err(|e| TlsError::generate("a server certificate key", e))?;
    let mut params = CertificateParams::new(names.sans())
        .map_err(|e| TlsError::generate("a server certificate's names", e))?;
    params.distinguished_name = {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "Enclave server");
        dn
    };
    params.not_before = now - Duration::hours(1);
    params.not_after = now + LEAF_VALIDITY;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let leaf = params
        .signed_by(&leaf_key, &issuer)
        .map_err(|e| TlsError::generate("signing the server certificate", e))?;
    Ok(LocalCa {
        fingerprint: fingerprint(&ca_der),
        ca_path: cert_path,
        created,
        chain: vec![leaf.der().clone(), ca_der],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        not_after: params.not_after,
        ca_pem,
    })
}

/// SHA-256 of a certificate, as browsers and `openssl x509 -fingerprint -sha256` show it.
pub fn fingerprint(der: &CertificateDer<'_>) -> String {
    Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Reads a stored authority back; `None` when it no longer covers `names` or runs out within a
/// year (a new one is then made). A damaged file is an error, not silently replaced: devices
/// trust the old authority.
fn load(
    cert_path: &Path,
    cert: &str,
    key_path: &Path,
    key: &str,
    names: &Names,
    now: OffsetDateTime,
) -> Result<Option<(String, KeyPair)>, TlsError> {
    let ca_key = KeyPair::from_pem(key).map_err(|e| TlsError::Invalid {
        path: key_path.to_owned(),
        what: format!("not a private key ({e})"),
    })?;
    let der = CertificateDer::from_pem_slice_compat(cert, cert_path)?;
    let invalid = |what: String| TlsError::Invalid {
        path: cert_path.to_owned(),
        what,
    };
    let (_, x509) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| invalid(format!("not an X.509 certificate ({e})")))?;
    let permitted = x509
        .name_constraints()
        .map_err(|e| invalid(format!("unreadable name constraints ({e})")))?
        .and_then(|nc| nc.value.permitted_subtrees.clone())
        .unwrap_or_default();
    let covered = covers(&permitted, names);
    let not_after = OffsetDateTime::from_unix_timestamp(x509.validity().not_after.timestamp())
        .map_err(|e| invalid(format!("expiry out of range ({e})")))?;
    let fresh = not_after > now + Duration::days(365);
    if covered && fresh {
        return Ok(Some((cert.to_owned(), ca_key)));
    }
    let why = if covered {
        "it runs out within a year"
    } else {
        "this host has names or addresses it does not cover"
    };
    tracing::warn!(
        path = %cert_path.display(),
        "a new local certificate authority is made because {why}: devices that trusted the old one must trust the new one"
    );
    Ok(None)
}

/// Whether the authority's permitted subtrees include every name exactly (a name-constrained
/// authority of ours names single hosts; anything else was not made here).
fn covers(permitted: &[x509_parser::extensions::GeneralSubtree<'_>], names: &Names) -> bool {
    use x509_parser::extensions::GeneralName;
    let mut dns = BTreeSet::new();
    let mut ips = BTreeSet::new();
    for s in permitted {
        match s.base {
            GeneralName::DNSName(d) => {
                dns.insert(d.to_ascii_lowercase());
            }
            GeneralName::IPAddress(b) if b.len() == 8 && b[4..] == [0xff; 4] => {
                ips.insert(IpAddr::from(
                    <[u8; 4]>::try_from(&b[..4]).unwrap_or_default(),
                ));
            }
            GeneralName::IPAddress(b) if b.len() == 32 && b[16..] == [0xff; 16] => {
                ips.insert(IpAddr::from(
                    <[u8; 16]>::try_from(&b[..16]).unwrap_or_default(),
                ));
            }
            _ => {}
        }
    }
    names.dns.iter().all(|d| dns.contains(d)) && names.ips.iter().all(|ip| ips.contains(ip))
}

/// The subnet of exactly one address.
fn host_subnet(ip: IpAddr) -> CidrSubnet {
    match ip {
        IpAddr::V4(_) => CidrSubnet::from_addr_prefix(ip, 32),
        IpAddr::V6(_) => CidrSubnet::from_addr_prefix(ip, 128),
    }
}

fn create(names: &Names, now: OffsetDateTime) -> Result<(String, KeyPair), TlsError> {
    let key = KeyPair::generate().map_err(|e| TlsError::generate("the authority's key", e))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Enclave");
        // Each authority gets a name of its own, so that a device that trusted an earlier one
        // (or another server's) shows them apart.
        let tag: [u8; 4] = rand::random();
        dn.push(
            DnType::CommonName,
            format!("Enclave local CA {}", hex::encode(tag)),
        );
        dn
    };
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - Duration::hours(1);
    params.not_after = now + CA_VALIDITY;
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: names
            .dns
            .iter()
            .map(|d| GeneralSubtree::DnsName(d.clone()))
            .chain(
                names
                    .ips
                    .iter()
                    .map(|ip| GeneralSubtree::IpAddress(host_subnet(*ip))),
            )
            .collect(),
        excluded_subtrees: Vec::new(),
    });
    let cert = params
        .self_signed(&key)
        .map_err(|e| TlsError::generate("the authority's certificate", e))?;
    Ok((cert.pem(), key))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| TlsError::io(path, e))?;
    f.write_all(bytes).map_err(|e| TlsError::io(path, e))
}

/// PEM → DER for one certificate, with an error that names the file.
trait FromPemCompat: Sized {
    fn from_pem_slice_compat(pem: &str, path: &Path) -> Result<Self, TlsError>;
}

impl FromPemCompat for CertificateDer<'static> {
    fn from_pem_slice_compat(pem: &str, path: &Path) -> Result<Self, TlsError> {
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| TlsError::Invalid {
            path: path.to_owned(),
            what: format!("no PEM certificate ({e})"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ips: &[[u8; 4]]) -> Names {
        let mut n = Names::default();
        n.dns.insert("localhost".into());
        n.ips.extend(ips.iter().map(|a| IpAddr::from(*a)));
        n
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn verify(ca: &LocalCa, name: &str) -> Result<(), rustls::Error> {
        use rustls::client::danger::ServerCertVerifier;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.chain[1].clone()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            provider,
        )
        .build()
        .unwrap();
        let name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
        let at = rustls::pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            now().unix_timestamp() as u64,
        ));
        verifier
            .verify_server_cert(&ca.chain[0], &ca.chain[1..], &name, &[], at)
            .map(|_| ())
    }

    #[test]
    fn the_server_certificate_verifies_for_every_name_under_the_authority() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ensure(dir.path(), &names(&[[10, 1, 2, 3], [127, 0, 0, 1]]), now()).unwrap();
        assert!(ca.created);
        verify(&ca, "10.1.2.3").unwrap();
        verify(&ca, "127.0.0.1").unwrap();
        verify(&ca, "localhost").unwrap();
        assert!(
            verify(&ca, "10.1.2.4").is_err(),
            "an address it was not issued for"
        );
        assert!(verify(&ca, "example.org").is_err());
        assert_eq!(ca.fingerprint.len(), 32 * 3 - 1);
    }

    #[test]
    fn the_authority_is_kept_across_starts_and_its_key_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let n = names(&[[10, 1, 2, 3]]);
        let first = ensure(dir.path(), &n, now()).unwrap();
        let second = ensure(dir.path(), &n, now()).unwrap();
        assert!(!second.created);
        assert_eq!(first.fingerprint, second.fingerprint);
        assert_eq!(first.ca_pem, second.ca_pem);
        assert_ne!(
            first.chain[0], second.chain[0],
            "a new server certificate each start"
        );
        verify(&second, "10.1.2.3").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(CA_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_new_address_outside_the_constraints_makes_a_new_authority() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure(dir.path(), &names(&[[10, 1, 2, 3]]), now()).unwrap();
        let moved = ensure(dir.path(), &names(&[[10, 9, 9, 9]]), now()).unwrap();
        assert!(moved.created);
        assert_ne!(first.fingerprint, moved.fingerprint);
        verify(&moved, "10.9.9.9").unwrap();
        // A subset of the names keeps the authority.
        let again = ensure(dir.path(), &names(&[]), now()).unwrap();
        assert_eq!(again.fingerprint, moved.fingerprint);
    }

    #[test]
    fn the_authority_cannot_vouch_for_other_hosts() {
        // Were its key stolen: a certificate it signs for another name fails verification.
        let dir = tempfile::tempdir().unwrap();
        let n = names(&[[10, 1, 2, 3]]);
        let ca = ensure(dir.path(), &n, now()).unwrap();
        let key_pem = std::fs::read_to_string(dir.path().join(CA_KEY_FILE)).unwrap();
        let issuer =
            Issuer::from_ca_cert_pem(&ca.ca_pem, KeyPair::from_pem(&key_pem).unwrap()).unwrap();
        let k = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["bank.example".to_owned()]).unwrap();
        p.not_before = now() - Duration::hours(1);
        p.not_after = now() + Duration::days(30);
        let forged = p.signed_by(&k, &issuer).unwrap();
        let stolen = LocalCa {
            chain: vec![forged.der().clone(), ca.chain[1].clone()],
            ..ca
        };
        let err = verify(&stolen, "bank.example").unwrap_err();
        assert!(format!("{err:?}").contains("NameConstraint"), "{err:?}");
    }

    #[test]
    fn a_damaged_authority_is_an_error_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        ensure(dir.path(), &names(&[]), now()).unwrap();
        std::fs::write(dir.path().join(CA_CERT_FILE), "garbage").unwrap();
        let err = ensure(dir.path(), &names(&[]), now()).unwrap_err();
        assert!(err.to_string().contains(CA_CERT_FILE), "{err}");
    }
}
