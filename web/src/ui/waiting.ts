// The waiting room: the page a guest sees until a host lets them in, and the hosts' list of
// who waits (in the People panel), with admit and decline.
import type { WaitingUser } from '../api';
import { h, hueOf, icon, initials, replace } from '../dom';
import { brand } from './badge';

/** The guest's page; `setMessage` follows the host's message, `setNote` the connection. */
export class WaitingPage {
  readonly el: HTMLElement;
  private readonly msg: HTMLElement;
  private readonly note: HTMLElement;

  constructor(opts: { title: string; name: string; message: string; onLeave: () => void }) {
    this.msg = h('p', { 'data-testid': 'waiting-message' });
    this.note = h('p', { class: 'muted small', role: 'status', 'aria-live': 'polite' });
    const leave = h('button', { class: 'btn btn-ghost', type: 'button', 'data-testid': 'waiting-leave-button' }, 'Leave');
    leave.addEventListener('click', opts.onLeave);
    this.el = h(
      'main',
      { class: 'page page-center', 'data-testid': 'waiting-page', 'aria-busy': 'true' },
      brand(),
      h(
        'section',
        { class: 'card message-card message-info' },
        h('div', { class: 'message-icon' }, icon('people')),
        h('h1', { 'data-testid': 'page-title' }, opts.title),
        h('p', null, `You are in the waiting room, ${opts.name}. A host will let you in; this page moves on by itself.`),
        this.msg,
        h('div', { class: 'spinner', role: 'progressbar', 'aria-label': 'Waiting for a host' }),
        this.note,
        h('div', { class: 'message-actions' }, leave),
      ),
    );
    this.setMessage(opts.message);
  }

  setMessage(text: string): void {
    this.msg.textContent = text;
    this.msg.hidden = !text;
  }

  setNote(text: string): void {
    this.note.textContent = text;
  }
}

export interface WaitingActions {
  approve: (userId: string | 'all') => void;
  reject: (u: WaitingUser) => void;
}

/** The hosts' list of who waits; hidden while nobody does. */
export class WaitingList {
  readonly el: HTMLElement;
  private readonly list: HTMLElement;
  private readonly count: HTMLElement;

  constructor(private readonly actions: WaitingActions) {
    this.list = h('ul', { class: 'people-list' });
    this.count = h('span', { class: 'pill pill-warn', 'data-testid': 'waiting-count' });
    const all = h('button', { class: 'chip-btn', type: 'button', 'data-testid': 'waiting-approve-all-button', title: 'Let everyone in' }, 'Admit all');
    all.addEventListener('click', () => this.actions.approve('all'));
    this.el = h(
      'section',
      { class: 'waiting-list', 'data-testid': 'waiting-list', 'aria-label': 'Waiting room', hidden: true },
      h('header', { class: 'waiting-head' }, h('h3', null, 'Waiting to join'), this.count, all),
      this.list,
    );
  }

  render(users: WaitingUser[]): void {
    this.el.hidden = users.length === 0;
    this.count.textContent = String(users.length);
    replace(
      this.list,
      users.map((u) => {
        const approve = h('button', { class: 'chip-btn chip-ok', type: 'button', 'data-testid': 'waiting-approve-button', title: `Let ${u.name} in` }, icon('check', 'icon icon-xs'), 'Admit');
        approve.addEventListener('click', () => this.actions.approve(u.user_id));
        const reject = h('button', { class: 'chip-btn chip-danger', type: 'button', 'data-testid': 'waiting-reject-button', title: `Decline ${u.name}` }, icon('close', 'icon icon-xs'), 'Decline');
        reject.addEventListener('click', () => this.actions.reject(u));
        return h(
          'li',
          { class: 'person', 'data-testid': 'waiting-item', 'data-identity': u.user_id },
          h('div', { class: 'avatar avatar-sm', style: `--hue:${hueOf(u.user_id)}` }, initials(u.name || u.user_id)),
          h(
            'div',
            { class: 'person-main' },
            h('div', { class: 'person-name' }, h('span', null, u.name || u.user_id), h('span', { class: 'muted' }, ` · ${waited(u.waiting_seconds)}`)),
            h('div', { class: 'person-actions' }, approve, reject),
          ),
        );
      }),
    );
  }
}

function waited(s: number): string {
  if (s < 60) return 'just now';
  const m = Math.floor(s / 60);
  return m === 1 ? 'for 1 minute' : `for ${m} minutes`;
}
