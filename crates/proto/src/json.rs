//! Plug-N-Meet's protojson rules, for serde.
//!
//! Requests: [`decode`] parses bytes into a [`serde_json::Value`], rewrites lowerCamelCase keys
//! to snake_case (protojson accepts both), and deserialises with the path of any error kept, so
//! that the reply can name the field. Unknown keys are ignored because no type here denies them.
//!
//! Replies: types derive `Serialize` with every field present; 64-bit integers use
//! [`int64_string`] and enums are written by name ([`proto_enum!`]).

use std::fmt::Display;
use std::str::FromStr;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serializer};
use serde_json::{Map, Value};

/// Keys whose values are protobuf maps: their own keys are data, not field names, and must not
/// be rewritten.
const MAP_FIELDS: &[&str] = &["extra_data", "subtitles", "translations", "breakdown"];

/// Why a request body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body is not JSON at all.
    #[error("invalid JSON: {0}")]
    Syntax(String),
    /// The JSON does not fit the message: `field` is the dotted path of the offending value.
    #[error("invalid value for field '{field}': {reason}")]
    Field {
        /// Dotted path, e.g. `metadata.room_features.room_duration`.
        field: String,
        /// What serde found wrong there.
        reason: String,
    },
}

/// Decodes a request body with protojson's leniency (see the module docs).
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    let value = decode_value(body)?;
    from_value(value)
}

/// Parses a body into a normalised JSON value (snake_case keys). An empty body is `{}`, as
/// protojson treats it.
pub fn decode_value(body: &[u8]) -> Result<Value, DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| DecodeError::Syntax(e.to_string()))?;
    if !value.is_object() {
        return Err(DecodeError::Field {
            field: "(body)".into(),
            reason: "expected a JSON object".into(),
        });
    }
    Ok(normalize_keys(value))
}

/// Deserialises a normalised value, naming the field on failure.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, DecodeError> {
    from_value_ref(&value)
}

/// [`from_value`] without consuming the value.
pub fn from_value_ref<T: DeserializeOwned>(value: &Value) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        DecodeError::Field {
            field: if path == "." { "(body)".into() } else { path },
            reason: e.into_inner().to_string(),
        }
    })
}

/// Rewrites every lowerCamelCase object key to snake_case, leaving the contents of map fields
/// alone.
pub fn normalize_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = camel_to_snake(&k);
                    let v = if MAP_FIELDS.contains(&key.as_str()) {
                        v
                    } else {
                        normalize_keys(v)
                    };
                    (key, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize_keys).collect()),
        other => other,
    }
}

fn camel_to_snake(key: &str) -> String {
    if !key.bytes().any(|b| b.is_ascii_uppercase()) {
        return key.to_owned();
    }
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Merges `overlay` into `base`: objects merge key by key, `null` leaves the base value, any
/// other value replaces it. This is how room defaults are applied: a field the caller sent wins,
/// including an explicit `false`; a field it left out keeps the default.
pub fn deep_merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    continue;
                }
                match b.get_mut(k) {
                    Some(slot) => deep_merge(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, v) if !v.is_null() => *slot = v.clone(),
        _ => {}
    }
}

/// An integer as protojson accepts it: a JSON number, a decimal string, or `null` (not set).
fn parse_int<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + TryFrom<i64> + TryFrom<u64>,
{
    let v = Value::deserialize(d)?;
    let out = match &v {
        Value::Null => return Ok(None),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                T::try_from(u).ok()
            } else if let Some(i) = n.as_i64() {
                T::try_from(i).ok()
            } else {
                // protojson accepts 1.0 for an integer field, not 1.5.
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .and_then(|f| T::try_from(f as i64).ok())
            }
        }
        Value::String(s) => s.trim().parse::<T>().ok(),
        _ => None,
    };
    out.map(Some)
        .ok_or_else(|| D::Error::custom(format!("expected an integer in range, found {v}")))
}

/// `deserialize_with` for a plain integer field.
pub fn int<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + TryFrom<i64> + TryFrom<u64> + Default,
{
    Ok(parse_int(d)?.unwrap_or_default())
}

