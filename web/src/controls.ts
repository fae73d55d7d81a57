// The control bar: microphone, camera and screen sharing, the hand and reactions, the panel
// buttons with their badges, the recorder's controls, leave and end for all. Our own media lives
// here too: what the pre-join screen prepared, the toggles, and what a host's lock allows.
import { Track, type LocalParticipant, type Room } from 'livekit-client';

import type { Api, VerifyReply } from './api';
import { h, icon, replace, type IconName } from './dom';
import { apiErrorText } from './messages';
import type { Panel } from './panels';
import { REACTIONS, handRaisedAt, type ReactionName } from './protocol';
import { SOURCE_CAMERA, SOURCE_MICROPHONE, SOURCE_SCREEN, sourceAllowed } from './roster';
import { confirmDialog } from './ui/modal';
import type { PrejoinResult } from './ui/prejoin';
import { toast } from './ui/toasts';

/** What this participant may do in this room (the room's features and who they are). */
export interface Abilities {
  isAdmin: boolean;
  /** A hidden user, or one who asked to be hidden in an encrypted room (shown as an observer). */
  hidden: boolean;
  publish: boolean;
  camera: boolean;
  screen: boolean;
  chat: boolean;
  hand: boolean;
  react: boolean;
  polls: boolean;
  /** The shared notepad (the room's `shared_note_pad_features.is_allow`, on unless off). */
  notepad: boolean;
}

export function abilities(v: VerifyReply): Abilities {
  const f = v.room.features ?? {};
  const isAdmin = !!v.user.is_admin;
  const hidden = !!v.user.is_hidden || !!v.user.is_observer;
  return {
    isAdmin,
    hidden,
    publish: !hidden,
    camera: !hidden && f.allow_webcams !== false && !(f.admin_only_webcams && !isAdmin),
    screen: !hidden && f.allow_screen_share !== false,
    chat: f.chat_features?.is_allow !== false,
    hand: !hidden && f.allow_raise_hand !== false,
    react: !hidden && f.allow_reactions !== false,
    polls: (f.polls_features as { is_allow?: boolean } | undefined)?.is_allow !== false,
    notepad: f.shared_note_pad_features?.is_allow !== false,
  };
}

export interface ControlsOptions {
  room: Room;
  api: Api;
  verify: VerifyReply;
  may: Abilities;
  /** A host's breakout-rooms panel exists. */
  breakout: boolean;
  /** The recording and live-stream controls. */
  recorder: HTMLElement[];
  /** More tools' buttons (the whiteboard's). */
  tools?: HTMLElement[];
  togglePanel: (p: Panel) => void;
  /** Sends a reaction (and shows it on our own tile). */
  react: (name: ReactionName) => void;
  leave: () => void;
  /** Our media changed: everything follows. */
  sync: () => void;
}

interface CtlButton {
  el: HTMLButtonElement;
  set: (on: boolean) => void;
}

type CtlName = 'mic' | 'cam' | 'screen' | 'chat' | 'people' | 'hand' | 'react' | 'polls' | 'breakout' | 'notepad';

function ctlButton(testid: string, label: [string, string], icons: [IconName, IconName], onClick: () => void): CtlButton {
  const iconBox = h('span', { class: 'ctl-icon' });
  const text = h('span', { class: 'ctl-label' });
  const el = h('button', { class: 'ctl', type: 'button', 'data-testid': testid }, iconBox, text);
  el.addEventListener('click', onClick);
  const set = (on: boolean) => {
    replace(iconBox, icon(on ? icons[0] : icons[1]));
    text.textContent = on ? label[0] : label[1];
    el.setAttribute('aria-pressed', String(on));
    el.classList.toggle('on', on);
    el.title = text.textContent;
  };
  set(false);
  return { el, set };
}

export class Controls {
  readonly el: HTMLElement;
  private readonly ctl: Record<CtlName, CtlButton | null>;
  /** The reaction picker (null when the room has reactions off, or for observers). */
  private readonly reactionPicker: HTMLElement | null;
  private lastReaction = 0;
  private readonly chatBadge: HTMLElement;
  private readonly pollsBadge: HTMLElement;
  private readonly waitingBadge: HTMLElement;
  private readonly countEl: HTMLElement;
  /** What this participant may publish, as the server last said (null: not known yet). */
  private lastAllowed: Record<'mic' | 'cam' | 'screen', boolean> | null = null;

