//! The server's configuration, built in code. Only the binary reads files and the environment;
//! it validates once and hands a [`ServerConfig`] to [`crate::Server::start`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub use ipnet::IpNet;

use enclave_proto::room::RoomPolicy;

/// Everything the server needs to run.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the HTTP API listens.
    pub listen: SocketAddr,
    /// `client.api_key`: identifies API callers; `iss` of every token we sign.
    pub api_key: String,
    /// `client.secret`: HMAC key of the API and of webhooks; the keys of the tokens the
    /// server signs for itself are derived from it (`auth::TokenKeys`).
    pub api_secret: String,
    /// `client.token_validity`: lifetime of join tokens.
    pub token_validity: Duration,
    /// Outbound webhooks.
    pub webhooks: WebhookConfig,
    /// The media server clients are sent to, and the key its access tokens are signed with.
    pub livekit: LivekitConfig,
    /// SQLite file holding history.
    pub database_path: PathBuf,
    /// Where finished recordings live (`recorder_info.recording_files_path`).
    pub recording_files_path: PathBuf,
    /// Where deleted recordings are moved instead of being removed
    /// (`recorder_info.enable_del_recording_backup` / `del_recording_backup_path`).
    pub recording_backup_path: Option<PathBuf>,
    /// Where artifacts live (`artifacts_settings.storage_path`).
    pub artifacts_path: PathBuf,
    /// Where files participants upload live while their session runs
    /// (`<uploads>/<session sid>/<file_id>/<index>`; the binary: `<data_dir>/uploads`).
    pub uploads_path: PathBuf,
    /// Keep a plain room's uploaded files after its session (`upload_file_settings.keep_forever`);
    /// an encrypted room's always go.
    pub keep_uploads: bool,
    /// Lifetime of download tokens.
    pub download_token_validity: Duration,
    /// Whether RTMP broadcasts may go to loopback, private and link-local addresses
    /// (`recorder_info.rtmp_allow_private_targets`; off: any admin could otherwise make the
    /// server connect into its own network).
    pub rtmp_allow_private_targets: bool,
    /// Defaults and caps applied to new rooms.
    pub room_policy: RoomPolicy,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Connection caps and read timeouts of the HTTP listener.
    pub conn_limits: ConnLimits,
    /// Failed credentials an address may present per window before it is answered 429.
    pub failure_budget: FailureBudget,
    /// `client.trusted_proxies`: reverse proxies whose `X-Forwarded-For` and
    /// `X-Forwarded-Proto` are believed (see `http::peer_ip`). Empty: the socket's peer is the
    /// client, and those headers are ignored.
    pub trusted_proxies: Vec<IpNet>,
    /// Prometheus exposition.
    pub prometheus: PrometheusConfig,
    /// Who may embed the web client in a frame (CSP `frame-ancestors` sources), e.g. an LMS's
    /// origin; `'self'` by default.
    pub frame_ancestors: Vec<String>,
    /// The embedded SFU; `None` runs the API alone.
    pub media: Option<MediaConfig>,
    /// HTTPS on the API port (beside plain HTTP); `None`: plain HTTP only.
    pub tls: Option<TlsConfig>,
}

/// `client.tls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// Where the certificate comes from.
    pub certificate: TlsCertificate,
    /// `client.tls.http_redirect_port`: a second port answering plain HTTP with a redirect to
    /// HTTPS on the API port (e.g. 80 when the API port is 443).
    pub redirect_port: Option<u16>,
    /// `client.tls.plain_http`: whether plain HTTP on the API port is served to other
    /// machines. Off, their requests are redirected to HTTPS; loopback is always served (local
    /// tools, a reverse proxy on the same host).
    pub plain_http: bool,
}

/// Where the HTTPS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsCertificate {
    /// PEM files (`client.tls.cert_file`, `key_file`), read again when they change.
    Files { cert: PathBuf, key: PathBuf },
    /// A certificate authority of the server's own, kept in `dir` (see `tls::local_ca`).
    LocalCa { dir: PathBuf },
    /// Ordered from an ACME certificate authority and renewed in place (see `tls::acme`).
    Acme(AcmeConfig),
}

/// `client.tls.acme`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeConfig {
    /// The host names the certificate is for (the first is the one the banner links to).
    pub domains: Vec<String>,
    /// Contact URLs for the account (`mailto:` addresses).
    pub contact: Vec<String>,
    /// The CA's directory URL (Let's Encrypt's production directory by default).
    pub directory: String,
    /// A PEM root that the directory's own HTTPS certificate chains to, for a private or test
    /// CA; `None`: the system's trust store.
    pub directory_ca: Option<PathBuf>,
    /// Where the account and the certificate are kept.
    pub dir: PathBuf,
    /// Order a new certificate when less than this is left.
    pub renew_before: Duration,
    /// How often the certificate is checked.
    pub check_every: Duration,
}

/// Connection caps and read timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Open connections at most (each is a file descriptor).
    pub max_connections: usize,
    /// Open connections from one IP address at most.
    pub max_connections_per_ip: usize,
    /// Time allowed for a request's headers, and for a kept-alive connection's next request.
    pub header_read_timeout: Duration,
    /// Time allowed to read a request body.
    pub body_read_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_ip: 512,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

/// How many failures an address may have in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureBudget {
    /// Failures allowed per window; 0 turns the budget off.
    pub max_failures: u32,
    pub window: Duration,
}

impl Default for FailureBudget {
    fn default() -> Self {
        Self {
            max_failures: 60,
            window: Duration::from_secs(60),
        }
    }
}

