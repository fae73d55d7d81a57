//! `client.tls`: where the HTTPS certificate comes from (files, the local authority, or ACME).

use anyhow::{bail, Result};

use enclave_server::config::{AcmeConfig, TlsCertificate, TlsConfig};

use super::file::{Acme, Tls};
use super::{at_least_one, DataDir};

/// The HTTPS settings, or `None` when `client.tls.enable` is off. `port` is `client.port`.
pub(super) fn tls_config(t: &Tls, port: u16, data: &DataDir) -> Result<Option<TlsConfig>> {
    if !t.enable {
        return Ok(None);
    }
    let certificate = match (t.cert_file.is_empty(), t.key_file.is_empty()) {
        _ if !t.acme.domains.is_empty() => {
            if !t.cert_file.is_empty() || !t.key_file.is_empty() {
                bail!("client.tls.acme.domains: set together with client.tls.cert_file/key_file; choose one source of certificates");
            }
            TlsCertificate::Acme(acme_config(&t.acme, data)?)
        }
        (true, true) => TlsCertificate::LocalCa {
            dir: data.under(&t.local_ca_dir, "tls"),
        },
        (false, false) => TlsCertificate::Files {
            cert: data.under(&t.cert_file, ""),
            key: data.under(&t.key_file, ""),
        },
        (false, true) => bail!("client.tls.key_file: required with client.tls.cert_file"),
        (true, false) => bail!("client.tls.cert_file: required with client.tls.key_file"),
    };
    let redirect_port = match t.http_redirect_port {
        0 => None,
        p if p == port => {
            bail!("client.tls.http_redirect_port: {p} is client.port itself (which already answers plain HTTP); choose another port or 0")
        }
        p => Some(p),
    };
    Ok(Some(TlsConfig {
        certificate,
        redirect_port,
        plain_http: t.plain_http,
    }))
}

/// `client.tls.acme`: public host names, contacts, the CA and the renewal timing.
fn acme_config(a: &Acme, data: &DataDir) -> Result<AcmeConfig> {
    let mut domains = Vec::new();
    for d in &a.domains {
        let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
        let ok = d.contains('.')
            && d.len() <= 253
            && d.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            && d.parse::<std::net::IpAddr>().is_err();
        if !ok {
            bail!("client.tls.acme.domains: '{d}' is not a public host name (e.g. meet.example.org; IP addresses and wildcards are not supported)");
        }
        domains.push(d);
    }
    let contact = a
        .contact
        .iter()
        .map(|c| {
            let c = c.trim();
            let mail = c.strip_prefix("mailto:").unwrap_or(c);
            if !mail.contains('@') || mail.contains(char::is_whitespace) {
                bail!("client.tls.acme.contact: '{c}' is not an e-mail address");
            }
            Ok(format!("mailto:{mail}"))
        })
        .collect::<Result<Vec<_>>>()?;
    if !a.directory_url.starts_with("https://") {
        bail!(
            "client.tls.acme.directory_url: '{}' is not an https:// URL",
            a.directory_url
        );
    }
    at_least_one("client.tls.acme.renew_days_before", a.renew_days_before)?;
    at_least_one("client.tls.acme.check_interval_secs", a.check_interval_secs)?;
    Ok(AcmeConfig {
        domains,
        contact,
        directory: a.directory_url.clone(),
        directory_ca: (!a.directory_ca_file.is_empty())
            .then(|| data.under(&a.directory_ca_file, "")),
        dir: data.under(&a.dir, "acme"),
        renew_before: std::time::Duration::from_secs(u64::from(a.renew_days_before) * 86400),
        check_every: std::time::Duration::from_secs(a.check_interval_secs),
    })
}
