//! Validation violations, reported in protovalidate's format so that integrators who match on
//! Plug-N-Meet's messages keep working: `validation error:` then one ` - field: message [rule]`
//! line per violation.

use std::fmt;

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Dotted field path.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// The rule id.
    pub rule: &'static str,
}

/// Every broken rule of one request, in field order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(Vec<Violation>);

impl Violations {
    /// Records a violation.
    pub fn push(
        &mut self,
        field: impl Into<String>,
        message: impl Into<String>,
        rule: &'static str,
    ) {
        self.0.push(Violation {
            field: field.into(),
            message: message.into(),
            rule,
        });
    }

    /// Records `field` unless it equals its type's default (an internal field the caller must
    /// leave empty).
    pub fn must_be_empty<T: Default + PartialEq>(&mut self, field: &str, value: &T) {
        if *value != T::default() {
            let leaf = field.rsplit('.').next().unwrap_or(field);
            self.push(
                field,
                format!("{leaf} should not contain any value"),
                "const",
            );
        }
    }

    /// Ok when nothing was recorded.
    pub fn into_result(self) -> Result<(), Self> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }

    /// The violations.
    pub fn iter(&self) -> impl Iterator<Item = &Violation> {
        self.0.iter()
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("validation error:")?;
        for v in &self.0 {
            write!(f, "\n - {}: {} [{}]", v.field, v.message, v.rule)?;
        }
        Ok(())
    }
}

/// A URI as protovalidate's `string.uri` accepts it: a scheme, `:`, and no spaces.
pub fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_render_like_protovalidate() {
        let mut v = Violations::default();
        v.push("room_id", "bad", "room_id_format");
        v.must_be_empty("metadata.is_recording", &true);
        v.must_be_empty("metadata.parent_room_id", &String::new());
        assert_eq!(
            v.to_string(),
            "validation error:\n - room_id: bad [room_id_format]\n - metadata.is_recording: is_recording should not contain any value [const]"
        );
    }

    #[test]
    fn uris_need_a_scheme() {
        assert!(is_uri("https://example.com/hook"));
        assert!(!is_uri("example.com"));
        assert!(!is_uri("http://a b"));
        assert!(!is_uri("1http://x"));
    }
}
