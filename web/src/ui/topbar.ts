// The meeting's top bar: the brand, the room's title with the connection dot and the recorder's
// indicators, the E2EE badge (it opens the security panel), the verification code and the
// layout switch.
import { h } from '../dom';
import type { E2eeStatus } from '../keystatus';
import { CodeChip, E2eeBadge, SecurityPanel, brand } from './badge';

export type ConnState = 'connecting' | 'connected' | 'reconnecting';

export interface TopBarOptions {
  title: string;
  /** The room's key model (shown in the security panel). */
  mode: 'server_key' | 'self_insert' | 'off';
  indicators: HTMLElement;
  layoutButton: HTMLElement;
}

export class TopBar {
  readonly el: HTMLElement;
  /** The security panel the badge opens (it stands before the top bar in the page). */
  readonly security: SecurityPanel;
  private readonly badge = new E2eeBadge();
  private readonly code = new CodeChip();
  private readonly connDot: HTMLElement;

  constructor(o: TopBarOptions) {
    this.connDot = h('span', { class: 'conn-dot', 'data-testid': 'connection-state', 'data-state': 'connecting', title: 'Connecting' });
    this.el = h(
      'header',
      { class: 'topbar' },
      brand(),
      h('div', { class: 'topbar-title' }, h('span', { class: 'room-title', 'data-testid': 'room-title' }, o.title), this.connDot, o.indicators),
      h('div', { class: 'topbar-right' }, this.badge.el, this.code.el, o.layoutButton),
    );
    this.security = new SecurityPanel(o.mode, () => this.security.toggle());
    const badge = this.badge.el;
    badge.classList.add('clickable');
    badge.tabIndex = 0;
    badge.setAttribute('aria-haspopup', 'dialog');
    badge.addEventListener('click', () => this.security.toggle());
    badge.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        this.security.toggle();
      }
    });
  }

  setConn(state: ConnState): void {
    this.connDot.dataset.state = state;
    this.connDot.title = state === 'connected' ? 'Connected' : state === 'reconnecting' ? 'Reconnecting' : 'Connecting';
  }

  /** The verification code to compare (null: none, a plain room). */
  setCode(code: string | null): void {
    this.code.set(code);
  }

  /** The key state on the badge and in the security panel. */
  setKeyStatus(status: E2eeStatus, code: string | null, generation: number | null): void {
    this.badge.set(status);
    this.security.set(status, code, generation);
  }
}
