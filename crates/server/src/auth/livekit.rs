//! LiveKit access tokens: HS256 JWTs signed with the LiveKit key ([`TokenKind::LivekitAccess`]:
//! `livekit_info.secret`, or one derived from `client.secret`), `iss` = the key, `sub` = the
//! participant identity, and a `video` grant naming the room.

use serde::{Deserialize, Serialize};

use super::{TokenError, TokenKeys, TokenKind};

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
    /// LiveKit's names of the sources it may publish (`camera`, `microphone`, `screen_share`,
    /// `screen_share_audio`); absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_publish_sources: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
    /// May change its own metadata and name (`UpdateParticipantMetadata`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_update_own_metadata: Option<bool>,
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
    /// The room session the token was issued for (tokens from `verifyToken`); a token of an
    /// earlier session of the same room id does not join a later one. LiveKit's own tokens
    /// (minted by an integrator with `livekit_info`) carry none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
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
pub fn verify(keys: &TokenKeys, api_key: &str, token: &str) -> Result<AccessClaims, AccessError> {
    let claims: AccessClaims = keys.verify(TokenKind::LivekitAccess, api_key, token)?;
    if !claims.video.room_join || claims.video.room.is_empty() {
        return Err(AccessError::NoRoomJoin);
    }
    if claims.sub.is_empty() {
        return Err(AccessError::NoIdentity);
    }
    Ok(claims)
}

/// Mints a token (for the browser API and for tests).
pub fn mint(keys: &TokenKeys, claims: &AccessClaims) -> String {
    keys.sign(TokenKind::LivekitAccess, claims)
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
            session: None,
        }
    }

    #[test]
    fn grants_and_signature_are_checked() {
        let far = u64::MAX / 4;
        let keys = TokenKeys::derive("api-secret-api-secret", None);
        let t = mint(&keys, &claims(far, true));
        assert_eq!(verify(&keys, "lk", &t).unwrap().video.room, "r1");
        let other = TokenKeys::derive("another-api-secret", None);
        assert!(matches!(
            verify(&other, "lk", &t),
            Err(AccessError::Token(_))
        ));
        assert!(matches!(
            verify(&keys, "other", &t),
            Err(AccessError::Token(TokenError::WrongIssuer))
        ));
        let t = mint(&keys, &claims(far, false));
        assert_eq!(verify(&keys, "lk", &t), Err(AccessError::NoRoomJoin));
        let t = mint(&keys, &claims(10, true));
        assert_eq!(
            verify(&keys, "lk", &t),
            Err(AccessError::Token(TokenError::Expired))
        );
        // A configured secret is the key itself, so other LiveKit tooling can mint tokens.
        let secret = "0123456789abcdef0123456789abcdef";
        let configured = TokenKeys::derive("api-secret-api-secret", Some(secret));
        let external = crate::auth::encode_jwt(secret.as_bytes(), &claims(far, true));
        assert_eq!(verify(&configured, "lk", &external).unwrap().sub, "alice");
        assert!(verify(&keys, "lk", &external).is_err());
    }

    #[test]
    fn livekit_sdk_claims_parse() {
        // The shape livekit-server-sdk produces (camelCase grant names).
        let json = r#"{"video":{"roomJoin":true,"room":"r","canPublish":true,"canSubscribe":true,"canPublishData":true},"iss":"k","exp":9999999999,"nbf":0,"sub":"bob","name":"Bob"}"#;
        let c: AccessClaims = serde_json::from_str(json).unwrap();
        assert_eq!((c.sub.as_str(), c.video.can_publish), ("bob", Some(true)));
    }
}
