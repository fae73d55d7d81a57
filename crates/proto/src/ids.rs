//! Identifiers, parsed once at the boundary so inner code never re-checks them.

use std::fmt;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty, or a character outside `[a-zA-Z0-9_-]`.
    #[error("{field} should only contain ASCII letters (a-z A-Z), digits (0-9) or -_")]
    Charset {
        /// The field that carried the id.
        field: &'static str,
    },
    /// Contains `-FIELD_`, which the live-state key layout reserves.
    #[error("{field} cannot contain the reserved pattern '-FIELD_'")]
    ReservedInfix {
        /// The field that carried the id.
        field: &'static str,
    },
    /// Starts with `user_`, which the live-state key layout reserves.
    #[error("{field} cannot start with the reserved pattern 'user_'")]
    ReservedPrefix {
        /// The field that carried the id.
        field: &'static str,
    },
    /// Longer than we store.
    #[error("{field} is longer than {max} characters")]
    TooLong {
        /// The field that carried the id.
        field: &'static str,
        /// The limit.
        max: usize,
    },
    /// Not a UUID.
    #[error("{field} is not a UUID")]
    NotUuid {
        /// The field that carried the id.
        field: &'static str,
    },
}

const MAX_ID_LEN: usize = 128;

fn check_id(field: &'static str, s: &str) -> Result<(), IdError> {
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(IdError::Charset { field });
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            field,
            max: MAX_ID_LEN,
        });
    }
    if s.contains("-FIELD_") {
        return Err(IdError::ReservedInfix { field });
    }
    if s.starts_with("user_") {
        return Err(IdError::ReservedPrefix { field });
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $field:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses an id from the wire.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check_id($field, s)?;
                Ok(Self(s.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

string_id!(
    /// A room id chosen by the integrator: `[a-zA-Z0-9_-]+`, not reserved.
    RoomId,
    "room_id"
);
string_id!(
    /// A user id chosen by the integrator (or generated): `[a-zA-Z0-9_-]+`, not reserved.
    UserId,
    "user_id"
);

/// A session id (`sid`): a fresh UUID v4 for every session of a room.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(uuid::Uuid);

impl SessionId {
    /// A new random session id.
    pub fn new_v4() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// Parses a session id from the wire.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        uuid::Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| IdError::NotUuid { field: "room_sid" })
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0.hyphenated())
    }
}

impl serde::Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_follow_the_protocol_pattern() {
        assert!(RoomId::parse("room-1_A").is_ok());
        let field = "room_id";
        for (id, err) in [
            ("", IdError::Charset { field }),
            ("a b", IdError::Charset { field }),
            ("a.b", IdError::Charset { field }),
            ("x-FIELD_y", IdError::ReservedInfix { field }),
            ("user_x", IdError::ReservedPrefix { field }),
        ] {
            assert_eq!(RoomId::parse(id), Err(err), "{id:?}");
        }
        assert!(matches!(
            RoomId::parse(&"a".repeat(129)),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn session_ids_are_uuid_v4_and_unique() {
        let a = SessionId::new_v4();
        let b = SessionId::new_v4();
        assert_ne!(a, b);
        let text = a.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(&text[14..15], "4");
        assert_eq!(SessionId::parse(&text), Ok(a));
    }
}