/// `deserialize_with` for a proto3 `optional` integer field.
pub fn opt_int<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + TryFrom<i64> + TryFrom<u64>,
{
    parse_int(d)
}

/// `serialize_with` for 64-bit integers, which protojson writes as strings.
pub fn int64_string<S: Serializer, T: Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// `serialize_with` for optional 64-bit integers (use with `skip_serializing_if`).
pub fn opt_int64_string<S: Serializer, T: Display>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

/// Declares a protobuf enum that serialises by name and deserialises from a name or a number.
macro_rules! proto_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $num:literal => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            #[default]
            $($(#[$vmeta])* $variant = $num,)+
        }

        impl $name {
            /// The protobuf name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text,)+ }
            }

            /// The protobuf number.
            pub fn number(self) -> i32 {
                self as i32
            }

            /// Looks a value up by protobuf number.
            pub fn from_number(n: i64) -> Option<Self> {
                match n { $($num => Some(Self::$variant),)+ _ => None }
            }

            /// Looks a value up by protobuf name.
            pub fn from_name(s: &str) -> Option<Self> {
                match s { $($text => Some(Self::$variant),)+ _ => None }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                use serde::de::Error as _;
                let v = serde_json::Value::deserialize(d)?;
                let found = match &v {
                    serde_json::Value::Null => Some(Self::default()),
                    serde_json::Value::String(s) => Self::from_name(s),
                    serde_json::Value::Number(n) => n.as_i64().and_then(Self::from_number),
                    _ => None,
                };
                found.ok_or_else(|| D::Error::custom(format!(
                    concat!("unknown ", stringify!($name), " value {}"), v)))
            }
        }
    };
}
pub(crate) use proto_enum;

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Default, PartialEq)]
    #[serde(default)]
    struct Probe {
        room_id: String,
        #[serde(deserialize_with = "int")]
        big: u64,
        #[serde(deserialize_with = "opt_int")]
        maybe: Option<u32>,
        extra_data: std::collections::HashMap<String, String>,
    }

    #[test]
    fn camel_and_snake_keys_are_both_accepted() {
        let a: Probe = decode(br#"{"roomId":"r1","big":"5"}"#).unwrap();
        let b: Probe = decode(br#"{"room_id":"r1","big":5}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.big, 5);
    }

    #[test]
    fn map_keys_are_left_as_they_are() {
        let p: Probe = decode(br#"{"extraData":{"someKey":"v"}}"#).unwrap();
        assert_eq!(p.extra_data.get("someKey").map(String::as_str), Some("v"));
    }

    #[test]
    fn unknown_fields_are_ignored_and_null_means_unset() {
        let p: Probe = decode(br#"{"whatever":[1,2],"maybe":null}"#).unwrap();
        assert_eq!(p.maybe, None);
    }

    #[test]
    fn wrong_types_name_the_field() {
        let err = decode::<Probe>(br#"{"maybe":"x"}"#).unwrap_err();
        assert!(
            matches!(&err, DecodeError::Field { field, .. } if field == "maybe"),
            "{err}"
        );
        let err = decode::<Probe>(br#"{"maybe":-1}"#).unwrap_err();
        assert!(err.to_string().contains("maybe"));
        let err = decode::<Probe>(br#"{"room_id":5}"#).unwrap_err();
        assert!(err.to_string().contains("room_id"));
    }

    #[test]
    fn malformed_json_is_a_syntax_error() {
        assert!(matches!(
            decode::<Probe>(b"{\"room_id\":"),
            Err(DecodeError::Syntax(_))
        ));
        assert!(decode::<Probe>(b"   ").is_ok());
    }

    #[test]
    fn deep_merge_keeps_defaults_for_missing_keys_and_honours_explicit_false() {
        let mut base = serde_json::json!({"a": true, "b": {"c": true, "d": 1}});
        deep_merge(
            &mut base,
            &serde_json::json!({"a": false, "b": {"d": null}, "e": 3}),
        );
        assert_eq!(
            base,
            serde_json::json!({"a": false, "b": {"c": true, "d": 1}, "e": 3})
        );
    }
}
