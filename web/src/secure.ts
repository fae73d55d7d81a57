// Secure contexts. Browsers give the camera, the microphone and WebCrypto (which end-to-end
// encryption needs) only to https:// pages and localhost, so a client opened over plain http://
// from another machine cannot work. The server says through `GET /api/tls` whether it also
// answers HTTPS (and on which port) and whether its certificate comes from its own local
// certificate authority; `planStart` turns that into what the client shows.

/** The reply of `GET /api/tls`, after checking. */
export interface TlsInfo {
  /** The port on which this server answers HTTPS on the same host, or null when it does not. */
  https_port: number | null;
  /** Whether the HTTPS certificate is issued by the server's own local certificate authority. */
  local_ca: boolean;
}

/** What an older server (no `/api/tls`) or a failed request means: no HTTPS, no local CA. */
export const NO_TLS: Readonly<TlsInfo> = Object.freeze({ https_port: null, local_ca: false });

/** Where the server offers its certificate authority's certificate. */
export const CA_DOWNLOAD_PATH = '/ca.crt';

/** The parts of `location` that the HTTPS address is built from. */
export interface LocationParts {
  /** `location.hostname`: an IPv6 address comes with its brackets (`[fd00::1]`). */
  hostname: string;
  pathname: string;
  /** `location.search`: empty, or starting with `?`. */
  search: string;
}

export type StartPlan =
  /** A secure context: go on (verifyToken, pre-join); `caDownload`: offer the CA on the start page. */
  | { page: 'app'; caDownload: boolean }
  /**
   * Not a secure context: show the insecure-context page. `httpsUrl`: this page over HTTPS (same
   * path and query, so the join token carries over), or null when the server has no HTTPS.
   * `caDownload`: that HTTPS uses the server's own CA, so offer its certificate.
   */
  | { page: 'insecure'; httpsUrl: string | null; caDownload: boolean };

/** Checks a `/api/tls` reply; anything unexpected counts as "no HTTPS, no local CA". */
export function parseTlsInfo(json: unknown): TlsInfo {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { ...NO_TLS };
  const o = json as { https_port?: unknown; local_ca?: unknown };
  const port = o.https_port;
  const validPort = typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535;
  return { https_port: validPort ? port : null, local_ca: o.local_ca === true };
}

/** `https://<host>[:<port>]<path><query>`; port 443 is left out. */
export function httpsUrlFor(loc: LocationParts, port: number): string {
  let host = loc.hostname;
  // Browsers bracket IPv6 addresses in `hostname` already; bracket a bare one all the same.
  if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
  const path = loc.pathname.startsWith('/') ? loc.pathname : `/${loc.pathname}`;
  const search = loc.search === '?' ? '' : loc.search;
  return `https://${host}${port === 443 ? '' : `:${port}`}${path}${search}`;
}

/** What to show at startup, from the secure-context flag, this page's address and `/api/tls`. */
export function planStart(input: { isSecureContext: boolean; location: LocationParts; tls: TlsInfo }): StartPlan {
  const { tls } = input;
  if (input.isSecureContext) return { page: 'app', caDownload: tls.local_ca };
  const httpsUrl = tls.https_port === null ? null : httpsUrlFor(input.location, tls.https_port);
  // The certificate authority matters only for the HTTPS address offered here.
  return { page: 'insecure', httpsUrl, caDownload: httpsUrl !== null && tls.local_ca };
}

/**
 * `GET /api/tls` (no credentials). Never throws: a network error, an error status, a reply that
 * is not JSON (an older server) or no answer within `timeoutMs` gives `NO_TLS`.
 */
export async function fetchTlsInfo(base = './', fetchImpl: typeof fetch = fetch, timeoutMs = 5000): Promise<TlsInfo> {
  const ctrl = typeof AbortController === 'function' ? new AbortController() : null;
  const timer = ctrl ? setTimeout(() => ctrl.abort(), timeoutMs) : undefined;
  try {
    const res = await fetchImpl(`${base}api/tls`, {
      method: 'GET',
      headers: { Accept: 'application/json' },
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
      signal: ctrl?.signal ?? null,
    });
    if (!res.ok) return { ...NO_TLS };
    return parseTlsInfo(await res.json());
  } catch {
    return { ...NO_TLS };
  } finally {
    clearTimeout(timer);
  }
}
