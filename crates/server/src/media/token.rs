//! LiveKit access tokens: HS256 JWTs signed with `livekit_info.secret`, `iss` = the key,
//! `sub` = the participant identity, and a `video` grant naming the room.

use serde::{Deserialize, Serialize};

use crate::auth::{decode_jwt, encode_jwt, TokenError};

/// The `video` grant (the fields this server reads; unknown ones are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoGrant {
    #[serde(default)]
    pub room_join: bool,
    #[serde(default)]
    pub room: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_publish: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_subscribe: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_publish_data: Option<bool>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
}

/// Claims of a LiveKit access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub nbf: u64,
    pub exp: u64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub metadata: String,
    #[serde(default)]
    pub video: VideoGrant,
}

/// Why a media connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("missing access token")]
    Missing,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("token has no roomJoin grant")]
    NoRoomJoin,
    #[error("token has no identity (sub)")]
    NoIdentity,
}

/// Verifies a token and its join grant.
pub fn verify(key: &str, secret: &str, token: &str) -> Result<AccessClaims, AccessError> {
    let claims: AccessClaims = decode_jwt(secret, key, token)?;
    if !claims.video.room_join || claims.video.room.is_empty() {
        return Err(AccessError::NoRoomJoin);
    }
    if claims.sub.is_empty() {
        return Err(AccessError::NoIdentity);
    }
    Ok(claims)
}

/// Mints a token (for the browser API and for tests).
pub fn mint(secret: &str, claims: &AccessClaims) -> String {
    encode_jwt(secret, claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64, join: bool) -> AccessClaims {
        AccessClaims {
            iss: "lk".into(),
            sub: "alice".into(),
            nbf: 0,
            exp,
            name: "Alice".into(),
            metadata: String::new(),
            video: VideoGrant {
                room_join: join,
                room: "r1".into(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn grants_and_signature_are_checked() {
        let far = u64::MAX / 4;
        let secret = "0123456789abcdef0123456789abcdef";
        let t = mint(secret, &claims(far, true));
        assert_eq!(verify("lk", secret, &t).unwrap().video.room, "r1");
        assert!(matches!(
            verify("lk", "another-secret-another-secret-00", &t),
            Err(AccessError::Token(_))
        ));
        assert!(matches!(
            verify("other", secret, &t),
            Err(AccessError::Token(TokenError::WrongIssuer))
        ));
        let t = mint(secret, &claims(far, false));
        assert_eq!(verify("lk", secret, &t), Err(AccessError::NoRoomJoin));
        let t = mint(secret, &claims(10, true));
        assert_eq!(
            verify("lk", secret, &t),
            Err(AccessError::Token(TokenError::Expired))
        );
    }

    #[test]
    fn livekit_sdk_claims_parse() {
        // The shape livekit-server-sdk produces (camelCase grant names).
        let json = r#"{"video":{"roomJoin":true,"room":"r","canPublish":true,"canSubscribe":true,"canPublishData":true},"iss":"k","exp":9999999999,"nbf":0,"sub":"bob","name":"Bob"}"#;
        let c: AccessClaims = serde_json::from_str(json).unwrap();
        assert_eq!((c.sub.as_str(), c.video.can_publish), ("bob", Some(true)));
    }
}
