//! `enclave`: the conferencing server binary. Reads configuration, starts the server, prints
//! how to use it.

mod config;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "enclave",
    version,
    about = "Self-hosted video conferencing with end-to-end encryption (Plug-N-Meet compatible API)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve {
        /// YAML configuration file; without one the server starts on embedded defaults.
        #[arg(long, short, env = "ENCLAVE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Check a configuration file and exit.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve {
        config: std::env::var_os("ENCLAVE_CONFIG").map(PathBuf::from),
    }) {
        Command::CheckConfig { config } => {
            let f = config::load(Some(&config), std::env::vars())?;
            config::validate(f)?;
            println!("{}: valid", config.display());
            Ok(())
        }
        Command::Serve { config } => serve(config).await,
    }
}

async fn serve(path: Option<PathBuf>) -> anyhow::Result<()> {
    let file = config::load(path.as_deref(), std::env::vars())?;
    let (cfg, source, level) = config::validate(file)?;
    tracing_subscriber::fmt()
        // Colour codes only for a terminal, not in files or service logs.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| EnvFilter::new(format!("{level},tower_http=warn"))),
        )
        .init();
    let server = enclave_server::Server::start(cfg).await?;
    let cfg = &server.app.config;
    let port = server.addr.port();
    let host = if server.addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        server.addr.ip().to_string()
    };
    let url = format!("http://{host}:{port}");
    // The secret is shown once, when it was just generated; after that the banner (which
    // ends up in service logs) says where it is, never what it is.
    let (secret_line, secret_shell) = match &source {
        config::KeySource::Configured => (
            "from the configuration (client.secret)".to_owned(),
            "$SECRET".to_owned(),
        ),
        config::KeySource::Generated(p) => (
            format!(
                "{}   (generated now and saved to {}; shown this once)",
                cfg.api_secret,
                p.display()
            ),
            format!("'{}'", cfg.api_secret),
        ),
        config::KeySource::Loaded(p) => (
            format!("in {} (\"secret\")", p.display()),
            format!(
                "\"$(sed -n 's/.*\"secret\": *\"\\([^\"]*\\)\".*/\\1/p' {})\"",
                p.display()
            ),
        ),
    };
    println!(
        "\nEnclave is listening on {addr}\n\n  API base URL: {url}/auth\n  API key:      {key}\n  API secret:   {secret_line}\n  History:      {db}\n\n\
         Create a room and a join link (any Plug-N-Meet SDK works; plain curl shown):\n\n  \
         BODY='{{\"room_id\":\"demo\",\"metadata\":{{\"room_title\":\"Demo\",\"room_features\":{{}}}}}}'\n  \
         curl -s {url}/auth/room/create -H 'Content-Type: application/json' -H 'API-KEY: {key}' \\\n    \
         -H \"HASH-SIGNATURE: $(printf %s \"$BODY\" | openssl dgst -sha256 -hmac {secret_shell} | cut -d' ' -f2)\" -d \"$BODY\"\n\n  \
         then call /auth/room/getJoinToken and open {url}/?access_token=<token>\n",
        addr = server.addr,
        key = cfg.api_key,
        db = cfg.database_path.display(),
    );
    // Where people on other machines open it: the advertised media addresses are the
    // host's reachable ones (or the configured node_ip).
    let tls = server.app.tls.as_ref();
    let scheme = if tls.is_some() { "https" } else { "http" };
    if let Some(m) = &server.app.media {
        let remote: Vec<std::net::SocketAddr> = m
            .advertised_ips()
            .into_iter()
            // The HTTP listener's family only: 0.0.0.0 does not answer on IPv6.
            .filter(|ip| {
                !ip.is_loopback()
                    && server.addr.ip().is_unspecified()
                    && ip.is_ipv4() == server.addr.is_ipv4()
            })
            .map(|ip| std::net::SocketAddr::new(ip, port))
            .collect();
        let acme = match tls.map(|t| &t.config.certificate) {
            Some(enclave_server::config::TlsCertificate::Acme(a)) => Some(a),
            _ => None,
        };
        if let Some(a) = acme {
            // A CA-issued certificate names the host name, not the addresses.
            let at = if port == 443 {
                a.domains[0].clone()
            } else {
                format!("{}:{port}", a.domains[0])
            };
            println!("  From another machine: https://{at}/?access_token=<token>");
        } else if let Some((first, rest)) = remote.split_first() {
            println!("  From another machine: {scheme}://{first}/?access_token=<token>");
            if !rest.is_empty() {
                let rest: Vec<String> = rest.iter().map(|a| format!("{scheme}://{a}")).collect();
                println!("    (or {})", rest.join(", "));
            }
            if tls.is_none() {
                println!("    Browsers give camera, microphone and encryption only to https:// pages and\n    localhost: turn client.tls on, or serve it behind an HTTPS reverse proxy (docs/deploy.md).");
            }
        }
        match tls.and_then(|t| t.local_ca.as_ref()) {
            Some(ca) => {
                let fetch = remote
                    .first()
                    .map(|a| format!("http://{a}/ca.crt"))
                    .unwrap_or_else(|| format!("{url}/ca.crt"));
                println!(
                    "  HTTPS:        a certificate from this server's own authority{made} ({})\n    \
                     SHA-256 {}\n    \
                     Trust it once on each device: download {fetch} and import it as a\n    \
                     certificate authority (docs/deploy.md shows how on each system), after\n    \
                     checking that its fingerprint is the one above.",
                    ca.path.display(),
                    ca.fingerprint,
                    made = if ca.created { ", made now" } else { "" },
                );
            }
            None => {
                match tls.map(|t| &t.config.certificate) {
                    Some(enclave_server::config::TlsCertificate::Files { cert, .. }) => println!(
                        "  HTTPS:        certificate {} (read again when it changes)",
                        cert.display()
                    ),
                    Some(enclave_server::config::TlsCertificate::Acme(a)) => println!(
                        "  HTTPS:        a certificate for {} from {} (ACME, TLS-ALPN-01: port 443\n    \
                         of each name must reach this port), kept in {} and renewed {} days\n    \
                         before it expires; progress is in the log (\"ACME:\")",
                        a.domains.join(", "),
                        a.directory,
                        a.dir.display(),
                        a.renew_before.as_secs() / 86400
                    ),
                    _ => {}
                }
            }
        }
        println!();
    }
    match &server.app.media {
        Some(m) => {
            let ips: Vec<String> = m.advertised_ips().iter().map(|ip| ip.to_string()).collect();
            let tcp = match m.tcp_port {
                Some(p) => format!(" and TCP {p}"),
                None => " (ICE over TCP off: rtc.tcp_port is 0)".to_owned(),
            };
            println!(
                "  Media (SFU):  UDP {}{tcp} on {} (signalling: /rtc on the same HTTP port)",
                m.udp_port,
                ips.join(", ")
            );
            let turn = &cfg
                .media
                .as_ref()
                .map(|c| c.turn_servers.clone())
                .unwrap_or_default();
            if turn.is_empty() {
                println!(
                    "  TURN:         not configured (rtc.turn_servers; see docs/networking.md)\n"
                );
            } else {
                let list: Vec<String> = turn
                    .iter()
                    .map(|t| format!("{}:{} ({:?})", t.host, t.port, t.protocol).to_lowercase())
                    .collect();
                println!(
                    "  TURN:         {} (clients get credentials of their own)\n",
                    list.join(", ")
                );
            }
        }
        None => println!("  Media (SFU):  disabled (rtc.enable: false)\n"),
    }
    tracing::info!(addr = %server.addr, "serving");
    let app = server.app.clone();
    tokio::select! {
        r = server.wait() => Ok(r?),
        _ = shutdown_signal() => {
            tracing::info!(rooms = app.rooms.len(), "shutting down");
            for room in app.rooms.all() {
                let _ = room.end(enclave_server::rooms::core::EndReason::Shutdown).await;
            }
            // Ending the rooms stopped their recorders: let them finalise their files.
            app.recorders.finished(std::time::Duration::from_secs(60)).await;
            Ok(())
        }
    }
}

/// SIGINT (Ctrl-C) or SIGTERM (service managers, `kill`).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler cannot fail at start");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