  constructor(private readonly o: ControlsOptions) {
    const { may } = o;
    const panel = (p: Panel) => () => o.togglePanel(p);
    const micBtn = ctlButton('mic-toggle', ['Mute', 'Unmute'], ['mic', 'micOff'], () => void this.toggleMic());
    micBtn.el.disabled = !may.publish;
    const camBtn = may.camera ? ctlButton('camera-toggle', ['Stop video', 'Start video'], ['camera', 'cameraOff'], () => void this.toggleCamera()) : null;
    const screenBtn = may.screen ? ctlButton('screen-share-toggle', ['Stop sharing', 'Share screen'], ['screen', 'screen'], () => void this.toggleScreen()) : null;
    const chatBtn = may.chat ? ctlButton('chat-toggle', ['Chat', 'Chat'], ['chat', 'chat'], panel('chat')) : null;
    const peopleBtn = ctlButton('participants-toggle', ['People', 'People'], ['people', 'people'], panel('people'));
    const handBtn = may.hand ? ctlButton('raise-hand-button', ['Lower hand', 'Raise hand'], ['hand', 'hand'], () => void this.toggleHand()) : null;
    const pollsBtn = may.polls ? ctlButton('polls-toggle', ['Polls', 'Polls'], ['poll', 'poll'], panel('polls')) : null;
    // Participants see the button once a host opened polls (or asked one); hosts always.
    if (pollsBtn && !may.isAdmin) pollsBtn.el.hidden = true;
    this.pollsBadge = h('span', { class: 'ctl-badge', hidden: true, 'data-testid': 'polls-unanswered', title: 'Polls you have not answered' });
    pollsBtn?.el.appendChild(this.pollsBadge);
    const reactBtn = may.react ? ctlButton('reaction-button', ['React', 'React'], ['smile', 'smile'], () => this.toggleReactions()) : null;
    this.reactionPicker = reactBtn
      ? h(
          'div',
          { class: 'reaction-picker', hidden: true, role: 'menu', 'data-testid': 'reaction-picker' },
          (Object.keys(REACTIONS) as ReactionName[]).map((name) => {
            const b = h('button', { class: 'reaction-choice', type: 'button', role: 'menuitem', 'data-testid': `reaction-${name}`, title: name.replace('_', ' ') }, REACTIONS[name]);
            b.addEventListener('click', () => this.pickReaction(name));
            return b;
          }),
        )
      : null;
    this.chatBadge = h('span', { class: 'ctl-badge', hidden: true, 'data-testid': 'chat-unread' });
    chatBtn?.el.appendChild(this.chatBadge);
    this.countEl = h('span', { class: 'count' }, '1');
    peopleBtn.el.appendChild(this.countEl);
    this.waitingBadge = h('span', { class: 'ctl-badge', hidden: true, 'data-testid': 'waiting-badge', title: 'Waiting to join' });
    peopleBtn.el.appendChild(this.waitingBadge);
    const notepadBtn = may.notepad ? ctlButton('notepad-toggle', ['Notes', 'Notes'], ['note', 'note'], panel('notepad')) : null;
    const breakoutBtn = o.breakout ? ctlButton('breakout-toggle', ['Breakout', 'Breakout'], ['people', 'people'], panel('breakout')) : null;
    this.ctl = { mic: micBtn, cam: camBtn, screen: screenBtn, chat: chatBtn, people: peopleBtn, hand: handBtn, react: reactBtn, polls: pollsBtn, breakout: breakoutBtn, notepad: notepadBtn };
    let camNote: HTMLElement | null = null;
    if (camBtn === null) {
      // Show the restriction rather than hiding the control.
      const why = may.hidden ? (o.verify.user.is_hidden ? 'You are a hidden observer' : 'You are an observer') : 'Webcams are turned off in this meeting';
      camNote = h('button', { class: 'ctl', type: 'button', disabled: true, title: why, 'data-testid': 'camera-toggle' }, h('span', { class: 'ctl-icon' }, icon('cameraOff')), h('span', { class: 'ctl-label' }, 'Video off'));
    }

    const leave = h('button', { class: 'ctl ctl-leave', type: 'button', 'data-testid': 'leave-button', title: 'Leave the meeting' }, h('span', { class: 'ctl-icon' }, icon('leave')), h('span', { class: 'ctl-label' }, 'Leave'));
    leave.addEventListener('click', () => o.leave());
    let endBtn: HTMLElement | null = null;
    if (may.isAdmin) {
      endBtn = h('button', { class: 'ctl ctl-end', type: 'button', 'data-testid': 'end-meeting-button', title: 'End the meeting for everyone' }, h('span', { class: 'ctl-icon' }, icon('end')), h('span', { class: 'ctl-label' }, 'End for all'));
      endBtn.addEventListener('click', () => void this.endForAll());
    }
    this.el = h(
      'footer',
      { class: 'controlbar', role: 'toolbar', 'aria-label': 'Meeting controls' },
      h('div', { class: 'ctl-group' }, micBtn.el, camBtn?.el ?? camNote, screenBtn?.el),
      h('div', { class: 'ctl-group ctl-group-react' }, handBtn?.el, reactBtn?.el, this.reactionPicker, chatBtn?.el, pollsBtn?.el, notepadBtn?.el, breakoutBtn?.el, o.tools ?? [], peopleBtn.el, o.recorder),
      h('div', { class: 'ctl-group' }, endBtn, leave),
    );
  }