/// `client.webhook_conf`.
#[derive(Debug, Clone, Default)]
pub struct WebhookConfig {
    /// Whether any webhook is sent.
    pub enable: bool,
    /// The global receiver.
    pub url: Option<String>,
    /// Whether a room's own `webhook_url` also receives its events.
    pub enable_for_per_meeting: bool,
    /// Delay before the first retry; doubles on each further retry.
    pub retry_base: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
}

/// `livekit_info`.
#[derive(Debug, Clone)]
pub struct LivekitConfig {
    /// Media URL given to clients; empty means the server's own origin (`ws(s)://<host>`).
    pub host: String,
    /// Key of media access tokens.
    pub api_key: String,
    /// Secret of media access tokens when configured (`livekit_info.secret`), so that other
    /// LiveKit tooling can mint them; otherwise the server derives one from `client.secret`.
    pub secret: Option<String>,
}

/// `client.prometheus`.
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    /// Whether `/metrics` is served.
    pub enable: bool,
    /// The path.
    pub metrics_path: String,
    /// Serve metrics on this address only (a monitoring network), not on the API's port.
    pub listen: Option<SocketAddr>,
    /// Require `Authorization: Bearer <token>` for metrics.
    pub token: Option<String>,
}

impl ServerConfig {
    /// A configuration for tests and benchmarks: loopback on an ephemeral port, data under
    /// `dir`, the given credentials, webhooks off.
    pub fn for_tests(dir: &std::path::Path, api_key: &str, api_secret: &str) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_key: api_key.to_owned(),
            api_secret: api_secret.to_owned(),
            token_validity: Duration::from_secs(600),
            webhooks: WebhookConfig {
                retry_base: Duration::from_millis(200),
                max_retries: 2,
                ..WebhookConfig::default()
            },
            livekit: LivekitConfig {
                host: String::new(),
                api_key: "devkey".into(),
                secret: Some("devsecret-devsecret-devsecret-00".into()),
            },
            database_path: dir.join("enclave.sqlite"),
            recording_files_path: dir.join("recordings"),
            recording_backup_path: None,
            artifacts_path: dir.join("artifacts"),
            uploads_path: dir.join("uploads"),
            keep_uploads: false,
            download_token_validity: Duration::from_secs(600),
            rtmp_allow_private_targets: false,
            room_policy: RoomPolicy::default(),
            max_body_bytes: 1024 * 1024,
            conn_limits: ConnLimits::default(),
            failure_budget: FailureBudget::default(),
            trusted_proxies: Vec::new(),
            prometheus: PrometheusConfig {
                enable: true,
                metrics_path: "/metrics".into(),
                listen: None,
                token: None,
            },
            frame_ancestors: vec!["'self'".into()],
            media: None,
            tls: None,
        }
    }
}

/// Media settings.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Where the media sockets bind. The unspecified IPv4 address binds IPv4 and, when an
    /// IPv6 address is advertised, IPv6 beside it.
    pub bind_ip: IpAddr,
    /// `rtc.udp_port`: the one UDP port all media uses (0: any free port, for tests).
    pub udp_port: u16,
    /// `rtc.tcp_port`: ICE over TCP for clients whose networks block UDP (None: off; 0: any
    /// free port).
    pub tcp_port: Option<u16>,
    /// The addresses clients are told to send media to (ICE host candidates), in order of
    /// preference; never empty.
    pub addresses: Vec<MediaAddr>,
    /// `rtc.bandwidth_estimation`: allocate simulcast layers within each subscriber's TWCC
    /// estimate (str0m then also paces what it sends to the estimate).
    pub bandwidth_estimation: bool,
    /// `rtc.turn_servers`: TURN servers every client is given (with credentials of its own).
    pub turn_servers: Vec<TurnServer>,
    /// `rtc.use_external_ip` with `rtc.stun_servers`: at start, ask these STUN servers
    /// (`host:port`) for our public address and advertise it first (a host behind 1:1 NAT).
    /// Empty: don't ask.
    pub external_ip_stun: Vec<String>,
}

impl MediaConfig {
    /// Media on 127.0.0.1 alone, on any free UDP port, no TCP: for tests on one machine.
    pub fn loopback() -> Self {
        let lo = IpAddr::from([127, 0, 0, 1]);
        Self {
            bind_ip: lo,
            udp_port: 0,
            tcp_port: None,
            addresses: vec![MediaAddr {
                advertised: lo,
                local: Some(lo),
            }],
            bandwidth_estimation: true,
            turn_servers: Vec::new(),
            external_ip_stun: Vec::new(),
        }
    }
}

/// An address clients send media to, and the local address behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaAddr {
    /// What clients are told (an ICE host candidate's address).
    pub advertised: IpAddr,
    /// The local address that datagrams to it arrive at and replies leave from: the same
    /// address for an interface's own, the private one behind a 1:1 NAT, None when unknown
    /// (a configured address that is on no interface: the kernel then picks the source).
    pub local: Option<IpAddr>,
}

/// A TURN server handed to clients (LiveKit's `rtc.turn_servers` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnServer {
    /// Host name or address, as clients reach it.
    pub host: String,
    pub port: u16,
    /// Transport clients use to reach it.
    pub protocol: TurnProtocol,
    pub credentials: TurnCredentials,
}

/// How clients reach a TURN server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnProtocol {
    Udp,
    Tcp,
    /// TURN over TLS (`turns:`), usually on 443 to pass firewalls that allow only HTTPS.
    Tls,
}

/// The credentials clients get for a TURN server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnCredentials {
    /// TURN REST (coturn's `use-auth-secret`): each client gets a username
    /// `<expiry>:<participant>` and the HMAC-SHA1 of it under the shared secret, valid `ttl`.
    Secret { secret: String, ttl: Duration },
    /// The same fixed username and password for everyone.
    Static {
        username: String,
        credential: String,
    },
}
