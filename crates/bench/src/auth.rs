//! The `/auth` API as the benchmarks call it: the credentials of the servers they start, and a
//! signed request (Plug-N-Meet's `API-KEY` and `HASH-SIGNATURE`, an HMAC of the body).

/// `/auth` API credentials of the server under test.
pub(crate) const API_KEY: &str = "bench-key";
pub(crate) const API_SECRET: &str = "bench-secret-0123456789abcdef0123";

/// A POST of `body` (JSON) to `url`, signed with the bench credentials.
pub(crate) fn signed_post(
    client: &reqwest::Client,
    url: &str,
    body: String,
) -> reqwest::RequestBuilder {
    let sig = enclave_server::auth::sign(API_SECRET, body.as_bytes());
    client
        .post(url)
        .header("Content-Type", "application/json")
        .header("API-KEY", API_KEY)
        .header("HASH-SIGNATURE", sig)
        .body(body)
}
