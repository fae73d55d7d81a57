// The stage: a tile per participant (their camera, or an avatar) and one per screen share, laid
// out as a grid or in speaker view (the pinned tile, a screen share or the active speaker large,
// the others in a strip), and the audio elements that play the others' microphones.
import {
  LocalParticipant,
  Track,
  type Participant,
  type RemoteParticipant,
  type RemoteTrack,
  type Room,
  type TrackPublication,
  type VideoTrack,
} from 'livekit-client';

import { h, icon, replace } from './dom';
import { bestGrid } from './layout';
import { REACTIONS, handRaisedAt, isPresenter, type ReactionName } from './protocol';
import type { Roster } from './roster';
import type { Layout } from './store';
import { Tile } from './ui/tiles';

export interface StageOptions {
  room: Room;
  roster: Roster;
  layout: Layout;
  /** The person chose another layout (kept for the session). */
  onLayout: (layout: Layout) => void;
  ended: () => boolean;
}

export class Stage {
  /** The stage with the strip under it (speaker view). */
  readonly el: HTMLElement;
  /** Where the others' audio plays. */
  readonly audioBox: HTMLElement;
  /** The top bar's switch between grid and speaker view. */
  readonly layoutButton: HTMLButtonElement;
  private readonly stage: HTMLElement;
  private readonly strip: HTMLElement;
  private readonly tiles = new Map<string, Tile>();
  private readonly audioEls = new Map<string, HTMLMediaElement>();
  private readonly speaking = new Set<string>();
  private current: Layout;
  private pinned: string | null = null;
  private resizeObs: ResizeObserver | null = null;

  constructor(private readonly o: StageOptions) {
    this.current = o.layout;
    this.stage = h('div', { class: 'stage', 'data-testid': 'stage' });
    this.strip = h('div', { class: 'strip' });
    this.el = h('main', { class: 'stage-wrap', 'data-layout': this.current }, this.stage, this.strip);
    this.audioBox = h('div', { class: 'audio-sink', 'aria-hidden': 'true' });
    this.layoutButton = h('button', { class: 'icon-btn', type: 'button', 'data-testid': 'layout-toggle' });
    this.layoutButton.addEventListener('click', () => this.setLayout(this.current === 'grid' ? 'spotlight' : 'grid'));
    this.renderLayoutButton();
  }

  get layout(): Layout {
    return this.current;
  }

  /** On the page: the layout follows the stage's size. */
  start(): void {
    this.resizeObs = new ResizeObserver(() => this.relayout());
    this.resizeObs.observe(this.el);
  }

  destroy(): void {
    this.resizeObs?.disconnect();
    for (const t of this.tiles.values()) t.destroy();
    this.tiles.clear();
    for (const el of this.audioEls.values()) el.remove();
    this.audioEls.clear();
  }

  /** Brings the tiles in line with the room. */
  sync(): void {
    const { roster } = this.o;
    const want = new Map<string, { p: Participant; screen: boolean; video: VideoTrack | null; mic: TrackPublication | undefined }>();
    for (const p of roster.participants()) {
      const cam = p.getTrackPublication(Track.Source.Camera);
      const mic = p.getTrackPublication(Track.Source.Microphone);
      const camTrack = cam?.track && !cam.isMuted ? (cam.track as VideoTrack) : null;
      want.set(`${p.identity}\u0000camera`, { p, screen: false, video: camTrack, mic });
      const scr = p.getTrackPublication(Track.Source.ScreenShare);
      if (scr) want.set(`${p.identity}\u0000screen`, { p, screen: true, video: (scr.track as VideoTrack | undefined) ?? null, mic: undefined });
    }
    for (const [k, t] of this.tiles) {
      if (!want.has(k)) {
        t.destroy();
        this.tiles.delete(k);
      }
    }
    for (const [k, w] of want) {
      let t = this.tiles.get(k);
      if (!t) {
        t = new Tile(k, w.p.identity, w.p instanceof LocalParticipant, w.screen, (key) => this.pin(key));
        this.tiles.set(k, t);
      }
      t.update({
        name: roster.displayName(w.p.identity),
        video: w.video,
        micMuted: w.mic ? w.mic.isMuted : null,
        speaking: this.speaking.has(w.p.identity),
        mismatch: roster.mismatch(w.p),
        isAdmin: roster.isHost(w.p),
        hand: handRaisedAt(w.p.metadata) !== null,
        presenter: isPresenter(w.p.metadata),
      });
    }
    this.relayout();
  }

