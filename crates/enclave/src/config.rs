//! Configuration file and environment: Plug-N-Meet's section and key names where they apply.
//!
//! Layers, later wins: embedded defaults, the YAML file (if any), then environment variables
//! named `ENCLAVE_<SECTION>__<KEY>` (for example `ENCLAVE_CLIENT__PORT=8080`). The result is
//! validated once; an error names the key.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde::Deserialize;

use enclave_server::config::{IpNet, LivekitConfig, PrometheusConfig, ServerConfig, WebhookConfig};
use enclave_server::config::{MediaAddr, MediaConfig, TurnCredentials, TurnProtocol, TurnServer};

/// The file's shape. Unknown keys are refused so that a typo is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct FileConfig {
    pub(crate) client: Client,
    pub(crate) livekit_info: LivekitInfo,
    pub(crate) database: Database,
    pub(crate) room_default_settings: RoomDefaults,
    pub(crate) upload_file_settings: UploadSettings,
    pub(crate) recorder_info: RecorderInfo,
    pub(crate) artifacts_settings: ArtifactsSettings,
    pub(crate) log_settings: LogSettings,
    pub(crate) rtc: Rtc,
}

/// The embedded SFU's network settings (LiveKit's `rtc` section names).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Rtc {
    pub(crate) enable: bool,
    /// The one UDP port all media uses.
    pub(crate) udp_port: u16,
    /// ICE over TCP, for clients whose networks block UDP (LiveKit's port); 0 turns it off.
    pub(crate) tcp_port: u16,
    /// The addresses clients send media to: one, or a list. Empty: every address of the
    /// host's interfaces (loopback only when there is no other).
    pub(crate) node_ip: OneOrMany,
    /// Allocate simulcast layers within each subscriber's bandwidth estimate (TWCC).
    pub(crate) bandwidth_estimation: bool,
    /// TURN servers handed to every client (coturn and the like).
    pub(crate) turn_servers: Vec<TurnServerEntry>,
    /// Learn the public address from STUN at start and advertise it (behind 1:1 NAT).
    pub(crate) use_external_ip: bool,
    /// STUN servers (`host:port`) for `use_external_ip`.
    pub(crate) stun_servers: Vec<String>,
}

impl Default for Rtc {
    fn default() -> Self {
        Self {
            enable: true,
            udp_port: 7882,
            tcp_port: 7881,
            node_ip: OneOrMany::One(String::new()),
            bandwidth_estimation: true,
            turn_servers: Vec::new(),
            use_external_ip: false,
            stun_servers: Vec::new(),
        }
    }
}

/// Asked for the public address when `rtc.use_external_ip` is on and no `rtc.stun_servers`
/// are given (LiveKit's defaults).
const DEFAULT_STUN_SERVERS: [&str; 2] = ["stun.l.google.com:19302", "stun1.l.google.com:19302"];

/// A key that takes one value or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn values(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect(),
            OneOrMany::Many(v) => v
                .iter()
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .collect(),
        }
    }
}

