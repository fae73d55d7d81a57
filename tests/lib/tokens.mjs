// LiveKit access tokens (JWT HS256 under the livekit_info key and secret), minted the way
// livekit-server-sdk does, for clients that join /rtc without a Plug-N-Meet join token.

import { createHmac } from 'node:crypto';

/** A token for `identity` in `room`: roomJoin, canPublish, canSubscribe, canPublishData, plus `grants`. */
export function livekitToken({ apiKey, secret, identity, name, room, ttlSeconds = 600, grants = {} }) {
  const now = Math.floor(Date.now() / 1000);
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const header = enc({ alg: 'HS256', typ: 'JWT' });
  const claims = enc({
    iss: apiKey,
    sub: identity,
    name: name ?? identity,
    nbf: now - 10,
    exp: now + ttlSeconds,
    video: { roomJoin: true, room, canPublish: true, canSubscribe: true, canPublishData: true, ...grants },
  });
  const sig = createHmac('sha256', secret).update(`${header}.${claims}`).digest('base64url');
  return `${header}.${claims}.${sig}`;
}
