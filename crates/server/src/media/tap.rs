//! Test-only (the `tap` feature): what a room forwards and relays, appended to a file.

use enclave_sfu::Room;

/// Test-only: appends what the room forwards and relays to `ENCLAVE_TAP_FILE`.
pub(super) fn install_tap(core: &mut Room, room_id: &str) {
    use std::io::Write as _;
    let Some(path) = std::env::var_os("ENCLAVE_TAP_FILE") else {
        return;
    };
    let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    else {
        tracing::error!("cannot open ENCLAVE_TAP_FILE");
        return;
    };
    tracing::warn!(
        room_id,
        "TEST TAP ENABLED: forwarded media and relayed data are written to disk"
    );
    let room_id = room_id.to_owned();
    core.set_tap(Box::new(move |r: enclave_sfu::TapRecord| {
        let line = serde_json::json!({"room": room_id, "kind": r.kind, "from": r.from, "marker": r.marker, "payload": hex::encode(&r.payload)});
        let _ = writeln!(file, "{line}");
    }));
}
