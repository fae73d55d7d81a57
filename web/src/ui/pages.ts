// Full-page messages: loading, errors, unsupported browser, left / ended.
import { h, icon, replace } from '../dom';
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

export function messagePage(
  root: HTMLElement,
  opts: { testid: string; kind: 'error' | 'info'; title: string; body: string; detail?: string; actions?: PageAction[]; data?: Record<string, string> },
): void {
  const attrs: Record<string, string> = { class: 'page page-center', 'data-testid': opts.testid };
  for (const [k, v] of Object.entries(opts.data ?? {})) attrs[`data-${k}`] = v;
  const actions = (opts.actions ?? []).map((a) =>
    a.href
      ? h('a', { class: `btn ${a.primary ? 'btn-primary' : 'btn-ghost'}`, href: a.href, 'data-testid': a.testid, rel: 'noopener noreferrer' }, a.label)
      : h('button', { class: `btn ${a.primary ? 'btn-primary' : 'btn-ghost'}`, type: 'button', 'data-testid': a.testid, onclick: () => a.onClick?.() }, a.label),
  );
  replace(
    root,
    h(
      'main',
      attrs,
      brand(),
      h(
        'section',
        { class: `card message-card message-${opts.kind}` },
        h('div', { class: 'message-icon' }, icon(opts.kind === 'error' ? 'alert' : 'shield')),
        h('h1', { 'data-testid': 'page-title' }, opts.title),
        h('p', { 'data-testid': 'page-body' }, opts.body),
        opts.detail ? h('p', { class: 'muted small' }, opts.detail) : null,
        actions.length ? h('div', { class: 'message-actions' }, actions) : null,
      ),
    ),
  );
  (root.querySelector('.message-actions .btn') as HTMLElement | null)?.focus();
}