/// `rtc.turn_servers` entry: LiveKit's keys (`host`, `port`, `protocol`, `username`,
/// `credential`), plus `secret` and `ttl` for TURN REST credentials (coturn's
/// `use-auth-secret`), which are better: each client gets its own, and they expire.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TurnServerEntry {
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    /// `udp`, `tcp` or `tls`.
    #[serde(default)]
    pub(crate) protocol: String,
    #[serde(default)]
    pub(crate) username: String,
    #[serde(default)]
    pub(crate) credential: String,
    #[serde(default)]
    pub(crate) secret: String,
    /// How long a client's credentials stay valid (`24h` by default).
    #[serde(default)]
    pub(crate) ttl: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Client {
    pub(crate) port: u16,
    pub(crate) bind: String,
    pub(crate) api_key: Option<String>,
    pub(crate) secret: Option<String>,
    pub(crate) token_validity: String,
    pub(crate) webhook_conf: WebhookConf,
    pub(crate) prometheus: Prometheus,
    pub(crate) max_body_bytes: usize,
    pub(crate) limits: Limits,
    /// CSP `frame-ancestors` sources: who may embed the web client (an LMS's origin).
    pub(crate) frame_ancestors: Vec<String>,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` and
    /// `X-Forwarded-Proto` are believed: one value, a comma-separated string or a list.
    pub(crate) trusted_proxies: OneOrMany,
    pub(crate) tls: Tls,
}

/// `client.tls`: HTTPS on the API port, beside plain HTTP.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Tls {
    /// On by default: browsers on other machines need HTTPS for camera, microphone and E2EE.
    pub(crate) enable: bool,
    /// PEM certificate chain and key; both empty: a certificate from the local authority.
    pub(crate) cert_file: String,
    pub(crate) key_file: String,
    /// Where the local certificate authority is kept (relative: under the data directory).
    pub(crate) local_ca_dir: String,
    /// A second port that redirects plain HTTP to HTTPS; 0: none.
    pub(crate) http_redirect_port: u16,
    /// Serve plain HTTP on the API port to other machines too (off: redirect them to HTTPS).
    pub(crate) plain_http: bool,
    /// A certificate from an ACME CA (Let's Encrypt) for a public host name.
    pub(crate) acme: Acme,
}

/// `client.tls.acme`: on when `domains` is not empty.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Acme {
    /// Public host names that resolve to this server (port 443 must reach client.port).
    pub(crate) domains: Vec<String>,
    /// Contact e-mail addresses for the account (`mailto:` may be left out).
    pub(crate) contact: Vec<String>,
    /// The CA's directory URL.
    pub(crate) directory_url: String,
    /// A PEM root for the directory's own HTTPS (a private or test CA); empty: the system's.
    pub(crate) directory_ca_file: String,
    /// Where the account and certificate are kept (relative: under the data directory).
    pub(crate) dir: String,
    /// Renew when fewer days than this are left.
    pub(crate) renew_days_before: u32,
    /// How often the certificate is checked, in seconds.
    pub(crate) check_interval_secs: u64,
}

/// Let's Encrypt's production directory.
const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

impl Default for Acme {
    fn default() -> Self {
        Self {
            domains: Vec::new(),
            contact: Vec::new(),
            directory_url: LETS_ENCRYPT.into(),
            directory_ca_file: String::new(),
            dir: "acme".into(),
            renew_days_before: 30,
            check_interval_secs: 12 * 3600,
        }
    }
}

impl Default for Tls {
    fn default() -> Self {
        Self {
            enable: true,
            cert_file: String::new(),
            key_file: String::new(),
            local_ca_dir: "tls".into(),
            http_redirect_port: 0,
            plain_http: true,
            acme: Acme::default(),
        }
    }
}

/// `client.limits`: what one client may hold or try.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Limits {
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_ip: usize,
    pub(crate) header_read_timeout: String,
    pub(crate) body_read_timeout: String,
    /// Failed credentials (API signatures, tokens) per address per minute; 0 = no limit.
    pub(crate) failed_credentials_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        let d = enclave_server::config::ConnLimits::default();
        Self {
            max_connections: d.max_connections,
            max_connections_per_ip: d.max_connections_per_ip,
            header_read_timeout: "10s".into(),
            body_read_timeout: "30s".into(),
            failed_credentials_per_minute: enclave_server::config::FailureBudget::default()
                .max_failures,
        }
    }
}

impl Default for Client {
    fn default() -> Self {
        Self {
            port: 8080,
            bind: "0.0.0.0".into(),
            api_key: None,
            secret: None,
            token_validity: "10m".into(),
            webhook_conf: WebhookConf::default(),
            prometheus: Prometheus::default(),
            max_body_bytes: 1024 * 1024,
            limits: Limits::default(),
            frame_ancestors: vec!["'self'".into()],
            trusted_proxies: OneOrMany::Many(Vec::new()),
            tls: Tls::default(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct WebhookConf {
    pub(crate) enable: bool,
    pub(crate) url: String,
    pub(crate) enable_for_per_meeting: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Prometheus {
    pub(crate) enable: bool,
    pub(crate) metrics_path: String,
    /// Serve metrics on this address instead of the API's port.
    pub(crate) listen: String,
    /// Require `Authorization: Bearer <token>`.
    pub(crate) token: String,
}

impl Default for Prometheus {
    fn default() -> Self {
        Self {
            enable: true,
            metrics_path: "/metrics".into(),
            listen: String::new(),
            token: String::new(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LivekitInfo {
    pub(crate) host: String,
    pub(crate) api_key: Option<String>,
    pub(crate) secret: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Database {
    /// SQLite file; relative paths are under `data_dir`.
    pub(crate) path: String,
    pub(crate) data_dir: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RoomDefaults {
    pub(crate) max_duration: u64,
    pub(crate) max_participants: u32,
    pub(crate) max_num_breakout_rooms: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct UploadSettings {
    pub(crate) max_size: u64,
    pub(crate) max_size_whiteboard_file: u64,
    pub(crate) allowed_types: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RecorderInfo {
    pub(crate) recording_files_path: String,
    pub(crate) token_validity: String,
    pub(crate) enable_del_recording_backup: bool,
    pub(crate) del_recording_backup_path: String,
    /// RTMP broadcasts to loopback, private and link-local addresses (off by default).
    pub(crate) rtmp_allow_private_targets: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ArtifactsSettings {
    pub(crate) storage_path: String,
    pub(crate) token_validity: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogSettings {
    pub(crate) log_level: String,
}

/// Reads the file (if given) and applies environment overrides from `env`.
pub(crate) fn load(
    path: Option<&Path>,
    env: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<FileConfig> {
    let mut doc: serde_yaml_ng::Value = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read config file {}", p.display()))?;
            serde_yaml_ng::from_str(&text)
                .with_context(|| format!("config file {} is not valid YAML", p.display()))?
        }
        None => serde_yaml_ng::Value::Mapping(Default::default()),
    };
    if doc.is_null() {
        doc = serde_yaml_ng::Value::Mapping(Default::default());
    }
    for (name, value) in env {
        // Only ENCLAVE_<SECTION>__<KEY> names are overrides; others (ENCLAVE_CONFIG, or a
        // tool's own ENCLAVE_BIN) are not ours to interpret.
        let Some(rest) = name.strip_prefix("ENCLAVE_").filter(|r| r.contains("__")) else {
            continue;
        };
        let keys: Vec<String> = rest.split("__").map(|k| k.to_ascii_lowercase()).collect();
        set_path(&mut doc, &keys, &value)
            .with_context(|| format!("environment variable {name}"))?;
    }
    serde_yaml_ng::from_value(doc).map_err(|e| anyhow!("invalid configuration: {e}"))
}

/// Sets `keys` in the document to `raw`, parsed as a YAML scalar so that numbers and booleans
/// keep their types.
fn set_path(doc: &mut serde_yaml_ng::Value, keys: &[String], raw: &str) -> anyhow::Result<()> {
    let (last, parents) = keys.split_last().ok_or_else(|| anyhow!("empty key"))?;
    let mut node = doc;
    for k in parents {
        let map = node
            .as_mapping_mut()
            .ok_or_else(|| anyhow!("'{k}' is not a section"))?;
        node = map
            .entry(serde_yaml_ng::Value::String(k.clone()))
            .or_insert_with(|| serde_yaml_ng::Value::Mapping(Default::default()));
    }
    let map = node
        .as_mapping_mut()
        .ok_or_else(|| anyhow!("'{last}' has no section"))?;
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(raw)
        .unwrap_or_else(|_| serde_yaml_ng::Value::String(raw.to_owned()));
    map.insert(serde_yaml_ng::Value::String(last.clone()), value);
    Ok(())
}

/// Parses a Go-style duration (`10m`, `1h30m`, `90s`).
fn duration(key: &str, s: &str, default: Duration) -> anyhow::Result<Duration> {
    if s.is_empty() {
        return Ok(default);
    }
    humantime::parse_duration(s).map_err(|e| anyhow!("{key}: '{s}' is not a duration ({e})"))
}

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

/// Validates the file configuration into the server's.
pub(crate) fn validate(f: FileConfig) -> anyhow::Result<(ServerConfig, KeySource, String)> {
    let data_dir = PathBuf::from(if f.database.data_dir.is_empty() {
        "data"
    } else {
        &f.database.data_dir
    });
    let under = |p: &str, default: &str| -> PathBuf {
        let p = if p.is_empty() { default } else { p };
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            data_dir.join(p)
        }
    };
    let ip: IpAddr = f
        .client
        .bind
        .parse()
        .map_err(|_| anyhow!("client.bind: '{}' is not an IP address", f.client.bind))?;
    if f.client.port == 0 {
        bail!("client.port: must be between 1 and 65535");
    }
    let (api_key, secret, livekit_key, livekit_secret, source) =
        match (&f.client.api_key, &f.client.secret) {
            (Some(k), Some(s)) => {
                let lk = f.livekit_info.api_key.clone().unwrap_or_else(|| k.clone());
                // Unset: the server derives the LiveKit key from client.secret.
                let ls = f.livekit_info.secret.clone();
                (k.clone(), s.clone(), lk, ls, KeySource::Configured)
            }
            (Some(_), None) => bail!("client.secret: required when client.api_key is set"),
            (None, Some(_)) => bail!("client.api_key: required when client.secret is set"),
            (None, None) => {
                let path = data_dir.join("credentials.json");
                if path.exists() {
                    let g: Generated = serde_json::from_slice(&std::fs::read(&path)?)
                        .with_context(|| format!("{} is corrupt", path.display()))?;
                    (
                        g.api_key,
                        g.secret,
                        g.livekit_api_key,
                        Some(g.livekit_secret),
                        KeySource::Loaded(path),
                    )
                } else {
                    let g = Generated {
                        api_key: format!("API{}", random_token(12)),
                        secret: random_token(40),
                        livekit_api_key: format!("LK{}", random_token(12)),
                        livekit_secret: random_token(40),
                    };
                    std::fs::create_dir_all(&data_dir).with_context(|| {
                        format!("cannot create data directory {}", data_dir.display())
                    })?;
                    write_private(&path, &serde_json::to_vec_pretty(&g)?)?;
                    (
                        g.api_key,
                        g.secret,
                        g.livekit_api_key,
                        Some(g.livekit_secret),
                        KeySource::Generated(path),
                    )
                }
            }
        };
    if api_key.is_empty() {
        bail!("client.api_key: must not be empty");
    }
    if secret.len() < 16 {
        bail!("client.secret: must be at least 16 characters (it signs every token)");
    }
    if let Some(ls) = &livekit_secret {
        if ls.len() < 32 {
            bail!("livekit_info.secret: must be at least 32 characters");
        }
        if *ls == secret {
            bail!(
                "livekit_info.secret: must differ from client.secret (one secret never signs \
                 two kinds of thing); leave it unset to have one derived from client.secret"
            );
        }
    }
    let webhooks = WebhookConfig {
        enable: f.client.webhook_conf.enable,
        url: Some(f.client.webhook_conf.url.clone()).filter(|u| !u.is_empty()),
        enable_for_per_meeting: f.client.webhook_conf.enable_for_per_meeting,
        retry_base: Duration::from_millis(500),
        max_retries: 2,
    };
    if webhooks.enable && webhooks.url.is_none() && !webhooks.enable_for_per_meeting {
        bail!("client.webhook_conf.url: required when webhooks are enabled (or set enable_for_per_meeting)");
    }
    if let Some(u) = &webhooks.url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            bail!("client.webhook_conf.url: '{u}' is not an http(s) URL");
        }
    }
    if !f.client.prometheus.metrics_path.starts_with('/') {
        bail!("client.prometheus.metrics_path: must start with '/'");
    }
    let mut policy = enclave_proto::room::RoomPolicy {
        max_participants: f.room_default_settings.max_participants,
        max_duration_minutes: f.room_default_settings.max_duration,
        ..Default::default()
    };
    if f.room_default_settings.max_num_breakout_rooms > 0 {
        policy.max_num_breakout_rooms = f.room_default_settings.max_num_breakout_rooms.min(16);
    }
    if f.upload_file_settings.max_size > 0 {
        policy.upload_max_size_mb = f.upload_file_settings.max_size;
    }
    if f.upload_file_settings.max_size_whiteboard_file > 0 {
        policy.whiteboard_max_size_mb = f.upload_file_settings.max_size_whiteboard_file;
    }
    if policy.whiteboard_max_size_mb > policy.upload_max_size_mb {
        bail!("upload_file_settings.max_size_whiteboard_file: must not exceed upload_file_settings.max_size");
    }
    if !f.upload_file_settings.allowed_types.is_empty() {
        policy.allowed_file_types = f.upload_file_settings.allowed_types.clone();
    }
    let listen = SocketAddr::new(ip, f.client.port);
    // Empty: clients use the origin they loaded the web client from.
    let host = f.livekit_info.host.clone();
    let config = ServerConfig {
        listen,
        api_key,
        api_secret: secret,
        token_validity: duration(
            "client.token_validity",
            &f.client.token_validity,
            Duration::from_secs(600),
        )?,
        webhooks,
        livekit: LivekitConfig {
            host,
            api_key: livekit_key,
            secret: livekit_secret,
        },
        database_path: under(&f.database.path, "enclave.sqlite"),
        recording_files_path: under(&f.recorder_info.recording_files_path, "recordings"),
        recording_backup_path: f.recorder_info.enable_del_recording_backup.then(|| {
            under(
                &f.recorder_info.del_recording_backup_path,
                "recordings-deleted",
            )
        }),
        artifacts_path: under(&f.artifacts_settings.storage_path, "artifacts"),
        download_token_validity: duration(
            "recorder_info.token_validity",
            &f.recorder_info.token_validity,
            Duration::from_secs(600),
        )?,
        rtmp_allow_private_targets: f.recorder_info.rtmp_allow_private_targets,
        room_policy: policy,
        max_body_bytes: f.client.max_body_bytes.max(1024),
        conn_limits: conn_limits(&f.client.limits)?,
        failure_budget: enclave_server::config::FailureBudget {
            max_failures: f.client.limits.failed_credentials_per_minute,
            window: Duration::from_secs(60),
        },
        prometheus: PrometheusConfig {
            enable: f.client.prometheus.enable,
            metrics_path: f.client.prometheus.metrics_path.clone(),
            listen: match f.client.prometheus.listen.as_str() {
                "" => None,
                a => Some(a.parse().map_err(|_| {
                    anyhow!("client.prometheus.listen: '{a}' is not an address:port")
                })?),
            },
            token: Some(f.client.prometheus.token.clone()).filter(|t| !t.is_empty()),
        },
        frame_ancestors: frame_ancestors(&f.client.frame_ancestors)?,
        trusted_proxies: trusted_proxies(&f.client.trusted_proxies)?,
        media: media_config(&f.rtc, ip, &enclave_server::media::addrs::detect())?,
        tls: tls_config(&f.client.tls, f.client.port, &under)?,
    };
    let level = if f.log_settings.log_level.is_empty() {
        "info".to_owned()
    } else {
        f.log_settings.log_level.to_ascii_lowercase()
    };
    Ok((config, source, level))
}

/// CSP source expressions only: a keyword, a scheme or an origin (no `;` or `,` that would
/// end the directive early).
fn tls_config(
    t: &Tls,
    port: u16,
    under: &dyn Fn(&str, &str) -> PathBuf,
) -> anyhow::Result<Option<enclave_server::config::TlsConfig>> {
    use enclave_server::config::{TlsCertificate, TlsConfig};
    if !t.enable {
        return Ok(None);
    }
    let certificate = match (t.cert_file.is_empty(), t.key_file.is_empty()) {
        _ if !t.acme.domains.is_empty() => {
            if !t.cert_file.is_empty() || !t.key_file.is_empty() {
                bail!("client.tls.acme.domains: set together with client.tls.cert_file/key_file; choose one source of certificates");
            }
            TlsCertificate::Acme(acme_config(&t.acme, under)?)
        }
        (true, true) => TlsCertificate::LocalCa {
            dir: under(&t.local_ca_dir, "tls"),
        },
        (false, false) => TlsCertificate::Files {
            cert: under(&t.cert_file, ""),
            key: under(&t.key_file, ""),
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

/// `client.trusted_proxies`: addresses (`10.0.0.2`, `::1`) or CIDR ranges (`10.0.0.0/8`).
fn trusted_proxies(list: &OneOrMany) -> anyhow::Result<Vec<IpNet>> {
    let mut nets = Vec::new();
    for s in list.values() {
        let net = match (s.parse::<IpNet>(), s.parse::<IpAddr>()) {
            (Ok(net), _) => net.trunc(),
            (_, Ok(ip)) => IpNet::from(ip.to_canonical()),
            _ => bail!(
                "client.trusted_proxies: '{s}' is not an IP address or CIDR range (e.g. 127.0.0.1 or 10.0.0.0/8)"
            ),
        };
        if net.prefix_len() == 0 {
            bail!("client.trusted_proxies: '{s}' would trust every address, so any client could choose the address it is counted under; list the proxies' addresses");
        }
        if !nets.contains(&net) {
            nets.push(net);
        }
    }
    Ok(nets)
}

fn acme_config(
    a: &Acme,
    under: &dyn Fn(&str, &str) -> PathBuf,
) -> anyhow::Result<enclave_server::config::AcmeConfig> {
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
        .collect::<anyhow::Result<Vec<_>>>()?;
    if !a.directory_url.starts_with("https://") {
        bail!(
            "client.tls.acme.directory_url: '{}' is not an https:// URL",
            a.directory_url
        );
    }
    if a.renew_days_before == 0 {
        bail!("client.tls.acme.renew_days_before: must be at least 1");
    }
    if a.check_interval_secs == 0 {
        bail!("client.tls.acme.check_interval_secs: must be at least 1");
    }
    Ok(enclave_server::config::AcmeConfig {
        domains,
        contact,
        directory: a.directory_url.clone(),
        directory_ca: (!a.directory_ca_file.is_empty()).then(|| under(&a.directory_ca_file, "")),
        dir: under(&a.dir, "acme"),
        renew_before: std::time::Duration::from_secs(u64::from(a.renew_days_before) * 86400),
        check_every: std::time::Duration::from_secs(a.check_interval_secs),
    })
}

fn frame_ancestors(list: &[String]) -> anyhow::Result<Vec<String>> {
    for s in list {
        let ok = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_graphic() && c != ';' && c != ',');
        if !ok {
            bail!("client.frame_ancestors: '{s}' is not a CSP source (e.g. https://lms.example.org or 'self')");
        }
    }
    Ok(if list.is_empty() {
        vec!["'none'".into()]
    } else {
        list.to_vec()
    })
}

fn conn_limits(l: &Limits) -> anyhow::Result<enclave_server::config::ConnLimits> {
    let d = enclave_server::config::ConnLimits::default();
    let limits = enclave_server::config::ConnLimits {
        max_connections: l.max_connections,
        max_connections_per_ip: l.max_connections_per_ip,
        header_read_timeout: duration(
            "client.limits.header_read_timeout",
            &l.header_read_timeout,
            d.header_read_timeout,
        )?,
        body_read_timeout: duration(
            "client.limits.body_read_timeout",
            &l.body_read_timeout,
            d.body_read_timeout,
        )?,
    };
    if limits.max_connections == 0 {
        bail!("client.limits.max_connections: must be at least 1");
    }
    if limits.max_connections_per_ip == 0 {
        bail!("client.limits.max_connections_per_ip: must be at least 1");
    }
    for (key, d) in [
        ("header_read_timeout", limits.header_read_timeout),
        ("body_read_timeout", limits.body_read_timeout),
    ] {
        if d.is_zero() || d > Duration::from_secs(600) {
            bail!("client.limits.{key}: must be between 1 s and 10 min");
        }
    }
    Ok(limits)
}

/// The media settings. `local` is the host's usable interface addresses (see
/// `enclave_server::media::addrs`), passed in so that validation stays a pure function.
fn media_config(rtc: &Rtc, bind: IpAddr, local: &[IpAddr]) -> anyhow::Result<Option<MediaConfig>> {
    if !rtc.enable {
        return Ok(None);
    }
    let mut configured = Vec::new();
    for s in rtc.node_ip.values() {
        let ip: IpAddr = s
            .parse()
            .map_err(|_| anyhow!("rtc.node_ip: '{s}' is not an IP address"))?;
        if ip.is_unspecified() || ip.is_multicast() {
            bail!("rtc.node_ip: must be an address clients can reach, not {ip}");
        }
        if !configured.contains(&ip) {
            configured.push(ip);
        }
    }
    let addresses: Vec<MediaAddr> = if !configured.is_empty() {
        // A configured address on one of our interfaces is also where replies leave from; one
        // that is not (the public side of a 1:1 NAT) leaves the choice to the kernel.
        configured
            .into_iter()
            .map(|ip| MediaAddr {
                advertised: ip,
                local: (local.contains(&ip) || ip.is_loopback()).then_some(ip),
            })
            .collect()
    } else if !bind.is_unspecified() {
        vec![MediaAddr {
            advertised: bind,
            local: Some(bind),
        }]
    } else if local.is_empty() {
        bail!("rtc.node_ip: no network address found on this host; set one");
    } else {
        local
            .iter()
            .map(|&ip| MediaAddr {
                advertised: ip,
                local: Some(ip),
            })
            .collect()
    };
    let mut turn_servers = Vec::new();
    for (i, t) in rtc.turn_servers.iter().enumerate() {
        turn_servers.push(turn_server(i, t)?);
    }
    Ok(Some(MediaConfig {
        bind_ip: bind,
        udp_port: rtc.udp_port,
        tcp_port: (rtc.tcp_port != 0).then_some(rtc.tcp_port),
        addresses,
        bandwidth_estimation: rtc.bandwidth_estimation,
        turn_servers,
        external_ip_stun: match (rtc.use_external_ip, rtc.stun_servers.is_empty()) {
            (false, _) => Vec::new(),
            (true, true) => DEFAULT_STUN_SERVERS.map(String::from).to_vec(),
            (true, false) => rtc.stun_servers.clone(),
        },
    }))
}

fn turn_server(i: usize, t: &TurnServerEntry) -> anyhow::Result<TurnServer> {
    let key = format!("rtc.turn_servers[{i}]");
    if t.host.is_empty() || t.host.contains(['/', '?', ' ']) {
        bail!("{key}.host: '{}' is not a host name or address", t.host);
    }
    let protocol = match t.protocol.to_ascii_lowercase().as_str() {
        "" | "udp" => TurnProtocol::Udp,
        "tcp" => TurnProtocol::Tcp,
        "tls" => TurnProtocol::Tls,
        other => bail!("{key}.protocol: '{other}' is not udp, tcp or tls"),
    };
    let port = t.port.unwrap_or(match protocol {
        TurnProtocol::Tls => 443,
        _ => 3478,
    });
    let credentials = match (t.secret.is_empty(), t.username.is_empty() || t.credential.is_empty()) {
        (false, true) => TurnCredentials::Secret {
            secret: t.secret.clone(),
            ttl: duration(&format!("{key}.ttl"), &t.ttl, Duration::from_secs(24 * 3600))?,
        },
        (true, false) => TurnCredentials::Static {
            username: t.username.clone(),
            credential: t.credential.clone(),
        },
        (false, false) => bail!("{key}: give either secret or username and credential, not both"),
        (true, true) => bail!("{key}: needs a secret (TURN REST, as coturn's use-auth-secret) or a username and credential"),
    };
    Ok(TurnServer {
        host: t.host.clone(),
        port,
        protocol,
        credentials,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn file_values_and_env_overrides_apply() {
        let (dir, p) = write("client:\n  port: 9000\n  api_key: k\n  secret: 0123456789abcdef0123456789abcdef\n  token_validity: 1h30m\n");
        let f = load(
            Some(&p),
            env(&[
                ("ENCLAVE_CLIENT__PORT", "9100"),
                ("ENCLAVE_DATABASE__DATA_DIR", dir.path().to_str().unwrap()),
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
        use enclave_server::config::TlsCertificate;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let f = load(None, env(&[("ENCLAVE_DATABASE__DATA_DIR", data)])).unwrap();
        let tls = validate(f).unwrap().0.tls.unwrap();
        assert_eq!(
            tls.certificate,
            TlsCertificate::LocalCa {
                dir: dir.path().join("tls")
            }
        );
        assert!(tls.plain_http);
        assert_eq!(tls.redirect_port, None);

        let s = "client:\n  api_key: k\n  secret: 0123456789abcdef0123456789abcdef\n  tls:\n    cert_file: /etc/c.pem\n    key_file: k.pem\n    http_redirect_port: 80\n";
        let (_d, p) = write(s);
        let f = load(Some(&p), env(&[("ENCLAVE_DATABASE__DATA_DIR", data)])).unwrap();
        let tls = validate(f).unwrap().0.tls.unwrap();
        assert_eq!(
            tls.certificate,
            TlsCertificate::Files {
                cert: "/etc/c.pem".into(),
                key: dir.path().join("k.pem"),
            }
        );
        assert_eq!(tls.redirect_port, Some(80));

        let f = load(
            None,
            env(&[
                ("ENCLAVE_CLIENT__TLS__ENABLE", "false"),
                ("ENCLAVE_DATABASE__DATA_DIR", data),
            ]),
        )
        .unwrap();
        assert!(validate(f).unwrap().0.tls.is_none());
    }

    #[test]
    fn acme_names_contact_and_state_directory_are_read() {
        use enclave_server::config::TlsCertificate;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let s = "client:\n  api_key: k\n  secret: 0123456789abcdef0123456789abcdef\n  port: 443\n  tls:\n    acme:\n      domains: [Meet.Example.org.]\n      contact: [ops@example.org]\n";
        let (_d, p) = write(s);
        let f = load(Some(&p), env(&[("ENCLAVE_DATABASE__DATA_DIR", data)])).unwrap();
        let TlsCertificate::Acme(a) = validate(f).unwrap().0.tls.unwrap().certificate else {
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
            ("  tls:\n    cert_file: c.pem\n", "client.tls.key_file"),
            ("  tls:\n    key_file: k.pem\n", "client.tls.cert_file"),
            (
                "  port: 8443\n  tls:\n    http_redirect_port: 8443\n",
                "client.tls.http_redirect_port",
            ),
        ] {
            let (_d, p) = write(&format!(
                "client:\n  api_key: k\n  secret: 0123456789abcdef0123456789abcdef\n{yaml}"
            ));
            let err = validate(load(Some(&p), env(&[])).unwrap()).unwrap_err();
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn errors_name_the_key() {
        let (_d, p) = write("client:\n  prot: 1\n");
        assert!(load(Some(&p), env(&[]))
            .unwrap_err()
            .to_string()
            .contains("prot"));
        let (_d, p) = write("client:\n  api_key: k\n");
        assert!(validate(load(Some(&p), env(&[])).unwrap())
            .unwrap_err()
            .to_string()
            .contains("client.secret"));
        let (_d, p) = write("client:\n  api_key: k\n  secret: 0123456789abcdef0123456789abcdef\n  token_validity: soon\n");
        assert!(validate(load(Some(&p), env(&[])).unwrap())
            .unwrap_err()
            .to_string()
            .contains("client.token_validity"));
        let (_d, p) = write("client:\n  api_key: k\n  secret: 0123456789abcdef0123456789abcdef\n  webhook_conf:\n    enable: true\n    url: ftp://x\n");
        assert!(validate(load(Some(&p), env(&[])).unwrap())
            .unwrap_err()
            .to_string()
            .contains("client.webhook_conf.url"));
        assert!(load(None, env(&[("ENCLAVE_CLIENT__PORT", "notaport")]))
            .unwrap_err()
            .to_string()
            .contains("port"));
        let base = "client:\n  api_key: k\n  secret: 0123456789abcdef0123456789abcdef\n";
        for (extra, key) in [
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
            let text = if let Some(rest) = extra.strip_prefix("client:\n") {
                format!("{base}{rest}")
            } else {
                format!("{base}{extra}")
            };
            let (_d, p) = write(&text);
            let err = validate(load(Some(&p), env(&[])).unwrap())
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn trusted_proxies_take_addresses_and_ranges_from_the_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let f = load(None, env(&[("ENCLAVE_DATABASE__DATA_DIR", data)])).unwrap();
        assert!(validate(f).unwrap().0.trusted_proxies.is_empty());

        let s = "client:\n  api_key: k\n  secret: 0123456789abcdef0123456789abcdef\n  trusted_proxies: [127.0.0.1, \"::1\", 10.1.2.3/8, 127.0.0.1]\n";
        let (_d, p) = write(s);
        let f = load(Some(&p), env(&[("ENCLAVE_DATABASE__DATA_DIR", data)])).unwrap();
        let got: Vec<String> = validate(f)
            .unwrap()
            .0
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["127.0.0.1/32", "::1/128", "10.0.0.0/8"]);

        let f = load(
            None,
            env(&[
                ("ENCLAVE_CLIENT__TRUSTED_PROXIES", "192.0.2.10, fd00::/64"),
                ("ENCLAVE_DATABASE__DATA_DIR", data),
            ]),
        )
        .unwrap();
        let got: Vec<String> = validate(f)
            .unwrap()
            .0
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["192.0.2.10/32", "fd00::/64"]);
    }

    #[test]
    fn media_is_offered_on_every_interface_address_unless_node_ip_says_otherwise() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let any = ip("0.0.0.0");
        let host = [ip("10.0.0.5"), ip("192.168.1.2")];
        let m = media_config(&Rtc::default(), any, &host).unwrap().unwrap();
        assert_eq!(
            m.addresses,
            host.map(|a| MediaAddr {
                advertised: a,
                local: Some(a)
            })
        );
        assert_eq!((m.udp_port, m.tcp_port), (7882, Some(7881)));
        assert!(m.external_ip_stun.is_empty() && m.turn_servers.is_empty());

        // A configured list: an address of ours replies from itself; one that is not (a
        // NAT's public side) leaves the source to the kernel.
        let rtc = Rtc {
            node_ip: OneOrMany::Many(vec!["203.0.113.7".into(), "10.0.0.5".into()]),
            tcp_port: 0,
            use_external_ip: true,
            ..Rtc::default()
        };
        let m = media_config(&rtc, any, &host).unwrap().unwrap();
        assert_eq!(
            m.addresses,
            [
                MediaAddr {
                    advertised: ip("203.0.113.7"),
                    local: None
                },
                MediaAddr {
                    advertised: ip("10.0.0.5"),
                    local: Some(ip("10.0.0.5"))
                }
            ]
        );
        assert_eq!(m.tcp_port, None);
        assert_eq!(m.external_ip_stun, DEFAULT_STUN_SERVERS.map(String::from));

        // A specific bind address is the one advertised.
        let lo = ip("127.0.0.1");
        let m = media_config(&Rtc::default(), lo, &host).unwrap().unwrap();
        assert_eq!(
            m.addresses.iter().map(|a| a.advertised).collect::<Vec<_>>(),
            [lo]
        );

        // Nothing found and nothing configured: say what to set.
        let err = media_config(&Rtc::default(), any, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("rtc.node_ip"), "{err}");
    }

    #[test]
    fn turn_servers_take_a_shared_secret_or_fixed_credentials() {
        let entry = |yaml: &str| -> TurnServerEntry { serde_yaml_ng::from_str(yaml).unwrap() };
        let t = turn_server(
            0,
            &entry("{host: turn.example.org, protocol: tls, secret: s, ttl: 10m}"),
        )
        .unwrap();
        assert_eq!((t.port, t.protocol), (443, TurnProtocol::Tls));
        assert_eq!(
            t.credentials,
            TurnCredentials::Secret {
                secret: "s".into(),
                ttl: Duration::from_secs(600)
            }
        );
        let t = turn_server(0, &entry("{host: t, username: u, credential: c}")).unwrap();
        assert_eq!((t.port, t.protocol), (3478, TurnProtocol::Udp));
        assert!(matches!(t.credentials, TurnCredentials::Static { .. }));
    }

    #[test]
    fn no_configuration_generates_and_then_reloads_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let (a, src, _) =
            validate(load(None, env(&[("ENCLAVE_DATABASE__DATA_DIR", d)])).unwrap()).unwrap();
        assert!(matches!(src, KeySource::Generated(_)));
        let (b, src, _) =
            validate(load(None, env(&[("ENCLAVE_DATABASE__DATA_DIR", d)])).unwrap()).unwrap();
        assert!(matches!(src, KeySource::Loaded(_)));
        assert_eq!(a.api_secret, b.api_secret);
        assert!(a.api_secret.len() >= 32);
    }

    #[test]
    fn the_sample_config_is_valid() {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.sample.yaml");
        let dir = tempfile::tempdir().unwrap();
        let f = load(
            Some(&sample),
            env(&[("ENCLAVE_DATABASE__DATA_DIR", dir.path().to_str().unwrap())]),
        )
        .unwrap();
        validate(f).unwrap();
    }
}