  /** Who speaks now (LiveKit's active speakers). */
  setSpeakers(speakers: Participant[]): void {
    this.speaking.clear();
    for (const s of speakers) this.speaking.add(s.identity);
    for (const t of this.tiles.values()) {
      const on = this.speaking.has(t.identity) && !t.isScreen;
      t.el.classList.toggle('speaking', on);
      t.el.dataset.speaking = String(on);
    }
    if (this.current === 'spotlight' && !this.pinned) this.relayout();
  }

  /** They left: no longer speaking, nor pinned. */
  participantLeft(identity: string): void {
    this.speaking.delete(identity);
    if (this.pinned?.startsWith(`${identity}\u0000`)) this.pinned = null;
  }

  /** A reaction floats over their camera tile. */
  showReaction(identity: string, name: ReactionName): void {
    this.tiles.get(`${identity}\u0000camera`)?.react(name, REACTIONS[name]);
  }

  attachAudio(track: RemoteTrack, pub: TrackPublication, p: RemoteParticipant): void {
    if (this.audioEls.has(pub.trackSid)) return;
    const el = track.attach();
    el.dataset.identity = p.identity;
    this.audioBox.appendChild(el);
    this.audioEls.set(pub.trackSid, el);
  }

  detachAudio(track: RemoteTrack, pub: TrackPublication): void {
    const el = this.audioEls.get(pub.trackSid);
    if (!el) return;
    track.detach(el);
    el.remove();
    this.audioEls.delete(pub.trackSid);
  }

  private pin(key: string): void {
    if (this.current === 'grid') {
      this.pinned = key;
      this.setLayout('spotlight');
    } else {
      this.pinned = this.pinned === key ? null : key;
      this.relayout();
    }
  }

  private setLayout(l: Layout): void {
    this.current = l;
    if (l === 'grid') this.pinned = null;
    this.el.dataset.layout = l;
    this.renderLayoutButton();
    this.relayout();
    this.o.onLayout(l);
  }

  private renderLayoutButton(): void {
    const b = this.layoutButton;
    const next = this.current === 'grid' ? 'spotlight' : 'grid';
    replace(b, icon(next === 'grid' ? 'grid' : 'spotlight'));
    b.setAttribute('aria-label', next === 'grid' ? 'Switch to grid view' : 'Switch to speaker view');
    b.title = b.getAttribute('aria-label') ?? '';
    b.dataset.layout = this.current;
  }

  /** The tile shown large in speaker view. */
  private focusKey(): string | null {
    if (this.pinned && this.tiles.has(this.pinned)) return this.pinned;
    const keys = [...this.tiles.keys()];
    const screen = keys.find((k) => k.endsWith('\u0000screen') && !this.tiles.get(k)!.isLocal) ?? keys.find((k) => k.endsWith('\u0000screen'));
    if (screen) return screen;
    const me = this.o.room.localParticipant.identity;
    const speaker = [...this.speaking].find((id) => id !== me && this.tiles.has(`${id}\u0000camera`));
    if (speaker) return `${speaker}\u0000camera`;
    const remote = keys.find((k) => !this.tiles.get(k)!.isLocal);
    return remote ?? keys[0] ?? null;
  }

  private relayout(): void {
    if (this.o.ended()) return;
    const tiles = [...this.tiles.values()];
    // Screen shares first, then people in join order.
    tiles.sort((a, b) => Number(b.isScreen) - Number(a.isScreen));
    const spotlight = this.current === 'spotlight' && tiles.length > 1;
    const focus = spotlight ? this.focusKey() : null;
    const mainTiles = spotlight ? tiles.filter((t) => t.key === focus) : tiles;
    const stripTiles = spotlight ? tiles.filter((t) => t.key !== focus) : [];
    placeChildren(this.stage, mainTiles.map((t) => t.el));
    placeChildren(this.strip, stripTiles.map((t) => t.el));
    this.strip.hidden = stripTiles.length === 0;
    this.el.classList.toggle('is-spotlight', spotlight);
    const rect = this.stage.getBoundingClientRect();
    const g = bestGrid(mainTiles.length, rect.width, rect.height);
    this.stage.style.setProperty('--cols', String(g.cols));
    this.stage.style.setProperty('--tile-w', `${g.width}px`);
    this.stage.style.setProperty('--tile-h', `${g.height}px`);
    for (const t of tiles) t.el.classList.toggle('pinned', t.key === this.pinned);
  }
}

function placeChildren(parent: HTMLElement, els: HTMLElement[]): void {
  els.forEach((el, i) => {
    if (parent.children[i] !== el) parent.insertBefore(el, parent.children[i] ?? null);
  });
  while (parent.children.length > els.length) parent.lastElementChild!.remove();
}
