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

/** What the security panel says about the key model. */
export function keyModelText(mode: 'server_key' | 'self_insert' | 'off'): { title: string; body: string } {
  if (mode === 'server_key') {
    return {
      title: 'Key made by the server for this meeting',
      body:
        'It is replaced whenever someone joins or leaves: a newcomer cannot read what was said before they came, and ' +
        'someone who leaves or is removed cannot read what is said after. The verification code changes with it.',
    };
  }
  if (mode === 'self_insert') {
    return {
      title: 'Key you share with the others (a passphrase)',
      body:
        'It stays the same for the whole meeting: the server never has it, so it cannot replace it. Someone who is ' +
        'removed keeps it and could read the meeting if a participant passed the encrypted media on to them. To lock ' +
        'someone out for good, end the meeting and start again with a new passphrase.',
    };
  }
  return { title: 'Not end-to-end encrypted', body: 'The server can see and hear this meeting.' };
}

/**
 * The security panel, opened from the badge: the status, the key model and what it guarantees
 * when people come and go, and the code to compare.
 */
export class SecurityPanel {
  readonly el: HTMLElement;
  private readonly statusText: HTMLElement;
  private readonly codeText: HTMLElement;
  private readonly epochText: HTMLElement;

  constructor(mode: 'server_key' | 'self_insert' | 'off', onClose: () => void) {
    const model = keyModelText(mode);
    this.statusText = h('p', { 'data-testid': 'security-status' });
    this.codeText = h('span', { class: 'code-inline', 'data-testid': 'security-code' });
    this.epochText = h('span', { 'data-testid': 'security-epoch' });
    const close = h('button', { class: 'icon-btn', type: 'button', title: 'Close', 'aria-label': 'Close' }, icon('close'));
    close.addEventListener('click', onClose);
    this.el = h(
      'div',
      { class: 'security-panel', role: 'dialog', 'aria-label': 'Encryption', hidden: true, 'data-testid': 'security-panel' },
      h('div', { class: 'security-head' }, h('strong', null, 'Encryption'), close),
      this.statusText,
      h('div', { class: 'security-model', 'data-testid': 'security-key-model', 'data-mode': mode }, h('strong', null, model.title), h('p', null, model.body)),
      mode === 'off'
        ? null
        : h(
            'p',
            { class: 'security-code-line' },
            'Verification code ',
            this.codeText,
            this.epochText,
            h('br'),
            h('small', null, 'Everyone with the same key sees the same code. Compare it by voice or another channel.'),
          ),
    );
  }

  set(status: E2eeStatus, code: string | null, generation: number | null): void {
    this.statusText.textContent = DESCRIPTIONS[status];
    this.codeText.textContent = code ?? '—';
    this.epochText.textContent = generation ? ` (key ${generation} of this meeting)` : '';
  }

  toggle(): void {
    this.el.hidden = !this.el.hidden;
  }
}
