// The meeting's banners under the top bar: a wrong key (with the way to enter it again, or to
// rejoin), a key that only some share, the connection lost, and sound the browser blocked. The
// first banner (breakout rooms) is given.
import { h, icon } from '../dom';
import type { KeySummary } from '../keystatus';
import { WRONG_KEY_BANNER, keyShareBanner } from '../messages';

export interface BannersOptions {
  /** A self-inserted key (enter it again) rather than the server's (rejoin). */
  selfInsert: boolean;
  onRekey: () => void;
  onEnableAudio: () => void;
  /** The banner shown first. */
  first: HTMLElement;
}

export class Banners {
  readonly el: HTMLElement;
  private readonly wrongKey: HTMLElement;
  private readonly wrongKeyText: HTMLElement;
  private readonly rekey: HTMLElement;
  private readonly keyShare: HTMLElement;
  private readonly keyShareText: HTMLElement;
  private readonly reconnecting: HTMLElement;
  private readonly audio: HTMLElement;

  constructor(o: BannersOptions) {
    this.wrongKeyText = h('p', { 'data-testid': 'wrong-key-text' });
    this.rekey = h(
      'button',
      { class: 'btn btn-light btn-sm', type: 'button', 'data-testid': o.selfInsert ? 'reenter-key-button' : 'rejoin-key-button' },
      o.selfInsert ? 'Enter the key again' : 'Rejoin',
    );
    this.rekey.addEventListener('click', o.onRekey);
    this.wrongKey = h('div', { class: 'banner banner-bad', role: 'alert', hidden: true, 'data-testid': 'wrong-key-banner' }, icon('alert'), this.wrongKeyText, this.rekey);
    this.reconnecting = h(
      'div',
      { class: 'banner banner-warn', role: 'status', hidden: true, 'data-testid': 'reconnecting-indicator' },
      h('span', { class: 'spinner spinner-sm' }),
      h('p', null, 'Connection lost — reconnecting…'),
    );
    const enableAudio = h('button', { class: 'btn btn-light btn-sm', type: 'button', 'data-testid': 'enable-audio-button' }, 'Turn on sound');
    enableAudio.addEventListener('click', o.onEnableAudio);
    this.audio = h('div', { class: 'banner banner-info', role: 'status', hidden: true }, icon('speaker'), h('p', null, 'Your browser blocked sound until you interact with the page.'), enableAudio);
    this.keyShareText = h('p', { 'data-testid': 'key-share-text' });
    this.keyShare = h('div', { class: 'banner banner-warn', role: 'status', hidden: true, 'data-testid': 'key-share-banner' }, icon('alert'), this.keyShareText);
    this.el = h('div', { class: 'banners' }, o.first, this.wrongKey, this.keyShare, this.reconnecting, this.audio);
  }

  /** The key state: ours matches nobody's, or only some share it (`others`: how many are here besides us). */
  keyState(s: KeySummary, others: number, name: (identity: string) => string): void {
    if (s.status === 'wrong-key') {
      // Our key matches nobody's: ours is the one to check.
      this.wrongKeyText.textContent = WRONG_KEY_BANNER;
      this.rekey.hidden = false;
      this.wrongKey.hidden = false;
    } else {
      this.wrongKey.hidden = true;
    }
    if (s.status === 'encrypted' && s.mismatched.length > 0) {
      // Some share our key and others differ: say how many, and name who differs.
      const total = 1 + others;
      this.keyShareText.textContent = keyShareBanner(1 + s.matched.length, Math.max(total, 1 + s.matched.length + s.mismatched.length), s.mismatched.map(name));
      this.keyShare.dataset.sharing = String(1 + s.matched.length);
      this.keyShare.hidden = false;
    } else {
      this.keyShare.hidden = true;
    }
  }

  setReconnecting(on: boolean): void {
    this.reconnecting.hidden = !on;
  }

  setAudioBlocked(blocked: boolean): void {
    this.audio.hidden = !blocked;
  }
}
