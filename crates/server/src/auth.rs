//! Credentials: the API's HMAC signature, join tokens and download tokens.

use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use enclave_proto::user::JoinClaims;
use enclave_proto::StatusCode;

/// Why a request's credentials were refused. The messages are Plug-N-Meet's, so integrators
/// matching on them keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("Missing API-KEY header.")]
    MissingApiKey,
    #[error("Invalid API key provided.")]
    InvalidApiKey,
    #[error("Missing HASH-SIGNATURE header.")]
    MissingSignature,
    #[error("Missing Room-Id header for multipart request.")]
    MissingRoomId,
    #[error("Failed to verify provided authentication details.")]
    BadSignature,
}

impl AuthError {
    /// The status code Plug-N-Meet reports for this failure.
    pub fn status_code(self) -> StatusCode {
        match self {
            Self::MissingApiKey | Self::MissingSignature | Self::MissingRoomId => {
                StatusCode::MissingRequiredParameter
            }
            Self::InvalidApiKey => StatusCode::InvalidApiKey,
            Self::BadSignature => StatusCode::InvalidTokenOrSignature,
        }
    }
}

/// The `/auth` request headers, as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub api_key: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub room_id_header: Option<&'a str>,
    pub body: &'a [u8],
}

/// Checks a signed request in Plug-N-Meet's order: key present, key right, signature present,
/// then HMAC-SHA256 of the body (or of the `Room-Id` header for multipart) in lowercase hex,
/// compared in constant time.
pub fn check_signature(
    req: &SignedRequest<'_>,
    api_key: &str,
    secret: &str,
) -> Result<(), AuthError> {
    let key = req
        .api_key
        .filter(|k| !k.is_empty())
        .ok_or(AuthError::MissingApiKey)?;
    if !bool::from(key.as_bytes().ct_eq(api_key.as_bytes())) {
        return Err(AuthError::InvalidApiKey);
    }
    let sig = req
        .signature
        .filter(|s| !s.is_empty())
        .ok_or(AuthError::MissingSignature)?;
    let signed: &[u8] = if req
        .content_type
        .is_some_and(|c| c.contains("multipart/form-data"))
    {
        req.room_id_header
            .ok_or(AuthError::MissingRoomId)?
            .as_bytes()
    } else {
        req.body
    };
    let expected = sign(secret, signed);
    if bool::from(expected.as_bytes().ct_eq(sig.as_bytes())) {
        Ok(())
    } else {
        Err(AuthError::BadSignature)
    }
}

/// HMAC-SHA256 of `data` with `secret`, lowercase hex: what a caller puts in `HASH-SIGNATURE`.
pub fn sign(secret: &str, data: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token was not issued by this server")]
    WrongIssuer,
    #[error("token is for room '{token_room}', not '{expected}'")]
    WrongRoom {
        token_room: String,
        expected: String,
    },
    #[error("token subject does not match its user_id")]
    SubjectMismatch,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Go's go-jose validates `nbf`/`exp` with one minute of leeway; we do the same.
const LEEWAY_SECS: u64 = 60;

/// Signs claims as an HS256 JWT with `{"alg":"HS256","typ":"JWT"}`.
pub fn encode_jwt<C: Serialize>(secret: &str, claims: &C) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing of serialisable claims cannot fail")
}

/// Verifies an HS256 JWT's signature, issuer and times, and decodes its claims.
pub fn decode_jwt<C: DeserializeOwned>(
    secret: &str,
    issuer: &str,
    token: &str,
) -> Result<C, TokenError> {
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = LEEWAY_SECS;
    v.validate_nbf = true;
    v.set_issuer(&[issuer]);
    v.set_required_spec_claims(&["exp", "nbf", "iss"]);
    jsonwebtoken::decode::<C>(token, &DecodingKey::from_secret(secret.as_bytes()), &v)
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            jsonwebtoken::errors::ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            jsonwebtoken::errors::ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
            _ => TokenError::Invalid(e.to_string()),
        })
}

/// Verifies a join token and checks that it was issued for `room`.
pub fn verify_join_token(
    secret: &str,
    api_key: &str,
    token: &str,
    room: Option<&str>,
) -> Result<JoinClaims, TokenError> {
    let claims: JoinClaims = decode_jwt(secret, api_key, token)?;
    if !claims.user_id.is_empty() && claims.user_id != claims.sub {
        return Err(TokenError::SubjectMismatch);
    }
    if let Some(expected) = room {
        if claims.room_id != expected {
            return Err(TokenError::WrongRoom {
                token_room: claims.room_id,
                expected: expected.to_owned(),
            });
        }
    }
    Ok(claims)
}

