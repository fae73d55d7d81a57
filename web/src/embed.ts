// Where this client runs. Served by the server itself, everything is relative to the page. Built
// into another site's page the way Plug-N-Meet's LMS plugins do it (the script and style lists of
// `getClientFiles`, a `#plugNmeet-app` element, the server's URL in `window.plugNmeetConfig` or
// `window.PLUG_N_MEET_SERVER_URL`, the join token in the page's own URL), the API, the media
// server and the E2EE worker are on the server's origin instead: the API answers any origin
// (CORS; the join token, never a cookie, is the credential), and since a worker must come from
// the page's own origin, its script is fetched and started from a blob: URL.

/** The elements the client mounts into: its own page's, or an embedding page's. */
export const MOUNT_IDS = ['app', 'plugNmeet-app'] as const;

/** What the embedding page may say about the server. */
interface EmbedGlobals {
  plugNmeetConfig?: { serverUrl?: unknown };
  PLUG_N_MEET_SERVER_URL?: unknown;
}

/**
 * The server's base URL (ending in `/`): the embedding page's setting if it names an http(s)
 * URL, else `./` (this page's own server).
 */
export function serverBase(globals: EmbedGlobals): string {
  const given = globals.plugNmeetConfig?.serverUrl ?? globals.PLUG_N_MEET_SERVER_URL;
  if (typeof given !== 'string' || !given.trim()) return './';
  let url: URL;
  try {
    url = new URL(given.trim());
  } catch {
    return './';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return './';
  const path = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`;
  return `${url.origin}${path}`;
}

/** Where `path` (relative, e.g. `api/verifyToken`) is on the server. */
export function serverUrl(base: string, path: string): string {
  return `${base}${path.replace(/^\.?\//, '')}`;
}

/** The server's location (for the media server's default WebSocket URL). */
export function serverLocation(base: string, page: { href: string }): { protocol: string; host: string } {
  const u = new URL(base, page.href);
  return { protocol: u.protocol, host: u.host };
}

/** Whether the server is on another origin than the page. */
export function isCrossOrigin(base: string, page: { href: string; origin: string }): boolean {
  return new URL(base, page.href).origin !== page.origin;
}

/** The element to mount into, or null when the page has none. */
export function mountPoint(doc: Pick<Document, 'getElementById'>): HTMLElement | null {
  for (const id of MOUNT_IDS) {
    const el = doc.getElementById(id);
    if (el) return el;
  }
  return null;
}

export const WORKER_PATH = 'assets/worker/livekit-client.e2ee.worker.js';

/** A URL this page may start the E2EE worker from. */
export async function e2eeWorkerUrl(base: string, page: { href: string; origin: string }): Promise<string> {
  const url = serverUrl(base, WORKER_PATH);
  if (!isCrossOrigin(base, page)) return url;
  const res = await fetch(url, { credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer' });
  if (!res.ok) throw new Error(`the encryption worker did not load (HTTP ${res.status})`);
  const blob = new Blob([await res.text()], { type: 'text/javascript' });
  return URL.createObjectURL(blob);
}
