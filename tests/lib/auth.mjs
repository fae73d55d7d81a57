// The signed /auth API (Plug-N-Meet's): the body is JSON, API-KEY names the key and
// HASH-SIGNATURE is the hex HMAC-SHA256 of the exact body bytes under the API secret.

import { createHmac } from 'node:crypto';

/** `HASH-SIGNATURE` of `body` (a string or bytes) under `secret`. */
export function signBody(secret, body) {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/** The headers of a signed /auth request. */
export function authHeaders(apiKey, secret, body) {
  return { 'Content-Type': 'application/json', 'API-KEY': apiKey, 'HASH-SIGNATURE': signBody(secret, body) };
}

/** JSON.parse, or null. */
export function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * POST `${baseUrl}/auth${p}` with `bodyObj` signed under `secret`; resolves `{status, text, json}`
 * whatever the status (json is null when the reply is not JSON). `signal` bounds the request.
 */
export async function authPost(baseUrl, apiKey, secret, p, bodyObj, { signal } = {}) {
  const body = JSON.stringify(bodyObj);
  const res = await fetch(`${baseUrl}/auth${p}`, { method: 'POST', headers: authHeaders(apiKey, secret, body), body, signal });
  const text = await res.text();
  return { status: res.status, text, json: parseJson(text) };
}
