//! Loading and validation together, through a file and the environment as a user sets them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use enclave_server::config::{ServerConfig, TlsCertificate};

use super::file::LETS_ENCRYPT;
use super::{load, validate, KeySource};

/// The `client` section of a file with configured credentials, to which tests add keys.
const KEYS: &str = "client:\n  api_key: k\n  secret: 0123456789abcdef0123456789abcdef\n";

/// The data directory's variable, for a test's own directory.
const DATA_DIR: &str = "ENCLAVE_DATABASE__DATA_DIR";

fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect::<Vec<_>>()
        .into_iter()
}

fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.yaml");
    std::fs::write(&p, text).unwrap();
    (dir, p)
}

/// Loads `yaml` (`None`: no file) with the variables `vars`, and validates the result.
fn config(
    yaml: Option<&str>,
    vars: &[(&str, &str)],
) -> anyhow::Result<(ServerConfig, KeySource, String)> {
    let file = yaml.map(write);
    validate(load(file.as_ref().map(|(_, p)| p.as_path()), env(vars))?)
}

/// The server configuration of `yaml` with its data directory in `data`.
fn server_config(yaml: Option<&str>, data: &Path) -> ServerConfig {
    config(yaml, &[(DATA_DIR, data.to_str().unwrap())])
        .unwrap()
        .0
}

/// Why `yaml` is refused.
fn error_of(yaml: &str) -> String {
    config(Some(yaml), &[]).unwrap_err().to_string()
}

fn trusted_proxies(c: &ServerConfig) -> Vec<String> {
    c.trusted_proxies.iter().map(ToString::to_string).collect()
}

#[test]
fn file_values_and_env_overrides_apply() {
    let (dir, p) = write(&format!("{KEYS}  port: 9000\n  token_validity: 1h30m\n"));
    let f = load(
        Some(&p),
        env(&[
            ("ENCLAVE_CLIENT__PORT", "9100"),
            (DATA_DIR, dir.path().to_str().unwrap()),
            ("OTHER", "x"),
            ("ENCLAVE_BIN", "/x"),
        ]),
    )
    .unwrap();
    let (c, _, _) = validate(f).unwrap();
    assert_eq!(c.listen.port(), 9100);
    assert_eq!(c.token_validity, Duration::from_secs(5400));
    assert_eq!(c.api_key, "k");
    assert!(c.database_path.starts_with(dir.path()));
}

#[test]
fn https_is_on_by_default_with_the_local_authority_in_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let tls = server_config(None, dir.path()).tls.unwrap();
    assert_eq!(
        tls.certificate,
        TlsCertificate::LocalCa {
            dir: dir.path().join("tls")
        }
    );
    assert!(tls.plain_http);
    assert_eq!(tls.redirect_port, None);

    let s = format!(
        "{KEYS}  tls:\n    cert_file: /etc/c.pem\n    key_file: k.pem\n    http_redirect_port: 80\n"
    );
    let tls = server_config(Some(&s), dir.path()).tls.unwrap();
    assert_eq!(
        tls.certificate,
        TlsCertificate::Files {
            cert: "/etc/c.pem".into(),
            key: dir.path().join("k.pem"),
        }
    );
    assert_eq!(tls.redirect_port, Some(80));

    let data = dir.path().to_str().unwrap();
    let (c, _, _) = config(
        None,
        &[("ENCLAVE_CLIENT__TLS__ENABLE", "false"), (DATA_DIR, data)],
    )
    .unwrap();
    assert!(c.tls.is_none());
}

#[test]
fn acme_names_contact_and_state_directory_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let s = format!("{KEYS}  port: 443\n  tls:\n    acme:\n      domains: [Meet.Example.org.]\n      contact: [ops@example.org]\n");
    let TlsCertificate::Acme(a) = server_config(Some(&s), dir.path()).tls.unwrap().certificate
    else {
        panic!("not ACME");
    };
    assert_eq!(a.domains, vec!["meet.example.org".to_owned()]);
    assert_eq!(a.contact, vec!["mailto:ops@example.org".to_owned()]);
    assert_eq!(a.directory, LETS_ENCRYPT);
    assert_eq!(a.dir, dir.path().join("acme"));
    assert_eq!(a.renew_before.as_secs(), 30 * 86400);
}

