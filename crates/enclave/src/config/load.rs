//! The layers of the configuration: the YAML file (if any), then the environment overrides
//! (`ENCLAVE_<SECTION>__<KEY>`), deserialised into the file's shape.

use std::path::Path;

use anyhow::{anyhow, Context};

use super::file::FileConfig;

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
