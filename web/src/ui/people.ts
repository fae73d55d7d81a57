// The participant list, with host actions for hosts.
import { h, hueOf, icon, initials, replace } from '../dom';
import { panelHead } from './parts';

export interface PersonView {
  identity: string;
  name: string;
  isLocal: boolean;
  isAdmin: boolean;
  micOn: boolean;
  camOn: boolean;
  mismatch: boolean;
  /** Receives but sends nothing (asked to be hidden in an encrypted room). */
  observer?: boolean;
  /** A host locked their microphone / camera (from the permission the server announces). */
  micLocked?: boolean;
  camLocked?: boolean;
  micTrackSid: string | null;
  camTrackSid: string | null;
  /** When they raised their hand (Unix ms), or null. */
  handRaisedAt: number | null;
  presenter: boolean;
}

export interface PeopleActions {
  canModerate: boolean;
  mute: (p: PersonView) => void;
  stopVideo: (p: PersonView) => void;
  remove: (p: PersonView) => void;
  /** Locks or unlocks one participant's microphone or camera. */
  lock: (p: PersonView, what: 'mic' | 'webcam', lock: boolean) => void;
  /** Lowers one participant's hand, or everyone's (null). */
  lowerHand: (p: PersonView | null) => void;
  /** Makes them the presenter. */
  makePresenter: (p: PersonView) => void;
}

export class PeoplePanel {
  readonly el: HTMLElement;
  private readonly list: HTMLElement;
  private readonly count: HTMLElement;
  private readonly hands: HTMLElement;

  constructor(private readonly actions: PeopleActions, onClose: () => void, footer: HTMLElement | null, top: HTMLElement | null = null) {
    this.list = h('ul', { class: 'people-list', 'data-testid': 'participant-list' });
    this.count = h('span', { class: 'pill' });
    this.hands = h('div', { class: 'hand-queue', hidden: true, 'data-testid': 'hand-queue' });
    this.el = h(
      'section',
      { class: 'panel people-panel', 'aria-label': 'Participants', 'data-testid': 'participants-panel' },
      panelHead('People', 'Close participants', onClose, this.count),
      top,
      this.hands,
      this.list,
      footer ? h('footer', { class: 'panel-foot' }, footer) : null,
    );
  }