#[test]
fn tls_errors_name_the_key() {
    for (yaml, key) in [
        (
            "  tls:\n    acme:\n      domains: [10.0.0.1]\n",
            "client.tls.acme.domains",
        ),
        (
            "  tls:\n    acme:\n      domains: ['*.example.org']\n",
            "client.tls.acme.domains",
        ),
        (
            "  tls:\n    cert_file: c.pem\n    key_file: k.pem\n    acme:\n      domains: [a.example.org]\n",
            "client.tls.acme.domains",
        ),
        (
            "  tls:\n    acme:\n      domains: [a.example.org]\n      contact: [nobody]\n",
            "client.tls.acme.contact",
        ),
        (
            "  tls:\n    acme:\n      domains: [a.example.org]\n      directory_url: http://ca.example/dir\n",
            "client.tls.acme.directory_url",
        ),
        (
            "  tls:\n    acme:\n      domains: [a.example.org]\n      renew_days_before: 0\n",
            "client.tls.acme.renew_days_before: must be at least 1",
        ),
        (
            "  tls:\n    acme:\n      domains: [a.example.org]\n      check_interval_secs: 0\n",
            "client.tls.acme.check_interval_secs: must be at least 1",
        ),
        ("  tls:\n    cert_file: c.pem\n", "client.tls.key_file"),
        ("  tls:\n    key_file: k.pem\n", "client.tls.cert_file"),
        (
            "  port: 8443\n  tls:\n    http_redirect_port: 8443\n",
            "client.tls.http_redirect_port",
        ),
    ] {
        let err = error_of(&format!("{KEYS}{yaml}"));
        assert!(err.contains(key), "{key}: {err}");
    }
}

#[test]
fn errors_name_the_key() {
    let (_d, p) = write("client:\n  prot: 1\n");
    assert!(load(Some(&p), env(&[]))
        .unwrap_err()
        .to_string()
        .contains("prot"));
    assert!(error_of("client:\n  api_key: k\n").contains("client.secret"));
    assert!(load(None, env(&[("ENCLAVE_CLIENT__PORT", "notaport")]))
        .unwrap_err()
        .to_string()
        .contains("port"));
    for (extra, key) in [
        ("client:\n  token_validity: soon\n", "client.token_validity"),
        (
            "client:\n  webhook_conf:\n    enable: true\n    url: ftp://x\n",
            "client.webhook_conf.url",
        ),
        (
            "livekit_info:\n  secret: 0123456789abcdef0123456789abcdef\n",
            "must differ from client.secret",
        ),
        (
            "client:\n  frame_ancestors: [\"https://a.example; script-src *\"]\n",
            "client.frame_ancestors",
        ),
        (
            "client:\n  limits:\n    header_read_timeout: 0s\n",
            "client.limits.header_read_timeout",
        ),
        (
            "client:\n  limits:\n    max_connections: 0\n",
            "client.limits.max_connections: must be at least 1",
        ),
        (
            "client:\n  limits:\n    max_connections_per_ip: 0\n",
            "client.limits.max_connections_per_ip: must be at least 1",
        ),
        (
            "client:\n  prometheus:\n    listen: nowhere\n",
            "client.prometheus.listen",
        ),
        (
            "client:\n  trusted_proxies: [127.0.0.1, 10.0.0.0/33]\n",
            "client.trusted_proxies: '10.0.0.0/33'",
        ),
        (
            "client:\n  trusted_proxies: [proxy.example.org]\n",
            "client.trusted_proxies: 'proxy.example.org'",
        ),
        (
            "client:\n  trusted_proxies: ::/0\n",
            "client.trusted_proxies: '::/0' would trust every address",
        ),
        ("rtc:\n  node_ip: [10.0.0.5, nope]\n", "rtc.node_ip: 'nope'"),
        ("rtc:\n  node_ip: 0.0.0.0\n", "rtc.node_ip"),
        (
            "rtc:\n  turn_servers:\n    - host: turn.example.org\n",
            "rtc.turn_servers[0]: needs a secret",
        ),
        (
            "rtc:\n  turn_servers:\n    - {host: t, protocol: sctp, secret: s}\n",
            "rtc.turn_servers[0].protocol",
        ),
        (
            "rtc:\n  turn_servers:\n    - {host: t, secret: s, username: u, credential: c}\n",
            "not both",
        ),
        (
            "rtc:\n  turn_servers:\n    - {host: t, secret: s, ttl: forever}\n",
            "rtc.turn_servers[0].ttl",
        ),
    ] {
        let text = match extra.strip_prefix("client:\n") {
            Some(rest) => format!("{KEYS}{rest}"),
            None => format!("{KEYS}{extra}"),
        };
        let err = error_of(&text);
        assert!(err.contains(key), "{text}: {err}");
    }
}

