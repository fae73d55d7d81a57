//! The file's shape: its sections and keys (Plug-N-Meet's names where they apply), and the
//! default of every key. A key left out takes the value of its section's `Default`; the checks
//! and the conversion into the server's types are in the sibling modules.

use serde::Deserialize;

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

/// A key that takes one value or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values, trimmed, empty ones left out; one string is split at commas.
    pub(super) fn values(&self) -> Vec<&str> {
        let raw: Vec<&str> = match self {
            OneOrMany::One(s) => s.split(',').collect(),
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        };
        raw.into_iter()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
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
pub(super) const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

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
    /// Keep a plain room's uploaded files after its session (served at
    /// `/download/uploadedFile/<sid>/<file_id>`, as Plug-N-Meet serves them).
    pub(crate) keep_forever: bool,
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