  render(people: PersonView[]): void {
    this.count.textContent = String(people.length);
    // Raised hands first, in the order they went up.
    const raised = people.filter((p) => p.handRaisedAt !== null).sort((a, b) => (a.handRaisedAt ?? 0) - (b.handRaisedAt ?? 0));
    people = [...raised, ...people.filter((p) => p.handRaisedAt === null)];
    this.hands.hidden = raised.length === 0;
    if (raised.length) {
      const lowerAll = this.actions.canModerate
        ? h('button', { class: 'chip-btn', type: 'button', 'data-testid': 'lower-all-hands-button' }, 'Lower all')
        : null;
      lowerAll?.addEventListener('click', () => this.actions.lowerHand(null));
      replace(
        this.hands,
        h('span', { class: 'hand-queue-title' }, icon('hand', 'icon icon-sm'), `${raised.length} raised ${raised.length === 1 ? 'hand' : 'hands'}: `, raised.map((p) => p.name).join(', ')),
        lowerAll,
      );
    }
    const items = people.map((p) => {
      const actions: HTMLElement[] = [];
      if (this.actions.canModerate && !p.isLocal && p.handRaisedAt !== null) {
        const lower = h('button', { class: 'chip-btn', type: 'button', 'data-testid': 'lower-hand-button', title: `Lower ${p.name}’s hand` }, icon('hand', 'icon icon-xs'), 'Lower');
        lower.addEventListener('click', () => this.actions.lowerHand(p));
        actions.push(lower);
      }
      if (this.actions.canModerate && !p.isLocal) {
        const mute = h(
          'button',
          { class: 'chip-btn', type: 'button', 'data-testid': 'admin-mute', disabled: !p.micOn || !p.micTrackSid, title: p.micOn ? `Mute ${p.name}` : 'Already muted' },
          icon('micOff', 'icon icon-xs'),
          'Mute',
        );
        mute.addEventListener('click', () => this.actions.mute(p));
        const stop = h(
          'button',
          { class: 'chip-btn', type: 'button', 'data-testid': 'admin-stop-video', disabled: !p.camOn || !p.camTrackSid, title: p.camOn ? `Turn off ${p.name}’s camera` : 'Camera is off' },
          icon('cameraOff', 'icon icon-xs'),
          'Video',
        );
        stop.addEventListener('click', () => this.actions.stopVideo(p));
        const remove = h(
          'button',
          { class: 'chip-btn chip-danger', type: 'button', 'data-testid': 'admin-remove', title: `Remove ${p.name} from the meeting` },
          icon('remove', 'icon icon-xs'),
          'Remove',
        );
        remove.addEventListener('click', () => this.actions.remove(p));
        const lockBtn = (what: 'mic' | 'webcam', locked: boolean, label: string, testid: string) => {
          const b = h(
            'button',
            { class: `chip-btn${locked ? ' chip-on' : ''}`, type: 'button', 'data-testid': testid, 'aria-pressed': String(locked), title: `${locked ? 'Unlock' : 'Lock'} ${p.name}’s ${label}` },
            icon(locked ? 'lock' : 'unlock', 'icon icon-xs'),
            label,
          );
          b.addEventListener('click', () => this.actions.lock(p, what, !locked));
          return b;
        };
        if (!p.isAdmin && !p.observer) {
          actions.push(lockBtn('mic', !!p.micLocked, 'mic', 'admin-lock-mic'), lockBtn('webcam', !!p.camLocked, 'camera', 'admin-lock-cam'));
        }
        if (!p.presenter) {
          const present = h('button', { class: 'chip-btn', type: 'button', 'data-testid': 'make-presenter-button', title: `Make ${p.name} the presenter` }, 'Presenter');
          present.addEventListener('click', () => this.actions.makePresenter(p));
          actions.push(present);
        }
        actions.push(mute, stop, remove);
      }
      return h(
        'li',
        { class: 'person', 'data-testid': 'participant-item', 'data-identity': p.identity },
        h('div', { class: 'avatar avatar-sm', style: `--hue:${hueOf(p.identity)}` }, initials(p.name)),
        h(
          'div',
          { class: 'person-main' },
          h(
            'div',
            { class: 'person-name' },
            h('span', null, p.name),
            p.isLocal ? h('span', { class: 'muted' }, ' (you)') : null,
            p.isAdmin ? h('span', { class: 'pill pill-host' }, 'Host') : null,
            p.presenter ? h('span', { class: 'pill pill-presenter', 'data-testid': 'presenter-pill' }, 'Presenter') : null,
            p.handRaisedAt !== null ? h('span', { class: 'pill pill-hand', 'data-testid': 'hand-raised-indicator', title: 'Hand raised' }, icon('hand', 'icon icon-xs')) : null,
            p.observer ? h('span', { class: 'pill pill-warn', 'data-testid': 'observer-pill', title: 'Receives the meeting and can read it, sends nothing' }, 'Observer') : null,
            p.mismatch ? h('span', { class: 'pill pill-bad', title: 'Uses a different encryption key' }, icon('alert', 'icon icon-xs'), 'Key differs') : null,
          ),
          actions.length ? h('div', { class: 'person-actions' }, actions) : null,
        ),
        h(
          'div',
          { class: 'person-state' },
          h('span', { title: p.micOn ? 'Microphone on' : 'Muted', class: p.micOn ? '' : 'off' }, icon(p.micOn ? 'mic' : 'micOff', 'icon icon-sm')),
          h('span', { title: p.camOn ? 'Camera on' : 'Camera off', class: p.camOn ? '' : 'off' }, icon(p.camOn ? 'camera' : 'cameraOff', 'icon icon-sm')),
        ),
      );
    });
    replace(this.list, items);
  }
}