#[test]
fn trusted_proxies_take_addresses_and_ranges_from_the_file_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    assert!(server_config(None, dir.path()).trusted_proxies.is_empty());

    let s = format!("{KEYS}  trusted_proxies: [127.0.0.1, \"::1\", 10.1.2.3/8, 127.0.0.1]\n");
    let c = server_config(Some(&s), dir.path());
    assert_eq!(
        trusted_proxies(&c),
        ["127.0.0.1/32", "::1/128", "10.0.0.0/8"]
    );

    let (c, _, _) = config(
        None,
        &[
            ("ENCLAVE_CLIENT__TRUSTED_PROXIES", "192.0.2.10, fd00::/64"),
            (DATA_DIR, data),
        ],
    )
    .unwrap();
    assert_eq!(trusted_proxies(&c), ["192.0.2.10/32", "fd00::/64"]);
}

#[test]
fn no_configuration_generates_and_then_reloads_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let vars = [(DATA_DIR, dir.path().to_str().unwrap())];
    let (a, src, _) = config(None, &vars).unwrap();
    assert!(matches!(src, KeySource::Generated(_)));
    let (b, src, _) = config(None, &vars).unwrap();
    assert!(matches!(src, KeySource::Loaded(_)));
    assert_eq!(a.api_secret, b.api_secret);
    assert!(a.api_secret.len() >= 32);
}

#[test]
fn empty_keys_take_their_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let s = format!("{KEYS}log_settings:\n  log_level: DEBUG\nrecorder_info:\n  enable_del_recording_backup: true\n  recording_files_path: /srv/rec\n");
    let (c, _, level) = config(Some(&s), &[(DATA_DIR, dir.path().to_str().unwrap())]).unwrap();
    assert_eq!(level, "debug");
    assert_eq!(c.recording_files_path, Path::new("/srv/rec"));
    assert_eq!(
        c.recording_backup_path,
        Some(dir.path().join("recordings-deleted"))
    );
    assert_eq!(c.artifacts_path, dir.path().join("artifacts"));
    assert_eq!(c.uploads_path, dir.path().join("uploads"));
    assert_eq!(c.database_path, dir.path().join("enclave.sqlite"));
    assert_eq!(c.webhooks.url, None);
    assert_eq!(c.prometheus.token, None);
    let (_, _, level) = config(Some(KEYS), &[]).unwrap();
    assert_eq!(level, "info");
    assert_eq!(
        config(Some(KEYS), &[]).unwrap().0.database_path,
        Path::new("data/enclave.sqlite")
    );
}

#[test]
fn the_sample_config_is_valid() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.sample.yaml");
    let dir = tempfile::tempdir().unwrap();
    let f = load(
        Some(&sample),
        env(&[(DATA_DIR, dir.path().to_str().unwrap())]),
    )
    .unwrap();
    validate(f).unwrap();
}
