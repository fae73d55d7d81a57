// The lock badge (always visible: is this meeting end-to-end encrypted, and is it working?) and
// the verification code people compare out of band.
import { h, icon, replace } from '../dom';
import type { E2eeStatus } from '../keystatus';

const DESCRIPTIONS: Record<E2eeStatus, string> = {
  encrypted:
    'End-to-end encrypted: audio, video and chat are encrypted in your browser with a key the server does not have.',
  'wrong-key':
    "End-to-end encrypted, but your key doesn't match someone else's: you can't see or hear each other.",
  'waiting-for-key': 'End-to-end encrypted: enter the meeting key to join.',
  'not-encrypted': 'Not end-to-end encrypted: the server can see and hear this meeting.',
};

export class E2eeBadge {
  readonly el: HTMLElement;
  private readonly status: HTMLElement;
  private readonly label: HTMLElement;
  private readonly iconBox: HTMLElement;

  constructor() {
    this.status = h('span', { class: 'badge-status', 'data-testid': 'e2ee-status' });
    this.label = h('span', { class: 'badge-label' });
    this.iconBox = h('span', { class: 'badge-icon' });
    this.el = h('div', { class: 'e2ee-badge', role: 'status', 'data-testid': 'e2ee-badge' }, this.iconBox, this.label, this.status);
  }

  set(status: E2eeStatus): void {
    this.el.dataset.status = status;
    this.status.dataset.status = status;
    this.status.textContent = status;
    replace(this.iconBox, icon(status === 'not-encrypted' ? 'unlock' : status === 'wrong-key' ? 'alert' : 'lock'));
    this.label.textContent = 'End-to-end';
    this.el.title = DESCRIPTIONS[status];
    this.el.setAttribute('aria-label', DESCRIPTIONS[status]);
  }
}

export class CodeChip {
  readonly el: HTMLElement;
  private readonly code: HTMLElement;

  constructor() {
    this.code = h('span', { class: 'code-value', 'data-testid': 'verification-code' });
    this.el = h(
      'div',
      {
        class: 'code-chip',
        title:
          'Verification code: everyone using the same key sees the same code. Compare it by voice or another channel to be sure nobody is in the middle.',
        hidden: true,
      },
      h('span', { class: 'code-label' }, 'Code'),
      this.code,
    );
  }

  set(code: string | null): void {
    this.code.textContent = code ?? '';
    this.el.hidden = !code;
  }
}

export function brand(): HTMLElement {
  return h('div', { class: 'brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, icon('shield')), h('span', { class: 'brand-name' }, 'Enclave'));
}
