//! ACME end to end against Pebble, Let's Encrypt's test CA (Debian package `pebble`), started by
//! the test on 127.0.0.1 with its mock DNS (`pebble-challtestsrv`) answering 127.0.0.1 for
//! every name: the server orders a certificate for a host name, answers the TLS-ALPN-01
//! validation on its own HTTPS port, serves the issued certificate (verified against Pebble's
//! root), renews it in service when the renewal window is forced open, after a restart
//! serves the stored certificate without ordering again, and orders anew when the stored one
//! is damaged.
//!
//! Needs the two Pebble binaries, so it is not part of a plain `cargo test`; `scripts/test`
//! runs it with `--ignored` (and `.ci/run` installs Pebble).

#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use enclave_server::config::{AcmeConfig, TlsCertificate, TlsConfig};
use enclave_server::{Server, ServerConfig};

const NAME: &str = "meet.enclave.test";

/// A child process killed when the test ends, however it ends.
struct Proc(Child, &'static str);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An authority and Pebble's own HTTPS certificate (localhost, 127.0.0.1) issued by it.
fn pebble_tls(dir: &Path) -> PathBuf {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::default();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "pebble test listener CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(dir.join("pebble-cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("pebble-key.pem"), key.serialize_pem()).unwrap();
    let ca_path = dir.join("pebble-listener-ca.pem");
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    ca_path
}

fn spawn(cmd: &mut Command, what: &'static str, log: &Path) -> Proc {
    let out = std::fs::File::create(log).unwrap();
    let child = cmd
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {what} ({e}); install Debian's `pebble` package (apt-get install pebble)")
        });
    Proc(child, what)
}

async fn wait_tcp(addr: SocketAddr, p: &mut Proc, log: &Path) {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        if let Ok(Some(st)) = p.0.try_wait() {
            panic!(
                "{} exited ({st}):\n{}",
                p.1,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < end, "{} did not listen on {addr}", p.1);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Pebble and its DNS, the server's HTTPS port chosen before Pebble starts (it validates
/// TLS-ALPN-01 on that port).
struct Ca {
    _dns: Proc,
    _pebble: Proc,
    directory: String,
    listener_ca: PathBuf,
    management: SocketAddr,
    server_port: u16,
    dir: tempfile::TempDir,
}

async fn start_pebble() -> Ca {
    let dir = tempfile::tempdir().unwrap();
    let listener_ca = pebble_tls(dir.path());
    let (acme_port, mgmt_port, dns_port, dns_mgmt) =
        (free_port(), free_port(), free_udp_port(), free_port());
    let server_port = free_port();
    let dns_log = dir.path().join("challtestsrv.log");
    let mut dns = spawn(
        Command::new("pebble-challtestsrv")
            .arg("-dns01")
            .arg(format!("127.0.0.1:{dns_port}"))
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .arg("-management")
            .arg(format!("127.0.0.1:{dns_mgmt}")),
        "pebble-challtestsrv",
        &dns_log,
    );
    wait_tcp(
        SocketAddr::from(([127, 0, 0, 1], dns_mgmt)),
        &mut dns,
        &dns_log,
    )
    .await;
    let config = serde_json::json!({
        "pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
            "certificate": dir.path().join("pebble-cert.pem"),
            "privateKey": dir.path().join("pebble-key.pem"),
            "httpPort": free_port(),
            "tlsPort": server_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }
    });
    let cfg_path = dir.path().join("pebble.json");
    std::fs::write(&cfg_path, config.to_string()).unwrap();
    let log = dir.path().join("pebble.log");
    let mut pebble = spawn(
        Command::new("pebble")
            .arg("-config")
            .arg(&cfg_path)
            .arg("-dnsserver")
            .arg(format!("127.0.0.1:{dns_port}"))
            // Validate at once (it sleeps up to 15 s otherwise) and accept every nonce.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0"),
        "pebble",
        &log,
    );
    wait_tcp(
        SocketAddr::from(([127, 0, 0, 1], acme_port)),
        &mut pebble,
        &log,
    )
    .await;
    Ca {
        _dns: dns,
        _pebble: pebble,
        directory: format!("https://127.0.0.1:{acme_port}/dir"),
        listener_ca,
        management: SocketAddr::from(([127, 0, 0, 1], mgmt_port)),
        server_port,
        dir,
    }
}

impl Ca {
    /// Pebble's issuing root (it makes a new one at every start).
    async fn root(&self) -> String {
        let c = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(&self.listener_ca).unwrap()).unwrap(),
            )
            .build()
            .unwrap();
        c.get(format!("https://{}/roots/0", self.management))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    fn acme(&self, state: &Path, renew_before: Duration) -> TlsConfig {
        TlsConfig {
            certificate: TlsCertificate::Acme(AcmeConfig {
                domains: vec![NAME.into()],
                contact: vec!["mailto:ops@enclave.test".into()],
                directory: self.directory.clone(),
                directory_ca: Some(self.listener_ca.clone()),
                dir: state.to_owned(),
                renew_before,
                check_every: Duration::from_secs(2),
            }),
            redirect_port: None,
            plain_http: true,
        }
    }
}

