//! Credentials: the API's HMAC signature, and the tokens the server signs for itself.
//!
//! `client.secret` is the key of exactly one scheme: the `/auth` request signature,
//! HMAC-SHA256 over a JSON body (and the webhooks Plug-N-Meet's receivers verify with it,
//! whose signed input is base64url text, never a JSON object). Every token the server issues
//! for itself is signed with a key of its own kind, derived from `client.secret` with HKDF
//! ([`TokenKeys`]), and names its kind in `aud`: a join token cannot be replayed as an `/auth`
//! signature, a download token cannot open a meeting, a LiveKit access token cannot call the
//! browser API.

pub mod livekit;
pub mod throttle;
pub mod turn;

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

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
/// compared in constant time. The HTTP edge refuses multipart requests before this on every
/// route that does not take a file: there the signature covers only the header, and the body
/// would be unsigned.
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
    #[error("token is of another kind (audience)")]
    WrongKind,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Go's go-jose validates `nbf`/`exp` with one minute of leeway; we do the same.
const LEEWAY_SECS: u64 = 60;

/// What a token the server signs is for. Each kind has its own key and audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A join token (`getJoinToken`, `renewToken`): opens the browser API for one user of one
    /// room.
    Join,
    /// A download token (`recording/getDownloadToken`, `artifact/getDownloadToken`).
    Download,
    /// A LiveKit access token for `/rtc`, when `livekit_info.secret` is not configured. The
    /// LiveKit SDKs never read it, and tokens minted elsewhere with a configured secret carry
    /// no audience, so this kind is told apart by its key alone.
    LivekitAccess,
}

impl TokenKind {
    /// The HKDF `info` that derives this kind's key.
    fn label(self) -> &'static [u8] {
        match self {
            Self::Join => b"join-token",
            Self::Download => b"download-token",
            Self::LivekitAccess => b"livekit-access-token",
        }
    }

    /// The `aud` claim tokens of this kind carry and must carry.
    pub fn audience(self) -> Option<&'static str> {
        match self {
            Self::Join => Some("enclave:join"),
            Self::Download => Some("enclave:download"),
            Self::LivekitAccess => None,
        }
    }
}

/// HKDF salt of the token keys; a new version of the scheme gets a new salt.
const TOKEN_KEY_SALT: &[u8] = b"enclave/token-keys/v1";

/// The keys of every kind of token the server signs for itself:
/// `HKDF-SHA256(ikm = client.secret, salt = "enclave/token-keys/v1", info = <kind>)`, 32 bytes
/// each, and the LiveKit key as configured when `livekit_info.secret` is set.
pub struct TokenKeys {
    join: Zeroizing<Vec<u8>>,
    download: Zeroizing<Vec<u8>>,
    livekit: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

impl TokenKeys {
    /// Derives the keys from `client.secret`; `livekit_secret` is `livekit_info.secret` when
    /// the operator set one (tokens minted by other LiveKit tooling then verify).
    pub fn derive(api_secret: &str, livekit_secret: Option<&str>) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(TOKEN_KEY_SALT), api_secret.as_bytes());
        let key = |kind: TokenKind| {
            let mut k = Zeroizing::new(vec![0u8; 32]);
            hk.expand(kind.label(), &mut k)
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            k
        };
        Self {
            join: key(TokenKind::Join),
            download: key(TokenKind::Download),
            livekit: match livekit_secret {
                Some(s) => Zeroizing::new(s.as_bytes().to_vec()),
                None => key(TokenKind::LivekitAccess),
            },
        }
    }

    fn key(&self, kind: TokenKind) -> &[u8] {
        match kind {
            TokenKind::Join => &self.join,
            TokenKind::Download => &self.download,
            TokenKind::LivekitAccess => &self.livekit,
        }
    }

    /// Signs `claims` as a token of `kind`, adding its `aud`.
    pub fn sign<C: Serialize>(&self, kind: TokenKind, claims: &C) -> String {
        #[derive(Serialize)]
        struct WithAudience<'a, C> {
            #[serde(flatten)]
            claims: &'a C,
            #[serde(skip_serializing_if = "Option::is_none")]
            aud: Option<&'static str>,
        }
        encode_jwt(
            self.key(kind),
            &WithAudience {
                claims,
                aud: kind.audience(),
            },
        )
    }

    /// Verifies a token of `kind`: its key, its `aud`, `issuer`, and its times.
    pub fn verify<C: DeserializeOwned>(
        &self,
        kind: TokenKind,
        issuer: &str,
        token: &str,
    ) -> Result<C, TokenError> {
        decode_jwt(self.key(kind), kind.audience(), issuer, token)
    }

    /// Verifies a join token and checks that it was issued for `room`.
    pub fn verify_join(
        &self,
        api_key: &str,
        token: &str,
        room: Option<&str>,
    ) -> Result<JoinClaims, TokenError> {
        verify_join_claims(self.verify(TokenKind::Join, api_key, token)?, room)
    }
}

/// Signs claims as an HS256 JWT with `{"alg":"HS256","typ":"JWT"}`.
pub fn encode_jwt<C: Serialize>(key: &[u8], claims: &C) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key),
    )
    .expect("HS256 signing of serialisable claims cannot fail")
}