/// Claims of a download token: `sub` is the file's path relative to its storage directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadClaims {
    pub iss: String,
    pub sub: String,
    pub nbf: u64,
    pub exp: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "plugnmeet";
    const SECRET: &str = "zumyyYWqv7KR2kUqvYdq4z4sXg7XTBD2ljT6";

    fn req<'a>(key: Option<&'a str>, sig: Option<&'a str>, body: &'a [u8]) -> SignedRequest<'a> {
        SignedRequest {
            api_key: key,
            signature: sig,
            content_type: Some("application/json"),
            room_id_header: None,
            body,
        }
    }

    #[test]
    fn checks_run_in_plugnmeet_order() {
        let body = br#"{"room_id":"r"}"#;
        let good = sign(SECRET, body);
        assert_eq!(
            check_signature(&req(None, None, body), KEY, SECRET),
            Err(AuthError::MissingApiKey)
        );
        assert_eq!(
            check_signature(&req(Some("x"), None, body), KEY, SECRET),
            Err(AuthError::InvalidApiKey)
        );
        assert_eq!(
            check_signature(&req(Some(KEY), None, body), KEY, SECRET),
            Err(AuthError::MissingSignature)
        );
        assert_eq!(
            check_signature(&req(Some(KEY), Some("00"), body), KEY, SECRET),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            check_signature(&req(Some(KEY), Some(&good), body), KEY, SECRET),
            Ok(())
        );
        let upper = good.to_uppercase();
        assert_eq!(
            check_signature(&req(Some(KEY), Some(&upper), body), KEY, SECRET),
            Err(AuthError::BadSignature),
            "only lowercase hex"
        );
        assert_eq!(
            check_signature(&req(Some(KEY), Some(&good), b"{}"), KEY, SECRET),
            Err(AuthError::BadSignature),
            "the body is what is signed"
        );
    }

    #[test]
    fn multipart_signs_the_room_id_header() {
        let sig = sign(SECRET, b"room1");
        let mut r = req(Some(KEY), Some(&sig), b"--boundary...");
        r.content_type = Some("multipart/form-data; boundary=x");
        assert_eq!(
            check_signature(&r, KEY, SECRET),
            Err(AuthError::MissingRoomId)
        );
        r.room_id_header = Some("room1");
        assert_eq!(check_signature(&r, KEY, SECRET), Ok(()));
    }

    #[test]
    fn hmac_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    fn claims(room: &str, exp: u64) -> JoinClaims {
        JoinClaims {
            iss: KEY.into(),
            sub: "u1".into(),
            nbf: 0,
            exp,
            name: "n".into(),
            user_id: "u1".into(),
            room_id: room.into(),
            is_admin: true,
            is_hidden: false,
            client_type: 0,
        }
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn join_tokens_round_trip_and_refuse_other_rooms_expiry_and_forgery() {
        let t = encode_jwt(SECRET, &claims("r1", now() + 600));
        assert_eq!(
            verify_join_token(SECRET, KEY, &t, Some("r1"))
                .unwrap()
                .room_id,
            "r1"
        );
        assert!(matches!(
            verify_join_token(SECRET, KEY, &t, Some("r2")),
            Err(TokenError::WrongRoom { .. })
        ));
        assert!(matches!(
            verify_join_token("other-secret", KEY, &t, None),
            Err(TokenError::Invalid(_))
        ));
        assert_eq!(
            verify_join_token(SECRET, "other-key", &t, None),
            Err(TokenError::WrongIssuer)
        );
        let old = encode_jwt(SECRET, &claims("r1", now() - 120));
        assert_eq!(
            verify_join_token(SECRET, KEY, &old, None),
            Err(TokenError::Expired)
        );
        assert!(matches!(
            verify_join_token(SECRET, KEY, "not.a.jwt", None),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn join_token_header_is_hs256_jwt() {
        let t = encode_jwt(SECRET, &claims("r1", now() + 600));
        let header = t.split('.').next().unwrap();
        use base64::Engine;
        let h = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap();
        let h: serde_json::Value = serde_json::from_slice(&h).unwrap();
        assert_eq!(h["alg"], "HS256");
        assert_eq!(h["typ"], "JWT");
    }
}
