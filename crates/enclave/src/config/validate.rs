//! Validation of the whole file into the server's configuration, and the `client` section's
//! lists and limits.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{anyhow, bail};

use enclave_server::config::{
    ConnLimits, FailureBudget, IpNet, LivekitConfig, PrometheusConfig, ServerConfig, WebhookConfig,
};

use super::credentials::{credentials, KeySource};
use super::file::{FileConfig, Limits, OneOrMany};
use super::media::media_config;
use super::tls::tls_config;
use super::{at_least_one, duration, non_empty, or, DataDir};

/// Validates the file configuration into the server's; also returns where the credentials
/// came from and the log level.
pub(crate) fn validate(f: FileConfig) -> anyhow::Result<(ServerConfig, KeySource, String)> {
    let data = DataDir::new(&f.database.data_dir);
    let ip: IpAddr = f
        .client
        .bind
        .parse()
        .map_err(|_| anyhow!("client.bind: '{}' is not an IP address", f.client.bind))?;
    if f.client.port == 0 {
        bail!("client.port: must be between 1 and 65535");
    }
    let keys = credentials(&f, data.path())?;
    let webhooks = WebhookConfig {
        enable: f.client.webhook_conf.enable,
        url: non_empty(&f.client.webhook_conf.url),
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
    let config = ServerConfig {
        listen: SocketAddr::new(ip, f.client.port),
        api_key: keys.api_key,
        api_secret: keys.secret,
        token_validity: duration(
            "client.token_validity",
            &f.client.token_validity,
            Duration::from_secs(600),
        )?,
        webhooks,
        livekit: LivekitConfig {
            // Empty: clients use the origin they loaded the web client from.
            host: f.livekit_info.host.clone(),
            api_key: keys.livekit_key,
            secret: keys.livekit_secret,
        },
        database_path: data.under(&f.database.path, "enclave.sqlite"),
        recording_files_path: data.under(&f.recorder_info.recording_files_path, "recordings"),
        recording_backup_path: f.recorder_info.enable_del_recording_backup.then(|| {
            data.under(
                &f.recorder_info.del_recording_backup_path,
                "recordings-deleted",
            )
        }),
        artifacts_path: data.under(&f.artifacts_settings.storage_path, "artifacts"),
        uploads_path: data.under("", "uploads"),
        keep_uploads: f.upload_file_settings.keep_forever,
        download_token_validity: duration(
            "recorder_info.token_validity",
            &f.recorder_info.token_validity,
            Duration::from_secs(600),
        )?,
        rtmp_allow_private_targets: f.recorder_info.rtmp_allow_private_targets,
        room_policy: policy,
        max_body_bytes: f.client.max_body_bytes.max(1024),
        conn_limits: conn_limits(&f.client.limits)?,
        failure_budget: FailureBudget {
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
            token: non_empty(&f.client.prometheus.token),
        },
        frame_ancestors: frame_ancestors(&f.client.frame_ancestors)?,
        trusted_proxies: trusted_proxies(&f.client.trusted_proxies)?,
        media: media_config(&f.rtc, ip, &enclave_server::media::addrs::detect())?,
        tls: tls_config(&f.client.tls, f.client.port, &data)?,
    };
    let level = or(&f.log_settings.log_level, "info").to_ascii_lowercase();
    Ok((config, keys.source, level))
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

/// `client.frame_ancestors`: CSP source expressions only, a keyword, a scheme or an origin (no
/// `;` or `,` that would end the directive early); none: `'none'`.
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

/// `client.limits`: connection counts and read timeouts.
fn conn_limits(l: &Limits) -> anyhow::Result<ConnLimits> {
    let d = ConnLimits::default();
    let limits = ConnLimits {
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
    at_least_one("client.limits.max_connections", limits.max_connections)?;
    at_least_one(
        "client.limits.max_connections_per_ip",
        limits.max_connections_per_ip,
    )?;
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
