// Toasts: short notices in a polite live region (screen readers announce them). Test hook:
// data-testid="notification", data-kind = info | success | warning | error.
import { h, icon } from '../dom';

export type ToastKind = 'info' | 'success' | 'warning' | 'error';

let region: HTMLElement | null = null;

function container(): HTMLElement {
  if (region && document.body.contains(region)) return region;
  region = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite', 'aria-relevant': 'additions' });
  document.body.appendChild(region);
  return region;
}

export function toast(text: string, kind: ToastKind = 'info', ms?: number): void {
  const close = h('button', { class: 'toast-close', type: 'button', 'aria-label': 'Dismiss' }, icon('close'));
  const el = h(
    'div',
    { class: `toast toast-${kind}`, 'data-testid': 'notification', 'data-kind': kind },
    icon(kind === 'error' || kind === 'warning' ? 'alert' : kind === 'success' ? 'shield' : 'chat'),
    h('span', { class: 'toast-text' }, text),
    close,
  );
  const remove = () => {
    el.classList.add('leaving');
    setTimeout(() => el.remove(), 200);
  };
  close.addEventListener('click', remove);
  const c = container();
  c.appendChild(el);
  while (c.children.length > 4) c.firstElementChild?.remove();
  setTimeout(remove, ms ?? (kind === 'error' ? 10_000 : 6_000));
}