/// Verifies an HS256 JWT's signature, audience (exactly `audience`, or none at all), issuer
/// and times, and decodes its claims.
pub fn decode_jwt<C: DeserializeOwned>(
    key: &[u8],
    audience: Option<&str>,
    issuer: &str,
    token: &str,
) -> Result<C, TokenError> {
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = LEEWAY_SECS;
    v.validate_nbf = true;
    v.set_issuer(&[issuer]);
    match audience {
        Some(aud) => {
            v.set_audience(&[aud]);
            v.set_required_spec_claims(&["exp", "nbf", "iss", "aud"]);
        }
        None => {
            // A token that names an audience is some other kind's.
            v.validate_aud = true;
            v.set_required_spec_claims(&["exp", "nbf", "iss"]);
        }
    }
    jsonwebtoken::decode::<C>(token, &DecodingKey::from_secret(key), &v)
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            jsonwebtoken::errors::ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            jsonwebtoken::errors::ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
            jsonwebtoken::errors::ErrorKind::InvalidAudience
            | jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(_) => TokenError::WrongKind,
            _ => TokenError::Invalid(e.to_string()),
        })
}

/// A join token's claims, checked: subject and user id agree, and it is for `room`.
fn verify_join_claims(claims: JoinClaims, room: Option<&str>) -> Result<JoinClaims, TokenError> {
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
            parent_room_id: String::new(),
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
        let keys = TokenKeys::derive(SECRET, None);
        let t = keys.sign(TokenKind::Join, &claims("r1", now() + 600));
        assert_eq!(keys.verify_join(KEY, &t, Some("r1")).unwrap().room_id, "r1");
        assert!(matches!(
            keys.verify_join(KEY, &t, Some("r2")),
            Err(TokenError::WrongRoom { .. })
        ));
        assert!(matches!(
            TokenKeys::derive("other-secret-0123", None).verify_join(KEY, &t, None),
            Err(TokenError::Invalid(_))
        ));
        assert_eq!(
            keys.verify_join("other-key", &t, None),
            Err(TokenError::WrongIssuer)
        );
        let old = keys.sign(TokenKind::Join, &claims("r1", now() - 120));
        assert_eq!(keys.verify_join(KEY, &old, None), Err(TokenError::Expired));
        assert!(matches!(
            keys.verify_join(KEY, "not.a.jwt", None),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn a_token_of_one_kind_is_refused_as_another() {
        let keys = TokenKeys::derive(SECRET, None);
        let join = keys.sign(TokenKind::Join, &claims("r1", now() + 600));
        let download = keys.sign(
            TokenKind::Download,
            &DownloadClaims {
                iss: KEY.into(),
                sub: "u1".into(),
                nbf: 0,
                exp: now() + 600,
            },
        );
        let livekit = keys.sign(TokenKind::LivekitAccess, &claims("r1", now() + 600));
        assert!(keys.verify_join(KEY, &download, None).is_err());
        assert!(keys.verify_join(KEY, &livekit, None).is_err());
        assert!(keys
            .verify::<DownloadClaims>(TokenKind::Download, KEY, &join)
            .is_err());
        assert!(keys
            .verify::<JoinClaims>(TokenKind::LivekitAccess, KEY, &join)
            .is_err());
        // Even with the same key, the audience tells them apart.
        let same = TokenKeys {
            join: Zeroizing::new(vec![7; 32]),
            download: Zeroizing::new(vec![7; 32]),
            livekit: Zeroizing::new(vec![7; 32]),
        };
        let join = same.sign(TokenKind::Join, &claims("r1", now() + 600));
        assert_eq!(
            same.verify::<JoinClaims>(TokenKind::Download, KEY, &join),
            Err(TokenError::WrongKind)
        );
        assert_eq!(
            same.verify::<JoinClaims>(TokenKind::LivekitAccess, KEY, &join),
            Err(TokenError::WrongKind)
        );
        let lk = same.sign(TokenKind::LivekitAccess, &claims("r1", now() + 600));
        assert_eq!(
            same.verify::<JoinClaims>(TokenKind::Join, KEY, &lk),
            Err(TokenError::WrongKind)
        );
    }

    #[test]
    fn no_token_is_signed_with_the_api_secret() {
        // The forgery this prevents: HS256 over "header.payload" with client.secret is exactly
        // an /auth signature of that text.
        let keys = TokenKeys::derive(SECRET, None);
        for kind in [
            TokenKind::Join,
            TokenKind::Download,
            TokenKind::LivekitAccess,
        ] {
            let t = keys.sign(kind, &claims("r1", now() + 600));
            let (signed, sig) = t.rsplit_once('.').unwrap();
            use base64::Engine;
            let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(sig)
                .unwrap();
            assert_ne!(
                sign(SECRET, signed.as_bytes()),
                hex::encode(sig),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn token_keys_follow_the_documented_derivation() {
        // docs/security.md: HKDF-SHA256(ikm = client.secret, salt = "enclave/token-keys/v1",
        // info = kind). This vector is what the sdk-js conformance test recomputes.
        let keys = TokenKeys::derive("secret-of-sixteen", None);
        let hk = Hkdf::<Sha256>::new(Some(b"enclave/token-keys/v1"), b"secret-of-sixteen");
        let mut join = [0u8; 32];
        hk.expand(b"join-token", &mut join).unwrap();
        assert_eq!(keys.key(TokenKind::Join), join);
        assert_ne!(keys.key(TokenKind::Join), keys.key(TokenKind::Download));
        assert_ne!(
            keys.key(TokenKind::Join),
            keys.key(TokenKind::LivekitAccess)
        );
    }

    #[test]
    fn join_token_header_is_hs256_jwt() {
        let keys = TokenKeys::derive(SECRET, None);
        let t = keys.sign(TokenKind::Join, &claims("r1", now() + 600));
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
