// Full-page messages: loading, errors, unsupported browser, insecure context, left / ended.
import { h, icon, replace } from '../dom';
import { CA_DOWNLOAD_PATH } from '../secure';
import { brand } from './badge';

export function loadingPage(root: HTMLElement, text: string): void {
  replace(
    root,
    h(
      'main',
      { class: 'page page-center', 'data-testid': 'loading-page', 'aria-busy': 'true' },
      brand(),
      h('div', { class: 'spinner', role: 'progressbar', 'aria-label': text }),
      h('p', { class: 'muted' }, text),
    ),
  );
}

export interface PageAction {
  label: string;
  testid: string;
  primary?: boolean;
  href?: string;
  onClick?: () => void;
}

/** Renders a full-page message; returns its card, for lines added later (`caDownloadNote`). */
export function messagePage(
  root: HTMLElement,
  opts: { testid: string; kind: 'error' | 'info'; title: string; body: string; detail?: string; actions?: PageAction[]; data?: Record<string, string> },
): HTMLElement {
  const attrs: Record<string, string> = { class: 'page page-center', 'data-testid': opts.testid };
  for (const [k, v] of Object.entries(opts.data ?? {})) attrs[`data-${k}`] = v;
  const actions = (opts.actions ?? []).map((a) =>
    a.href
      ? h('a', { class: `btn ${a.primary ? 'btn-primary' : 'btn-ghost'}`, href: a.href, 'data-testid': a.testid, rel: 'noopener noreferrer' }, a.label)
      : h('button', { class: `btn ${a.primary ? 'btn-primary' : 'btn-ghost'}`, type: 'button', 'data-testid': a.testid, onclick: () => a.onClick?.() }, a.label),
  );
  const card = h(
    'section',
    { class: `card message-card message-${opts.kind}` },
    h('div', { class: 'message-icon' }, icon(opts.kind === 'error' ? 'alert' : 'shield')),
    h('h1', { 'data-testid': 'page-title' }, opts.title),
    h('p', { 'data-testid': 'page-body' }, opts.body),
    opts.detail ? h('p', { class: 'muted small' }, opts.detail) : null,
    actions.length ? h('div', { class: 'message-actions' }, actions) : null,
  );
  replace(root, h('main', attrs, brand(), card));
  (root.querySelector('.message-actions .btn') as HTMLElement | null)?.focus();
  return card;
}

function caLink(label: string): HTMLAnchorElement {
  return h('a', { href: CA_DOWNLOAD_PATH, 'data-testid': 'ca-download-link' }, label);
}

/** The start page's line about the server's own certificate authority, with its download link. */
export function caDownloadNote(): HTMLElement {
  return h(
    'p',
    { class: 'muted small ca-note', 'data-testid': 'ca-note' },
    'This server uses its own certificate authority: ',
    caLink('download it'),
    ' to trust it on other devices.',
  );
}

/**
 * Opened over plain http:// from another machine (not a secure context): the browser would give
 * this page no camera, no microphone and no WebCrypto, so say so instead of a pre-join that
 * cannot work. `httpsUrl`: this page over HTTPS (null when the server has none); `caDownload`:
 * that HTTPS uses the server's own certificate authority.
 */
export function insecureContextPage(root: HTMLElement, opts: { httpsUrl: string | null; caDownload: boolean }): void {
  const card = h(
    'section',
    { class: 'card message-card message-error insecure-card', 'aria-labelledby': 'insecure-title' },
    h('div', { class: 'message-icon' }, icon('unlock')),
    h('h1', { id: 'insecure-title', 'data-testid': 'page-title' }, 'This page needs a secure connection'),
    h(
      'p',
      { 'data-testid': 'page-body' },
      'Meetings need a secure (HTTPS) connection, because browsers give the camera, the microphone and encryption only to https:// pages.',
    ),
    opts.httpsUrl
      ? h(
          'p',
          { class: 'insecure-open' },
          'Open it over HTTPS: ',
          h(
            'a',
            { class: 'insecure-link', href: opts.httpsUrl, target: '_top', 'data-testid': 'insecure-context-https-link' },
            opts.httpsUrl,
          ),
        )
      : h(
          'p',
          { 'data-testid': 'insecure-context-admin' },
          'The administrator of this server must serve it over HTTPS (see docs/deploy.md).',
        ),
    opts.httpsUrl && opts.caDownload
      ? h(
          'p',
          { class: 'muted small ca-note' },
          'Your browser will warn about that address unless this server’s certificate authority is trusted on this device: ',
          caLink('download it'),
          '.',
        )
      : null,
  );
  replace(root, h('main', { class: 'page page-center', 'data-testid': 'insecure-context-page' }, brand(), card));
  (root.querySelector('[data-testid="insecure-context-https-link"]') as HTMLElement | null)?.focus();
}