async fn start_server(data: &Path, port: u16, tls: TlsConfig) -> Server {
    let mut cfg = ServerConfig::for_tests(data, "acme-key", "acme-secret-0123456789abcdef");
    cfg.listen = SocketAddr::from(([127, 0, 0, 1], port));
    cfg.tls = Some(tls);
    Server::start(cfg).await.unwrap()
}

/// The serial of the certificate served for NAME, when it verifies against `root` alone and
/// a request over it is answered; `None` while it does not (yet).
async fn served_serial(port: u16, root: &str) -> Option<Vec<u8>> {
    let c = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes()).ok()?)
        .resolve(NAME, SocketAddr::from(([127, 0, 0, 1], port)))
        .tls_info(true)
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let r = c
        .get(format!("https://{NAME}:{port}/api/tls"))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    let der = r
        .extensions()
        .get::<reqwest::tls::TlsInfo>()?
        .peer_certificate()?
        .to_vec();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    Some(cert.raw_serial().to_vec())
}

async fn wait_served(port: u16, root: &str, not: Option<&[u8]>, ca: &Ca) -> Vec<u8> {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = served_serial(port, root).await {
            if Some(s.as_slice()) != not {
                return s;
            }
        }
        assert!(
            Instant::now() < end,
            "no (new) certificate from Pebble served within 60 s; pebble log:\n{}",
            ca.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
#[ignore = "needs Debian's pebble; scripts/test runs it with --ignored"]
async fn certificate_is_obtained_served_renewed_and_kept_across_restarts() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let ca = start_pebble().await;
    let root = ca.root().await;
    let data = tempfile::tempdir().unwrap();
    let state = data.path().join("acme");

    // A renewal window longer than Pebble's certificates live: every check renews, which is
    // how a renewal is forced here.
    let s = start_server(
        data.path(),
        ca.server_port,
        ca.acme(&state, Duration::from_secs(100 * 365 * 86400)),
    )
    .await;
    // Before the order completes, a temporary certificate that Pebble's root does not sign.
    let first = wait_served(ca.server_port, &root, None, &ca).await;
    let account = std::fs::read(state.join("account.json")).unwrap();
    let renewed = wait_served(ca.server_port, &root, Some(&first), &ca).await;
    assert_ne!(first, renewed);
    s.stop().await.unwrap();

    // A restart with the usual window: the stored certificate is served at once and kept; the
    // account is reused.
    let stored = std::fs::read_to_string(state.join("cert.pem")).unwrap();
    let (_, stored_der) = x509_parser::pem::parse_x509_pem(stored.as_bytes()).unwrap();
    let stored_serial = stored_der.parse_x509().unwrap().raw_serial().to_vec();
    let s = start_server(
        data.path(),
        ca.server_port,
        ca.acme(&state, Duration::from_secs(30 * 86400)),
    )
    .await;
    let t0 = Instant::now();
    let now = served_serial(ca.server_port, &root).await;
    assert_eq!(now.as_deref(), Some(stored_serial.as_slice()));
    assert!(t0.elapsed() < Duration::from_secs(5));
    // Two renewal checks later, still the same certificate and account.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        served_serial(ca.server_port, &root).await.as_deref(),
        Some(stored_serial.as_slice())
    );
    assert_eq!(std::fs::read(state.join("account.json")).unwrap(), account);
    for f in ["account.json", "key.pem", "cert.pem"] {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(state.join(f)).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    s.stop().await.unwrap();

    // A damaged stored certificate (a crash mid-write) does not keep the server down: it
    // starts on a temporary certificate and orders a new one.
    std::fs::write(
        state.join("cert.pem"),
        "-----BEGIN CERTIFICATE-----\ngarbage\n",
    )
    .unwrap();
    let s = start_server(
        data.path(),
        ca.server_port,
        ca.acme(&state, Duration::from_secs(30 * 86400)),
    )
    .await;
    let replaced = wait_served(ca.server_port, &root, Some(&stored_serial), &ca).await;
    assert_ne!(replaced, stored_serial);
    s.stop().await.unwrap();
}
