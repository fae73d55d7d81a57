// A video tile: one per participant (camera, or an avatar when the camera is off) and one per
// screen share. The tile says who it is, whether they are muted or speaking, and, in an
// encrypted meeting, when their media cannot be decrypted (never a silent black tile).
import type { VideoTrack } from 'livekit-client';

import { h, hueOf, icon, initials, replace } from '../dom';

export interface TileState {
  name: string;
  video: VideoTrack | null;
  /** true: muted, false: unmuted, null: no microphone at all. */
  micMuted: boolean | null;
  speaking: boolean;
  mismatch: boolean;
  isAdmin: boolean;
  /** Their hand is raised. */
  hand: boolean;
  /** They present (Plug-N-Meet's presenter). */
  presenter: boolean;
}

export class Tile {
  readonly el: HTMLElement;
  private readonly videoEl: HTMLVideoElement;
  private readonly avatar: HTMLElement;
  private readonly nameEl: HTMLElement;
  private readonly micEl: HTMLElement;
  private readonly overlay: HTMLElement;
  private readonly handEl: HTMLElement;
  private readonly presenterEl: HTMLElement;
  private attached: VideoTrack | null = null;
  private last: Partial<TileState> = {};

  constructor(
    readonly key: string,
    readonly identity: string,
    readonly isLocal: boolean,
    readonly isScreen: boolean,
    onActivate: (key: string) => void,
  ) {
    this.videoEl = h('video', { class: `tile-video${isLocal && !isScreen ? ' mirrored' : ''}`, autoplay: true, playsinline: true });
    this.videoEl.muted = true; // audio is played by separate <audio> elements
    this.avatar = h('div', { class: 'avatar avatar-lg' });
    this.nameEl = h('span', { class: 'tile-name' });
    this.micEl = h('span', { class: 'tile-mic' });
    this.overlay = h(
      'div',
      { class: 'tile-overlay', hidden: true, 'data-testid': 'tile-key-mismatch' },
      icon('lock'),
      h('span', null, isLocal ? 'Others cannot decrypt your media' : 'Can’t decrypt: different encryption key'),
    );
    this.presenterEl = h('span', { class: 'pill pill-presenter', hidden: true, 'data-testid': 'presenter-badge' }, 'Presenter');
    this.handEl = h('span', { class: 'tile-hand', hidden: true, 'data-testid': 'hand-raised-indicator', title: 'Hand raised' }, icon('hand', 'icon icon-sm'));
    const testid = isLocal ? (isScreen ? 'local-screen-tile' : 'local-tile') : isScreen ? 'remote-screen-tile' : 'remote-tile';
    this.el = h(
      'div',
      {
        class: `tile${isScreen ? ' tile-screen' : ''}${isLocal ? ' tile-local' : ''}`,
        'data-testid': testid,
        'data-identity': identity,
        'data-tile-key': key,
        tabindex: '0',
        role: 'group',
      },
      this.videoEl,
      h('div', { class: 'tile-avatar' }, this.avatar),
      this.overlay,
      this.handEl,
      h('div', { class: 'tile-label' }, this.micEl, this.nameEl, this.presenterEl),
    );
    this.el.addEventListener('dblclick', () => onActivate(key));
    this.el.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') onActivate(key);
    });
  }

  update(s: TileState): void {
    if (this.attached !== s.video) {
      if (this.attached) this.attached.detach(this.videoEl);
      this.attached = s.video;
      if (s.video) s.video.attach(this.videoEl);
    }
    const hasVideo = !!s.video && !s.video.isMuted;
    this.el.classList.toggle('has-video', hasVideo);
    this.el.dataset.video = hasVideo ? 'on' : 'off';
    if (s.name !== this.last.name || s.isAdmin !== this.last.isAdmin) {
      const label = this.isScreen ? `${s.name}’s screen` : this.isLocal ? `${s.name} (you)` : s.name;
      this.nameEl.textContent = label;
      this.el.setAttribute('aria-label', label);
      this.avatar.textContent = initials(s.name);
      this.avatar.style.setProperty('--hue', String(hueOf(this.identity)));
    }
    if (s.micMuted !== this.last.micMuted) {
      this.el.dataset.muted = String(s.micMuted !== false);
      if (this.isScreen || s.micMuted === false) replace(this.micEl);
      else replace(this.micEl, icon('micOff', 'icon icon-sm'));
      this.micEl.title = s.micMuted === false ? '' : 'Muted';
    }
    this.el.classList.toggle('speaking', s.speaking && !this.isScreen);
    this.el.dataset.speaking = String(s.speaking && !this.isScreen);
    this.overlay.hidden = !s.mismatch;
    this.handEl.hidden = !s.hand || this.isScreen;
    this.el.dataset.hand = String(s.hand && !this.isScreen);
    this.presenterEl.hidden = !s.presenter || this.isScreen;
    this.el.dataset.presenter = String(s.presenter && !this.isScreen);
    this.el.dataset.keyMismatch = String(s.mismatch);
    this.last = { ...s, video: null };
  }

  /** Shows a reaction floating over the tile for a few seconds. */
  react(name: string, emoji: string): void {
    const bubble = h('span', { class: 'reaction-bubble', 'data-testid': 'reaction-bubble', 'data-reaction': name, 'aria-hidden': 'true' }, emoji);
    this.el.appendChild(bubble);
    setTimeout(() => bubble.remove(), 3000);
  }

  destroy(): void {
    if (this.attached) this.attached.detach(this.videoEl);
    this.attached = null;
    this.el.remove();
  }
}