  /** The buttons follow our media, our hand and the open panel. */
  sync(panel: Panel): void {
    const me = this.o.room.localParticipant;
    const { ctl } = this;
    ctl.mic?.set(me.isMicrophoneEnabled);
    ctl.cam?.set(me.isCameraEnabled);
    ctl.screen?.set(me.isScreenShareEnabled);
    ctl.chat?.set(panel === 'chat');
    ctl.people?.set(panel === 'people');
    ctl.polls?.set(panel === 'polls');
    ctl.breakout?.set(panel === 'breakout');
    ctl.notepad?.set(panel === 'notepad');
    ctl.hand?.set(handRaisedAt(me.metadata) !== null);
  }

  /** How many are in the meeting (on the People button). */
  setCount(n: number): void {
    this.countEl.textContent = String(n);
  }

  /** Unread chat messages. */
  setUnread(n: number): void {
    this.chatBadge.hidden = n === 0;
    this.chatBadge.textContent = n > 9 ? '9+' : String(n);
  }

  /** Participants see the polls button once there is something to see; how many wait for our answer. */
  setPolls(visible: boolean, unanswered: number, panelOpen: boolean): void {
    const btn = this.ctl.polls;
    if (btn && !this.o.may.isAdmin) btn.el.hidden = !visible;
    this.pollsBadge.hidden = unanswered === 0 || panelOpen;
    this.pollsBadge.textContent = String(unanswered);
  }

  /** Hosts: how many wait to be let in. */
  setWaiting(n: number): void {
    this.waitingBadge.hidden = n === 0;
    this.waitingBadge.textContent = String(n);
  }

  /** Whether the server lets this participant publish `source` now. */
  allowed(source: number): boolean {
    return sourceAllowed(this.o.room.localParticipant, source);
  }

  /** Publishes what the pre-join screen prepared, except what a host has locked. */
  async publishPrepared(join: PrejoinResult): Promise<void> {
    const { may } = this.o;
    const me = this.o.room.localParticipant;
    const pubs: Array<Promise<unknown>> = [];
    if (join.audio && (!may.publish || !this.allowed(SOURCE_MICROPHONE))) join.audio.stop();
    else if (join.audio) {
      pubs.push(me.publishTrack(join.audio, { source: Track.Source.Microphone }).catch((e) => mediaError('microphone', e)));
    }
    if (join.video && may.camera && this.allowed(SOURCE_CAMERA)) {
      pubs.push(me.publishTrack(join.video, { source: Track.Source.Camera, simulcast: true }).catch((e) => mediaError('camera', e)));
    } else {
      join.video?.stop();
    }
    await Promise.all(pubs);
  }

