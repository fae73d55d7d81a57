//! HTTPS on the API port, against the real listener on 127.0.0.1: TLS and plain HTTP share the
//! port; the local authority's certificate verifies and is served at `/ca.crt`; a renewed
//! certificate file is served without a restart (and a broken one is not); plain HTTP is
//! redirected where configured; a silent TLS client is cut off.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

use enclave_server::config::{ConnLimits, TlsCertificate, TlsConfig};
use enclave_server::http::listener::Scheme;
use enclave_server::{Server, ServerConfig};

const KEY: &str = "https-key";
const SECRET: &str = "https-secret-0123456789abcdef";

async fn server(tls: TlsConfig, f: impl FnOnce(&mut ServerConfig)) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ServerConfig::for_tests(dir.path(), KEY, SECRET);
    cfg.tls = Some(tls);
    f(&mut cfg);
    (Server::start(cfg).await.unwrap(), dir)
}

fn local_ca(dir: &Path) -> TlsConfig {
    TlsConfig {
        certificate: TlsCertificate::LocalCa {
            dir: dir.join("tls"),
        },
        redirect_port: None,
        plain_http: true,
    }
}

/// A client that trusts `ca_pem` alone.
fn client_trusting(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// An authority and a certificate it issued for 127.0.0.1: (authority PEM, chain PEM, key PEM).
fn issue(cn: &str) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::default();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, cn.to_owned());
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), leaf.pem(), key.serialize_pem())
}

#[tokio::test]
async fn https_and_plain_http_answer_on_the_same_port() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _d) = server(local_ca(dir.path()), |_| {}).await;
    let port = s.addr.port();
    let ca_pem = std::fs::read_to_string(dir.path().join("tls/ca.crt")).unwrap();
    let https = client_trusting(&ca_pem);

    for host in ["127.0.0.1", "localhost"] {
        let r = https
            .get(format!("https://{host}:{port}/api/tls"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("https://{host}: {e:?}"));
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(v["https_port"], port);
        assert_eq!(v["local_ca"], true);
    }
    // The authority's certificate, for download.
    let served = https
        .get(format!("https://127.0.0.1:{port}/ca.crt"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        served.headers()["content-type"],
        "application/x-x509-ca-cert"
    );
    assert_eq!(served.text().await.unwrap(), ca_pem);

    // Plain HTTP on the same port, unchanged.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthCheck"))
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    assert_eq!(plain.text().await.unwrap(), "Healthy");

    // A client that does not trust the authority is refused by its own TLS stack.
    let (other_ca, _, _) = issue("someone else");
    let err = client_trusting(&other_ca)
        .get(format!("https://127.0.0.1:{port}/healthCheck"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn without_tls_the_client_is_told_there_is_no_https() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServerConfig::for_tests(dir.path(), KEY, SECRET);
    let s = Server::start(cfg).await.unwrap();
    let body = reqwest::get(format!("http://{}/api/tls", s.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["https_port"], serde_json::Value::Null);
    assert_eq!(v["local_ca"], false);
    let ca = reqwest::get(format!("http://{}/ca.crt", s.addr))
        .await
        .unwrap();
    assert_eq!(ca.status(), 404);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_renewed_certificate_file_is_served_without_a_restart_and_a_broken_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let (ca1, chain1, key1) = issue("first");
    std::fs::write(&cert, &chain1).unwrap();
    std::fs::write(&key, &key1).unwrap();
    let tls = TlsConfig {
        certificate: TlsCertificate::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        redirect_port: None,
        plain_http: true,
    };
    let (s, _d) = server(tls, |_| {}).await;
    let url = format!("https://127.0.0.1:{}/healthCheck", s.addr.port());
    let (first, second) = (client_trusting(&ca1), {
        let (ca2, chain2, key2) = issue("second");
        // A renewal as certbot does it: the key, then the chain.
        std::fs::write(&key, &key2).unwrap();
        std::fs::write(&cert, &chain2).unwrap();
        client_trusting(&ca2)
    });
    // Until the poll notices, the first may still be served; after it, only the second.
    let deadline = Instant::now() + enclave_server::tls::RELOAD_POLL * 5;
    loop {
        if second.get(&url).send().await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(first.get(&url).send().await.is_err());

    // A broken renewal: the certificate in service stays.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
    tokio::time::sleep(enclave_server::tls::RELOAD_POLL * 2).await;
    let r = second.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn the_redirect_port_sends_plain_http_to_the_same_url_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let mut tls = local_ca(dir.path());
    tls.redirect_port = Some(0);
    let (s, _d) = server(tls, |_| {}).await;
    let r = s.redirect_addr.unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client
        .get(format!("http://127.0.0.1:{}/?access_token=abc", r.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 308);
    assert_eq!(
        res.headers()["location"],
        format!("https://127.0.0.1:{}/?access_token=abc", s.addr.port()).as_str()
    );
    s.stop().await.unwrap();
}

/// `plain_http: false`: plain HTTP from another machine is redirected, from this one served.
#[tokio::test]
async fn plain_http_from_another_machine_is_redirected_when_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut tls = local_ca(dir.path());
    tls.plain_http = false;
    let (s, _d) = server(tls, |_| {}).await;
    let router = enclave_server::http::router(s.app.clone());
    let port = s.addr.port();
    let ask = |from: [u8; 4], scheme: Scheme| {
        let router = router.clone();
        async move {
            let mut req = axum::http::Request::get("/healthCheck")
                .header("host", format!("meet.example.org:{port}"))
                .body(axum::body::Body::empty())
                .unwrap();
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::from((from, 50000))));
            req.extensions_mut().insert(scheme);
            router.oneshot(req).await.unwrap()
        }
    };
    let remote_plain = ask([10, 0, 0, 9], Scheme::Http).await;
    assert_eq!(remote_plain.status(), 308);
    assert_eq!(
        remote_plain.headers()["location"],
        format!("https://meet.example.org:{port}/healthCheck").as_str()
    );
    assert_eq!(ask([10, 0, 0, 9], Scheme::Https).await.status(), 200);
    assert_eq!(ask([127, 0, 0, 1], Scheme::Http).await.status(), 200);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_that_starts_a_handshake_and_goes_silent_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _d) = server(local_ca(dir.path()), |c| {
        c.conn_limits = ConnLimits {
            header_read_timeout: Duration::from_secs(1),
            ..ConnLimits::default()
        };
    })
    .await;
    let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    // The first bytes of a TLS record header, then nothing.
    c.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
        .await
        .expect("the server never closed a silent handshake")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    assert!(started.elapsed() < Duration::from_secs(4));
    s.stop().await.unwrap();
}