  /**
   * The server changed what we may publish (a host's lock): the controls follow, and we say
   * what changed. A locked source's track is unpublished by the server itself.
   */
  permissionsChanged(): void {
    const now = { mic: this.allowed(SOURCE_MICROPHONE), cam: this.allowed(SOURCE_CAMERA), screen: this.allowed(SOURCE_SCREEN) };
    const names = { mic: 'microphone', cam: 'camera', screen: 'screen sharing' } as const;
    const buttons = { mic: this.ctl.mic, cam: this.ctl.cam, screen: this.ctl.screen };
    for (const k of ['mic', 'cam', 'screen'] as const) {
      const b = buttons[k];
      if (b && !(k === 'mic' && !this.o.may.publish)) {
        b.el.disabled = !now[k];
        b.el.dataset.locked = String(!now[k]);
        if (!now[k]) b.el.title = `A host locked your ${names[k]}`;
      }
      const before = this.lastAllowed?.[k];
      if (before === true && !now[k]) toast(`A host locked your ${names[k]}.`, 'warning');
      else if (before === false && now[k]) toast(`A host allowed your ${names[k]} again.`, 'info');
      // Locked from the start (the room's default locks, such as screen sharing): the disabled
      // control and its title say so, without a toast at every join.
    }
    this.lastAllowed = now;
  }

  private toggleMic(): Promise<void> {
    return this.toggleDevice('microphone', (me) => me.setMicrophoneEnabled(!me.isMicrophoneEnabled));
  }

  private toggleCamera(): Promise<void> {
    return this.toggleDevice('camera', (me) => me.setCameraEnabled(!me.isCameraEnabled, undefined, { simulcast: true }));
  }

  /** Turns our microphone or camera on or off (`toggle`); says why when it cannot. */
  private async toggleDevice(what: 'microphone' | 'camera', toggle: (me: LocalParticipant) => Promise<unknown>): Promise<void> {
    try {
      await toggle(this.o.room.localParticipant);
    } catch (e) {
      mediaError(what, e);
    }
    this.o.sync();
  }

  private async toggleScreen(): Promise<void> {
    const me = this.o.room.localParticipant;
    try {
      await me.setScreenShareEnabled(!me.isScreenShareEnabled, { audio: true, selfBrowserSurface: 'exclude' });
    } catch (e) {
      const name = e instanceof Error ? e.name : '';
      if (name !== 'NotAllowedError' && name !== 'AbortError') toast('Screen sharing could not start.', 'warning');
    }
    this.o.sync();
  }

  private toggleReactions(): void {
    if (!this.reactionPicker) return;
    this.reactionPicker.hidden = !this.reactionPicker.hidden;
    this.ctl.react?.set(!this.reactionPicker.hidden);
  }

  /** A reaction chosen: at most one every 300 ms. */
  private pickReaction(name: ReactionName): void {
    const now = Date.now();
    if (now - this.lastReaction < 300) return;
    this.lastReaction = now;
    this.toggleReactions();
    this.o.react(name);
  }

  private async toggleHand(): Promise<void> {
    const up = handRaisedAt(this.o.room.localParticipant.metadata) !== null;
    try {
      await this.o.api.raiseHand(!up);
    } catch (e) {
      toast(apiErrorText(e), 'error');
    }
  }

  private async endForAll(): Promise<void> {
    const ok = await confirmDialog({ title: 'End the meeting for everyone?', body: 'Everyone will be disconnected and the meeting will close.', confirm: 'End meeting', danger: true });
    if (!ok) return;
    try {
      await this.o.api.endRoom();
    } catch (e) {
      toast(apiErrorText(e, 'The meeting could not be ended.'), 'error');
    }
  }
}

function mediaError(what: string, e: unknown): void {
  toast(`The ${what} could not be started: ${mediaErrorText(e)}`, 'warning');
}

export function mediaErrorText(e: unknown): string {
  const name = e instanceof Error ? e.name : '';
  if (name === 'NotAllowedError') return 'access was blocked in the browser.';
  if (name === 'NotFoundError') return 'no device was found.';
  if (name === 'NotReadableError') return 'the device is in use by another application.';
  return 'the device could not be used.';
}
